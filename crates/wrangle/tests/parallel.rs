//! The divvy-style parallel API: every item performed once, failures and panics counted per
//! item, runner hooks, stopping (stop handle, dispatch errors, no runner left) and the bound
//! on items held in memory.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use wrangle::parallel::{
    self, BoxError, Dispatcher, MAX_REPORTED_FAILURES, Parallel, ParallelJob, RunnerInfo,
    StopHandle,
};

/// Sends 0..count and records how often each item was performed.
struct CountEach {
    performed: Vec<AtomicU8>,
}

impl ParallelJob for CountEach {
    type Item = usize;

    fn dispatch(&self, items: &mut Dispatcher<'_, usize>) -> Result<(), BoxError> {
        for item in 0..self.performed.len() {
            items.send(item)?;
        }
        Ok(())
    }

    fn perform(&self, item: usize, _runner: &RunnerInfo) -> Result<(), BoxError> {
        self.performed[item].fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

#[test]
fn every_item_is_performed_exactly_once() {
    let job = CountEach {
        performed: (0..100_000).map(|_| AtomicU8::new(0)).collect(),
    };
    let report = parallel::run(&job, 4);

    assert!(report.is_success(), "{report:?}");
    assert_eq!((report.dispatched, report.performed), (100_000, 100_000));
    let not_once: Vec<usize> = (0..job.performed.len())
        .filter(|&item| job.performed[item].load(Ordering::Relaxed) != 1)
        .collect();
    assert!(
        not_once.is_empty(),
        "items not performed exactly once: {not_once:?}"
    );
}

/// Fails items ending in 07 with an error and panics on items ending in 13.
struct SomeFail;

impl ParallelJob for SomeFail {
    type Item = u64;

    fn dispatch(&self, items: &mut Dispatcher<'_, u64>) -> Result<(), BoxError> {
        for item in 0..1000 {
            items.send(item)?;
        }
        Ok(())
    }

    fn perform(&self, item: u64, _runner: &RunnerInfo) -> Result<(), BoxError> {
        match item % 100 {
            7 => Err(format!("item {item} is bad").into()),
            13 => panic!("item {item} exploded"),
            _ => Ok(()),
        }
    }
}

#[test]
fn errors_and_panics_are_failures_of_their_items() {
    let report = parallel::run(&SomeFail, 3);

    assert_eq!(
        (report.dispatched, report.performed, report.failed),
        (1000, 1000, 20)
    );
    assert!(report.runner_failures.is_empty(), "{report:?}");
    assert!(report.dispatch_error.is_none());
    assert!(!report.is_success());
    let expected: Vec<(u64, String)> = (0..10)
        .flat_map(|hundred| {
            let bad = hundred * 100 + 7;
            let exploded = hundred * 100 + 13;
            [
                (bad, format!("item {bad} is bad")),
                (exploded, format!("panicked: item {exploded} exploded")),
            ]
        })
        .collect();
    let reported: Vec<(u64, String)> = report
        .failures
        .iter()
        .map(|failure| (failure.seq, failure.message.clone()))
        .collect();
    assert_eq!(reported, expected);
    assert!(report.failures.iter().all(|f| (1..=3).contains(&f.runner)));
}

/// Every item fails.
struct AllFail {
    items: u64,
}

impl ParallelJob for AllFail {
    type Item = u64;

    fn dispatch(&self, items: &mut Dispatcher<'_, u64>) -> Result<(), BoxError> {
        for item in 0..self.items {
            items.send(item)?;
        }
        Ok(())
    }

    fn perform(&self, item: u64, _runner: &RunnerInfo) -> Result<(), BoxError> {
        Err(format!("no {item}").into())
    }
}

#[test]
fn the_report_keeps_the_first_failures_only() {
    let report = parallel::run(&AllFail { items: 10_000 }, 2);

    assert_eq!((report.performed, report.failed), (10_000, 10_000));
    let seqs: Vec<u64> = report.failures.iter().map(|f| f.seq).collect();
    assert_eq!(seqs, (0..MAX_REPORTED_FAILURES as u64).collect::<Vec<_>>());
}

/// Records hook calls and which runners performed items; some runners fail to start.
#[derive(Default)]
struct Hooks {
    panic_on_start: Option<usize>,
    fail_on_start: Option<usize>,
    started: Mutex<Vec<RunnerInfo>>,
    stopped: Mutex<Vec<RunnerInfo>>,
    performed_by: Mutex<BTreeSet<usize>>,
    performed: AtomicU64,
}

impl ParallelJob for Hooks {
    type Item = u32;

    fn dispatch(&self, items: &mut Dispatcher<'_, u32>) -> Result<(), BoxError> {
        for item in 0..20_000 {
            items.send(item)?;
        }
        Ok(())
    }

    fn perform(&self, _item: u32, runner: &RunnerInfo) -> Result<(), BoxError> {
        self.performed_by.lock().unwrap().insert(runner.number());
        self.performed.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn runner_started(&self, runner: &RunnerInfo) -> Result<(), BoxError> {
        self.started.lock().unwrap().push(*runner);
        if self.panic_on_start == Some(runner.number()) {
            panic!("no connection for runner {}", runner.number());
        }
        if self.fail_on_start == Some(runner.number()) {
            return Err("refused".into());
        }
        Ok(())
    }

    fn runner_stopped(&self, runner: &RunnerInfo) {
        self.stopped.lock().unwrap().push(*runner);
    }
}

fn numbers(runners: &Mutex<Vec<RunnerInfo>>) -> Vec<usize> {
    let mut numbers: Vec<usize> = runners.lock().unwrap().iter().map(|r| r.number()).collect();
    numbers.sort_unstable();
    numbers
}

#[test]
fn hooks_run_once_per_runner_numbered_from_1() {
    let job = Hooks::default();
    let report = parallel::run(&job, 4);

    assert!(report.is_success(), "{report:?}");
    assert_eq!(numbers(&job.started), [1, 2, 3, 4]);
    assert_eq!(numbers(&job.stopped), [1, 2, 3, 4]);
    assert!(job.started.lock().unwrap().iter().all(|r| r.runners() == 4));
    assert!(
        job.performed_by
            .lock()
            .unwrap()
            .is_subset(&(1..=4).collect())
    );
}

#[test]
fn a_runner_whose_start_fails_ends_alone() {
    let job = Hooks {
        panic_on_start: Some(2),
        fail_on_start: Some(3),
        ..Hooks::default()
    };
    let report = parallel::run(&job, 4);

    assert_eq!(
        (report.dispatched, report.performed, report.failed),
        (20_000, 20_000, 0)
    );
    let failures: Vec<(usize, &str)> = report
        .runner_failures
        .iter()
        .map(|f| (f.runner, f.message.as_str()))
        .collect();
    assert_eq!(
        failures,
        [
            (2, "runner_started panicked: no connection for runner 2"),
            (3, "runner_started failed: refused"),
        ]
    );
    assert_eq!(numbers(&job.started), [1, 2, 3, 4]);
    assert_eq!(
        numbers(&job.stopped),
        [1, 4],
        "stop hooks only for started runners"
    );
    assert!(job.performed_by.lock().unwrap().is_subset(&[1, 4].into()));
}

/// Sends items forever; fails every runner's start when asked.
struct Endless {
    stop: StopHandle,
    stop_after: u64,
    refuse_to_start: bool,
    sent: AtomicU64,
    performed: AtomicU64,
    most_in_flight: AtomicU64,
}

impl Endless {
    fn new(stop: StopHandle, stop_after: u64) -> Self {
        Endless {
            stop,
            stop_after,
            refuse_to_start: false,
            sent: AtomicU64::new(0),
            performed: AtomicU64::new(0),
            most_in_flight: AtomicU64::new(0),
        }
    }
}

impl ParallelJob for Endless {
    type Item = u64;

    fn dispatch(&self, items: &mut Dispatcher<'_, u64>) -> Result<(), BoxError> {
        for item in 0.. {
            items.send(item)?;
            let sent = self.sent.fetch_add(1, Ordering::Relaxed) + 1;
            let in_flight = sent - self.performed.load(Ordering::Relaxed);
            self.most_in_flight.fetch_max(in_flight, Ordering::Relaxed);
        }
        Ok(())
    }

    fn perform(&self, _item: u64, _runner: &RunnerInfo) -> Result<(), BoxError> {
        // Slower than dispatch, so the queue fills and dispatch has to block.
        thread::sleep(Duration::from_micros(20));
        if self.performed.fetch_add(1, Ordering::Relaxed) + 1 == self.stop_after {
            self.stop.stop();
        }
        Ok(())
    }

    fn runner_started(&self, _runner: &RunnerInfo) -> Result<(), BoxError> {
        if self.refuse_to_start {
            return Err("not today".into());
        }
        Ok(())
    }
}

#[test]
fn the_stop_handle_ends_an_endless_dispatch_with_bounded_memory() {
    let parallel = Parallel::new(2).chunk_size(64).queued_chunks(2);
    let job = Endless::new(parallel.stop_handle(), 3000);
    let report = parallel.run(&job);

    assert!(report.stopped, "{report:?}");
    assert!(
        report.dispatch_error.is_none(),
        "a stop is not a dispatch error"
    );
    assert!(report.performed >= 3000);
    assert_eq!(report.dispatched, job.sent.load(Ordering::Relaxed));
    let bound = parallel.max_in_flight() as u64;
    assert_eq!(bound, (2 + 1 + 2) * 64);
    let most = job.most_in_flight.load(Ordering::Relaxed);
    assert!(most <= bound, "{most} items in flight, bound {bound}");
    assert!(
        most > 64,
        "dispatch never got ahead ({most}), so nothing was tested"
    );
    assert!(report.dispatched - report.performed <= bound);
}

#[test]
fn a_run_stopped_before_it_starts_sends_nothing() {
    let parallel = Parallel::new(2);
    parallel.stop_handle().stop();
    let report = parallel.run(&Endless::new(parallel.stop_handle(), 0));

    assert!(report.stopped);
    assert_eq!((report.dispatched, report.performed), (0, 0));
}

#[test]
fn a_run_without_runners_left_ends() {
    let parallel = Parallel::new(3);
    let job = Endless {
        refuse_to_start: true,
        ..Endless::new(parallel.stop_handle(), 0)
    };
    let report = parallel.run(&job);

    assert!(
        !report.stopped && report.dispatch_error.is_none(),
        "{report:?}"
    );
    assert_eq!(report.performed, 0);
    assert!(report.dispatched <= parallel.max_in_flight() as u64);
    let runners: Vec<usize> = report.runner_failures.iter().map(|f| f.runner).collect();
    assert_eq!(runners, [1, 2, 3]);
}

/// Sends `items` items, then fails or panics.
struct BrokenSource {
    items: u64,
    panics: bool,
}

impl ParallelJob for BrokenSource {
    type Item = u64;

    fn dispatch(&self, items: &mut Dispatcher<'_, u64>) -> Result<(), BoxError> {
        for item in 0..self.items {
            items.send(item)?;
        }
        if self.panics {
            panic!("source vanished");
        }
        Err("source broke".into())
    }

    fn perform(&self, _item: u64, _runner: &RunnerInfo) -> Result<(), BoxError> {
        Ok(())
    }
}

#[test]
fn a_dispatch_error_ends_the_run_and_is_reported() {
    for (panics, message) in [
        (false, "source broke"),
        (true, "dispatch panicked: source vanished"),
    ] {
        let report = parallel::run(
            &BrokenSource {
                items: 10_000,
                panics,
            },
            2,
        );

        assert_eq!(report.dispatch_error.as_deref(), Some(message));
        assert_eq!(report.dispatched, 10_000);
        assert!(report.performed <= 10_000);
        assert!(!report.stopped && !report.is_success());
        assert!(report.runner_failures.is_empty(), "{report:?}");
    }
}

/// Sends each item only after the previous one was performed, as a slow source would.
struct Trickle {
    performed: AtomicUsize,
}

impl ParallelJob for Trickle {
    type Item = usize;

    fn dispatch(&self, items: &mut Dispatcher<'_, usize>) -> Result<(), BoxError> {
        for item in 0..5 {
            items.send(item)?;
            let deadline = Instant::now() + Duration::from_secs(10);
            while self.performed.load(Ordering::Acquire) <= item {
                if Instant::now() > deadline {
                    return Err(format!("item {item} still waits in a chunk").into());
                }
                thread::sleep(Duration::from_millis(1));
            }
        }
        Ok(())
    }

    fn perform(&self, _item: usize, _runner: &RunnerInfo) -> Result<(), BoxError> {
        self.performed.fetch_add(1, Ordering::Release);
        Ok(())
    }
}

#[test]
fn trickling_items_are_performed_before_a_chunk_fills() {
    let job = Trickle {
        performed: AtomicUsize::new(0),
    };
    let report = Parallel::new(2)
        .max_wait(Duration::from_millis(2))
        .run(&job);

    assert!(report.is_success(), "{report:?}");
    assert_eq!(report.performed, 5);
}

/// Slow items: each takes 50 ms.
#[derive(Default)]
struct Slow {
    performed_by: Mutex<BTreeSet<usize>>,
}

impl ParallelJob for Slow {
    type Item = u8;

    fn dispatch(&self, items: &mut Dispatcher<'_, u8>) -> Result<(), BoxError> {
        for item in 0..8 {
            items.send(item)?;
        }
        Ok(())
    }

    fn perform(&self, _item: u8, runner: &RunnerInfo) -> Result<(), BoxError> {
        self.performed_by.lock().unwrap().insert(runner.number());
        thread::sleep(Duration::from_millis(50));
        Ok(())
    }
}

#[test]
fn slow_items_spread_over_every_runner() {
    let job = Slow::default();
    let report = parallel::run(&job, 4);

    assert!(report.is_success(), "{report:?}");
    assert_eq!(*job.performed_by.lock().unwrap(), (1..=4).collect());
}
