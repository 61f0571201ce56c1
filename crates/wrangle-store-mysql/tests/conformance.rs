//! Runs the store conformance suite against the MySQL store on one throwaway MariaDB
//! server: each case gets a database of its own, connected twice (two pools, as two
//! processes would).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::{Connection, MySqlConnection};
use wrangle_conformance::{Handle, Harness, anyhow, async_trait};
use wrangle_store_mysql::MySqlStore;
use wrangle_testkit::MariaDbServer;

/// Creates one database per case on the suite's server, dropped with the server.
struct MariaDb {
    server: MariaDbServer,
    next: AtomicU64,
}

#[async_trait]
impl Harness for MariaDb {
    fn name(&self) -> &'static str {
        "mysql"
    }

    async fn fresh(&self) -> anyhow::Result<(Handle, Handle)> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let database = format!("conformance_{n}");
        let url = self.server.url();
        let mut admin = MySqlConnection::connect(&url).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
            .execute(&mut admin)
            .await?;
        admin.close().await?;
        let case_url = format!("{}/{database}", url.rsplit_once('/').expect("a URL path").0);
        let first: Handle = Arc::new(MySqlStore::connect(&case_url).await?);
        let second: Handle = Arc::new(MySqlStore::connect(&case_url).await?);
        Ok((first, second))
    }
}

fn main() {
    let Some(server) = wrangle_testkit::or_skip(MariaDbServer::start()) else {
        return;
    };
    wrangle_conformance::run(MariaDb {
        server,
        next: AtomicU64::new(0),
    })
}
