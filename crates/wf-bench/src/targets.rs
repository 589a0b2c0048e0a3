//! The targets of issue 15, each as a function of the floors measured in the same run.

use crate::backend::Backend;
use crate::report::{Floors, human};

/// A target: a bound on a workload's primary value, with how it was derived.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The bound.
    pub(crate) goal: Goal,
    /// How the bound reads, e.g. "≥ 4x fsync rate = 8,000 tasks/s".
    pub(crate) text: String,
}

/// Which side of the bound is good.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Goal {
    AtLeast(f64),
    AtMost(f64),
    Between(f64, f64),
}

impl Target {
    fn at_least(bound: f64, text: impl Into<String>) -> Self {
        Self {
            goal: Goal::AtLeast(bound),
            text: text.into(),
        }
    }

    fn at_most(bound: f64, text: impl Into<String>) -> Self {
        Self {
            goal: Goal::AtMost(bound),
            text: text.into(),
        }
    }

    /// Whether `value` meets it.
    pub(crate) fn met(&self, value: f64) -> bool {
        match self.goal {
            Goal::AtLeast(b) => value >= b,
            Goal::AtMost(b) => value <= b,
            Goal::Between(lo, hi) => (lo..=hi).contains(&value),
        }
    }
}

/// Burst tasks/s.
pub(crate) fn burst(backend: Backend, f: &Floors) -> Option<Target> {
    match backend {
        Backend::Memory => Some(Target::at_least(300_000.0, "≥ 300,000 tasks/s")),
        Backend::File => f.fsync_per_sec.map(|r| {
            Target::at_least(
                4.0 * r,
                format!("≥ 4x fsync rate = {} tasks/s", human(4.0 * r)),
            )
        }),
        Backend::Redis => f.redis_evalsha_4.map(|r| {
            Target::at_least(
                0.4 * r,
                format!("≥ 40% of 4-client EVALSHA = {} tasks/s", human(0.4 * r)),
            )
        }),
    }
}

/// Latency p50, in microseconds.
pub(crate) fn latency_p50(backend: Backend, f: &Floors) -> Option<Target> {
    match backend {
        Backend::Memory => Some(Target::at_most(20.0, "≤ 20 µs")),
        Backend::File => f.fsync_per_sec.map(|r| {
            let us = 2.0 * 1e6 / r + 100.0;
            Target::at_most(us, format!("≤ 2 fsyncs + 100 µs = {us:.0} µs"))
        }),
        Backend::Redis => f.redis_evalsha_1.map(|r| {
            let us = 3.0 * 1e6 / r;
            Target::at_most(us, format!("≤ 3 round trips = {us:.0} µs"))
        }),
    }
}

/// Workflows/s of the 200-op, 10-child workflow.
pub(crate) fn workflows(backend: Backend, f: &Floors) -> Option<Target> {
    match backend {
        Backend::Memory => Some(Target::at_least(20_000.0, "≥ 20,000 workflows/s")),
        Backend::File => f.fsync_per_sec.map(|r| {
            Target::at_least(
                r / 3.0,
                format!("≥ fsync rate / 3 = {} workflows/s", human(r / 3.0)),
            )
        }),
        Backend::Redis => Some(Target::at_least(1_500.0, "≥ 1,500 workflows/s")),
    }
}

/// 3,000 sequential children, as a multiple of 3,000 times the cost of one child.
pub(crate) fn long_ratio() -> Target {
    Target {
        goal: Goal::Between(0.5, 1.5),
        text: "3,000 x one child's cost ±50% (ratio 0.5–1.5)".to_owned(),
    }
}

/// Replay of 10,000 journal entries, in milliseconds.
pub(crate) fn replay_ms(backend: Backend) -> Target {
    match backend {
        Backend::Memory => Target::at_most(2.0, "≤ 2 ms"),
        Backend::File | Backend::Redis => Target::at_most(20.0, "≤ 20 ms"),
    }
}

/// Recovery after kill -9, in seconds, for a lease of `lease_secs`.
pub(crate) fn recovery_secs(lease_secs: f64) -> Target {
    Target::at_most(
        lease_secs + 1.0,
        format!("≤ lease + 1 s = {:.1} s", lease_secs + 1.0),
    )
}

/// Worker peak RSS, in MB.
pub(crate) fn rss_mb(backend: Backend) -> Target {
    match backend {
        Backend::Memory => Target::at_most(20.0, "≤ 20 MB"),
        Backend::File | Backend::Redis => Target::at_most(30.0, "≤ 30 MB"),
    }
}
