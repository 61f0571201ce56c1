//! A `wrangle worker`'s own log lines, kept in the store as well as printed: a tracing
//! layer that formats each event the worker prints (same filter, `WRANGLE_LOG`) as one
//! line and hands it to the worker's [`LogShipper`], so `wrangle workers log NAME` and the
//! console's `tail WORKER` can follow it from any machine.

use std::fmt::{Debug, Write as _};
use std::sync::Arc;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use wrangle::logs::LogShipper;

/// Sends every event it sees to a worker's log ring.
pub(crate) struct Capture(pub(crate) Arc<LogShipper>);

impl<S: Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &Event<'_>, _context: Context<'_, S>) {
        self.0.push_own(&format_event(event));
    }
}

/// `LEVEL message key=value ...`, as the printed line reads without its time.
fn format_event(event: &Event<'_>) -> String {
    let mut line = format!("{:>5} ", event.metadata().level());
    event.record(&mut Fields(&mut line));
    line
}

/// Writes an event's message, then its other fields as `key=value`.
struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[tokio::test]
    async fn events_become_one_line_each_with_level_message_and_fields() {
        let shipper = LogShipper::new(10);
        let subscriber = tracing_subscriber::registry().with(Capture(shipper.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(worker = %"box-1", runners = 2, "worker started");
            tracing::warn!("store unavailable");
        });
        let store = wrangle::MemoryStore::new();
        shipper.flush(&store, "box-1").await.unwrap();
        let owner = wrangle::log::LogOwner::Worker("box-1".into());
        let lines: Vec<String> = wrangle::Store::read_log(&store, &owner, 0, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.text)
            .collect();
        assert_eq!(
            lines,
            [
                " INFO worker started worker=box-1 runners=2",
                " WARN store unavailable"
            ]
        );
    }
}
