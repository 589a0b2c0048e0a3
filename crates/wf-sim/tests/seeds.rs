//! The simulation seeds CI runs, and the seeds that once failed, each a named test saying what
//! it found. (A seed names a history only for this corpus generator and fault plan: when they
//! change, a named seed keeps testing something, but maybe no longer the same thing.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use wf_sim::{SimOptions, run_seed};

/// How many seeds CI runs (a few seconds in a debug build).
const CI_SEEDS: u64 = 500;

#[test]
fn ci_seeds_pass_with_every_fault_kind() {
    let mut injected = [0u64; 8];
    for seed in 0..CI_SEEDS {
        let report = run_seed(seed, SimOptions::default()).unwrap_or_else(|f| panic!("{f}"));
        let c = report.counts;
        for (slot, n) in injected.iter_mut().zip([
            c.deaths,
            c.sync_eio,
            c.sync_enospc,
            c.write_enospc,
            c.crashes[0],
            c.crashes[1],
            c.crashes[2],
            c.crashes[3],
        ]) {
            *slot += n;
        }
    }
    // Every kind of fault and crash happened, so the seeds test what they claim to.
    assert!(injected.iter().all(|&n| n > 0), "{injected:?}");
}

/// Seed 28985 (the history seed 6987 had, found in a 10,000-seed run; renumbered to 16084 when
/// the file store began publishing its synced size to `wf.synced` and pipelining commits by
/// default, and to 28985 when recovery began reading `wf.synced` and compactions announcing the
/// new log in it, which renumbered the disk operations again: 28985 is the only seed in 0..40000
/// whose process dies during the checks; its history did not change when the driver began
/// syncing where the owner idles, standing in for the store's idle sync, and with the fix
/// below reverted it still fails): the process died (an armed `Die`) while the driver was
/// checking a freshly reopened store, and the checks reported the dead process's failed reads as
/// lost acknowledgements. A defect of the driver,
/// not the store: checks a fault interrupted are discarded and run again after the next reopen.
#[test]
fn seed_28985_checks_interrupted_by_a_dying_process_are_not_violations() {
    let report = run_seed(28985, SimOptions::default()).unwrap_or_else(|f| panic!("{f}"));
    assert!(
        report
            .trace
            .iter()
            .any(|l| l.contains("a fault fired during these checks")),
        "seed 28985 no longer dies during the checks: {:#?}",
        report.trace
    );
}

/// The same corpora on the memory store, with a stalled worker committing late in half of them:
/// the late commits are refused and every result equals the file store's.
#[test]
fn memory_store_seeds_pass_and_match_the_file_store() {
    let options = SimOptions {
        memory: true,
        ..SimOptions::default()
    };
    for seed in 0..200 {
        run_seed(seed, options).unwrap_or_else(|f| panic!("{f}"));
    }
}

/// The same seed gives the same history (operations, faults, crashes, bytes lost, the order of
/// executions), even with other seeds running on other threads: what a failing seed's printed
/// command relies on.
#[test]
fn a_seed_replays_the_same_history() {
    for seed in [3, 40, 77] {
        let a = run_seed(seed, SimOptions::default()).unwrap_or_else(|f| panic!("{f}"));
        let b = run_seed(seed, SimOptions::default()).unwrap_or_else(|f| panic!("{f}"));
        assert_eq!(a.trace, b.trace, "seed {seed}");
        assert_eq!(a.counts, b.counts, "seed {seed}");
    }
}

/// How many seeds CI runs on Redis (each seed's outages wait out the store's retry budget:
/// about a second a seed).
const CI_REDIS_SEEDS: u64 = 50;

/// The same corpora on a real redis-server through the fault proxy (cut connections, lost
/// replies, outages, server restarts, process deaths): acknowledged work survives, the zombie's
/// late commits are refused, and every result equals the file store's. Skipped without
/// redis-server unless `WF_REQUIRE_REDIS=1`. Seed 8 is among them: with the fix for a
/// checkpoint whose outcome is unknown reverted (`wf-runtime/src/inline.rs`), it failed a
/// workflow (Redis runs are not bit-for-bit repeatable, so no seed is certain to hit it again;
/// `tests/redis_checkpoint.rs` does, every time).
#[test]
fn redis_seeds_pass_through_network_and_server_faults() {
    if !wf_store::redis::testing::available_or_skip(
        "redis_seeds_pass_through_network_and_server_faults",
    ) {
        return;
    }
    let options = SimOptions {
        redis: true,
        ..SimOptions::default()
    };
    let mut fired = [0u64; 5];
    for seed in 0..CI_REDIS_SEEDS {
        let report = run_seed(seed, options).unwrap_or_else(|f| panic!("{f}"));
        let r = report.redis.expect("a Redis report");
        for (slot, n) in fired.iter_mut().zip([
            r.proxy.cuts,
            r.proxy.lost_replies,
            r.proxy.outages,
            r.proxy.restarts,
            r.deaths,
        ]) {
            *slot += n;
        }
    }
    wf_sim::redis_sim::stop();
    // Every kind of fault happened, so the seeds test what they claim to.
    assert!(fired.iter().all(|&n| n > 0), "{fired:?}");
}

/// A tenth of the corpora have a workflow that hangs on an event nobody sends; the driver
/// cancels its tree once the app is idle, and `run_seed` fails unless it ends `Cancelled` in
/// both runs. A sixth of the seeds purge finished workflows after each fault-free round, and
/// fail if a purge removes anything unfinished. Checks that the CI seeds include both.
#[test]
fn ci_seeds_include_cancelled_and_purged_workflows() {
    let (mut hanging, mut purged) = (0, 0);
    for seed in 0..100u64 {
        let report = run_seed(seed, SimOptions::default()).unwrap_or_else(|f| panic!("{f}"));
        if report.trace.first().is_some_and(|l| l.contains("Hang")) {
            hanging += 1;
        }
        purged += report.purged;
    }
    assert!(
        hanging >= 3,
        "only {hanging} of 100 seeds cancel a workflow"
    );
    assert!(purged > 0, "no seed of 100 purged anything");
}

/// Seed 430 (the history seed 4139 had, found in a 10,000-seed run once retention joined the
/// corpus, before the disk operations were renumbered (see seed 28985 above); 430 was the first
/// seed that fails without the fix): the process died inside the purge's compaction, after the
/// purge itself was durable; the driver still owed what the purge removed and reported it lost.
/// A defect of the driver: a purge whose outcome is unknown leaves what it may remove no longer
/// owed (its results kept).
#[test]
fn seed_430_a_purge_interrupted_by_a_dying_process_is_no_loss() {
    let report = run_seed(430, SimOptions::default()).unwrap_or_else(|f| panic!("{f}"));
    assert!(
        report.counts.deaths > 0,
        "seed 430 no longer dies: {:#?}",
        report.trace
    );
}
