//! Async bodies on an async worker: a body waiting on a child stays parked in memory and
//! resumes when the child's commit lands, so a workflow of n sequential children runs its
//! body's code once (O(n) in all, counted in body starts, not time); with parking bounded to 0
//! it is suspended and replayed once per child, as a sync body without inline children.
//! Sync and async tasks call each other. On memory and file.
#![cfg(feature = "tokio")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use common::{PATIENCE, apps};
use wf::prelude::*;

fn counter() -> (Arc<AtomicU32>, Arc<AtomicU32>) {
    let c = Arc::new(AtomicU32::new(0));
    (c.clone(), c)
}

/// Registers an async `step` (doubles its argument) and an async `flow` that executes it `n`
/// times in sequence; returns the flow and its body-start counter.
fn chain(app: &App) -> (Task<u32, u32>, Arc<AtomicU32>, Arc<AtomicU32>) {
    let (step_runs, s) = counter();
    let step = app
        .task_async("step", move |_ctx: AsyncTaskContext, n: u32| {
            s.fetch_add(1, Ordering::SeqCst);
            async move { Ok::<_, TaskError>(n * 2) }
        })
        .unwrap();
    let (flow_runs, f) = counter();
    let flow = app
        .task_async("flow", move |ctx: AsyncTaskContext, n: u32| {
            f.fetch_add(1, Ordering::SeqCst);
            let step = step.clone();
            async move {
                let wf = ctx.wf();
                let mut sum = 0;
                for i in 0..n {
                    wf.random();
                    sum += wf.execute_task(&step, i).await?;
                }
                Ok::<_, TaskError>(sum)
            }
        })
        .unwrap();
    (flow, flow_runs, step_runs)
}

#[tokio::test]
async fn a_parked_chain_runs_its_body_once() {
    for t in apps(|b| b) {
        let app = &t.app;
        let (flow, flow_runs, step_runs) = chain(app);
        let worker = app.worker().threads(1).concurrency(8).start().unwrap();
        let inv = flow.call_async(app, 30).await.unwrap();
        let sum = inv.result_timeout_async(PATIENCE).await.unwrap();
        assert_eq!(sum, (0..30).map(|i| i * 2).sum::<u32>(), "{}", t.backend);
        worker.stop_async().await;
        assert_eq!(
            flow_runs.load(Ordering::SeqCst),
            1,
            "{}: parked, never replayed",
            t.backend
        );
        assert_eq!(
            step_runs.load(Ordering::SeqCst),
            30,
            "{}: each child once",
            t.backend
        );
    }
}

#[tokio::test]
async fn with_nothing_parked_the_chain_replays_once_per_child() {
    for t in apps(|b| b) {
        let app = &t.app;
        let (flow, flow_runs, step_runs) = chain(app);
        let worker = app
            .worker()
            .threads(1)
            .concurrency(8)
            .max_parked(0)
            .start()
            .unwrap();
        let inv = flow.call_async(app, 10).await.unwrap();
        let sum = inv.result_timeout_async(PATIENCE).await.unwrap();
        assert_eq!(sum, 90, "{}", t.backend);
        worker.stop_async().await;
        assert_eq!(
            flow_runs.load(Ordering::SeqCst),
            11,
            "{}: one run per child, one more to end",
            t.backend
        );
        assert_eq!(step_runs.load(Ordering::SeqCst), 10, "{}", t.backend);
    }
}

/// A sync worker (and `run_until_idle`) runs async bodies too: driven to their end on its
/// thread, children inline as for sync bodies.
#[test]
fn a_sync_worker_runs_async_bodies() {
    for t in apps(|b| b) {
        let app = &t.app;
        let (flow, flow_runs, _) = chain(app);
        let inv = flow.call(app, 5).unwrap();
        app.run_until_idle().unwrap();
        assert_eq!(inv.result().unwrap(), 20, "{}", t.backend);
        assert_eq!(
            flow_runs.load(Ordering::SeqCst),
            1,
            "{}: children ran inline",
            t.backend
        );
    }
}

/// `run_until_idle` inside a tokio test (a thread of a current-thread runtime) runs an async
/// body that awaits a tokio timer: the body runs on a runtime of its own, not on the blocked one.
#[tokio::test]
async fn run_until_idle_inside_a_runtime_runs_bodies_that_use_tokio() {
    for t in apps(|b| b) {
        let app = &t.app;
        let nap = app
            .task_async("nap", |_ctx: AsyncTaskContext, ms: u64| async move {
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                Ok::<_, TaskError>(ms)
            })
            .unwrap();
        let inv = nap.call(app, 5).unwrap();
        app.run_until_idle().unwrap();
        assert_eq!(inv.result().unwrap(), 5, "{}", t.backend);
    }
}

/// An async workflow executes sync tasks, and a sync workflow executes async tasks.
#[tokio::test]
async fn sync_and_async_tasks_call_each_other() {
    for t in apps(|b| b) {
        let app = &t.app;
        let sync_leaf = app
            .task(
                "sync_leaf",
                |_: &TaskContext, n: u32| -> Result<u32, TaskError> { Ok(n + 1) },
            )
            .unwrap();
        let async_leaf = app
            .task_async("async_leaf", |_ctx: AsyncTaskContext, n: u32| async move {
                Ok::<_, TaskError>(n * 10)
            })
            .unwrap();
        let (s, a) = (sync_leaf.clone(), async_leaf.clone());
        let sync_flow = app
            .task(
                "sync_flow",
                move |ctx: &TaskContext, n: u32| -> Result<u32, TaskError> {
                    let wf = ctx.wf();
                    let x = wf.execute_task(&a, n)?;
                    Ok(wf.execute_task(&s, x)?)
                },
            )
            .unwrap();
        let (s, sf) = (sync_leaf.clone(), sync_flow.clone());
        let async_flow = app
            .task_async("async_flow", move |ctx: AsyncTaskContext, n: u32| {
                let (s, sf) = (s.clone(), sf.clone());
                async move {
                    let wf = ctx.wf();
                    let x = wf.execute_task(&s, n).await?;
                    let y = wf.execute_task(&sf, x).await?;
                    Ok::<_, TaskError>(y)
                }
            })
            .unwrap();
        let worker = app.worker().threads(2).concurrency(4).start().unwrap();
        // sync_flow: 3 -> async 30 -> sync 31
        let direct = sync_flow.call_async(app, 3).await.unwrap();
        assert_eq!(
            direct.result_timeout_async(PATIENCE).await.unwrap(),
            31,
            "{}",
            t.backend
        );
        // async_flow: 2 -> sync 3 -> sync_flow(3) = 31
        let nested = async_flow.call_async(app, 2).await.unwrap();
        assert_eq!(
            nested.result_timeout_async(PATIENCE).await.unwrap(),
            31,
            "{}",
            t.backend
        );
        worker.stop_async().await;

        // Without an async worker: run_until_idle drives both kinds.
        let inv = async_flow.call(app, 4).unwrap();
        app.run_until_idle().unwrap();
        assert_eq!(inv.result().unwrap(), 51, "{}", t.backend);
    }
}

/// Several children joined at once run in parallel and the parked body gets them in order.
#[tokio::test]
async fn join_all_parks_on_several_children() {
    for t in apps(|b| b) {
        let app = &t.app;
        let leaf = app
            .task_async("leaf", |_ctx: AsyncTaskContext, n: u32| async move {
                Ok::<_, TaskError>(n * n)
            })
            .unwrap();
        let (runs, r) = counter();
        let fan = app
            .task_async("fan", move |ctx: AsyncTaskContext, n: u32| {
                r.fetch_add(1, Ordering::SeqCst);
                let leaf = leaf.clone();
                async move {
                    let wf = ctx.wf();
                    let handles = (0..n)
                        .map(|i| wf.start_task(&leaf, i))
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok::<_, TaskError>(wf.join_all(&handles).await?)
                }
            })
            .unwrap();
        let worker = app.worker().threads(1).concurrency(4).start().unwrap();
        let inv = fan.call_async(app, 6).await.unwrap();
        assert_eq!(
            inv.await.unwrap(),
            vec![0, 1, 4, 9, 16, 25],
            "{}",
            t.backend
        );
        worker.stop_async().await;
        assert_eq!(runs.load(Ordering::SeqCst), 1, "{}", t.backend);
    }
}

/// A body that races a workflow future against a future the journal does not know (a tokio
/// timer) and drops it is failed with non-determinism: a replay could take the other branch.
#[tokio::test]
async fn a_workflow_future_dropped_by_select_fails_the_invocation() {
    for t in apps(|b| b) {
        let app = &t.app;
        let slow = app
            .task_async("slow", |_ctx: AsyncTaskContext, (): ()| async move {
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                Ok::<_, TaskError>(1u32)
            })
            .unwrap();
        let racy = app
            .task_async("racy", move |ctx: AsyncTaskContext, (): ()| {
                let slow = slow.clone();
                async move {
                    let wf = ctx.wf();
                    let won = tokio::select! {
                        r = wf.execute_task(&slow, ()) => r?,
                        () = tokio::time::sleep(std::time::Duration::from_millis(5)) => 0,
                    };
                    Ok::<_, TaskError>(won)
                }
            })
            .unwrap();
        let worker = app.worker().threads(1).concurrency(4).start().unwrap();
        let inv = racy.call_async(app, ()).await.unwrap();
        let result = inv.result_timeout_async(PATIENCE).await;
        worker.stop_async().await;
        match result {
            Err(WfError::NonDeterminism(nd)) => {
                assert!(
                    nd.requested.contains("dropped before it ended"),
                    "{}: {nd}",
                    t.backend
                );
            }
            other => panic!("{}: expected NonDeterminism, got {other:?}", t.backend),
        }
    }
}

/// A durable sleep due soon parks the body until it fires; an event sent from this process
/// wakes a body parked on it. Neither replays the body; with parking off, each suspends it.
#[tokio::test]
async fn timers_and_events_park_the_body() {
    for max_parked in [1024, 0] {
        for t in apps(|b| b) {
            let app = &t.app;
            let (runs, r) = counter();
            let (reached, re) = counter();
            let flow = app
                .task_async("flow", move |ctx: AsyncTaskContext, (): ()| {
                    r.fetch_add(1, Ordering::SeqCst);
                    let re = re.clone();
                    async move {
                        let wf = ctx.wf();
                        wf.sleep(std::time::Duration::from_millis(30)).await?;
                        re.fetch_add(1, Ordering::SeqCst);
                        let n: u32 = wf.wait_event("go").await?;
                        wf.sleep(std::time::Duration::from_millis(30)).await?;
                        Ok::<_, TaskError>(n + 1)
                    }
                })
                .unwrap();
            let worker = app
                .worker()
                .threads(1)
                .concurrency(4)
                .max_parked(max_parked)
                .start()
                .unwrap();
            let inv = flow.call_async(app, ()).await.unwrap();
            // Sent once the body reached the wait (an earlier event would be taken at once).
            let deadline = std::time::Instant::now() + PATIENCE;
            while reached.load(Ordering::SeqCst) == 0 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{}: the body never reached its event",
                    t.backend
                );
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
            app.send_event(inv.id(), "go", &41u32).unwrap();
            assert_eq!(
                inv.result_timeout_async(PATIENCE).await.unwrap(),
                42,
                "{}",
                t.backend
            );
            worker.stop_async().await;
            let runs = runs.load(Ordering::SeqCst);
            match max_parked {
                0 => assert!(runs >= 3, "{}: suspended at each timer: {runs}", t.backend),
                _ => assert_eq!(runs, 1, "{}: parked throughout", t.backend),
            }
        }
    }
}

/// A worker that stops suspends its parked bodies; a later worker replays them from their
/// journal and they finish. A cancelled parked body ends cancelled.
#[tokio::test]
async fn a_stop_suspends_parked_bodies_and_a_cancel_ends_them() {
    for t in apps(|b| b) {
        let app = &t.app;
        let gate = app
            .task_async("gate", |ctx: AsyncTaskContext, (): ()| async move {
                Ok::<_, TaskError>(ctx.wf().wait_event::<u32>("open").await?)
            })
            .unwrap();
        let (runs, r) = counter();
        let (reached, re) = counter();
        let flow = app
            .task_async("flow", move |ctx: AsyncTaskContext, (): ()| {
                r.fetch_add(1, Ordering::SeqCst);
                let (gate, re) = (gate.clone(), re.clone());
                async move {
                    let wf = ctx.wf();
                    let h = wf.start_task(&gate, ())?;
                    re.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, TaskError>(wf.join(&h).await? + 1)
                }
            })
            .unwrap();
        let until = |c: &Arc<AtomicU32>, n: u32, what: &str| {
            let deadline = std::time::Instant::now() + PATIENCE;
            while c.load(Ordering::SeqCst) < n {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{}: {what}",
                    t.backend
                );
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        };

        let worker = app.worker().threads(1).concurrency(4).start().unwrap();
        let inv = flow.call_async(app, ()).await.unwrap();
        until(&reached, 1, "the body never reached its join");
        worker.stop_async().await;
        assert_eq!(
            inv.status().unwrap(),
            Status::Waiting,
            "{}: suspended at the stop",
            t.backend
        );
        let child: Vec<InvocationId> = app
            .store()
            .workflow_invocations(inv.id())
            .unwrap()
            .into_iter()
            .filter(|c| *c != inv.id())
            .collect();
        assert_eq!(child.len(), 1, "{}", t.backend);
        app.send_event(child[0], "open", &41u32).unwrap();
        let worker = app.worker().threads(1).concurrency(4).start().unwrap();
        assert_eq!(
            inv.result_timeout_async(PATIENCE).await.unwrap(),
            42,
            "{}",
            t.backend
        );
        assert_eq!(
            runs.load(Ordering::SeqCst),
            2,
            "{}: replayed once after the stop",
            t.backend
        );

        let cancelled = flow.call_async(app, ()).await.unwrap();
        until(&reached, 3, "the second body never reached its join");
        cancelled.cancel().unwrap();
        let result = cancelled.result_timeout_async(PATIENCE).await;
        assert!(
            matches!(result, Err(WfError::Cancelled { .. })),
            "{}: {result:?}",
            t.backend
        );
        worker.stop_async().await;
    }
}
