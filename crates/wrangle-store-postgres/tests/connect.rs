//! The connection layer against real servers: TLS (verified with the server's CA file, and
//! refused without it), the one-line connect errors a server gives (wrong password,
//! unknown database, TLS; refused and timed out connections are checked for every store
//! in `crates/wrangle/tests/connect.rs`), passwords kept out of errors and `Debug`, and
//! `Open::Existing`, which creates nothing.

use chrono::Utc;
use wrangle_conformance::support::round_trip;
use wrangle_core::{Open, Store, StoreError};
use wrangle_store_postgres::{PostgresOptions, PostgresStore};
use wrangle_testkit::{PostgresServer, or_skip};

/// The connect error of `url`, which must fail.
async fn connect_error(url: &str) -> StoreError {
    match PostgresStore::connect(url).await {
        Ok(_) => panic!("connecting to {url} succeeded"),
        Err(err) => err,
    }
}

/// Runs `sql` as the superuser.
async fn admin(pg: &PostgresServer, sql: &str) {
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&pg.url())
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&mut conn)
        .await
        .unwrap();
}

/// Whether the schema `name` exists.
async fn schema_exists(pg: &PostgresServer, name: &str) -> bool {
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&pg.url())
        .await
        .unwrap();
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
        .bind(name)
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn tls_verifies_the_server_with_its_ca_and_refuses_it_without() {
    let Some(pg) = or_skip(PostgresServer::start_tls()) else {
        return;
    };
    let ca = pg.ca_file().expect("a TLS server has a CA file");
    let port = pg.port();
    for mode in ["verify-full", "verify-ca", "require"] {
        let url = format!(
            "{}?sslmode={mode}&sslrootcert={}&schema=tls",
            pg.url(),
            ca.display()
        );
        let store = PostgresStore::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("{mode}: {e}"));
        let ssl: bool =
            sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert!(ssl, "{mode}: the connection is not encrypted");
        if mode == "verify-full" {
            round_trip(&store).await.unwrap();
        }
    }

    // Verification without the CA: the certificate is the problem, and the line says so.
    for mode in ["verify-full", "verify-ca"] {
        let err = connect_error(&format!("{}?sslmode={mode}", pg.url())).await;
        assert!(matches!(err, StoreError::Connect(_)), "{err:?}");
        assert!(!err.is_transient(), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "cannot connect to postgres at 127.0.0.1:{port}: TLS handshake failed: the \
                 server's certificate is not signed by a trusted certificate authority (give \
                 the CA certificate that signed it with sslrootcert=FILE)"
            )
        );
    }
    // `require` alone encrypts without verifying, as libpq does.
    let url = format!("{}?sslmode=require&schema=tls", pg.url());
    PostgresStore::connect(&url).await.unwrap();

    // A CA file that is not there is named before anything else happens.
    let err = connect_error(&format!(
        "{}?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
        pg.url()
    ))
    .await;
    assert_eq!(
        err.to_string(),
        format!(
            "cannot connect to postgres at 127.0.0.1:{port}: cannot read the CA file \
             /nonexistent/ca.pem: No such file or directory (os error 2)"
        )
    );
}

#[tokio::test]
async fn server_refusals_name_the_user_or_database_and_never_the_password() {
    let Some(pg) = or_skip(PostgresServer::start()) else {
        return;
    };
    let port = pg.port();
    admin(&pg, "CREATE ROLE app LOGIN PASSWORD 'right-horse-battery'").await;

    let wrong = "Wr0ng-Staple-Secret";
    let url = format!("postgres://app:{wrong}@127.0.0.1:{port}/postgres");
    let err = connect_error(&url).await;
    assert_eq!(
        err.to_string(),
        format!(
            "cannot connect to postgres at 127.0.0.1:{port}: authentication failed for user 'app'"
        )
    );
    assert!(!format!("{err:?}").contains(wrong), "{err:?}");

    let err = connect_error(&pg.url().replace("/postgres", "/nosuchdb")).await;
    assert_eq!(
        err.to_string(),
        format!(
            "cannot connect to postgres at 127.0.0.1:{port}: database \"nosuchdb\" does not exist"
        )
    );

    // `sslmode=require` against a server without TLS.
    let err = connect_error(&format!("{}?sslmode=require", pg.url())).await;
    assert_eq!(
        err.to_string(),
        format!(
            "cannot connect to postgres at 127.0.0.1:{port}: TLS handshake failed: server \
             does not support TLS"
        )
    );

    // With the right password the store works, and its Debug output hides the password.
    admin(&pg, "GRANT CREATE ON DATABASE postgres TO app").await;
    let right = "right-horse-battery";
    let store = PostgresStore::connect(&format!(
        "postgres://app:{right}@127.0.0.1:{port}/postgres?schema=app"
    ))
    .await
    .unwrap();
    round_trip(&store).await.unwrap();
    assert!(!format!("{store:?}").contains(right), "{store:?}");
}

#[tokio::test]
async fn opening_an_existing_store_creates_nothing() {
    let Some(pg) = or_skip(PostgresServer::start()) else {
        return;
    };
    let url = format!("{}?schema=absent", pg.url());
    let err = match PostgresStore::connect_existing(&url).await {
        Ok(_) => panic!("opened a store that does not exist"),
        Err(err) => err,
    };
    assert!(matches!(&err, StoreError::NoStore(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "no wrangle store at postgres://127.0.0.1:{}/postgres (schema \"absent\") (a store \
             is created by the first program that opens it to write, such as a worker or a \
             submit)",
            pg.port()
        )
    );
    assert!(
        !schema_exists(&pg, "absent").await,
        "the schema was created"
    );

    // Once created (by a connect that may create), it opens and works.
    let created = PostgresStore::connect(&url).await.unwrap();
    round_trip(&created).await.unwrap();
    let existing = PostgresStore::connect_existing(&url).await.unwrap();
    let counts = existing.queue_stats(Utc::now()).await.unwrap();
    assert_eq!(counts.len(), 1, "{counts:?}");

    // An older schema is refused, not migrated: migrating is a write.
    admin(
        &pg,
        "DELETE FROM absent.schema_migrations WHERE version >= 6",
    )
    .await;
    let (connect, options) = PostgresOptions::from_url(&url).unwrap();
    let options = PostgresOptions {
        open: Open::Existing,
        ..options
    };
    let err = PostgresStore::connect_with(connect, options)
        .await
        .map(drop)
        .unwrap_err();
    assert!(
        err.to_string().contains("is at version 5, older than this wrangle's 7: run a worker or submit a task once to upgrade it"),
        "{err}"
    );
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&pg.url())
        .await
        .unwrap();
    let version: i32 = sqlx::query_scalar("SELECT max(version) FROM absent.schema_migrations")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(version, 5, "the schema was migrated");
}
