//! `/metrics` of `wrangle serve`, and of a worker ([`serve_worker_metrics`]), in the
//! Prometheus (OpenMetrics) text format. Serve's says what the store says now, read at each scrape from its counters (one `queue_stats`, one worker
//! list, one progress read per job), so any number of servers may be scraped without
//! adding load per task. The figures of the last minute are gauges named so: the stores
//! keep per-second buckets of the last minutes, not totals since the beginning.

use std::sync::atomic::AtomicU64;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::AppState;
use crate::problem::Problem;

type FloatGauge = Gauge<f64, AtomicU64>;

/// The content type of both `/metrics`.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves a worker's numbers ([`wrangle::WorkerMetrics`]) at `/metrics` on `listener`
/// until `shutdown` completes (`wrangle worker --metrics ADDR`). Nothing else is served,
/// and nothing in them is secret (queue, kind and call names, counts and durations).
pub async fn serve_worker_metrics(
    listener: tokio::net::TcpListener,
    metrics: std::sync::Arc<wrangle::WorkerMetrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let metrics = metrics.clone();
            async move { ([(header::CONTENT_TYPE, OPENMETRICS)], metrics.encode()) }
        }),
    );
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabel {
    queue: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueStateLabels {
    queue: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkerLabel {
    worker: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabel {
    job: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobStateLabels {
    job: String,
    state: String,
}

/// Registers a family of gauges and returns it.
fn family<L, G>(registry: &mut Registry, name: &str, help: &str) -> Family<L, G>
where
    L: EncodeLabelSet + Clone + std::hash::Hash + Eq + std::fmt::Debug + Send + Sync + 'static,
    G: prometheus_client::metrics::TypedMetric
        + prometheus_client::encoding::EncodeMetric
        + Default
        + Send
        + Sync
        + std::fmt::Debug
        + 'static,
{
    let family = Family::<L, G>::default();
    registry.register(name, help, family.clone());
    family
}

/// The store's numbers now, for Prometheus.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text", body = String))
)]
pub(crate) async fn metrics(State(state): State<AppState>) -> Result<Response, Problem> {
    let now = Utc::now();
    let store = &state.store;
    let queues = store.queue_stats(now).await?;
    let workers = store.list_workers().await?;
    let jobs = wrangle::jobs::all_progress(store).await?;

    let mut registry = Registry::with_prefix("wrangle");
    let tasks: Family<QueueStateLabels, Gauge> =
        family(&mut registry, "tasks", "Tasks per queue and state");
    let paused: Family<QueueLabel, Gauge> =
        family(&mut registry, "queue_paused", "1 when the queue is paused");
    let oldest: Family<QueueLabel, FloatGauge> = family(
        &mut registry,
        "queue_oldest_wait_seconds",
        "How long the oldest due task of the queue has waited",
    );
    let completed: Family<QueueLabel, Gauge> = family(
        &mut registry,
        "queue_completed_last_minute",
        "Attempts completed in the last minute",
    );
    let failed: Family<QueueLabel, Gauge> = family(
        &mut registry,
        "queue_failed_last_minute",
        "Attempts failed in the last minute",
    );
    for q in &queues {
        let label = QueueLabel {
            queue: q.queue.clone(),
        };
        for (task_state, n) in &q.counts {
            tasks
                .get_or_create(&QueueStateLabels {
                    queue: q.queue.clone(),
                    state: task_state.to_string(),
                })
                .set(*n as i64);
        }
        paused.get_or_create(&label).set(i64::from(q.paused));
        let wait = q
            .oldest_due_at
            .map(|at| (now - at).num_milliseconds().max(0) as f64 / 1000.0)
            .unwrap_or(0.0);
        oldest.get_or_create(&label).set(wait);
        completed
            .get_or_create(&label)
            .set(q.completed_last_minute as i64);
        failed
            .get_or_create(&label)
            .set(q.failed_last_minute as i64);
    }

    let registered: Gauge = Gauge::default();
    registry.register("workers", "Registered workers", registered.clone());
    registered.set(workers.len() as i64);
    let runners: Family<WorkerLabel, Gauge> = family(
        &mut registry,
        "worker_runners",
        "Runner slots of the worker",
    );
    let executing: Family<WorkerLabel, Gauge> = family(
        &mut registry,
        "worker_executing",
        "Tasks the worker's runners are executing",
    );
    let processes: Family<WorkerLabel, Gauge> = family(
        &mut registry,
        "worker_runner_processes",
        "Long-lived runner processes of the worker",
    );
    let restarts: Family<WorkerLabel, Gauge> = family(
        &mut registry,
        "worker_runner_restarts",
        "Times the worker's runner processes were started again after ending",
    );
    let memory: Family<WorkerLabel, Gauge> = family(
        &mut registry,
        "worker_memory_bytes",
        "Resident memory of the worker process",
    );
    let lost: Family<WorkerLabel, Gauge> = family(
        &mut registry,
        "worker_lost",
        "1 when the worker missed its heartbeats for a whole lease",
    );
    for w in &workers {
        let label = WorkerLabel {
            worker: w.info.name.clone(),
        };
        runners.get_or_create(&label).set(i64::from(w.info.runners));
        executing
            .get_or_create(&label)
            .set(w.info.executing() as i64);
        processes
            .get_or_create(&label)
            .set(w.info.processes.len() as i64);
        restarts
            .get_or_create(&label)
            .set(w.info.processes.iter().map(|p| i64::from(p.restarts)).sum());
        memory.get_or_create(&label).set(w.info.rss_bytes as i64);
        lost.get_or_create(&label).set(i64::from(w.is_lost(now)));
    }

    let ids: Family<JobStateLabels, Gauge> = family(
        &mut registry,
        "job_ids",
        "Ids of the job per state (done, failed, running, waiting, cancelled)",
    );
    let total: Family<JobLabel, Gauge> = family(&mut registry, "job_total_ids", "Ids of the job");
    let rate: Family<JobLabel, FloatGauge> = family(
        &mut registry,
        "job_rate_ids_per_second",
        "Ids the job completed per second over the last minute",
    );
    for p in &jobs {
        let name = p.job.name().to_string();
        for (job_state, count) in [
            ("done", p.done),
            ("failed", p.failed),
            ("running", p.running),
            ("waiting", p.waiting),
            ("cancelled", p.cancelled),
        ] {
            ids.get_or_create(&JobStateLabels {
                job: name.clone(),
                state: job_state.to_string(),
            })
            .set(count.ids.min(i64::MAX as u64) as i64);
        }
        let label = JobLabel { job: name };
        total
            .get_or_create(&label)
            .set(p.total.ids.min(i64::MAX as u64) as i64);
        rate.get_or_create(&label).set(p.rate);
    }

    let mut text = String::new();
    encode(&mut text, &registry)
        .map_err(|e| Problem::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, OPENMETRICS)], text).into_response())
}
