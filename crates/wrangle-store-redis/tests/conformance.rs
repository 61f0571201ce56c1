//! Runs the store conformance suite against the Redis store: one throwaway server for the
//! whole run, each case in a fresh key prefix, opened twice (two connections, as two
//! processes would).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use wrangle_conformance::{Handle, Harness, anyhow, async_trait};
use wrangle_store_redis::RedisStore;
use wrangle_testkit::{RedisServer, or_skip};

/// Hands out stores on one server, each under a prefix no other case uses.
struct Redis {
    server: RedisServer,
    next: AtomicU64,
}

#[async_trait]
impl Harness for Redis {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn fresh(&self) -> anyhow::Result<(Handle, Handle)> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("conformance-{}-{n}", std::process::id());
        let url = self.server.url();
        let first: Handle = Arc::new(RedisStore::connect_with_prefix(&url, &prefix).await?);
        let second: Handle = Arc::new(RedisStore::connect_with_prefix(&url, &prefix).await?);
        Ok((first, second))
    }
}

fn main() {
    let Some(server) = or_skip(RedisServer::start()) else {
        return;
    };
    wrangle_conformance::run(Redis {
        server,
        next: AtomicU64::new(0),
    })
}
