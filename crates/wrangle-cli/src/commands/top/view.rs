//! Drawing the dashboard from its state: a summary line, the workers and queues tables,
//! job progress bars beside the throughput sparkline, and a footer with the last message
//! and the keys. Any size works: panes shrink, drop out, and text is cut to fit.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, LineGauge, Paragraph, Row, Sparkline, Table};
use tokio::time::Instant;
use wrangle::TaskState;
use wrangle::jobs::{JobProgress, JobStatus};

use super::super::inspect::ago;
use super::super::workers::mib;
use super::dashboard::{Dashboard, Pane};
use crate::progress::{clock as human_duration, whole as human_rate};

/// Columns a job's name gets before its bar.
const JOB_NAME_WIDTH: usize = 12;
/// Sparkline values are rates times this, so that rates below one task a second show.
const SPARKLINE_SCALE: f64 = 100.0;

pub(super) fn draw(frame: &mut Frame, dashboard: &mut Dashboard, now: Instant) {
    let area = frame.area();
    // The job and throughput row is the first thing to go on a short terminal: the
    // tables are what the keys act on.
    let bottom = match area.height {
        20.. => 7,
        15..20 => 5,
        _ => 0,
    };
    let [summary, workers, queues, lower, message, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Fill(1),
        Constraint::Length(bottom),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_summary(frame, dashboard, summary, now);
    draw_workers(frame, dashboard, workers);
    draw_queues(frame, dashboard, queues);
    if bottom > 0 {
        let [jobs, throughput] =
            Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)])
                .areas(lower);
        draw_jobs(frame, dashboard, jobs);
        draw_throughput(frame, dashboard, throughput);
    }
    draw_message(frame, dashboard, message);
    draw_keys(frame, keys);
}

fn draw_summary(frame: &mut Frame, dashboard: &Dashboard, area: Rect, now: Instant) {
    let mut spans = vec![Span::styled("wrangle top", Style::new().bold())];
    match &dashboard.snapshot {
        None => spans.push(Span::raw("  reading the store…")),
        Some(snapshot) => {
            let lost = snapshot
                .workers
                .iter()
                .filter(|w| w.is_lost(snapshot.taken_at))
                .count();
            let running_jobs = snapshot
                .jobs
                .iter()
                .filter(|j| j.status == JobStatus::Running)
                .count();
            let mut text = format!(
                "  {}{}  {}  {} running",
                counted(snapshot.workers.len(), "worker"),
                if lost > 0 {
                    format!(" ({lost} lost)")
                } else {
                    String::new()
                },
                counted(snapshot.queues.len(), "queue"),
                counted(running_jobs, "job"),
            );
            if let Some(rate) = dashboard.throughput.latest() {
                text += &format!("  {}/s", human_rate(rate));
            }
            let age = now
                .saturating_duration_since(snapshot.started)
                .as_secs_f64();
            text += &format!("  updated {age:.0}s ago");
            spans.push(Span::raw(text));
        }
    }
    frame.render_widget(Line::from(spans), area);
}

/// A pane's frame; the focused one (where Up/Down move) stands out.
fn pane_block(title: String, focused: bool) -> Block<'static> {
    let block = Block::bordered().title(title);
    if focused {
        block
            .border_style(Style::new().fg(Color::Cyan))
            .title_style(Style::new().fg(Color::Cyan).bold())
    } else {
        block
    }
}

/// The selected row: reversed in the focused pane, bold in the other (where `+`/`-` or
/// `p` still act on it).
fn highlight(focused: bool) -> Style {
    if focused {
        Style::new().add_modifier(Modifier::REVERSED)
    } else {
        Style::new().add_modifier(Modifier::BOLD)
    }
}

fn header(cells: &[&'static str]) -> Row<'static> {
    Row::new(cells.iter().copied()).style(Style::new().add_modifier(Modifier::UNDERLINED))
}

fn draw_workers(frame: &mut Frame, dashboard: &mut Dashboard, area: Rect) {
    let focused = dashboard.pane == Pane::Workers;
    let mut rows = Vec::new();
    if let Some(snapshot) = &dashboard.snapshot {
        for row in &dashboard.worker_rows {
            let record = &snapshot.workers[row.worker];
            let info = &record.info;
            match row.group {
                None => {
                    let lost = record.is_lost(snapshot.taken_at);
                    let runners = if info.pool.is_empty() {
                        runner_cell(dashboard, &info.name, None, info.runners)
                    } else {
                        // The groups' own rows show what is being changed.
                        Cell::from(info.runners.to_string())
                    };
                    rows.push(Row::new(vec![
                        Cell::from(info.name.clone()).bold(),
                        Cell::from(info.host.clone()),
                        runners,
                        Cell::from(info.executing().to_string()),
                        Cell::from(info.finishing().to_string()),
                        Cell::from(mib(info.rss_bytes)),
                        Cell::from(ago(record.last_seen, snapshot.taken_at)),
                        if lost {
                            Cell::from("LOST").red().bold()
                        } else {
                            Cell::from("ok").green()
                        },
                    ]));
                }
                Some(index) => {
                    let group = &info.pool[index];
                    rows.push(Row::new(vec![
                        Cell::from(format!(" └ {}", group.name)),
                        Cell::from("group").dim(),
                        runner_cell(dashboard, &info.name, Some(&group.name), group.runners),
                        Cell::from(group.tasks.len().to_string()),
                        Cell::from(""),
                        Cell::from(""),
                        Cell::from(""),
                        Cell::from(""),
                    ]));
                }
            }
        }
    }
    let count = dashboard.snapshot.as_ref().map_or(0, |s| s.workers.len());
    if rows.is_empty() && dashboard.snapshot.is_some() {
        rows.push(Row::new(vec![Cell::from("(no workers registered)").dim()]));
    }
    let table = Table::new(
        rows,
        [
            Constraint::Fill(3),
            Constraint::Fill(2),
            Constraint::Length(7),
            Constraint::Length(4),
            Constraint::Length(4),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Length(5),
        ],
    )
    .header(header(&[
        "WORKER", "HOST", "RUNNERS", "EXEC", "FIN", "RSS", "SEEN", "STATE",
    ]))
    .block(pane_block(format!("workers ({count})"), focused))
    .row_highlight_style(highlight(focused))
    .highlight_symbol("> ");
    frame.render_stateful_widget(table, area, &mut dashboard.workers_table);
}

/// Runners, or `old→new` while a scale request is on its way.
fn runner_cell(
    dashboard: &Dashboard,
    worker: &str,
    group: Option<&str>,
    reported: u32,
) -> Cell<'static> {
    let wanted = dashboard.runners(worker, group).unwrap_or(reported);
    if dashboard.runners_pending(worker, group) && wanted != reported {
        Cell::from(format!("{reported}→{wanted}")).yellow()
    } else {
        Cell::from(reported.to_string())
    }
}

fn draw_queues(frame: &mut Frame, dashboard: &mut Dashboard, area: Rect) {
    let focused = dashboard.pane == Pane::Queues;
    let mut rows = Vec::new();
    if let Some(snapshot) = &dashboard.snapshot {
        for q in &snapshot.queues {
            let count = |state: TaskState| q.counts.get(&state).copied().unwrap_or(0).to_string();
            let state = match (
                dashboard.is_paused(&q.queue),
                dashboard.pause_pending(&q.queue),
            ) {
                (true, false) => Cell::from("paused").yellow().bold(),
                (true, true) => Cell::from("pause…").yellow(),
                (false, true) => Cell::from("resume…").yellow(),
                (false, false) => Cell::from(""),
            };
            rows.push(Row::new(vec![
                Cell::from(q.queue.clone()).bold(),
                state,
                Cell::from(count(TaskState::Available)),
                Cell::from(count(TaskState::Running)),
                Cell::from(count(TaskState::Retryable)),
                Cell::from(count(TaskState::Scheduled)),
                Cell::from(count(TaskState::Dead)),
                Cell::from(
                    q.oldest_due_at
                        .map_or("-".into(), |t| ago(t, snapshot.taken_at)),
                ),
                Cell::from(q.completed_last_minute.to_string()),
            ]));
        }
        if rows.is_empty() {
            rows.push(Row::new(vec![Cell::from("(no queues yet)").dim()]));
        }
    }
    let count = dashboard.queues().len();
    let table = Table::new(
        rows,
        [
            Constraint::Fill(1),
            Constraint::Length(7),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Length(5),
            Constraint::Length(5),
            Constraint::Length(5),
            Constraint::Length(6),
            Constraint::Length(8),
        ],
    )
    .header(header(&[
        "QUEUE", "STATE", "AVAIL", "LEASED", "RETRY", "SCHED", "DEAD", "WAIT", "DONE/MIN",
    ]))
    .block(pane_block(format!("queues ({count})"), focused))
    .row_highlight_style(highlight(focused))
    .highlight_symbol("> ");
    frame.render_stateful_widget(table, area, &mut dashboard.queues_table);
}

fn draw_jobs(frame: &mut Frame, dashboard: &Dashboard, area: Rect) {
    let mut jobs: Vec<&JobProgress> = dashboard
        .snapshot
        .as_ref()
        .map(|s| s.jobs.iter().collect())
        .unwrap_or_default();
    // Running jobs first: finished ones must not push them out of a small pane.
    jobs.sort_by_key(|j| (j.status != JobStatus::Running, j.job.name().to_string()));
    let block = Block::bordered().title(format!("jobs ({})", jobs.len()));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if jobs.is_empty() && dashboard.snapshot.is_some() {
        frame.render_widget(Line::from("(no jobs)").dim(), inner);
        return;
    }
    for (line, job) in jobs.iter().take(inner.height as usize).enumerate() {
        let row = Rect {
            y: inner.y + line as u16,
            height: 1,
            ..inner
        };
        let status = match job.status {
            JobStatus::Running => format!(
                "{}/s {}",
                human_rate(job.rate),
                job.eta.map_or("-".into(), human_duration)
            ),
            other => other.as_str().to_string(),
        };
        let [name, bar, stats] = Layout::horizontal([
            Constraint::Length(JOB_NAME_WIDTH as u16 + 1),
            Constraint::Fill(1),
            Constraint::Length(status.chars().count() as u16 + 1),
        ])
        .areas(row);
        frame.render_widget(Line::from(cut(job.job.name(), JOB_NAME_WIDTH)).bold(), name);
        let fraction = job.fraction_finished().clamp(0.0, 1.0);
        let colour = match job.status {
            JobStatus::Running | JobStatus::Completed => Color::Green,
            JobStatus::Failed => Color::Red,
            JobStatus::Cancelled => Color::DarkGray,
        };
        frame.render_widget(
            LineGauge::default()
                .ratio(fraction)
                .label(format!("{:>5.1}%", fraction * 100.0))
                .filled_style(Style::new().fg(colour)),
            bar,
        );
        frame.render_widget(Paragraph::new(status).right_aligned(), stats);
    }
}

fn draw_throughput(frame: &mut Frame, dashboard: &Dashboard, area: Rect) {
    let title = match dashboard.throughput.latest() {
        Some(rate) => format!("done/s {}", human_rate(rate)),
        None => "done/s".to_string(),
    };
    let block = Block::bordered().title(title);
    let width = block.inner(area).width as usize;
    let data: Vec<u64> = dashboard
        .throughput
        .recent(width)
        .map(|rate| (rate * SPARKLINE_SCALE).round() as u64)
        .collect();
    frame.render_widget(
        Sparkline::default()
            .block(block)
            .data(data)
            .style(Style::new().fg(Color::Green)),
        area,
    );
}

fn draw_message(frame: &mut Frame, dashboard: &Dashboard, area: Rect) {
    let line = if let Some(error) = &dashboard.store_error {
        Line::from(format!("store: {error}")).red()
    } else if let Some(message) = &dashboard.message {
        let line = Line::from(message.text.clone());
        if message.is_error {
            line.red()
        } else {
            line.green()
        }
    } else {
        Line::default()
    };
    frame.render_widget(line, area);
}

fn draw_keys(frame: &mut Frame, area: Rect) {
    let mut spans = Vec::new();
    for (key, what) in [
        ("Tab", "pane"),
        ("↑↓", "select"),
        ("+/-", "runners"),
        ("p", "pause/resume"),
        ("r", "refresh"),
        ("q", "quit"),
    ] {
        spans.push(Span::styled(key, Style::new().bold().fg(Color::Cyan)));
        spans.push(Span::raw(format!(" {what}  ")));
    }
    frame.render_widget(Line::from(spans), area);
}

/// `1 worker`, `2 workers`.
fn counted(count: usize, noun: &str) -> String {
    format!("{count} {noun}{}", if count == 1 { "" } else { "s" })
}

/// `text` in at most `width` characters, with an ellipsis when cut.
fn cut(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else {
        let kept: String = text.chars().take(width.saturating_sub(1)).collect();
        format!("{kept}…")
    }
}

#[cfg(test)]
mod tests {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::super::dashboard::tests::sample_snapshot;
    use super::*;

    /// The screen's text, one string per line.
    fn render(dashboard: &mut Dashboard, width: u16, height: u16) -> Vec<String> {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal
            .draw(|frame| draw(frame, dashboard, Instant::now()))
            .unwrap();
        let buffer = terminal.backend().buffer();
        (0..buffer.area.height)
            .map(|y| {
                (0..buffer.area.width)
                    .map(|x| buffer[(x, y)].symbol())
                    .collect()
            })
            .collect()
    }

    fn loaded() -> Dashboard {
        let mut dashboard = Dashboard::new();
        dashboard.apply_snapshot(Ok(sample_snapshot(Instant::now())));
        dashboard
    }

    #[test]
    fn an_80x24_screen_shows_every_pane() {
        let screen = render(&mut loaded(), 80, 24).join("\n");
        for expected in [
            "workers (2)",
            "queues (2)",
            "jobs (1)",
            "done/s",
            "w1",
            " └ a",
            "LOST",
            "paused",
            "backfill",
            "50.0%",
            "p pause/resume",
        ] {
            assert!(screen.contains(expected), "no {expected:?} in\n{screen}");
        }
    }

    #[test]
    fn rows_hold_the_numbers_of_the_snapshot() {
        let screen = render(&mut loaded(), 100, 30);
        let row = |start: &str| {
            screen
                .iter()
                .find(|line| line.trim_start_matches(['│', '>', ' ']).starts_with(start))
                .unwrap_or_else(|| panic!("no row {start:?} in\n{}", screen.join("\n")))
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        // Queue a: paused, 3 available, 1 leased, waiting 5 s, 10 done in the last minute.
        let a = row("a ");
        assert_eq!(a[1..5], ["a", "paused", "3", "1"], "{a:?}");
        assert!(a.contains(&"10".to_string()) && a.iter().any(|c| c.ends_with('s')));
        let w1 = row("w1");
        // 2 runners, 1 task executing, none finishing.
        assert_eq!(w1[1..7], ["w1", "box", "2", "1", "0", "64M"], "{w1:?}");
    }

    #[test]
    fn a_pending_change_shows_until_the_worker_reports_it() {
        use ratatui::crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
        let mut dashboard = loaded();
        let plus = Event::Key(KeyEvent::new(KeyCode::Char('+'), KeyModifiers::NONE));
        dashboard.on_event(&plus);
        let screen = render(&mut dashboard, 80, 24).join("\n");
        assert!(screen.contains("1→2"), "{screen}");
        assert!(
            screen.contains("asking for 2 runners in group a"),
            "{screen}"
        );
    }

    #[test]
    fn any_size_renders_without_panicking() {
        for (width, height) in [
            (0, 0),
            (1, 1),
            (10, 3),
            (20, 5),
            (40, 10),
            (80, 14),
            (80, 16),
            (80, 24),
            (250, 80),
        ] {
            render(&mut loaded(), width, height);
            render(&mut Dashboard::new(), width, height);
        }
        // Short terminals drop the jobs row first; the tables stay.
        let screen = render(&mut loaded(), 40, 10).join("\n");
        assert!(
            screen.contains("workers") && screen.contains("queues"),
            "{screen}"
        );
        assert!(!screen.contains("jobs"), "{screen}");
    }

    #[test]
    fn store_errors_and_the_first_read_are_shown() {
        let mut dashboard = Dashboard::new();
        assert!(render(&mut dashboard, 80, 24)[0].contains("reading the store"));
        dashboard.apply_snapshot(Err("the store did not answer within 10s".into()));
        let screen = render(&mut dashboard, 80, 24).join("\n");
        assert!(
            screen.contains("store: the store did not answer within 10s"),
            "{screen}"
        );
    }

    #[test]
    fn long_names_are_cut_with_an_ellipsis() {
        assert_eq!(cut("backfill-2026", 12), "backfill-20…");
        assert_eq!(cut("short", 12), "short");
        assert_eq!(cut("", 0), "");
    }
}
