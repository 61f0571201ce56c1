//! Versioned schema migrations, tracked in the one-row table `wrangle_schema_version`.
//!
//! MySQL commits every DDL statement on its own, so a migration cannot be one
//! transaction. Instead the migrating process holds a named server lock (`GET_LOCK`, one
//! per database) while it reads the version and applies the missing steps: many workers
//! starting at once against a new database wait for the first one instead of racing it.
//! Every statement of a step can run twice (`IF NOT EXISTS`, upserts), so a step cut short
//! by a crash is simply applied again.
//!
//! A store opened with `Open::Existing` does none of that: [`check_current`] only reads
//! the version, and refuses a database without wrangle's tables or not at the current
//! version.

use sqlx::{Connection, MySqlConnection};
use wrangle_core::connect::outdated_store;
use wrangle_core::store::StoreError;

use crate::Failure;

/// Schema steps; index 0 brings an empty database to version 1, index 1 a version 1 database
/// to version 2 (jobs), and so on. A released step is never edited: changes go in a new
/// one. Statements within a step are separated by a line holding only `;`.
const MIGRATIONS: &[&str] = &[
    include_str!("sql/schema_v1.sql"),
    include_str!("sql/schema_v2.sql"),
    include_str!("sql/schema_v3.sql"),
    include_str!("sql/schema_v4.sql"),
    include_str!("sql/schema_v5.sql"),
    include_str!("sql/schema_v6.sql"),
];

/// The refusal of a schema newer than this code.
fn newer(version: i64, known: i64) -> StoreError {
    StoreError::Backend(format!(
        "database schema version {version} is newer than this wrangle understands ({known}); upgrade wrangle"
    ))
}

/// Succeeds only if the database holds a wrangle store at the current version, reading
/// and writing nothing else: [`StoreError::NoStore`] (naming `at`) when the version table
/// is missing or empty, a refusal when the schema is older or newer than this code.
pub(crate) async fn check_current(conn: &mut MySqlConnection, at: &str) -> Result<(), Failure> {
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.tables
         WHERE table_schema = DATABASE() AND table_name = 'wrangle_schema_version'",
    )
    .fetch_one(&mut *conn)
    .await?;
    if tables == 0 {
        return Err(StoreError::NoStore(at.to_string()).into());
    }
    let version =
        sqlx::query_scalar::<_, i32>("SELECT version FROM wrangle_schema_version WHERE id = 1")
            .fetch_optional(&mut *conn)
            .await?
            .map_or(0, i64::from);
    let known = MIGRATIONS.len() as i64;
    match version {
        0 => Err(StoreError::NoStore(at.to_string()).into()),
        v if v < known => Err(outdated_store(at, v, known).into()),
        v if v > known => Err(newer(v, known).into()),
        _ => Ok(()),
    }
}

/// How long a process waits for another one's migration before giving up.
const MIGRATION_LOCK_WAIT_SECS: i64 = 120;

/// Brings the database `conn` is connected to to the newest schema version.
pub(crate) async fn migrate(conn: &mut MySqlConnection) -> Result<(), Failure> {
    // Lock names are server-wide and at most 64 characters: name the database by its hash.
    let locked: Option<i64> = sqlx::query_scalar(
        "SELECT GET_LOCK(CONCAT('wrangle-migrate-', LEFT(SHA1(DATABASE()), 40)), ?)",
    )
    .bind(MIGRATION_LOCK_WAIT_SECS)
    .fetch_one(&mut *conn)
    .await?;
    if locked != Some(1) {
        return Err(StoreError::Unavailable(format!(
            "another process kept the schema migration lock for {MIGRATION_LOCK_WAIT_SECS} s"
        ))
        .into());
    }
    let outcome = apply_missing_steps(conn).await;
    // Released explicitly because the connection goes back to the pool; a lost connection
    // releases it by itself.
    let released =
        sqlx::query("DO RELEASE_LOCK(CONCAT('wrangle-migrate-', LEFT(SHA1(DATABASE()), 40)))")
            .execute(&mut *conn)
            .await;
    outcome?;
    released?;
    Ok(())
}

async fn apply_missing_steps(conn: &mut MySqlConnection) -> Result<(), Failure> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS wrangle_schema_version (
             id      INT NOT NULL PRIMARY KEY,
             version INT NOT NULL
         ) ENGINE = InnoDB",
    )
    .execute(&mut *conn)
    .await?;
    let version: i64 =
        sqlx::query_scalar::<_, i32>("SELECT version FROM wrangle_schema_version WHERE id = 1")
            .fetch_optional(&mut *conn)
            .await?
            .map_or(0, i64::from);
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(newer(version, known).into());
    }
    for (index, step) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        for statement in step.split("\n;\n").filter(|s| !s.trim().is_empty()) {
            sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
                .execute(&mut *conn)
                .await?;
        }
        let mut tx = conn.begin().await?;
        sqlx::query(
            "INSERT INTO wrangle_schema_version (id, version) VALUES (1, ?)
             ON DUPLICATE KEY UPDATE version = VALUES(version)",
        )
        .bind(index as i64 + 1)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    }
    Ok(())
}
