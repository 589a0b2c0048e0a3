//! Nothing escapes the journal: from inside a running body, work is started only through the
//! workflow context, and a child handle is joined only by the execution that created it.
//! On memory and file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::program::Children;
use common::{PATIENCE, apps};
use wf::prelude::*;

/// `task.call(ctx.app(), ..)` from a body would start a new top-level workflow on every replay:
/// it is refused, with an error that says what to use instead.
#[test]
fn a_top_level_call_from_inside_a_body_is_refused() {
    for t in apps(|b| b) {
        let app = &t.app;
        let side = app
            .task("side", |_: &TaskContext, (): ()| -> Result<(), TaskError> {
                Ok(())
            })
            .unwrap();
        let leaf = Children::register(app).leaf;
        let captured = app.clone();
        let flow = app
            .task(
                "flow",
                move |ctx: &TaskContext, (): ()| -> Result<Vec<String>, TaskError> {
                    let mut refusals = Vec::new();
                    // Through the context's app, and through an app captured by the closure.
                    for via in [ctx.app(), &captured] {
                        refusals.push(match side.call(via, ()) {
                            Err(e) => e.to_string(),
                            Ok(inv) => format!("accepted as {}", inv.id()),
                        });
                    }
                    ctx.wf().execute_task(&leaf, 1)?; // suspends once: the body runs twice
                    Ok(refusals)
                },
            )
            .unwrap();
        let inv = flow.call(app, ()).unwrap();
        app.run_until_idle().unwrap();
        let refusals = inv.result_timeout(PATIENCE).unwrap();
        for r in &refusals {
            assert!(
                r.contains("execute_task") && r.contains("start_task"),
                "{}: the refusal says what to use instead: {r}",
                t.backend
            );
        }
        assert_eq!(
            app.store().workflows().unwrap().len(),
            1,
            "{}: no workflow escaped the body",
            t.backend
        );
    }
}

/// `run_until_idle` runs other invocations inline, and a worker pool started in a body would be
/// started again on every replay: inside a body both are refused too.
#[test]
fn run_until_idle_and_workers_inside_a_body_are_refused() {
    for t in apps(|b| b) {
        let app = &t.app;
        let flow = app
            .task(
                "flow",
                |ctx: &TaskContext, (): ()| -> Result<String, TaskError> {
                    let worker = match ctx.app().worker().start() {
                        Ok(w) => format!("started {:?}", w.stop()),
                        Err(e) => format!("refused: {e}"),
                    };
                    let inline = match ctx.app().run_until_idle() {
                        Ok(n) => format!("ran {n} executions"),
                        Err(e) => format!("refused: {e}"),
                    };
                    Ok(format!("{inline}\n{worker}"))
                },
            )
            .unwrap();
        let inv = flow.call(app, ()).unwrap();
        app.run_until_idle().unwrap();
        let seen = inv.result_timeout(PATIENCE).unwrap();
        for line in seen.lines() {
            assert!(line.starts_with("refused"), "{}: {line}", t.backend);
            assert!(
                line.contains(&inv.id().to_string()),
                "{}: {line}",
                t.backend
            );
        }
    }
}

/// A handle kept from workflow A and joined in workflow B is refused, naming both invocations;
/// B never sees A's child's result.
#[test]
fn a_handle_joined_in_another_workflow_is_refused() {
    for t in apps(|b| b) {
        let app = &t.app;
        let leaf = Children::register(app).leaf;
        let slot: Arc<Mutex<Option<ChildHandle<u32>>>> = Arc::default();
        let keep = slot.clone();
        let a = app
            .task(
                "a",
                move |ctx: &TaskContext, (): ()| -> Result<u32, TaskError> {
                    let h = ctx.wf().start_task(&leaf, 7)?;
                    let v = ctx.wf().join(&h)?;
                    *keep.lock().unwrap() = Some(h);
                    Ok(v)
                },
            )
            .unwrap();
        let take = slot.clone();
        let b = app
            .task(
                "b",
                move |ctx: &TaskContext, (): ()| -> Result<String, TaskError> {
                    let h = take.lock().unwrap().take().expect("a's handle");
                    Ok(match ctx.wf().join(h) {
                        Ok(v) => format!("joined a's child: {v}"),
                        Err(e) => format!("refused: {e}"),
                    })
                },
            )
            .unwrap();
        let inv_a = a.call(app, ()).unwrap();
        app.run_until_idle().unwrap();
        assert_eq!(inv_a.result().unwrap(), 14);
        let inv_b = b.call(app, ()).unwrap();
        app.run_until_idle().unwrap();
        let seen = inv_b.result_timeout(PATIENCE).unwrap();
        assert!(seen.starts_with("refused"), "{}: {seen}", t.backend);
        assert!(
            seen.contains(&inv_a.id().to_string()) && seen.contains(&inv_b.id().to_string()),
            "{}: the refusal names both invocations: {seen}",
            t.backend
        );
    }
}

/// A handle kept from an earlier execution of the same invocation and joined again is refused
/// at once; it does not replay the invocation in a loop.
#[test]
fn a_handle_from_an_earlier_execution_is_refused_without_a_livelock() {
    for t in apps(|b| b) {
        let app = &t.app;
        let leaf = Children::register(app).leaf;
        let executions = Arc::new(AtomicU32::new(0));
        let slot: Arc<Mutex<Option<ChildHandle<u32>>>> = Arc::default();
        let (runs, keep) = (executions.clone(), slot.clone());
        let flow = app
            .task(
                "flow",
                move |ctx: &TaskContext, (): ()| -> Result<String, TaskError> {
                    runs.fetch_add(1, Ordering::SeqCst);
                    let h = ctx.wf().start_task(&leaf, 7)?;
                    let mut kept = keep.lock().unwrap();
                    if kept.is_none() {
                        // The first execution: the join suspends; the handle stays behind.
                        let joined = ctx.wf().join(&h);
                        *kept = Some(h);
                        drop(kept);
                        joined?;
                        return Err(TaskError::new("unreachable: the first join suspends"));
                    }
                    ctx.wf().join(&h)?;
                    let old = kept.as_ref().expect("kept above");
                    Ok(match ctx.wf().join(old) {
                        Ok(v) => format!("joined the old handle: {v}"),
                        Err(e) => format!("refused: {e}"),
                    })
                },
            )
            .unwrap();
        let worker = app.worker().threads(2).start().unwrap();
        let inv = flow.call(app, ()).unwrap();
        let result = inv.result_timeout(Duration::from_secs(10));
        worker.stop();
        let runs = executions.load(Ordering::SeqCst);
        assert!(runs <= 3, "{}: {runs} executions: a livelock", t.backend);
        let seen = result.unwrap();
        assert!(seen.starts_with("refused"), "{}: {seen}", t.backend);
        assert!(seen.contains("earlier execution"), "{}: {seen}", t.backend);
    }
}
