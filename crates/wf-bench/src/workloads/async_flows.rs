//! Async long workflows: one async workflow of n sequential async children on an async worker
//! (one thread, its body parked while each child runs), n = 100, 1,000, 3,000; beside the sync
//! long workflow of [`super::flows`]. Besides the time, it counts how many times the
//! workflow's body started: parked, it starts once whatever n is, so its code runs O(n) times
//! in all (a replay per child would be O(n²)).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use wf_runtime::{AsyncTaskContext, TaskError};

use super::flows::{Long, PATIENCE, long_with};
use super::{LEASE, fresh_store};
use crate::Config;
use crate::backend::Backend;

/// The async long workflows at `ns`, and the body starts of the longest (in the detail).
pub(crate) fn long(config: &Config, backend: Backend, ns: &[u64]) -> Result<Long, String> {
    let mut starts = Vec::with_capacity(ns.len());
    let mut long = long_with(ns, |n| {
        let (elapsed, started) = chain(config, backend, n)?;
        starts.push(format!("n={n}: {started}"));
        Ok(elapsed)
    })?;
    long.detail = format!(
        "{}; body starts per workflow {}",
        long.detail,
        starts.join(", ")
    );
    Ok(long)
}

/// The time of one async workflow awaiting `n` async children one after another, on an async
/// worker of one thread, and how many times its body started.
fn chain(config: &Config, backend: Backend, n: u64) -> Result<(Duration, u64), String> {
    let (store, _dir) = fresh_store(config, backend, &format!("async-long-{n}"))?;
    let app = store.app(LEASE, config.inline)?;
    let child = app
        .task_async(
            "bench.async_noop",
            |_ctx: AsyncTaskContext, i: u64| async move { Ok::<_, TaskError>(i) },
        )
        .map_err(|e| format!("cannot register bench.async_noop: {e}"))?;
    let starts = Arc::new(AtomicU64::new(0));
    let s = starts.clone();
    let flow = app
        .task_async("bench.async_chain", move |ctx: AsyncTaskContext, n: u64| {
            s.fetch_add(1, Ordering::Relaxed);
            let child = child.clone();
            async move {
                let wf = ctx.wf();
                let mut sum = 0;
                for i in 0..n {
                    sum += wf.execute_task(&child, i).await?;
                }
                Ok::<_, TaskError>(sum)
            }
        })
        .map_err(|e| format!("cannot register bench.async_chain: {e}"))?;
    let worker = app
        .worker()
        .threads(1)
        .concurrency(64)
        .start()
        .map_err(|e| format!("cannot start an async worker: {e}"))?;
    let run = |n: u64| -> Result<Duration, String> {
        let start = Instant::now();
        let got = flow
            .call(&app, n)
            .and_then(|inv| inv.result_timeout(PATIENCE))
            .map_err(|e| format!("an async chain of {n}: {e}"))?;
        if got != n * n.saturating_sub(1) / 2 {
            return Err(format!("an async chain of {n} returned {got}"));
        }
        Ok(start.elapsed())
    };
    let warm = run(10);
    let before = starts.load(Ordering::Relaxed);
    let outcome = warm.and_then(|_| run(n));
    worker.stop();
    let started = starts.load(Ordering::Relaxed) - before;
    Ok((outcome?, started))
}
