//! The autoscaler (`--autoscale MIN..MAX`): every tick, for each pool group, reads its
//! queues' backlog from the store and the machine's load and memory, asks
//! [`wrangle_core::pool::decide`] what to do, applies it and logs why.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use wrangle_core::pool::{AutoscaleDecision, AutoscaleInput, AutoscaleLimits, decide};
use wrangle_core::task::TaskState;

use crate::Shared;

/// What the autoscaler remembers of a group between ticks.
#[derive(Debug, Default)]
struct GroupHistory {
    previous_oldest_wait: Duration,
    idle_ticks: u32,
    last_hold: String,
}

pub(crate) async fn run(shared: Arc<Shared>, limits: AutoscaleLimits, stop: CancellationToken) {
    let mut history: HashMap<String, GroupHistory> = HashMap::new();
    let mut tick = tokio::time::interval(shared.config.autoscale_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        let now = shared.config.now();
        let stats = match shared.store.queue_stats(now).await {
            Ok(stats) => stats,
            Err(err) => {
                tracing::debug!(error = %err, "autoscale: cannot read queue stats");
                continue;
            }
        };
        let (load_per_cpu, memory_available) = machine_pressure();
        let mut changed = false;
        for group in shared.groups() {
            let mut waiting = 0;
            let mut oldest_wait = Duration::ZERO;
            for queue in stats
                .iter()
                .filter(|q| !q.paused && group.queues.matches(&q.queue))
            {
                waiting += queue
                    .counts
                    .get(&TaskState::Available)
                    .copied()
                    .unwrap_or(0);
                if let Some(due) = queue.oldest_due_at {
                    oldest_wait = oldest_wait.max((now - due).to_std().unwrap_or_default());
                }
            }
            let past = history.entry(group.name.clone()).or_default();
            let input = AutoscaleInput {
                runners: group.target() as u32,
                busy: group.running() as u32,
                waiting,
                oldest_wait,
                previous_oldest_wait: past.previous_oldest_wait,
                idle_ticks: past.idle_ticks,
                load_per_cpu,
                memory_available,
            };
            past.previous_oldest_wait = oldest_wait;
            past.idle_ticks = if waiting == 0 && input.busy < input.runners {
                past.idle_ticks + 1
            } else {
                0
            };
            match decide(&input, &limits) {
                AutoscaleDecision::Scale { runners, reason } => {
                    let previous = group.set_target(runners as usize);
                    tracing::info!(group = %group.name, from = previous, to = runners, "autoscale: {reason}");
                    past.idle_ticks = 0;
                    past.last_hold.clear();
                    changed = true;
                }
                AutoscaleDecision::Hold { reason } => {
                    if !reason.is_empty() && reason != past.last_hold {
                        tracing::info!(group = %group.name, runners = input.runners, "autoscale: holding: {reason}");
                    }
                    past.last_hold = reason;
                }
            }
        }
        if changed {
            shared.resize_executors();
            let _ = shared.store.register_worker(shared.info(), now).await;
        }
    }
}

/// The one-minute load average per CPU and the fraction of memory available, from
/// `/proc` (0 load and all memory free where unreadable, so autoscaling is not blocked).
fn machine_pressure() -> (f64, f64) {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |name: &str| {
        meminfo
            .lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.split_whitespace().nth(1)?.parse::<f64>().ok())
    };
    let available = match (field("MemAvailable:"), field("MemTotal:")) {
        (Some(available), Some(total)) if total > 0.0 => available / total,
        _ => 1.0,
    };
    (load / cpus, available)
}
