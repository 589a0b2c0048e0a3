//! The driver: one seed, one history. It draws a corpus of workflows and runs it twice on a
//! [`SimFs`](crate::simfs::SimFs): once without faults (the reference), then with seed-chosen faults (a process
//! death, a power loss, a torn flush, an fsync failing with `EIO` or `ENOSPC`) at seed-chosen
//! file-system operations. After every crash it drops the app and the store, lets the disk keep
//! what the crash kind keeps, reopens, and checks; at the end it checks again and compares the
//! results with the reference.
//!
//! Checked: every acknowledged submission and final outcome survives ([`crate::ledger`]); no
//! body runs again after its final outcome was acknowledged ([`crate::corpus::Watch`]); every
//! journal replays without divergence (`replay_check`); once faults stop, everything reaches a
//! final status; and each workflow's result equals the reference's.
//!
//! This file draws the seed's corpus and plan and compares the two runs; the parts live in
//! `options` (the knobs), `plan` (the fault plan), `run` (one run: rounds, crashes, reopens,
//! checks), `round` (what a round does the same on every backend, shared with the Redis
//! drivers) and `report` (what a seed gives back).

mod options;
mod plan;
mod report;
mod round;
mod run;

use std::sync::atomic::Ordering;

use crate::corpus;
use crate::redis_sim;
use crate::rng::SimRng;

pub use options::SimOptions;
pub use plan::PlannedFault;
pub use report::{SeedFailure, SeedReport};
pub(crate) use round::{MAX_ROUNDS, ROUND, START, send_events, start_round};

use plan::plan;
use run::Run;

/// Runs one seed: the reference run, then the faulty run, with every check.
///
/// # Errors
/// A [`SeedFailure`] naming every violated invariant.
pub fn run_seed(seed: u64, options: SimOptions) -> Result<SeedReport, SeedFailure> {
    let mut rng = SimRng::new(seed);
    let n = rng.range(1, options.max_workflows) as usize;
    let mut programs = corpus::generate(&mut rng, n);
    corpus::add_cancellations(seed, &mut programs);
    let compact_min = rng.range(256, 16 << 10);
    let reference = Run::new(seed, compact_min, rng.clone(), Vec::new()).execute(&programs);
    if !reference.violations.is_empty() {
        return Err(reference.failure(seed, "reference run", options));
    }
    if let Some(v) = corpus::not_cancelled(&programs, &reference.results).pop() {
        let mut failure = reference.failure(seed, "reference run", options);
        failure.violations.push(format!("reference run: {v}"));
        return Err(failure);
    }
    let ops = reference.fs.ops().max(2);
    let plan = plan(&mut rng, ops, &options);
    let zombie_round = rng.chance(50).then(|| rng.range(1, 3) as usize);
    if options.stress {
        return crate::stress::seed(seed, &programs, &reference.results, options);
    }
    if options.redis {
        return redis_sim::seed(
            seed,
            &programs,
            &mut rng,
            zombie_round,
            &reference.results,
            options,
        );
    }
    let plan = if options.memory { Vec::new() } else { plan };
    let mut faulty = Run::new(seed, compact_min, rng, plan);
    faulty.zombie_round = zombie_round;
    faulty.memory = options.memory;
    faulty.pipelined = options.pipelined;
    faulty.trace(format!("seed {seed}: {n} workflow(s) {programs:?}"));
    faulty.trace(format!("plan: {:?}", faulty.plan));
    let faulty = faulty.execute(&programs);
    let mut failure = faulty.failure(seed, "faulty run", options);
    if faulty.violations.is_empty() {
        failure.violations.extend(
            corpus::not_cancelled(&programs, &faulty.results)
                .into_iter()
                .map(|v| format!("faulty run: {v}")),
        );
    }
    if faulty.violations.is_empty() && faulty.results != reference.results {
        failure.violations.push(format!(
            "results differ from the fault-free run: {:?} != {:?}",
            faulty.results, reference.results
        ));
    }
    if !failure.violations.is_empty() {
        return Err(failure);
    }
    Ok(SeedReport {
        seed,
        workflows: n,
        counts: faulty.fs.counts(),
        executions: faulty.watch.executions.load(Ordering::SeqCst),
        purged: faulty.purges.removed,
        trace: faulty.log,
        redis: None,
    })
}
