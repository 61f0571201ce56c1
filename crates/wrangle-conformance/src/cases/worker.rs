//! The worker registry: registration, heartbeats refreshing it, and pruning the silent.

use anyhow::Result;
use wrangle_core::{Heartbeat, WorkerInfo, WorkerRecord};

use crate::Handle;
use crate::ensure_eq;
use crate::support::{at, lease, worker_info};

cases![
    register_list_deregister,
    heartbeat_updates_last_seen_and_info,
    prune_removes_workers_silent_for_five_of_their_own_leases,
];

/// The registered workers' names, in listed order.
async fn names(store: &Handle) -> Result<Vec<String>> {
    Ok(store
        .list_workers()
        .await?
        .into_iter()
        .map(|w| w.info.name)
        .collect())
}

/// Registered workers are listed sorted by name with what they said and when;
/// registering again replaces the record; deregistering removes it.
async fn register_list_deregister(a: Handle, b: Handle) -> Result<()> {
    ensure_eq!(b.list_workers().await?, vec![], "workers of a new store");
    let beta = worker_info("beta");
    let alpha = worker_info("alpha");
    a.register_worker(beta.clone(), at(0)).await?;
    a.register_worker(alpha.clone(), at(1)).await?;
    ensure_eq!(
        b.list_workers().await?,
        vec![
            WorkerRecord {
                info: alpha.clone(),
                last_seen: at(1)
            },
            WorkerRecord {
                info: beta.clone(),
                last_seen: at(0)
            },
        ],
        "workers after two registrations"
    );
    let alpha = wrangle_core::WorkerInfo {
        runners: 8,
        pid: 99,
        pool: vec![wrangle_core::GroupInfo {
            name: "a,b".into(),
            runners: 8,
            tasks: vec![1, 2],
        }],
        processes: vec![wrangle_core::ProcessInfo {
            kind: "k".into(),
            runner: 1,
            pid: 100,
            started_at: at(1),
            tasks: 1,
            rss_bytes: 1 << 20,
            restarts: 2,
        }],
        rss_bytes: 5 << 20,
        autoscale: Some((1, 8)),
        ..alpha
    };
    a.register_worker(alpha.clone(), at(5)).await?;
    ensure_eq!(
        b.list_workers().await?.first(),
        Some(&WorkerRecord {
            info: alpha,
            last_seen: at(5)
        }),
        "the re-registered worker"
    );
    ensure_eq!(
        names(&b).await?.len(),
        2,
        "workers after re-registering one"
    );
    b.deregister_worker("beta").await?;
    ensure_eq!(
        names(&a).await?,
        vec!["alpha"],
        "workers after deregistering beta"
    );
    Ok(())
}

/// A heartbeat refreshes its worker's record: `last_seen` becomes the beat's `now` and
/// the info becomes what the beat says.
async fn heartbeat_updates_last_seen_and_info(a: Handle, b: Handle) -> Result<()> {
    a.register_worker(worker_info("w1"), at(0)).await?;
    a.register_worker(worker_info("w2"), at(0)).await?;
    let mut info = worker_info("w1");
    info.runners = 6;
    info.queues = vec!["a".into(), "b".into()];
    let beat = Heartbeat {
        worker: info.clone(),
        leases: Vec::new(),
        lease_until: at(10) + lease(),
        now: at(10),
    };
    b.heartbeat(beat).await?;
    ensure_eq!(
        a.list_workers().await?,
        vec![
            WorkerRecord {
                info,
                last_seen: at(10)
            },
            WorkerRecord {
                info: worker_info("w2"),
                last_seen: at(0)
            },
        ],
        "workers after w1's heartbeat"
    );
    Ok(())
}

/// `prune_lost_workers` removes the workers silent for more than `LOST_AFTER_LEASES` (5)
/// of their own leases and returns their names, sorted: each is judged by its own lease
/// (from its registration or its last heartbeat), and one that did not say its lease is
/// never removed.
async fn prune_removes_workers_silent_for_five_of_their_own_leases(
    a: Handle,
    b: Handle,
) -> Result<()> {
    let with_lease = |name: &str, lease_ms: u64| WorkerInfo {
        lease_ms,
        ..worker_info(name)
    };
    // Lost after 5 s, 50 s, 5 s, never.
    a.register_worker(with_lease("short", 1000), at(0)).await?;
    a.register_worker(with_lease("long", 10_000), at(0)).await?;
    a.register_worker(with_lease("beating", 1000), at(0))
        .await?;
    a.register_worker(worker_info("no-lease"), at(0)).await?;
    a.heartbeat(Heartbeat {
        worker: with_lease("beating", 1000),
        leases: Vec::new(),
        lease_until: at(9),
        now: at(8),
    })
    .await?;

    ensure_eq!(
        b.prune_lost_workers(at(5)).await?,
        Vec::<String>::new(),
        "at 5 s"
    );
    ensure_eq!(
        b.prune_lost_workers(at(10)).await?,
        vec!["short"],
        "at 10 s"
    );
    ensure_eq!(
        names(&a).await?,
        vec!["beating", "long", "no-lease"],
        "workers left at 10 s"
    );
    ensure_eq!(
        b.prune_lost_workers(at(60)).await?,
        vec!["beating", "long"],
        "at 60 s"
    );
    ensure_eq!(names(&a).await?, vec!["no-lease"], "workers left at 60 s");
    ensure_eq!(
        b.prune_lost_workers(at(100_000)).await?,
        Vec::<String>::new(),
        "a worker without a lease stays"
    );
    Ok(())
}
