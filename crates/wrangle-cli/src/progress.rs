//! Progress bars on stderr for long commands: one line that fits the terminal (80 columns
//! included), counts and a bar when the total is known, a spinner when not, a rate in
//! whole items per second, and an ETA only once there is a rate to base it on. Nothing
//! is drawn when stderr is not a terminal (unless asked for).

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// A bar (or a spinner, without `total`) counting `unit`s, redrawn on its own.
pub(crate) fn counting(total: Option<u64>, unit: &'static str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    bar.set_style(counting_style(total.is_some(), unit));
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// A [`counting`] bar for a long command, or none when stderr is not a terminal (a
/// script reading stderr gets no redraws). Drawn at once, so even a quick command shows
/// what it did.
pub(crate) fn on_terminal(total: Option<u64>, unit: &'static str) -> Option<ProgressBar> {
    std::io::IsTerminal::is_terminal(&std::io::stderr()).then(|| {
        let bar = counting(total, unit);
        bar.tick();
        bar
    })
}

/// A spinner with a message the caller keeps current (a task's state while waiting for
/// it, a store call that reports nothing until it ends), or none off a terminal.
pub(crate) fn spinner_on_terminal(message: String) -> Option<ProgressBar> {
    std::io::IsTerminal::is_terminal(&std::io::stderr()).then(|| {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{elapsed:>4} {spinner} {msg}")
                .expect("a valid progress template"),
        );
        bar.set_message(message);
        bar.enable_steady_tick(Duration::from_millis(200));
        bar.tick();
        bar
    })
}

/// The total of a [`counting`] spinner became known (it turns into a bar with an ETA).
pub(crate) fn set_total(bar: &ProgressBar, total: u64, unit: &'static str) {
    bar.set_length(total);
    bar.set_style(counting_style(true, unit));
}

fn counting_style(known_total: bool, unit: &'static str) -> ProgressStyle {
    let template = if known_total {
        "{elapsed:>4} [{wide_bar}] {pos}/{len} {unit}{rate}{eta}"
    } else {
        "{elapsed:>4} {spinner} {pos} {unit}{rate}"
    };
    ProgressStyle::with_template(template)
        .expect("a valid progress template")
        .with_key(
            "unit",
            move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = w.write_str(unit);
            },
        )
        .with_key(
            "rate",
            |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                if let Some(rate) = rate(state) {
                    let _ = write!(w, "  {}/s", whole(rate));
                }
            },
        )
        .with_key(
            "eta",
            |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                if rate(state).is_some() && state.len().is_some() {
                    let eta = Duration::from_secs(state.eta().as_secs_f64().ceil() as u64);
                    let _ = write!(w, "  ETA {}", clock(eta));
                }
            },
        )
        .progress_chars("=> ")
}

/// A bar whose position and message the caller sets (from figures of its own, such as a
/// job's rate measured by the store).
pub(crate) fn reported(prefix: &str, visible: bool) -> ProgressBar {
    let target = if visible {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(None, target);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{wide_bar}] {percent:>3}% {msg}")
            .expect("a valid progress template")
            .progress_chars("=> "),
    );
    bar.set_prefix(wrangle::parse::shorten(prefix, 16));
    bar
}

/// Items per second so far, once at least one item ended and a little time passed (the
/// first moments give wild rates).
fn rate(state: &ProgressState) -> Option<f64> {
    (state.pos() > 0 && state.elapsed() >= Duration::from_millis(500)).then(|| state.per_sec())
}

/// A count or rate as a short whole number: `950`, `12,345`, `1.2M`.
pub(crate) fn whole(value: f64) -> String {
    let value = value.max(0.0).round();
    if value >= 10_000_000.0 {
        format!("{:.1}M", value / 1e6)
    } else {
        let digits = format!("{value:.0}");
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        out
    }
}

/// A duration as a clock reading: `42s`, `3m05s`, `2h07m`.
pub(crate) fn clock(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_short() {
        assert_eq!(whole(1483.4696), "1,483");
        assert_eq!(whole(0.4), "0");
        assert_eq!(whole(999.6), "1,000");
        assert_eq!(whole(1_234_567.0), "1,234,567");
        assert_eq!(whole(12_345_678.0), "12.3M");
        assert_eq!(clock(Duration::from_secs(59)), "59s");
        assert_eq!(clock(Duration::from_secs(125)), "2m05s");
        assert_eq!(clock(Duration::from_secs(7322)), "2h02m");
    }
}
