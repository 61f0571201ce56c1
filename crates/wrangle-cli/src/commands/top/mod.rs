//! `wrangle top`: the full-screen dashboard (ratatui). This module owns the terminal and
//! the main loop; the parts are:
//!
//! - [`snapshot`]: store reads in a background task, so a slow store never freezes keys;
//! - [`dashboard`]: the state, and what each key asks for;
//! - [`view`]: drawing that state at any terminal size.
//!
//! The loop redraws after every snapshot, key and answer, and twice a second for the
//! "updated Ns ago" clock. Changes asked for by keys (scale a worker, pause a queue) run
//! in their own tasks; their answers go to the footer.

mod dashboard;
mod snapshot;
mod view;

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ratatui::crossterm::event::{self, Event};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use wrangle::Store;
use wrangle::control::{self, ControlCommand};
use wrangle::parse::parse_duration;

use super::Context;
use crate::cli::TopArgs;
use crate::fail::{CliError, CliResult};
use dashboard::{Dashboard, Intent, Request};
use snapshot::Snapshot;

/// Refreshing faster than this only loads the store.
const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// How long a scale request waits for the worker's acknowledgement.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the key reader checks whether the dashboard ended.
const KEY_POLL: Duration = Duration::from_millis(100);

/// A checked `top` command line.
pub(crate) struct TopPlan {
    interval: Duration,
}

/// Checks the arguments, and that there is a terminal to draw on, before the store is
/// opened.
pub(crate) fn plan(args: &TopArgs, json: bool) -> CliResult<TopPlan> {
    let interval = parse_duration(&args.interval)?;
    if interval < MIN_INTERVAL {
        return Err(CliError::input(format!(
            "--interval must be at least {}ms, not '{}'",
            MIN_INTERVAL.as_millis(),
            args.interval
        )));
    }
    if json {
        return Err(CliError::input(
            "top is a dashboard and has no JSON output; use `wrangle --json status`",
        ));
    }
    if !std::io::stdout().is_terminal() {
        return Err(CliError::input(
            "top needs a terminal (stdout is not one); use `wrangle status` for a plain snapshot",
        ));
    }
    Ok(TopPlan { interval })
}

/// What reaches the main loop from the background tasks.
enum Update {
    Snapshot(Result<Snapshot, String>),
    Answer {
        request: Request,
        outcome: Result<String, String>,
    },
}

/// Runs the dashboard until `q`, Esc, Ctrl-C, SIGINT or SIGTERM.
pub(crate) async fn run(context: Context, plan: TopPlan) -> CliResult {
    let store = context.store;
    let mut screen = Screen::enter()?;
    let (updates_sender, mut updates) = mpsc::unbounded_channel();
    let refresh_now = Arc::new(Notify::new());
    let refresher = tokio::spawn(snapshot::refresh_loop(
        store.clone(),
        plan.interval,
        refresh_now.clone(),
        updates_sender.clone(),
    ));
    let result = {
        let mut keys = KeyReader::start();
        let result = event_loop(
            &mut screen,
            &mut keys,
            &mut updates,
            &store,
            &updates_sender,
            &refresh_now,
        )
        .await;
        keys.stop();
        result
    };
    refresher.abort();
    // Restore the terminal before any error is printed.
    drop(screen);
    result.map(|()| 0)
}

async fn event_loop(
    screen: &mut Screen,
    keys: &mut KeyReader,
    updates: &mut mpsc::UnboundedReceiver<Update>,
    store: &Arc<dyn Store>,
    updates_sender: &mpsc::UnboundedSender<Update>,
    refresh_now: &Arc<Notify>,
) -> CliResult<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let signal_error = |e: std::io::Error| CliError::Runtime(e.to_string());
    let mut interrupt = signal(SignalKind::interrupt()).map_err(signal_error)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(signal_error)?;
    let mut clock = tokio::time::interval(Duration::from_millis(500));
    let mut dashboard = Dashboard::new();
    loop {
        screen
            .terminal
            .draw(|frame| view::draw(frame, &mut dashboard, Instant::now()))
            .map_err(|e| CliError::Runtime(format!("drawing the dashboard: {e}")))?;
        tokio::select! {
            update = updates.recv() => match update {
                Some(Update::Snapshot(result)) => dashboard.apply_snapshot(result),
                Some(Update::Answer { request, outcome }) => {
                    dashboard.apply_answer(&request, outcome, Instant::now());
                    refresh_now.notify_one();
                }
                None => return Err(CliError::Runtime("the store reader stopped".into())),
            },
            key = keys.events.recv() => match key {
                Some(Ok(event)) => match dashboard.on_event(&event) {
                    Some(Intent::Quit) => return Ok(()),
                    Some(Intent::RefreshNow) => refresh_now.notify_one(),
                    Some(Intent::Send(request)) => {
                        tokio::spawn(carry_out(store.clone(), request, updates_sender.clone()));
                    }
                    None => {}
                },
                Some(Err(e)) => {
                    return Err(CliError::Runtime(format!("reading the terminal: {e}")));
                }
                None => return Ok(()),
            },
            _ = clock.tick() => {}
            _ = interrupt.recv() => return Ok(()),
            _ = terminate.recv() => return Ok(()),
        }
    }
}

/// Makes a change a key asked for and reports the answer.
async fn carry_out(
    store: Arc<dyn Store>,
    request: Request,
    updates: mpsc::UnboundedSender<Update>,
) {
    let outcome = match &request {
        Request::Scale {
            worker,
            group,
            runners,
        } => {
            let command = ControlCommand::Scale {
                queue: group.clone(),
                runners: *runners,
            };
            match control::send_and_wait(&store, worker, command, ACK_TIMEOUT).await {
                Ok(ack) if ack.ok => Ok(format!("{worker}: {}", ack.message)),
                Ok(ack) => Err(format!("{worker} refused: {}", ack.message)),
                Err(e) => Err(e.to_string()),
            }
        }
        Request::SetPaused { queue, paused } => store
            .set_queue_paused(queue, *paused)
            .await
            .map(|()| {
                format!(
                    "queue {queue} {} for every worker",
                    if *paused { "paused" } else { "resumed" }
                )
            })
            .map_err(|e| format!("queue {queue}: {e}")),
    };
    // The dashboard may have quit meanwhile; nobody to tell then.
    let _ = updates.send(Update::Answer { request, outcome });
}

/// The terminal in raw mode on the alternate screen, restored when dropped: on quit, on
/// an error, and (through ratatui's panic hook) on a panic.
struct Screen {
    terminal: ratatui::DefaultTerminal,
}

impl Screen {
    fn enter() -> CliResult<Screen> {
        match ratatui::try_init() {
            Ok(terminal) => Ok(Screen { terminal }),
            Err(e) => {
                // Raw mode may be on even though the alternate screen failed.
                ratatui::restore();
                Err(CliError::Runtime(format!("cannot use the terminal: {e}")))
            }
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

/// Terminal events read on a thread of their own (crossterm's reads block), sent to the
/// main loop.
struct KeyReader {
    events: mpsc::UnboundedReceiver<std::io::Result<Event>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl KeyReader {
    fn start() -> KeyReader {
        let (sender, events) = mpsc::unbounded_channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            // Polling with a timeout (not a bare blocking read) lets the thread notice
            // the dashboard ended and leave the terminal alone after it is restored.
            while !stopped.load(Ordering::Relaxed) {
                let event = match event::poll(KEY_POLL) {
                    Ok(false) => continue,
                    Ok(true) => event::read(),
                    Err(e) => Err(e),
                };
                let failed = event.is_err();
                if sender.send(event).is_err() || failed {
                    return;
                }
            }
        });
        KeyReader {
            events,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the thread and waits for it (at most one poll period).
    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for KeyReader {
    fn drop(&mut self) {
        self.stop();
    }
}
