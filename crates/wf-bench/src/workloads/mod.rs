//! The workloads of issue 15 on each backend, each beside its floor and target:
//!
//! | workload | module | primary value |
//! |---|---|---|
//! | burst: 20,000 no-op tasks submitted at once by one producer (`call_many`), 2 worker threads | [`procs`] (a child process) | tasks/s |
//! | peak RSS of that worker process | [`procs`] | MB (`VmHWM`) |
//! | latency: 2,000 sequential call → result, 2 idle worker threads | [`calls`] | p50 µs (p95, p99 in details) |
//! | workflow: 100 `uuid()` + 100 `random()` + 10 sequential `execute_task` children; 500 of them, 64 in flight | [`flows`] | workflows/s |
//! | long workflow: n = 100, 1,000, 3,000 sequential children, one workflow at a time | [`flows`] | total time of n = 3,000; ratio to 3,000 x one child |
//! | async long workflow: the same, async bodies on an async worker (the body parked while each child runs) | [`async_flows`] | total time of n = 3,000; body starts; ratio |
//! | replay: a workflow with a 10,000-entry journal executed again from it | [`flows`] | ms |
//! | recovery: a worker process killed with SIGKILL mid-task; a new process finishes it | [`procs`] | s until the result |
//!
//! Each workload runs `--runs` times (3 by default, 1 with `--quick`); the table shows the
//! median and the spread.

mod async_flows;
mod calls;
mod flows;
pub(crate) mod procs;

use std::time::Duration;

use crate::backend::{Backend, StoreAt};
use crate::report::{Floors, Measurement, human};
use crate::scratch::ScratchDir;
use crate::{Config, targets};

/// The lease of the bench's apps (the default's); recovery uses its own, shorter one.
pub(crate) const LEASE: Duration = Duration::from_secs(5);

/// One measurement of a workload: its primary value and facts for the details column.
pub(crate) struct Run {
    pub(crate) value: f64,
    pub(crate) detail: String,
}

/// Runs every workload on `backend` and appends its rows.
pub(crate) fn run(config: &Config, floors: &Floors, backend: Backend, rows: &mut Vec<Measurement>) {
    if let Some(why) = backend.unavailable(config.redis.as_deref()) {
        let mut m = Measurement::new("all workloads", backend.name(), "");
        m.note = format!("skipped: {why}");
        rows.push(m);
        return;
    }
    let name = backend.name();
    let (floor_rt, floor_fsync) = floor_texts(floors);
    let floor = match backend {
        Backend::Memory => floor_rt.unwrap_or_default(),
        Backend::File => floor_fsync.unwrap_or_default(),
        Backend::Redis => floors
            .redis_evalsha_4
            .map(|r| format!("{} EVALSHA/s (4 clients)", human(r)))
            .unwrap_or_default(),
    };
    let floor_rate = match backend {
        Backend::Memory => floors.memory_round_trips_per_sec,
        Backend::File => floors.fsync_per_sec,
        Backend::Redis => floors.redis_evalsha_4,
    };
    let floor_unit = match backend {
        Backend::Memory => "round trips",
        Backend::File => "fsync rate",
        Backend::Redis => "EVALSHA rate",
    };

    // Burst and RSS: one child process per run gives both.
    if config.wants("burst") {
        burst_rows(
            config, floors, backend, &floor, floor_rate, floor_unit, rows,
        );
    }
    if config.wants("latency") {
        latency_row(config, floors, backend, rows);
    }
    if config.wants("workflow") {
        let mut workflows = repeat(
            config,
            "workflow: 100 uuid + 100 random + 10 sequential children, 64 in flight",
            name,
            "workflows/s",
            || flows::workflows(config, backend),
        );
        workflows.floor = floor.clone();
        workflows.vs_floor = Floors::ratio(workflows.median(), floor_rate, floor_unit);
        workflows.target = targets::workflows(backend, floors);
        rows.push(workflows);
    }
    if config.wants("long") {
        long_rows(config, backend, rows);
    }
    if config.wants("async") {
        async_rows(config, backend, rows);
    }
    if config.wants("replay") {
        let mut replay = repeat(
            config,
            format!(
                "replay: a workflow with a {}-entry journal executed again",
                human(flows::REPLAY_ENTRIES as f64)
            ),
            name,
            "ms",
            || flows::replay(config, backend),
        );
        replay.target = Some(targets::replay_ms(backend));
        rows.push(replay);
    }
    if config.wants("recovery") {
        recovery_row(config, backend, rows);
    }
}

fn burst_rows(
    config: &Config,
    floors: &Floors,
    backend: Backend,
    floor: &str,
    floor_rate: Option<f64>,
    floor_unit: &str,
    rows: &mut Vec<Measurement>,
) {
    let name = backend.name();
    let mut burst = Measurement::new(
        format!(
            "burst: {} tasks, 1 producer, 2 worker threads",
            human(procs::BURST as f64)
        ),
        name,
        "tasks/s",
    );
    let mut rss = Measurement::new("worker peak RSS under the burst", name, "MB");
    for _ in 0..config.runs {
        match procs::burst(config, backend) {
            Ok((b, r)) => {
                burst.values.push(b.value);
                burst.detail = b.detail;
                rss.values.push(r.value);
                rss.detail = r.detail;
            }
            Err(e) => {
                burst.note = format!("failed: {e}");
                rss.note = "failed with the burst".to_owned();
                break;
            }
        }
    }
    burst.floor = floor.to_owned();
    burst.vs_floor = Floors::ratio(burst.median(), floor_rate, floor_unit);
    burst.target = targets::burst(backend, floors);
    rss.target = Some(targets::rss_mb(backend));
    rows.push(burst);
    rows.push(rss);
}

fn latency_row(config: &Config, floors: &Floors, backend: Backend, rows: &mut Vec<Measurement>) {
    let name = backend.name();
    let (floor_rt, floor_fsync) = floor_texts(floors);
    let mut latency = repeat(
        config,
        "latency: sequential call → result, p50",
        name,
        "µs",
        || calls::latency(config, backend),
    );
    latency.floor = match backend {
        Backend::Memory => floor_rt.clone().unwrap_or_default(),
        Backend::File => floor_fsync.clone().unwrap_or_default(),
        Backend::Redis => floors
            .redis_evalsha_1
            .map(|r| format!("EVALSHA round trip {:.0} µs", 1e6 / r))
            .unwrap_or_default(),
    };
    let floor_us = match backend {
        Backend::Memory => floors.memory_round_trips_per_sec,
        Backend::File => floors.fsync_per_sec,
        Backend::Redis => floors.redis_evalsha_1,
    }
    .map(|r| 1e6 / r);
    latency.vs_floor = Floors::ratio(latency.median(), floor_us, "the floor");
    latency.target = targets::latency_p50(backend, floors);
    rows.push(latency);
}

/// Long workflows: the total time of the longest, and its ratio to n x one child.
fn long_rows(config: &Config, backend: Backend, rows: &mut Vec<Measurement>) {
    let name = backend.name();
    let ns = flows::long_sizes(config);
    let longest = ns[ns.len() - 1];
    let mut total = Measurement::new(
        format!(
            "long workflow: {} sequential children",
            human(longest as f64)
        ),
        name,
        "s",
    );
    let mut ratio = Measurement::new(
        format!(
            "long workflow: {} children vs {} x one child",
            human(longest as f64),
            human(longest as f64)
        ),
        name,
        "x",
    );
    for _ in 0..config.runs {
        match flows::long(config, backend, &ns) {
            Ok(l) => {
                total.values.push(l.longest_secs);
                total.detail = l.detail.clone();
                ratio.values.push(l.ratio);
                ratio.detail = l.ratio_detail;
            }
            Err(e) => {
                total.note = format!("failed: {e}");
                break;
            }
        }
    }
    ratio.target = Some(targets::long_ratio());
    rows.push(total);
    rows.push(ratio);
}

/// Async long workflows: the total time of the longest (body starts in the details), and its
/// ratio to n x one child.
fn async_rows(config: &Config, backend: Backend, rows: &mut Vec<Measurement>) {
    let name = backend.name();
    let ns = flows::long_sizes(config);
    let longest = human(ns[ns.len() - 1] as f64);
    let mut total = Measurement::new(
        format!("async long workflow: {longest} sequential children, parked"),
        name,
        "s",
    );
    let mut ratio = Measurement::new(
        format!("async long workflow: {longest} children vs {longest} x one child"),
        name,
        "x",
    );
    for _ in 0..config.runs {
        match async_flows::long(config, backend, &ns) {
            Ok(l) => {
                total.values.push(l.longest_secs);
                total.detail = l.detail.clone();
                ratio.values.push(l.ratio);
                ratio.detail = l.ratio_detail;
            }
            Err(e) => {
                total.note = format!("failed: {e}");
                break;
            }
        }
    }
    ratio.target = Some(targets::long_ratio());
    rows.push(total);
    rows.push(ratio);
}

/// Recovery (processes sharing a durable store).
fn recovery_row(config: &Config, backend: Backend, rows: &mut Vec<Measurement>) {
    let name = backend.name();
    let mut recovery = Measurement::new(
        "recovery: worker process killed (SIGKILL) mid-task, time until the result",
        name,
        "s",
    );
    if backend == Backend::Memory {
        recovery.note = "n/a: a memory store dies with its process".to_owned();
    } else {
        for _ in 0..config.runs {
            match procs::recovery(config, backend) {
                Ok(r) => {
                    recovery.values.push(r.value);
                    recovery.detail = r.detail;
                }
                Err(e) => {
                    recovery.note = format!("failed: {e}");
                    break;
                }
            }
        }
        recovery.target = Some(targets::recovery_secs(procs::RECOVERY_LEASE.as_secs_f64()));
    }
    rows.push(recovery);
}

/// The memory and disk floors as the floor column shows them.
fn floor_texts(floors: &Floors) -> (Option<String>, Option<String>) {
    (
        floors
            .memory_round_trips_per_sec
            .map(|r| format!("memory round trip {:.2} µs", 1e6 / r)),
        floors
            .fsync_per_sec
            .map(|r| format!("{} fsync/s ({:.0} µs)", human(r), 1e6 / r)),
    )
}

/// Runs `measure` `config.runs` times into one row; a failure ends the repeats with a note.
fn repeat(
    config: &Config,
    workload: impl Into<String>,
    backend: &'static str,
    unit: &'static str,
    mut measure: impl FnMut() -> Result<Run, String>,
) -> Measurement {
    let mut m = Measurement::new(workload, backend, unit);
    for _ in 0..config.runs {
        match measure() {
            Ok(run) => {
                m.values.push(run.value);
                m.detail = run.detail;
            }
            Err(e) => {
                m.note = format!("failed: {e}");
                break;
            }
        }
    }
    m
}

/// A fresh store of `backend` for one measurement, with the scratch directory that must outlive
/// it (removed when dropped).
pub(crate) fn fresh_store(
    config: &Config,
    backend: Backend,
    what: &str,
) -> Result<(StoreAt, ScratchDir), String> {
    let dir = ScratchDir::new(&config.dir, &format!("{what}-{}", backend.name()))?;
    let at = StoreAt::new(backend, &dir.path().join("store"), config.redis.as_deref());
    Ok((at, dir))
}
