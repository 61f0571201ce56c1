//! When a failed attempt runs again: exponential backoff with jitter.
//!
//! The delay before attempt `n + 1` is `base * 2^(n-1)`, capped at `max`, then spread by
//! ±`jitter` (a fraction) so that tasks that failed together do not retry in lockstep.
//! The jitter is derived from the task id and attempt (a hash, not a random generator),
//! so a given task's schedule is reproducible and tests need no seeded RNG.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::TaskId;

/// The backoff policy. `RetryPolicy::default()` is 1 s doubling, capped at 1 h, ±10 %.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Delay after the first failure.
    pub base: Duration,
    /// Longest delay.
    pub max: Duration,
    /// Spread as a fraction of the delay, in `0.0..=1.0`.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_secs(1),
            max: Duration::from_secs(3600),
            jitter: 0.1,
        }
    }
}

impl RetryPolicy {
    /// A policy with `base` doubling and the default cap and jitter.
    pub fn exponential(base: Duration) -> Self {
        RetryPolicy {
            base,
            ..RetryPolicy::default()
        }
    }

    /// The delay after failed attempt `attempt` (1-based) of task `id`.
    pub fn delay(&self, id: TaskId, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(40);
        let raw = self
            .base
            .checked_mul(1u32 << doublings.min(31))
            .unwrap_or(self.max)
            .min(self.max);
        if self.jitter <= 0.0 {
            return raw;
        }
        // A value in [-1, 1) that depends only on (id, attempt).
        let unit =
            (splitmix64((id as u64) ^ ((attempt as u64) << 48)) >> 11) as f64 / (1u64 << 53) as f64;
        let factor = 1.0 + self.jitter.min(1.0) * (unit * 2.0 - 1.0);
        raw.mul_f64(factor.max(0.0))
    }

    /// When the attempt after failed attempt `attempt` becomes due, or `None` when
    /// `attempt` was the last one allowed (the task is dead).
    pub fn next_run_at(
        &self,
        id: TaskId,
        attempt: u32,
        max_attempts: u32,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        if attempt >= max_attempts {
            return None;
        }
        let delay =
            chrono::Duration::from_std(self.delay(id, attempt)).unwrap_or(chrono::Duration::MAX);
        Some(now.checked_add_signed(delay).unwrap_or(now))
    }
}

/// A fast, well-mixed 64-bit hash (the SplitMix64 finaliser).
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_without_jitter() {
        let p = RetryPolicy {
            jitter: 0.0,
            ..RetryPolicy::exponential(Duration::from_millis(100))
        };
        assert_eq!(p.delay(1, 1), Duration::from_millis(100));
        assert_eq!(p.delay(1, 2), Duration::from_millis(200));
        assert_eq!(p.delay(1, 3), Duration::from_millis(400));
        assert_eq!(p.delay(1, 0), Duration::from_millis(100));
    }

    #[test]
    fn caps_at_max_even_for_huge_attempts() {
        let p = RetryPolicy::default();
        for attempt in [20, 31, 32, 40, 1000, u32::MAX] {
            let d = p.delay(7, attempt);
            assert!(d <= p.max.mul_f64(1.0 + p.jitter), "{attempt}: {d:?}");
            assert!(d >= p.max.mul_f64(1.0 - p.jitter), "{attempt}: {d:?}");
        }
    }

    #[test]
    fn jitter_stays_in_band_and_is_deterministic() {
        let p = RetryPolicy::default();
        let mut distinct = std::collections::HashSet::new();
        for id in 0..1000 {
            let d = p.delay(id, 3);
            assert_eq!(d, p.delay(id, 3));
            assert!(d >= Duration::from_millis(3600) && d <= Duration::from_millis(4400));
            distinct.insert(d);
        }
        assert!(distinct.len() > 900, "jitter spreads tasks out");
    }

    #[test]
    fn last_attempt_has_no_next_run() {
        let p = RetryPolicy::default();
        let now = Utc::now();
        assert!(p.next_run_at(1, 3, 3, now).is_none());
        assert!(p.next_run_at(1, 4, 3, now).is_none());
        let next = p.next_run_at(1, 1, 3, now).unwrap();
        assert!(next > now);
    }
}
