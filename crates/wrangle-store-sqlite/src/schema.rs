//! Versioned schema migrations, tracked in SQLite's `PRAGMA user_version`.
//!
//! Each entry of [`MIGRATIONS`] moves the schema one version up and is applied once, in
//! order, inside a `BEGIN IMMEDIATE` transaction, so two processes opening a new file at
//! the same moment cannot both apply it.
//!
//! A store opened with `Open::Existing` does none of that: [`check_current`] only reads
//! the version, and refuses a file that is missing, empty, not a wrangle store, or not at
//! the current version.

use std::path::Path;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, SqliteConnection, SqlitePool};
use wrangle_core::connect::outdated_store;
use wrangle_core::store::StoreError;

use crate::backend;

/// Schema steps; index 0 brings an empty file to version 1.
const MIGRATIONS: &[&str] = &[
    include_str!("sql/schema_v1.sql"),
    include_str!("sql/schema_v2.sql"),
    include_str!("sql/schema_v3.sql"),
    include_str!("sql/schema_v4.sql"),
    include_str!("sql/schema_v5.sql"),
    include_str!("sql/schema_v6.sql"),
    include_str!("sql/schema_v7.sql"),
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
        return Err(newer(version, known));
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

/// The refusal of a schema newer than this code.
fn newer(version: i64, known: i64) -> StoreError {
    StoreError::Backend(format!(
        "database schema version {version} is newer than this wrangle understands ({known}); upgrade wrangle"
    ))
}

/// Succeeds only if `path` is a wrangle store at the current schema version. Creates no
/// file or directory and changes nothing in the file: it is read through one plain
/// connection that sets no pragma (the store's own connections switch it to WAL).
pub(crate) async fn check_current(path: &Path) -> Result<(), StoreError> {
    let missing = || StoreError::NoStore(path.display().to_string());
    // An empty file is what a crashed first open may leave; SQLite would take it for an
    // empty database and the store's connections would write a header into it.
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() && meta.len() > 0 => {}
        _ => return Err(missing()),
    }
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false);
    let mut connection = SqliteConnection::connect_with(&options)
        .await
        .map_err(|err| {
            StoreError::Unavailable(format!("cannot open {}: {}", path.display(), backend(err)))
        })?;
    let version = sqlx::query_scalar::<_, i64>("PRAGMA user_version")
        .fetch_one(&mut connection)
        .await
        .map_err(backend);
    let _ = connection.close().await;
    let known = MIGRATIONS.len() as i64;
    match version? {
        0 => Err(missing()),
        v if v < known => Err(outdated_store(&path.display().to_string(), v, known)),
        v if v > known => Err(newer(v, known)),
        _ => Ok(()),
    }
}
