//! Attacks on the idle sync (branch file-idle) merged with the narrowed wake-ups of the log
//! (branch file-workflow): threads claiming (written, not synced), committing pipelined and
//! durably, reading and compacting, beside an idle syncer that syncs as soon as it sees
//! anything unsynced, must never leave a waiter asleep; the store must then drop (joining the
//! syncer) and reopen whole. A store dropped while its syncer is inside an fsync closes whole,
//! and a failed background fsync stops the store as a foreground one does. (All of these held
//! when written; the `errseq` file system is `file_pipelined.rs`'s, with a knob that fails the
//! second handle's sync, which is the one the idle syncer's flush goes through.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod file_common;

use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use file_common::*;
use wf_core::{Status, WorkerId};
use wf_store::{FileOptions, FileStore, StoreRead, StoreWork};

const LEASE: Duration = Duration::from_secs(600);
/// Only a waiter that sleeps forever takes this long.
const PATIENCE: Duration = Duration::from_secs(300);

#[test]
fn mixed_waiters_with_an_eager_idle_syncer_and_compactions_never_hang() {
    let dir = tempfile::tempdir().unwrap();
    let options = FileOptions::default()
        .idle_sync(Some(Duration::ZERO))
        .compact_min_bytes(32 << 10);
    let store = Arc::new(FileStore::open_with(dir.path(), options).unwrap());
    let (done, finished) = mpsc::channel();
    let threads = 8u64;
    let per = 300u64;
    let mut handles = Vec::new();
    for t in 0..threads {
        let store = Arc::clone(&store);
        let done = done.clone();
        handles.push(std::thread::spawn(move || {
            for i in 0..per {
                let n = t * per + i;
                store.submit(root(n), at(1)).unwrap();
                let claim = store
                    .claim(&WorkerId::new("w"), &workload_tasks(), LEASE, at(2))
                    .unwrap()
                    .expect("at least this thread's submission");
                let m = number(&claim.record);
                if n.is_multiple_of(2) {
                    store
                        .commit_pipelined(&claim.lease, commit_of(m), at(3))
                        .unwrap();
                } else {
                    store.commit(&claim.lease, commit_of(m), at(3)).unwrap();
                }
                if n.is_multiple_of(5) {
                    // A read waits for what it saw to be durable.
                    let _ = store.invocation(root(m).id).unwrap();
                }
            }
            done.send(()).unwrap();
        }));
    }
    drop(done);
    let deadline = Instant::now() + PATIENCE;
    for _ in 0..threads {
        let left = deadline.saturating_duration_since(Instant::now());
        finished
            .recv_timeout(left)
            .expect("a thread still waits for the log after the patience ran out: a lost wake-up");
    }
    for h in handles {
        h.join().unwrap();
    }
    let store = Arc::into_inner(store).expect("every thread is done");
    drop(store);
    let store = FileStore::open(dir.path()).unwrap();
    assert!(store.torn_tail().is_none());
    for n in 0..threads * per {
        let record = store.invocation(root(n).id).unwrap();
        assert_eq!(record.status(), Status::Success, "invocation {n}");
        assert!(check_whole(&store, &record));
    }
}

/// The store is dropped while its idle syncer is inside an fsync (blocked in the file system):
/// the drop waits for that sync and joins the thread before its own closing flush and before
/// the log's lock is let go, so the store reopens whole, with the pipelined commit in it.
#[test]
fn a_store_dropped_while_its_idle_syncer_is_in_an_fsync_closes_whole() {
    let dir = tempfile::tempdir().unwrap();
    let fs = errseq::ErrseqFs::default();
    let options = FileOptions::default()
        .file_system(Arc::new(fs.clone()))
        .idle_sync(Some(Duration::from_millis(1)));
    let store = FileStore::open_with(dir.path(), options).unwrap();
    store.submit(root(1), at(1)).unwrap();
    fs.set(|k| k.block_clone_sync = true);
    let claim = store
        .claim(&WorkerId::new("w"), &workload_tasks(), LEASE, at(2))
        .unwrap()
        .unwrap();
    store
        .commit_pipelined(&claim.lease, commit_of(1), at(3))
        .unwrap();
    // Only the idle syncer syncs now: it blocks in the file system.
    fs.wait_until("the idle syncer's fsync", |k| k.clone_sync_waiting);
    let dropper = std::thread::spawn(move || drop(store));
    // Whether or not the drop reached the join yet, it must wait for the sync, not hang.
    fs.set(|k| k.block_clone_sync = false);
    dropper.join().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    assert!(store.torn_tail().is_none());
    let record = store.invocation(root(1).id).unwrap();
    assert_eq!(record.status(), Status::Success);
    assert!(check_whole(&store, &record));
}

/// The idle syncer's fsync fails (EIO): the store stops as after a foreground failure, a
/// thread blocked in `wait_final` wakes to the failure, and the next operation is told to
/// reopen the store; the reopened store has what was synced and nothing half-written.
#[test]
fn an_idle_syncers_failed_fsync_stops_the_store_and_is_reported_to_the_next_caller() {
    let dir = tempfile::tempdir().unwrap();
    let fs = errseq::ErrseqFs::default();
    let options = FileOptions::default()
        .file_system(Arc::new(fs.clone()))
        .idle_sync(Some(Duration::from_millis(1)));
    let store = Arc::new(FileStore::open_with(dir.path(), options).unwrap());
    store.submit(root(1), at(1)).unwrap();
    store.submit(root(2), at(1)).unwrap();
    let waiter = std::thread::spawn({
        let store = Arc::clone(&store);
        move || store.wait_final(root(2).id, PATIENCE)
    });
    let claim = store
        .claim(&WorkerId::new("w"), &workload_tasks(), LEASE, at(2))
        .unwrap()
        .unwrap();
    // Only now: the claim returned once durable, so nothing is left for the idle syncer until
    // the pipelined commit (armed before the claim, the syncer could fail on the claim's record
    // first and the commit would rightly be refused).
    fs.set(|k| k.fail_clone_sync = true);
    store
        .commit_pipelined(&claim.lease, commit_of(number(&claim.record)), at(3))
        .unwrap();
    fs.wait_until("the idle syncer's failed fsync", |k| k.clone_sync_failed);
    let started = Instant::now();
    let waited = waiter.join().unwrap();
    assert!(
        waited.is_err(),
        "wait_final must end with the failure: {waited:?}"
    );
    assert!(
        started.elapsed() < PATIENCE / 2,
        "woken by the failure, not its timeout"
    );
    let next = store.submit(root(3), at(4));
    let message = format!("{:?}", next.expect_err("the store stopped"));
    assert!(message.contains("reopen the store"), "{message}");
    drop(Arc::into_inner(store).unwrap());
    let store = FileStore::open(dir.path()).unwrap();
    for n in [1, 2] {
        // Finished exactly as committed, or untouched: never half-written.
        check_whole(&store, &store.invocation(root(n).id).unwrap());
    }
}
