//! `Open::Existing` on SQLite creates, converts and migrates nothing: no file or directory
//! appears for a missing store, an empty file or another program's database is left byte
//! for byte as it was, and an older store is refused rather than migrated. A current store
//! opens and works.

use std::path::Path;

use chrono::Utc;
use serde_json::json;
use wrangle_core::{NewTask, Store, StoreError};
use wrangle_store_sqlite::{Open, SqliteOptions, SqliteStore};

/// The error of opening `path` only if it exists, which must fail.
async fn open_existing_error(path: &Path) -> StoreError {
    match SqliteStore::open_existing(path).await {
        Ok(_) => panic!("opened {} as an existing store", path.display()),
        Err(err) => err,
    }
}

/// Every entry of `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_missing_store_is_reported_and_nothing_is_created() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("nonexistent").join("dir").join("x.db");
    let err = open_existing_error(&path).await;
    assert!(matches!(&err, StoreError::NoStore(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "no wrangle store at {} (a store is created by the first program that opens it \
             to write, such as a worker or a submit)",
            path.display()
        )
    );
    assert!(listing(tmp.path()).is_empty(), "{:?}", listing(tmp.path()));

    // In a directory that exists: still no file, and no journal beside it.
    let path = tmp.path().join("x.db");
    assert!(matches!(
        open_existing_error(&path).await,
        StoreError::NoStore(_)
    ));
    assert!(listing(tmp.path()).is_empty(), "{:?}", listing(tmp.path()));

    // The same through the options, as the facade passes them.
    let options = SqliteOptions {
        open: Open::Existing,
        ..SqliteOptions::from_query("synchronous=normal").unwrap()
    };
    assert!(SqliteStore::open_with(&path, options).await.is_err());
    assert!(listing(tmp.path()).is_empty(), "{:?}", listing(tmp.path()));
}

#[tokio::test]
async fn files_that_are_not_wrangle_stores_are_left_as_they_are() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(
        open_existing_error(&empty).await,
        StoreError::NoStore(_)
    ));
    assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0, "written to");

    // Another program's database, in rollback-journal mode, schema version 0.
    let other = tmp.path().join("other.db");
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&other)
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Delete);
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect_with(&options)
        .await
        .unwrap();
    sqlx::raw_sql("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('keep me')")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::Connection::close(conn).await.unwrap();
    let before = std::fs::read(&other).unwrap();
    assert!(matches!(
        open_existing_error(&other).await,
        StoreError::NoStore(_)
    ));
    assert_eq!(std::fs::read(&other).unwrap(), before, "the file changed");
    assert_eq!(listing(tmp.path()), ["empty.db", "other.db"]);
}

#[tokio::test]
async fn a_current_store_opens_and_an_older_one_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("store").join("wrangle.db");
    let created = SqliteStore::open(&path).await.unwrap();
    let id = created
        .enqueue_batch(vec![NewTask::new("k", json!(1))], Utc::now())
        .await
        .unwrap()[0]
        .id;
    let existing = SqliteStore::open_existing(&path).await.unwrap();
    assert_eq!(existing.get_task(id).await.unwrap().unwrap().kind, "k");
    drop((created, existing));

    // Version 1 (before jobs): refused, and left at version 1.
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&path);
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect_with(&options)
        .await
        .unwrap();
    sqlx::raw_sql("PRAGMA user_version = 1")
        .execute(&mut conn)
        .await
        .unwrap();
    let err = open_existing_error(&path).await;
    assert_eq!(
        err.to_string(),
        format!(
            "store error: the wrangle store at {} is at version 1, older than this wrangle's \
             7: run a worker or submit a task once to upgrade it",
            path.display()
        )
    );
    let version: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(version, 1, "the store was migrated");
}

/// A store at version 6 (before job counters) gains them when a newer store opens it to
/// write: they are seeded from the job's tasks already there.
#[tokio::test]
async fn a_version_6_store_seeds_its_job_counters() {
    use wrangle_core::{NewJob, TaskState};
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("x.db");
    let now = Utc::now();
    let store = SqliteStore::open(&path).await.unwrap();
    store
        .create_job(NewJob::list("j", "k", 2), now)
        .await
        .unwrap();
    let tasks = [json!("a"), json!({"start": 10, "end": 15})]
        .map(|payload| NewTask::new("k", payload).job("j"));
    store.enqueue_batch(tasks.to_vec(), now).await.unwrap();
    let expected = store.job_tallies("j", now).await.unwrap();
    assert_eq!(expected.blocks.len(), 1, "{expected:?}");
    assert_eq!(
        (
            expected.blocks[0].state,
            expected.blocks[0].blocks,
            expected.blocks[0].ids
        ),
        (TaskState::Available, 2, 6)
    );
    drop(store);
    // Back to what version 6 left.
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&path);
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect_with(&options)
        .await
        .unwrap();
    sqlx::raw_sql(
        "DROP TRIGGER tasks_job_counted_insert; DROP TRIGGER tasks_job_counted_update;
         DROP TRIGGER jobs_deleted; DROP TABLE job_counts; DROP TABLE job_recent;
         ALTER TABLE tasks DROP COLUMN ids; PRAGMA user_version = 6",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.job_tallies("j", now).await.unwrap(), expected);
}
