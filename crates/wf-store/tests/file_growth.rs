//! Measures how a file store grows with finished work (issue 11, defect 6): memory per finished
//! invocation, reopen time, and the longest stall another caller sees while `purge_finished`
//! removes all of it. Not a test: it asserts nothing about time and runs only when asked:
//!
//! ```text
//! cargo test --release -p wf-store --test file_growth -- --ignored --nocapture
//! ```
//!
//! `WF_GROWTH_N` sets the number of invocations (default 100 000). The store is created in this
//! process (memory measured as the growth of the resident set while it fills); the reopen and
//! the purge run in a fresh child process, so memory freed by the first store cannot hide what
//! the reopened one takes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use wf_core::{CallId, InvocationId, TaskId, Timestamp, WorkerId, WorkflowIdentity};
use wf_store::{
    Commit, FileOptions, FileStore, NewInvocation, Outcome, StoreAdmin, StoreWork, TaskSet,
};

const REOPEN: &str = "WF_GROWTH_REOPEN";

/// Resident set size of this process, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

fn options() -> FileOptions {
    // Keep everything (what is measured is what a store holds without retention), no fsync
    // (the disk is not what is measured).
    FileOptions::default().sync(false).keep_everything()
}

fn new_root(n: u64) -> NewInvocation {
    let id = InvocationId::from_u128(u128::from(n) + 1);
    let task = TaskId::new("tiny");
    NewInvocation {
        id,
        task: task.clone(),
        call: CallId::of(&task, b"1"),
        args: b"1".to_vec(),
        identity: WorkflowIdentity::new_workflow(id, task),
        parent: None,
        not_before: None,
        max_recoveries: 3,
    }
}

#[test]
#[ignore = "a measurement: run it with --ignored --nocapture"]
fn growth() {
    if let Ok(dir) = std::env::var(REOPEN) {
        reopen_and_purge(std::path::Path::new(&dir));
        return;
    }
    let n: u64 = std::env::var("WF_GROWTH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let t0 = Timestamp(1_767_225_600_000);
    let tasks = TaskSet::new([TaskId::new("tiny")]);
    let worker = WorkerId::new("w");
    let store = FileStore::open_with(dir.path(), options()).unwrap();
    let before = rss();
    let started = Instant::now();
    for i in 0..n {
        let now = Timestamp(t0.0 + i);
        store.submit(new_root(i), now).unwrap();
        let c = store
            .claim(&worker, &tasks, Duration::from_secs(60), now)
            .unwrap()
            .unwrap();
        store
            .commit(
                &c.lease,
                Commit::outcome(Outcome::Success(b"2".to_vec())),
                now,
            )
            .unwrap();
    }
    let grown = rss().saturating_sub(before);
    println!(
        "created {n} finished invocations in {:.2} s; resident set grew {:.1} MiB: {} bytes per \
         finished invocation",
        started.elapsed().as_secs_f64(),
        grown as f64 / f64::from(1 << 20),
        grown / n
    );
    drop(store);
    let me = std::env::current_exe().unwrap();
    let status = std::process::Command::new(me)
        .args(["--ignored", "--exact", "growth", "--nocapture"])
        .env(REOPEN, dir.path())
        .env("WF_GROWTH_N", n.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// In a fresh process: reopen (timed, memory measured) and purge everything while another
/// thread measures how long its reads wait.
fn reopen_and_purge(dir: &std::path::Path) {
    let n: u64 = std::env::var("WF_GROWTH_N").unwrap().parse().unwrap();
    let before = rss();
    let started = Instant::now();
    let store = Arc::new(FileStore::open_with(dir, options()).unwrap());
    let reopen = started.elapsed();
    let grown = rss().saturating_sub(before);
    println!(
        "reopened in {:.3} s; the reopened store holds {:.1} MiB: {} bytes per finished \
         invocation",
        reopen.as_secs_f64(),
        grown as f64 / f64::from(1 << 20),
        grown / n
    );
    let done = Arc::new(AtomicBool::new(false));
    let (reading, probe_reads) = std::sync::mpsc::channel();
    let probe = {
        let (store, done) = (store.clone(), done.clone());
        std::thread::spawn(move || {
            // `next_due` takes the store's lock and waits for nothing else (no log flush), so
            // how long it takes is how long the lock was held by someone else.
            let tasks = TaskSet::new([TaskId::new("tiny")]);
            let mut longest = Duration::ZERO;
            let mut reads = 0u64;
            while !done.load(Ordering::Acquire) {
                let t = Instant::now();
                store.next_due(&tasks).unwrap();
                longest = longest.max(t.elapsed());
                if reads == 0 {
                    let _ = reading.send(());
                }
                reads += 1;
            }
            (longest, reads)
        })
    };
    // The probe reads before the purge takes the lock.
    probe_reads.recv().unwrap();
    let started = Instant::now();
    let purged = store.purge_finished(Timestamp(u64::MAX)).unwrap();
    let took = started.elapsed();
    done.store(true, Ordering::Release);
    let (longest, reads) = probe.join().unwrap();
    println!(
        "purge_finished removed {purged} workflows in {:.3} s; the longest a concurrent \
         next_due waited for the store's lock (the longest single hold): {:.1} ms over {reads} \
         calls",
        took.as_secs_f64(),
        longest.as_secs_f64() * 1e3
    );
}
