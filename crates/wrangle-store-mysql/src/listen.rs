//! Wake-ups for the MySQL store.
//!
//! MySQL and MariaDB have no notification channel (nothing like PostgreSQL's LISTEN), so
//! wake-ups come in two parts, built on [`PolledTopics`]. In this process a writer
//! notifies listeners directly after its commit. For writers in other processes, every
//! write that notifies adds 1 to its topics' versions in `wrangle_topic_versions` in the same
//! transaction, and one background task per store, on its own connection, reads the
//! version sums every [`CROSS_PROCESS_POLL`] while anyone listens, waking the listeners of
//! the topics whose sum moved. That poll is the floor of the cross-process wake-up
//! latency; it costs one primary-key read of 16 rows per poll and process.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::mysql::MySqlConnectOptions;
use sqlx::{ConnectOptions, MySqlConnection};
use wrangle_core::notify::{PolledTopics, TopicVersions, VersionSource};
use wrangle_core::store::{Listener, StoreError, Topic};

use crate::Failure;

/// How often other processes' commits are looked for while someone listens.
pub const CROSS_PROCESS_POLL: Duration = Duration::from_millis(10);

/// How long the poller waits before reconnecting after losing its connection.
const RECONNECT_PAUSE: Duration = Duration::from_millis(500);

/// In-process signals plus the cross-process poller, started with the first listener.
pub(crate) struct Topics {
    polled: Arc<PolledTopics>,
    connect: MySqlConnectOptions,
}

/// Without the connect options, whose own `Debug` shows the password.
impl std::fmt::Debug for Topics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Topics")
            .field("polled", &self.polled)
            .finish_non_exhaustive()
    }
}

impl Topics {
    pub(crate) fn new(connect: MySqlConnectOptions) -> Self {
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
            .listen(topic, || MySqlVersions::open(self.connect.clone()))
            .await
    }
}

/// The poller's own connection, opened again when the server went away; versions are
/// compared with those seen before, so writes made meanwhile still wake the listeners.
struct MySqlVersions {
    connect: MySqlConnectOptions,
    connection: Option<MySqlConnection>,
}

impl MySqlVersions {
    async fn open(connect: MySqlConnectOptions) -> Result<Self, StoreError> {
        let connection = connect
            .connect()
            .await
            .map_err(|e| Failure::from(e).into_store_error())?;
        Ok(MySqlVersions {
            connect,
            connection: Some(connection),
        })
    }
}

#[async_trait]
impl VersionSource for MySqlVersions {
    async fn read(&mut self) -> Result<TopicVersions, StoreError> {
        let connection = match self.connection.as_mut() {
            Some(connection) => connection,
            None => match self.connect.connect().await {
                Ok(connection) => self.connection.insert(connection),
                Err(err) => {
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                    return Err(Failure::from(err).into_store_error());
                }
            },
        };
        let read = read_versions(connection).await;
        if read.is_err() {
            self.connection = None;
        }
        read.map_err(Failure::into_store_error)
    }
}

/// The version sums of the topics: tasks, outcomes, commands, logs.
async fn read_versions(connection: &mut MySqlConnection) -> Result<TopicVersions, Failure> {
    let (tasks, outcomes, commands, logs): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(tasks), 0) AS SIGNED), CAST(COALESCE(SUM(outcomes), 0) AS SIGNED),
                CAST(COALESCE(SUM(commands), 0) AS SIGNED),
                (SELECT CAST(COALESCE(SUM(logs), 0) AS SIGNED) FROM wrangle_log_versions)
         FROM wrangle_topic_versions",
    )
    .fetch_one(connection)
    .await?;
    Ok([tasks, outcomes, commands, logs])
}
