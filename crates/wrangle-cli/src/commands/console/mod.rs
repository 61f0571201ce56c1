//! `wrangle console`: an interactive shell over the store, for every worker on every
//! machine (DScript's console and resque-pool-dynamic's shell, through the store).
//!
//! This module owns the two read loops: the interactive one (a terminal: prompt, line
//! editing, history, completion, Ctrl-C stops the running command and returns to the
//! prompt) and the scripted one (stdin is a pipe: one command per line, no prompt, exit
//! code 1 if any command failed). [`command`] parses and runs commands, [`tail`] follows
//! task events, [`processes`] starts local workers and draws the process tree, [`editor`]
//! is the line editor.

mod command;
mod editor;
mod processes;
mod tail;

pub(crate) use processes::Launcher;

use std::io::{IsTerminal, Write};
use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};

use self::command::ConsoleCommand;
use self::editor::{Input, LineReader};
use super::Context;
use crate::fail::{CliError, CliResult, EXIT_INTERRUPTED, EXIT_TASK_FAILED};
use crate::stdout::out;

const PROMPT: &str = "wrangle> ";

/// Runs the console: interactive on a terminal, scripted otherwise.
pub(crate) async fn run(context: Context, launcher: Launcher) -> CliResult {
    if std::io::stdin().is_terminal() {
        interactive(context, launcher).await
    } else {
        scripted(context, launcher).await
    }
}

/// Ctrl-C (and, for a script, SIGTERM) as something a command can wait for. Once a
/// handler is installed the signal no longer kills the process, which is the point: it
/// stops `tail` or a slow command instead of the console.
pub(super) struct Interrupts {
    interrupt: Signal,
    terminate: Option<Signal>,
}

impl Interrupts {
    fn install(terminate_too: bool) -> CliResult<Interrupts> {
        let listen = |kind| signal(kind).map_err(|e| CliError::Runtime(e.to_string()));
        Ok(Interrupts {
            interrupt: listen(SignalKind::interrupt())?,
            terminate: if terminate_too {
                Some(listen(SignalKind::terminate())?)
            } else {
                None
            },
        })
    }

    /// Waits for the next interrupt.
    pub(super) async fn next(&mut self) {
        let terminated = async {
            match &mut self.terminate {
                Some(terminate) => drop(terminate.recv().await),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = terminated => {}
        }
    }

    /// Drops interrupts that arrived while no command was running (a `kill -INT` while
    /// the prompt was up), so they do not stop the next command at once.
    async fn discard_pending(&mut self) {
        // A zero timeout still polls the signal once: pending ones are taken, then it ends.
        while tokio::time::timeout(Duration::ZERO, self.next())
            .await
            .is_ok()
        {}
    }
}

/// How one command went.
enum Ran {
    /// Its exit code (0 success), as the one-shot command would have returned.
    Finished(i32),
    Failed(CliError),
    /// Ctrl-C (or, in a script, SIGTERM) stopped it. Not for tail: that is how tail
    /// normally ends, so it finishes.
    Interrupted,
}

/// Parses and performs one line; `None` for `exit`. A blank or comment line finishes with
/// 0, a line that does not parse fails with its message.
async fn run_line(
    context: &Context,
    launcher: &Launcher,
    line: &str,
    interrupts: &mut Interrupts,
) -> Option<Ran> {
    match command::parse(line) {
        Ok(Some(ConsoleCommand::Exit)) => None,
        Ok(Some(command)) => Some(perform(context, launcher, command, interrupts).await),
        Ok(None) => Some(Ran::Finished(0)),
        Err(message) => Some(Ran::Failed(CliError::input(message))),
    }
}

async fn perform(
    context: &Context,
    launcher: &Launcher,
    command: ConsoleCommand,
    interrupts: &mut Interrupts,
) -> Ran {
    interrupts.discard_pending().await;
    let result = match command {
        ConsoleCommand::Tail(limit) => tail::follow(context, limit, interrupts).await,
        ConsoleCommand::TailWorker(worker, limit) => {
            tail::follow_worker(context, worker, limit, interrupts).await
        }
        ConsoleCommand::Start(options) => processes::start(launcher, &options).await,
        other => tokio::select! {
            result = command::execute(context, other) => result,
            _ = interrupts.next() => return Ran::Interrupted,
        },
    };
    // Whatever was printed goes out before the next prompt or line.
    let _ = std::io::stdout().flush();
    match result {
        Ok(code) => Ran::Finished(code),
        Err(err) => Ran::Failed(err),
    }
}

/// The shell on a terminal. Never exits on bad input; `exit`, `quit` or Ctrl-D leave.
async fn interactive(context: Context, launcher: Launcher) -> CliResult {
    let mut interrupts = Interrupts::install(false)?;
    let mut reader = LineReader::start(context.store.clone())
        .map_err(|e| CliError::Runtime(format!("cannot use the terminal: {e}")))?;
    out!(
        "wrangle console on {}: help lists commands, Tab completes, Ctrl-D leaves",
        context.store.info().name
    );
    loop {
        let line = match reader.read(PROMPT).await {
            Input::Line(line) => line,
            Input::Interrupted => continue,
            Input::End => break,
        };
        match run_line(&context, &launcher, &line, &mut interrupts).await {
            None => break,
            Some(Ran::Finished(_)) => {}
            Some(Ran::Failed(err)) => eprintln!("error: {err}"),
            // The terminal echoed ^C without a newline.
            Some(Ran::Interrupted) => eprintln!("\ninterrupted"),
        }
    }
    Ok(0)
}

/// Commands from a pipe, one per line, for scripts: `echo status | wrangle console`.
async fn scripted(context: Context, launcher: Launcher) -> CliResult {
    let mut interrupts = Interrupts::install(true)?;
    let mut lines = stdin_lines();
    let mut all_succeeded = true;
    loop {
        let line = tokio::select! {
            line = lines.recv() => line,
            _ = interrupts.next() => return Ok(EXIT_INTERRUPTED),
        };
        let line = match line {
            Some(Ok(line)) => line,
            Some(Err(err)) => return Err(CliError::Runtime(format!("reading commands: {err}"))),
            None => break,
        };
        match run_line(&context, &launcher, &line, &mut interrupts).await {
            None => break,
            Some(Ran::Finished(code)) => all_succeeded &= code == 0,
            Some(Ran::Failed(err)) => {
                eprintln!("error: {err}");
                all_succeeded = false;
            }
            Some(Ran::Interrupted) => return Ok(EXIT_INTERRUPTED),
        }
    }
    Ok(if all_succeeded { 0 } else { EXIT_TASK_FAILED })
}

/// Stdin's lines, read on a thread of their own (reading blocks) so that a signal can
/// still stop the console while it waits for the next command.
fn stdin_lines() -> tokio::sync::mpsc::Receiver<std::io::Result<String>> {
    // Bounded: a long script is read as it runs, not all at once.
    let (sender, lines) = tokio::sync::mpsc::channel(16);
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let failed = line.is_err();
            if sender.blocking_send(line).is_err() || failed {
                break;
            }
        }
    });
    lines
}
