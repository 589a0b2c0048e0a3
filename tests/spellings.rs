//! The spellings a new user reaches for first work: handles joined by value or by reference,
//! a `Vec` of handles, a `Duration` as a fixed retry backoff, a `TempDir` as the store path, and
//! the common types from the prelude alone.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use wf::prelude::*;

#[test]
fn joins_take_handles_by_value_or_by_reference() {
    for t in common::apps(|b| b) {
        let app = &t.app;
        let square = app
            .task(
                "square",
                |_: &TaskContext, n: u64| -> Result<u64, TaskError> { Ok(n * n) },
            )
            .unwrap();
        let flow = app
            .task(
                "flow",
                move |ctx: &TaskContext, (): ()| -> Result<u64, TaskError> {
                    let wf = ctx.wf();
                    let handles: Vec<ChildHandle<u64>> = (1..=3)
                        .map(|n| wf.start_task(&square, n))
                        .collect::<Result<_, _>>()?;
                    let by_ref: Vec<u64> = wf.join_all(&handles)?; // &Vec
                    let by_value: Vec<u64> = wf.join_all(handles)?; // Vec
                    let one = wf.start_task(&square, 4)?;
                    let a = wf.join(&one)?;
                    let b = wf.join(one)?;
                    let array = wf.join_all([wf.start_task(&square, 5)?])?;
                    Ok(
                        by_ref.iter().sum::<u64>()
                            + by_value.iter().sum::<u64>()
                            + a
                            + b
                            + array[0],
                    )
                },
            )
            .unwrap();
        let inv = flow.call(app, ()).unwrap();
        app.run_until_idle().unwrap();
        assert_eq!(
            inv.result().unwrap(),
            14 + 14 + 16 + 16 + 25,
            "{}",
            t.backend
        );
        assert_eq!(inv.status().unwrap(), Status::Success, "{}", t.backend);
    }
}

#[test]
fn a_duration_is_a_fixed_retry_backoff() {
    for t in common::apps(|b| b) {
        let app = &t.app;
        let calls = Arc::new(AtomicU32::new(0));
        let c = calls.clone();
        let options = TaskOptions::new("flaky")
            .max_retries(2)
            .retry_backoff(Duration::from_secs(3));
        let flaky = app
            .task_with(
                options,
                move |_: &TaskContext, (): ()| -> Result<u32, TaskError> {
                    match c.fetch_add(1, Ordering::SeqCst) {
                        0 => Err(TaskError::new("first try fails")),
                        n => Ok(n + 1),
                    }
                },
            )
            .unwrap();
        let inv = flaky.call(app, ()).unwrap();
        app.run_until_idle().unwrap();
        assert_eq!(inv.result().unwrap(), 2, "{}", t.backend);
        let record = app.store().invocation(inv.id()).unwrap();
        assert_eq!(record.state.retries, 1);
        assert_eq!(
            Backoff::from(Duration::from_secs(3)),
            Backoff::fixed(Duration::from_secs(3))
        );
        let fixed = Backoff::fixed(Duration::from_secs(3));
        for retry in 1..5 {
            assert_eq!(fixed.delay(inv.id(), retry), Duration::from_secs(3));
        }
    }
}

#[cfg(feature = "file")]
#[test]
fn a_tempdir_is_a_store_path() {
    let dir = tempfile::tempdir().unwrap();
    let app = App::builder().app_id("t").file(&dir).build().unwrap();
    let id = app
        .task(
            "id",
            |_: &TaskContext, s: String| -> Result<String, TaskError> { Ok(s) },
        )
        .unwrap();
    let inv = id.call(&app, "x".to_owned()).unwrap();
    app.run_until_idle().unwrap();
    assert_eq!(inv.result().unwrap(), "x");
    assert!(
        dir.path().join("wf.log").exists(),
        "the store lives in the TempDir"
    );
}

/// The prelude names every type a caller matches on.
#[test]
fn the_prelude_names_what_callers_match_on() {
    let app = App::builder().app_id("t").memory().build().unwrap();
    let child = app
        .task(
            "child",
            |ctx: &TaskContext, (): ()| -> Result<(), TaskError> {
                match ctx.wf().set_data("k", &1) {
                    Err(WfError::Access(WorkflowAccessError { .. })) => Ok(()),
                    other => Err(TaskError::new(format!(
                        "expected an access error, got {other:?}"
                    ))),
                }
            },
        )
        .unwrap();
    let root = app
        .task(
            "root",
            move |ctx: &TaskContext, (): ()| -> Result<WorkflowIdentity, TaskError> {
                ctx.wf().execute_task(&child, ())?;
                Ok(ctx.wf().identity().clone())
            },
        )
        .unwrap();
    let inv = root.call(&app, ()).unwrap();
    app.run_until_idle().unwrap();
    let identity: WorkflowIdentity = inv.result().unwrap();
    let id: InvocationId = inv.id();
    assert_eq!(identity.workflow_id, id);
    let _: Option<FailureKind> = None;
    let _: Option<Failure> = None;
    let _: Option<NonDeterminism> = None;
}
