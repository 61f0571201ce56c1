//! Versioned schema migrations, recorded in `<schema>.schema_migrations`.
//!
//! Each entry of `migrations` moves the schema one version up and is applied once, in
//! order, in one transaction holding a transaction-level advisory lock on the schema's
//! name, so that many workers starting at once against a new database neither race nor
//! fail: the first migrates, the others wait and then find nothing to do.
//!
//! A store opened with `Open::Existing` does none of that: [`check_current`] only reads
//! the ledger, and refuses a schema that is missing or not at the current version.

use sqlx::{Connection, PgConnection};
use wrangle_core::connect::outdated_store;
use wrangle_core::store::StoreError;

use crate::backend;
use crate::sql::{Statements, sql};

/// Schema-changing statements, in order; index 0 brings an empty schema to version 1.
/// A released step is never edited (existing databases ran it): changes go in a new one.
/// Version 2 adds jobs; version 3 makes the hot path cheaper (indexes, triggers);
/// version 4 adds log rings; version 5 turns at maintenance duties; version 6 counts
/// tasks per queue and state.
fn migrations(statements: &Statements) -> [&std::sync::Arc<str>; 7] {
    [
        &statements.schema_v1,
        &statements.schema_v2,
        &statements.schema_v3,
        &statements.schema_v4,
        &statements.schema_v5,
        &statements.schema_v6,
        &statements.schema_v7,
    ]
}

/// The refusal of a schema newer than this code.
fn newer(schema: &str, version: i32, known: i32) -> StoreError {
    StoreError::Backend(format!(
        "schema {schema} is at version {version}, newer than this wrangle understands \
         ({known}); upgrade wrangle"
    ))
}

/// Brings `schema` (whose statements are `statements`) to the newest version, creating it
/// if missing.
pub(crate) async fn migrate(
    connection: &mut PgConnection,
    statements: &Statements,
    schema: &str,
) -> Result<(), StoreError> {
    let migrations = migrations(statements);
    let mut tx = connection.begin().await.map_err(backend)?;
    sqlx::query(sql(&statements.migrate_lock))
        .bind(format!("wrangle.{schema}"))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    sqlx::raw_sql(sql(&statements.migrate_prepare))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    let version: i32 = sqlx::query_scalar(sql(&statements.schema_version))
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
    let known = migrations.len() as i32;
    if version > known {
        return Err(newer(schema, version, known));
    }
    for (index, step) in migrations.iter().enumerate().skip(version as usize) {
        sqlx::raw_sql(sql(step))
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        sqlx::query(sql(&statements.record_migration))
            .bind(index as i32 + 1)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
    }
    tx.commit().await.map_err(backend)
}

/// Succeeds only if `schema` holds a wrangle store at the current version, reading and
/// writing nothing else: [`StoreError::NoStore`] (naming `at`) when its migration ledger
/// is missing or empty, a refusal when it is older or newer than this code.
pub(crate) async fn check_current(
    connection: &mut PgConnection,
    statements: &Statements,
    schema: &str,
    at: &str,
) -> Result<(), StoreError> {
    // The schema name is validated (lowercase letters, digits, `_`), so quoting it is
    // enough to make it an identifier.
    let ledger: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(format!("\"{schema}\".schema_migrations"))
        .fetch_one(&mut *connection)
        .await
        .map_err(backend)?;
    if !ledger {
        return Err(StoreError::NoStore(at.to_string()));
    }
    let version: i32 = sqlx::query_scalar(sql(&statements.schema_version))
        .fetch_one(&mut *connection)
        .await
        .map_err(backend)?;
    let known = migrations(statements).len() as i32;
    match version {
        0 => Err(StoreError::NoStore(at.to_string())),
        v if v < known => Err(outdated_store(at, v.into(), known.into())),
        v if v > known => Err(newer(schema, v, known)),
        _ => Ok(()),
    }
}
