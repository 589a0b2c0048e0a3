//! Attacks on the replayable checkpoint (`Checkpoint::replayable`, branch file-workflow): the
//! file store lets the child such a checkpoint claims run before the checkpoint is durable (or
//! even written), on the argument that a crash that takes it back leaves the caller to replay
//! into the same child with the same arguments. Each test here is a case where that argument
//! fails, written against the real file system with the store's own power-loss and kill -9
//! stand-ins (the synced prefix of the log, and the bytes handed to the OS, copied to a fresh
//! directory and reopened).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod file_common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use file_common::*;
use wf_core::{ChildOutcome, FailureKind, Op, Status, WorkerId};
use wf_store::file::testing::CountingFs;
use wf_store::{
    Checkpoint, Commit, FileOptions, FileStore, Outcome, StoreAdmin, StoreError, StoreRead,
    StoreWork,
};

const LEASE: Duration = Duration::from_secs(600);

/// No idle sync: the power fails (or the process dies) within its delay.
fn counted(fs: &CountingFs) -> FileOptions {
    FileOptions::default()
        .file_system(Arc::new(fs.clone()))
        .compact_min_bytes(u64::MAX)
        .idle_sync(None)
}

/// Copies `bytes` as the log of a fresh directory and opens it: a power loss (the synced prefix)
/// or a `kill -9` (everything written to the OS) of the owner of `bytes`.
fn reopen_from(bytes: &[u8], options: FileOptions) -> (tempfile::TempDir, FileStore) {
    let cut = tempfile::tempdir().unwrap();
    std::fs::write(log_path(cut.path()), bytes).unwrap();
    let store = FileStore::open_with(cut.path(), options).unwrap();
    (cut, store)
}

/// The synced prefix of the log in `dir`: what a power loss leaves.
fn power_loss(fs: &CountingFs, dir: &Path) -> Vec<u8> {
    let log = log_path(dir);
    let synced = fs.synced_len(&log) as usize;
    std::fs::read(&log).unwrap()[..synced].to_vec()
}

/// A child's result that the store did not keep (its commit answered `Ok`, but a cancellation
/// requested while it ran won: the store holds it cancelled) is handed to the caller as the
/// child's outcome by the runtime (`execution::conclude` reports the outcome it built, for a
/// nested child), and the caller's next checkpoint carries it as a `ChildResult` beside the
/// start of the child it computed from it. `Checkpoint::replayable` takes that checkpoint for a
/// copy of a durable outcome and lets the second child run before it is durable. A power loss
/// then takes the checkpoint back: the only durable outcome of the first child is `Cancelled`,
/// so the caller's replay cannot reproduce the second child's arguments (it takes the failure
/// branch, and may start another task under the same child id), yet the second child already
/// ran with them. With the checkpoint synced before its child ran (as before), the journal keeps
/// the result the caller acted on.
#[test]
fn a_replayable_checkpoint_may_carry_a_child_result_the_store_did_not_keep() {
    let dir = tempfile::tempdir().unwrap();
    let fs = CountingFs::new();
    let store = FileStore::open_with(dir.path(), counted(&fs)).unwrap();
    let parent = root(1);
    store.submit(parent.clone(), T0).unwrap();
    let p = store
        .claim(&WorkerId::new("w"), &workload_tasks(), LEASE, T0)
        .unwrap()
        .expect("the root");
    // The caller drew two values, then runs its first child inline: synced.
    let first = child_of(2, &parent);
    let mut journal = wf_store::conformance::fixtures::entries(0, 2);
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

    // An operator cancels the first child's subtree while its body is finishing (its body is
    // not told: it asks the context nothing more), then the child commits its success.
    store.cancel_tree(first.id, "operator", at(2)).unwrap();
    store
        .commit(
            &one.lease,
            Commit::outcome(Outcome::Success(b"r1".to_vec())),
            at(3),
        )
        .unwrap();
    assert_eq!(
        store.invocation(first.id).unwrap().status(),
        Status::Cancelled,
        "the cancellation won over the child's success (by contract)"
    );

    // The runtime handed the caller `Success(r1)` (the outcome it built); the caller records it
    // and starts its second child from it: a replayable checkpoint, not synced.
    let second = child_of(3, &parent);
    let cp = Checkpoint {
        journal: vec![child_success(3, &first, b"r1"), child_start(4, &second)],
        data: Vec::new(),
        children: vec![second.clone()],
    };
    assert!(cp.replayable());
    let two = store
        .checkpoint(&p.lease, cp, second.id, LEASE, at(4))
        .unwrap()
        .expect("file checkpoints");
    assert_eq!(two.lease.invocation, second.id, "the second child runs now");

    // The power fails while the second child runs.
    let (_cut, after) = reopen_from(&power_loss(&fs, dir.path()), FileOptions::default());
    let journal = after.journal(parent.id).unwrap();
    let kept_in_journal = journal.iter().any(|e| {
        matches!(&e.op, Op::ChildResult { child, outcome: ChildOutcome::Success(r) }
            if *child == first.id && r == b"r1")
    });
    let first_now = after.invocation(first.id).unwrap();
    let kept_in_record = first_now.state.result.as_deref() == Some(&b"r1"[..]);
    assert!(
        kept_in_journal || kept_in_record,
        "the second child ran with arguments computed from the first child's result r1, and \
         after a power loss nothing durable holds r1: the journal ends at {} entries and the \
         first child is {:?}, so the caller's replay starts from a cancelled child and cannot \
         reproduce what the second child ran with",
        journal.len(),
        first_now.status()
    );
}

/// A child whose body kills its process (an abort, an OOM kill, a crash in native code) must be
/// failed after `max_recoveries` losses of its worker, as a claimed invocation is: that is what
/// the claim's write before it returns is for (a killed process's leases and attempt numbers
/// survive). A replayable checkpoint's record stays in the in-memory batch while its child runs,
/// so a `kill -9` (no power loss needed) takes back the child and its claim: the child never
/// existed, its `max_recoveries` never applies, and the caller's lease expiry is counted against
/// the caller instead. With a caller that legitimately outlives workers (a large
/// `max_recoveries`), the crash loop goes on without bound; with the default, the caller is
/// failed as `WorkerLost` and the child that killed the process is nowhere in the store.
#[test]
fn a_child_that_kills_its_process_is_bounded_by_its_max_recoveries() {
    let mut parent = root(1);
    parent.max_recoveries = u32::MAX;
    let mut child = child_of(2, &parent);
    child.max_recoveries = 0;
    let options = || FileOptions::default().idle_sync(None);

    let first = tempfile::tempdir().unwrap();
    let mut store = FileStore::open_with(first.path(), options()).unwrap();
    store.submit(parent.clone(), T0).unwrap();
    let mut dirs = vec![first];
    let mut now = T0;
    let mut bounded = false;
    for _round in 0..5 {
        store.recover_expired(now).unwrap();
        match store.invocation(child.id) {
            Ok(r) if r.status().is_final() => {
                bounded = true;
                break;
            }
            Ok(_) | Err(StoreError::InvocationNotFound(_)) => {}
            Err(e) => panic!("{e}"),
        }
        let Some(p) = store
            .claim(&WorkerId::new("w"), &workload_tasks(), LEASE, now)
            .unwrap()
        else {
            break;
        };
        assert_eq!(p.lease.invocation, parent.id);
        // The caller replays to its first child and runs it inline.
        let cp = Checkpoint {
            journal: vec![child_start(p.journal.len() as u32, &child)],
            data: Vec::new(),
            children: vec![child.clone()],
        };
        assert!(cp.replayable());
        let ran = store.checkpoint(&p.lease, cp, child.id, LEASE, now);
        if !matches!(ran, Ok(Some(_))) {
            // The child exists already: the checkpoint of an earlier round survived.
            break;
        }
        // The child's body kills the process: what was handed to the OS survives.
        let dir = dirs.last().unwrap().path().to_path_buf();
        let written = std::fs::read(log_path(&dir)).unwrap();
        // (Dropping the dead owner only releases its directory: its closing flush goes there.)
        drop(store);
        let (next, reopened) = reopen_from(&written, options());
        dirs.push(next);
        store = reopened;
        now = now
            .saturating_add(LEASE)
            .saturating_add(Duration::from_secs(1));
    }
    let child_now = store.invocation(child.id);
    let parent_now = store.invocation(parent.id).unwrap();
    assert!(
        bounded,
        "the child killed its process 5 times and was never failed (max_recoveries 0): it is \
         {child_now:?} in the store, and its caller is {:?} after {} recoveries counted against it",
        parent_now.status(),
        parent_now.state.recoveries
    );
    let child_now = child_now.unwrap();
    assert_eq!(child_now.status(), Status::Failed);
    assert_eq!(
        child_now.state.error.as_ref().map(|e| e.kind),
        Some(FailureKind::WorkerLost)
    );
}
