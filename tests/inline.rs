//! Children run inline: `execute_task` of a task the app registers checkpoints the caller and runs
//! the child on the caller's thread (see `wf_runtime`'s `inline` module). These tests pin that a
//! chain of children costs one execution of the caller, and that every case that cannot finish
//! inline falls back to the ordinary suspension with the same results: a child that retries or
//! suspends, nesting past the depth limit, a sub-workflow, a lost lease, a stop. Crashes between
//! the steps are in `tests/crash.rs`. On memory and file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{Gate, PATIENCE, RENEWED_LEASE, apps, journal_kinds, until_renewed};
use wf::core::OpKind;
use wf::prelude::*;

/// [`apps`] for the cases that pin what runs inline: every backend supports checkpoints
/// (memory, file, Redis).
fn inline_apps(configure: impl Fn(wf::AppBuilder) -> wf::AppBuilder) -> Vec<common::TestApp> {
    apps(configure)
}

fn counter() -> (Arc<AtomicU32>, Arc<AtomicU32>) {
    let c = Arc::new(AtomicU32::new(0));
    (c.clone(), c)
}

/// A workflow of 50 sequential children runs in one execution of its body; each child once; the
/// journal records each child's start and result, and every child is final in the store.
#[test]
fn a_chain_of_children_runs_in_one_execution_of_the_caller() {
    for t in inline_apps(|b| b) {
        let app = &t.app;
        let (child_runs, c) = counter();
        let step = app
            .task(
                "step",
                move |_: &TaskContext, n: u32| -> Result<u32, TaskError> {
                    c.fetch_add(1, Ordering::SeqCst);
                    Ok(n * 2)
                },
            )
            .unwrap();
        let (flow_runs, f) = counter();
        let flow = app
            .task(
                "flow",
                move |ctx: &TaskContext, n: u32| -> Result<u32, TaskError> {
                    f.fetch_add(1, Ordering::SeqCst);
                    let wf = ctx.wf();
                    let mut sum = 0;
                    for i in 0..n {
                        wf.random();
                        sum += wf.execute_task(&step, i)?;
                    }
                    Ok(sum)
                },
            )
            .unwrap();
        let worker = app.worker().threads(2).start().unwrap();
        let inv = flow.call(app, 50).unwrap();
        assert_eq!(
            inv.result_timeout(PATIENCE).unwrap(),
            2 * (0..50).sum::<u32>()
        );
        let stats = worker.stop();
        assert_eq!(
            flow_runs.load(Ordering::SeqCst),
            1,
            "{}: one execution",
            t.backend
        );
        assert_eq!(child_runs.load(Ordering::SeqCst), 50, "{}", t.backend);
        assert_eq!(
            stats.executed, 51,
            "{}: inline children count as executions",
            t.backend
        );
        assert_eq!(stats.suspended, 0, "{}", t.backend);
        let kinds = journal_kinds(app, inv.id());
        assert_eq!(kinds.len(), 150, "{}", t.backend);
        assert_eq!(
            kinds[..3],
            [OpKind::Random, OpKind::ChildStart, OpKind::ChildResult],
            "{}",
            t.backend
        );
        let members = app.store().workflow_invocations(inv.id()).unwrap();
        assert_eq!(members.len(), 51, "{}", t.backend);
        for m in app.store().invocations(&members).unwrap() {
            assert_eq!(m.status(), Status::Success, "{}", t.backend);
            assert_eq!(m.state.attempts, 1, "{}", t.backend);
        }
    }
}

/// A child that fails and retries does not end final inline: its caller suspends on it, and is
/// replayed into its result once its retry succeeds.
#[test]
fn a_child_that_retries_falls_back_to_a_suspension() {
    for t in inline_apps(|b| b) {
        let app = &t.app;
        let (child_runs, c) = counter();
        let flaky = app
            .task_with(
                TaskOptions::new("flaky")
                    .max_retries(2)
                    .retry_backoff(Backoff::none()),
                move |_: &TaskContext, (): ()| -> Result<u32, TaskError> {
                    match c.fetch_add(1, Ordering::SeqCst) {
                        0 => Err(TaskError::new("first attempt fails")),
                        _ => Ok(7),
                    }
                },
            )
            .unwrap();
        let (flow_runs, f) = counter();
        let flow = app
            .task(
                "flow",
                move |ctx: &TaskContext, (): ()| -> Result<u32, TaskError> {
                    f.fetch_add(1, Ordering::SeqCst);
                    Ok(ctx.wf().execute_task(&flaky, ())? + 1)
                },
            )
            .unwrap();
        let inv = flow.call(app, ()).unwrap();
        app.run_until_idle().unwrap();
        assert_eq!(inv.result_timeout(PATIENCE).unwrap(), 8, "{}", t.backend);
        assert_eq!(child_runs.load(Ordering::SeqCst), 2, "{}", t.backend);
        assert_eq!(
            flow_runs.load(Ordering::SeqCst),
            2,
            "{}: suspended once on the retrying child, then replayed",
            t.backend
        );
    }
}

/// A child that suspends on children of its own (a fan-out) does not end final inline either:
/// the caller suspends on it, and the whole tree completes.
#[test]
fn a_child_that_suspends_falls_back_to_a_suspension() {
    for t in inline_apps(|b| b) {
        let app = &t.app;
        let leaf = app
            .task(
                "leaf",
                |_: &TaskContext, n: u32| -> Result<u32, TaskError> { Ok(n) },
            )
            .unwrap();
        let fan = app
            .task(
                "fan",
                move |ctx: &TaskContext, n: u32| -> Result<u32, TaskError> {
                    let wf = ctx.wf();
                    let handles = (0..n)
                        .map(|i| wf.start_task(&leaf, i))
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok(wf.join_all(&handles)?.into_iter().sum())
                },
            )
            .unwrap();
        let (flow_runs, f) = counter();
        let flow = app
            .task(
                "flow",
                move |ctx: &TaskContext, (): ()| -> Result<u32, TaskError> {
                    f.fetch_add(1, Ordering::SeqCst);
                    let wf = ctx.wf();
                    Ok(wf.execute_task(&fan, 4)? + wf.execute_task(&fan, 3)?)
                },
            )
            .unwrap();
        // One thread: the leaves cannot finish before the caller looks at the fan (with more
        // threads they may, and the caller then records the fan's result without suspending).
        let inv = flow.call(app, ()).unwrap();
        app.run_until_idle().unwrap();
        assert_eq!(
            inv.result_timeout(PATIENCE).unwrap(),
            6 + 3,
            "{}",
            t.backend
        );
        assert_eq!(
            flow_runs.load(Ordering::SeqCst),
            3,
            "{}: one suspension per fan",
            t.backend
        );
    }
}

/// A recursive workflow deeper than the inline limit: children run inline up to the limit, the
/// next one is submitted and run by a worker as usual, and the result is the same.
#[test]
fn nesting_past_the_depth_limit_falls_back_to_a_suspension() {
    for t in inline_apps(|b| b) {
        let app = &t.app;
        let slot: Arc<std::sync::OnceLock<Task<u32, u32>>> = Arc::default();
        let me = slot.clone();
        let down = app
            .task(
                "down",
                move |ctx: &TaskContext, n: u32| -> Result<u32, TaskError> {
                    if n == 0 {
                        return Ok(0);
                    }
                    let this = me.get().expect("registered");
                    Ok(1 + ctx.wf().execute_task(this, n - 1)?)
                },
            )
            .unwrap();
        slot.set(down.clone()).unwrap();
        let worker = app.worker().threads(1).start().unwrap();
        let inv = down.call(app, 30).unwrap();
        assert_eq!(inv.result_timeout(PATIENCE).unwrap(), 30, "{}", t.backend);
        let stats = worker.stop();
        assert!(
            stats.suspended >= 2,
            "{}: levels past the depth limit suspend: {stats:?}",
            t.backend
        );
        assert!(
            stats.suspended < 30,
            "{}: levels within the limit run inline: {stats:?}",
            t.backend
        );
    }
}

/// A child that forces a new workflow runs inline too, as the root of its own sub-workflow: it
/// writes its workflow's data, not its caller's, and the caller reads only its own.
#[test]
fn a_subworkflow_runs_inline_in_its_own_workflow() {
    for t in inline_apps(|b| b) {
        let app = &t.app;
        let sub = app
            .task_with(
                TaskOptions::new("sub").force_new_workflow(true),
                |ctx: &TaskContext, (): ()| -> Result<String, TaskError> {
                    let wf = ctx.wf();
                    wf.set_data("who", "sub")?;
                    let seen: Option<String> = wf.get_data("who")?;
                    Ok(format!(
                        "{} in {}",
                        seen.unwrap_or_default(),
                        wf.identity().workflow_id
                    ))
                },
            )
            .unwrap();
        let (flow_runs, f) = counter();
        let flow = app
            .task(
                "flow",
                move |ctx: &TaskContext, (): ()| -> Result<(String, Option<String>), TaskError> {
                    f.fetch_add(1, Ordering::SeqCst);
                    let wf = ctx.wf();
                    wf.set_data("who", "flow")?;
                    let from_sub = wf.execute_task(&sub, ())?;
                    Ok((from_sub, wf.get_data("who")?))
                },
            )
            .unwrap();
        let inv = flow.call(app, ()).unwrap();
        app.run_until_idle().unwrap();
        let (from_sub, mine) = inv.result_timeout(PATIENCE).unwrap();
        assert_eq!(
            flow_runs.load(Ordering::SeqCst),
            1,
            "{}: ran inline",
            t.backend
        );
        assert_eq!(mine.as_deref(), Some("flow"), "{}", t.backend);
        let workflows = app.store().workflows().unwrap();
        assert_eq!(workflows.len(), 2, "{}", t.backend);
        let sub_wf = workflows.iter().find(|w| w.id() != inv.id()).unwrap();
        assert_eq!(from_sub, format!("sub in {}", sub_wf.id()), "{}", t.backend);
        assert_eq!(
            sub_wf.spec.identity.parent_workflow_id,
            Some(inv.id()),
            "{}",
            t.backend
        );
        let data: Option<String> = app
            .store()
            .get_data(inv.id(), "who")
            .unwrap()
            .map(|b| wf::core::decode(&b).unwrap());
        assert_eq!(
            data.as_deref(),
            Some("flow"),
            "{}: the caller's data",
            t.backend
        );
    }
}

/// A child running inline for longer than the lease keeps both leases alive (the pool's lease
/// thread renews the caller's and the child's): nothing is taken over, nothing runs twice. The
/// child runs until it has seen both leases renewed (not for a guessed span of time): if
/// either is left out of the renewals, it waits in vain and fails.
#[test]
fn a_long_inline_child_keeps_both_leases() {
    for t in inline_apps(|b| b.lease_duration(RENEWED_LEASE)) {
        let app = &t.app;
        let (child_runs, c) = counter();
        let slow = app
            .task(
                "slow",
                move |ctx: &TaskContext, (): ()| -> Result<u32, TaskError> {
                    c.fetch_add(1, Ordering::SeqCst);
                    // The workload: a step that outlasts renewals of its lease and its caller's.
                    let caller = ctx.parent().expect("called by the flow");
                    until_renewed(ctx.app(), &[caller, ctx.invocation_id()], 1);
                    Ok(1)
                },
            )
            .unwrap();
        let (flow_runs, f) = counter();
        let flow = app
            .task(
                "flow",
                move |ctx: &TaskContext, (): ()| -> Result<u32, TaskError> {
                    f.fetch_add(1, Ordering::SeqCst);
                    Ok(ctx.wf().execute_task(&slow, ())? + 1)
                },
            )
            .unwrap();
        let worker = app.worker().threads(2).start().unwrap();
        let inv = flow.call(app, ()).unwrap();
        assert_eq!(inv.result_timeout(PATIENCE).unwrap(), 2, "{}", t.backend);
        let stats = worker.stop();
        assert_eq!(
            (
                flow_runs.load(Ordering::SeqCst),
                child_runs.load(Ordering::SeqCst)
            ),
            (1, 1),
            "{}",
            t.backend
        );
        assert_eq!(stats.lease_lost, 0, "{}: {stats:?}", t.backend);
    }
}

/// A worker that stalls while a child runs inline (its leases are not renewed) loses the caller
/// and the child to another worker; its late commits of both are refused, and the other
/// worker's results are the ones kept.
#[test]
fn a_stalled_inline_chain_is_taken_over_and_its_late_commits_refused() {
    for t in inline_apps(|b| b) {
        let store = t.app.store().clone();
        // The stalled worker's lease expires (2 s: long enough for it to claim the caller and
        // checkpoint the child on a loaded machine; 150 ms expired before the checkpoint under
        // load, and the stalled worker ran the caller again), the healthy one's must not.
        let app_of = |lease| {
            App::builder()
                .app_id("test")
                .store(store.clone())
                .lease_duration(lease)
                .build()
                .unwrap()
        };
        let (app_a, app_b) = (app_of(Duration::from_secs(2)), app_of(RENEWED_LEASE));
        let a_started = Gate::default();
        let b_done = Gate::default();
        let register = |app: &App, stall: bool| {
            let (s, d) = (a_started.clone(), b_done.clone());
            let step = app
                .task(
                    "step",
                    move |_: &TaskContext, (): ()| -> Result<String, TaskError> {
                        if stall {
                            s.open();
                            d.wait(); // stalls until the other worker has finished the workflow
                            return Ok("A".into());
                        }
                        Ok("B".into())
                    },
                )
                .unwrap();
            app.task(
                "flow",
                move |ctx: &TaskContext, (): ()| -> Result<String, TaskError> {
                    Ok(ctx.wf().execute_task(&step, ())?)
                },
            )
            .unwrap()
        };
        let flow = register(&app_a, true);
        register(&app_b, false);
        let stalled = app_a
            .worker()
            .threads(1)
            .renew_leases(false)
            .start()
            .unwrap();
        let inv = flow.call(&app_a, ()).unwrap();
        a_started.wait();
        let healthy = app_b.worker().threads(1).start().unwrap();
        assert_eq!(inv.result_timeout(PATIENCE).unwrap(), "B", "{}", t.backend);
        healthy.stop();
        b_done.open();
        let stats = stalled.stop();
        assert_eq!(
            stats.lease_lost, 2,
            "{}: the stalled child's and caller's commits are refused: {stats:?}",
            t.backend
        );
        let members = t.app.store().workflow_invocations(inv.id()).unwrap();
        let child = t.app.store().invocation(members[1]).unwrap();
        assert_eq!(
            wf::core::decode::<String>(child.state.result.as_ref().unwrap()).unwrap(),
            "B",
            "{}",
            t.backend
        );
    }
}

/// A stop asked for while a chain runs inline ends it at the next child: the caller suspends on
/// that child (submitted, not run) and commits, so the stop does not wait for the whole chain;
/// a later worker finishes it.
#[test]
fn a_stop_ends_an_inline_chain_at_the_next_child() {
    for t in inline_apps(|b| b) {
        let app = &t.app;
        let started = Gate::default();
        let release = Gate::default();
        let (s, r) = (started.clone(), release.clone());
        let step = app
            .task(
                "step",
                move |_: &TaskContext, n: u32| -> Result<u32, TaskError> {
                    if n == 0 {
                        s.open();
                        r.wait();
                    }
                    Ok(n)
                },
            )
            .unwrap();
        let flow = app
            .task(
                "flow",
                move |ctx: &TaskContext, (): ()| -> Result<u32, TaskError> {
                    let wf = ctx.wf();
                    let mut sum = 0;
                    for n in 0..5 {
                        sum += wf.execute_task(&step, n)?;
                    }
                    Ok(sum)
                },
            )
            .unwrap();
        let worker = app.worker().threads(1).start().unwrap();
        let inv = flow.call(app, ()).unwrap();
        started.wait();
        worker.request_stop();
        release.open();
        worker.stop();
        let record = app.store().invocation(inv.id()).unwrap();
        assert_eq!(record.status(), Status::Waiting, "{}", t.backend);
        assert_eq!(
            app.store().workflow_invocations(inv.id()).unwrap().len(),
            3,
            "{}: the first child ran inline, the second is submitted, no more",
            t.backend
        );
        let worker = app.worker().threads(1).start().unwrap();
        assert_eq!(inv.result_timeout(PATIENCE).unwrap(), 10, "{}", t.backend);
        worker.stop();
    }
}

/// With `inline_children(false)`, every child is claimed by a worker and its caller replays once
/// per child, as before inline children existed.
#[test]
fn inline_children_can_be_turned_off() {
    for t in apps(|b| b.inline_children(false)) {
        let app = &t.app;
        let step = app
            .task(
                "step",
                |_: &TaskContext, n: u32| -> Result<u32, TaskError> { Ok(n) },
            )
            .unwrap();
        let (flow_runs, f) = counter();
        let flow = app
            .task(
                "flow",
                move |ctx: &TaskContext, (): ()| -> Result<u32, TaskError> {
                    f.fetch_add(1, Ordering::SeqCst);
                    let wf = ctx.wf();
                    Ok(wf.execute_task(&step, 1)? + wf.execute_task(&step, 2)?)
                },
            )
            .unwrap();
        let inv = flow.call(app, ()).unwrap();
        assert_eq!(app.run_until_idle().unwrap(), 5, "{}", t.backend);
        assert_eq!(inv.result().unwrap(), 3, "{}", t.backend);
        assert_eq!(flow_runs.load(Ordering::SeqCst), 3, "{}", t.backend);
    }
}
