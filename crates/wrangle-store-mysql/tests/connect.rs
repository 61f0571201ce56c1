//! The connection layer against real MariaDB servers: TLS (verified with the server's CA
//! file, and refused without it), the one-line connect errors a server gives (wrong
//! password, unknown database, TLS; refused and timed out connections are checked for
//! every store in `crates/wrangle/tests/connect.rs`), passwords kept out of errors and
//! `Debug`, and `Open::Existing`, which creates nothing.

use std::sync::OnceLock;

use chrono::Utc;
use sqlx::{Connection, MySqlConnection};
use wrangle_conformance::support::round_trip;
use wrangle_core::{Store, StoreError};
use wrangle_store_mysql::MySqlStore;
use wrangle_testkit::{MariaDbServer, or_skip};

/// The plain server the tests without TLS share (`None` where servers may be skipped and
/// none starts). Kept in a static: the testkit's watchdog stops it when the process ends.
fn plain_server() -> Option<&'static MariaDbServer> {
    static SERVER: OnceLock<Option<MariaDbServer>> = OnceLock::new();
    SERVER
        .get_or_init(|| or_skip(MariaDbServer::start()))
        .as_ref()
}

/// The connect error of `url`, which must fail.
async fn connect_error(url: &str) -> StoreError {
    match MySqlStore::connect(url).await {
        Ok(_) => panic!("connecting to {url} succeeded"),
        Err(err) => err,
    }
}

/// Runs `sql` as root in the database `wrangle`.
async fn admin(db: &MariaDbServer, sql: &str) {
    let mut conn = MySqlConnection::connect(&db.url()).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&mut conn)
        .await
        .unwrap();
}

/// How many tables the database `database` has.
async fn tables(db: &MariaDbServer, database: &str) -> i64 {
    let mut conn = MySqlConnection::connect(&db.url()).await.unwrap();
    sqlx::query_scalar("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ?")
        .bind(database)
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_verifies_the_server_with_its_ca_and_refuses_it_without() {
    let Some(db) = or_skip(MariaDbServer::start_tls()) else {
        return;
    };
    let ca = db.ca_file().expect("a TLS server has a CA file");
    let port = db.port();
    // A user the server lets in over TLS only: the store working as it proves TLS.
    admin(
        &db,
        "CREATE USER 'secure'@'%' REQUIRE SSL; GRANT ALL ON wrangle.* TO 'secure'@'%'",
    )
    .await;
    let base = format!("mysql://secure@127.0.0.1:{port}/wrangle");
    for mode in ["VERIFY_IDENTITY", "VERIFY_CA"] {
        let url = format!("{base}?ssl-mode={mode}&ssl-ca={}", ca.display());
        let store = MySqlStore::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("{mode}: {e}"));
        if mode == "VERIFY_IDENTITY" {
            round_trip(&store).await.unwrap();
        }
    }
    let err = connect_error(&format!("{base}?ssl-mode=DISABLED")).await;
    assert!(
        err.to_string()
            .ends_with("authentication failed for user 'secure'"),
        "{err}"
    );

    for mode in ["VERIFY_IDENTITY", "VERIFY_CA"] {
        let err = connect_error(&format!("{base}?ssl-mode={mode}")).await;
        assert!(matches!(err, StoreError::Connect(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "cannot connect to mysql at 127.0.0.1:{port}: TLS handshake failed: the \
                 server's certificate is not signed by a trusted certificate authority (give \
                 the CA certificate that signed it with ssl-ca=FILE)"
            )
        );
    }
    // REQUIRED encrypts without verifying.
    MySqlStore::connect(&format!("{base}?ssl-mode=REQUIRED"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_refusals_name_the_user_or_database_and_never_the_password() {
    let Some(db) = plain_server() else {
        return;
    };
    let port = db.port();
    let right = "right-horse-battery";
    admin(
        db,
        &format!(
            "CREATE DATABASE app; CREATE USER 'app'@'%' IDENTIFIED BY '{right}'; \
             GRANT ALL ON app.* TO 'app'@'%'"
        ),
    )
    .await;

    let wrong = "Wr0ng-Staple-Secret";
    let err = connect_error(&format!("mysql://app:{wrong}@127.0.0.1:{port}/app")).await;
    assert_eq!(
        err.to_string(),
        format!(
            "cannot connect to mysql at 127.0.0.1:{port}: authentication failed for user 'app'"
        )
    );
    assert!(!format!("{err:?}").contains(wrong), "{err:?}");

    let err = connect_error(&format!("mysql://root@127.0.0.1:{port}/nosuchdb")).await;
    assert_eq!(
        err.to_string(),
        format!(
            "cannot connect to mysql at 127.0.0.1:{port}: database \"nosuchdb\" does not exist"
        )
    );

    let err = connect_error(&format!("{}?ssl-mode=REQUIRED", db.url())).await;
    assert_eq!(
        err.to_string(),
        format!(
            "cannot connect to mysql at 127.0.0.1:{port}: TLS handshake failed: server does \
             not support TLS"
        )
    );

    // With the right password the store works, and its Debug output hides the password.
    let store = MySqlStore::connect(&format!("mysql://app:{right}@127.0.0.1:{port}/app"))
        .await
        .unwrap();
    round_trip(&store).await.unwrap();
    assert!(!format!("{store:?}").contains(right), "{store:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_an_existing_store_creates_nothing() {
    let Some(db) = plain_server() else {
        return;
    };
    admin(db, "CREATE DATABASE empty").await;
    let url = format!("mysql://root@127.0.0.1:{}/empty", db.port());
    let err = match MySqlStore::connect_existing(&url).await {
        Ok(_) => panic!("opened a store that does not exist"),
        Err(err) => err,
    };
    assert!(matches!(&err, StoreError::NoStore(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "no wrangle store at mysql://127.0.0.1:{}/empty (a store is created by the first \
             program that opens it to write, such as a worker or a submit)",
            db.port()
        )
    );
    assert_eq!(tables(db, "empty").await, 0, "tables were created");

    let created = MySqlStore::connect(&url).await.unwrap();
    round_trip(&created).await.unwrap();
    let existing = MySqlStore::connect_existing(&url).await.unwrap();
    assert_eq!(existing.queue_stats(Utc::now()).await.unwrap().len(), 1);

    // An older schema is refused, not migrated: migrating is a write.
    admin(db, "UPDATE empty.wrangle_schema_version SET version = 1").await;
    let err = MySqlStore::connect_existing(&url)
        .await
        .map(drop)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("is at version 1, older than this wrangle's 6"),
        "{err}"
    );
    let mut conn = MySqlConnection::connect(&url).await.unwrap();
    let version: i32 = sqlx::query_scalar("SELECT version FROM wrangle_schema_version")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(version, 1, "the schema was migrated");
}
