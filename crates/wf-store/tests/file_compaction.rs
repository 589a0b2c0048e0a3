//! Compaction, retention and group commit of the file backend.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod file_common;

use std::fs;
use std::sync::Arc;
use std::time::Duration;

use file_common::*;
use wf_core::{Status, WorkerId};
use wf_store::{
    Commit, FileOptions, FileStore, Outcome, Store, StoreAdmin, StoreError, StoreRead, StoreWork,
};

fn log_len(dir: &std::path::Path) -> u64 {
    fs::metadata(log_path(dir)).unwrap().len()
}

#[test]
fn retention_keeps_the_log_bounded_under_steady_load() {
    const WORKFLOWS: u64 = 4000;
    let dir = tempfile::tempdir().unwrap();
    let options = FileOptions::default()
        .compact_min_bytes(64 << 10)
        .retention(Duration::from_millis(200));
    let store = FileStore::open_with(dir.path(), options.clone()).unwrap();
    let mut largest = 0;
    // The operations' clock advances 1 ms per workflow: about 200 stay within retention.
    for n in 0..WORKFLOWS {
        run_one(&store, n, at(n));
        largest = largest.max(log_len(dir.path()));
    }
    let stats = store.stats();
    let appended = fs::metadata(log_path(dir.path())).unwrap().len();
    println!("{stats:?}, largest log {largest} bytes, now {appended}");
    assert!(stats.compactions >= 5, "{stats:?}");
    // Unbounded this would be over 2 MB; bounded it stays near 2 x max(64 KiB, live state).
    assert!(largest < 512 << 10, "the log grew to {largest} bytes");
    drop(store);

    let store = FileStore::open_with(dir.path(), options).unwrap();
    let kept = store.workflows().unwrap();
    assert!(kept.len() < 400, "{} workflows kept", kept.len());
    for record in &kept {
        assert!(check_whole(&store, record));
    }
    assert_eq!(
        store.invocation(root(WORKFLOWS - 1).id).unwrap().status(),
        Status::Success
    );
    assert!(matches!(
        store.invocation(root(0).id),
        Err(StoreError::InvocationNotFound(_))
    ));
}

#[test]
fn purge_finished_reclaims_space_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    for n in 0..100 {
        run_one(&store, n, at(n));
    }
    store.submit(root(1000), at(200)).unwrap();
    let before = log_len(dir.path());
    assert_eq!(store.purge_finished(at(150)).unwrap(), 100);
    let after = log_len(dir.path());
    assert!(after * 20 < before, "{before} -> {after} bytes");
    drop(store);

    let store = FileStore::open(dir.path()).unwrap();
    assert_eq!(store.counts().unwrap().total(), 1);
    assert_eq!(claim_and_finish(&store, "w", at(300)), Some(1000));
}

/// Everything a reader can see, for comparing two stores.
fn everything(store: &dyn Store) -> String {
    let mut out = format!("{:?}\n", store.counts().unwrap());
    for wf in store.workflows().unwrap() {
        let wf = wf.id();
        out += &format!("{:?}\n", store.data_keys(wf).unwrap());
        for k in store.data_keys(wf).unwrap() {
            out += &format!("{k}={:?}\n", store.get_data(wf, &k).unwrap());
        }
        for id in store.workflow_invocations(wf).unwrap() {
            out += &format!(
                "{:?}\n{:?}\n",
                store.invocation(id).unwrap(),
                store.journal(id).unwrap()
            );
        }
    }
    out
}

#[test]
fn compaction_and_reopen_keep_every_state() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    let w = WorkerId::new("w");
    let lease = Duration::from_secs(60);
    for n in 0..5 {
        run_one(&store, n, at(n));
    }
    // A parent waiting on a child, a delayed invocation, a running one with a lease.
    let parent = root(10);
    store.submit(parent.clone(), at(10)).unwrap();
    let claim = store
        .claim(&w, &workload_tasks(), lease, at(11))
        .unwrap()
        .unwrap();
    assert_eq!(claim.record.id(), parent.id);
    let kid = child_of(11, &parent);
    store
        .commit(
            &claim.lease,
            Commit {
                journal: journal_of(10),
                data: data_of(10),
                children: vec![kid.clone()],
                outcome: Outcome::Waiting { on: vec![kid.id] },
                ..Commit::outcome(Outcome::Released)
            },
            at(12),
        )
        .unwrap();
    let mut delayed = root(20);
    delayed.not_before = Some(at(1_000));
    store.submit(delayed.clone(), at(13)).unwrap();
    let running = store
        .claim(&w, &workload_tasks(), lease, at(14))
        .unwrap()
        .unwrap();
    assert_eq!(running.record.id(), kid.id);

    let before = everything(&store);
    store.compact().unwrap();
    assert_eq!(everything(&store), before);
    assert_eq!(store.stats().compactions, 1);
    drop(store);

    let store = FileStore::open(dir.path()).unwrap();
    assert_eq!(everything(&store), before);
    // The lease taken before the compaction and the reopen still commits, and wakes the parent.
    store
        .commit(
            &running.lease,
            Commit::outcome(Outcome::Success(b"kid".to_vec())),
            at(15),
        )
        .unwrap();
    assert_eq!(
        store.invocation(parent.id).unwrap().status(),
        Status::Pending
    );
    assert_eq!(
        store
            .claim(&w, &workload_tasks(), lease, at(16))
            .unwrap()
            .unwrap()
            .record
            .id(),
        parent.id
    );
    assert!(
        store
            .claim(&w, &workload_tasks(), lease, at(17))
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store
            .claim(&w, &workload_tasks(), lease, at(1_000))
            .unwrap()
            .unwrap()
            .record
            .id(),
        delayed.id
    );
}

#[test]
fn concurrent_commits_are_all_there_after_a_reopen() {
    const THREADS: u64 = 8;
    const EACH: u64 = 100;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStore::open(dir.path()).unwrap());
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                for i in 0..EACH {
                    run_one(&*store, t * EACH + i, at(i));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // How often concurrent operations share an fsync depends on scheduling: `cargo xtask
    // bench` measures it (the file store's group-commit rows). What must hold whatever the
    // schedule, every acknowledged operation covered by an fsync, is pinned by
    // `file_fsync::every_acknowledged_operation_is_covered_by_an_fsync`; here, that all of it
    // is there after a reopen.
    drop(store);
    let store = FileStore::open(dir.path()).unwrap();
    assert_eq!(store.counts().unwrap().get(Status::Success), THREADS * EACH);
}
