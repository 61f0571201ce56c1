//! The conformance harness for the Redis store, shared by `conformance.rs` and
//! `conformance_bulk.rs`: one throwaway server for the whole run, each case in a fresh key
//! prefix, opened twice (two connections, as two processes would).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use wrangle_conformance::{Handle, Harness, anyhow, async_trait};
use wrangle_store_redis::{RedisOptions, RedisStore};
use wrangle_testkit::{RedisServer, or_skip};

/// Hands out stores on one server, each under a prefix no other case uses.
struct Redis {
    name: &'static str,
    server: RedisServer,
    next: AtomicU64,
    bulk_enqueue_from: usize,
}

#[async_trait]
impl Harness for Redis {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn fresh(&self) -> anyhow::Result<(Handle, Handle)> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let options = RedisOptions {
            prefix: format!("conformance-{}-{n}", std::process::id()),
            bulk_enqueue_from: self.bulk_enqueue_from,
            ..RedisOptions::default()
        };
        let url = self.server.url();
        let first: Handle = Arc::new(RedisStore::connect_with(&url, options.clone()).await?);
        let second: Handle = Arc::new(RedisStore::connect_with(&url, options).await?);
        Ok((first, second))
    }
}

/// Runs the whole suite with stores that send batches of `bulk_enqueue_from` tasks or
/// more through the bulk enqueue.
pub fn run(name: &'static str, bulk_enqueue_from: usize) {
    let Some(server) = or_skip(RedisServer::start()) else {
        return;
    };
    wrangle_conformance::run(Redis {
        name,
        server,
        next: AtomicU64::new(0),
        bulk_enqueue_from,
    })
}
