//! What the file backend lets callers see, and when: nothing final is handed out before it is
//! durable.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod file_common;

use std::time::Duration;

use file_common::at;
use wf_core::{FailureKind, Status, WorkerId};
use wf_store::conformance::fixtures::{child, root, tasks};
use wf_store::{Commit, FileOptions, FileStore, Outcome, StoreRead, StoreWork};

#[test]
fn a_claim_that_fails_a_crash_looping_child_and_wakes_its_parent_is_durable_before_it_is_seen() {
    let dir = tempfile::tempdir().unwrap();
    // Only the operations sync: a flush counted below is the claim's.
    let store = FileStore::open_with(dir.path(), FileOptions::default().idle_sync(None)).unwrap();
    let parent = root(1, "parent", b"");
    let mut kid = child(2, &parent, "child", b"");
    // Lost once: failed with WorkerLost by whoever recovers it.
    kid.max_recoveries = 0;
    let w = WorkerId::new("w");
    let tasks = tasks(&["parent", "child"]);
    store.submit(parent.clone(), at(0)).unwrap();
    let p = store
        .claim(&w, &tasks, Duration::from_secs(60), at(1))
        .unwrap()
        .unwrap();
    store
        .commit(
            &p.lease,
            Commit {
                children: vec![kid.clone()],
                ..Commit::outcome(Outcome::Waiting { on: vec![kid.id] })
            },
            at(2),
        )
        .unwrap();
    let lost = store
        .claim(&w, &tasks, Duration::from_secs(1), at(3))
        .unwrap()
        .unwrap();
    assert_eq!(lost.record.id(), kid.id);

    // The child's worker dies. The next claim recovers its lease: the child fails with
    // WorkerLost, which wakes the parent, which that same claim then takes.
    let flushes = store.stats().flushes;
    let next = store
        .claim(&w, &tasks, Duration::from_secs(60), at(60_000))
        .unwrap()
        .unwrap();
    assert_eq!(next.record.id(), parent.id);

    let failed = store
        .wait_final(kid.id, Duration::ZERO)
        .unwrap()
        .expect("the child is final");
    assert_eq!(failed.status(), Status::Failed);
    assert_eq!(
        failed.state.error.as_ref().map(|f| f.kind),
        Some(FailureKind::WorkerLost)
    );
    assert!(
        store.stats().flushes > flushes,
        "the child's WorkerLost failure and the parent's wake-up were handed out before an fsync made them durable"
    );
}

/// A batch of submissions is one log record made durable by one fsync, and all of it is there
/// after reopening.
#[test]
fn a_batch_of_submissions_is_one_record_and_one_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let batch: Vec<_> = (0..500u128)
        .map(|n| root(n + 1, "t", &n.to_le_bytes()))
        .collect();
    {
        let store = FileStore::open(dir.path()).unwrap();
        let before = store.stats();
        store.submit_many(batch.clone(), at(0)).unwrap();
        let after = store.stats();
        assert_eq!(after.records - before.records, 1, "one record");
        assert_eq!(after.flushes - before.flushes, 1, "one fsync");
    }
    let store = FileStore::open(dir.path()).unwrap();
    assert_eq!(store.counts().unwrap().get(Status::Pending), 500);
    let w = WorkerId::new("w");
    let first = store
        .claim(&w, &tasks(&["t"]), Duration::from_secs(60), at(1))
        .unwrap()
        .unwrap();
    assert_eq!(first.record.id(), batch[0].id, "claimed in the order given");
}

/// A checkpoint is durable when it returns, and is one record: after reopening, the parent's
/// journal and the inline child (running, under the worker's lease) are there.
#[test]
fn a_checkpoint_is_durable_when_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let parent = root(1, "parent", b"");
    let kid = child(2, &parent, "child", b"");
    let w = WorkerId::new("w");
    {
        let store = FileStore::open(dir.path()).unwrap();
        store.submit(parent.clone(), at(0)).unwrap();
        let p = store
            .claim(&w, &tasks(&["parent"]), Duration::from_secs(60), at(1))
            .unwrap()
            .unwrap();
        let (records, flushes) = (store.stats().records, store.stats().flushes);
        let claim = store
            .checkpoint(
                &p.lease,
                wf_store::Checkpoint {
                    journal: wf_store::conformance::fixtures::entries(0, 2),
                    data: Vec::new(),
                    children: vec![kid.clone()],
                },
                kid.id,
                Duration::from_secs(60),
                at(2),
            )
            .unwrap()
            .unwrap();
        assert_eq!(claim.lease.invocation, kid.id);
        assert_eq!(store.stats().records - records, 1, "one record");
        assert!(store.stats().flushes > flushes, "synced before it returns");
        // Closed without committing the child (a crash here is `file_crash`'s business: what
        // was synced survives it).
    }
    let store = FileStore::open(dir.path()).unwrap();
    assert_eq!(store.journal(parent.id).unwrap().len(), 2);
    let rec = store.invocation(kid.id).unwrap();
    assert_eq!(rec.status(), Status::Running);
    assert_eq!(rec.state.lease.map(|l| l.worker), Some(w));
}
