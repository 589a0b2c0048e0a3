//! End-to-end tests of the workflow context (`ctx.wf()`): durable replay, access rules,
//! non-determinism detection, fan-out without holding workers, and nested workflows.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Gate, PATIENCE, apps};
use wf::prelude::*;
use wf::{FailureKind, InvocationId, Status, WorkflowIdentity, uuid};

type Draw = (u64, uuid::Uuid, i128);

/// Scenario 1: A workflow draws random/uuid/utc_now, sets data and executes 3 children; it is forced to
/// retry after its second child. Every re-run sees the same values, children 1 and 2 ran once,
/// child 3 once, and the result is what the first run's values and the children give.
#[test]
fn a_retried_workflow_replays_values_and_does_not_rerun_children() {
    for t in apps(|b| b) {
        let app = &t.app;
        let child_runs: Arc<[AtomicU32; 3]> = Arc::new(Default::default());
        let runs = child_runs.clone();
        let step = app
            .task(
                "step",
                move |_: &TaskContext, i: usize| -> Result<String, TaskError> {
                    runs[i].fetch_add(1, Ordering::SeqCst);
                    Ok(format!("step{i}"))
                },
            )
            .unwrap();
        let draws: Arc<Mutex<Vec<Draw>>> = Arc::default();
        let failed_once = Arc::new(AtomicBool::new(false));
        let (d, f) = (draws.clone(), failed_once.clone());
        let flow = app
            .task_with(
                TaskOptions::new("flow")
                    .max_retries(1)
                    .retry_backoff(Backoff::none()),
                move |ctx: &TaskContext, (): ()| -> Result<String, TaskError> {
                    let wf = ctx.wf();
                    let draw = (
                        wf.random().to_bits(),
                        wf.uuid(),
                        wf.utc_now().unix_timestamp_nanos(),
                    );
                    d.lock().unwrap().push(draw);
                    wf.set_data("draw", &draw)?;
                    let a = wf.execute_task(&step, 0)?;
                    let b = wf.execute_task(&step, 1)?;
                    if !f.swap(true, Ordering::SeqCst) {
                        return Err(TaskError::new("injected failure after the second child"));
                    }
                    let c = wf.execute_task(&step, 2)?;
                    Ok(format!("{}|{}|{}|{a}|{b}|{c}", draw.0, draw.1, draw.2))
                },
            )
            .unwrap();
        let worker = app.worker().threads(2).start().unwrap();
        let inv = flow.call(app, ()).unwrap();
        let result = inv.result_timeout(PATIENCE).unwrap();
        worker.stop();

        let draws = draws.lock().unwrap();
        assert!(
            draws.len() >= 2,
            "{}: expected several executions, saw {}",
            t.backend,
            draws.len()
        );
        assert!(
            draws.iter().all(|d| *d == draws[0]),
            "{}: re-runs drew different values: {draws:?}",
            t.backend
        );
        let counts: Vec<u32> = child_runs
            .iter()
            .map(|c| c.load(Ordering::SeqCst))
            .collect();
        assert_eq!(counts, vec![1, 1, 1], "{}: children re-ran", t.backend);
        let d = draws[0];
        assert_eq!(result, format!("{}|{}|{}|step0|step1|step2", d.0, d.1, d.2));
        let record = inv.record().unwrap();
        assert_eq!(record.state.retries, 1);
        let stored: Draw =
            wf::core::decode(&app.store().get_data(inv.id(), "draw").unwrap().unwrap()).unwrap();
        assert_eq!(stored, d);
    }
}

/// Scenario 2: A child calling set_data gets WorkflowAccessError; its write is absent; reading works.
#[test]
fn only_the_root_writes_workflow_data() {
    for t in apps(|b| b) {
        let app = &t.app;
        let child = app
            .task(
                "child",
                |ctx: &TaskContext, (): ()| -> Result<(String, String), TaskError> {
                    let wf = ctx.wf();
                    let refused = match wf.set_data("from_child", &1u8) {
                        Err(WfError::Access(e)) => {
                            assert_eq!(e.invocation, ctx.invocation_id());
                            assert_eq!(e.workflow, wf.identity().workflow_id);
                            assert_eq!(e.owner, wf.identity().workflow_id);
                            e.to_string()
                        }
                        other => panic!("child write was not refused: {other:?}"),
                    };
                    let read: String = wf.get_data("from_root")?.expect("root's value is readable");
                    Ok((refused, read))
                },
            )
            .unwrap();
        let root = app
            .task(
                "root",
                move |ctx: &TaskContext, (): ()| -> Result<(String, String), TaskError> {
                    ctx.wf().set_data("from_root", "hello")?;
                    Ok(ctx.wf().execute_task(&child, ())?)
                },
            )
            .unwrap();
        let inv = root.call(app, ()).unwrap();
        app.run_until_idle().unwrap();
        let (refusal, read) = inv.result().unwrap();
        assert!(
            refusal.contains("only its root invocation"),
            "{}: {refusal}",
            t.backend
        );
        assert_eq!(read, "hello");
        assert_eq!(
            app.store().data_keys(inv.id()).unwrap(),
            vec!["from_root".to_string()],
            "{}",
            t.backend
        );
    }
}

/// Scenario 3: A parent and a child drawing uuid() get different values.
#[test]
fn parent_and_child_draw_different_uuids() {
    for t in apps(|b| b) {
        let app = &t.app;
        let child = app
            .task(
                "child_uuid",
                |ctx: &TaskContext, (): ()| -> Result<uuid::Uuid, TaskError> {
                    Ok(ctx.wf().uuid())
                },
            )
            .unwrap();
        let parent = app
            .task(
                "parent_uuid",
                move |ctx: &TaskContext, (): ()| -> Result<(uuid::Uuid, uuid::Uuid), TaskError> {
                    let mine = ctx.wf().uuid();
                    Ok((mine, ctx.wf().execute_task(&child, ())?))
                },
            )
            .unwrap();
        let inv = parent.call(app, ()).unwrap();
        app.run_until_idle().unwrap();
        let (p, c) = inv.result().unwrap();
        assert_ne!(p, c, "{}", t.backend);
    }
}

/// Scenario 4: Two workflows in one worker process never share deterministic state, and a retry in the
/// same process draws the same values again.
#[test]
fn workflows_in_one_process_never_share_deterministic_state() {
    for t in apps(|b| b) {
        let app = &t.app;
        type Seen = Arc<Mutex<Vec<(InvocationId, Vec<u64>)>>>;
        let seen: Seen = Arc::default();
        let s = seen.clone();
        let draw = app
            .task_with(
                TaskOptions::new("draw")
                    .max_retries(1)
                    .retry_backoff(Backoff::none()),
                move |ctx: &TaskContext, (): ()| -> Result<Vec<u64>, TaskError> {
                    let values: Vec<u64> = (0..5)
                        .map(|_| ctx.wf().random().to_bits())
                        .chain((0..5).map(|_| ctx.wf().uuid().as_u64_pair().0))
                        .collect();
                    s.lock()
                        .unwrap()
                        .push((ctx.invocation_id(), values.clone()));
                    if ctx.attempt() == 1 {
                        return Err(TaskError::new("retry me"));
                    }
                    Ok(values)
                },
            )
            .unwrap();
        let worker = app.worker().threads(2).start().unwrap();
        let a = draw.call(app, ()).unwrap();
        let b = draw.call(app, ()).unwrap();
        let (va, vb) = (
            a.result_timeout(PATIENCE).unwrap(),
            b.result_timeout(PATIENCE).unwrap(),
        );
        worker.stop();
        let sa: HashSet<u64> = va.iter().copied().collect();
        assert!(
            vb.iter().all(|v| !sa.contains(v)),
            "{}: workflows shared values",
            t.backend
        );
        for (id, values) in seen.lock().unwrap().iter() {
            let expect = if *id == a.id() { &va } else { &vb };
            assert_eq!(values, expect, "{}: a retry drew new values", t.backend);
        }
    }
}

/// Scenario 5: Changing the body between runs is reported as non-determinism at the right position.
#[test]
fn changed_workflow_code_is_reported_at_the_diverging_position() {
    // (version change applied while the workflow is suspended, expected position)
    for (change, position) in [("swap random and uuid", 0u32), ("swap the child", 2)] {
        // The new code must meet a suspended workflow: no inline children.
        for t in apps(|b| b.inline_children(false)) {
            let app = &t.app;
            let version = Arc::new(AtomicU8::new(1));
            let child_started = Gate::default();
            let child_release = Gate::default();
            let (started, release) = (child_started.clone(), child_release.clone());
            let a = app
                .task(
                    "a",
                    move |_: &TaskContext, (): ()| -> Result<u8, TaskError> {
                        started.open();
                        release.wait();
                        Ok(1)
                    },
                )
                .unwrap();
            let b = app
                .task("b", |_: &TaskContext, (): ()| -> Result<u8, TaskError> {
                    Ok(2)
                })
                .unwrap();
            let v = version.clone();
            let swap_child = change == "swap the child";
            let flow = app
                .task(
                    "evolving",
                    move |ctx: &TaskContext, (): ()| -> Result<u8, TaskError> {
                        let wf = ctx.wf();
                        if v.load(Ordering::SeqCst) == 1 || swap_child {
                            wf.random();
                            wf.uuid();
                        } else {
                            wf.uuid();
                            wf.random();
                        }
                        let child = if v.load(Ordering::SeqCst) == 2 && swap_child {
                            &b
                        } else {
                            &a
                        };
                        Ok(wf.execute_task(child, ())?)
                    },
                )
                .unwrap();
            let worker = app.worker().threads(2).start().unwrap();
            let inv = flow.call(app, ()).unwrap();
            child_started.wait(); // the workflow has committed its suspension on child `a`
            version.store(2, Ordering::SeqCst); // "deploy" the new code
            child_release.open();
            let err = inv.result_timeout(PATIENCE).unwrap_err();
            worker.stop();
            match err {
                WfError::NonDeterminism(nd) => {
                    assert_eq!(nd.position, position, "{}: {change}: {nd}", t.backend);
                    assert_eq!(nd.invocation, inv.id(), "{}: {change}", t.backend);
                    assert!(
                        nd.to_string().contains(&format!("position {position}")),
                        "{}: {change}: {nd}",
                        t.backend
                    );
                    let record = app.store().invocation(inv.id()).unwrap();
                    let stored = record.state.error.unwrap();
                    assert_eq!(stored.kind, FailureKind::NonDeterminism, "{}", t.backend);
                    assert_eq!(stored.non_determinism, Some(Box::new(nd)), "{}", t.backend);
                }
                other => panic!("{}: {change}: {other:?}", t.backend),
            }
        }
    }
}

/// Scenario 6: Fan-out: 20 children on 4 threads; and a pool of one thread still completes a parent with
/// many children, so a waiting parent holds no worker. The parent replays once per join.
#[test]
fn fan_out_does_not_hold_a_worker_while_waiting() {
    for threads in [4, 1] {
        for t in apps(|b| b) {
            let app = &t.app;
            let square = app
                .task(
                    "square",
                    |_: &TaskContext, n: u64| -> Result<u64, TaskError> { Ok(n * n) },
                )
                .unwrap();
            let parent_runs = Arc::new(AtomicU32::new(0));
            let runs = parent_runs.clone();
            let fan = app
                .task(
                    "fan",
                    move |ctx: &TaskContext, n: u64| -> Result<u64, TaskError> {
                        runs.fetch_add(1, Ordering::SeqCst);
                        let wf = ctx.wf();
                        let handles = (0..n)
                            .map(|i| wf.start_task(&square, i))
                            .collect::<Result<Vec<_>, _>>()?;
                        Ok(wf.join_all(&handles)?.into_iter().sum())
                    },
                )
                .unwrap();
            let worker = app.worker().threads(threads).start().unwrap();
            let inv = fan.call(app, 20).unwrap();
            assert_eq!(
                inv.result_timeout(PATIENCE).unwrap(),
                (0..20u64).map(|i| i * i).sum::<u64>(),
                "{} on {threads}",
                t.backend
            );
            worker.stop();
            assert_eq!(
                parent_runs.load(Ordering::SeqCst),
                2,
                "{}: start all, then collect all",
                t.backend
            );
            let members = app.store().workflow_invocations(inv.id()).unwrap();
            assert_eq!(members.len(), 21);
        }
    }
}

/// Scenario 7: Deep nesting: a workflow whose child is a sub-workflow with its own children; each level's
/// identity and data are right.
#[test]
fn nested_sub_workflows_have_their_own_identity_and_data() {
    for t in apps(|b| b) {
        let app = &t.app;
        type Seen = (WorkflowIdentity, Option<String>);
        let leaf = app
            .task(
                "leaf",
                |ctx: &TaskContext, (): ()| -> Result<Seen, TaskError> {
                    Ok((ctx.wf().identity().clone(), ctx.wf().get_data("level")?))
                },
            )
            .unwrap();
        let l = leaf.clone();
        let sub = app
            .task_with(
                TaskOptions::new("sub").force_new_workflow(true),
                move |ctx: &TaskContext, (): ()| -> Result<(Seen, Seen), TaskError> {
                    let wf = ctx.wf();
                    let outer: Option<String> = wf.get_data("level")?;
                    assert_eq!(outer, None, "a sub-workflow does not see its parent's data");
                    wf.set_data("level", "sub")?; // the sub-workflow's root owns its own data
                    let mine = (wf.identity().clone(), wf.get_data("level")?);
                    Ok((mine, wf.execute_task(&l, ())?))
                },
            )
            .unwrap();
        let middle = app
            .task(
                "middle",
                move |ctx: &TaskContext, (): ()| -> Result<(Seen, (Seen, Seen)), TaskError> {
                    let wf = ctx.wf();
                    Ok((
                        (wf.identity().clone(), wf.get_data("level")?),
                        wf.execute_task(&sub, ())?,
                    ))
                },
            )
            .unwrap();
        let top = app
            .task(
                "top",
                move |ctx: &TaskContext, (): ()| -> Result<(Seen, (Seen, Seen)), TaskError> {
                    ctx.wf().set_data("level", "top")?;
                    Ok(ctx.wf().execute_task(&middle, ())?)
                },
            )
            .unwrap();
        let inv = top.call(app, ()).unwrap();
        app.run_until_idle().unwrap();
        let (middle_seen, (sub_seen, leaf_seen)) = inv.result().unwrap();

        let top_id = WorkflowIdentity::new_workflow(inv.id(), "top".into());
        assert_eq!(
            middle_seen,
            (top_id.clone(), Some("top".into())),
            "{}",
            t.backend
        );
        let sub_identity = sub_seen.0.clone();
        assert!(sub_identity.is_subworkflow());
        assert_eq!(sub_identity.parent_workflow_id, Some(inv.id()));
        assert_eq!(sub_identity.workflow_type.as_str(), "sub");
        assert_eq!(sub_seen.1.as_deref(), Some("sub"));
        assert_eq!(
            leaf_seen,
            (sub_identity.clone(), Some("sub".into())),
            "{}: leaf joins the sub-workflow",
            t.backend
        );

        let store = app.store();
        assert_eq!(
            store.workflow_invocations(inv.id()).unwrap().len(),
            2,
            "top + middle"
        );
        assert_eq!(
            store
                .workflow_invocations(sub_identity.workflow_id)
                .unwrap()
                .len(),
            2,
            "sub + leaf"
        );
        let top_level: String =
            wf::core::decode(&store.get_data(inv.id(), "level").unwrap().unwrap()).unwrap();
        assert_eq!(top_level, "top");
        for id in store
            .workflow_invocations(sub_identity.workflow_id)
            .unwrap()
        {
            assert_eq!(store.invocation(id).unwrap().status(), Status::Success);
        }
    }
}

/// A failed child reaches the parent as an error value, and replays see the same failure.
#[test]
fn a_failed_child_is_an_error_value_in_the_parent() {
    for t in apps(|b| b) {
        let app = &t.app;
        let bad = app
            .task("bad", |_: &TaskContext, (): ()| -> Result<u8, TaskError> {
                Err(TaskError::new("out of stock"))
            })
            .unwrap();
        let ok = app
            .task("ok", |_: &TaskContext, (): ()| -> Result<u8, TaskError> {
                Ok(1)
            })
            .unwrap();
        let parent = app
            .task(
                "handles_failure",
                move |ctx: &TaskContext, (): ()| -> Result<String, TaskError> {
                    let wf = ctx.wf();
                    let first = match wf.execute_task(&bad, ()) {
                        Err(WfError::ChildFailed { failure, .. }) => failure.message,
                        Err(e) => return Err(e.into()),
                        Ok(_) => "unexpected success".into(),
                    };
                    let second = wf.execute_task(&ok, ())?; // forces a replay past the recorded failure
                    Ok(format!("{first}/{second}"))
                },
            )
            .unwrap();
        let inv = parent.call(app, ()).unwrap();
        app.run_until_idle().unwrap();
        assert_eq!(inv.result().unwrap(), "out of stock/1", "{}", t.backend);
    }
}

/// Swallowing the suspension error does not let a body run ahead: it is still suspended, and what
/// it did after the suspension is not committed.
#[test]
fn a_swallowed_suspension_still_suspends() {
    for t in apps(|b| b) {
        let app = &t.app;
        let child = app
            .task("c", |_: &TaskContext, (): ()| -> Result<u8, TaskError> {
                Ok(5)
            })
            .unwrap();
        let parent = app
            .task(
                "swallow",
                move |ctx: &TaskContext, (): ()| -> Result<u8, TaskError> {
                    let wf = ctx.wf();
                    let v = wf.execute_task(&child, ()).unwrap_or(0);
                    wf.set_data("saw", &v)?;
                    Ok(v)
                },
            )
            .unwrap();
        let inv = parent.call(app, ()).unwrap();
        app.run_until_idle().unwrap();
        assert_eq!(inv.result().unwrap(), 5, "{}", t.backend);
        let saw: u8 =
            wf::core::decode(&app.store().get_data(inv.id(), "saw").unwrap().unwrap()).unwrap();
        assert_eq!(
            saw, 5,
            "{}: the write made while suspended leaked",
            t.backend
        );
    }
}

#[test]
fn get_data_or_and_read_your_writes() {
    let app = App::builder().memory().build().unwrap();
    let t = app
        .task(
            "rw",
            |ctx: &TaskContext, (): ()| -> Result<(u32, u32), TaskError> {
                let wf = ctx.wf();
                let before = wf.get_data_or("n", 7u32)?;
                wf.set_data("n", &(before + 1))?;
                Ok((before, wf.get_data_or("n", 0u32)?))
            },
        )
        .unwrap();
    let inv = t.call(&app, ()).unwrap();
    app.run_until_idle().unwrap();
    assert_eq!(inv.result_timeout(Duration::from_secs(1)).unwrap(), (7, 8));
}
