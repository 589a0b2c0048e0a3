//! What a seed gives back: a [`SeedReport`] when it passed, a [`SeedFailure`] (its violations,
//! its trace and the command that replays it) when it did not.

use crate::driver::SimOptions;
use crate::redis_sim::RedisReport;
use crate::simfs::SimCounts;

/// What one seed did, when it passed.
#[derive(Debug, Clone, Default)]
pub struct SeedReport {
    /// The seed.
    pub seed: u64,
    /// Workflows in its corpus.
    pub workflows: usize,
    /// The faulty run's disk counters (faults fired, crashes by kind, bytes lost).
    pub counts: SimCounts,
    /// Body executions in the faulty run.
    pub executions: u64,
    /// The step trace of the faulty run.
    pub trace: Vec<String>,
    /// On Redis (`--redis`): the proxy's fault counters and process deaths.
    pub redis: Option<RedisReport>,
    /// Invocations purged (retention) in the checked run.
    pub purged: u64,
}

/// A seed that failed: what was violated, and the trace that led there.
#[derive(Debug, Clone)]
pub struct SeedFailure {
    /// The seed.
    pub seed: u64,
    /// The violations, first first.
    pub violations: Vec<String>,
    /// The step trace of the run that failed.
    pub trace: Vec<String>,
    /// The options it ran with (part of what the seed's history depends on).
    pub options: SimOptions,
}

impl std::fmt::Display for SeedFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "sim seed {} FAILED:", self.seed)?;
        for v in &self.violations {
            writeln!(f, "  - {v}")?;
        }
        let d = SimOptions::default();
        let mut flags = String::new();
        if self.options.max_faults != d.max_faults {
            flags.push_str(&format!(" --max-faults {}", self.options.max_faults));
        }
        if self.options.max_workflows != d.max_workflows {
            flags.push_str(&format!(" --max-workflows {}", self.options.max_workflows));
        }
        if !self.options.reorder {
            flags.push_str(" --no-reorder");
        }
        if self.options.memory {
            flags.push_str(" --memory");
        }
        if self.options.redis {
            flags.push_str(" --redis");
        }
        if self.options.stress {
            flags.push_str(" --stress");
        }
        if !self.options.pipelined {
            flags.push_str(" --unpipelined");
        }
        write!(
            f,
            "replay this history with its step trace: cargo xtask sim --seed {}{flags} --trace",
            self.seed
        )
    }
}
