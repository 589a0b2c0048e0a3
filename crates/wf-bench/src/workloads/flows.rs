//! Workflows: the 200-op workflow with 10 sequential children, long chains of sequential
//! children, and the replay of a long journal.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use wf_runtime::{Invocation, TaskContext, TaskError};

use super::calls::noop;
use super::{LEASE, Run, fresh_store};
use crate::Config;
use crate::backend::{Backend, app_on};
use crate::report::human;

/// Workflows per measurement, and how many are in flight at most.
const WORKFLOWS: u64 = 500;
const IN_FLIGHT: usize = 64;
/// The workflow's deterministic operations and children.
const UUIDS: usize = 100;
const RANDOMS: usize = 100;
const CHILDREN: u64 = 10;
/// Journal entries of the replayed workflow.
pub(crate) const REPLAY_ENTRIES: usize = 10_000;
/// How long a single workflow may take before the bench gives up on it.
pub(crate) const PATIENCE: Duration = Duration::from_secs(600);

/// Worker threads of the workflow workload: two on memory (one per core; more only contend),
/// more on a durable store, where a thread mostly waits for an fsync it shares with the others
/// (group commit).
pub(crate) fn workflow_threads(backend: Backend) -> usize {
    match backend {
        Backend::Memory => 2,
        Backend::File | Backend::Redis => 16,
    }
}

/// Workflows/s of [`WORKFLOWS`] workflows of 100 `uuid()`, 100 `random()` and 10 sequential
/// children, [`IN_FLIGHT`] at a time.
pub(crate) fn workflows(config: &Config, backend: Backend) -> Result<Run, String> {
    let (store, _dir) = fresh_store(config, backend, "workflows")?;
    let (app, fsyncs) = store.app_counting(LEASE, config.inline)?;
    let child = noop(&app)?;
    let flow = app
        .task(
            "bench.flow",
            move |ctx: &TaskContext, n: u64| -> Result<u64, TaskError> {
                let wf = ctx.wf();
                let mut mix = 0u64;
                for _ in 0..UUIDS {
                    mix ^= wf.uuid().as_u64_pair().0;
                }
                for _ in 0..RANDOMS {
                    mix ^= wf.random().to_bits();
                }
                std::hint::black_box(mix);
                let mut sum = 0;
                for i in 0..CHILDREN {
                    sum += wf.execute_task(&child, n + i)?;
                }
                Ok(sum)
            },
        )
        .map_err(|e| format!("cannot register bench.flow: {e}"))?;
    let expect = |n: u64| CHILDREN * n + CHILDREN * (CHILDREN - 1) / 2;
    let threads = workflow_threads(backend);
    let worker = app
        .worker()
        .threads(threads)
        .start()
        .map_err(|e| format!("cannot start a worker: {e}"))?;
    let total = if config.quick {
        WORKFLOWS / 5
    } else {
        WORKFLOWS
    };
    let run = |count: u64, first: u64| -> Result<Duration, String> {
        let start = Instant::now();
        let mut window: VecDeque<(u64, Invocation<u64>)> = VecDeque::new();
        let mut next = 0;
        while next < count || !window.is_empty() {
            while next < count && window.len() < IN_FLIGHT {
                let n = (first + next) * 100;
                let inv = flow.call(&app, n).map_err(|e| format!("call: {e}"))?;
                window.push_back((n, inv));
                next += 1;
            }
            if let Some((n, inv)) = window.pop_front() {
                let got = inv
                    .result_timeout(PATIENCE)
                    .map_err(|e| format!("workflow: {e}"))?;
                if got != expect(n) {
                    return Err(format!(
                        "workflow {n} returned {got}, expected {}",
                        expect(n)
                    ));
                }
            }
        }
        Ok(start.elapsed())
    };
    let mut before = None;
    let outcome = run(IN_FLIGHT as u64, 1_000_000).and_then(|_| {
        before = fsyncs.stats();
        run(total, 0)
    });
    let stats = worker.stop();
    let elapsed = outcome?;
    let rate = total as f64 / elapsed.as_secs_f64();
    Ok(Run {
        value: rate,
        detail: format!(
            "{total} workflows, {threads} worker threads; {:.0} µs/workflow; {} executions{}",
            1e6 / rate,
            human(stats.executed as f64),
            fsyncs.per(before, total, "workflow")
        ),
    })
}

/// The sizes of the long workflows.
pub(crate) fn long_sizes(config: &Config) -> Vec<u64> {
    if config.quick {
        vec![100, 300, 1_000]
    } else {
        vec![100, 1_000, 3_000]
    }
}

/// One measurement of the long workflows.
pub(crate) struct Long {
    pub(crate) longest_secs: f64,
    pub(crate) detail: String,
    pub(crate) ratio: f64,
    pub(crate) ratio_detail: String,
}

/// One workflow of `n` sequential children per size, timed call to result; the growth exponent
/// of time over n, and the longest's time over n x the cost of one child at the smallest size.
pub(crate) fn long(config: &Config, backend: Backend, ns: &[u64]) -> Result<Long, String> {
    long_with(ns, |n| chain(config, backend, n))
}

/// [`long`] with the chain of `n` children timed by `chain`.
pub(crate) fn long_with(
    ns: &[u64],
    mut chain: impl FnMut(u64) -> Result<Duration, String>,
) -> Result<Long, String> {
    let mut secs = Vec::with_capacity(ns.len());
    for &n in ns {
        secs.push(chain(n)?.as_secs_f64());
    }
    let exponent = slope(
        &ns.iter().map(|&n| (n as f64).ln()).collect::<Vec<_>>(),
        &secs.iter().map(|s| s.ln()).collect::<Vec<_>>(),
    );
    let (n0, t0) = (ns[0] as f64, secs[0]);
    let (nl, tl) = (ns[ns.len() - 1] as f64, secs[secs.len() - 1]);
    let per_child_ms = 1e3 * t0 / n0;
    let sizes: Vec<String> = ns
        .iter()
        .zip(&secs)
        .map(|(n, s)| format!("n={}: {s:.3} s", human(*n as f64)))
        .collect();
    Ok(Long {
        longest_secs: tl,
        detail: format!("{}; growth exponent {exponent:.2}", sizes.join(", ")),
        ratio: tl / (nl * t0 / n0),
        ratio_detail: format!(
            "one child = {per_child_ms:.3} ms (n={} / {}); {} x that = {:.3} s",
            human(n0),
            human(n0),
            human(nl),
            nl * t0 / n0
        ),
    })
}

/// The time of one workflow executing `n` children one after another, on a pool of 2 threads.
fn chain(config: &Config, backend: Backend, n: u64) -> Result<Duration, String> {
    let (store, _dir) = fresh_store(config, backend, &format!("long-{n}"))?;
    let app = store.app(LEASE, config.inline)?;
    let child = noop(&app)?;
    let flow = app
        .task(
            "bench.chain",
            move |ctx: &TaskContext, n: u64| -> Result<u64, TaskError> {
                let mut sum = 0;
                for i in 0..n {
                    sum += ctx.wf().execute_task(&child, i)?;
                }
                Ok(sum)
            },
        )
        .map_err(|e| format!("cannot register bench.chain: {e}"))?;
    let worker = app
        .worker()
        .threads(2)
        .start()
        .map_err(|e| format!("cannot start a worker: {e}"))?;
    let run = |n: u64| -> Result<Duration, String> {
        let start = Instant::now();
        let got = flow
            .call(&app, n)
            .and_then(|inv| inv.result_timeout(PATIENCE))
            .map_err(|e| format!("a chain of {n}: {e}"))?;
        if got != n * n.saturating_sub(1) / 2 {
            return Err(format!("a chain of {n} returned {got}"));
        }
        Ok(start.elapsed())
    };
    let outcome = run(10).and_then(|_| run(n));
    worker.stop();
    outcome
}

/// Least-squares slope of `y` over `x`.
fn slope(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let num: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let den: f64 = x.iter().map(|a| (a - mx) * (a - mx)).sum();
    if den == 0.0 { 0.0 } else { num / den }
}

/// The time to execute a workflow again from a journal of [`REPLAY_ENTRIES`] entries: claim
/// (with the journal), replay, commit, on the calling thread.
///
/// The workflow draws [`REPLAY_ENTRIES`] values, then waits for a child of a task its own app
/// does not register (so the child cannot run inline): it suspends. A second app on the same
/// store runs the child, which wakes the workflow; the timed part is the first app running it
/// again, which replays the whole journal.
pub(crate) fn replay(config: &Config, backend: Backend) -> Result<Run, String> {
    let (at, _dir) = fresh_store(config, backend, "replay")?;
    let store = at.open()?;
    let recorder = app_on(store.clone(), LEASE, true)?;
    let helper = app_on(store.clone(), LEASE, true)?;
    let late = helper
        .task(
            "bench.late",
            |_: &TaskContext, (): ()| -> Result<u64, TaskError> { Ok(7) },
        )
        .map_err(|e| format!("cannot register bench.late: {e}"))?;
    let flow = recorder
        .task(
            "bench.replayed",
            move |ctx: &TaskContext, (): ()| -> Result<u64, TaskError> {
                let wf = ctx.wf();
                for _ in 0..REPLAY_ENTRIES / 2 {
                    wf.random();
                    wf.uuid();
                }
                Ok(wf.execute_task(&late, ())?)
            },
        )
        .map_err(|e| format!("cannot register bench.replayed: {e}"))?;
    let inv = flow.call(&recorder, ()).map_err(|e| format!("call: {e}"))?;
    let err = |e: wf_runtime::WfError| e.to_string();
    recorder.run_until_idle().map_err(err)?;
    helper.run_until_idle().map_err(err)?;
    let entries = store.journal(inv.id()).map_err(|e| e.to_string())?.len();
    let start = Instant::now();
    let executed = recorder.run_until_idle().map_err(err)?;
    let elapsed = start.elapsed();
    if executed != 1 || inv.result().map_err(err)? != 7 {
        return Err("the replayed workflow did not finish in one execution".to_owned());
    }
    Ok(Run {
        value: elapsed.as_secs_f64() * 1e3,
        detail: format!(
            "{} journal entries replayed; claim with the journal + replay + commit",
            human(entries as f64)
        ),
    })
}
