//! The dashboard's state and what keys do to it: the last snapshot, which pane and rows
//! are selected, changes asked for but not yet visible in a snapshot, and the footer's
//! message. Pure (no I/O): keys become [`Intent`]s that `top::run` carries out.

use std::collections::HashMap;

use ratatui::crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::widgets::TableState;
use tokio::time::Instant;
use wrangle::pool::MAX_GROUP_RUNNERS;

use super::snapshot::{Snapshot, Throughput};

/// The pane Up/Down moves in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pane {
    Workers,
    Queues,
}

/// A row of the workers pane: a worker, or one of its pool groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct WorkerRow {
    /// Index into the snapshot's workers.
    pub(super) worker: usize,
    /// Index into that worker's pool, for a group row.
    pub(super) group: Option<usize>,
}

/// A change to make in the store, asked for by a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Request {
    /// Set a worker's runners; `group` is `None` for a worker that reports no pool.
    Scale {
        worker: String,
        group: Option<String>,
        runners: u32,
    },
    /// Pause or resume a queue for every worker.
    SetPaused { queue: String, paused: bool },
}

/// What the main loop should do after a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Intent {
    Quit,
    RefreshNow,
    Send(Request),
}

/// A line for the footer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Message {
    pub(super) text: String,
    pub(super) is_error: bool,
}

/// A requested value shown instead of the snapshot's until a snapshot taken after the
/// request was answered shows the real one, so that `+` pressed twice quickly means two
/// more runners, not one.
#[derive(Debug, Clone, Copy)]
struct Pending<T> {
    value: T,
    answered: Option<Instant>,
}

/// Identifies a pool group (or a worker without a pool) across snapshots.
type GroupKey = (String, Option<String>);

/// Everything the screen is drawn from.
#[derive(Debug)]
pub(super) struct Dashboard {
    pub(super) snapshot: Option<Snapshot>,
    /// The last refresh's error, if it failed (the previous snapshot stays shown).
    pub(super) store_error: Option<String>,
    pub(super) throughput: Throughput,
    pub(super) pane: Pane,
    pub(super) worker_rows: Vec<WorkerRow>,
    pub(super) workers_table: TableState,
    pub(super) queues_table: TableState,
    pub(super) message: Option<Message>,
    pending_runners: HashMap<GroupKey, Pending<u32>>,
    pending_paused: HashMap<String, Pending<bool>>,
}

impl Dashboard {
    pub(super) fn new() -> Self {
        Dashboard {
            snapshot: None,
            store_error: None,
            throughput: Throughput::default(),
            pane: Pane::Workers,
            worker_rows: Vec::new(),
            workers_table: TableState::default().with_selected(0),
            queues_table: TableState::default().with_selected(0),
            message: None,
            pending_runners: HashMap::new(),
            pending_paused: HashMap::new(),
        }
    }

    /// Takes in a refresh's result, keeping the selected rows on the same worker, group
    /// and queue when rows come and go.
    pub(super) fn apply_snapshot(&mut self, result: Result<Snapshot, String>) {
        let snapshot = match result {
            Ok(snapshot) => snapshot,
            Err(error) => {
                self.store_error = Some(error);
                return;
            }
        };
        self.store_error = None;
        let selected_row = self.selected_row_key();
        let selected_queue = self.selected_queue().map(str::to_string);
        self.throughput
            .record(snapshot.started, snapshot.completed_total());
        self.pending_runners
            .retain(|_, p| p.answered.is_none_or(|at| snapshot.started < at));
        self.pending_paused
            .retain(|_, p| p.answered.is_none_or(|at| snapshot.started < at));
        self.worker_rows = snapshot
            .workers
            .iter()
            .enumerate()
            .flat_map(|(worker, record)| {
                std::iter::once(WorkerRow {
                    worker,
                    group: None,
                })
                .chain((0..record.info.pool.len()).map(move |group| WorkerRow {
                    worker,
                    group: Some(group),
                }))
            })
            .collect();
        self.snapshot = Some(snapshot);

        let worker_index = selected_row.and_then(|(worker, group)| {
            self.worker_rows.iter().position(|row| {
                let (name, group_name) = self.row_names(row);
                name == worker && group_name == group.as_deref()
            })
        });
        let queue_index =
            selected_queue.and_then(|queue| self.queues().iter().position(|q| q.queue == queue));
        let (worker_rows, queue_rows) = (self.worker_rows.len(), self.queues().len());
        keep_selection(&mut self.workers_table, worker_index, worker_rows);
        keep_selection(&mut self.queues_table, queue_index, queue_rows);
    }

    /// Takes in the answer to a request: the footer shows it; a refused request's value
    /// is dropped at once, a done one when a later snapshot shows it.
    pub(super) fn apply_answer(
        &mut self,
        request: &Request,
        outcome: Result<String, String>,
        now: Instant,
    ) {
        let ok = outcome.is_ok();
        match request {
            Request::Scale { worker, group, .. } => {
                let key = (worker.clone(), group.clone());
                if ok {
                    if let Some(p) = self.pending_runners.get_mut(&key) {
                        p.answered = Some(now);
                    }
                } else {
                    self.pending_runners.remove(&key);
                }
            }
            Request::SetPaused { queue, .. } => {
                if ok {
                    if let Some(p) = self.pending_paused.get_mut(queue) {
                        p.answered = Some(now);
                    }
                } else {
                    self.pending_paused.remove(queue);
                }
            }
        }
        self.message = Some(match outcome {
            Ok(text) => Message {
                text,
                is_error: false,
            },
            Err(text) => Message {
                text,
                is_error: true,
            },
        });
    }

    /// What a terminal event asks for.
    pub(super) fn on_event(&mut self, event: &Event) -> Option<Intent> {
        match event {
            Event::Key(key) if key.kind != KeyEventKind::Release => self.on_key(key),
            _ => None,
        }
    }

    fn on_key(&mut self, key: &KeyEvent) -> Option<Intent> {
        if key.modifiers.contains(KeyModifiers::CONTROL) {
            return matches!(key.code, KeyCode::Char('c')).then_some(Intent::Quit);
        }
        match key.code {
            KeyCode::Char('q') | KeyCode::Esc => Some(Intent::Quit),
            KeyCode::Tab | KeyCode::BackTab => {
                self.pane = match self.pane {
                    Pane::Workers => Pane::Queues,
                    Pane::Queues => Pane::Workers,
                };
                None
            }
            KeyCode::Up | KeyCode::Char('k') => {
                self.move_selection(-1);
                None
            }
            KeyCode::Down | KeyCode::Char('j') => {
                self.move_selection(1);
                None
            }
            KeyCode::Char('+') | KeyCode::Char('=') => self.scale_selected(1),
            KeyCode::Char('-') | KeyCode::Char('_') => self.scale_selected(-1),
            KeyCode::Char('p') => self.toggle_selected_queue(),
            KeyCode::Char('r') => Some(Intent::RefreshNow),
            _ => None,
        }
    }

    fn move_selection(&mut self, step: isize) {
        let (table, rows) = match self.pane {
            Pane::Workers => (&mut self.workers_table, self.worker_rows.len()),
            Pane::Queues => {
                let rows = self.snapshot.as_ref().map_or(0, |s| s.queues.len());
                (&mut self.queues_table, rows)
            }
        };
        if rows == 0 {
            return;
        }
        let current = table.selected().unwrap_or(0).min(rows - 1);
        table.select(Some(current.saturating_add_signed(step).min(rows - 1)));
    }

    /// `+`/`-`: one runner more or less for the selected group, or the selected worker's
    /// first group. Works whichever pane has the focus.
    fn scale_selected(&mut self, delta: i64) -> Option<Intent> {
        let Some((worker, group)) = self.selected_group_key() else {
            self.message = Some(Message {
                text: "no worker selected".into(),
                is_error: true,
            });
            return None;
        };
        let current = self.runners(&worker, group.as_deref())?;
        let runners = current as i64 + delta;
        if !(0..=MAX_GROUP_RUNNERS as i64).contains(&runners) {
            self.message = Some(Message {
                text: format!("{worker}: already at {current} runners"),
                is_error: true,
            });
            return None;
        }
        let runners = runners as u32;
        self.pending_runners.insert(
            (worker.clone(), group.clone()),
            Pending {
                value: runners,
                answered: None,
            },
        );
        self.message = Some(Message {
            text: match &group {
                Some(group) => format!("{worker}: asking for {runners} runners in group {group}…"),
                None => format!("{worker}: asking for {runners} runners…"),
            },
            is_error: false,
        });
        Some(Intent::Send(Request::Scale {
            worker,
            group,
            runners,
        }))
    }

    /// `p`: pause the selected queue, or resume it if it is paused.
    fn toggle_selected_queue(&mut self) -> Option<Intent> {
        let Some(queue) = self.selected_queue().map(str::to_string) else {
            self.message = Some(Message {
                text: "no queue selected".into(),
                is_error: true,
            });
            return None;
        };
        let paused = !self.is_paused(&queue);
        self.pending_paused.insert(
            queue.clone(),
            Pending {
                value: paused,
                answered: None,
            },
        );
        self.message = Some(Message {
            text: format!(
                "{} queue {queue}…",
                if paused { "pausing" } else { "resuming" }
            ),
            is_error: false,
        });
        Some(Intent::Send(Request::SetPaused { queue, paused }))
    }

    pub(super) fn queues(&self) -> &[wrangle::store::QueueStats] {
        self.snapshot.as_ref().map_or(&[], |s| &s.queues)
    }

    /// The worker and group names of a row.
    fn row_names(&self, row: &WorkerRow) -> (&str, Option<&str>) {
        let Some(snapshot) = &self.snapshot else {
            return ("", None);
        };
        let info = &snapshot.workers[row.worker].info;
        (&info.name, row.group.map(|g| info.pool[g].name.as_str()))
    }

    /// The selected row's worker, and its group for a group row.
    fn selected_row_key(&self) -> Option<GroupKey> {
        let row = self.worker_rows.get(self.workers_table.selected()?)?;
        let (worker, group) = self.row_names(row);
        Some((worker.to_string(), group.map(str::to_string)))
    }

    /// The group `+`/`-` act on: the selected group row, or the selected worker's first
    /// group (`None` as group for a worker that reports no pool).
    fn selected_group_key(&self) -> Option<GroupKey> {
        let row = self.worker_rows.get(self.workers_table.selected()?)?;
        let snapshot = self.snapshot.as_ref()?;
        let info = &snapshot.workers[row.worker].info;
        let group = match row.group {
            Some(group) => Some(info.pool[group].name.clone()),
            None => info.pool.first().map(|g| g.name.clone()),
        };
        Some((info.name.clone(), group))
    }

    fn selected_queue(&self) -> Option<&str> {
        let index = self.queues_table.selected()?;
        self.queues().get(index).map(|q| q.queue.as_str())
    }

    /// A group's runners: the value asked for while it is not visible yet, else the
    /// snapshot's.
    pub(super) fn runners(&self, worker: &str, group: Option<&str>) -> Option<u32> {
        let key = (worker.to_string(), group.map(str::to_string));
        if let Some(pending) = self.pending_runners.get(&key) {
            return Some(pending.value);
        }
        let info = &self
            .snapshot
            .as_ref()?
            .workers
            .iter()
            .find(|w| w.info.name == worker)?
            .info;
        match group {
            Some(group) => info
                .pool
                .iter()
                .find(|g| g.name == group)
                .map(|g| g.runners),
            None => Some(info.runners),
        }
    }

    /// Whether a group's runner count is still on its way to the worker.
    pub(super) fn runners_pending(&self, worker: &str, group: Option<&str>) -> bool {
        let key = (worker.to_string(), group.map(str::to_string));
        self.pending_runners.contains_key(&key)
    }

    /// Whether a queue is paused, counting a pause or resume asked for.
    pub(super) fn is_paused(&self, queue: &str) -> bool {
        if let Some(pending) = self.pending_paused.get(queue) {
            return pending.value;
        }
        self.queues()
            .iter()
            .find(|q| q.queue == queue)
            .is_some_and(|q| q.paused)
    }

    pub(super) fn pause_pending(&self, queue: &str) -> bool {
        self.pending_paused.contains_key(queue)
    }
}

/// Selects `found` if the selected item is still there, else the same index clamped to
/// the rows now present.
fn keep_selection(table: &mut TableState, found: Option<usize>, rows: usize) {
    let index = found.unwrap_or_else(|| table.selected().unwrap_or(0));
    table.select(Some(index.min(rows.saturating_sub(1))));
}

#[cfg(test)]
pub(super) mod tests {
    use chrono::Utc;
    use ratatui::crossterm::event::KeyEvent;
    use serde_json::json;
    use wrangle::TaskState;
    use wrangle::jobs::{BlockTally, Job, JobProgress, JobTallies, NewJob};

    use super::*;

    /// Two workers (w1 with pool groups a and b, w2 lost without a pool), queues a (paused)
    /// and b, and a range job half done.
    pub(in super::super) fn sample_snapshot(started: Instant) -> Snapshot {
        let now = Utc::now();
        let worker = |value: serde_json::Value| serde_json::from_value(value).unwrap();
        let queue = |value: serde_json::Value| serde_json::from_value(value).unwrap();
        let job = Job {
            definition: NewJob::range("backfill", "scan", 0, 1000, 10).queue("a"),
            cursor: 500,
            cancelled: false,
            created_at: now - chrono::Duration::seconds(30),
        };
        let tallies = JobTallies {
            blocks: vec![BlockTally {
                state: TaskState::Completed,
                worker: Some("w1".into()),
                blocks: 50,
                ids: 500,
            }],
            ids_completed_last_minute: 500,
        };
        Snapshot {
            started,
            taken_at: now,
            workers: vec![
                worker(json!({
                    "info": {
                        "name": "w1", "host": "box", "pid": 42, "queues": ["a", "b"],
                        "runners": 2, "tasks": [7], "started_at": now, "version": "0",
                        "pool": [
                            {"name": "a", "runners": 1, "tasks": [7]},
                            {"name": "b", "runners": 1, "tasks": []},
                        ],
                        "rss_bytes": 64 << 20, "lease_ms": 30000,
                    },
                    "last_seen": now,
                })),
                worker(json!({
                    "info": {
                        "name": "w2", "host": "far", "pid": 43, "queues": [],
                        "runners": 4, "tasks": [], "started_at": now, "version": "0",
                        "lease_ms": 1000,
                    },
                    "last_seen": now - chrono::Duration::seconds(60),
                })),
            ],
            queues: vec![
                queue(json!({
                    "queue": "a", "paused": true,
                    "counts": {"available": 3, "running": 1, "completed": 10},
                    "oldest_due_at": now - chrono::Duration::seconds(5),
                    "completed_last_minute": 10, "failed_last_minute": 0,
                })),
                queue(json!({
                    "queue": "b", "paused": false, "counts": {"completed": 2},
                    "oldest_due_at": null,
                    "completed_last_minute": 2, "failed_last_minute": 0,
                })),
            ],
            jobs: vec![JobProgress::compute(job, &tallies, now)],
        }
    }

    fn key(code: KeyCode) -> Event {
        Event::Key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    fn loaded() -> Dashboard {
        let mut dashboard = Dashboard::new();
        dashboard.apply_snapshot(Ok(sample_snapshot(Instant::now())));
        dashboard
    }

    #[test]
    fn worker_rows_list_each_worker_then_its_groups() {
        let dashboard = loaded();
        let rows: Vec<(usize, Option<usize>)> = dashboard
            .worker_rows
            .iter()
            .map(|r| (r.worker, r.group))
            .collect();
        assert_eq!(rows, vec![(0, None), (0, Some(0)), (0, Some(1)), (1, None)]);
    }

    #[test]
    fn plus_scales_the_selected_workers_first_group_and_counts_pending_requests() {
        let mut dashboard = loaded();
        let first = dashboard.on_event(&key(KeyCode::Char('+')));
        assert_eq!(
            first,
            Some(Intent::Send(Request::Scale {
                worker: "w1".into(),
                group: Some("a".into()),
                runners: 2
            }))
        );
        // A second press before any snapshot shows the first builds on it.
        let second = dashboard.on_event(&key(KeyCode::Char('+')));
        assert!(
            matches!(
                second,
                Some(Intent::Send(Request::Scale { runners: 3, .. }))
            ),
            "{second:?}"
        );
        assert_eq!(dashboard.runners("w1", Some("a")), Some(3));
        assert!(dashboard.runners_pending("w1", Some("a")));
    }

    #[test]
    fn minus_on_a_group_row_scales_that_group_and_stops_at_zero() {
        let mut dashboard = loaded();
        dashboard.on_event(&key(KeyCode::Down));
        dashboard.on_event(&key(KeyCode::Down));
        let intent = dashboard.on_event(&key(KeyCode::Char('-')));
        assert_eq!(
            intent,
            Some(Intent::Send(Request::Scale {
                worker: "w1".into(),
                group: Some("b".into()),
                runners: 0
            }))
        );
        assert_eq!(dashboard.on_event(&key(KeyCode::Char('-'))), None);
        assert!(dashboard.message.as_ref().unwrap().is_error);
    }

    #[test]
    fn a_worker_without_a_pool_is_scaled_as_a_whole() {
        let mut dashboard = loaded();
        for _ in 0..10 {
            dashboard.on_event(&key(KeyCode::Down));
        }
        let intent = dashboard.on_event(&key(KeyCode::Char('+')));
        assert_eq!(
            intent,
            Some(Intent::Send(Request::Scale {
                worker: "w2".into(),
                group: None,
                runners: 5
            }))
        );
    }

    #[test]
    fn p_toggles_the_selected_queue_after_tab_and_down() {
        let mut dashboard = loaded();
        assert_eq!(dashboard.on_event(&key(KeyCode::Tab)), None);
        assert_eq!(dashboard.pane, Pane::Queues);
        // Queue a is paused: p resumes it.
        assert_eq!(
            dashboard.on_event(&key(KeyCode::Char('p'))),
            Some(Intent::Send(Request::SetPaused {
                queue: "a".into(),
                paused: false
            }))
        );
        dashboard.on_event(&key(KeyCode::Down));
        assert_eq!(
            dashboard.on_event(&key(KeyCode::Char('p'))),
            Some(Intent::Send(Request::SetPaused {
                queue: "b".into(),
                paused: true
            }))
        );
        assert!(dashboard.is_paused("b"));
    }

    #[test]
    fn a_pending_value_lasts_until_a_snapshot_taken_after_the_answer() {
        let mut dashboard = loaded();
        let Some(Intent::Send(request)) = dashboard.on_event(&key(KeyCode::Char('+'))) else {
            panic!("+ sends a request");
        };
        let answered = Instant::now();
        dashboard.apply_answer(&request, Ok("group a: 1 -> 2 runners".into()), answered);
        assert_eq!(
            dashboard.message.as_ref().unwrap().text,
            "group a: 1 -> 2 runners"
        );
        // A snapshot whose reads began before the answer may not show the change yet.
        dashboard.apply_snapshot(Ok(sample_snapshot(
            answered - std::time::Duration::from_millis(1),
        )));
        assert_eq!(dashboard.runners("w1", Some("a")), Some(2));
        dashboard.apply_snapshot(Ok(sample_snapshot(answered)));
        assert_eq!(
            dashboard.runners("w1", Some("a")),
            Some(1),
            "the snapshot's value again"
        );
        assert!(!dashboard.runners_pending("w1", Some("a")));
    }

    #[test]
    fn a_refused_request_is_forgotten_at_once() {
        let mut dashboard = loaded();
        dashboard.on_event(&key(KeyCode::Tab));
        let Some(Intent::Send(request)) = dashboard.on_event(&key(KeyCode::Char('p'))) else {
            panic!("p sends a request");
        };
        assert!(!dashboard.is_paused("a"));
        dashboard.apply_answer(&request, Err("store down".into()), Instant::now());
        assert!(dashboard.is_paused("a"), "back to the snapshot's value");
        assert!(dashboard.message.as_ref().unwrap().is_error);
    }

    #[test]
    fn selection_stays_on_the_same_worker_row_across_snapshots() {
        let mut dashboard = loaded();
        dashboard.apply_snapshot(Ok(sample_snapshot(Instant::now())));
        assert_eq!(
            dashboard.workers_table.selected(),
            Some(0),
            "still the worker row"
        );
        dashboard.on_event(&key(KeyCode::Down));
        dashboard.on_event(&key(KeyCode::Down));
        let mut snapshot = sample_snapshot(Instant::now());
        snapshot.workers.swap(0, 1);
        dashboard.apply_snapshot(Ok(snapshot));
        // w2 (one row) now comes first: group b of w1 moved from row 2 to row 3.
        assert_eq!(dashboard.workers_table.selected(), Some(3));
    }

    #[test]
    fn selection_follows_the_same_queue_when_queues_come_and_go() {
        let mut dashboard = loaded();
        dashboard.on_event(&key(KeyCode::Tab));
        dashboard.on_event(&key(KeyCode::Down));
        let mut snapshot = sample_snapshot(Instant::now());
        let mut first = snapshot.queues[0].clone();
        first.queue = "0-new".into();
        snapshot.queues.insert(0, first);
        dashboard.apply_snapshot(Ok(snapshot));
        assert_eq!(dashboard.selected_queue(), Some("b"));
        // A failed refresh keeps the last snapshot and reports the error.
        dashboard.apply_snapshot(Err("timeout".into()));
        assert_eq!(dashboard.selected_queue(), Some("b"));
        assert_eq!(dashboard.store_error.as_deref(), Some("timeout"));
    }

    #[test]
    fn quit_keys() {
        for event in [
            key(KeyCode::Char('q')),
            key(KeyCode::Esc),
            Event::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
        ] {
            assert_eq!(Dashboard::new().on_event(&event), Some(Intent::Quit));
        }
        // Nothing selected yet (no snapshot): keys that act say so instead of sending.
        let mut empty = Dashboard::new();
        assert_eq!(empty.on_event(&key(KeyCode::Char('+'))), None);
        assert_eq!(empty.on_event(&key(KeyCode::Char('p'))), None);
        assert_eq!(empty.on_event(&key(KeyCode::Down)), None);
    }
}
