//! Retry policy: how many retries, how long between them, and which errors retry.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use wf_core::{InvocationId, deterministic};

use crate::error::TaskError;

/// Decides whether an error is worth retrying.
pub type RetryPredicate = Arc<dyn Fn(&TaskError) -> bool + Send + Sync>;

/// Exponential backoff with jitter: attempt `n` (1-based) waits `base * 2^(n-1)`, capped at
/// `max`, then scaled by a factor in `[1 - jitter, 1]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The first delay.
    pub base: Duration,
    /// The longest delay.
    pub max: Duration,
    /// How much of the delay is randomised, in `[0, 1]`.
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(100),
            max: Duration::from_secs(60),
            jitter: 0.5,
        }
    }
}

impl Backoff {
    /// A backoff starting at `base` with the default cap (60 s) and jitter (0.5).
    pub fn exponential(base: Duration) -> Self {
        Self {
            base,
            ..Self::default()
        }
    }

    /// The same delay before every retry, without jitter.
    pub fn fixed(delay: Duration) -> Self {
        Self {
            base: delay,
            max: delay,
            jitter: 0.0,
        }
    }

    /// No delay at all: the retry is claimable at once, at the time its failure was committed.
    pub fn none() -> Self {
        Self {
            base: Duration::ZERO,
            max: Duration::ZERO,
            jitter: 0.0,
        }
    }

    /// Caps the delay.
    pub fn max(mut self, max: Duration) -> Self {
        self.max = max;
        self
    }

    /// Sets the jitter fraction (clamped to `[0, 1]`).
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter.clamp(0.0, 1.0);
        self
    }

    /// The delay before retry number `retry` (1-based) of `invocation`. The jitter is drawn from
    /// the invocation id, so invocations that failed together spread out.
    pub fn delay(&self, invocation: InvocationId, retry: u32) -> Duration {
        let exp = retry.saturating_sub(1).min(30);
        let raw = self.base.saturating_mul(1u32 << exp).min(self.max);
        let draw = deterministic::random_at(invocation, u32::MAX - retry);
        // The fields are public: a jitter outside [0, 1] (or NaN) set directly is clamped here,
        // so the factor stays in [0, 1] and `mul_f64` cannot panic.
        let jitter = if self.jitter.is_finite() {
            self.jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        // At most `raw`: a factor of 1 on a huge `raw` can round above `Duration::MAX` in f64,
        // which `mul_f64` would panic on.
        Duration::try_from_secs_f64(raw.as_secs_f64() * (1.0 - jitter * draw))
            .map_or(raw, |d| d.min(raw))
    }
}

/// A fixed delay: `retry_backoff(Duration::from_millis(250))` is `Backoff::fixed(..)`.
impl From<Duration> for Backoff {
    fn from(delay: Duration) -> Self {
        Self::fixed(delay)
    }
}

/// When a failed attempt is retried.
#[derive(Clone, Default)]
pub(crate) struct RetryPolicy {
    pub(crate) max_retries: u32,
    pub(crate) backoff: Backoff,
    pub(crate) predicate: Option<RetryPredicate>,
}

impl RetryPolicy {
    /// The delay before the next attempt, or `None` when the error is final: no retry left, a
    /// permanent error, an error `retry_if` declines, or a recorded child failure `retry_if` did
    /// not ask to retry. `error` is `None` for a panic.
    pub(crate) fn next_delay(
        &self,
        invocation: InvocationId,
        retries_so_far: u32,
        error: Option<&TaskError>,
    ) -> Option<Duration> {
        if retries_so_far >= self.max_retries {
            return None;
        }
        if let Some(e) = error {
            let retry = match &self.predicate {
                _ if !e.is_retryable() => false,
                Some(predicate) => predicate(e),
                // A retry would replay the same recorded child failure: only on request.
                None => !e.is_child_failure(),
            };
            if !retry {
                return None;
            }
        }
        Some(self.backoff.delay(invocation, retries_so_far + 1))
    }
}

impl fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("max_retries", &self.max_retries)
            .field("backoff", &self.backoff)
            .field("predicate", &self.predicate.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_jitters_within_bounds() {
        let b = Backoff::exponential(Duration::from_millis(100))
            .max(Duration::from_secs(1))
            .jitter(0.5);
        let id = InvocationId::from_u128(3);
        for retry in 1..10u32 {
            let raw =
                Duration::from_millis(100 * (1u64 << (retry - 1))).min(Duration::from_secs(1));
            let d = b.delay(id, retry);
            assert!(
                d <= raw && d >= raw / 2,
                "retry {retry}: {d:?} not in [{:?}, {raw:?}]",
                raw / 2
            );
        }
        assert_eq!(Backoff::none().delay(id, 5), Duration::ZERO);
    }

    #[test]
    fn the_longest_backoff_does_not_panic() {
        let id = InvocationId::from_u128(3);
        assert_eq!(Backoff::fixed(Duration::MAX).delay(id, 1), Duration::MAX);
        assert!(Backoff::exponential(Duration::MAX).delay(id, 40) <= Duration::MAX);
    }

    #[test]
    fn policy_stops_at_max_and_honours_predicate_and_permanence() {
        let id = InvocationId::from_u128(1);
        let p = RetryPolicy {
            max_retries: 2,
            backoff: Backoff::none(),
            predicate: None,
        };
        assert!(p.next_delay(id, 0, None).is_some());
        assert!(p.next_delay(id, 1, None).is_some());
        assert!(p.next_delay(id, 2, None).is_none());
        assert!(
            p.next_delay(id, 0, Some(&TaskError::new("x").permanent()))
                .is_none()
        );
        let only_io = RetryPolicy {
            predicate: Some(Arc::new(|e: &TaskError| e.message().contains("io"))),
            ..p
        };
        assert!(
            only_io
                .next_delay(id, 0, Some(&TaskError::new("io timeout")))
                .is_some()
        );
        assert!(
            only_io
                .next_delay(id, 0, Some(&TaskError::new("bad input")))
                .is_none()
        );
    }

    #[test]
    fn a_child_failure_is_retried_only_when_the_predicate_asks() {
        let id = InvocationId::from_u128(1);
        let child_failed = TaskError::from(crate::WfError::ChildFailed {
            task: wf_core::TaskId::new("c"),
            child: InvocationId::from_u128(2),
            failure: wf_core::Failure::new(wf_core::FailureKind::Task, "no"),
        });
        assert!(child_failed.is_child_failure());
        let p = RetryPolicy {
            max_retries: 3,
            backoff: Backoff::none(),
            predicate: None,
        };
        assert!(p.next_delay(id, 0, Some(&child_failed)).is_none());
        assert!(p.next_delay(id, 0, Some(&TaskError::new("own"))).is_some());
        let asks = RetryPolicy {
            predicate: Some(Arc::new(|e: &TaskError| e.is_child_failure())),
            ..p
        };
        assert!(asks.next_delay(id, 0, Some(&child_failed)).is_some());
        assert!(
            asks.next_delay(id, 0, Some(&TaskError::new("own")))
                .is_none()
        );
    }
}
