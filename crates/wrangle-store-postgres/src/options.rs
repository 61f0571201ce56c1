//! What the store URL configures: the driver's own options (host, user, `sslmode`, …),
//! which sqlx parses, plus wrangle's, which are taken out of the query string first:
//!
//! - `schema=NAME`: the PostgreSQL schema holding wrangle's tables (default `wrangle`),
//!   so that several wrangle deployments (or test cases) can share one database;
//! - `pool_size=N`: most connections the store opens (default 10), besides the one it
//!   keeps for LISTEN;
//! - `vacuum_every=N`: VACUUM the tasks table after every N tasks this handle claimed
//!   (default 50,000; 0 leaves it to autovacuum; see the `vacuum` module);
//! - `connect_timeout=DURATION`: how long connecting may take, and how long an operation
//!   waits for a pooled connection (default 5 s).
//!
//! TLS is the driver's: `sslmode` and `sslrootcert` stay in the URL for sqlx (rustls),
//! with libpq's rule added that `sslmode=require` with a `sslrootcert` verifies the
//! certificate as `verify-ca` does; and a CA file that cannot be read fails here, before
//! connecting, with the file named.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgSslMode};
use wrangle_core::connect::{ConnectCause, DEFAULT_CONNECT_TIMEOUT, Open, parse_connect_timeout};
use wrangle_core::store::StoreError;

use crate::connect::failure;
use crate::vacuum::DEFAULT_VACUUM_EVERY;

/// The schema used when the URL names none.
pub const DEFAULT_SCHEMA: &str = "wrangle";

/// Connections in the pool when the URL does not say. A worker's hot path needs fewer
/// (`bench/stores.sh --store postgres --worker-query pool_size=2`: 3 connections per worker
/// with its listener, as fast as with 10), but with a pool that small, calls during a
/// server outage wait for a connection instead of failing, and a worker rides out a short
/// outage without noticing it; the chaos tests expect it to notice, so the default stays
/// until that is settled.
pub const DEFAULT_POOL_SIZE: u32 = 10;

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
    /// Longest time connecting may take (TCP, TLS, authentication), and longest wait of an
    /// operation for a pooled connection, after which it fails as unavailable.
    pub connect_timeout: Duration,
    /// Whether a missing schema is created and an older one migrated ([`Open::Create`]),
    /// or only a current one opened ([`Open::Existing`]). Not a URL option.
    pub open: Open,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            schema: DEFAULT_SCHEMA.to_string(),
            pool_size: DEFAULT_POOL_SIZE,
            vacuum_every: DEFAULT_VACUUM_EVERY,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            open: Open::Create,
        }
    }
}

impl PostgresOptions {
    /// Splits a store URL into the driver's options and wrangle's (`schema`, `pool_size`,
    /// `vacuum_every`, `connect_timeout`). Fails with a connect error naming the file when
    /// `sslrootcert` names one that cannot be read.
    pub fn from_url(url: &str) -> Result<(PgConnectOptions, PostgresOptions), StoreError> {
        let mut options = PostgresOptions::default();
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut driver_params = Vec::new();
        let mut root_cert = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("schema", value)) => options.schema = value.to_string(),
                Some(("connect_timeout", value)) => {
                    options.connect_timeout = parse_connect_timeout(value)?;
                }
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
                Some(("sslrootcert" | "ssl-root-cert" | "ssl-ca", value)) => {
                    root_cert = Some(value);
                    driver_params.push(pair);
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
        let mut connect = PgConnectOptions::from_str(&driver_url)
            .map_err(|e| StoreError::InvalidRequest(format!("invalid PostgreSQL URL: {e}")))?;
        if let Some(path) = root_cert {
            // A %-escaped path is the driver's to decode (and to report if missing).
            if !path.contains('%')
                && let Err(e) = std::fs::File::open(Path::new(path))
            {
                let cause = ConnectCause::CaFile {
                    path: path.to_string(),
                    error: e.to_string(),
                };
                return Err(failure(&connect, cause));
            }
            // libpq's rule: with a root certificate, `require` verifies the chain.
            if matches!(connect.get_ssl_mode(), PgSslMode::Require) {
                connect = connect.ssl_mode(PgSslMode::VerifyCa);
            }
        }
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
                ..PostgresOptions::default()
            }
        );
        assert_eq!(connect.get_port(), 5433);
        assert_eq!(connect.get_database(), Some("db"));
        assert!(matches!(connect.get_ssl_mode(), PgSslMode::Disable));
        let (_, options) =
            PostgresOptions::from_url("postgres://u@h/db?connect_timeout=250ms").unwrap();
        assert_eq!(options.connect_timeout, Duration::from_millis(250));
    }

    #[test]
    fn a_root_certificate_makes_require_verify() {
        let ca =
            std::env::temp_dir().join(format!("wrangle-pg-options-{}.pem", std::process::id()));
        std::fs::write(&ca, "not checked before connecting").unwrap();
        let url = format!(
            "postgres://u@h/db?sslmode=require&sslrootcert={}",
            ca.display()
        );
        let (connect, _) = PostgresOptions::from_url(&url).unwrap();
        assert!(matches!(connect.get_ssl_mode(), PgSslMode::VerifyCa));
        let url = format!(
            "postgres://u@h/db?sslmode=verify-full&sslrootcert={}",
            ca.display()
        );
        let (connect, _) = PostgresOptions::from_url(&url).unwrap();
        assert!(matches!(connect.get_ssl_mode(), PgSslMode::VerifyFull));
        std::fs::remove_file(&ca).unwrap();
        let err = PostgresOptions::from_url(&url).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "cannot connect to postgres at h:5432: cannot read the CA file {}: No such file \
                 or directory (os error 2)",
                ca.display()
            )
        );
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
            "postgres://h/db?connect_timeout=0",
            "postgres://h/db?connect_timeout=soon",
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
