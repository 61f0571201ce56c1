//! A store handle's first connection: opened within the connect timeout, with sqlx's
//! errors turned into the one-line wording every store shares ([`ConnectFailure`]), and
//! where a store is, for messages (never with the password).
//!
//! The handle migrates (or checks) its schema on this connection and then closes it; its
//! pool connects lazily, so a server that cannot be reached is reported from here, with
//! its cause, rather than as a pool timeout.

use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use wrangle_core::connect::{ConnectCause, ConnectFailure, tls_cause, within};
use wrangle_core::store::StoreError;

/// The store's name in messages.
const STORE: &str = "postgres";

/// The URL option naming a CA file, for the hint of an untrusted certificate.
const CA_OPTION: &str = "sslrootcert";

/// A connect error for the server `connect` points at.
pub(crate) fn failure(connect: &PgConnectOptions, cause: ConnectCause) -> StoreError {
    let failure = match connect.get_socket() {
        Some(dir) => ConnectFailure {
            store: STORE,
            address: dir.display().to_string(),
            cause,
        },
        None => ConnectFailure::tcp(STORE, connect.get_host(), connect.get_port(), cause),
    };
    StoreError::Connect(failure)
}

/// Opens one connection to the server within `timeout`.
pub(crate) async fn first_connection(
    connect: &PgConnectOptions,
    timeout: Duration,
) -> Result<PgConnection, StoreError> {
    let connecting = PgConnection::connect_with(connect);
    within(timeout, connecting, |err| cause(err, connect, timeout))
        .await
        .map_err(|cause| failure(connect, cause))
}

/// Why connecting failed, in the shared words.
fn cause(err: &sqlx::Error, connect: &PgConnectOptions, timeout: Duration) -> ConnectCause {
    if let Some(tls) = tls_cause(err, CA_OPTION) {
        return tls;
    }
    match err {
        sqlx::Error::Io(io) => {
            ConnectCause::from_io(io, timeout).unwrap_or_else(|| ConnectCause::other(io))
        }
        sqlx::Error::Tls(reason) => ConnectCause::Tls(reason.to_string()),
        sqlx::Error::Database(db) => match db.code().as_deref() {
            // invalid_password; with trust or peer auth a wrong role is 28000, whose
            // message ("role "x" does not exist") says more than a generic line would.
            Some("28P01") => ConnectCause::Authentication {
                user: connect.get_username().to_string(),
            },
            // invalid_catalog_name; without a database in the URL the server used the
            // user's name.
            Some("3D000") => ConnectCause::NoDatabase(
                connect
                    .get_database()
                    .unwrap_or(connect.get_username())
                    .to_string(),
            ),
            _ => ConnectCause::other(db.message()),
        },
        other => ConnectCause::other(other),
    }
}

/// Where the store of `schema` is, as [`StoreError::NoStore`] and upgrade refusals name it:
/// `postgres://HOST:PORT/DATABASE (schema "NAME")`, without user or password.
pub(crate) fn store_at(connect: &PgConnectOptions, schema: &str) -> String {
    let database = connect
        .get_database()
        .unwrap_or(connect.get_username())
        .to_string();
    let server = match connect.get_socket() {
        Some(dir) => dir.display().to_string(),
        None => format!("{}:{}", connect.get_host(), connect.get_port()),
    };
    format!("postgres://{server}/{database} (schema \"{schema}\")")
}
