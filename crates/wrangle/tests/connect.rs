//! `wrangle::connect_with`: `Open::Existing` creates no SQLite file or directory and tells
//! a missing store apart (`StoreError::NoStore`), `Open::Create` (what `connect` does) makes
//! one; malformed store options are bad input naming the URL without its password; and a
//! server store that is down or never answers fails within the connect timeout with the
//! same line on every store (the causes only a running server gives are tested in each
//! store's `tests/connect.rs`).

use std::time::{Duration, Instant};

use wrangle::{ConnectError, Open, StoreError};
use wrangle_testkit::{SilentPort, closed_port};

/// The server stores, with a URL of each for `127.0.0.1:PORT` and a password in it.
const SERVER_STORES: [(&str, &str); 3] = [
    ("postgres", "postgres://u:s3cret-Pa55@127.0.0.1:PORT/db"),
    ("mysql", "mysql://u:s3cret-Pa55@127.0.0.1:PORT/db"),
    ("redis", "redis://u:s3cret-Pa55@127.0.0.1:PORT/"),
];

/// The error of connecting to `url`, which must fail.
async fn connect_error(url: &str) -> ConnectError {
    match wrangle::connect_with(url, Open::Existing).await {
        Ok(_) => panic!("{url}: connected"),
        Err(err) => err,
    }
}

#[tokio::test]
async fn unreachable_servers_fail_within_the_connect_timeout_in_one_line() {
    for (kind, url) in SERVER_STORES {
        // Nothing listens: refused at once, and worth trying again later.
        let port = closed_port().unwrap();
        let started = Instant::now();
        let err = connect_error(&url.replace("PORT", &port.to_string())).await;
        assert_eq!(
            err.to_string(),
            format!("cannot connect to {kind} at 127.0.0.1:{port}: connection refused")
        );
        assert!(
            matches!(&err, ConnectError::Store(e @ StoreError::Connect(_)) if e.is_transient()),
            "{err:?}"
        );
        assert!(!format!("{err:?}").contains("s3cret"), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(3), "{kind}");

        // Accepted but never answered: timed out after the URL's connect_timeout.
        let silent = SilentPort::bind().unwrap();
        let url = url.replace("PORT", &silent.port().to_string());
        let started = Instant::now();
        let err = connect_error(&format!("{url}?connect_timeout=300ms")).await;
        assert_eq!(
            err.to_string(),
            format!(
                "cannot connect to {kind} at 127.0.0.1:{}: timed out after 300ms",
                silent.port()
            )
        );
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(300) && waited < Duration::from_secs(3),
            "{kind}: {waited:?}"
        );
    }
    assert_eq!(
        wrangle::connect::DEFAULT_CONNECT_TIMEOUT,
        Duration::from_secs(5)
    );
}

#[tokio::test]
async fn open_existing_creates_nothing_and_create_does() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("nonexistent").join("dir").join("x.db");
    let url = format!("sqlite://{}", path.display());
    match wrangle::connect_with(&url, Open::Existing).await {
        Err(ConnectError::Store(StoreError::NoStore(at))) => {
            assert_eq!(at, path.display().to_string());
        }
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("opened a missing store"),
    }
    assert!(
        !tmp.path().join("nonexistent").exists(),
        "a directory was made"
    );

    let store = wrangle::connect(&url).await.unwrap();
    assert!(path.is_file());
    drop(store);
    let store = wrangle::connect_with(&format!("{url}?synchronous=normal"), Open::Existing)
        .await
        .unwrap();
    assert!(store.list_jobs().await.unwrap().is_empty());

    // A memory store keeps nothing anywhere: it opens either way.
    wrangle::connect_with("memory://", Open::Existing)
        .await
        .unwrap();
}

#[tokio::test]
async fn malformed_options_are_bad_input_without_the_password() {
    let secret = "s3cret-Pa55";
    for url in [
        format!("postgres://u:{secret}@127.0.0.1:1/db?pool_size=0"),
        format!("mysql://u:{secret}@127.0.0.1:1/db?connect_timeout=never"),
        format!("redis://u:{secret}@127.0.0.1:1/?prefix={{x}}"),
    ] {
        match wrangle::connect(&url).await {
            Err(ConnectError::Url(err)) => {
                let message = err.to_string();
                assert!(message.starts_with("invalid store URL '"), "{message}");
                assert!(message.contains("u:***@127.0.0.1:1"), "{message}");
                assert!(!message.contains(secret), "{message}");
            }
            Err(other) => panic!("{url}: {other:?}"),
            Ok(_) => panic!("{url}: connected"),
        }
    }
}
