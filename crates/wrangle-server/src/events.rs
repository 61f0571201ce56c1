//! The event stream, `/api/events` (server-sent events): the dashboard hears that tasks
//! were enqueued (`tasks`), that tasks finished or moved (`outcomes`) and that a worker
//! acknowledged a command (`commands`), and refreshes what it shows. One listener per
//! store topic serves every client, fed by the store's notifications (never a timer); a
//! burst of notifications is sent as at most one event per topic every [`COALESCE`].

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use tokio::sync::broadcast;
use tokio_stream::Stream;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::BroadcastStream;
use wrangle::{Store, Topic};

use crate::AppState;

/// The shortest time between two events of one topic.
const COALESCE: Duration = Duration::from_millis(100);

/// The topics sent, by event name.
const TOPICS: [(Topic, &str); 3] = [
    (Topic::Tasks, "tasks"),
    (Topic::Outcomes, "outcomes"),
    (Topic::Commands, "commands"),
];

/// The hub every client subscribes to.
#[derive(Clone)]
pub(crate) struct Events {
    sender: broadcast::Sender<&'static str>,
}

impl Events {
    /// Starts one listener per topic on `store`; they end when the hub is dropped.
    pub(crate) fn start(store: Arc<dyn Store>) -> Events {
        let (sender, _) = broadcast::channel(64);
        for (topic, name) in TOPICS {
            tokio::spawn(listen(store.clone(), topic, name, sender.downgrade()));
        }
        Events { sender }
    }
}

/// Sends `name` at each notification of `topic`, until the hub is gone.
async fn listen(
    store: Arc<dyn Store>,
    topic: Topic,
    name: &'static str,
    hub: broadcast::WeakSender<&'static str>,
) {
    loop {
        let mut listener = match store.listen(topic).await {
            Ok(listener) => listener,
            Err(err) => {
                tracing::warn!(error = %err, topic = name, "cannot listen; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                if hub.upgrade().is_none() {
                    return;
                }
                continue;
            }
        };
        loop {
            let notified = match listener.wait(Duration::from_secs(5)).await {
                Ok(notified) => notified,
                Err(err) => {
                    tracing::warn!(error = %err, topic = name, "listener failed; listening again");
                    break;
                }
            };
            let Some(sender) = hub.upgrade() else {
                return;
            };
            if notified {
                // No subscriber is not an error: nobody is looking.
                let _ = sender.send(name);
                drop(sender);
                tokio::time::sleep(COALESCE).await;
            }
        }
    }
}

/// Server-sent events of changes in the store: `tasks`, `outcomes` and `commands`, each
/// with an empty JSON object as data; a comment every 15 s keeps proxies from closing the
/// stream.
#[utoipa::path(
    get,
    path = "/api/events",
    tag = "events",
    responses((status = 200, description = "An endless stream of events", content_type = "text/event-stream", body = String))
)]
pub(crate) async fn stream(
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let events = BroadcastStream::new(state.events.sender.subscribe())
        // A client too slow to keep up misses events, not the stream: it refreshes anyway.
        .filter_map(|event| event.ok())
        .map(|name| Ok(Event::default().event(name).data("{}")));
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
