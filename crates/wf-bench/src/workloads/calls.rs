//! Latency: sequential calls of a no-op task, each waited for before the next, on a pool of two
//! idle worker threads: every call pays the hand-off to a worker and back.

use std::time::Instant;

use wf_runtime::{App, Task, TaskContext, TaskError};

use super::{LEASE, Run, fresh_store};
use crate::Config;
use crate::backend::Backend;
use crate::report::Samples;

/// Calls measured, and calls run first untimed.
const CALLS: usize = 2_000;
const WARM_UP: usize = 200;

/// The no-op task every throughput workload calls.
pub(crate) fn noop(app: &App) -> Result<Task<u64, u64>, String> {
    app.task(
        "bench.noop",
        |_: &TaskContext, n: u64| -> Result<u64, TaskError> { Ok(n) },
    )
    .map_err(|e| format!("cannot register bench.noop: {e}"))
}

/// p50 of `CALLS` sequential call → result round trips.
pub(crate) fn latency(config: &Config, backend: Backend) -> Result<Run, String> {
    let (store, _dir) = fresh_store(config, backend, "latency")?;
    let (app, fsyncs) = store.app_counting(LEASE, true)?;
    let task = noop(&app)?;
    let worker = app
        .worker()
        .threads(2)
        .start()
        .map_err(|e| format!("cannot start a worker: {e}"))?;
    let calls = if config.quick { CALLS / 4 } else { CALLS };
    let mut samples = Samples::with_capacity(calls);
    let mut outcome = Ok(());
    let mut before = None;
    for i in 0..(WARM_UP + calls) as u64 {
        if i == WARM_UP as u64 {
            before = fsyncs.stats();
        }
        let t0 = Instant::now();
        match task.call(&app, i).and_then(|inv| inv.result()) {
            Ok(n) if n == i => {}
            Ok(n) => {
                outcome = Err(format!("call {i} returned {n}"));
                break;
            }
            Err(e) => {
                outcome = Err(format!("call {i}: {e}"));
                break;
            }
        }
        if i >= WARM_UP as u64 {
            samples.push(t0.elapsed());
        }
    }
    worker.stop();
    outcome?;
    let l = samples.latency().ok_or("no samples")?;
    Ok(Run {
        value: l.p50_us,
        detail: format!(
            "{calls} calls; p95 {:.1} µs, p99 {:.1} µs, mean {:.1} µs{}",
            l.p95_us,
            l.p99_us,
            l.mean_us,
            fsyncs.per(before, calls as u64, "call")
        ),
    })
}
