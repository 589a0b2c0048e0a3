//! Retry rules of the runtime: a recorded child failure is final for its parent unless the
//! parent's `retry_if` asks for a retry, and `Backoff::none()` retries at once. On memory and
//! file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use common::hooked::{Hooks, hooked_apps};
use common::{PATIENCE, apps};
use wf::prelude::*;
use wf::store::{Commit, Lease, Outcome, Store};

/// A parent whose child fails and which propagates the failure with `?`; `options` are the
/// parent's. Returns how many times the parent and the child ran, and the parent's outcome.
fn propagate_child_failure(
    app: &App,
    options: TaskOptions,
) -> (u32, u32, InvocationId, Result<u32, WfError>) {
    let child_runs = Arc::new(AtomicU32::new(0));
    let parent_runs = Arc::new(AtomicU32::new(0));
    let c = child_runs.clone();
    let child = app
        .task(
            "child",
            move |_: &TaskContext, (): ()| -> Result<u32, TaskError> {
                c.fetch_add(1, Ordering::SeqCst);
                Err(TaskError::new("out of stock"))
            },
        )
        .unwrap();
    let p = parent_runs.clone();
    let parent = app
        .task_with(
            options,
            move |ctx: &TaskContext, (): ()| -> Result<u32, TaskError> {
                p.fetch_add(1, Ordering::SeqCst);
                Ok(ctx.wf().execute_task(&child, ())?)
            },
        )
        .unwrap();
    let inv = parent.call(app, ()).unwrap();
    app.run_until_idle().unwrap();
    let result = inv.result_timeout(PATIENCE);
    (
        parent_runs.load(Ordering::SeqCst),
        child_runs.load(Ordering::SeqCst),
        inv.id(),
        result,
    )
}

/// The parent executions of one child that is not run inline: one suspends on it, one replays
/// into its outcome. Inline, the first execution records the outcome itself (every backend
/// supports checkpoints).
fn suspension(inline: bool, _backend: &str) -> u32 {
    u32::from(!inline)
}

#[test]
fn a_propagated_child_failure_is_final_for_the_parent() {
    for inline in [true, false] {
        for t in apps(|b| b.inline_children(inline)) {
            let options = TaskOptions::new("parent")
                .max_retries(3)
                .retry_backoff(Backoff::none());
            let (parent_runs, child_runs, id, result) = propagate_child_failure(&t.app, options);
            // The child's failure is recorded (inline, or replayed after a suspension): final.
            assert_eq!(
                parent_runs,
                1 + suspension(inline, t.backend),
                "{}: no pointless retries",
                t.backend
            );
            assert_eq!(child_runs, 1, "{}", t.backend);
            let record = t.app.store().invocation(id).unwrap();
            assert_eq!(record.state.retries, 0, "{}", t.backend);
            match result {
                Err(WfError::Failed { failure, .. }) => {
                    assert_eq!(failure.kind, FailureKind::Child, "{}", t.backend);
                    assert!(failure.message.contains("out of stock"), "{}", t.backend);
                }
                other => panic!("{}: {other:?}", t.backend),
            }
        }
    }
}

#[test]
fn retry_if_may_ask_to_retry_a_child_failure() {
    for inline in [true, false] {
        for t in apps(|b| b.inline_children(inline)) {
            let asked: Arc<Mutex<Vec<String>>> = Arc::default();
            let a = asked.clone();
            let options = TaskOptions::new("parent")
                .max_retries(3)
                .retry_backoff(Backoff::none())
                .retry_if(move |e| {
                    a.lock().unwrap().push(e.message().to_owned());
                    true
                });
            let (parent_runs, child_runs, id, _) = propagate_child_failure(&t.app, options);
            assert_eq!(
                parent_runs,
                4 + suspension(inline, t.backend),
                "{}: asked for, so retried",
                t.backend
            );
            assert_eq!(
                child_runs, 1,
                "{}: the child's failure is replayed",
                t.backend
            );
            assert_eq!(t.app.store().invocation(id).unwrap().state.retries, 3);
            assert!(asked.lock().unwrap()[0].contains("out of stock"));
        }
        // A predicate that declines keeps it final.
        for t in apps(|b| b.inline_children(inline)) {
            let options = TaskOptions::new("parent")
                .max_retries(3)
                .retry_if(|_| false);
            let (parent_runs, _, _, _) = propagate_child_failure(&t.app, options);
            assert_eq!(
                parent_runs,
                1 + suspension(inline, t.backend),
                "{}",
                t.backend
            );
        }
    }
}

/// The parent's own errors still retry as configured.
#[test]
fn a_parent_s_own_failure_still_retries() {
    for t in apps(|b| b) {
        let runs = Arc::new(AtomicU32::new(0));
        let r = runs.clone();
        let flaky = t
            .app
            .task_with(
                TaskOptions::new("flaky")
                    .max_retries(2)
                    .retry_backoff(Backoff::none()),
                move |_: &TaskContext, (): ()| -> Result<u32, TaskError> {
                    r.fetch_add(1, Ordering::SeqCst);
                    Err(TaskError::new("own failure"))
                },
            )
            .unwrap();
        let inv = flaky.call(&t.app, ()).unwrap();
        t.app.run_until_idle().unwrap();
        assert!(inv.result_timeout(PATIENCE).is_err());
        assert_eq!(runs.load(Ordering::SeqCst), 3, "{}", t.backend);
    }
}

/// Reads each retry's state right after its commit.
#[derive(Default)]
struct RetryStates(Mutex<Vec<(wf::core::Timestamp, wf::core::Timestamp)>>);

struct SeeRetries {
    states: Arc<RetryStates>,
    store: Mutex<Option<Arc<dyn Store>>>,
}

impl Hooks for SeeRetries {
    fn after_commit(&self, lease: &Lease, commit: &Commit) {
        if let Outcome::Retry { .. } = commit.outcome {
            let store = self.store.lock().unwrap().clone().unwrap();
            let state = store.invocation(lease.invocation).unwrap().state;
            self.states
                .0
                .lock()
                .unwrap()
                .push((state.not_before.unwrap(), state.updated_at));
        }
    }
}

/// `Backoff::none()` means at once: the retry is claimable at the very time its failure was
/// committed, not a millisecond later.
#[test]
fn backoff_none_is_claimable_at_once() {
    let states = Arc::new(RetryStates::default());
    let s = states.clone();
    for (t, hooked, app) in hooked_apps(
        move || SeeRetries {
            states: s.clone(),
            store: Mutex::new(None),
        },
        |b| b,
    ) {
        *hooked.hooks.store.lock().unwrap() = Some(hooked.inner.clone());
        let flaky = app
            .task_with(
                TaskOptions::new("flaky")
                    .max_retries(3)
                    .retry_backoff(Backoff::none()),
                |ctx: &TaskContext, (): ()| -> Result<u32, TaskError> {
                    if ctx.attempt() <= 3 {
                        return Err(TaskError::new("again"));
                    }
                    Ok(1)
                },
            )
            .unwrap();
        let inv = flaky.call(&app, ()).unwrap();
        app.run_until_idle().unwrap();
        assert_eq!(inv.result_timeout(PATIENCE).unwrap(), 1, "{}", t.backend);
        let seen = std::mem::take(&mut *states.0.lock().unwrap());
        assert_eq!(seen.len(), 3, "{}", t.backend);
        for (not_before, committed_at) in seen {
            assert!(
                not_before <= committed_at,
                "{}: a retry with no backoff is claimable at {not_before:?}, after its commit at {committed_at:?}",
                t.backend
            );
        }
    }
}
