//! A replay that stops short is non-determinism: an execution that ends (returns, fails or
//! panics) before asking for every recorded journal entry fails at the first entry it skipped,
//! so changed code cannot orphan a recorded child or skip a recorded step. Only a suspension may
//! stop short. On memory and file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use common::apps;
use common::program::Children;
use common::program::{End, Evolving, Program, Step, assert_diverged, run_to_end};
use wf::prelude::*;

/// The case: recorded `random, uuid, execute_task(child, 1)`; the changed body asks
/// only `random, uuid` and returns `Ok` when woken by the child.
#[test]
fn a_wake_up_replay_that_returns_before_a_recorded_child_is_non_determinism() {
    for t in apps(|b| b) {
        let app = &t.app;
        let child_runs = Arc::new(AtomicU32::new(0));
        let runs = child_runs.clone();
        let child = app
            .task(
                "child",
                move |_: &TaskContext, n: u32| -> Result<u32, TaskError> {
                    runs.fetch_add(1, Ordering::SeqCst);
                    Ok(n)
                },
            )
            .unwrap();
        let changed = Arc::new(AtomicBool::new(false));
        let c = changed.clone();
        let flow = app
            .task(
                "flow",
                move |ctx: &TaskContext, (): ()| -> Result<u32, TaskError> {
                    let wf = ctx.wf();
                    wf.random();
                    wf.uuid();
                    if c.swap(true, Ordering::SeqCst) {
                        return Ok(0); // the changed code: the child call was removed
                    }
                    Ok(wf.execute_task(&child, 1)?)
                },
            )
            .unwrap();
        let (id, result) = run_to_end(app, &flow);
        assert_diverged(
            t.backend,
            id,
            result,
            2,
            "child start of task 'child'",
            "returned",
        );
        let record = app.store().invocation(id).unwrap();
        assert_eq!(record.state.status, Status::Failed, "{}", t.backend);
        assert_eq!(
            record.state.error.unwrap().kind,
            FailureKind::NonDeterminism,
            "{}",
            t.backend
        );
    }
}

/// The retry case: `random, uuid, Err` recorded; the retry asks `random` and returns.
#[test]
fn a_retry_that_returns_before_a_recorded_step_is_non_determinism() {
    for t in apps(|b| b) {
        let flow = t
            .app
            .task_with(
                TaskOptions::new("flow")
                    .max_retries(3)
                    .retry_backoff(Backoff::none()),
                |ctx: &TaskContext, (): ()| -> Result<u32, TaskError> {
                    let wf = ctx.wf();
                    wf.random();
                    if ctx.attempt() > 1 {
                        return Ok(1);
                    }
                    wf.uuid();
                    Err(TaskError::new("first attempt fails"))
                },
            )
            .unwrap();
        let (id, result) = run_to_end(&t.app, &flow);
        assert_diverged(t.backend, id, result, 1, "uuid()", "returned");
        let record = t.app.store().invocation(id).unwrap();
        assert_eq!(
            record.state.retries, 1,
            "{}: a divergence is final, not retried",
            t.backend
        );
    }
}

/// Every kind of recorded entry, skipped by a body that returns, fails or panics.
#[test]
fn stopping_short_after_every_kind_and_every_ending_is_non_determinism() {
    for recorded in Step::KINDS {
        for end in [End::Return, End::Fail, End::Panic] {
            for t in apps(|b| b) {
                let context = format!("{}: recorded {recorded:?}, then {end:?}", t.backend);
                let flow = Evolving::register(
                    &t.app,
                    "flow",
                    Program::new(&[recorded], End::Fail),
                    Program::new(&[], end),
                );
                let (id, result) = run_to_end(&t.app, &flow.task);
                assert_diverged(
                    &context,
                    id,
                    result,
                    1,
                    recorded.shows_as(),
                    end.described_as(),
                );
            }
        }
    }
}

/// A suspension is not an ending: an execution that replays part of a journal and then
/// suspends on a child it had not waited for yet is fine, and the workflow completes.
#[test]
fn a_suspension_may_stop_short() {
    for t in apps(|b| b) {
        let app = &t.app;
        let leaf = Children::register(app).leaf;
        let flow = app
            .task(
                "flow",
                move |ctx: &TaskContext, (): ()| -> Result<u32, TaskError> {
                    let wf = ctx.wf();
                    let a = wf.start_task(&leaf, 1)?;
                    let b = wf.start_task(&leaf, 2)?;
                    let x = wf.join(&a)?;
                    wf.random();
                    let y = wf.join(&b)?;
                    Ok(x + y)
                },
            )
            .unwrap();
        let (_, result) = run_to_end(app, &flow);
        assert_eq!(result.unwrap(), 6, "{}", t.backend);
    }
}
