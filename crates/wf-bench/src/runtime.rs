//! Runtime scenarios: tasks per second through the whole engine (`wf_runtime::App`), call to
//! result, next to the store floors measured earlier in the same run.
//!
//! Every scenario calls tasks in batches (call a batch, then wait for every result, checking
//! each) until the measurement's time or operation cap runs out, so a pool never sees an
//! unbounded queue and every counted task really finished:
//!
//! - memory store, a no-op task, a worker pool of 1 and `config.threads` threads, and
//!   `App::run_until_idle` on the calling thread (no pool, no wake-ups);
//! - file store (fsync on), the same task on 4 and 16 worker threads, called from as many caller
//!   threads (a lone caller would wait one fsync per `call`, which measures the disk, not the
//!   engine), with the store's fsyncs and records per fsync;
//! - a workflow executing 10 children one after another (memory): each child costs a submit,
//!   a child execution and a replay of the parent;
//! - one workflow starting 1000 children with `start_task` and joining them with `join_all`
//!   (memory): total time, and time per child.
//!
//! The note gives the wall time per task (1 / rate) and how many memory store round trips
//! (submit + claim + commit on one thread) it is worth: the runtime's overhead over the bare
//! store.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wf_runtime::{App, Task, TaskContext, TaskError};
use wf_store::{FileOptions, FileStore};

use crate::Config;
use crate::report::{Floors, Row, RuntimeRate, Samples, human};
use crate::scratch::ScratchDir;

/// Tasks per measurement at most (the memory store keeps every invocation).
const MAX_TASKS: u64 = 300_000;
/// Tasks called before waiting for their results (split among callers).
const BATCH: u64 = 1_000;
/// Untimed tasks run first, so thread start-up and first allocations are not measured.
const WARM_UP: u64 = 200;
/// Children of the sequential workflow.
const SEQ_CHILDREN: u64 = 10;
/// Sequential workflows per batch, and at most per measurement.
const SEQ_BATCH: u64 = 100;
const MAX_SEQ_WORKFLOWS: u64 = 20_000;
/// Children of the fan-out workflow, and fan-out workflows per measurement at most.
const FAN_OUT: u64 = 1_000;
const MAX_FAN_OUTS: u64 = 50;
/// File store worker pools: a few threads, and many sharing fsyncs.
const FILE_THREADS: &[usize] = &[4, 16];

type Noop = Task<u64, u64>;

/// Who runs the invocations.
#[derive(Clone, Copy)]
enum Exec {
    /// `App::run_until_idle` on the calling thread after each batch.
    Inline,
    /// A worker pool of this many threads.
    Workers(usize),
}

/// How a measurement drives its app.
struct Load<'a> {
    app: &'a App,
    task: &'a Noop,
    /// The result a correct run returns for an argument.
    expect: fn(u64) -> u64,
    callers: usize,
    batch: u64,
}

/// Runs every runtime scenario.
pub(crate) fn run(config: &Config, floors: &mut Floors) -> Result<Vec<Row>, String> {
    let cap = if config.quick {
        MAX_TASKS / 3
    } else {
        MAX_TASKS
    };
    let mut rows = Vec::new();

    // (a) Memory store: pools of 1 and N threads, then inline.
    let mut pool_rate = None;
    for exec in [
        Exec::Workers(1),
        Exec::Workers(config.threads),
        Exec::Inline,
    ] {
        let app = memory_app()?;
        let task = noop(&app)?;
        let load = Load {
            app: &app,
            task: &task,
            expect: |n| n,
            callers: 1,
            batch: BATCH,
        };
        let (tasks, elapsed) = measure(config, &load, exec, cap)?;
        let (name, threads) = match exec {
            Exec::Inline => ("runtime mem: call + run_until_idle", 1),
            Exec::Workers(n) => ("runtime mem: call -> worker -> result", n),
        };
        let row = Row::measured(name, threads, tasks, elapsed, None);
        if let (Exec::Workers(n), Some(rate)) = (exec, row.per_sec) {
            if n == config.threads {
                pool_rate = Some(rate);
            }
            if floors
                .runtime_memory
                .as_ref()
                .is_none_or(|r| rate > r.tasks_per_sec)
            {
                floors.runtime_memory = Some(RuntimeRate {
                    threads: n,
                    tasks_per_sec: rate,
                });
            }
        }
        let note = overhead(row.per_sec, floors);
        rows.push(row.with_note(note));
    }

    // (b) File store, fsync on.
    for &threads in FILE_THREADS {
        rows.push(file_row(config, floors, threads, cap)?);
    }

    // (c) Sequential children.
    rows.push(sequential(config, floors, pool_rate)?);

    // (d) Fan-out.
    rows.push(fan_out(config, floors)?);
    Ok(rows)
}

fn memory_app() -> Result<App, String> {
    App::builder()
        .app_id("wf-bench")
        .memory()
        .build()
        .map_err(|e| format!("cannot build a memory app: {e}"))
}

fn noop(app: &App) -> Result<Noop, String> {
    app.task(
        "bench.noop",
        |_ctx: &TaskContext, n: u64| -> Result<u64, TaskError> { Ok(n) },
    )
    .map_err(|e| format!("cannot register bench.noop: {e}"))
}

/// "X us/task = Y x memory round trip" for a rate of tasks per second.
fn overhead(per_sec: Option<f64>, floors: &Floors) -> String {
    let Some(rate) = per_sec.filter(|r| *r > 0.0) else {
        return String::new();
    };
    let us = 1e6 / rate;
    match floors.memory_round_trips_per_sec {
        Some(f) if f > 0.0 => format!("{us:.2} us/task = {:.1}x memory round trip", us * f / 1e6),
        _ => format!("{us:.2} us/task"),
    }
}

/// Starts the executor, warms up, runs `load` for the configured duration (or `cap` calls),
/// stops the pool. Returns the calls finished and the time they took.
fn measure(
    config: &Config,
    load: &Load<'_>,
    exec: Exec,
    cap: u64,
) -> Result<(u64, Duration), String> {
    measure_with(config, load, exec, cap, || {}).map(|(tasks, elapsed, _)| (tasks, elapsed))
}

/// [`measure`], calling `probe` right before and right after the timed part.
fn measure_with<T>(
    config: &Config,
    load: &Load<'_>,
    exec: Exec,
    cap: u64,
    mut probe: impl FnMut() -> T,
) -> Result<(u64, Duration, (T, T)), String> {
    let worker = match exec {
        Exec::Workers(n) => Some(
            load.app
                .worker()
                .threads(n)
                .start()
                .map_err(|e| format!("cannot start a worker: {e}"))?,
        ),
        Exec::Inline => None,
    };
    let inline = matches!(exec, Exec::Inline);
    let warm = Instant::now() + config.duration;
    drive(load, inline, warm, WARM_UP.min(cap))?;
    let before = probe();
    let start = Instant::now();
    let tasks = drive(load, inline, start + config.duration, cap)?;
    let elapsed = start.elapsed();
    let after = probe();
    if let Some(w) = worker {
        let stats = w.stop();
        if stats.failed + stats.lease_lost > 0 {
            return Err(format!("worker: {stats:?}"));
        }
    }
    Ok((tasks, elapsed, (before, after)))
}

/// `load.callers` threads call in batches until `deadline` or `cap` calls in all.
fn drive(load: &Load<'_>, inline: bool, deadline: Instant, cap: u64) -> Result<u64, String> {
    let callers = load.callers.max(1) as u64;
    let per_caller = (cap / callers).max(1);
    let batch = (load.batch / callers).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..callers)
            .map(|c| s.spawn(move || call_batches(load, inline, c, batch, deadline, per_caller)))
            .collect();
        let mut total = 0;
        for h in handles {
            total += h.join().map_err(|_| "a caller thread panicked")??;
        }
        Ok(total)
    })
}

/// One caller: batches of `batch` calls, each followed by waiting for (and checking) every result.
fn call_batches(
    load: &Load<'_>,
    inline: bool,
    caller: u64,
    batch: u64,
    deadline: Instant,
    cap: u64,
) -> Result<u64, String> {
    let mut done = 0;
    let mut calls = Vec::with_capacity(usize::try_from(batch).unwrap_or(0));
    while done < cap && Instant::now() < deadline {
        let n = batch.min(cap - done);
        for i in 0..n {
            // Distinct arguments per caller and call; small enough that sums do not overflow.
            let arg = (caller << 40) | (done + i);
            let inv = load
                .task
                .call(load.app, arg)
                .map_err(|e| format!("call: {e}"))?;
            calls.push((arg, inv));
        }
        if inline {
            load.app
                .run_until_idle()
                .map_err(|e| format!("run_until_idle: {e}"))?;
        }
        for (arg, inv) in calls.drain(..) {
            let got = inv.result().map_err(|e| format!("result: {e}"))?;
            let want = (load.expect)(arg);
            if got != want {
                return Err(format!("{arg}: got {got}, expected {want}"));
            }
        }
        done += n;
    }
    Ok(done)
}

/// (b) The no-op task on a file store with fsync on, `threads` workers and as many callers.
fn file_row(config: &Config, floors: &mut Floors, threads: usize, cap: u64) -> Result<Row, String> {
    let dir = ScratchDir::new(&config.dir, &format!("runtime-file-{threads}t"))?;
    let store = FileStore::open_with(dir.path(), FileOptions::default())
        .map_err(|e| format!("cannot open a file store in {}: {e}", dir.path().display()))?;
    let store = Arc::new(store);
    let app = App::builder()
        .app_id("wf-bench")
        .store(store.clone())
        .build()
        .map_err(|e| format!("cannot build a file app: {e}"))?;
    let task = noop(&app)?;
    let load = Load {
        app: &app,
        task: &task,
        expect: |n| n,
        callers: threads,
        batch: BATCH,
    };
    let (tasks, elapsed, (before, after)) =
        measure_with(config, &load, Exec::Workers(threads), cap, || store.stats())?;
    drop(app);
    drop(store);
    drop(dir);

    let row = Row::measured(
        "runtime file: call -> worker -> result",
        threads,
        tasks,
        elapsed,
        None,
    );
    let secs = elapsed.as_secs_f64();
    let fsyncs = after.flushes - before.flushes;
    let records = after.records - before.records;
    let mut note = format!(
        "{threads} callers; {} fsync/s, {:.1} records/fsync",
        human(fsyncs as f64 / secs),
        if fsyncs > 0 {
            records as f64 / fsyncs as f64
        } else {
            0.0
        }
    );
    if let Some(rate) = row.per_sec.filter(|r| *r > 0.0) {
        note.push_str(&format!("; {:.1} us/task", 1e6 / rate));
        if floors
            .runtime_file
            .as_ref()
            .is_none_or(|r| rate > r.tasks_per_sec)
        {
            floors.runtime_file = Some(RuntimeRate {
                threads,
                tasks_per_sec: rate,
            });
        }
    }
    let ratio = Floors::ratio(row.per_sec, floors.fsync_per_sec, "fsync floor");
    if !ratio.is_empty() {
        note.push_str("; ");
        note.push_str(&ratio);
    }
    Ok(row.with_note(note))
}

/// (c) Workflows executing [`SEQ_CHILDREN`] children one after another, on a pool of
/// `config.threads` threads. `pool_rate` is the no-op's rate on the same pool, to take the
/// workflow's own execution out of the per-child cost.
fn sequential(config: &Config, floors: &Floors, pool_rate: Option<f64>) -> Result<Row, String> {
    let app = memory_app()?;
    let child = noop(&app)?;
    let workflow = app
        .task(
            "bench.seq",
            move |ctx: &TaskContext, n: u64| -> Result<u64, TaskError> {
                let wf = ctx.wf();
                let mut sum = 0;
                for i in 0..SEQ_CHILDREN {
                    sum += wf.execute_task(&child, n + i)?;
                }
                Ok(sum)
            },
        )
        .map_err(|e| format!("cannot register bench.seq: {e}"))?;
    let load = Load {
        app: &app,
        task: &workflow,
        expect: |n| SEQ_CHILDREN * n + SEQ_CHILDREN * (SEQ_CHILDREN - 1) / 2,
        callers: 1,
        batch: SEQ_BATCH,
    };
    let cap = if config.quick {
        MAX_SEQ_WORKFLOWS / 4
    } else {
        MAX_SEQ_WORKFLOWS
    };
    let (workflows, elapsed) = measure(config, &load, Exec::Workers(config.threads), cap)?;
    let row = Row::measured(
        format!("runtime mem: workflow, {SEQ_CHILDREN} sequential children"),
        config.threads,
        workflows,
        elapsed,
        None,
    );
    let mut note = String::from("ops = workflows");
    if let Some(rate) = row.per_sec.filter(|r| *r > 0.0) {
        let wf_us = 1e6 / rate;
        note.push_str(&format!("; {wf_us:.1} us/workflow"));
        if let Some(plain) = pool_rate.filter(|r| *r > 0.0) {
            let child_us = (wf_us - 1e6 / plain) / SEQ_CHILDREN as f64;
            note.push_str(&format!(
                "; {child_us:.1} us per child (submit, run, replay)"
            ));
            if let Some(f) = floors.memory_round_trips_per_sec {
                note.push_str(&format!(" = {:.1}x memory round trip", child_us * f / 1e6));
            }
        }
    }
    Ok(row.with_note(note))
}

/// (d) One workflow starting [`FAN_OUT`] children and joining them all, repeated for the
/// measurement's duration (at least once), on a pool of `config.threads` threads.
fn fan_out(config: &Config, floors: &Floors) -> Result<Row, String> {
    let app = memory_app()?;
    let child = noop(&app)?;
    let workflow = app
        .task(
            "bench.fan_out",
            move |ctx: &TaskContext, n: u64| -> Result<u64, TaskError> {
                let wf = ctx.wf();
                let handles = (0..FAN_OUT)
                    .map(|i| wf.start_task(&child, n + i))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(wf.join_all(&handles)?.into_iter().sum())
            },
        )
        .map_err(|e| format!("cannot register bench.fan_out: {e}"))?;
    let worker = app
        .worker()
        .threads(config.threads)
        .start()
        .map_err(|e| format!("cannot start a worker: {e}"))?;
    let mut samples = Samples::default();
    let mut runs = 0;
    let start = Instant::now();
    let deadline = start + config.duration;
    let outcome = (|| {
        while runs < MAX_FAN_OUTS && (runs == 0 || Instant::now() < deadline) {
            let n = runs * FAN_OUT;
            let t0 = Instant::now();
            let got = workflow
                .call(&app, n)
                .and_then(|inv| inv.result())
                .map_err(|e| format!("fan-out: {e}"))?;
            samples.push(t0.elapsed());
            let want = FAN_OUT * n + FAN_OUT * (FAN_OUT - 1) / 2;
            if got != want {
                return Err(format!("fan-out returned {got}, expected {want}"));
            }
            runs += 1;
        }
        Ok(())
    })();
    let elapsed = start.elapsed();
    worker.stop();
    outcome?;
    let row = Row::measured(
        format!("runtime mem: workflow, fan-out {FAN_OUT} + join_all"),
        config.threads,
        runs * FAN_OUT,
        elapsed,
        None,
    );
    let mut note = String::from("ops = children");
    if let Some(l) = samples.latency() {
        note.push_str(&format!(
            "; {:.2} ms per workflow (p50 {:.2}, {runs} run(s))",
            l.mean_us / 1e3,
            l.p50_us / 1e3
        ));
    }
    let per_child = overhead(row.per_sec, floors);
    if !per_child.is_empty() {
        note.push_str("; ");
        note.push_str(&per_child.replace("us/task", "us/child"));
    }
    Ok(row.with_note(note))
}
