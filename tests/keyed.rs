//! Idempotent starts: `task.call_keyed(&app, key, args)` starts one invocation per key, however
//! often and from however many threads or app instances it is called.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Barrier};

use common::apps;
use wf::prelude::*;

fn double(app: &App) -> Task<u64, u64> {
    app.task(
        "double",
        |_: &TaskContext, n: u64| -> Result<u64, TaskError> { Ok(n * 2) },
    )
    .unwrap()
}

#[test]
fn the_same_key_returns_the_same_invocation_and_runs_it_once() {
    for t in apps(|b| b) {
        let app = &t.app;
        let task = double(app);
        let first = task.call_keyed(app, "job-1", 21).unwrap();
        let again = task.call_keyed(app, "job-1", 21).unwrap();
        assert_eq!(first.id(), again.id(), "{}", t.backend);
        assert!(first.was_created(), "{}", t.backend);
        assert!(!again.was_created(), "{}", t.backend);
        let other = task.call_keyed(app, "job-2", 21).unwrap();
        assert_ne!(other.id(), first.id(), "{}", t.backend);

        assert_eq!(
            app.run_until_idle().unwrap(),
            2,
            "{}: one run per key",
            t.backend
        );
        assert_eq!(first.result().unwrap(), 42);
        // After it finished, the key still names it and starts nothing.
        let late = task.call_keyed(app, "job-1", 21).unwrap();
        assert_eq!(late.id(), first.id());
        assert!(!late.was_created());
        assert_eq!(app.run_until_idle().unwrap(), 0, "{}", t.backend);
        assert_eq!(app.counts().unwrap().total(), 2, "{}", t.backend);
    }
}

#[test]
fn the_same_key_with_other_arguments_is_a_typed_conflict() {
    for t in apps(|b| b) {
        let app = &t.app;
        let task = double(app);
        let first = task.call_keyed(app, "job-1", 21).unwrap();
        match task.call_keyed(app, "job-1", 22) {
            Err(e @ WfError::KeyConflict { .. }) => {
                let WfError::KeyConflict {
                    ref task,
                    ref key,
                    existing,
                } = e
                else {
                    unreachable!()
                };
                assert_eq!(task.as_str(), "double");
                assert_eq!(key, "job-1");
                assert_eq!(existing, first.id());
                let text = e.to_string();
                assert!(
                    text.contains("\"job-1\"") && text.contains(&first.id().to_string()),
                    "{text}"
                );
            }
            other => panic!("{}: expected KeyConflict, got {other:?}", t.backend),
        }
        assert_eq!(app.counts().unwrap().total(), 1, "{}", t.backend);
    }
}

#[test]
fn keys_belong_to_a_task_and_an_app() {
    for t in apps(|b| b) {
        let app = &t.app;
        let a = double(app);
        let b = app
            .task(
                "triple",
                |_: &TaskContext, n: u64| -> Result<u64, TaskError> { Ok(n * 3) },
            )
            .unwrap();
        let x = a.call_keyed(app, "k", 1).unwrap();
        let y = b.call_keyed(app, "k", 1).unwrap();
        assert_ne!(x.id(), y.id(), "{}", t.backend);
        assert!(y.was_created());
    }
}

#[test]
fn racing_threads_with_one_key_start_one_invocation() {
    const THREADS: usize = 8;
    for t in apps(|b| b) {
        let app = t.app.clone();
        let task = double(&app);
        let barrier = Arc::new(Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let (app, task, barrier) = (app.clone(), task.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    let inv = task.call_keyed(&app, "the-batch", 5).unwrap();
                    (inv.id(), inv.was_created())
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let ids: std::collections::BTreeSet<_> = results.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids.len(), 1, "{}: {results:?}", t.backend);
        let created = results.iter().filter(|(_, c)| *c).count();
        assert_eq!(created, 1, "{}: exactly one call stored it", t.backend);
        assert_eq!(app.counts().unwrap().total(), 1, "{}", t.backend);
        assert_eq!(app.run_until_idle().unwrap(), 1, "{}", t.backend);
    }
}

/// Another app instance over the same store (another process, for a shared store) and a
/// restarted process both find the invocation by its key.
#[test]
fn a_key_holds_across_app_instances_and_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let first_id = {
        let app = App::builder().app_id("keyed").file(&dir).build().unwrap();
        let task = double(&app);
        let inv = task.call_keyed(&app, "nightly-2026-01-01", 4).unwrap();
        assert!(inv.was_created());
        // A second app sharing the store (what a second worker process sees on Redis).
        let twin = App::builder()
            .app_id("keyed")
            .store(app.store().clone())
            .build()
            .unwrap();
        let twin_inv = double(&twin)
            .call_keyed(&twin, "nightly-2026-01-01", 4)
            .unwrap();
        assert_eq!(twin_inv.id(), inv.id());
        assert!(!twin_inv.was_created());
        inv.id()
    };
    let app = App::builder().app_id("keyed").file(&dir).build().unwrap();
    let task = double(&app);
    let inv = task.call_keyed(&app, "nightly-2026-01-01", 4).unwrap();
    assert_eq!(inv.id(), first_id);
    assert!(
        !inv.was_created(),
        "a restart must not start the work again"
    );
    app.run_until_idle().unwrap();
    assert_eq!(inv.result().unwrap(), 8);
}

/// A keyed call from inside a body escapes the journal like a plain call: refused.
#[test]
fn a_keyed_call_inside_a_body_is_refused() {
    for t in apps(|b| b) {
        let app = &t.app;
        let inner = double(app);
        let outer = app
            .task(
                "outer",
                move |ctx: &TaskContext, (): ()| -> Result<String, TaskError> {
                    match inner.call_keyed(ctx.app(), "k", 1) {
                        Err(e @ WfError::CallInsideBody { .. }) => Ok(e.to_string()),
                        other => Ok(format!("not refused: {other:?}")),
                    }
                },
            )
            .unwrap();
        let inv = outer.call(app, ()).unwrap();
        app.run_until_idle().unwrap();
        let said = inv.result().unwrap();
        assert!(said.contains("double"), "{}: {said}", t.backend);
        assert_eq!(app.counts().unwrap().total(), 1, "{}", t.backend);
    }
}
