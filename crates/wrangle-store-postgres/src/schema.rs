//! Versioned schema migrations, recorded in `<schema>.schema_migrations`.
//!
//! Each entry of [`MIGRATIONS`] moves the schema one version up and is applied once, in
//! order, in one transaction holding a transaction-level advisory lock on the schema's
//! name, so that many workers starting at once against a new database neither race nor
//! fail: the first migrates, the others wait and then find nothing to do.

use sqlx::PgPool;
use wrangle_core::store::StoreError;

use crate::backend;
use crate::sql::{Statements, sql};

/// Brings `schema` (whose statements are `statements`) to the newest version, creating it
/// if missing.
pub(crate) async fn migrate(
    pool: &PgPool,
    statements: &Statements,
    schema: &str,
) -> Result<(), StoreError> {
    // Schema-changing statements, in order; index 0 brings an empty schema to version 1.
    // A released step is never edited (existing databases ran it): changes go in a new one.
    // Version 2 adds jobs; version 3 makes the hot path cheaper (indexes, triggers).
    let migrations = [
        &statements.schema_v1,
        &statements.schema_v2,
        &statements.schema_v3,
    ];
    let mut tx = pool.begin().await.map_err(backend)?;
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
        return Err(StoreError::Backend(format!(
            "schema {schema} is at version {version}, newer than this wrangle understands \
             ({known}); upgrade wrangle"
        )));
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
