//! Throughput of the divvy-style API with a no-op `perform`: how much wrangle itself costs
//! per item in-process. Used by `bench/run.sh`.
//!
//!     cargo run --release -p wrangle --example parallel_noop -- [ITEMS=10000000] [RUNNERS=2]

use wrangle::parallel::{BoxError, Dispatcher, Parallel, ParallelJob, RunnerInfo};

struct Noop {
    items: u64,
}

impl ParallelJob for Noop {
    type Item = u64;

    fn dispatch(&self, items: &mut Dispatcher<'_, u64>) -> Result<(), BoxError> {
        for item in 0..self.items {
            items.send(item)?;
        }
        Ok(())
    }

    fn perform(&self, item: u64, _runner: &RunnerInfo) -> Result<(), BoxError> {
        std::hint::black_box(item);
        Ok(())
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let items = args
        .next()
        .map_or(10_000_000, |a| a.parse().expect("ITEMS is a number"));
    let runners = args
        .next()
        .map_or(2, |a| a.parse().expect("RUNNERS is a number"));
    let report = Parallel::new(runners).run(&Noop { items });
    assert!(
        report.is_success() && report.performed == items,
        "{report:?}"
    );
    let seconds = report.elapsed.as_secs_f64();
    println!(
        "{items} items in {seconds:.3}s: {:.0} items/s",
        items as f64 / seconds
    );
}
