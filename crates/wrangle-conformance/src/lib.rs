//! The one conformance suite every wrangle store passes unchanged.
//!
//! A store crate runs it from a `harness = false` integration test:
//!
//! ```ignore
//! struct Memory;
//!
//! #[wrangle_conformance::async_trait]
//! impl wrangle_conformance::Harness for Memory {
//!     fn name(&self) -> &'static str {
//!         "memory"
//!     }
//!     async fn fresh(&self) -> wrangle_conformance::anyhow::Result<(Handle, Handle)> {
//!         let store: Handle = Arc::new(MemoryStore::new());
//!         Ok((store.clone(), store))
//!     }
//! }
//!
//! fn main() {
//!     wrangle_conformance::run(Memory)
//! }
//! ```
//!
//! Every case becomes one libtest-mimic trial named `area::what_it_checks`, so
//! `cargo test -p STORE --test conformance -- claim::` filters and `-- --list` lists them.
//! Each trial gets its own tokio runtime and its own fresh store, and drives time by hand
//! through the `now` arguments of the [`Store`] trait (see [`support::at`]); only the
//! `listen` cases wait in real time, and never for more than a second.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use libtest_mimic::{Arguments, Failed, Trial};
pub use wrangle_core::Store;

pub use anyhow;
pub use async_trait::async_trait;

mod cases;
pub mod support;

/// A handle onto a store under test.
pub type Handle = Arc<dyn Store>;

/// Opens stores for the suite.
#[async_trait]
pub trait Harness: Send + Sync + 'static {
    /// The store's name, for messages.
    fn name(&self) -> &'static str;

    /// Two handles onto one new, empty, isolated store: the second is how another process
    /// sees it (for the in-memory store, the same `Arc` twice; for SQLite, a second pool on
    /// the same file).
    async fn fresh(&self) -> anyhow::Result<(Handle, Handle)>;
}

/// The future a case returns.
pub(crate) type CaseFuture = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// One conformance case: a name and the check it runs on two handles of a fresh store.
#[derive(Clone, Copy)]
pub(crate) struct Case {
    /// The area (the module it lives in: `claim`, `lease`, …).
    area: &'static str,
    /// What it checks (the function's name).
    check: &'static str,
    /// The check itself.
    run: fn(Handle, Handle) -> CaseFuture,
}

impl Case {
    /// A case named `area::check`.
    pub(crate) fn new(
        area: &'static str,
        check: &'static str,
        run: fn(Handle, Handle) -> CaseFuture,
    ) -> Self {
        Case { area, check, run }
    }

    /// The trial name, `area::check`.
    fn name(&self) -> String {
        format!("{}::{}", self.area, self.check)
    }
}

/// Longest a single case may take before it is failed as hung (a deadlocked store).
const CASE_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs every case as a libtest-mimic trial (so `cargo test -- NAME` filtering and
/// `--list` work) and exits with libtest's exit code.
pub fn run(harness: impl Harness) -> ! {
    let args = Arguments::from_args();
    let harness = Arc::new(harness);
    let trials = cases::all()
        .into_iter()
        .map(|case| {
            let harness = Arc::clone(&harness);
            Trial::test(case.name(), move || run_case(harness.as_ref(), case))
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    // The trials (and their clones of the harness) are gone: drop the harness before
    // exiting so that it can clean up (a temporary directory, say).
    drop(harness);
    conclusion.exit()
}

/// Runs one case on its own runtime against a fresh store.
fn run_case(harness: &dyn Harness, case: Case) -> Result<(), Failed> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot build a tokio runtime: {e}"))?;
    let outcome = runtime.block_on(async {
        let (first, second) = harness
            .fresh()
            .await
            .with_context(|| format!("opening a fresh {} store", harness.name()))?;
        match tokio::time::timeout(CASE_TIMEOUT, (case.run)(first, second)).await {
            Ok(result) => result,
            Err(_) => anyhow::bail!("hung: did not finish within {CASE_TIMEOUT:?}"),
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(5));
    outcome.map_err(|err| {
        // The error and its causes, one per line (no backtrace: the case names the rule).
        let causes: Vec<String> = err.chain().map(ToString::to_string).collect();
        Failed::from(format!(
            "{} store fails {}: {}",
            harness.name(),
            case.name(),
            causes.join("\n")
        ))
    })
}
