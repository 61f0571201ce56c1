//! Log rings (see [`wrangle_core::log`]): appending with trimming, reading, and dropping
//! the rings of pruned tasks and removed workers, each a few statements over a whole
//! batch (JSON parameters through `JSON_TABLE`). The `Store` methods in the crate root
//! call these inside their own transactions.

use std::collections::HashMap;

use serde_json::json;
use sqlx::{MySql, MySqlPool, Transaction};
use wrangle_core::log::{LogAppend, LogLine, LogOwner, LogRow};

use crate::Failure;
use crate::rows::{json_text, ms};

/// Appends merged, cut appends (from `newest_per_owner`), keeping `keep` lines per owner.
pub(crate) async fn append(
    tx: &mut Transaction<'static, MySql>,
    appends: &[LogAppend],
    keep: usize,
) -> Result<(), Failure> {
    let owners: Vec<String> = appends.iter().map(|a| a.owner.key()).collect();
    let newest: HashMap<String, i64> = sqlx::query_as(include_str!("sql/log_newest.sql"))
        .bind(json_text(&owners))
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .collect();
    let mut lines = Vec::new();
    let mut bounds = Vec::new();
    for (owner, append) in owners.iter().zip(appends) {
        let first = newest.get(owner).copied().unwrap_or(0) + 1;
        for (offset, line) in append.lines.iter().enumerate() {
            let seq = first + offset as i64;
            lines.push(json!([
                owner,
                seq,
                ms(line.at),
                line.source.as_str(),
                line.text
            ]));
        }
        let last = first - 1 + append.lines.len() as i64;
        bounds.push(json!([owner, last - keep as i64]));
    }
    sqlx::query(include_str!("sql/log_append.sql"))
        .bind(json_text(&lines))
        .execute(&mut **tx)
        .await?;
    sqlx::query(include_str!("sql/log_trim.sql"))
        .bind(json_text(&bounds))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Up to `limit` lines of `owner` after `after`.
pub(crate) async fn read(
    pool: &MySqlPool,
    owner: &LogOwner,
    after: u64,
    limit: usize,
) -> Result<Vec<LogLine>, Failure> {
    let rows: Vec<LogRow> = sqlx::query_as(include_str!("sql/log_read.sql"))
        .bind(owner.key())
        .bind(i64::try_from(after).unwrap_or(i64::MAX))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(LogLine::from_row).collect())
}

/// Drops the rings of `owners`.
pub(crate) async fn drop_rings(
    tx: &mut Transaction<'static, MySql>,
    owners: impl IntoIterator<Item = LogOwner>,
) -> Result<(), Failure> {
    let keys: Vec<String> = owners.into_iter().map(|o| o.key()).collect();
    if !keys.is_empty() {
        sqlx::query(include_str!("sql/log_drop.sql"))
            .bind(json_text(&keys))
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
