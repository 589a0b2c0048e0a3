//! Checkpoints on the file store, seen through the counting file system: a checkpoint that
//! carries something a replay could not reproduce (a value the body drew, a data write) is
//! synced before it returns, so the child it claims runs only once that is durable; a
//! replayable one (only child starts and child results, `Checkpoint::replayable`) costs its
//! caller no fsync: the child's own commit, which the caller waits for before it acts on the
//! outcome, makes both durable (it is only written to the OS first, as a claim is), and a power
//! loss before that takes back only what a replay recreates under the same ids.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod file_common;

use std::sync::Arc;
use std::time::Duration;

use file_common::*;
use wf_core::{JournalEntry, Status, WorkerId};
use wf_store::file::testing::CountingFs;
use wf_store::{
    Checkpoint, Claim, Commit, FileOptions, FileStore, NewInvocation, Outcome, StoreError,
    StoreRead, StoreWork,
};

const LEASE: Duration = Duration::from_secs(600);

fn counted(fs: &CountingFs) -> FileOptions {
    FileOptions::default()
        .file_system(Arc::new(fs.clone()))
        .compact_min_bytes(u64::MAX)
}

/// Submits a root, claims it and checkpoints its first child after two random draws (not
/// replayable), then commits that child: the state before the replayable checkpoint.
fn first_child_done(store: &FileStore) -> (NewInvocation, Claim, NewInvocation) {
    let parent = root(1);
    store.submit(parent.clone(), T0).unwrap();
    let p = store
        .claim(&WorkerId::new("w"), &workload_tasks(), LEASE, T0)
        .unwrap()
        .expect("the root");
    let first = child_of(2, &parent);
    let mut journal = fixtures_entries();
    journal.push(child_start(2, &first));
    let drawn = Checkpoint {
        journal,
        data: Vec::new(),
        children: vec![first.clone()],
    };
    assert!(!drawn.replayable());
    let one = store
        .checkpoint(&p.lease, drawn, first.id, LEASE, at(1))
        .unwrap()
        .expect("file checkpoints");
    store
        .commit(
            &one.lease,
            Commit::outcome(Outcome::Success(b"r1".to_vec())),
            at(2),
        )
        .unwrap();
    (parent, p, first)
}

fn fixtures_entries() -> Vec<JournalEntry> {
    wf_store::conformance::fixtures::entries(0, 2)
}

/// The replayable checkpoint after [`first_child_done`]: the first child's result and the
/// second child's start.
fn replayable(first: &NewInvocation, second: &NewInvocation) -> Checkpoint {
    let cp = Checkpoint {
        journal: vec![child_success(3, first, b"r1"), child_start(4, second)],
        data: Vec::new(),
        children: vec![second.clone()],
    };
    assert!(cp.replayable());
    cp
}

#[test]
fn a_checkpoint_of_drawn_values_is_synced_and_a_replayable_one_waits_for_the_childs_commit() {
    let dir = tempfile::tempdir().unwrap();
    let fs = CountingFs::new();
    let store = FileStore::open_with(dir.path(), counted(&fs)).unwrap();
    let log = log_path(dir.path());
    let (parent, p, first) = first_child_done(&store);
    assert!(
        fs.synced_len(&log) >= store.stats().log_bytes,
        "the drawn values' checkpoint and the child's commit are durable when they return"
    );

    let second = child_of(3, &parent);
    let syncs = fs.counts().syncs;
    let two = store
        .checkpoint(
            &p.lease,
            replayable(&first, &second),
            second.id,
            LEASE,
            at(3),
        )
        .unwrap()
        .expect("file checkpoints");
    assert_eq!(two.lease.invocation, second.id);
    assert_eq!(
        fs.counts().syncs,
        syncs,
        "a replayable checkpoint waits for no fsync"
    );
    let checkpointed = store.stats().log_bytes;
    assert!(
        fs.synced_len(&log) < checkpointed,
        "the replayable checkpoint is not synced yet"
    );
    assert!(
        fs.written_len(&log) >= checkpointed,
        "the replayable checkpoint is written to the OS before its child runs (kill -9 keeps it)"
    );

    // The child's commit, which its caller waits for before it goes on, makes both durable.
    store
        .commit(
            &two.lease,
            Commit::outcome(Outcome::Success(b"r2".to_vec())),
            at(4),
        )
        .unwrap();
    assert!(
        fs.synced_len(&log) >= store.stats().log_bytes,
        "the child's commit returned before it and the checkpoint were durable"
    );
}

#[test]
fn a_replayable_checkpoint_is_handed_to_no_other_reader_before_it_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    let fs = CountingFs::new();
    let store = FileStore::open_with(dir.path(), counted(&fs)).unwrap();
    let log = log_path(dir.path());
    let (parent, p, first) = first_child_done(&store);
    let second = child_of(3, &parent);
    store
        .checkpoint(
            &p.lease,
            replayable(&first, &second),
            second.id,
            LEASE,
            at(3),
        )
        .unwrap()
        .expect("file checkpoints");
    let checkpointed = store.stats().log_bytes;
    let journal = store.journal(parent.id).unwrap();
    assert_eq!(journal.len(), 5);
    assert!(
        fs.synced_len(&log) >= checkpointed,
        "a read handed out the replayable checkpoint's journal before it was durable"
    );
    assert_eq!(
        store.invocation(second.id).unwrap().status(),
        Status::Running
    );
}

/// A power loss after a replayable checkpoint, before its child commits: the checkpoint and the
/// child it created are gone (nothing anyone was handed rested on them), everything before them
/// is whole, and the caller's next execution checkpoints the same child under the same id again.
#[test]
fn a_power_loss_takes_back_a_replayable_checkpoint_and_its_replay_recreates_it() {
    let dir = tempfile::tempdir().unwrap();
    let fs = CountingFs::new();
    let store = FileStore::open_with(dir.path(), counted(&fs)).unwrap();
    let log = log_path(dir.path());
    let (parent, p, first) = first_child_done(&store);
    let second = child_of(3, &parent);
    store
        .checkpoint(
            &p.lease,
            replayable(&first, &second),
            second.id,
            LEASE,
            at(3),
        )
        .unwrap()
        .expect("file checkpoints");
    // The power fails while the child runs: only the synced prefix survives.
    let synced = fs.synced_len(&log) as usize;
    let bytes = std::fs::read(&log).unwrap();
    assert!(
        (synced as u64) < store.stats().log_bytes,
        "the checkpoint is not synced"
    );
    let cut = tempfile::tempdir().unwrap();
    std::fs::write(log_path(cut.path()), &bytes[..synced]).unwrap();
    let after = FileStore::open(cut.path()).unwrap();
    assert_eq!(
        after.journal(parent.id).unwrap().len(),
        3,
        "the drawn values and the first child's start survive"
    );
    assert_eq!(
        after.invocation(first.id).unwrap().status(),
        Status::Success,
        "the first child's outcome, which its caller was handed, survives"
    );
    assert!(matches!(
        after.invocation(second.id),
        Err(StoreError::InvocationNotFound(_))
    ));

    // The parent's lease expires; its next execution replays into the same child.
    let later = at(1)
        .saturating_add(LEASE)
        .saturating_add(Duration::from_secs(1));
    assert_eq!(after.recover_expired(later).unwrap(), vec![parent.id]);
    let again = after
        .claim(&WorkerId::new("w2"), &workload_tasks(), LEASE, later)
        .unwrap()
        .expect("the root again");
    assert_eq!(again.lease.invocation, parent.id);
    assert_eq!(again.journal.len(), 3);
    let rerun = after
        .checkpoint(
            &again.lease,
            replayable(&first, &second),
            second.id,
            LEASE,
            later,
        )
        .unwrap()
        .expect("file checkpoints");
    assert_eq!(rerun.lease.invocation, second.id);
    assert_eq!(rerun.lease.attempt, 1);
}
