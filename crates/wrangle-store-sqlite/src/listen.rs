//! Wake-ups for the SQLite store.
//!
//! In this process a writer notifies listeners directly after its commit (through
//! [`TopicSignals`]). For writers in other processes, one background task per store polls
//! `PRAGMA data_version` on a dedicated connection every [`CROSS_PROCESS_POLL`] while
//! anyone listens; only when it changes does it read `topic_versions` and wake the
//! listeners of the topics that moved. SQLite offers no cross-process notification, so
//! this poll is the floor of its wake-up latency; stores with notifications (PostgreSQL,
//! Redis) do not poll.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, SqliteConnection};
use wrangle_core::notify::{TOPICS, TopicSignals};
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
    }
}

/// In-process signals plus the cross-process poller, started with the first listener.
#[derive(Debug)]
pub(crate) struct Topics {
    signals: TopicSignals,
    connect: SqliteConnectOptions,
    poller_started: Mutex<bool>,
}

impl Topics {
    pub(crate) fn new(connect: SqliteConnectOptions) -> Self {
        Topics {
            signals: TopicSignals::default(),
            connect,
            poller_started: Mutex::new(false),
        }
    }

    pub(crate) fn notify(&self, topic: Topic) {
        self.signals.notify(topic);
    }

    pub(crate) async fn listen(
        self: &Arc<Self>,
        topic: Topic,
    ) -> Result<Box<dyn Listener>, StoreError> {
        let listener = self.signals.listener(topic);
        self.start_poller().await?;
        Ok(listener)
    }

    async fn start_poller(self: &Arc<Self>) -> Result<(), StoreError> {
        if *self.poller_started.lock().expect("poller flag") {
            return Ok(());
        }
        let mut connection = self.connect.connect().await.map_err(backend)?;
        let mut versions = read_versions(&mut connection).await?;
        let mut data_version = read_data_version(&mut connection).await?;
        {
            let mut started = self.poller_started.lock().expect("poller flag");
            if *started {
                return Ok(());
            }
            *started = true;
        }
        let topics: Weak<Topics> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(CROSS_PROCESS_POLL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(topics) = topics.upgrade() else {
                    return;
                };
                if !topics.signals.has_listeners() {
                    continue;
                }
                // A failed read (database busy or gone) is retried on the next tick.
                let Ok(now_version) = read_data_version(&mut connection).await else {
                    continue;
                };
                if now_version == data_version {
                    continue;
                }
                data_version = now_version;
                let Ok(now_versions) = read_versions(&mut connection).await else {
                    continue;
                };
                for (i, topic) in TOPICS.into_iter().enumerate() {
                    if now_versions[i] != versions[i] {
                        topics.notify(topic);
                    }
                }
                versions = now_versions;
            }
        });
        Ok(())
    }
}

async fn read_data_version(connection: &mut SqliteConnection) -> Result<i64, StoreError> {
    sqlx::query_scalar("PRAGMA data_version")
        .fetch_one(connection)
        .await
        .map_err(backend)
}

/// The versions of [`TOPICS`], in that order.
async fn read_versions(connection: &mut SqliteConnection) -> Result<[i64; 3], StoreError> {
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
