//! What the file backend lets callers see, and when: nothing final is handed out before it is
//! durable.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod file_common;

use std::time::Duration;

use file_common::at;
use wf_core::{FailureKind, Status, WorkerId};
use wf_store::conformance::fixtures::{child, root, tasks};
use wf_store::{Commit, FileStore, Outcome, StoreRead, StoreWork};

#[test]
fn a_claim_that_fails_a_crash_looping_child_and_wakes_its_parent_is_durable_before_it_is_seen() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
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
