//! A store that fails a read while a body runs does not fail the invocation: the execution is
//! deferred, keeps what it recorded before the failure, and runs again later without spending
//! the retry budget.
//!
//! The failure is real from the runtime's point of view: the app's store is a `Store` that
//! forwards every call to a real memory or file store, except that it refuses the first
//! `get_data` calls with `StoreError::Unavailable`, as a Redis backend does on a broken connection.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wf::core::{JournalEntry, Timestamp, WorkerId};
use wf::prelude::*;
use wf::store::{
    Claim, Commit, InvocationRecord, Lease, NewInvocation, Outcome, StatusCounts, Store,
    StoreError, Submitted,
};
use wf::{FailureKind, InvocationId, Status};

/// Forwards to `inner`; the first `failures` reads of workflow data fail.
struct FailingReads {
    inner: Arc<dyn Store>,
    failures: AtomicU32,
    /// Every committed outcome, in order.
    outcomes: Mutex<Vec<Outcome>>,
}

impl Store for FailingReads {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    fn submit(&self, invocation: NewInvocation, now: Timestamp) -> Result<Submitted, StoreError> {
        self.inner.submit(invocation, now)
    }
    fn claim(
        &self,
        worker: &WorkerId,
        lease_for: Duration,
        now: Timestamp,
    ) -> Result<Option<Claim>, StoreError> {
        self.inner.claim(worker, lease_for, now)
    }
    fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        self.inner.next_due()
    }
    fn wait_for_work(&self, timeout: Duration) -> Result<bool, StoreError> {
        self.inner.wait_for_work(timeout)
    }
    fn renew(
        &self,
        lease: &Lease,
        lease_for: Duration,
        now: Timestamp,
    ) -> Result<Lease, StoreError> {
        self.inner.renew(lease, lease_for, now)
    }
    fn commit(&self, lease: &Lease, commit: Commit, now: Timestamp) -> Result<(), StoreError> {
        let outcome = commit.outcome.clone();
        self.inner.commit(lease, commit, now)?;
        self.outcomes.lock().unwrap().push(outcome);
        Ok(())
    }
    fn recover_expired(&self, now: Timestamp) -> Result<Vec<InvocationId>, StoreError> {
        self.inner.recover_expired(now)
    }
    fn cancel(&self, id: InvocationId, reason: &str, now: Timestamp) -> Result<(), StoreError> {
        self.inner.cancel(id, reason, now)
    }
    fn invocation(&self, id: InvocationId) -> Result<InvocationRecord, StoreError> {
        self.inner.invocation(id)
    }
    fn journal(&self, id: InvocationId) -> Result<Vec<JournalEntry>, StoreError> {
        self.inner.journal(id)
    }
    fn get_data(&self, workflow: InvocationId, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let failing = self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Err(StoreError::Unavailable(
                "connection reset (injected)".into(),
            ));
        }
        self.inner.get_data(workflow, key)
    }
    fn data_keys(&self, workflow: InvocationId) -> Result<Vec<String>, StoreError> {
        self.inner.data_keys(workflow)
    }
    fn workflow_invocations(
        &self,
        workflow: InvocationId,
    ) -> Result<Vec<InvocationId>, StoreError> {
        self.inner.workflow_invocations(workflow)
    }
    fn workflows(&self) -> Result<Vec<InvocationRecord>, StoreError> {
        self.inner.workflows()
    }
    fn counts(&self) -> Result<StatusCounts, StoreError> {
        self.inner.counts()
    }
    fn wait_final(
        &self,
        id: InvocationId,
        timeout: Duration,
    ) -> Result<Option<InvocationRecord>, StoreError> {
        self.inner.wait_final(id, timeout)
    }
    fn purge_finished(&self, finished_before: Timestamp) -> Result<usize, StoreError> {
        self.inner.purge_finished(finished_before)
    }
}

/// An app over each real backend whose first `failures` data reads fail, and the wrapper (to
/// see its commits). The `TestApp` keeps the backend (and its directory) alive.
fn failing_apps(failures: u32) -> Vec<(common::TestApp, Arc<FailingReads>, App)> {
    common::apps(|b| b)
        .into_iter()
        .map(|t| {
            let store = Arc::new(FailingReads {
                inner: t.app.store().clone(),
                failures: AtomicU32::new(failures),
                outcomes: Mutex::default(),
            });
            let app = App::builder()
                .app_id("test")
                .store(store.clone())
                .build()
                .unwrap();
            (t, store, app)
        })
        .collect()
}

/// Counts executions of a body.
#[derive(Clone, Default)]
struct Runs(Arc<AtomicU32>);

impl Runs {
    fn hit(&self) -> u32 {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }
    fn get(&self) -> u32 {
        self.0.load(Ordering::SeqCst)
    }
}

/// `swallow`: the body ignores the read error and carries on with a fallback value, which must
/// not leak into the result.
fn scenario(app: &App, swallow: bool) -> (Task<(), String>, Runs, Runs) {
    let parent_runs = Runs::default();
    let child_runs = Runs::default();
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
        let outcomes = store.outcomes.lock().unwrap().clone();
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
