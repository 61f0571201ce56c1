//! Connecting: the Redis client for a URL (with TLS for `rediss://`, verified against the
//! system's roots or the `ca_file` of the URL), a first connection opened within the
//! connect timeout with redis-rs's errors turned into the one-line wording every store
//! shares ([`ConnectFailure`]), and where a store is, for messages (never with the
//! password).
//!
//! The first connection is what [`RedisStore::connect_with`](crate::RedisStore::connect_with)
//! checks the key layout on; the store's own multiplexed, reconnecting connection is
//! opened after it succeeded.

use std::path::Path;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{
    AsyncConnectionConfig, Client, ConnectionAddr, ErrorKind, RedisError, TlsCertificates,
};
use wrangle_core::connect::{ConnectCause, ConnectFailure, tls_cause, within};
use wrangle_core::parse::redact_url;
use wrangle_core::store::StoreError;

/// The store's name in messages.
const STORE: &str = "redis";

/// The URL option naming a CA file, for the hint of an untrusted certificate.
const CA_OPTION: &str = "ca_file";

/// The client for `url` (a Redis URL without wrangle's options). `ca_file`, for a
/// `rediss://` URL, replaces the system's roots with the certificates in that file.
pub(crate) fn client(url: &str, ca_file: Option<&Path>) -> Result<Client, StoreError> {
    let invalid = |e: RedisError| {
        StoreError::InvalidRequest(format!("invalid redis URL '{}': {e}", redact_url(url)))
    };
    let tls = url.starts_with("rediss://");
    if tls {
        // The same provider the SQL stores use through sqlx, installed for the process
        // (the first install wins, later ones are no-ops) so that redis-rs's
        // `ClientConfig::builder()` never has to pick one.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let Some(ca_file) = ca_file else {
        return Client::open(url).map_err(invalid);
    };
    if !tls {
        return Err(StoreError::InvalidRequest(format!(
            "{CA_OPTION} needs a rediss:// URL (TLS), not '{}'",
            redact_url(url)
        )));
    }
    let plain = Client::open(url).map_err(invalid)?;
    let root_cert = std::fs::read(ca_file).map_err(|e| {
        let cause = ConnectCause::CaFile {
            path: ca_file.display().to_string(),
            error: e.to_string(),
        };
        failure(&plain, cause)
    })?;
    let certificates = TlsCertificates {
        client_tls: None,
        root_cert: Some(root_cert),
    };
    Client::build_with_tls(url, certificates).map_err(|e| {
        failure(
            &plain,
            ConnectCause::Tls(format!("cannot use the CA file {}: {e}", ca_file.display())),
        )
    })
}

/// A connect error for the server `client` points at.
pub(crate) fn failure(client: &Client, cause: ConnectCause) -> StoreError {
    let failure = match client.get_connection_info().addr() {
        ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => {
            ConnectFailure::tcp(STORE, host, *port, cause)
        }
        ConnectionAddr::Unix(path) => ConnectFailure {
            store: STORE,
            address: path.display().to_string(),
            cause,
        },
        other => ConnectFailure {
            store: STORE,
            address: other.to_string(),
            cause,
        },
    };
    StoreError::Connect(failure)
}

/// Opens one connection and sends it a `PING` (which is where a server that wants a
/// password says so), all within `timeout`.
pub(crate) async fn first_connection(
    client: &Client,
    timeout: Duration,
) -> Result<MultiplexedConnection, StoreError> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout));
    let connect = async {
        let mut connection = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        redis::cmd("PING")
            .query_async::<()>(&mut connection)
            .await?;
        Ok::<_, RedisError>(connection)
    };
    within(timeout, connect, |err| cause(err, client, timeout))
        .await
        .map_err(|cause| failure(client, cause))
}

/// Why connecting failed, in the shared words.
fn cause(err: &RedisError, client: &Client, timeout: Duration) -> ConnectCause {
    if let Some(tls) = tls_cause(err, CA_OPTION) {
        return tls;
    }
    let settings = client.get_connection_info().redis_settings();
    let user = || settings.username().unwrap_or("default").to_string();
    if err.is_connection_refusal() {
        return ConnectCause::Refused;
    }
    if err.is_timeout() {
        return ConnectCause::TimedOut(timeout);
    }
    match err.kind() {
        ErrorKind::AuthenticationFailed => ConnectCause::Authentication { user: user() },
        // A server with a password answers the first command without one so.
        _ if err.code() == Some("NOAUTH") => ConnectCause::Authentication { user: user() },
        // `SELECT n` beyond the server's `databases` (redis-rs: "refused to switch
        // database", with the server's "DB index is out of range").
        _ if err.to_string().contains("refused to switch database") => {
            ConnectCause::NoDatabase(settings.db().to_string())
        }
        _ => ConnectCause::other(err),
    }
}

/// Where the store under `prefix` is, as [`StoreError::NoStore`] and upgrade refusals name
/// it: `redis://HOST:PORT/DB (prefix "NAME")`, without user or password.
pub(crate) fn store_at(client: &Client, prefix: &str) -> String {
    let info = client.get_connection_info();
    let db = info.redis_settings().db();
    let server = match info.addr() {
        ConnectionAddr::Tcp(host, port) => format!("redis://{host}:{port}/{db}"),
        ConnectionAddr::TcpTls { host, port, .. } => format!("rediss://{host}:{port}/{db}"),
        other => format!("{other} db {db}"),
    };
    format!("{server} (prefix \"{prefix}\")")
}
