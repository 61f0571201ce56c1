//! Connecting: wrangle's own URL options ([`MySqlOptions`], taken out of the query before
//! sqlx parses the rest), a store handle's first connection, opened within the connect
//! timeout with sqlx's errors turned into the one-line wording every store shares
//! ([`ConnectFailure`]), and where a store is, for messages (never with the password).
//!
//! The handle migrates (or checks) the schema on that first connection; its pool connects
//! lazily, so a server that cannot be reached is reported from here, with its cause,
//! rather than as a pool timeout.
//!
//! TLS is the driver's (rustls): `ssl-mode` and `ssl-ca` stay in the URL for sqlx. A CA
//! file that cannot be read fails before connecting, naming the file.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlDatabaseError};
use sqlx::{Connection, MySqlConnection};
use wrangle_core::connect::{
    ConnectCause, ConnectFailure, DEFAULT_CONNECT_TIMEOUT, Open, parse_connect_timeout, tls_cause,
    within,
};
use wrangle_core::store::StoreError;

/// The store's name in messages.
const STORE: &str = "mysql";

/// The URL option naming a CA file, for the hint of an untrusted certificate.
const CA_OPTION: &str = "ssl-ca";

/// MySQL / MariaDB error numbers of a refused connection.
mod code {
    /// ER_ACCESS_DENIED_ERROR: wrong user or password.
    pub const ACCESS_DENIED: u16 = 1045;
    /// ER_BAD_DB_ERROR: unknown database.
    pub const BAD_DB: u16 = 1049;
}

/// wrangle's own connection options; the rest of the URL is sqlx's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MySqlOptions {
    /// Longest time connecting may take (TCP, TLS, authentication), and longest wait of an
    /// operation for a pooled connection; URL option `connect_timeout` (default 5 s).
    pub connect_timeout: Duration,
    /// Whether missing tables are created and an older schema migrated ([`Open::Create`]),
    /// or only a current one opened ([`Open::Existing`]). Not a URL option.
    pub open: Open,
}

impl Default for MySqlOptions {
    fn default() -> Self {
        MySqlOptions {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            open: Open::Create,
        }
    }
}

impl MySqlOptions {
    /// Splits a store URL into the driver's options and wrangle's (`connect_timeout`).
    /// Fails with a connect error naming the file when `ssl-ca` names one that cannot be
    /// read.
    pub fn from_url(url: &str) -> Result<(MySqlConnectOptions, MySqlOptions), StoreError> {
        let mut options = MySqlOptions::default();
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut driver_params = Vec::new();
        let mut ca = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("connect_timeout", value)) => {
                    options.connect_timeout = parse_connect_timeout(value)?;
                }
                Some(("ssl-ca" | "sslca", value)) => {
                    ca = Some(value);
                    driver_params.push(pair);
                }
                _ => driver_params.push(pair),
            }
        }
        let driver_url = if driver_params.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", driver_params.join("&"))
        };
        let connect = MySqlConnectOptions::from_str(&driver_url)
            .map_err(|e| StoreError::InvalidRequest(format!("invalid MySQL URL: {e}")))?;
        // A %-escaped path is the driver's to decode (and to report if missing).
        if let Some(path) = ca.filter(|path| !path.contains('%'))
            && let Err(e) = std::fs::File::open(Path::new(path))
        {
            let cause = ConnectCause::CaFile {
                path: path.to_string(),
                error: e.to_string(),
            };
            return Err(failure(&connect, cause));
        }
        Ok((connect, options))
    }
}

/// A connect error for the server `connect` points at.
pub(crate) fn failure(connect: &MySqlConnectOptions, cause: ConnectCause) -> StoreError {
    let failure = match connect.get_socket() {
        Some(socket) => ConnectFailure {
            store: STORE,
            address: socket.display().to_string(),
            cause,
        },
        None => ConnectFailure::tcp(STORE, connect.get_host(), connect.get_port(), cause),
    };
    StoreError::Connect(failure)
}

/// Opens one connection to the server within `timeout`.
pub(crate) async fn first_connection(
    connect: &MySqlConnectOptions,
    timeout: Duration,
) -> Result<MySqlConnection, StoreError> {
    let connecting = MySqlConnection::connect_with(connect);
    within(timeout, connecting, |err| cause(err, connect, timeout))
        .await
        .map_err(|cause| failure(connect, cause))
}

/// Why connecting failed, in the shared words.
fn cause(err: &sqlx::Error, connect: &MySqlConnectOptions, timeout: Duration) -> ConnectCause {
    if let Some(tls) = tls_cause(err, CA_OPTION) {
        return tls;
    }
    match err {
        sqlx::Error::Io(io) => {
            ConnectCause::from_io(io, timeout).unwrap_or_else(|| ConnectCause::other(io))
        }
        sqlx::Error::Tls(reason) => ConnectCause::Tls(reason.to_string()),
        sqlx::Error::Database(db) => match db
            .try_downcast_ref::<MySqlDatabaseError>()
            .map(MySqlDatabaseError::number)
        {
            Some(code::ACCESS_DENIED) => ConnectCause::Authentication {
                user: connect.get_username().to_string(),
            },
            Some(code::BAD_DB) => {
                ConnectCause::NoDatabase(connect.get_database().unwrap_or_default().to_string())
            }
            _ => ConnectCause::other(db.message()),
        },
        other => ConnectCause::other(other),
    }
}

/// Where the store is, as [`StoreError::NoStore`] and upgrade refusals name it:
/// `mysql://HOST:PORT/DATABASE`, without user or password.
pub(crate) fn store_at(connect: &MySqlConnectOptions) -> String {
    let server = match connect.get_socket() {
        Some(socket) => socket.display().to_string(),
        None => format!("{}:{}", connect.get_host(), connect.get_port()),
    };
    format!(
        "mysql://{server}/{}",
        connect.get_database().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrangle_options_are_taken_out_of_the_url() {
        let (connect, options) =
            MySqlOptions::from_url("mysql://u@h:3307/db?connect_timeout=2s&ssl-mode=DISABLED")
                .unwrap();
        assert_eq!(options.connect_timeout, Duration::from_secs(2));
        assert_eq!(options.open, Open::Create);
        assert_eq!(connect.get_port(), 3307);
        assert_eq!(connect.get_database(), Some("db"));
        assert!(matches!(
            connect.get_ssl_mode(),
            sqlx::mysql::MySqlSslMode::Disabled
        ));
        let (_, options) = MySqlOptions::from_url("mysql://u@h/db").unwrap();
        assert_eq!(options, MySqlOptions::default());
        for bad in [
            "mysql://h/db?connect_timeout=0",
            "mysql://h/db?connect_timeout=x",
        ] {
            assert!(
                matches!(
                    MySqlOptions::from_url(bad),
                    Err(StoreError::InvalidRequest(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_unreadable_ca_file_is_named() {
        let err =
            MySqlOptions::from_url("mysql://u@h/db?ssl-mode=VERIFY_CA&ssl-ca=/nonexistent/ca.pem")
                .unwrap_err()
                .to_string();
        assert_eq!(
            err,
            "cannot connect to mysql at h:3306: cannot read the CA file /nonexistent/ca.pem: \
             No such file or directory (os error 2)"
        );
    }
}
