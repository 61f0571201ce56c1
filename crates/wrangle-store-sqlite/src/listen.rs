//! Wake-ups for the SQLite store.
//!
//! In this process a writer notifies listeners directly after its commit. For writers in
//! other processes, one background task per store polls `PRAGMA data_version` on a
//! dedicated connection every [`CROSS_PROCESS_POLL`] while anyone listens; only when it
//! changes does it read `topic_versions` and wake the listeners of the topics that moved.
//! SQLite offers no cross-process notification, so this poll is the floor of its wake-up
//! latency; stores with notifications (PostgreSQL, Redis) do not poll.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, SqliteConnection};
use tokio::sync::watch;
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

const TOPICS: [Topic; 3] = [Topic::Tasks, Topic::Outcomes, Topic::Commands];

fn index(topic: Topic) -> usize {
    match topic {
        Topic::Tasks => 0,
        Topic::Outcomes => 1,
        Topic::Commands => 2,
    }
}

/// Per-topic counters that listeners watch, plus the cross-process poller.
#[derive(Debug)]
pub(crate) struct Topics {
    senders: [watch::Sender<u64>; 3],
    connect: SqliteConnectOptions,
    poller_started: Mutex<bool>,
}

impl Topics {
    pub(crate) fn new(connect: SqliteConnectOptions) -> Self {
        Topics {
            senders: [
                watch::channel(0).0,
                watch::channel(0).0,
                watch::channel(0).0,
            ],
            connect,
            poller_started: Mutex::new(false),
        }
    }

    pub(crate) fn notify(&self, topic: Topic) {
        self.senders[index(topic)].send_modify(|n| *n = n.wrapping_add(1));
    }

    pub(crate) async fn listen(
        self: &Arc<Self>,
        topic: Topic,
    ) -> Result<Box<dyn Listener>, StoreError> {
        let mut receiver = self.senders[index(topic)].subscribe();
        receiver.borrow_and_update();
        self.start_poller().await?;
        Ok(Box::new(WatchListener(receiver)))
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
                if topics.senders.iter().all(|s| s.receiver_count() == 0) {
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
                for topic in TOPICS {
                    if now_versions[index(topic)] != versions[index(topic)] {
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

async fn read_versions(connection: &mut SqliteConnection) -> Result<[i64; 3], StoreError> {
    let rows: Vec<(String, i64)> = sqlx::query_as("SELECT topic, version FROM topic_versions")
        .fetch_all(connection)
        .await
        .map_err(backend)?;
    let mut versions = [0; 3];
    for topic in TOPICS {
        versions[index(topic)] = rows
            .iter()
            .find(|(name, _)| name == topic_name(topic))
            .map_or(0, |(_, v)| *v);
    }
    Ok(versions)
}

/// "Changed since last seen" over a watch channel.
struct WatchListener(watch::Receiver<u64>);

#[async_trait]
impl Listener for WatchListener {
    async fn wait(&mut self, timeout: Duration) -> Result<bool, StoreError> {
        match tokio::time::timeout(timeout, self.0.changed()).await {
            Ok(Ok(())) => {
                self.0.borrow_and_update();
                Ok(true)
            }
            Ok(Err(_)) => Err(StoreError::Unavailable("store closed".into())),
            Err(_) => Ok(false),
        }
    }
}
