//! The acceptance checks for async bodies, on an async worker (bodies park) on memory and file:
//! a retry replays what the failed attempt recorded (time, data reads, a child's result) and the
//! child runs once; only a workflow's root writes its data; handles do not cross between
//! workflows; a changed body is reported as non-determinism at its position. The sync versions
//! are `retry_replay.rs`, `data_writes.rs`, `subworkflow_isolation.rs` and
//! `nondeterminism_matrix.rs`.
#![cfg(feature = "tokio")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use common::program::assert_diverged;
use common::{PATIENCE, apps};
use wf::prelude::*;

/// Starts an async worker for `app`, runs `task(args)` to its end, stops the worker.
async fn run<A, R>(app: &App, task: &Task<A, R>, args: A) -> (InvocationId, Result<R, WfError>)
where
    A: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
    R: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
{
    let worker = app.worker().threads(1).concurrency(4).start().unwrap();
    let inv = task.call_async(app, args).await.unwrap();
    let result = inv.result_timeout_async(PATIENCE).await;
    worker.stop_async().await;
    (inv.id(), result)
}

/// What one attempt saw: (attempt, utc_now in ms, the data value it read, the child's result).
type Seen = Arc<Mutex<Vec<(u32, i128, Option<u32>, u32)>>>;

#[tokio::test]
async fn a_retry_replays_time_data_and_the_child_which_runs_once() {
    for t in apps(|b| b) {
        let app = &t.app;
        let child_runs = Arc::new(AtomicU32::new(0));
        let c = child_runs.clone();
        let leaf = app
            .task_async("leaf", move |_ctx: AsyncTaskContext, n: u32| {
                c.fetch_add(1, Ordering::SeqCst);
                async move { Ok::<_, TaskError>(n + 1) }
            })
            .unwrap();
        let seen: Seen = Arc::default();
        let s = seen.clone();
        let options = TaskOptions::new("stamp")
            .max_retries(1)
            .retry_backoff(Backoff::none());
        let stamp = app
            .task_async_with(options, move |ctx: AsyncTaskContext, (): ()| {
                let (s, leaf) = (s.clone(), leaf.clone());
                async move {
                    let wf = ctx.wf();
                    let now = wf.utc_now().unix_timestamp_nanos() / 1_000_000;
                    let value: Option<u32> = wf.get_data("k")?;
                    let child = wf.execute_task(&leaf, 41).await?;
                    s.lock().unwrap().push((ctx.attempt(), now, value, child));
                    if ctx.attempt() == 1 {
                        wf.set_data("k", &7u32)?;
                        return Err(TaskError::new("the first attempt fails"));
                    }
                    Ok::<_, TaskError>((now, value, child))
                }
            })
            .unwrap();
        let (_, result) = run(app, &stamp, ()).await;
        let (now, value, child) = result.unwrap();
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2, "{}: {seen:?}", t.backend);
        let (first, second) = (seen[0], seen[1]);
        assert_eq!((first.0, second.0), (1, 2), "{}", t.backend);
        assert_eq!(second.1, first.1, "{}: utc_now replayed", t.backend);
        assert_eq!(
            second.2, None,
            "{}: get_data replayed, not re-read",
            t.backend
        );
        assert_eq!((now, value, child), (first.1, None, 42), "{}", t.backend);
        assert_eq!(
            child_runs.load(Ordering::SeqCst),
            1,
            "{}: the child ran once",
            t.backend
        );
    }
}

/// An async child (in its parent's workflow) cannot write the workflow's data; the root can,
/// and the child reads what the root wrote before starting it.
#[tokio::test]
async fn only_the_root_writes_workflow_data() {
    for t in apps(|b| b) {
        let app = &t.app;
        let child = app
            .task_async("child", |ctx: AsyncTaskContext, (): ()| async move {
                let wf = ctx.wf();
                let denied = matches!(wf.set_data("k", &2u32), Err(WfError::Access(_)));
                let read: Option<u32> = wf.get_data("k")?;
                Ok::<_, TaskError>((denied, read))
            })
            .unwrap();
        let root = app
            .task_async("root", move |ctx: AsyncTaskContext, (): ()| {
                let child = child.clone();
                async move {
                    let wf = ctx.wf();
                    wf.set_data("k", &1u32)?;
                    let seen = wf.execute_task(&child, ()).await?;
                    Ok::<_, TaskError>(seen)
                }
            })
            .unwrap();
        let (id, result) = run(app, &root, ()).await;
        assert_eq!(result.unwrap(), (true, Some(1)), "{}", t.backend);
        let stored = app.store().get_data(id, "k").unwrap();
        assert_eq!(
            stored,
            Some(wf::core::codec::encode(&1u32).unwrap()),
            "{}: the child's write was refused",
            t.backend
        );
    }
}

/// A handle made by one workflow's async body is refused by another workflow's.
#[tokio::test]
async fn handles_do_not_cross_between_workflows() {
    for t in apps(|b| b) {
        let app = &t.app;
        let leaf = app
            .task_async("leaf", |_ctx: AsyncTaskContext, n: u32| async move {
                Ok::<_, TaskError>(n)
            })
            .unwrap();
        let shared: Arc<Mutex<Option<ChildHandle<u32>>>> = Arc::default();
        let (s, l) = (shared.clone(), leaf.clone());
        let first = app
            .task_async("first", move |ctx: AsyncTaskContext, (): ()| {
                let (s, l) = (s.clone(), l.clone());
                async move {
                    let wf = ctx.wf();
                    let mine = wf.start_task(&l, 1)?;
                    let v = wf.join(&mine).await?;
                    *s.lock().unwrap() = Some(mine);
                    Ok::<_, TaskError>(v)
                }
            })
            .unwrap();
        let s = shared.clone();
        let second = app
            .task_async("second", move |ctx: AsyncTaskContext, (): ()| {
                let s = s.clone();
                async move {
                    let theirs = s
                        .lock()
                        .unwrap()
                        .take()
                        .expect("the first workflow's handle");
                    let answer = match ctx.wf().join(theirs).await {
                        Ok(v) => format!("joined another workflow's child: {v}"),
                        Err(WfError::ForeignHandle { .. }) => "refused".to_owned(),
                        Err(e) => format!("refused otherwise: {e}"),
                    };
                    Ok::<_, TaskError>(answer)
                }
            })
            .unwrap();
        assert_eq!(run(app, &first, ()).await.1.unwrap(), 1, "{}", t.backend);
        assert_eq!(
            run(app, &second, ()).await.1.unwrap(),
            "refused",
            "{}",
            t.backend
        );
    }
}

/// A retry whose body asks for another operation than the one recorded fails with
/// non-determinism at that position: a draw replaced by a child, and one child by another.
#[tokio::test]
async fn a_changed_async_body_is_reported_at_its_position() {
    for t in apps(|b| b) {
        let app = &t.app;
        let leaf = app
            .task_async("leaf", |_ctx: AsyncTaskContext, n: u32| async move {
                Ok::<_, TaskError>(n)
            })
            .unwrap();
        let other = app
            .task_async("other", |_ctx: AsyncTaskContext, n: u32| async move {
                Ok::<_, TaskError>(n)
            })
            .unwrap();
        let retried = || {
            TaskOptions::new("drawn")
                .max_retries(1)
                .retry_backoff(Backoff::none())
        };
        let l = leaf.clone();
        let drawn = app
            .task_async_with(retried(), move |ctx: AsyncTaskContext, (): ()| {
                let l = l.clone();
                async move {
                    let wf = ctx.wf();
                    if ctx.attempt() == 1 {
                        wf.random();
                        return Err(TaskError::new("retry me"));
                    }
                    Ok::<_, TaskError>(wf.execute_task(&l, 1).await?)
                }
            })
            .unwrap();
        let (id, result) = run(app, &drawn, ()).await;
        assert_diverged(
            t.backend,
            id,
            result,
            0,
            "random()",
            "child start of task 'leaf'",
        );

        let swapped = app
            .task_async_with(
                TaskOptions::new("swapped")
                    .max_retries(1)
                    .retry_backoff(Backoff::none()),
                move |ctx: AsyncTaskContext, (): ()| {
                    let (leaf, other) = (leaf.clone(), other.clone());
                    async move {
                        let wf = ctx.wf();
                        if ctx.attempt() == 1 {
                            wf.execute_task(&leaf, 1).await?;
                            return Err(TaskError::new("retry me"));
                        }
                        Ok::<_, TaskError>(wf.execute_task(&other, 1).await?)
                    }
                },
            )
            .unwrap();
        let (id, result) = run(app, &swapped, ()).await;
        assert_diverged(
            t.backend,
            id,
            result,
            0,
            "child start of task 'leaf'",
            "other",
        );
    }
}

/// An async body that swallows its suspension (nothing parks: `max_parked(0)`) and returns a
/// value anyway is still suspended: the value is not committed, and the replay after the child
/// finished returns the child's real result.
#[tokio::test]
async fn a_swallowed_suspension_is_still_a_suspension() {
    for t in apps(|b| b) {
        let app = &t.app;
        let leaf = app
            .task_async("leaf", |_ctx: AsyncTaskContext, n: u32| async move {
                Ok::<_, TaskError>(n * 3)
            })
            .unwrap();
        let flow = app
            .task_async("flow", move |ctx: AsyncTaskContext, n: u32| {
                let leaf = leaf.clone();
                async move {
                    match ctx.wf().execute_task(&leaf, n).await {
                        Ok(v) => Ok::<_, TaskError>(v),
                        Err(_) => Ok(0), // swallowed: must not be committed
                    }
                }
            })
            .unwrap();
        let worker = app
            .worker()
            .threads(1)
            .concurrency(4)
            .max_parked(0)
            .start()
            .unwrap();
        let inv = flow.call_async(app, 5).await.unwrap();
        let result = inv.result_timeout_async(PATIENCE).await;
        worker.stop_async().await;
        assert_eq!(result.unwrap(), 15, "{}", t.backend);
    }
}
