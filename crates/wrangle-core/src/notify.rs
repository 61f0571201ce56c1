//! In-process wake-ups shared by every store: one counter per [`Topic`], bumped after a
//! write commits, and a [`Listener`] that returns when its counter moved since it last
//! looked. "Moved since last seen" is exactly a `tokio::sync::watch` channel, so no
//! notification between a listener's creation and its `wait` is lost.
//!
//! Stores whose writers live in other processes add their own bridge on top and call
//! [`TopicSignals::notify`]: PostgreSQL's LISTEN, Redis pub/sub, or, for stores with no
//! notification channel at all (SQLite, MySQL), [`PolledTopics`], which reads per-topic
//! version counters the writers bump, on a dedicated connection, while anyone listens.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;

use crate::store::{Listener, StoreError, Topic};

/// Every topic, in index order.
pub const TOPICS: [Topic; 4] = [Topic::Tasks, Topic::Outcomes, Topic::Commands, Topic::Logs];

fn index(topic: Topic) -> usize {
    match topic {
        Topic::Tasks => 0,
        Topic::Outcomes => 1,
        Topic::Commands => 2,
        Topic::Logs => 3,
    }
}

/// Versions of [`TOPICS`], in that order.
pub type TopicVersions = [i64; 4];

/// Where [`PolledTopics`] reads the topic versions other processes' writes bump: a
/// store's own connection, owned by the poller.
#[async_trait]
pub trait VersionSource: Send + 'static {
    /// The versions now. An error is retried on the next poll.
    async fn read(&mut self) -> Result<TopicVersions, StoreError>;
}

/// In-process signals plus a cross-process poller for a store without notifications,
/// started with the first listener: while anyone listens, it reads the versions every
/// `interval` and wakes the listeners of the topics that moved. That interval is the
/// floor of the cross-process wake-up latency.
#[derive(Debug)]
pub struct PolledTopics {
    signals: TopicSignals,
    interval: Duration,
    poller_started: Mutex<bool>,
}

impl PolledTopics {
    /// Topics polled every `interval` once someone listens.
    pub fn new(interval: Duration) -> Self {
        PolledTopics {
            signals: TopicSignals::default(),
            interval,
            poller_started: Mutex::new(false),
        }
    }

    /// Wakes this process's listeners of `topic` (after a commit that changed it).
    pub fn notify(&self, topic: Topic) {
        self.signals.notify(topic);
    }

    fn poller_started(&self) -> std::sync::MutexGuard<'_, bool> {
        self.poller_started
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A listener for `topic`; the first call opens the poller's source with `open`.
    pub async fn listen<S, F>(
        self: &Arc<Self>,
        topic: Topic,
        open: impl FnOnce() -> F,
    ) -> Result<Box<dyn Listener>, StoreError>
    where
        S: VersionSource,
        F: Future<Output = Result<S, StoreError>>,
    {
        // Subscribed before the poller reads its first versions, so that a write committed
        // in between is either in that baseline or notified.
        let listener = self.signals.listener(topic);
        if *self.poller_started() {
            return Ok(listener);
        }
        let mut source = open().await?;
        let mut versions = source.read().await?;
        {
            let mut started = self.poller_started();
            if *started {
                return Ok(listener);
            }
            *started = true;
        }
        let topics: Weak<PolledTopics> = Arc::downgrade(self);
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::spawn(async move {
            loop {
                tick.tick().await;
                let Some(topics) = topics.upgrade() else {
                    return;
                };
                if !topics.signals.has_listeners() {
                    continue;
                }
                let Ok(now) = source.read().await else {
                    continue;
                };
                for (i, topic) in TOPICS.into_iter().enumerate() {
                    if now[i] != versions[i] {
                        topics.notify(topic);
                    }
                }
                versions = now;
            }
        });
        Ok(listener)
    }
}

/// One watch counter per topic.
#[derive(Debug)]
pub struct TopicSignals {
    senders: [watch::Sender<u64>; TOPICS.len()],
}

impl Default for TopicSignals {
    fn default() -> Self {
        TopicSignals {
            senders: std::array::from_fn(|_| watch::channel(0).0),
        }
    }
}

impl TopicSignals {
    /// Wakes every listener of `topic`.
    pub fn notify(&self, topic: Topic) {
        self.senders[index(topic)].send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A listener of `topic` that has seen everything up to now.
    pub fn listener(&self, topic: Topic) -> Box<dyn Listener> {
        let mut receiver = self.senders[index(topic)].subscribe();
        receiver.borrow_and_update();
        Box::new(WatchListener(receiver))
    }

    /// Whether anyone listens to any topic (bridges may idle when nobody does).
    pub fn has_listeners(&self) -> bool {
        self.senders.iter().any(|s| s.receiver_count() > 0)
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_notification_before_wait_is_kept_and_consumed_once() {
        let signals = TopicSignals::default();
        let mut tasks = signals.listener(Topic::Tasks);
        let mut outcomes = signals.listener(Topic::Outcomes);
        assert!(signals.has_listeners());
        signals.notify(Topic::Tasks);
        signals.notify(Topic::Tasks);
        assert!(tasks.wait(Duration::from_millis(10)).await.unwrap());
        assert!(
            !tasks.wait(Duration::from_millis(10)).await.unwrap(),
            "consumed"
        );
        assert!(
            !outcomes.wait(Duration::from_millis(10)).await.unwrap(),
            "other topic"
        );
    }
}
