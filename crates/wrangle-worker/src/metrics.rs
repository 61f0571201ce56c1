//! What a worker measures for Prometheus (`wrangle worker --metrics ADDR`): how long
//! attempts run and how they end, per queue and kind; every store call it makes (round
//! trips, errors and their latency, per call); and its runner processes' restarts. Kept in
//! memory, cheap to update (atomic counters and histogram buckets), encoded on a scrape.
//! This module owns the numbers; serving them over HTTP is the caller's (the CLI uses
//! wrangle-server).

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use wrangle_core::store::{StoreError, StoreObserver};
use wrangle_core::worker::ProcessInfo;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskLabels {
    queue: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttemptLabels {
    queue: String,
    kind: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    call: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

/// A worker's numbers. Share one between the worker (`Worker::with_metrics`) and whatever
/// serves them ([`WorkerMetrics::encode`]).
pub struct WorkerMetrics {
    registry: Mutex<Registry>,
    run_seconds: Family<TaskLabels, Histogram>,
    attempts: Family<AttemptLabels, Counter>,
    store_calls: Family<CallLabels, Counter>,
    store_errors: Family<CallLabels, Counter>,
    store_seconds: Family<CallLabels, Histogram>,
    runner_restarts: Family<KindLabel, Gauge>,
}

impl fmt::Debug for WorkerMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WorkerMetrics")
    }
}

impl Default for WorkerMetrics {
    fn default() -> Self {
        // 1 ms to about 9 hours for attempts; 100 µs to about 26 s for store calls.
        let run_seconds = Family::<TaskLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 3.0, 17))
        });
        let store_seconds = Family::<CallLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 2.0, 19))
        });
        let metrics = WorkerMetrics {
            registry: Mutex::new(Registry::with_prefix("wrangle_worker")),
            run_seconds,
            attempts: Family::default(),
            store_calls: Family::default(),
            store_errors: Family::default(),
            store_seconds,
            runner_restarts: Family::default(),
        };
        {
            let mut registry = metrics.registry.lock().expect("not poisoned");
            registry.register(
                "attempt_run_seconds",
                "How long attempts ran, per queue and kind",
                metrics.run_seconds.clone(),
            );
            registry.register(
                "attempts",
                "Attempts that ended, per queue, kind and outcome (succeeded, failed, cancelled)",
                metrics.attempts.clone(),
            );
            registry.register(
                "store_calls",
                "Store round trips, per call",
                metrics.store_calls.clone(),
            );
            registry.register(
                "store_errors",
                "Store calls that failed, per call",
                metrics.store_errors.clone(),
            );
            registry.register(
                "store_call_seconds",
                "How long store calls took, per call",
                metrics.store_seconds.clone(),
            );
            registry.register(
                "runner_restarts",
                "Times runner processes were started again after ending, per kind",
                metrics.runner_restarts.clone(),
            );
        }
        metrics
    }
}

impl WorkerMetrics {
    /// Counts an attempt of a `kind` task of `queue` that ran for `ran` and ended so.
    pub(crate) fn attempt(&self, queue: &str, kind: &str, outcome: &'static str, ran: Duration) {
        let task = TaskLabels {
            queue: queue.to_string(),
            kind: kind.to_string(),
        };
        self.run_seconds
            .get_or_create(&task)
            .observe(ran.as_secs_f64());
        self.attempts
            .get_or_create(&AttemptLabels {
                queue: task.queue,
                kind: task.kind,
                outcome,
            })
            .inc();
    }

    /// Sets the runner processes' restarts from what the executors report.
    pub(crate) fn processes(&self, processes: &[ProcessInfo]) {
        let mut per_kind = std::collections::BTreeMap::<&str, i64>::new();
        for process in processes {
            *per_kind.entry(&process.kind).or_default() += i64::from(process.restarts);
        }
        for (kind, restarts) in per_kind {
            self.runner_restarts
                .get_or_create(&KindLabel {
                    kind: kind.to_string(),
                })
                .set(restarts);
        }
    }

    /// The numbers in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        let registry = self.registry.lock().expect("not poisoned");
        encode(&mut text, &registry).expect("writing to a String cannot fail");
        text
    }
}

impl StoreObserver for WorkerMetrics {
    fn observed(&self, call: &'static str, took: Duration, error: Option<&StoreError>) {
        let label = CallLabels { call };
        self.store_calls.get_or_create(&label).inc();
        self.store_seconds
            .get_or_create(&label)
            .observe(took.as_secs_f64());
        if error.is_some() {
            self.store_errors.get_or_create(&label).inc();
        }
    }
}
