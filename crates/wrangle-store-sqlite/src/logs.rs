//! Log rings (see [`wrangle_core::log`]): appending with trimming, reading, and dropping
//! the rings of pruned tasks and removed workers. The `Store` methods in the crate root
//! call these inside their own write transactions.

use serde_json::json;
use sqlx::{Sqlite, Transaction};
use wrangle_core::log::{LogAppend, LogLine, LogOwner, LogRow};
use wrangle_core::store::StoreError;

use crate::backend;
use crate::rows::ms;

/// Appends merged, cut appends (from `newest_per_owner`), keeping `keep` lines per owner.
pub(crate) async fn append(
    tx: &mut Transaction<'static, Sqlite>,
    appends: &[LogAppend],
    keep: usize,
) -> Result<(), StoreError> {
    for append in appends {
        let owner = append.owner.key();
        let newest: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM logs WHERE owner = ?1")
                .bind(&owner)
                .fetch_one(&mut **tx)
                .await
                .map_err(backend)?;
        let lines: Vec<_> = append
            .lines
            .iter()
            .map(|l| json!([ms(l.at), l.source.as_str(), l.text]))
            .collect();
        sqlx::query(include_str!("sql/log_append.sql"))
            .bind(&owner)
            .bind(newest)
            .bind(serde_json::Value::Array(lines).to_string())
            .execute(&mut **tx)
            .await
            .map_err(backend)?;
        let last = newest + append.lines.len() as i64;
        sqlx::query(include_str!("sql/log_trim.sql"))
            .bind(&owner)
            .bind(last - keep as i64)
            .execute(&mut **tx)
            .await
            .map_err(backend)?;
    }
    Ok(())
}

/// Up to `limit` lines of `owner` after `after`.
pub(crate) async fn read(
    pool: &sqlx::SqlitePool,
    owner: &LogOwner,
    after: u64,
    limit: usize,
) -> Result<Vec<LogLine>, StoreError> {
    let rows: Vec<LogRow> = sqlx::query_as(include_str!("sql/log_read.sql"))
        .bind(owner.key())
        .bind(i64::try_from(after).unwrap_or(i64::MAX))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(pool)
        .await
        .map_err(backend)?;
    Ok(rows.into_iter().map(LogLine::from_row).collect())
}

/// Drops the rings of `owners`.
pub(crate) async fn drop_rings(
    tx: &mut Transaction<'static, Sqlite>,
    owners: impl IntoIterator<Item = LogOwner>,
) -> Result<(), StoreError> {
    let keys: Vec<String> = owners.into_iter().map(|o| o.key()).collect();
    if keys.is_empty() {
        return Ok(());
    }
    sqlx::query(include_str!("sql/log_drop.sql"))
        .bind(json!(keys).to_string())
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    Ok(())
}
