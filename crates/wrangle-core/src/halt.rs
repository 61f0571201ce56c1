//! When a foreground run stops early: GNU parallel's `--halt` (`now,fail=1`,
//! `soon,fail=10%`, `now,success=1`, `soon,done=3`, and its old numeric forms), parsed
//! and decided here from counts; `wrangle run` does the stopping.
//!
//! A percentage is of the items ended so far, and is only judged once at least
//! [`MIN_FOR_PERCENT`] have ended (so `fail=50%` does not halt on the very first failure).

use crate::parse::InputError;

/// Items that must have ended before a percentage condition is judged.
pub const MIN_FOR_PERCENT: u64 = 3;

/// How running items are treated once the run halts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HaltWhen {
    /// Stop running items at once.
    Now,
    /// Start nothing new; let running items finish.
    Soon,
}

/// Which ended items count towards the condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HaltOn {
    /// Items that failed (their last attempt).
    Fail,
    /// Items that succeeded.
    Success,
    /// Every ended item.
    Done,
}

/// How many of them it takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    /// At least this many (from 1).
    Count(u64),
    /// At least this share of the ended items, in percent (above 0, at most 100).
    Percent(f64),
}

/// A parsed `--halt`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Halt {
    /// What happens to running items.
    pub when: HaltWhen,
    /// What is counted.
    pub on: HaltOn,
    /// How many it takes.
    pub threshold: Threshold,
}

impl Halt {
    /// Whether the run halts, now that `succeeded` items succeeded and `failed` failed.
    pub fn reached(&self, succeeded: u64, failed: u64) -> bool {
        let counted = match self.on {
            HaltOn::Fail => failed,
            HaltOn::Success => succeeded,
            HaltOn::Done => succeeded + failed,
        };
        match self.threshold {
            Threshold::Count(n) => counted >= n,
            Threshold::Percent(percent) => {
                let ended = succeeded + failed;
                ended >= MIN_FOR_PERCENT && counted as f64 * 100.0 >= percent * ended as f64
            }
        }
    }
}

/// Parses `--halt`: `never`, `WHEN,WHY=N` or `WHEN,WHY=P%` (WHEN `now`|`soon`, WHY
/// `fail`|`success`|`done`), or GNU parallel's older forms `0` (never), `1`
/// (`soon,fail=1`), `2` (`now,fail=1`), `-1` (`soon,success=1`), `-2` (`now,success=1`)
/// and `1%`…`99%` (`soon,fail=P%`). `None` is never.
pub fn parse_halt(text: &str) -> Result<Option<Halt>, InputError> {
    let invalid = |why: &str| {
        InputError::new(format!(
            "invalid --halt '{text}': {why} (e.g. now,fail=1, soon,fail=10%, now,success=1, never)"
        ))
    };
    let legacy = |when, on, n| {
        Ok(Some(Halt {
            when,
            on,
            threshold: Threshold::Count(n),
        }))
    };
    match text.trim() {
        "never" | "0" => return Ok(None),
        "1" => return legacy(HaltWhen::Soon, HaltOn::Fail, 1),
        "2" => return legacy(HaltWhen::Now, HaltOn::Fail, 1),
        "-1" => return legacy(HaltWhen::Soon, HaltOn::Success, 1),
        "-2" => return legacy(HaltWhen::Now, HaltOn::Success, 1),
        percent if percent.ends_with('%') && !percent.contains(',') => {
            return Ok(Some(Halt {
                when: HaltWhen::Soon,
                on: HaltOn::Fail,
                threshold: parse_threshold(percent).map_err(|why| invalid(&why))?,
            }));
        }
        _ => {}
    }
    let (when, why) = text
        .trim()
        .split_once(',')
        .ok_or_else(|| invalid("expected WHEN,WHY=N"))?;
    let when = match when {
        "now" => HaltWhen::Now,
        "soon" => HaltWhen::Soon,
        other => return Err(invalid(&format!("'{other}' is not now or soon"))),
    };
    let (on, amount) = why
        .split_once('=')
        .ok_or_else(|| invalid("expected fail=N, success=N or done=N after the comma"))?;
    let on = match on {
        "fail" => HaltOn::Fail,
        "success" => HaltOn::Success,
        "done" => HaltOn::Done,
        other => return Err(invalid(&format!("'{other}' is not fail, success or done"))),
    };
    let threshold = parse_threshold(amount).map_err(|why| invalid(&why))?;
    Ok(Some(Halt {
        when,
        on,
        threshold,
    }))
}

fn parse_threshold(amount: &str) -> Result<Threshold, String> {
    if let Some(percent) = amount.strip_suffix('%') {
        return match percent.parse::<f64>() {
            Ok(p) if p > 0.0 && p <= 100.0 => Ok(Threshold::Percent(p)),
            _ => Err(format!(
                "'{amount}' is not a percentage above 0% and up to 100%"
            )),
        };
    }
    match amount.parse::<u64>() {
        Ok(n) if n >= 1 => Ok(Threshold::Count(n)),
        _ => Err(format!(
            "'{amount}' is not a count of at least 1 or a percentage"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn halt(text: &str) -> Halt {
        parse_halt(text).unwrap().unwrap()
    }

    #[test]
    fn every_spelling_gnu_parallel_accepts() {
        assert_eq!(parse_halt("never").unwrap(), None);
        assert_eq!(parse_halt("0").unwrap(), None);
        let count = |when, on, n| Halt {
            when,
            on,
            threshold: Threshold::Count(n),
        };
        assert_eq!(halt("now,fail=1"), count(HaltWhen::Now, HaltOn::Fail, 1));
        assert_eq!(
            halt("soon,success=3"),
            count(HaltWhen::Soon, HaltOn::Success, 3)
        );
        assert_eq!(halt("now,done=2"), count(HaltWhen::Now, HaltOn::Done, 2));
        assert_eq!(halt("1"), count(HaltWhen::Soon, HaltOn::Fail, 1));
        assert_eq!(halt("2"), count(HaltWhen::Now, HaltOn::Fail, 1));
        assert_eq!(halt("-1"), count(HaltWhen::Soon, HaltOn::Success, 1));
        assert_eq!(halt("-2"), count(HaltWhen::Now, HaltOn::Success, 1));
        assert_eq!(halt("soon,fail=10%").threshold, Threshold::Percent(10.0));
        assert_eq!(halt("25%").threshold, Threshold::Percent(25.0));
        assert_eq!(halt("25%").when, HaltWhen::Soon);
    }

    #[test]
    fn bad_spellings_are_one_line_errors() {
        for text in [
            "",
            "3",
            "later,fail=1",
            "now",
            "now,fail",
            "now,fail=0",
            "now,fail=x",
            "now,oops=1",
            "now,fail=0%",
            "now,fail=101%",
            "now,fail=-5",
            "%",
        ] {
            let err = parse_halt(text).unwrap_err().to_string();
            assert!(err.starts_with("invalid --halt"), "{text}: {err}");
            assert!(!err.contains('\n'), "{text}: {err}");
        }
    }

    #[test]
    fn counts_and_percentages_decide() {
        let fail1 = halt("now,fail=1");
        assert!(!fail1.reached(10, 0));
        assert!(fail1.reached(0, 1));
        let success2 = halt("soon,success=2");
        assert!(!success2.reached(1, 5));
        assert!(success2.reached(2, 0));
        let done3 = halt("soon,done=3");
        assert!(!done3.reached(1, 1));
        assert!(done3.reached(2, 1));
        let half = halt("soon,fail=50%");
        // One failure of one ended item is 100%, but too few items to judge.
        assert!(!half.reached(0, 1));
        assert!(!half.reached(0, 2));
        assert!(!half.reached(2, 1));
        assert!(half.reached(1, 2));
        assert!(half.reached(2, 2));
        assert!(halt("soon,success=100%").reached(3, 0));
        assert!(!halt("soon,success=100%").reached(3, 1));
    }
}
