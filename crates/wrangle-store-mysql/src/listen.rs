//! Wake-ups for the MySQL store.
//!
//! MySQL and MariaDB have no notification channel (nothing like PostgreSQL's LISTEN), so
//! wake-ups come in two parts. In this process a writer notifies listeners directly after
//! its commit (through [`TopicSignals`]). For writers in other processes, every write that
//! notifies adds 1 to its topics' versions in `wrangle_topic_versions` in the same
//! transaction, and one background task per store, on its own connection, reads the
//! version sums every [`CROSS_PROCESS_POLL`] while anyone listens, waking the listeners of
//! the topics whose sum moved. That poll is the floor of the cross-process wake-up
//! latency; it costs one primary-key read of 16 rows per poll and process.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use sqlx::mysql::MySqlConnectOptions;
use sqlx::{ConnectOptions, MySqlConnection};
use wrangle_core::notify::{TOPICS, TopicSignals};
use wrangle_core::store::{Listener, StoreError, Topic};

use crate::Failure;

/// How often other processes' commits are looked for while someone listens.
pub const CROSS_PROCESS_POLL: Duration = Duration::from_millis(10);

/// How long the poller waits before reconnecting after losing its connection.
const RECONNECT_PAUSE: Duration = Duration::from_millis(500);

/// Topic version sums, in the order of [`TOPICS`].
type Versions = [i64; 3];

/// In-process signals plus the cross-process poller, started with the first listener.
#[derive(Debug)]
pub(crate) struct Topics {
    signals: TopicSignals,
    connect: MySqlConnectOptions,
    poller_started: Mutex<bool>,
}

impl Topics {
    pub(crate) fn new(connect: MySqlConnectOptions) -> Self {
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
        // Subscribed before the poller reads its first versions, so that a write committed
        // in between is either in those versions' baseline or notified.
        let listener = self.signals.listener(topic);
        self.start_poller().await?;
        Ok(listener)
    }

    fn poller_started(&self) -> std::sync::MutexGuard<'_, bool> {
        self.poller_started
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn start_poller(self: &Arc<Self>) -> Result<(), StoreError> {
        if *self.poller_started() {
            return Ok(());
        }
        let mut connection = self
            .connect
            .connect()
            .await
            .map_err(|e| Failure::from(e).into_store_error())?;
        let mut versions = read_versions(&mut connection)
            .await
            .map_err(Failure::into_store_error)?;
        {
            let mut started = self.poller_started();
            if *started {
                return Ok(());
            }
            *started = true;
        }
        let topics: Weak<Topics> = Arc::downgrade(self);
        let connect = self.connect.clone();
        tokio::spawn(async move {
            let mut connection = Some(connection);
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
                let conn = match connection.as_mut() {
                    Some(conn) => conn,
                    // The server went away: reconnect, then compare with the versions seen
                    // before, so writes made meanwhile still wake the listeners.
                    None => match connect.connect().await {
                        Ok(conn) => connection.insert(conn),
                        Err(_) => {
                            tokio::time::sleep(RECONNECT_PAUSE).await;
                            continue;
                        }
                    },
                };
                let Ok(now_versions) = read_versions(conn).await else {
                    connection = None;
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

/// The version sums of [`TOPICS`] (tasks, outcomes, commands).
async fn read_versions(connection: &mut MySqlConnection) -> Result<Versions, Failure> {
    let (tasks, outcomes, commands): (i64, i64, i64) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(tasks), 0) AS SIGNED), CAST(COALESCE(SUM(outcomes), 0) AS SIGNED),
                CAST(COALESCE(SUM(commands), 0) AS SIGNED)
         FROM wrangle_topic_versions",
    )
    .fetch_one(connection)
    .await?;
    Ok([tasks, outcomes, commands])
}
