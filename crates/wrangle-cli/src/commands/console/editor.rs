//! The console's line editor: rustyline on a thread of its own (it blocks on the
//! terminal), its history file, and Tab completion of command names and of the worker,
//! queue and job names the store knows at the moment Tab is pressed.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{CompletionType, Config, Editor, Helper};
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use wrangle::Store;

use super::command::{ArgumentKind, COMMANDS};

/// Where history is kept: per project directory, like the default store.
pub(super) fn history_path() -> PathBuf {
    PathBuf::from(".wrangle").join("console_history")
}

/// Longest a Tab press waits for the store; past it, names are simply not offered.
const NAME_LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// Completes the word under the cursor.
struct ConsoleHelper {
    store: Arc<dyn Store>,
    runtime: Handle,
}

impl ConsoleHelper {
    /// Runs a store query from the editor thread (not a runtime thread, so blocking on
    /// the runtime is allowed); an error or a slow store just means no names.
    fn lookup<F>(&self, query: F) -> Vec<String>
    where
        F: Future<Output = Result<Vec<String>, wrangle::StoreError>>,
    {
        self.runtime
            .block_on(async { tokio::time::timeout(NAME_LOOKUP_TIMEOUT, query).await })
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default()
    }

    fn worker_names(&self) -> Vec<String> {
        self.lookup(async {
            let workers = self.store.list_workers().await?;
            Ok(workers.into_iter().map(|w| w.info.name).collect())
        })
    }

    /// Pool groups of `worker` as `QUEUES=`, ready for the runner count.
    fn group_targets(&self, worker: &str) -> Vec<String> {
        self.lookup(async {
            let workers = self.store.list_workers().await?;
            Ok(workers
                .into_iter()
                .filter(|w| w.info.name == worker)
                .flat_map(|w| w.info.pool)
                .map(|group| format!("{}=", group.name))
                .collect())
        })
    }

    fn queue_names(&self) -> Vec<String> {
        self.lookup(async {
            let queues = self.store.queue_stats(chrono::Utc::now()).await?;
            Ok(queues.into_iter().map(|q| q.queue).collect())
        })
    }

    fn job_names(&self) -> Vec<String> {
        self.lookup(async {
            let jobs = self.store.list_jobs().await?;
            Ok(jobs.into_iter().map(|j| j.name().to_string()).collect())
        })
    }

    /// Candidates for the word at `position` (0 = the command) of a line whose earlier
    /// words are `before`.
    fn candidates(&self, before: &[&str], position: usize) -> Vec<String> {
        if position == 0 {
            return COMMANDS.iter().map(|c| c.name.to_string()).collect();
        }
        let Some(spec) = COMMANDS.iter().find(|c| Some(&c.name) == before.first()) else {
            return Vec::new();
        };
        match spec.arguments.get(position - 1) {
            Some(ArgumentKind::Worker) => self.worker_names(),
            Some(ArgumentKind::GroupOfWorker) => before
                .get(position - 1)
                .map(|worker| self.group_targets(worker))
                .unwrap_or_default(),
            Some(ArgumentKind::Queue) => self.queue_names(),
            Some(ArgumentKind::Job) => self.job_names(),
            Some(ArgumentKind::Other) | None => Vec::new(),
        }
    }
}

impl Completer for ConsoleHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        cursor: usize,
        _context: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let typed = &line[..cursor];
        let word_start = typed
            .rfind(char::is_whitespace)
            .map_or(0, |space| space + 1);
        let partial = &typed[word_start..];
        let before: Vec<&str> = typed[..word_start].split_whitespace().collect();
        let mut names = self.candidates(&before, before.len());
        names.sort();
        names.dedup();
        let pairs = names
            .into_iter()
            .filter(|name| name.starts_with(partial))
            .map(|name| Pair {
                // A finished name gets a space so the next word can follow; `QUEUE=` waits
                // for its number.
                replacement: if name.ends_with('=') {
                    name.clone()
                } else {
                    format!("{name} ")
                },
                display: name,
            })
            .collect();
        Ok((word_start, pairs))
    }
}

impl Hinter for ConsoleHelper {
    type Hint = String;
}

impl Highlighter for ConsoleHelper {
    fn highlight<'l>(&self, line: &'l str, _cursor: usize) -> Cow<'l, str> {
        Cow::Borrowed(line)
    }
}

impl Validator for ConsoleHelper {}

impl Helper for ConsoleHelper {}

/// One `readline`: a line, or why there is none.
pub(super) enum Input {
    Line(String),
    /// Ctrl-C at the prompt: the line is dropped, as in a shell.
    Interrupted,
    /// Ctrl-D, or the terminal went away.
    End,
}

/// The async side's handle on the editor thread: ask for a line, await it.
pub(super) struct LineReader {
    requests: std::sync::mpsc::Sender<&'static str>,
    lines: mpsc::UnboundedReceiver<Input>,
}

impl LineReader {
    /// Starts the editor thread, loading history (a missing or unreadable file is no
    /// error). Fails when the terminal cannot be set up.
    pub(super) fn start(store: Arc<dyn Store>) -> Result<LineReader, ReadlineError> {
        let config = Config::builder()
            .completion_type(CompletionType::List)
            .history_ignore_dups(true)?
            .history_ignore_space(true)
            .max_history_size(1000)?
            .build();
        let mut editor: Editor<ConsoleHelper, DefaultHistory> = Editor::with_config(config)?;
        editor.set_helper(Some(ConsoleHelper {
            store,
            runtime: Handle::current(),
        }));
        let history = history_path();
        let _ = editor.load_history(&history);
        let (requests, prompts) = std::sync::mpsc::channel::<&'static str>();
        let (replies, lines) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("console-editor".into())
            .spawn(move || {
                // One line per request, so the prompt only shows once the previous
                // command's output is complete. Ends when the console drops its reader.
                while let Ok(prompt) = prompts.recv() {
                    let input = match editor.readline(prompt) {
                        Ok(line) => {
                            // Completion leaves a trailing space; history need not keep it.
                            let entry = line.trim_end();
                            if !entry.is_empty() && editor.add_history_entry(entry).unwrap_or(false)
                            {
                                save_history(&mut editor, &history);
                            }
                            Input::Line(line)
                        }
                        Err(ReadlineError::Interrupted) => Input::Interrupted,
                        Err(_) => Input::End,
                    };
                    if replies.send(input).is_err() {
                        break;
                    }
                }
            })
            .map_err(ReadlineError::Io)?;
        Ok(LineReader { requests, lines })
    }

    /// Shows `prompt` and waits for the user's line.
    pub(super) async fn read(&mut self, prompt: &'static str) -> Input {
        if self.requests.send(prompt).is_err() {
            return Input::End;
        }
        self.lines.recv().await.unwrap_or(Input::End)
    }
}

/// Appends the new entry to the history file, creating `.wrangle/` when missing. History
/// is a convenience: a read-only directory must not stop the console, so failures are
/// ignored.
fn save_history(editor: &mut Editor<ConsoleHelper, DefaultHistory>, path: &std::path::Path) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    // Appending (not rewriting) keeps the lines of two consoles open at once.
    let _ = editor.append_history(path);
}
