//! What the store URL configures: the driver's own options (host, user, `sslmode`, …),
//! which sqlx parses, plus wrangle's, which are taken out of the query string first:
//!
//! - `schema=NAME`: the PostgreSQL schema holding wrangle's tables (default `wrangle`),
//!   so that several wrangle deployments (or test cases) can share one database;
//! - `pool_size=N`: most connections the store opens (default 10), besides the one it
//!   keeps for LISTEN;
//! - `vacuum_every=N`: VACUUM the tasks table after every N tasks this handle claimed
//!   (default 50,000; 0 leaves it to autovacuum; see the `vacuum` module).

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use wrangle_core::store::StoreError;

use crate::vacuum::DEFAULT_VACUUM_EVERY;

/// The schema used when the URL names none.
pub const DEFAULT_SCHEMA: &str = "wrangle";

/// Connections in the pool when the URL does not say.
pub const DEFAULT_POOL_SIZE: u32 = 10;

/// How long an operation waits for a connection (including connecting to a server that is
/// down) before it fails with `Unavailable`, which callers retry with backoff.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest schema name: the notification channel `wrangle.<schema>` must fit PostgreSQL's
/// 63-byte identifiers.
const MAX_SCHEMA_LEN: usize = 50;

/// wrangle's own connection options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresOptions {
    /// Schema of wrangle's tables: lowercase ASCII letters, digits and `_`, not starting
    /// with a digit, at most 50 characters.
    pub schema: String,
    /// Most pooled connections.
    pub pool_size: u32,
    /// Tasks claimed through one handle between two VACUUMs of the tasks table (0: never).
    pub vacuum_every: u64,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            schema: DEFAULT_SCHEMA.to_string(),
            pool_size: DEFAULT_POOL_SIZE,
            vacuum_every: DEFAULT_VACUUM_EVERY,
        }
    }
}

impl PostgresOptions {
    /// Splits a store URL into the driver's options and wrangle's (`schema`, `pool_size`,
    /// `vacuum_every`).
    pub fn from_url(url: &str) -> Result<(PgConnectOptions, PostgresOptions), StoreError> {
        let mut options = PostgresOptions::default();
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut driver_params = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("schema", value)) => options.schema = value.to_string(),
                Some(("pool_size", value)) => {
                    options.pool_size = value.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                        StoreError::InvalidRequest(format!(
                            "pool_size must be a positive number, not '{value}'"
                        ))
                    })?;
                }
                Some(("vacuum_every", value)) => {
                    options.vacuum_every = value.replace('_', "").parse().map_err(|_| {
                        StoreError::InvalidRequest(format!(
                            "vacuum_every must be a number of tasks (0: never), not '{value}'"
                        ))
                    })?;
                }
                _ => driver_params.push(pair),
            }
        }
        options.validate()?;
        let driver_url = if driver_params.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", driver_params.join("&"))
        };
        let connect = PgConnectOptions::from_str(&driver_url)
            .map_err(|e| StoreError::InvalidRequest(format!("invalid PostgreSQL URL: {e}")))?;
        Ok((connect, options))
    }

    /// Checks the schema name, which is spliced into SQL (quoted) and into the channel name.
    pub fn validate(&self) -> Result<(), StoreError> {
        let schema = &self.schema;
        let valid = !schema.is_empty()
            && schema.len() <= MAX_SCHEMA_LEN
            && !schema.starts_with(|c: char| c.is_ascii_digit())
            && schema
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if valid {
            Ok(())
        } else {
            Err(StoreError::InvalidRequest(format!(
                "invalid schema name '{schema}': use lowercase letters, digits and _ \
                 (not first), at most {MAX_SCHEMA_LEN} characters"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrangle_options_are_taken_out_of_the_url() {
        let (connect, options) = PostgresOptions::from_url(
            "postgres://u@h:5433/db?schema=jobs_1&sslmode=disable&pool_size=3&vacuum_every=0",
        )
        .unwrap();
        assert_eq!(
            options,
            PostgresOptions {
                schema: "jobs_1".into(),
                pool_size: 3,
                vacuum_every: 0,
            }
        );
        assert_eq!(connect.get_port(), 5433);
        assert_eq!(connect.get_database(), Some("db"));
    }

    #[test]
    fn defaults_apply_without_options() {
        let (_, options) = PostgresOptions::from_url("postgres://u@h/db").unwrap();
        assert_eq!(options, PostgresOptions::default());
    }

    #[test]
    fn bad_options_are_invalid_requests() {
        for url in [
            "postgres://h/db?schema=Bad-Name",
            "postgres://h/db?schema=1x",
            "postgres://h/db?schema=",
            "postgres://h/db?pool_size=0",
            "postgres://h/db?pool_size=many",
            "postgres://h/db?vacuum_every=-1",
        ] {
            assert!(
                matches!(
                    PostgresOptions::from_url(url),
                    Err(StoreError::InvalidRequest(_))
                ),
                "{url}"
            );
        }
    }
}
