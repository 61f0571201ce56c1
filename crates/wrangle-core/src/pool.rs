//! Worker pools (resque-pool's spec) and the autoscaling policy, as pure data and math.
//!
//! A pool is a list of groups, each with its own runners claiming from its own queues:
//! `foo=2:bar,baz=1:*=1` is two runners on `foo`, one on `bar` and `baz`, and one on every
//! queue. A group is named by its queue list as written (`bar,baz`, `*`); control commands
//! (`workers scale WORKER bar,baz=3`) address groups by that name.
//!
//! [`decide`] is the autoscaler: given what a group saw on its last tick, grow, shrink or
//! hold, with the reason logged by the worker.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::parse::{InputError, parse_name};
use crate::store::QueueFilter;

/// One group of a pool: runners claiming from the same queues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolGroup {
    /// The group's name: its queue list as written (`*` for every queue).
    pub name: String,
    /// The queues its runners claim from.
    pub queues: QueueFilter,
    /// How many runners it has.
    pub runners: u32,
}

impl PoolGroup {
    /// A group claiming from `queues` (a comma-separated list, or `*`) with `runners`
    /// (at most [`MAX_GROUP_RUNNERS`]).
    pub fn new(queues: &str, runners: u32) -> Result<Self, InputError> {
        if runners > MAX_GROUP_RUNNERS {
            return Err(InputError::new(format!(
                "'{queues}' = {runners}: at most {MAX_GROUP_RUNNERS} runners per group"
            )));
        }
        Ok(PoolGroup {
            name: queues.to_string(),
            queues: parse_queue_list(queues)?,
            runners,
        })
    }
}

/// Most runners one group may have.
pub const MAX_GROUP_RUNNERS: u32 = 1024;

/// Parses a queue list: `*` for every queue, or comma-separated names.
pub fn parse_queue_list(text: &str) -> Result<QueueFilter, InputError> {
    let text = text.trim();
    if text == "*" {
        return Ok(QueueFilter::All);
    }
    let names = text
        .split(',')
        .map(|name| parse_name("queue", name.trim()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(QueueFilter::Only(names))
}

/// Parses a runner count for a group (0 to [`MAX_GROUP_RUNNERS`]).
pub fn parse_runners(what: &str, text: &str) -> Result<u32, InputError> {
    text.trim()
        .parse::<u32>()
        .ok()
        .filter(|n| *n <= MAX_GROUP_RUNNERS)
        .ok_or_else(|| {
            InputError::new(format!(
                "invalid runner count '{text}' for {what}: expected 0 to {MAX_GROUP_RUNNERS}"
            ))
        })
}

/// Parses a pool spec `QUEUES=N:QUEUES=N…` (resque-pool's), e.g. `foo=2:bar,baz=1:*=1`.
/// A group's queue list may not repeat another's.
pub fn parse_pool(text: &str) -> Result<Vec<PoolGroup>, InputError> {
    let invalid = |why: String| InputError::new(format!("invalid pool '{text}': {why}"));
    if text.trim().is_empty() {
        return Err(invalid(
            "expected QUEUES=N[:QUEUES=N...], e.g. a=2:b,c=1".into(),
        ));
    }
    let mut groups: Vec<PoolGroup> = Vec::new();
    for entry in text.split(':') {
        let (queues, runners) = entry
            .split_once('=')
            .ok_or_else(|| invalid(format!("'{entry}' is not QUEUES=N")))?;
        let runners = parse_runners(queues, runners).map_err(|e| invalid(e.to_string()))?;
        let group = PoolGroup::new(queues.trim(), runners).map_err(|e| invalid(e.to_string()))?;
        if groups.iter().any(|g| g.name == group.name) {
            return Err(invalid(format!("'{}' appears twice", group.name)));
        }
        groups.push(group);
    }
    Ok(groups)
}

/// Parses `scale`'s target: `N` (the whole worker, when it has one group) or `QUEUES=N`.
pub fn parse_scale_target(text: &str) -> Result<(Option<String>, u32), InputError> {
    match text.rsplit_once('=') {
        Some((group, n)) => {
            parse_queue_list(group)?;
            Ok((Some(group.trim().to_string()), parse_runners(group, n)?))
        }
        None => Ok((None, parse_runners("the worker", text)?)),
    }
}

/// Parses an autoscale range `MIN..MAX` (inclusive, 1 <= MIN <= MAX).
pub fn parse_autoscale(text: &str) -> Result<(u32, u32), InputError> {
    let invalid = || {
        InputError::new(format!(
            "invalid autoscale range '{text}': expected MIN..MAX with 1 <= MIN <= MAX <= {MAX_GROUP_RUNNERS}, e.g. 1..8"
        ))
    };
    let (min, max) = text.split_once("..").ok_or_else(invalid)?;
    let min: u32 = min.trim().parse().map_err(|_| invalid())?;
    let max: u32 = max.trim().parse().map_err(|_| invalid())?;
    if min < 1 || min > max || max > MAX_GROUP_RUNNERS {
        return Err(invalid());
    }
    Ok((min, max))
}

/// What a group saw on one autoscaler tick.
#[derive(Debug, Clone, PartialEq)]
pub struct AutoscaleInput {
    /// Runners now.
    pub runners: u32,
    /// Runners busy with a task.
    pub busy: u32,
    /// Tasks due and waiting in the group's queues.
    pub waiting: u64,
    /// How long the oldest of them has waited (zero if none).
    pub oldest_wait: Duration,
    /// The same, on the previous tick.
    pub previous_oldest_wait: Duration,
    /// Consecutive earlier ticks with nothing waiting and a runner idle.
    pub idle_ticks: u32,
    /// One-minute load average divided by the CPU count.
    pub load_per_cpu: f64,
    /// Fraction of memory available (0.0 to 1.0).
    pub memory_available: f64,
}

/// The autoscaler's limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AutoscaleLimits {
    /// Fewest runners.
    pub min: u32,
    /// Most runners.
    pub max: u32,
    /// Grow only while the load per CPU is below this.
    pub max_load_per_cpu: f64,
    /// Grow only while at least this fraction of memory is available.
    pub min_memory_available: f64,
    /// Shrink after this many idle ticks in a row.
    pub idle_ticks_to_shrink: u32,
}

impl AutoscaleLimits {
    /// `min..max` with the default machine limits: load per CPU under 1.5, at least 10% of
    /// memory available, shrink after 5 idle ticks.
    pub fn new(min: u32, max: u32) -> Self {
        AutoscaleLimits {
            min,
            max,
            max_load_per_cpu: 1.5,
            min_memory_available: 0.10,
            idle_ticks_to_shrink: 5,
        }
    }
}

/// The autoscaler's decision, with its reason.
#[derive(Debug, Clone, PartialEq)]
pub enum AutoscaleDecision {
    /// Set the runners to this many.
    Scale {
        /// The new runner count.
        runners: u32,
        /// Why, for the log.
        reason: String,
    },
    /// Keep the count; the reason says why growing was wanted but not allowed, if so.
    Hold {
        /// Why nothing changes (empty when there is nothing to say).
        reason: String,
    },
}

/// Decides one tick: grow by one while tasks wait, every runner is busy and the wait is
/// not shrinking, if the machine has room; shrink by one after a run of idle ticks; stay
/// within `min..max` (a count outside it is brought back first).
pub fn decide(input: &AutoscaleInput, limits: &AutoscaleLimits) -> AutoscaleDecision {
    let hold = |reason: String| AutoscaleDecision::Hold { reason };
    if input.runners < limits.min || input.runners > limits.max {
        let runners = input.runners.clamp(limits.min, limits.max);
        return AutoscaleDecision::Scale {
            runners,
            reason: format!(
                "{} runners is outside {}..{}",
                input.runners, limits.min, limits.max
            ),
        };
    }
    let backlog = input.waiting > 0 && input.busy >= input.runners;
    if backlog {
        if input.oldest_wait < input.previous_oldest_wait {
            return hold(String::new());
        }
        let why = format!(
            "{} tasks waiting, oldest for {:.1}s, all {} runners busy",
            input.waiting,
            input.oldest_wait.as_secs_f64(),
            input.runners
        );
        if input.runners >= limits.max {
            return hold(format!("{why}; already at the maximum {}", limits.max));
        }
        if input.load_per_cpu >= limits.max_load_per_cpu {
            return hold(format!(
                "{why}; but the load per CPU is {:.2} (limit {:.2})",
                input.load_per_cpu, limits.max_load_per_cpu
            ));
        }
        if input.memory_available < limits.min_memory_available {
            return hold(format!(
                "{why}; but only {:.0}% of memory is available (limit {:.0}%)",
                input.memory_available * 100.0,
                limits.min_memory_available * 100.0
            ));
        }
        return AutoscaleDecision::Scale {
            runners: input.runners + 1,
            reason: why,
        };
    }
    let idle = input.waiting == 0 && input.busy < input.runners;
    if idle && input.idle_ticks + 1 >= limits.idle_ticks_to_shrink && input.runners > limits.min {
        return AutoscaleDecision::Scale {
            runners: input.runners - 1,
            reason: format!(
                "idle: nothing waiting and {} of {} runners free for {} ticks",
                input.runners - input.busy,
                input.runners,
                input.idle_ticks + 1
            ),
        };
    }
    hold(String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_parse_like_resque_pool() {
        let pool = parse_pool("foo=2:bar,baz=1:*=1").unwrap();
        assert_eq!(pool.len(), 3);
        assert_eq!(pool[0].queues, QueueFilter::Only(vec!["foo".into()]));
        assert_eq!((pool[0].name.as_str(), pool[0].runners), ("foo", 2));
        assert_eq!(
            pool[1].queues,
            QueueFilter::Only(vec!["bar".into(), "baz".into()])
        );
        assert_eq!(pool[1].name, "bar,baz");
        assert_eq!(
            (pool[2].queues.clone(), pool[2].runners),
            (QueueFilter::All, 1)
        );
        for bad in [
            "", "foo", "foo=x", "foo=-1", "=2", "a=1:a=2", "a b=1", "a=1:", "a=99999",
        ] {
            let err = parse_pool(bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid pool"), "{bad}: {err}");
        }
    }

    #[test]
    fn scale_targets_and_autoscale_ranges_parse() {
        assert_eq!(parse_scale_target("3").unwrap(), (None, 3));
        assert_eq!(parse_scale_target("a=3").unwrap(), (Some("a".into()), 3));
        assert_eq!(
            parse_scale_target("b,c=0").unwrap(),
            (Some("b,c".into()), 0)
        );
        assert!(parse_scale_target("a=").is_err());
        assert!(parse_scale_target("x").is_err());
        assert_eq!(parse_autoscale("1..8").unwrap(), (1, 8));
        for bad in ["0..8", "5..2", "1-8", "1..", "a..b"] {
            assert!(parse_autoscale(bad).is_err(), "{bad}");
        }
    }

    fn busy_backlog(runners: u32) -> AutoscaleInput {
        AutoscaleInput {
            runners,
            busy: runners,
            waiting: 10,
            oldest_wait: Duration::from_secs(3),
            previous_oldest_wait: Duration::from_secs(2),
            idle_ticks: 0,
            load_per_cpu: 0.5,
            memory_available: 0.5,
        }
    }

    #[test]
    fn a_growing_backlog_adds_a_runner_if_the_machine_has_room() {
        let limits = AutoscaleLimits::new(1, 3);
        match decide(&busy_backlog(2), &limits) {
            AutoscaleDecision::Scale { runners, reason } => {
                assert_eq!(runners, 3);
                assert!(reason.contains("10 tasks waiting"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        let at_max = decide(&busy_backlog(3), &limits);
        assert!(matches!(at_max, AutoscaleDecision::Hold { reason } if reason.contains("maximum")));
        let loaded = AutoscaleInput {
            load_per_cpu: 2.0,
            ..busy_backlog(2)
        };
        assert!(
            matches!(decide(&loaded, &limits), AutoscaleDecision::Hold { reason } if reason.contains("load"))
        );
        let full = AutoscaleInput {
            memory_available: 0.05,
            ..busy_backlog(2)
        };
        assert!(
            matches!(decide(&full, &limits), AutoscaleDecision::Hold { reason } if reason.contains("memory"))
        );
        let draining = AutoscaleInput {
            oldest_wait: Duration::from_secs(1),
            ..busy_backlog(2)
        };
        assert_eq!(
            decide(&draining, &limits),
            AutoscaleDecision::Hold {
                reason: String::new()
            }
        );
    }

    #[test]
    fn idleness_removes_runners_down_to_the_minimum() {
        let limits = AutoscaleLimits::new(1, 8);
        let idle = |runners, idle_ticks| AutoscaleInput {
            runners,
            busy: 0,
            waiting: 0,
            oldest_wait: Duration::ZERO,
            previous_oldest_wait: Duration::ZERO,
            idle_ticks,
            load_per_cpu: 0.1,
            memory_available: 0.9,
        };
        assert!(matches!(
            decide(&idle(4, 1), &limits),
            AutoscaleDecision::Hold { .. }
        ));
        assert!(matches!(
            decide(&idle(4, 4), &limits),
            AutoscaleDecision::Scale { runners: 3, reason } if reason.starts_with("idle")
        ));
        assert!(matches!(
            decide(&idle(1, 10), &limits),
            AutoscaleDecision::Hold { .. }
        ));
        assert!(matches!(
            decide(&idle(9, 0), &limits),
            AutoscaleDecision::Scale { runners: 8, .. }
        ));
    }
}
