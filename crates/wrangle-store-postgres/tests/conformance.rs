//! Runs the store conformance suite against the PostgreSQL store: one throwaway server for
//! the whole run, and for each case a new schema on it, opened twice (two pools and two
//! LISTEN connections, as two processes would).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use wrangle_conformance::{Handle, Harness, anyhow, async_trait};
use wrangle_store_postgres::PostgresStore;
use wrangle_testkit::PostgresServer;

/// Opens stores in fresh schemas of one server, stopped when the suite ends.
struct Postgres {
    server: PostgresServer,
    next: AtomicU64,
}

#[async_trait]
impl Harness for Postgres {
    fn name(&self) -> &'static str {
        "postgres"
    }

    async fn fresh(&self) -> anyhow::Result<(Handle, Handle)> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        // Unique per run too, for an external server (WRANGLE_TEST_PG_URL) reused across runs.
        let schema = format!("case_{}_{n}", std::process::id());
        let url = format!("{}?pool_size=4", self.server.url());
        let first: Handle = Arc::new(PostgresStore::connect_with_schema(&url, &schema).await?);
        let second: Handle = Arc::new(PostgresStore::connect_with_schema(&url, &schema).await?);
        Ok((first, second))
    }
}

fn main() {
    let Some(server) = wrangle_testkit::or_skip(PostgresServer::start()) else {
        return;
    };
    wrangle_conformance::run(Postgres {
        server,
        next: AtomicU64::new(0),
    })
}
