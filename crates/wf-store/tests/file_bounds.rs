//! Bounds of the file store (issue 11). It measures the records it writes, not the requests: an
//! oversized record is refused alone and undone, and nothing a caller stores makes later records
//! grow past the limit (defect 2; these tests hold a few hundred MiB for a moment). Retention
//! keeps it from growing without end, a bounded batch per operation (defect 6).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use wf_core::{JournalEntry, Op, Status, TaskId};
use wf_store::conformance::fixtures::{T0, at, failure, id, root, tasks, worker};
use wf_store::limits::{MAX_ERROR_BYTES, MAX_RECORD_BYTES};
use wf_store::tables::PURGE_BATCH;
use wf_store::{
    Commit, DEFAULT_RETENTION, FileOptions, FileStore, Outcome, StoreAdmin, StoreError, StoreRead,
    StoreWork,
};

const LEASE: Duration = Duration::from_secs(1);

fn open(dir: &std::path::Path) -> FileStore {
    FileStore::open_with(dir, FileOptions::default()).unwrap()
}

/// A retry error of 130 MiB, a lease that expires, a claim that recovers and re-claims it (one
/// record holding its state twice), a reopen: the store keeps serving, and keeps the error cut.
#[test]
fn a_huge_retry_error_does_not_brick_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let inv = root(1, "t", b"");
    let t = tasks(&["t"]);
    store.submit(inv.clone(), T0).unwrap();
    let c = store.claim(&worker("a"), &t, LEASE, T0).unwrap().unwrap();
    let huge = "e".repeat(130 << 20);
    store
        .commit(
            &c.lease,
            Commit::outcome(Outcome::Retry {
                not_before: at(1),
                error: failure(&huge),
            }),
            at(1),
        )
        .unwrap();
    drop(huge);
    // Claimed, then lost: the next claim recovers it and claims it again in one record.
    let first = store
        .claim(&worker("a"), &t, LEASE, at(2))
        .unwrap()
        .unwrap();
    assert_eq!(first.lease.invocation, inv.id);
    let second = store
        .claim(&worker("b"), &t, LEASE, at(10))
        .expect("a claim that recovers an expired lease")
        .expect("the recovered invocation is claimed again");
    assert_eq!(second.lease.attempt, first.lease.attempt + 1);
    drop(store);
    for reopen in 0..2 {
        let store = open(dir.path());
        let now = at(20 + 10 * reopen);
        store
            .claim(&worker("c"), &t, LEASE, now)
            .unwrap_or_else(|e| panic!("the first claim after reopen {reopen}: {e}"))
            .expect("something is claimable");
        let record = store.invocation(inv.id).unwrap();
        let error = record.state.error.expect("the retry's error is kept");
        assert!(
            error.message.len() < MAX_ERROR_BYTES + 64,
            "the error is kept cut, not whole ({} bytes)",
            error.message.len()
        );
        store
            .submit(root(100 + u128::from(reopen), "t", b""), now)
            .unwrap();
    }
}

/// A commit whose request looks small but whose record is over the limit (a journal entry
/// naming a child task of 260 MiB) is `TooLarge`, undone, and the store goes on serving: the
/// same execution commits normally afterwards, and the reopened store holds exactly that.
#[test]
fn an_oversized_record_is_refused_alone_and_undone() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let inv = root(1, "t", b"");
    let t = tasks(&["t"]);
    store.submit(inv.clone(), T0).unwrap();
    let c = store
        .claim(&worker("a"), &t, Duration::from_secs(600), T0)
        .unwrap()
        .unwrap();
    let huge = JournalEntry {
        seq: 0,
        op: Op::ChildStart {
            task: TaskId::new("c".repeat(260 << 20)),
            call: wf_core::CallId::of(&TaskId::new("c"), b""),
            child: id(2),
        },
    };
    let refused = store.commit(
        &c.lease,
        Commit {
            journal: vec![huge],
            data: vec![("k".to_owned(), b"v".to_vec())],
            ..Commit::outcome(Outcome::Success(b"r".to_vec()))
        },
        at(1),
    );
    match refused {
        Err(StoreError::TooLarge { size, limit, .. }) => {
            assert_eq!(limit, MAX_RECORD_BYTES);
            assert!(size > MAX_RECORD_BYTES, "the measured size ({size})");
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert_eq!(store.invocation(inv.id).unwrap().status(), Status::Running);
    assert!(
        store.journal(inv.id).unwrap().is_empty(),
        "the journal is undone"
    );
    assert_eq!(
        store.get_data(inv.id, "k").unwrap(),
        None,
        "the data write is undone"
    );
    let small = wf_store::conformance::fixtures::entries(0, 1);
    store
        .commit(
            &c.lease,
            Commit {
                journal: small.clone(),
                ..Commit::outcome(Outcome::Success(b"r".to_vec()))
            },
            at(2),
        )
        .expect("the store still serves the same execution");
    drop(store);
    let store = open(dir.path());
    let record = store.invocation(inv.id).unwrap();
    assert_eq!(record.status(), Status::Success);
    assert_eq!(store.journal(inv.id).unwrap(), small);
    assert_eq!(store.get_data(inv.id, "k").unwrap(), None);
}

/// Retention is on by default (24 hours) and purges a bounded batch of workflows per operation,
/// so no operation pays for the whole store; a few operations later everything old is gone.
/// `keep_everything` turns it off.
#[test]
fn retention_is_on_by_default_and_purges_a_batch_per_operation() {
    assert_eq!(
        FileOptions::default().retention_period(),
        Some(DEFAULT_RETENTION)
    );
    let n = 2 * PURGE_BATCH as u128 + 10;
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open_with(dir.path(), FileOptions::default().sync(false)).unwrap();
    let t = tasks(&["t"]);
    for i in 0..n {
        store.submit(root(i + 1, "t", b""), T0).unwrap();
        let c = store.claim(&worker("w"), &t, LEASE, T0).unwrap().unwrap();
        store
            .commit(&c.lease, Commit::outcome(Outcome::Success(Vec::new())), T0)
            .unwrap();
    }
    assert_eq!(
        store.counts().unwrap().total() as u128,
        n,
        "all within retention"
    );
    // A day and a bit later, each operation purges at most one batch.
    let later = T0.saturating_add(DEFAULT_RETENTION + Duration::from_secs(60));
    let mut left = n;
    for k in 0..3u128 {
        store.submit(root(10_000 + k, "u", b""), later).unwrap();
        let total = store.counts().unwrap().total() as u128 - (k + 1);
        assert!(
            left - total <= PURGE_BATCH as u128,
            "operation {k} purged {} workflows, more than a batch",
            left - total
        );
        left = total;
    }
    assert_eq!(left, 0, "three batches cover everything old");

    let dir = tempfile::tempdir().unwrap();
    let keep = FileOptions::default().sync(false).keep_everything();
    assert_eq!(keep.retention_period(), None);
    let store = FileStore::open_with(dir.path(), keep).unwrap();
    store.submit(root(1, "t", b""), T0).unwrap();
    let c = store.claim(&worker("w"), &t, LEASE, T0).unwrap().unwrap();
    store
        .commit(&c.lease, Commit::outcome(Outcome::Success(Vec::new())), T0)
        .unwrap();
    store.submit(root(2, "t", b""), later).unwrap();
    assert_eq!(
        store.counts().unwrap().total(),
        2,
        "keep_everything keeps it"
    );
    assert_eq!(store.purge_finished(later).unwrap(), 1, "until purged");
}
