//! Wake-ups for the Redis store: Redis pub/sub, fanned out in-process.
//!
//! The scripts `PUBLISH` to one channel per topic (`{prefix}:wake:tasks`, `…:outcomes`,
//! `…:commands`) as part of the change they make. Each store handle subscribes once, on
//! a dedicated RESP3 connection opened by its first `listen`, and a background task
//! turns every message into a [`TopicSignals`] notification for all listeners of that
//! handle, so listeners block without polling.
//!
//! Pub/sub does not queue messages for a disconnected subscriber. So when the connection
//! drops, the task reconnects with backoff, subscribes again, and then wakes every
//! listener of every topic: callers re-check the store and miss nothing.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, ProtocolVersion, PushInfo, PushKind};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio::sync::{Mutex, oneshot};
use wrangle_core::notify::{TOPICS, TopicSignals};
use wrangle_core::store::{Listener, StoreError, Topic};

use crate::rows::redis_error;

/// Longest pause between two reconnection attempts of the subscriber.
const MAX_RECONNECT_PAUSE: Duration = Duration::from_secs(1);

/// The channel's name suffix for `topic`.
fn topic_name(topic: Topic) -> &'static str {
    match topic {
        Topic::Tasks => "tasks",
        Topic::Outcomes => "outcomes",
        Topic::Commands => "commands",
        Topic::Logs => "logs",
    }
}

/// The pub/sub channel of `topic` for the store with base name `base`; the scripts'
/// `publish` in `common.lua` builds the same name.
pub(crate) fn channel(base: &str, topic: Topic) -> String {
    format!("{base}:wake:{}", topic_name(topic))
}

/// One store handle's subscription and its listeners.
pub(crate) struct Wakeups {
    signals: Arc<TopicSignals>,
    /// Connects with RESP3, which delivers pub/sub messages as pushes on a normal
    /// connection.
    client: Client,
    channels: Vec<(String, Topic)>,
    /// Dropping the sender (with the store) stops the subscriber task; `None` until the
    /// first `listen` starts it.
    subscriber: Mutex<Option<oneshot::Sender<()>>>,
}

impl std::fmt::Debug for Wakeups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wakeups")
            .field("channels", &self.channels)
            .finish_non_exhaustive()
    }
}

impl Wakeups {
    /// Wake-ups for the store with base name `base` reached through `client`.
    pub(crate) fn new(client: &Client, base: &str) -> Result<Self, StoreError> {
        let info = client.get_connection_info().clone();
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client = Client::open(info.set_redis_settings(settings)).map_err(redis_error)?;
        Ok(Wakeups {
            signals: Arc::new(TopicSignals::default()),
            client,
            channels: TOPICS.iter().map(|&t| (channel(base, t), t)).collect(),
            subscriber: Mutex::new(None),
        })
    }

    /// A listener of `topic`. The first call subscribes (and waits for the server to
    /// confirm), so nothing published after `listen` returns is missed.
    pub(crate) async fn listen(&self, topic: Topic) -> Result<Box<dyn Listener>, StoreError> {
        let listener = self.signals.listener(topic);
        let mut subscriber = self.subscriber.lock().await;
        if subscriber.is_none() {
            let (connection, pushes) = subscribe(&self.client, &self.channels).await?;
            let (stop, stopped) = oneshot::channel();
            let relay = Relay {
                signals: Arc::clone(&self.signals),
                client: self.client.clone(),
                channels: self.channels.clone(),
            };
            tokio::spawn(relay.run(connection, pushes, stopped));
            *subscriber = Some(stop);
        }
        Ok(listener)
    }
}

/// Opens a RESP3 connection whose pushes arrive on the returned receiver and subscribes
/// it to `channels`.
async fn subscribe(
    client: &Client,
    channels: &[(String, Topic)],
) -> Result<(MultiplexedConnection, UnboundedReceiver<PushInfo>), StoreError> {
    let (sender, pushes) = unbounded_channel();
    let config = AsyncConnectionConfig::new().set_push_sender(sender);
    let mut connection = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(redis_error)?;
    let names: Vec<&str> = channels.iter().map(|(name, _)| name.as_str()).collect();
    connection.subscribe(&names).await.map_err(redis_error)?;
    Ok((connection, pushes))
}

/// The background task that turns pushes into notifications and keeps the subscription.
struct Relay {
    signals: Arc<TopicSignals>,
    client: Client,
    channels: Vec<(String, Topic)>,
}

impl Relay {
    /// Runs until the store handle is dropped. `connection` is only held: dropping it
    /// would close the subscription.
    async fn run(
        self,
        mut _connection: MultiplexedConnection,
        mut pushes: UnboundedReceiver<PushInfo>,
        mut stopped: oneshot::Receiver<()>,
    ) {
        loop {
            // Relay messages until the connection drops.
            loop {
                let push = tokio::select! {
                    _ = &mut stopped => return,
                    push = pushes.recv() => push,
                };
                match push {
                    Some(push) if push.kind == PushKind::Message => self.relay(&push),
                    Some(push) if push.kind == PushKind::Disconnection => break,
                    Some(_) => {}
                    None => break,
                }
            }
            let mut pause = Duration::from_millis(10);
            (_connection, pushes) = loop {
                tokio::select! {
                    _ = &mut stopped => return,
                    () = tokio::time::sleep(pause) => {}
                }
                match subscribe(&self.client, &self.channels).await {
                    Ok(subscribed) => break subscribed,
                    Err(err) => {
                        tracing::debug!("redis wake-ups: resubscribing failed: {err}");
                        pause = (pause * 2).min(MAX_RECONNECT_PAUSE);
                    }
                }
            };
            // Messages published while disconnected are lost: have everyone re-check.
            for topic in TOPICS {
                self.signals.notify(topic);
            }
        }
    }

    /// Notifies the topic whose channel the message came from.
    fn relay(&self, push: &PushInfo) {
        let Some(redis::Value::BulkString(name)) = push.data.first() else {
            return;
        };
        if let Some((_, topic)) = self.channels.iter().find(|(c, _)| c.as_bytes() == name) {
            self.signals.notify(*topic);
        }
    }
}
