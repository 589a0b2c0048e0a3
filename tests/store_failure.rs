//! A store that fails a read while a body runs does not fail the invocation: the execution is
//! deferred, keeps what it recorded before the failure, and runs again later without spending
//! the retry budget.
//!
//! The failure is real from the runtime's point of view: the app's store forwards every call to
//! a real memory or file store (`common::hooked`), except that it refuses the first `get_data`
//! calls with `StoreError::Unavailable`, as a network store does on a broken connection.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use common::Count;
use common::hooked::{Hooks, hooked_apps};
use wf::prelude::*;
use wf::store::{Commit, Lease, Outcome, StoreError};

/// The first `failures` reads of workflow data fail; every committed outcome is kept.
#[derive(Default)]
struct FailingReads {
    failures: AtomicU32,
    outcomes: Mutex<Vec<Outcome>>,
}

impl Hooks for FailingReads {
    fn before_get_data(&self) -> Option<StoreError> {
        self.failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .ok()
            .map(|_| StoreError::Unavailable("connection reset (injected)".into()))
    }
    fn after_commit(&self, _: &Lease, commit: &Commit) {
        self.outcomes.lock().unwrap().push(commit.outcome.clone());
    }
}

fn failing_apps(
    failures: u32,
) -> Vec<(
    common::TestApp,
    Arc<common::hooked::Hooked<FailingReads>>,
    App,
)> {
    hooked_apps(
        || FailingReads {
            failures: AtomicU32::new(failures),
            ..FailingReads::default()
        },
        |b| b,
    )
}

/// `swallow`: the body ignores the read error and carries on with a fallback value, which must
/// not leak into the result.
fn scenario(app: &App, swallow: bool) -> (Task<(), String>, Count, Count) {
    let parent_runs = Count::default();
    let child_runs = Count::default();
    let c = child_runs.clone();
    let child = app
        .task(
            "double",
            move |_: &TaskContext, n: u32| -> Result<u32, TaskError> {
                c.hit();
                Ok(n * 2)
            },
        )
        .unwrap();
    let p = parent_runs.clone();
    let flow = app
        .task(
            "flow",
            move |ctx: &TaskContext, (): ()| -> Result<String, TaskError> {
                p.hit();
                let wf = ctx.wf();
                let id = wf.uuid(); // recorded before the failing read: kept across the deferral
                wf.set_data("started", &true)?;
                let limit: u32 = if swallow {
                    wf.get_data_or("limit", 7).unwrap_or(99)
                } else {
                    wf.get_data_or("limit", 7)?
                };
                let doubled = wf.execute_task(&child, limit)?;
                Ok(format!("{id} {doubled}"))
            },
        )
        .unwrap();
    (flow, parent_runs, child_runs)
}

fn check(swallow: bool) {
    for (t, _, app) in failing_apps(1) {
        let backend = t.backend;
        let (flow, parent_runs, child_runs) = scenario(&app, swallow);
        let inv = flow.call(&app, ()).unwrap();
        app.run_until_idle().unwrap();

        let result = inv.result_timeout(common::PATIENCE).unwrap();
        assert!(
            result.ends_with(" 14"),
            "{backend}: the result comes from the read that succeeded, not a fallback: {result}"
        );
        let record = app.store().invocation(inv.id()).unwrap();
        assert_eq!(record.state.status, Status::Success, "{backend}");
        assert_eq!(
            record.state.retries, 0,
            "{backend}: a failed store read spends no retry budget"
        );
        // Executions: deferred by the failed read, replayed with the read, replayed after the
        // child finished.
        assert_eq!(parent_runs.get(), 3, "{backend}");
        assert_eq!(child_runs.get(), 1, "{backend}: the child ran once");
        // The uuid drawn before the failure was committed with the deferral and replayed.
        let journal = app.store().journal(inv.id()).unwrap();
        let first_uuid = match &journal[0].op {
            wf::core::Op::Uuid(u) => *u,
            other => panic!("{backend}: expected the uuid first, got {other:?}"),
        };
        assert!(result.starts_with(&first_uuid.to_string()), "{backend}");
    }
}

#[test]
fn a_failed_store_read_defers_the_execution_instead_of_failing_it() {
    check(false);
}

#[test]
fn a_swallowed_store_read_error_still_defers_the_execution() {
    check(true);
}

/// The deferral is committed as pending-until-later with a `Store` error that says what
/// happens next, one second after it.
#[test]
fn a_deferral_says_why_and_when() {
    for (t, store, app) in failing_apps(1) {
        let backend = t.backend;
        let (flow, _, _) = scenario(&app, false);
        flow.call(&app, ()).unwrap();
        app.run_until_idle().unwrap();
        let outcomes = store.hooks.outcomes.lock().unwrap().clone();
        assert!(
            matches!(outcomes.last(), Some(Outcome::Success(_))),
            "{backend}: {outcomes:?}"
        );
        let Some(Outcome::Deferred { error, .. }) = outcomes.first() else {
            panic!("{backend}: the first execution should be deferred: {outcomes:?}");
        };
        assert_eq!(error.kind, FailureKind::Store, "{backend}: {error}");
        assert!(
            error.message.contains("connection reset"),
            "{backend}: {error}"
        );
        assert!(
            error.message.contains("without spending its retry budget"),
            "{backend}: {error}"
        );
    }
}
