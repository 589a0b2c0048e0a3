//! File store scenarios: durable round trips and group commit, judged against the disk's raw
//! fsync rate measured by [`crate::disk`] in the same run.
//!
//! A round trip is the memory scenario's loop (`submit`, `claim`, `commit`; see
//! [`crate::memory`]) on a `wf_store::FileStore` with fsync on, in a fresh directory per thread
//! count. Per task the store appends three log records: the submit and the commit each wait for
//! an fsync, the claim is written without one and becomes durable with the next batch. One
//! thread therefore needs about two fsyncs per task; with many threads, concurrent operations
//! share one fsync (group commit), and the note shows it:
//!
//! - `fsync/s`: fsyncs the store issued per second (`FileStats::flushes`);
//! - `records/fsync`: log records (durable operations) per fsync, the group-commit factor;
//! - `records/s`: durable operations per second;
//! - `x fsync floor`: tasks (= commits) per second over the raw `write + fsync` rate. Above 1,
//!   the store commits faster than one fsync per commit.
//!
//! The store's fsync rate can exceed the floor's: the floor appends 4 KiB per fsync (a new block
//! each time), the store appends a few hundred bytes, mostly inside an already allocated block,
//! which ext4 syncs faster.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wf_store::{FileOptions, FileStore};

use crate::Config;
use crate::memory::round_trips_on_threads;
use crate::report::{FileFloor, Floors, Row, Samples, human};
use crate::scratch::ScratchDir;

/// Thread counts measured: one thread (no sharing possible) up to many concurrent committers.
const THREADS: &[usize] = &[1, 4, 8, 16];
/// Round trips per measurement at most (all threads together).
const MAX_ROUND_TRIPS: u64 = 200_000;

/// What one measurement produced.
struct Measured {
    tasks: u64,
    elapsed: Duration,
    samples: Samples,
    records: u64,
    fsyncs: u64,
    compactions: u64,
}

/// Runs the round trips on 1, 4, 8 and 16 threads.
pub(crate) fn run(config: &Config, floors: &mut Floors) -> Result<Vec<Row>, String> {
    let cap = if config.quick {
        MAX_ROUND_TRIPS / 4
    } else {
        MAX_ROUND_TRIPS
    };
    let mut rows = Vec::new();
    for &threads in THREADS {
        let dir = ScratchDir::new(&config.dir, &format!("file-store-{threads}t"))?;
        let m = measure(config, &dir, threads, cap)?;
        drop(dir);
        let row = Row::measured(
            "file: submit+claim+commit, fsync",
            threads,
            m.tasks,
            m.elapsed,
            m.samples.latency(),
        );
        let secs = m.elapsed.as_secs_f64();
        let per_fsync = if m.fsyncs > 0 {
            m.records as f64 / m.fsyncs as f64
        } else {
            0.0
        };
        let mut note = format!(
            "{} fsync/s, {per_fsync:.1} records/fsync, {} records/s",
            human(m.fsyncs as f64 / secs),
            human(m.records as f64 / secs),
        );
        let ratio = Floors::ratio(row.per_sec, floors.fsync_per_sec, "fsync floor");
        if !ratio.is_empty() {
            note.push_str("; ");
            note.push_str(&ratio);
        }
        if m.compactions > 0 {
            note.push_str(&format!("; {} compaction(s)", m.compactions));
        }
        if let Some(tasks_per_sec) = row.per_sec {
            let better = floors
                .file_store
                .as_ref()
                .is_none_or(|f| tasks_per_sec > f.tasks_per_sec);
            if better {
                floors.file_store = Some(FileFloor {
                    threads,
                    tasks_per_sec,
                    records_per_fsync: per_fsync,
                });
            }
        }
        rows.push(row.with_note(note));
    }
    Ok(rows)
}

/// `threads` threads doing round trips on one store in `dir` for the configured duration.
fn measure(
    config: &Config,
    dir: &ScratchDir,
    threads: usize,
    cap: u64,
) -> Result<Measured, String> {
    let store = FileStore::open_with(dir.path(), FileOptions::default())
        .map_err(|e| format!("cannot open a file store in {}: {e}", dir.path().display()))?;
    let store = Arc::new(store);
    let before = store.stats();
    let start = Instant::now();
    let deadline = start + config.duration;
    let runs = round_trips_on_threads(&store, threads, deadline, cap)?;
    let elapsed = start.elapsed();
    let mut tasks = 0;
    let mut samples = Samples::default();
    for run in runs {
        tasks += run.round_trips;
        samples.merge(run.round_trip);
    }
    let after = store.stats();
    Ok(Measured {
        tasks,
        elapsed,
        samples,
        records: after.records - before.records,
        fsyncs: after.flushes - before.flushes,
        compactions: after.compactions - before.compactions,
    })
}
