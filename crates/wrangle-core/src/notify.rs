//! In-process wake-ups shared by every store: one counter per [`Topic`], bumped after a
//! write commits, and a [`Listener`] that returns when its counter moved since it last
//! looked. "Moved since last seen" is exactly a `tokio::sync::watch` channel, so no
//! notification between a listener's creation and its `wait` is lost.
//!
//! Stores whose writers live in other processes add their own bridge on top (the SQLite
//! store's `data_version` poller, PostgreSQL's LISTEN) and call [`TopicSignals::notify`].

use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;

use crate::store::{Listener, StoreError, Topic};

/// Every topic, in index order.
pub const TOPICS: [Topic; 3] = [Topic::Tasks, Topic::Outcomes, Topic::Commands];

fn index(topic: Topic) -> usize {
    match topic {
        Topic::Tasks => 0,
        Topic::Outcomes => 1,
        Topic::Commands => 2,
    }
}

/// One watch counter per topic.
#[derive(Debug)]
pub struct TopicSignals {
    senders: [watch::Sender<u64>; 3],
}

impl Default for TopicSignals {
    fn default() -> Self {
        TopicSignals {
            senders: [
                watch::channel(0).0,
                watch::channel(0).0,
                watch::channel(0).0,
            ],
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
