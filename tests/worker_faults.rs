//! Workers under faults that do not come from a crash: user code that panics outside the body,
//! a graceful stop while a body outlives its lease, a commit racing the next attempt's claim,
//! a store that refuses a commit or a read for good (an oversized commit as a codec failure),
//! and a commit lost to an unreachable store.
//!
//! Bodies that "work longer than the lease" run until they have seen their lease renewed
//! (`until_renewed`), never for a guessed span of time: a stalled lease thread on a loaded
//! machine cannot make them fail, and a lease left out of the renewals makes them wait in vain
//! and fail. Every wait between threads is a `Gate` or a condition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::hooked::{Hooks, hooked_apps};
use common::{Gate, PATIENCE, RENEWED_LEASE, apps, until_renewed};
use wf::prelude::*;
use wf::store::{Claim, Commit, Lease, Outcome, StoreError};

/// The tests here lease for [`RENEWED_LEASE`] unless a lease must expire: a 150 ms lease
/// expired under load between a claim and the commit of a body that returns at once, so the
/// body ran twice.
const LEASE: Duration = RENEWED_LEASE;

/// The lease of the test that waits for one to expire: short enough not to wait long, long
/// enough for a claim and the commit of a body that returns at once on a loaded machine.
const EXPIRING_LEASE: Duration = Duration::from_secs(2);

/// A `retry_if` predicate is user code outside the body: its panic fails the invocation with a
/// clear message, and the worker thread survives to run the next invocation.
#[test]
fn a_panicking_retry_predicate_fails_the_invocation_and_the_worker_survives() {
    for t in apps(|b| b) {
        let app = &t.app;
        let options = TaskOptions::new("picky")
            .max_retries(3)
            .retry_if(|e| e.message().parse::<u32>().expect("a numeric error") > 0);
        let picky = app
            .task_with(
                options,
                |_: &TaskContext, (): ()| -> Result<(), TaskError> {
                    Err(TaskError::new("not a number"))
                },
            )
            .unwrap();
        let next = app
            .task(
                "next",
                |_: &TaskContext, n: u32| -> Result<u32, TaskError> { Ok(n + 1) },
            )
            .unwrap();
        let worker = app.worker().threads(1).start().unwrap();
        let failed = picky.call(app, ()).unwrap().result_timeout(PATIENCE);
        match failed {
            Err(WfError::Failed { failure, .. }) => {
                assert_eq!(failure.kind, FailureKind::Panic, "{}", t.backend);
                assert!(
                    failure.message.contains("retry_if predicate panicked")
                        && failure.message.contains("a numeric error")
                        && failure.message.contains("not a number"),
                    "{}: {}",
                    t.backend,
                    failure.message
                );
            }
            other => panic!("{}: expected a failure, got {other:?}", t.backend),
        }
        let after = next.call(app, 1).unwrap().result_timeout(PATIENCE);
        assert_eq!(
            after.unwrap(),
            2,
            "{}: the one worker thread lives on",
            t.backend
        );
        worker.stop();
    }
}

/// `stop()` lets running bodies finish and commit: their leases are renewed until they have,
/// even when they run several lease lengths after the stop was asked for. The body runs until
/// it has seen its lease renewed after the stop request.
#[test]
fn a_graceful_stop_keeps_renewing_leases_until_bodies_commit() {
    for t in apps(|b| b.lease_duration(LEASE)) {
        let app = &t.app;
        let started = Gate::default();
        let stop_asked = Gate::default();
        let (s, asked) = (started.clone(), stop_asked.clone());
        let runs = Arc::new(AtomicU32::new(0));
        let r = runs.clone();
        let slow = app
            .task(
                "slow",
                move |ctx: &TaskContext, (): ()| -> Result<u32, TaskError> {
                    r.fetch_add(1, Ordering::SeqCst);
                    s.open();
                    asked.wait();
                    // The slow step under test: it outlasts renewals made after the stop request.
                    until_renewed(ctx.app(), &[ctx.invocation_id()], 1);
                    Ok(7)
                },
            )
            .unwrap();
        let worker = app.worker().threads(1).start().unwrap();
        let inv = slow.call(app, ()).unwrap();
        started.wait();
        worker.request_stop();
        stop_asked.open();
        let stats = worker.stop(); // returns once the body has committed
        assert_eq!(
            (stats.succeeded, stats.lease_lost),
            (1, 0),
            "{}: {stats:?}",
            t.backend
        );
        assert_eq!(inv.result_timeout(PATIENCE).unwrap(), 7, "{}", t.backend);
        assert_eq!(runs.load(Ordering::SeqCst), 1, "{}", t.backend);
    }
}

/// Holds the first attempt's commit (already written) until the second attempt has been
/// claimed by another thread of the same worker: the moment a file store spends in its fsync.
#[derive(Default)]
struct HoldFirstCommit {
    second_claimed: Gate,
}

impl Hooks for HoldFirstCommit {
    fn after_commit(&self, lease: &Lease, commit: &Commit) {
        if lease.attempt == 1 && matches!(commit.outcome, Outcome::Retry { .. }) {
            self.second_claimed.wait();
        }
    }
    fn after_claim(&self, claim: &Claim) {
        if claim.lease.attempt == 2 {
            self.second_claimed.open();
        }
    }
}

/// An attempt that ends while the next attempt of the same invocation is already running on
/// another thread must not stop that attempt's lease renewals. The second attempt waits until
/// the first has ended (the worker counted its retry, after it stopped renewing its lease), then
/// runs until it has seen its own lease renewed.
#[test]
fn the_next_attempt_keeps_its_renewals_when_the_previous_one_finishes_late() {
    for (t, _store, app) in hooked_apps(HoldFirstCommit::default, |b| b.lease_duration(LEASE)) {
        let failed_once = Arc::new(AtomicBool::new(false));
        let f = failed_once.clone();
        // The worker, for the second attempt to see when the first has ended.
        let worker_slot: Arc<Mutex<Option<wf::Worker>>> = Arc::default();
        let w = worker_slot.clone();
        let options = TaskOptions::new("flaky")
            .max_retries(1)
            .retry_backoff(Backoff::none());
        let flaky = app
            .task_with(
                options,
                move |ctx: &TaskContext, (): ()| -> Result<u32, TaskError> {
                    if !f.swap(true, Ordering::SeqCst) {
                        return Err(TaskError::new("first attempt fails at once"));
                    }
                    common::eventually("the first attempt ended", || {
                        w.lock()
                            .unwrap()
                            .as_ref()
                            .is_some_and(|w| w.stats().retried == 1)
                    });
                    // The slow second attempt under test.
                    until_renewed(ctx.app(), &[ctx.invocation_id()], 1);
                    Ok(ctx.attempt())
                },
            )
            .unwrap();
        let inv = flaky.call(&app, ()).unwrap();
        *worker_slot.lock().unwrap() = Some(app.worker().threads(2).start().unwrap());
        let result = inv.result_timeout(PATIENCE);
        let worker = worker_slot.lock().unwrap().take().unwrap();
        let stats = worker.stop();
        assert_eq!(result.unwrap(), 2, "{}: {stats:?}", t.backend);
        assert_eq!(stats.lease_lost, 0, "{}: {stats:?}", t.backend);
    }
}

/// Refuses every commit that carries a success: as a store refuses an oversized result.
struct RefuseSuccess;

impl Hooks for RefuseSuccess {
    fn before_commit(&self, lease: &Lease, commit: &Commit) -> Option<StoreError> {
        matches!(commit.outcome, Outcome::Success(_)).then(|| StoreError::InvalidCommit {
            invocation: lease.invocation,
            reason: "refused by the test".into(),
        })
    }
}

/// A commit the store refuses for good fails the invocation at once; it is not left to expire
/// and be recovered into the same refusal again and again.
#[test]
fn a_refused_commit_fails_the_invocation_once() {
    for (t, _store, app) in hooked_apps(|| RefuseSuccess, |b| b.lease_duration(LEASE)) {
        let runs = Arc::new(AtomicU32::new(0));
        let r = runs.clone();
        let task = app
            .task(
                "refused",
                move |_: &TaskContext, (): ()| -> Result<u32, TaskError> {
                    r.fetch_add(1, Ordering::SeqCst);
                    Ok(1)
                },
            )
            .unwrap();
        let worker = app.worker().threads(1).start().unwrap();
        let result = task.call(&app, ()).unwrap().result_timeout(PATIENCE);
        worker.stop();
        match result {
            Err(WfError::Failed { failure, .. }) => {
                assert_eq!(failure.kind, FailureKind::Store, "{}", t.backend);
                assert!(
                    failure.message.contains("refused by the test")
                        && failure
                            .message
                            .contains("running it again would build the same commit"),
                    "{}: {}",
                    t.backend,
                    failure.message
                );
            }
            other => panic!("{}: expected a failure, got {other:?}", t.backend),
        }
        assert_eq!(
            runs.load(Ordering::SeqCst),
            1,
            "{}: the body ran once",
            t.backend
        );
    }
}

/// Refuses every commit that carries a success as too large, as a store does for a result over
/// its size limit.
struct TooLargeSuccess;

impl Hooks for TooLargeSuccess {
    fn before_commit(&self, _: &Lease, commit: &Commit) -> Option<StoreError> {
        matches!(commit.outcome, Outcome::Success(_)).then(|| StoreError::TooLarge {
            what: "a commit".into(),
            size: 2 << 20,
            limit: 1 << 20,
        })
    }
}

/// A commit refused as too large fails the invocation as a codec failure (what it carries is
/// the problem, not the store), once.
#[test]
fn a_commit_too_large_fails_the_invocation_as_a_codec_failure() {
    for (t, _store, app) in hooked_apps(|| TooLargeSuccess, |b| b.lease_duration(LEASE)) {
        let runs = Arc::new(AtomicU32::new(0));
        let r = runs.clone();
        let task = app
            .task(
                "huge",
                move |_: &TaskContext, (): ()| -> Result<u32, TaskError> {
                    r.fetch_add(1, Ordering::SeqCst);
                    Ok(1)
                },
            )
            .unwrap();
        let worker = app.worker().threads(1).start().unwrap();
        let result = task.call(&app, ()).unwrap().result_timeout(PATIENCE);
        worker.stop();
        match result {
            Err(WfError::Failed { failure, .. }) => {
                assert_eq!(failure.kind, FailureKind::Codec, "{}", t.backend);
                assert!(
                    failure
                        .message
                        .contains("running it again would build the same commit"),
                    "{}: {}",
                    t.backend,
                    failure.message
                );
            }
            other => panic!("{}: expected a failure, got {other:?}", t.backend),
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1, "{}", t.backend);
    }
}

/// Fails the first commit as a broken connection does: the store did not refuse it, and it
/// may not even have seen it.
#[derive(Default)]
struct FirstCommitUnavailable {
    failed: AtomicBool,
}

impl Hooks for FirstCommitUnavailable {
    fn before_commit(&self, _: &Lease, _: &Commit) -> Option<StoreError> {
        (!self.failed.swap(true, Ordering::SeqCst))
            .then(|| StoreError::Unavailable("connection reset (injected)".into()))
    }
}

/// A commit that fails for a passing reason (the store is unreachable) is not a refusal: the
/// invocation is not failed; its lease runs out and the next attempt commits.
#[test]
fn a_commit_lost_to_an_unreachable_store_runs_again_instead_of_failing() {
    for (t, _store, app) in hooked_apps(FirstCommitUnavailable::default, |b| {
        b.lease_duration(EXPIRING_LEASE)
    }) {
        let runs = Arc::new(AtomicU32::new(0));
        let r = runs.clone();
        let task = app
            .task(
                "unlucky",
                move |_: &TaskContext, (): ()| -> Result<u32, TaskError> {
                    Ok(r.fetch_add(1, Ordering::SeqCst) + 1)
                },
            )
            .unwrap();
        let worker = app.worker().threads(1).start().unwrap();
        let result = task.call(&app, ()).unwrap().result_timeout(PATIENCE);
        worker.stop();
        assert_eq!(
            result.unwrap(),
            2,
            "{}: the second run's commit is the one kept",
            t.backend
        );
    }
}

/// A read the store refuses for good (here: not found) is an ordinary error of the body, not a
/// deferral that would repeat forever.
struct ReadsNotFound;

impl Hooks for ReadsNotFound {
    fn before_get_data(&self) -> Option<StoreError> {
        Some(StoreError::InvocationNotFound(wf::InvocationId::from_u128(
            7,
        )))
    }
}

#[test]
fn a_permanent_read_error_fails_the_body_instead_of_deferring_it() {
    for (t, _store, app) in hooked_apps(|| ReadsNotFound, |b| b) {
        let reader = app
            .task(
                "reader",
                |ctx: &TaskContext, (): ()| -> Result<u32, TaskError> {
                    Ok(ctx.wf().get_data_or("k", 1)?)
                },
            )
            .unwrap();
        let inv = reader.call(&app, ()).unwrap();
        app.run_until_idle().unwrap();
        match inv.result() {
            Err(WfError::Failed { failure, .. }) => {
                assert_eq!(failure.kind, FailureKind::Task, "{}", t.backend);
                assert!(
                    failure.message.contains("not found"),
                    "{}: {failure}",
                    t.backend
                );
            }
            other => panic!("{}: expected a failure, got {other:?}", t.backend),
        }
    }
}
