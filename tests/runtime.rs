//! End-to-end tests of the runtime through the facade: results, errors, retries, panics,
//! graceful stop, lease takeover, and the inline test driver. Each runs on every backend.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{Gate, PATIENCE, RENEWED_LEASE, apps};
use wf::prelude::*;
use wf::store::StoreError;
use wf::{FailureKind, Status};

#[test]
fn results_and_errors_reach_the_caller() {
    for t in apps(|b| b) {
        let app = &t.app;
        let add = app
            .task(
                "add",
                |_: &TaskContext, (a, b): (i64, i64)| -> Result<i64, TaskError> { Ok(a + b) },
            )
            .unwrap();
        let fail = app
            .task(
                "fail",
                |_: &TaskContext, why: String| -> Result<(), TaskError> {
                    Err(TaskError::new(why))
                },
            )
            .unwrap();
        let parse = app
            .task(
                "parse",
                |_: &TaskContext, s: String| -> Result<u32, TaskError> { Ok(s.parse::<u32>()?) },
            )
            .unwrap();
        let worker = app.worker().threads(2).start().unwrap();

        let sum = add.call(app, (40, 2)).unwrap();
        assert_eq!(sum.result_timeout(PATIENCE).unwrap(), 42, "{}", t.backend);
        assert_eq!(sum.status().unwrap(), Status::Success);

        let failed = fail.call(app, "card declined".into()).unwrap();
        match failed.result_timeout(PATIENCE) {
            Err(WfError::Failed {
                invocation,
                failure,
            }) => {
                assert_eq!(invocation, failed.id());
                assert_eq!(failure.kind, FailureKind::Task);
                assert_eq!(failure.message, "card declined");
            }
            other => panic!("{}: expected a failure, got {other:?}", t.backend),
        }
        assert_eq!(failed.status().unwrap(), Status::Failed);

        // `?` on any std error works in bodies.
        let bad = parse.call(app, "x".into()).unwrap();
        let err = bad.result_timeout(PATIENCE).unwrap_err();
        assert!(
            err.to_string().contains("invalid digit"),
            "{}: {err}",
            t.backend
        );
        worker.stop();
    }
}

/// `call_many` submits a batch in one store operation; each call is its own workflow, and the
/// results come back in the order of the arguments.
#[test]
fn call_many_submits_a_batch_and_each_call_is_a_workflow() {
    for t in apps(|b| b) {
        let app = &t.app;
        let square = app
            .task(
                "square",
                |_: &TaskContext, n: u64| -> Result<u64, TaskError> { Ok(n * n) },
            )
            .unwrap();
        let calls = square.call_many(app, (0..100).rev()).unwrap();
        assert_eq!(calls.len(), 100);
        assert_eq!(
            app.store().counts().unwrap().get(Status::Pending),
            100,
            "{}: all submitted before anything ran",
            t.backend
        );
        let worker = app.worker().threads(2).start().unwrap();
        for (call, n) in calls.iter().zip((0..100u64).rev()) {
            assert_eq!(
                call.result_timeout(PATIENCE).unwrap(),
                n * n,
                "{}",
                t.backend
            );
            assert!(
                call.record().unwrap().is_root(),
                "{}: its own workflow",
                t.backend
            );
        }
        worker.stop();
        assert_eq!(app.store().workflows().unwrap().len(), 100);
        assert!(square.call_many(app, Vec::new()).unwrap().is_empty());
    }
}

#[test]
fn retries_back_off_then_succeed_or_give_up() {
    for t in apps(|b| b) {
        let app = &t.app;
        let tries = Arc::new(AtomicU32::new(0));
        let seen = tries.clone();
        let flaky = app
            .task_with(
                TaskOptions::new("flaky")
                    .max_retries(3)
                    .retry_backoff(Backoff::exponential(Duration::from_millis(40)).jitter(0.0)),
                move |ctx: &TaskContext, fail_times: u32| -> Result<u32, TaskError> {
                    let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
                    assert_eq!(ctx.attempt(), n, "attempt numbers count executions");
                    if n <= fail_times {
                        Err(TaskError::new(format!("try {n} failed")))
                    } else {
                        Ok(n)
                    }
                },
            )
            .unwrap();
        let worker = app.worker().threads(1).start().unwrap();

        let started = Instant::now();
        let inv = flaky.call(app, 2).unwrap();
        assert_eq!(inv.result_timeout(PATIENCE).unwrap(), 3, "{}", t.backend);
        // Backoff 40 ms then 80 ms: the retries cannot have come sooner (a lower bound, not a speed test).
        assert!(
            started.elapsed() >= Duration::from_millis(120),
            "{}: retried too early",
            t.backend
        );
        let record = inv.record().unwrap();
        assert_eq!((record.state.attempts, record.state.retries), (3, 2));

        tries.store(0, Ordering::SeqCst);
        let hopeless = flaky.call(app, 10).unwrap();
        let err = hopeless.result_timeout(PATIENCE).unwrap_err();
        assert!(
            matches!(err, WfError::Failed { ref failure, .. } if failure.message == "try 4 failed"),
            "{}: {err}",
            t.backend
        );
        assert_eq!(tries.load(Ordering::SeqCst), 4, "1 run + 3 retries");
        worker.stop();
    }
}

#[test]
fn retry_predicate_and_permanent_errors_stop_retries() {
    for t in apps(|b| b) {
        let app = &t.app;
        let runs = Arc::new(AtomicU32::new(0));
        let r = runs.clone();
        let task = app
            .task_with(
                TaskOptions::new("picky")
                    .max_retries(5)
                    .retry_backoff(Backoff::none())
                    .retry_if(|e| e.message().starts_with("transient")),
                move |_: &TaskContext, msg: String| -> Result<(), TaskError> {
                    r.fetch_add(1, Ordering::SeqCst);
                    if msg == "permanent" {
                        Err(TaskError::new("transient but permanent").permanent())
                    } else {
                        Err(TaskError::new(msg))
                    }
                },
            )
            .unwrap();
        task.call(app, "bad input".into()).unwrap();
        task.call(app, "permanent".into()).unwrap();
        let transient = task.call(app, "transient glitch".into()).unwrap();
        app.run_until_idle().unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1 + 1 + 6, "{}", t.backend);
        assert_eq!(transient.record().unwrap().state.retries, 5);
    }
}

#[test]
fn a_panicking_body_fails_its_invocation_and_the_worker_survives() {
    for t in apps(|b| b) {
        let app = &t.app;
        let boom = app
            .task("boom", |_: &TaskContext, (): ()| -> Result<(), TaskError> {
                panic!("kaboom")
            })
            .unwrap();
        let ok = app
            .task("ok", |_: &TaskContext, (): ()| -> Result<u8, TaskError> {
                Ok(7)
            })
            .unwrap();
        let worker = app.worker().threads(1).start().unwrap();
        let err = boom
            .call(app, ())
            .unwrap()
            .result_timeout(PATIENCE)
            .unwrap_err();
        match err {
            WfError::Failed { failure, .. } => {
                assert_eq!(failure.kind, FailureKind::Panic);
                assert!(failure.message.contains("kaboom"), "{}", failure.message);
            }
            other => panic!("{other:?}"),
        }
        // The single worker thread is still there.
        assert_eq!(
            ok.call(app, ()).unwrap().result_timeout(PATIENCE).unwrap(),
            7,
            "{}",
            t.backend
        );
        let stats = worker.stop();
        assert_eq!((stats.failed, stats.succeeded), (1, 1));
    }
}

#[test]
fn panics_are_retried_when_configured() {
    for t in apps(|b| b) {
        let app = &t.app;
        let runs = Arc::new(AtomicU32::new(0));
        let r = runs.clone();
        let task = app
            .task_with(
                TaskOptions::new("panicky")
                    .max_retries(1)
                    .retry_backoff(Backoff::none()),
                move |_: &TaskContext, (): ()| -> Result<u32, TaskError> {
                    if r.fetch_add(1, Ordering::SeqCst) == 0 {
                        panic!("first run panics");
                    }
                    Ok(2)
                },
            )
            .unwrap();
        let inv = task.call(app, ()).unwrap();
        app.run_until_idle().unwrap();
        assert_eq!(inv.result().unwrap(), 2, "{}", t.backend);
    }
}

#[test]
fn graceful_stop_finishes_running_work_and_claims_nothing_new() {
    for t in apps(|b| b) {
        let app = &t.app;
        let started = Gate::default();
        let release = Gate::default();
        let (s, r) = (started.clone(), release.clone());
        let slow = app
            .task(
                "slow",
                move |_: &TaskContext, n: u32| -> Result<u32, TaskError> {
                    s.open();
                    r.wait();
                    Ok(n)
                },
            )
            .unwrap();
        let worker = app.worker().threads(1).start().unwrap();
        let running = slow.call(app, 1).unwrap();
        started.wait();
        worker.request_stop();
        // The stop request is in; the body is still running and must be allowed to finish.
        let queued_after = slow.call(app, 2).unwrap();
        release.open();
        let stats = worker.stop();
        assert_eq!(stats.succeeded, 1, "{}", t.backend);
        assert_eq!(running.status().unwrap(), Status::Success);
        assert_eq!(
            queued_after.status().unwrap(),
            Status::Pending,
            "{}: a stopped worker claimed new work",
            t.backend
        );
    }
}

/// A worker app that has not registered a task (a partial deploy, a renamed task, a second
/// binary) never claims its invocations: they stay pending, untouched, until a worker that runs
/// the task takes them.
#[test]
fn unknown_tasks_wait_for_a_worker_that_registers_them() {
    for t in apps(|b| b) {
        let caller = &t.app;
        let task = caller
            .task(
                "known_here",
                |_: &TaskContext, (): ()| -> Result<u8, TaskError> { Ok(7) },
            )
            .unwrap();
        let inv = task.call(caller, ()).unwrap();
        // A worker app sharing the store but lacking the task.
        let worker_app = App::builder()
            .app_id("test")
            .store(caller.store().clone())
            .build()
            .unwrap();
        worker_app
            .task(
                "other",
                |_: &TaskContext, (): ()| -> Result<(), TaskError> { Ok(()) },
            )
            .unwrap();
        assert_eq!(worker_app.run_until_idle().unwrap(), 0, "{}", t.backend);
        let worker = worker_app.worker().threads(1).start().unwrap();
        // Nothing to await: the worker must do nothing. Give it a moment to do the wrong thing.
        assert!(
            matches!(
                inv.result_timeout(Duration::from_millis(300)),
                Err(WfError::Timeout { .. })
            ),
            "{}: a worker without the task must leave it alone",
            t.backend
        );
        assert_eq!(worker.stop().executed, 0, "{}", t.backend);
        let record = caller.store().invocation(inv.id()).unwrap();
        assert_eq!(record.status(), Status::Pending, "{}", t.backend);
        assert_eq!(record.state.attempts, 0, "{}: never claimed", t.backend);

        assert_eq!(caller.run_until_idle().unwrap(), 1, "{}", t.backend);
        assert_eq!(inv.result_timeout(PATIENCE).unwrap(), 7, "{}", t.backend);
    }
}

/// A store records the app that first opened it; building an app with another id on it is an
/// error that names both.
#[test]
fn a_store_refuses_another_app() {
    for t in apps(|b| b) {
        let other = App::builder()
            .app_id("billing")
            .store(t.app.store().clone())
            .build();
        match other {
            Err(WfError::Store(StoreError::AppMismatch {
                recorded,
                requested,
                ..
            })) => assert_eq!(
                (recorded.as_str(), requested.as_str()),
                ("test", "billing"),
                "{}",
                t.backend
            ),
            other => panic!("{}: expected AppMismatch, got {other:?}", t.backend),
        }
        assert_eq!(
            t.app.store().app_id().unwrap().as_deref(),
            Some("test"),
            "{}",
            t.backend
        );
    }
}

/// A worker whose lease expires while its body still runs (it stalls) loses the invocation to
/// another worker, and its late commit is refused.
#[test]
fn a_stalled_worker_is_taken_over_and_its_late_commit_refused() {
    for t in apps(|b| b.lease_duration(Duration::from_millis(150))) {
        let store = t.app.store().clone();
        let app_a = App::builder()
            .app_id("test")
            .store(store.clone())
            .lease_duration(Duration::from_millis(150))
            .build()
            .unwrap();
        // The healthy worker's lease is long: only the stalled one's may expire, even when a
        // loaded machine stalls the healthy one between its claim and its commit.
        let app_b = App::builder()
            .app_id("test")
            .store(store)
            .lease_duration(RENEWED_LEASE)
            .build()
            .unwrap();
        let a_started = Gate::default();
        let b_done = Gate::default();
        let (s, d) = (a_started.clone(), b_done.clone());
        let task_a = app_a
            .task(
                "job",
                move |_: &TaskContext, (): ()| -> Result<String, TaskError> {
                    s.open();
                    d.wait(); // stalls until the other worker has finished the job
                    Ok("A".into())
                },
            )
            .unwrap();
        let d = b_done.clone();
        app_b
            .task(
                "job",
                move |_: &TaskContext, (): ()| -> Result<String, TaskError> {
                    d.open();
                    Ok("B".into())
                },
            )
            .unwrap();
        let stalled = app_a
            .worker()
            .threads(1)
            .renew_leases(false)
            .start()
            .unwrap();
        let inv = task_a.call(&app_a, ()).unwrap();
        a_started.wait();
        let healthy = app_b.worker().threads(1).start().unwrap();
        assert_eq!(inv.result_timeout(PATIENCE).unwrap(), "B", "{}", t.backend);
        let a = stalled.stop();
        assert_eq!(
            a.lease_lost, 1,
            "{}: the stale commit must be refused",
            t.backend
        );
        assert_eq!(a.succeeded, 0);
        assert_eq!(
            inv.result().unwrap(),
            "B",
            "the stale worker overwrote the result"
        );
        assert_eq!(inv.record().unwrap().state.attempts, 2);
        healthy.stop();
    }
}

#[test]
fn run_until_idle_runs_everything_inline_and_skips_backoff() {
    for t in apps(|b| b) {
        let app = &t.app;
        let runs = Arc::new(AtomicU32::new(0));
        let r = runs.clone();
        let slow_retry = app
            .task_with(
                TaskOptions::new("slow_retry")
                    .max_retries(2)
                    .retry_backoff(Backoff::exponential(Duration::from_secs(3600))),
                move |_: &TaskContext, (): ()| -> Result<u32, TaskError> {
                    if r.fetch_add(1, Ordering::SeqCst) < 2 {
                        Err(TaskError::new("not yet"))
                    } else {
                        Ok(1)
                    }
                },
            )
            .unwrap();
        let inv = slow_retry.call(app, ()).unwrap();
        let started = Instant::now();
        let executed = app.run_until_idle().unwrap();
        assert_eq!(executed, 3, "{}", t.backend);
        assert!(started.elapsed() < Duration::from_secs(3600));
        assert_eq!(inv.result().unwrap(), 1);
    }
}

#[test]
fn result_timeout_reports_a_missing_worker() {
    let app = App::builder().memory().build().unwrap();
    let t = app
        .task(
            "never_run",
            |_: &TaskContext, (): ()| -> Result<(), TaskError> { Ok(()) },
        )
        .unwrap();
    let inv = t.call(&app, ()).unwrap();
    let err = inv.result_timeout(Duration::from_millis(20)).unwrap_err();
    assert!(matches!(err, WfError::Timeout { .. }));
    assert!(err.to_string().contains("worker"), "{err}");
}
