//! Wake-ups through LISTEN/NOTIFY.
//!
//! Writers never notify from Rust: triggers on the tables (see `sql/schema_v1.sql`) call
//! `pg_notify('wrangle.<schema>', topic)` inside the writing transaction, so a notification
//! is delivered exactly when the change commits, whichever process or transaction made it.
//!
//! Each store handle keeps one LISTEN connection, opened by the first `listen` call and
//! shared by all of that handle's listeners: a background task receives notifications
//! and fans them out in-process through [`TopicSignals`]. `listen` returns only once
//! LISTEN is active, so nothing committed after it returns is missed.
//!
//! Notifications sent while that connection is down are lost (PostgreSQL queues them only
//! for connected listeners). So when the task reconnects it wakes every listener of every
//! topic: a spurious wake-up, which the `Listener` contract allows, makes callers re-check
//! the store and find whatever they missed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use tokio::sync::watch;
use tokio::task::AbortHandle;
use wrangle_core::notify::{TOPICS, TopicSignals};
use wrangle_core::store::{Listener, StoreError, Topic};

/// First pause before reconnecting a lost LISTEN connection; doubled up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(50);
/// Longest pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The notification payload naming `topic` (what the triggers send).
fn topic_of(payload: &str) -> Option<Topic> {
    match payload {
        "tasks" => Some(Topic::Tasks),
        "outcomes" => Some(Topic::Outcomes),
        "commands" => Some(Topic::Commands),
        "logs" => Some(Topic::Logs),
        _ => None,
    }
}

/// The channel the triggers of `schema` notify.
pub(crate) fn channel(schema: &str) -> String {
    format!("wrangle.{schema}")
}

/// State shared with the background task.
#[derive(Debug, Default)]
struct Shared {
    signals: TopicSignals,
    /// How many times LISTEN has been (re-)established; 0 until the first time.
    connections: watch::Sender<u64>,
}

/// One store handle's LISTEN bridge, started by the first listener.
#[derive(Debug)]
pub(crate) struct Notifier {
    shared: Arc<Shared>,
    /// A one-connection pool used only to (re)open the LISTEN connection.
    pool: PgPool,
    channel: String,
    /// How long `listen` waits for the LISTEN connection (the store's connect timeout).
    timeout: Duration,
    /// The background task, aborted when the store handle goes away.
    task: Mutex<Option<AbortHandle>>,
}

impl Notifier {
    pub(crate) fn new(connect: PgConnectOptions, schema: &str, timeout: Duration) -> Self {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(timeout)
            // The connection lives as long as the store; only a failure replaces it.
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_lazy_with(connect);
        Notifier {
            shared: Arc::new(Shared::default()),
            pool,
            channel: channel(schema),
            timeout,
            task: Mutex::new(None),
        }
    }

    /// A listener of `topic`, returned once LISTEN is active.
    pub(crate) async fn listen(&self, topic: Topic) -> Result<Box<dyn Listener>, StoreError> {
        // Subscribe first: anything the bridge receives from now on reaches this listener.
        let listener = self.shared.signals.listener(topic);
        self.start();
        let mut connections = self.shared.connections.subscribe();
        match tokio::time::timeout(self.timeout, connections.wait_for(|n| *n > 0)).await {
            Ok(Ok(_)) => Ok(listener),
            Ok(Err(_)) => Err(StoreError::Unavailable("the LISTEN task stopped".into())),
            Err(_) => Err(StoreError::Unavailable(format!(
                "could not LISTEN within {:?}: PostgreSQL unreachable",
                self.timeout
            ))),
        }
    }

    /// Starts the background task unless it runs (again if it ended, which happens only
    /// when the runtime that spawned it shut down while this store lives on).
    fn start(&self) {
        let mut task = self.task.lock().unwrap_or_else(|p| p.into_inner());
        if task.as_ref().is_none_or(AbortHandle::is_finished) {
            let bridge = bridge(
                Arc::clone(&self.shared),
                self.pool.clone(),
                self.channel.clone(),
            );
            *task = Some(tokio::spawn(bridge).abort_handle());
        }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        if let Some(task) = self
            .task
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            task.abort();
        }
    }
}

/// Keeps a LISTEN connection open for good: receives notifications and fans them out,
/// and after each reconnection wakes everyone (what was sent meanwhile is lost).
async fn bridge(shared: Arc<Shared>, pool: PgPool, channel: String) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let mut listener = match open(&pool, &channel).await {
            Ok(listener) => listener,
            Err(err) => {
                tracing::debug!(%err, "LISTEN connection failed; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        backoff = MIN_BACKOFF;
        let mut reconnected = false;
        shared.connections.send_modify(|n| {
            reconnected = *n > 0;
            *n += 1;
        });
        if reconnected {
            for topic in TOPICS {
                shared.signals.notify(topic);
            }
        }
        // Ok(None) is a lost connection, Err any other failure: either way, start over
        // on a new connection.
        while let Ok(Some(notification)) = listener.try_recv().await {
            if let Some(topic) = topic_of(notification.payload()) {
                shared.signals.notify(topic);
            }
        }
        tracing::debug!("LISTEN connection lost; reconnecting");
    }
}

/// A new LISTEN connection on `channel`.
async fn open(pool: &PgPool, channel: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    // Reconnection is ours to do (above), so that we know when it happened.
    listener.eager_reconnect(false);
    listener.ignore_pool_close_event(true);
    listener.listen(channel).await?;
    Ok(listener)
}
