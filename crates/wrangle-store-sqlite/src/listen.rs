//! Wake-ups for the SQLite store.
//!
//! Built on [`PolledTopics`]: in this process a writer notifies listeners directly after
//! its commit. For writers in other processes, one background task per store polls
//! `PRAGMA data_version` on a dedicated connection every [`CROSS_PROCESS_POLL`] while
//! anyone listens; only when it changes does it read `topic_versions` and wake the
//! listeners of the topics that moved. SQLite offers no cross-process notification, so
//! this poll is the floor of its wake-up latency; stores with notifications (PostgreSQL,
//! Redis) do not poll.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, SqliteConnection};
use wrangle_core::notify::{PolledTopics, TOPICS, TopicVersions, VersionSource};
use wrangle_core::store::{Listener, StoreError, Topic};

use crate::backend;

/// How often another process's commits are looked for while someone listens.
pub const CROSS_PROCESS_POLL: Duration = Duration::from_millis(5);

/// The topic's row name in `topic_versions`.
pub(crate) fn topic_name(topic: Topic) -> &'static str {
    match topic {
        Topic::Tasks => "tasks",
        Topic::Outcomes => "outcomes",
        Topic::Commands => "commands",
        Topic::Logs => "logs",
    }
}

/// In-process signals plus the cross-process poller, started with the first listener.
#[derive(Debug)]
pub(crate) struct Topics {
    polled: Arc<PolledTopics>,
    connect: SqliteConnectOptions,
}

impl Topics {
    pub(crate) fn new(connect: SqliteConnectOptions) -> Self {
        Topics {
            polled: Arc::new(PolledTopics::new(CROSS_PROCESS_POLL)),
            connect,
        }
    }

    pub(crate) fn notify(&self, topic: Topic) {
        self.polled.notify(topic);
    }

    pub(crate) async fn listen(&self, topic: Topic) -> Result<Box<dyn Listener>, StoreError> {
        self.polled
            .listen(topic, || SqliteVersions::open(&self.connect))
            .await
    }
}

/// The poller's connection: `PRAGMA data_version` is read every poll, `topic_versions`
/// only when it changed (another connection committed).
struct SqliteVersions {
    connection: SqliteConnection,
    data_version: i64,
    versions: TopicVersions,
}

impl SqliteVersions {
    async fn open(connect: &SqliteConnectOptions) -> Result<Self, StoreError> {
        let mut connection = connect.connect().await.map_err(backend)?;
        let versions = read_versions(&mut connection).await?;
        let data_version = read_data_version(&mut connection).await?;
        Ok(SqliteVersions {
            connection,
            data_version,
            versions,
        })
    }
}

#[async_trait]
impl VersionSource for SqliteVersions {
    async fn read(&mut self) -> Result<TopicVersions, StoreError> {
        let data_version = read_data_version(&mut self.connection).await?;
        if data_version != self.data_version {
            // Remembered only once the versions are read too, so a failed read is retried.
            self.versions = read_versions(&mut self.connection).await?;
            self.data_version = data_version;
        }
        Ok(self.versions)
    }
}

async fn read_data_version(connection: &mut SqliteConnection) -> Result<i64, StoreError> {
    sqlx::query_scalar("PRAGMA data_version")
        .fetch_one(connection)
        .await
        .map_err(backend)
}

/// The versions of [`TOPICS`], in that order.
async fn read_versions(connection: &mut SqliteConnection) -> Result<TopicVersions, StoreError> {
    let rows: Vec<(String, i64)> = sqlx::query_as("SELECT topic, version FROM topic_versions")
        .fetch_all(connection)
        .await
        .map_err(backend)?;
    Ok(TOPICS.map(|topic| {
        rows.iter()
            .find(|(name, _)| name == topic_name(topic))
            .map_or(0, |(_, v)| *v)
    }))
}
