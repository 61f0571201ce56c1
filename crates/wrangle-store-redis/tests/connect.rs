//! The connection layer against real servers: `rediss://` (verified with the server's CA
//! file from the URL, and refused without it), the one-line connect errors a server gives
//! (wrong password, unknown database, TLS; refused and timed out connections are checked
//! for every store in `crates/wrangle/tests/connect.rs`), passwords kept out of errors and
//! `Debug`, and `Open::Existing`, which writes nothing.

use std::time::Duration;

use chrono::Utc;
use redis::AsyncCommands;
use wrangle_conformance::support::round_trip;
use wrangle_core::{Store, StoreError, Topic};
use wrangle_store_redis::RedisStore;
use wrangle_testkit::{RedisServer, or_skip};

/// The connect error of `url`, which must fail.
async fn connect_error(url: &str) -> StoreError {
    match RedisStore::connect(url).await {
        Ok(_) => panic!("connecting to {url} succeeded"),
        Err(err) => err,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_verifies_the_server_with_its_ca_and_refuses_it_without() {
    let Some(server) = or_skip(RedisServer::start_tls()) else {
        return;
    };
    let ca = server.ca_file().expect("a TLS server has a CA file");
    let port = server.port();
    assert!(server.url().starts_with("rediss://"), "{}", server.url());

    let url = format!("{}?ca_file={}&prefix=tls", server.url(), ca.display());
    let store = RedisStore::connect(&url).await.unwrap();
    // The pub/sub connection of wake-ups goes over TLS with the same CA.
    let mut woken = store.listen(Topic::Tasks).await.unwrap();
    round_trip(&store).await.unwrap();
    assert!(
        woken.wait(Duration::from_secs(5)).await.unwrap(),
        "no wake-up"
    );

    // Without the CA the system's roots do not know this server's authority.
    let err = connect_error(&server.url()).await;
    assert!(matches!(err, StoreError::Connect(_)), "{err:?}");
    assert!(!err.is_transient(), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "cannot connect to redis at 127.0.0.1:{port}: TLS handshake failed: the server's \
             certificate is not signed by a trusted certificate authority (give the CA \
             certificate that signed it with ca_file=FILE)"
        )
    );

    let err = connect_error(&format!("{}?ca_file=/nonexistent/ca.pem", server.url())).await;
    assert_eq!(
        err.to_string(),
        format!(
            "cannot connect to redis at 127.0.0.1:{port}: cannot read the CA file \
             /nonexistent/ca.pem: No such file or directory (os error 2)"
        )
    );
    let plain = format!("redis://127.0.0.1:{port}/?ca_file={}", ca.display());
    let err = connect_error(&plain).await;
    assert!(
        matches!(&err, StoreError::InvalidRequest(m) if m.contains("ca_file needs a rediss:// URL")),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_refusals_name_the_user_or_database_and_never_the_password() {
    let Some(server) = or_skip(RedisServer::start()) else {
        return;
    };
    let port = server.port();
    let err = connect_error(&format!("redis://127.0.0.1:{port}/99")).await;
    assert_eq!(
        err.to_string(),
        format!("cannot connect to redis at 127.0.0.1:{port}: database \"99\" does not exist")
    );
    // TLS to a server that does not speak it: Redis reads the ClientHello as an inline
    // command, answering it with an error (which rustls rejects) only if a newline happens
    // to be among its random bytes, and otherwise waiting for one until the timeout.
    let err = connect_error(&format!("rediss://127.0.0.1:{port}/?connect_timeout=500ms")).await;
    let message = err.to_string();
    let cause = message
        .strip_prefix(&format!("cannot connect to redis at 127.0.0.1:{port}: "))
        .unwrap_or_else(|| panic!("{message}"));
    assert!(
        cause == "timed out after 500ms" || cause.starts_with("TLS handshake failed: "),
        "{message}"
    );

    let right = "right-horse-battery";
    let client = redis::Client::open(server.url()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg(right)
        .query_async(&mut raw)
        .await
        .unwrap();

    let wrong = "Wr0ng-Staple-Secret";
    for url in [
        format!("redis://:{wrong}@127.0.0.1:{port}/"),
        format!("redis://default:{wrong}@127.0.0.1:{port}/"),
        // No password at all.
        format!("redis://127.0.0.1:{port}/"),
    ] {
        let err = connect_error(&url).await;
        assert_eq!(
            err.to_string(),
            format!(
                "cannot connect to redis at 127.0.0.1:{port}: authentication failed for user 'default'"
            ),
            "{url}"
        );
        assert!(!format!("{err:?}").contains(wrong), "{err:?}");
    }

    let store = RedisStore::connect(&format!("redis://:{right}@127.0.0.1:{port}/"))
        .await
        .unwrap();
    round_trip(&store).await.unwrap();
    assert!(!format!("{store:?}").contains(right), "{store:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_an_existing_store_writes_nothing() {
    let Some(server) = or_skip(RedisServer::start()) else {
        return;
    };
    let client = redis::Client::open(server.url()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let url = format!("{}?prefix=absent", server.url());
    let err = match RedisStore::connect_existing(&url).await {
        Ok(_) => panic!("opened a store that does not exist"),
        Err(err) => err,
    };
    assert!(matches!(&err, StoreError::NoStore(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "no wrangle store at redis://127.0.0.1:{}/0 (prefix \"absent\") (a store is \
             created by the first program that opens it to write, such as a worker or a \
             submit)",
            server.port()
        )
    );
    let keys: usize = redis::cmd("DBSIZE").query_async(&mut raw).await.unwrap();
    assert_eq!(keys, 0, "keys were written");

    let created = RedisStore::connect(&url).await.unwrap();
    round_trip(&created).await.unwrap();
    let existing = RedisStore::connect_existing(&url).await.unwrap();
    assert_eq!(existing.queue_stats(Utc::now()).await.unwrap().len(), 1);

    // A store from before numbered layouts (tasks, no layout key) is refused, not
    // upgraded: upgrading is a write.
    let _: () = raw.set("{old}:ids", 5).await.unwrap();
    let old = format!("{}?prefix=old", server.url());
    let err = RedisStore::connect_existing(&old)
        .await
        .map(drop)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("is at version 1, older than this wrangle's 3"),
        "{err}"
    );
    let layout: Option<String> = raw.get("{old}:layout").await.unwrap();
    assert_eq!(layout, None, "the layout was written");
}
