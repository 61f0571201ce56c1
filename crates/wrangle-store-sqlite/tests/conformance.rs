//! Runs the store conformance suite against the SQLite store: each case gets a new
//! database file, opened twice (two pools, as two processes would).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use wrangle_conformance::{Handle, Harness, anyhow, async_trait};
use wrangle_store_sqlite::SqliteStore;

/// Opens SQLite stores in files of one temporary directory, removed when the suite ends.
struct Sqlite {
    dir: tempfile::TempDir,
    next: AtomicU64,
}

#[async_trait]
impl Harness for Sqlite {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    async fn fresh(&self) -> anyhow::Result<(Handle, Handle)> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.path().join(format!("case-{n}.db"));
        let first: Handle = Arc::new(SqliteStore::open(&path).await?);
        let second: Handle = Arc::new(SqliteStore::open(&path).await?);
        Ok((first, second))
    }
}

fn main() {
    let dir = tempfile::tempdir().expect("a temporary directory for the test databases");
    wrangle_conformance::run(Sqlite {
        dir,
        next: AtomicU64::new(0),
    })
}
