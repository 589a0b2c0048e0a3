//! Attacks on the idle sync (branch file-idle) merged with the narrowed wake-ups of the log
//! (branch file-workflow): threads claiming (written, not synced), committing pipelined and
//! durably, reading and compacting, beside an idle syncer that syncs as soon as it sees
//! anything unsynced, must never leave a waiter asleep; the store must then drop (joining the
//! syncer) and reopen whole.

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
                if n % 2 == 0 {
                    store.commit_pipelined(&claim.lease, commit_of(m), at(3)).unwrap();
                } else {
                    store.commit(&claim.lease, commit_of(m), at(3)).unwrap();
                }
                if n % 5 == 0 {
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
