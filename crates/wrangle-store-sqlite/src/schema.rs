//! Versioned schema migrations, tracked in SQLite's `PRAGMA user_version`.
//!
//! Each entry of [`MIGRATIONS`] moves the schema one version up and is applied once, in
//! order, inside a `BEGIN IMMEDIATE` transaction, so two processes opening a new file at
//! the same moment cannot both apply it.

use sqlx::SqlitePool;
use wrangle_core::store::StoreError;

use crate::backend;

/// Schema steps; index 0 brings an empty file to version 1.
const MIGRATIONS: &[&str] = &[
    include_str!("sql/schema_v1.sql"),
    include_str!("sql/schema_v2.sql"),
];

/// Brings the database at `pool` to the newest schema version.
pub(crate) async fn migrate(pool: &SqlitePool) -> Result<(), StoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
    let version: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(StoreError::Backend(format!(
            "database schema version {version} is newer than this wrangle understands ({known}); upgrade wrangle"
        )));
    }
    for (index, step) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        sqlx::raw_sql(*step)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        // PRAGMA takes no bound parameters; the value is our own integer.
        let set_version = format!("PRAGMA user_version = {}", index + 1);
        sqlx::raw_sql(sqlx::AssertSqlSafe(set_version))
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
    }
    tx.commit().await.map_err(backend)
}
