//! Cancellation end to end, on every backend: a fan-out workflow tree (running, pending and
//! waiting members, a sub-workflow) cancelled from its root; a running body told at its next
//! operation runs compensating steps and ends cancelled, also when the request comes while it
//! replays (told past its journal, not at a replayed step); a request from another app instance
//! reaches a running body through its lease renewal; repeating it, or cancelling a finished
//! invocation, is harmless.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use common::{
    Gate, PATIENCE, RENEWED_LEASE, eventually, journal_kinds, steering_apps, until_waiting,
};
use wf::core::OpKind;
use wf::prelude::*;

fn cancelled_reason(r: Result<impl std::fmt::Debug, WfError>) -> String {
    match r {
        Err(WfError::Cancelled { reason, .. }) => reason,
        other => panic!("expected Cancelled, got {other:?}"),
    }
}

/// A root fans out to four slow children (two run on the two worker threads, blocked; two wait
/// in the queue) and a sub-workflow waiting for an event. Cancelling the root cancels the root,
/// the queued children and the sub-workflow at once and asks the two running children to stop:
/// the one that makes another workflow operation is told (`WfError::Cancelled`), the other just
/// returns; both end cancelled at their commit.
#[test]
fn cancelling_a_fan_out_tree() {
    // The tree's shape (the root waiting on its sub-workflow) needs the sub-workflow claimed by
    // a worker, not run inline by the root.
    // The leases are long: a running child whose lease expired on a loaded machine would be
    // recovered instead of stopping when told (nothing here waits for a lease to expire).
    for t in steering_apps(|b| b.lease_duration(RENEWED_LEASE).inline_children(false)) {
        let app = &t.app;
        let gate = Gate::default();
        let told = Arc::new(AtomicBool::new(false));
        let (g, tl) = (gate.clone(), told.clone());
        let slow = app
            .task(
                "slow",
                move |ctx: &TaskContext, n: u32| -> Result<u32, TaskError> {
                    g.wait();
                    if n == 0 {
                        // Its next operation tells it.
                        if let Err(WfError::Cancelled { .. }) = ctx.wf().get_data::<u32>("x") {
                            tl.store(true, Ordering::SeqCst);
                        }
                    }
                    Ok(n)
                },
            )
            .unwrap();
        let sub = app
            .task_with(
                TaskOptions::new("sub").force_new_workflow(true),
                |ctx: &TaskContext, (): ()| -> Result<(), TaskError> {
                    Ok(ctx.wf().wait_event::<()>("never")?)
                },
            )
            .unwrap();
        let root = app
            .task(
                "root",
                move |ctx: &TaskContext, (): ()| -> Result<u32, TaskError> {
                    let wf = ctx.wf();
                    let s = wf.start_task(&sub, ())?;
                    let kids = (0..4)
                        .map(|n| wf.start_task(&slow, n))
                        .collect::<Result<Vec<_>, _>>()?;
                    wf.join(&s)?;
                    Ok(wf.join_all(&kids)?.iter().sum())
                },
            )
            .unwrap();
        let worker = app.worker().threads(2).start().unwrap();
        let inv = root.call(app, ()).unwrap();
        let members = || app.store().workflow_invocations(inv.id()).unwrap();
        eventually("two children run, the sub-workflow waits", || {
            let records = app.store().invocations(&members()).unwrap();
            let running = records
                .iter()
                .filter(|r| r.status() == Status::Running)
                .count();
            let subs = app.store().workflows().unwrap();
            running == 2
                && subs
                    .iter()
                    .any(|r| r.spec.identity.is_subworkflow() && r.status() == Status::Waiting)
        });
        let report = inv.cancel().unwrap();
        assert_eq!(report.status_before, Status::Waiting, "{}", t.backend);
        assert_eq!(
            report.cancelled.len(),
            4,
            "root, two queued, the sub-workflow: {report}"
        );
        assert_eq!(report.cancelled[0], inv.id(), "the root first");
        assert_eq!(report.stopping.len(), 2, "{report}");
        assert_eq!(
            inv.status().unwrap(),
            Status::Cancelled,
            "at once: {}",
            t.backend
        );
        assert!(cancelled_reason(inv.result_timeout(PATIENCE)).contains("App::cancel"));

        gate.open();
        for id in report.stopping.iter().chain(&report.cancelled) {
            let stopped = Invocation::<u32>::attach(app, *id);
            cancelled_reason(stopped.result_timeout(PATIENCE));
        }
        assert!(
            told.load(Ordering::SeqCst),
            "{}: child 0 was told",
            t.backend
        );
        assert_eq!(app.store().counts().unwrap().get(Status::Cancelled), 6);
        let again = inv.cancel().unwrap();
        assert!(again.was_final() && !again.changed_anything(), "{again}");
        worker.stop();
    }
}

/// A running body told of its cancellation compensates: the operation that tells it returns
/// `WfError::Cancelled` (the charge never starts), the compensating child runs (once, although
/// the body replays after it), and the invocation ends cancelled. The cancellation is in the
/// journal, so the replay is told at the same point.
#[test]
fn a_cancelled_body_compensates() {
    for t in steering_apps(|b| b) {
        let app = &t.app;
        let (reserved, charged, released) = (
            Arc::new(AtomicU32::new(0)),
            Arc::new(AtomicU32::new(0)),
            Arc::new(AtomicU32::new(0)),
        );
        let counter = |c: &Arc<AtomicU32>| {
            let c = c.clone();
            move |_: &TaskContext, (): ()| -> Result<(), TaskError> {
                c.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        };
        let reserve = app.task("reserve", counter(&reserved)).unwrap();
        let charge = app.task("charge", counter(&charged)).unwrap();
        let release = app.task("release", counter(&released)).unwrap();
        let (inside, gate) = (Gate::default(), Gate::default());
        let (i, g) = (inside.clone(), gate.clone());
        let order = app
            .task(
                "order",
                move |ctx: &TaskContext, (): ()| -> Result<String, TaskError> {
                    let wf = ctx.wf();
                    assert!(!wf.is_cancelled(), "not told of a cancellation yet");
                    wf.execute_task(&reserve, ())?;
                    if !wf.is_replaying() {
                        i.open();
                        g.wait(); // the cancellation is requested meanwhile
                    }
                    match wf.execute_task(&charge, ()) {
                        Err(WfError::Cancelled { .. }) => {
                            assert!(wf.is_cancelled());
                            wf.execute_task(&release, ())?; // compensation: durable like any step
                            Ok("compensated".into())
                        }
                        other => Ok(format!("charged: {other:?}")),
                    }
                },
            )
            .unwrap();
        let worker = app.worker().threads(2).start().unwrap();
        let inv = order.call(app, ()).unwrap();
        inside.wait();
        let report = app.cancel_because(inv.id(), "the customer called").unwrap();
        assert_eq!(report.stopping, vec![inv.id()], "{}", t.backend);
        gate.open();
        assert_eq!(
            cancelled_reason(inv.result_timeout(PATIENCE)),
            "the customer called"
        );
        worker.stop();
        assert_eq!(
            [&reserved, &charged, &released].map(|c| c.load(Ordering::SeqCst)),
            [1, 0, 1],
            "{}",
            t.backend
        );
        assert_eq!(
            journal_kinds(app, inv.id()),
            [
                OpKind::ChildStart,
                OpKind::ChildResult,
                OpKind::Cancelled,
                OpKind::ChildStart,
                OpKind::ChildResult
            ]
        );
    }
}

/// A cancellation requested while a body replays its journal is told past the journal, not at
/// the replayed step: the first execution reserves and suspends for an event; the event wakes a
/// second execution, which is cancelled before it replays the reservation. The replay goes
/// through untold (no divergence), the wait for the event (the first operation past the
/// journal) tells the body, and its compensation runs. (Kills the mutants of the replay guard
/// of `Recorder::tell_cancellation`: told at the replayed step, the body would record its
/// cancellation over the journal, a divergence that stops it before it compensates; the store
/// still ends it cancelled, so only the compensation count and the journal tell.)
#[test]
fn a_cancellation_requested_during_a_replay_is_told_past_the_journal() {
    for t in steering_apps(|b| b) {
        let app = &t.app;
        let (reserved, charged, released) = (
            Arc::new(AtomicU32::new(0)),
            Arc::new(AtomicU32::new(0)),
            Arc::new(AtomicU32::new(0)),
        );
        let counter = |c: &Arc<AtomicU32>| {
            let c = c.clone();
            move |_: &TaskContext, (): ()| -> Result<(), TaskError> {
                c.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        };
        let reserve = app.task("reserve", counter(&reserved)).unwrap();
        let charge = app.task("charge", counter(&charged)).unwrap();
        let release = app.task("release", counter(&released)).unwrap();
        let (replaying, gate) = (Gate::default(), Gate::default());
        let (r, g) = (replaying.clone(), gate.clone());
        let order = app
            .task(
                "order",
                move |ctx: &TaskContext, (): ()| -> Result<String, TaskError> {
                    let wf = ctx.wf();
                    if wf.is_replaying() {
                        // The second execution: the cancellation is requested meanwhile.
                        r.open();
                        g.wait();
                    }
                    wf.execute_task(&reserve, ())?; // replayed by the second execution
                    assert!(!wf.is_cancelled(), "not told at a replayed step");
                    match wf.wait_event::<()>("confirmed") {
                        Err(WfError::Cancelled { .. }) => {
                            wf.execute_task(&release, ())?; // compensation
                            Ok("compensated".into())
                        }
                        Err(e) => Err(e.into()),
                        Ok(()) => {
                            wf.execute_task(&charge, ())?;
                            Ok("charged".into())
                        }
                    }
                },
            )
            .unwrap();
        let worker = app.worker().threads(2).start().unwrap();
        let inv = order.call(app, ()).unwrap();
        until_waiting(app, inv.id());
        app.send_event(inv.id(), "confirmed", &()).unwrap();
        replaying.wait();
        let report = app.cancel_because(inv.id(), "the customer called").unwrap();
        assert_eq!(report.stopping, vec![inv.id()], "{}", t.backend);
        gate.open();
        assert_eq!(
            cancelled_reason(inv.result_timeout(PATIENCE)),
            "the customer called",
            "{}",
            t.backend
        );
        worker.stop();
        assert_eq!(
            [&reserved, &charged, &released].map(|c| c.load(Ordering::SeqCst)),
            [1, 0, 1],
            "{}: reserved once (replayed, not run again), compensated",
            t.backend
        );
        assert_eq!(
            journal_kinds(app, inv.id()),
            [
                OpKind::ChildStart,
                OpKind::ChildResult,
                OpKind::Cancelled,
                OpKind::ChildStart,
                OpKind::ChildResult
            ],
            "{}",
            t.backend
        );
    }
}

/// A cancellation requested by another app instance on the same store (another process, with
/// a shared store) reaches the running body through its worker's lease renewal.
#[test]
fn a_cancel_from_elsewhere_reaches_a_running_body_through_its_lease() {
    // The lease thread passes the request on at its next renewal (a third of the lease); a
    // short lease that expired on a loaded machine would leave the body untold.
    for t in steering_apps(|b| b.lease_duration(RENEWED_LEASE)) {
        let app = &t.app;
        let inside = Gate::default();
        let i = inside.clone();
        let poll = app
            .task(
                "poll",
                move |ctx: &TaskContext, (): ()| -> Result<u32, TaskError> {
                    i.open();
                    let wf = ctx.wf();
                    // A long-running body that makes workflow operations now and then.
                    for round in 0.. {
                        match wf.get_data::<u32>("x") {
                            Err(WfError::Cancelled { .. }) => return Ok(round),
                            Err(e) => return Err(e.into()),
                            Ok(_) => std::thread::sleep(Duration::from_millis(10)),
                        }
                    }
                    Ok(0)
                },
            )
            .unwrap();
        let worker = app.worker().threads(1).start().unwrap();
        let inv = poll.call(app, ()).unwrap();
        inside.wait();
        let elsewhere = App::builder()
            .app_id(app.app_id())
            .store(app.store().clone())
            .build()
            .unwrap();
        let report = elsewhere.cancel(inv.id()).unwrap();
        assert_eq!(report.stopping, vec![inv.id()], "{}", t.backend);
        cancelled_reason(inv.result_timeout(PATIENCE));
        worker.stop();
    }
}

/// Cancelling a member (not the root) cancels its subtree; its waiting parent, outside the
/// tree, sees a failed child. Cancelling twice, or a finished invocation, changes nothing.
#[test]
fn cancelling_a_member_and_cancelling_again() {
    for t in steering_apps(|b| b) {
        let app = &t.app;
        let stuck = app
            .task(
                "stuck",
                |ctx: &TaskContext, (): ()| -> Result<(), TaskError> {
                    Ok(ctx.wf().wait_event::<()>("go")?)
                },
            )
            .unwrap();
        let parent = app
            .task(
                "parent",
                move |ctx: &TaskContext, (): ()| -> Result<String, TaskError> {
                    match ctx.wf().execute_task(&stuck, ()) {
                        Err(WfError::ChildFailed { failure, .. }) => Ok(failure.kind.to_string()),
                        other => Ok(format!("{other:?}")),
                    }
                },
            )
            .unwrap();
        let inv = parent.call(app, ()).unwrap();
        app.run_until_idle().unwrap();
        let child = app.store().workflow_invocations(inv.id()).unwrap()[1];
        until_waiting(app, child);
        let report = app.cancel(child).unwrap();
        assert_eq!(report.cancelled, vec![child], "{}", t.backend);
        let again = app.cancel(child).unwrap();
        assert!(again.was_final(), "{again}");
        app.run_until_idle().unwrap();
        assert_eq!(inv.result().unwrap(), "cancelled", "{}", t.backend);
        let done = app.cancel(inv.id()).unwrap();
        assert_eq!(done.status_before, Status::Success);
        assert!(done.to_string().contains("already final"), "{done}");
        assert_eq!(inv.status().unwrap(), Status::Success);
    }
}

/// A child the body started in the same execution in which it is told of its cancellation was
/// not in the store when the tree was cancelled: it is submitted with the commit (the journal
/// holds it) and cancelled right after, before it runs.
#[test]
fn a_child_started_just_before_the_body_is_told_is_cancelled_too() {
    for t in steering_apps(|b| b) {
        let app = &t.app;
        let ran = Arc::new(AtomicU32::new(0));
        let r = ran.clone();
        let work = app
            .task(
                "work",
                move |_: &TaskContext, (): ()| -> Result<(), TaskError> {
                    r.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                },
            )
            .unwrap();
        let (inside, gate) = (Gate::default(), Gate::default());
        let (i, g) = (inside.clone(), gate.clone());
        let flow = app
            .task(
                "flow",
                move |ctx: &TaskContext, (): ()| -> Result<(), TaskError> {
                    let wf = ctx.wf();
                    let first = wf.start_task(&work, ())?;
                    i.open();
                    g.wait(); // cancelled meanwhile
                    let second = wf.start_task(&work, ())?; // told here
                    wf.join_all([first, second])?;
                    Ok(())
                },
            )
            .unwrap();
        let worker = app.worker().threads(1).start().unwrap();
        let inv = flow.call(app, ()).unwrap();
        inside.wait();
        assert_eq!(inv.cancel().unwrap().stopping, vec![inv.id()]);
        gate.open();
        cancelled_reason(inv.result_timeout(PATIENCE));
        let members = app.store().workflow_invocations(inv.id()).unwrap();
        assert_eq!(
            members.len(),
            2,
            "{}: the root and the first child",
            t.backend
        );
        let first = Invocation::<()>::attach(app, members[1]);
        cancelled_reason(first.result_timeout(PATIENCE));
        worker.stop();
        assert_eq!(ran.load(Ordering::SeqCst), 0, "{}: it never ran", t.backend);
    }
}
