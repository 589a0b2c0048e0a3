//! Pipelined commits on the file store (`StoreWork::commit_pipelined`, what a worker pool's
//! threads use), seen through the counting file system: such a commit costs its worker no fsync,
//! a claim waits only for what made the invocation it hands out, and nothing a pipelined commit
//! did is handed out (a result, a woken parent, a claimed child) before an fsync covered it; a
//! power loss loses only what nobody was handed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod file_common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use file_common::*;
use wf_core::{Status, WorkerId};
use wf_store::file::testing::CountingFs;
use wf_store::{Commit, FileOptions, FileStore, Outcome, StoreRead, StoreWork};

const LEASE: Duration = Duration::from_secs(600);
const PATIENCE: Duration = Duration::from_secs(30);

/// Only the operations sync (no idle sync, `tests/file_idle_sync.rs`): the fsyncs counted are
/// theirs, and what they leave unsynced stays so.
fn counted(fs: &CountingFs) -> FileOptions {
    FileOptions::default()
        .file_system(Arc::new(fs.clone()))
        .pipelined_commits(true)
        .idle_sync(None)
}

fn claim(store: &FileStore, now: wf_core::Timestamp) -> wf_store::Claim {
    store
        .claim(&WorkerId::new("w"), &workload_tasks(), LEASE, now)
        .unwrap()
        .expect("something claimable")
}

/// Asserts that the first `bytes` bytes of the log are synced.
fn synced_through(fs: &CountingFs, dir: &Path, bytes: u64, what: &str) {
    let synced = fs.synced_len(&log_path(dir));
    assert!(
        synced >= bytes,
        "{what}: handed out with the log synced to {synced} bytes, short of the {bytes} it rests on"
    );
}

#[test]
fn what_a_pipelined_commit_did_is_synced_before_anyone_is_handed_it() {
    let dir = tempfile::tempdir().unwrap();
    let fs = CountingFs::new();
    let store = FileStore::open_with(dir.path(), counted(&fs)).unwrap();
    let parent = root(1);
    store.submit(parent.clone(), T0).unwrap();
    let p = claim(&store, T0);

    let kid = child_of(2, &parent);
    let syncs = fs.counts().syncs;
    let commit = Commit {
        children: vec![kid.clone()],
        ..Commit::outcome(Outcome::Waiting { on: vec![kid.id] })
    };
    store.commit_pipelined(&p.lease, commit, at(1)).unwrap();
    assert_eq!(
        fs.counts().syncs,
        syncs,
        "a pipelined commit waits for no fsync"
    );
    let parent_commit = store.stats().log_bytes;
    assert!(
        fs.synced_len(&log_path(dir.path())) < parent_commit,
        "the pipelined commit is not synced yet"
    );

    // The child it submitted is handed out only once that commit is synced.
    let k = claim(&store, at(2));
    assert_eq!(k.lease.invocation, kid.id);
    synced_through(&fs, dir.path(), parent_commit, "the claim of the child");

    // (Only a workflow's root writes data: the child commits no data.)
    let kid_done = Commit::outcome(Outcome::Success(result_of(2)));
    store.commit_pipelined(&k.lease, kid_done, at(3)).unwrap();
    let kid_commit = store.stats().log_bytes;
    let kid_rec = store.wait_final(kid.id, PATIENCE).unwrap().expect("final");
    assert_eq!(kid_rec.status(), Status::Success);
    synced_through(&fs, dir.path(), kid_commit, "wait_final of the child");

    // The parent it woke: claimed once the child's commit is synced (it is already, above; the
    // claim must not need more).
    let again = claim(&store, at(4));
    assert_eq!(again.lease.invocation, parent.id);
    synced_through(&fs, dir.path(), kid_commit, "the claim of the woken parent");
}

#[test]
fn a_claim_waits_for_no_unrelated_pipelined_commit_and_an_idle_worker_syncs_them() {
    let dir = tempfile::tempdir().unwrap();
    let fs = CountingFs::new();
    let store = FileStore::open_with(dir.path(), counted(&fs)).unwrap();
    store.submit_many(vec![root(1), root(2)], T0).unwrap();
    let first = claim(&store, T0);
    store
        .commit_pipelined(&first.lease, commit_of(number(&first.record)), at(1))
        .unwrap();
    let syncs = fs.counts().syncs;
    let second = claim(&store, at(1));
    assert_ne!(second.lease.invocation, first.lease.invocation);
    assert_eq!(
        fs.counts().syncs,
        syncs,
        "the second claim rests on the batch's submission only, synced long ago"
    );
    store
        .commit_pipelined(&second.lease, commit_of(number(&second.record)), at(2))
        .unwrap();
    // Nothing left to claim: the worker waits for work, and first makes its commits durable.
    assert!(
        !store
            .wait_for_work(&workload_tasks(), Duration::from_millis(1))
            .unwrap()
    );
    assert_eq!(
        fs.unsynced_bytes(&log_path(dir.path())),
        0,
        "an idle worker leaves nothing unsynced"
    );
}

/// A simulated power loss while workers commit pipelined and a waiter collects results: every
/// result the waiter was handed survives, and what did not survive is whole and runs again.
#[test]
fn a_power_loss_keeps_every_result_handed_out() {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let fs = CountingFs::new();
    let options = counted(&fs).compact_min_bytes(u64::MAX);
    let store = Arc::new(FileStore::open_with(dir.path(), options).unwrap());
    const TOTAL: u64 = 4_000;
    store
        .submit_many((0..TOTAL).map(root).collect(), T0)
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..2)
        .map(|t| {
            let (store, stop) = (Arc::clone(&store), Arc::clone(&stop));
            std::thread::spawn(move || {
                let w = WorkerId::new(format!("w{t}"));
                while !stop.load(Ordering::Relaxed) {
                    let Some(c) = store.claim(&w, &workload_tasks(), LEASE, T0).unwrap() else {
                        break;
                    };
                    let n = number(&c.record);
                    store.commit_pipelined(&c.lease, commit_of(n), T0).unwrap();
                }
            })
        })
        .collect();
    let handed = Arc::new(Mutex::new(Vec::new()));
    let waiter = {
        let (store, stop, handed) = (Arc::clone(&store), Arc::clone(&stop), Arc::clone(&handed));
        std::thread::spawn(move || {
            'results: for n in 0..TOTAL {
                // Short waits: once the workers stop, the next result may never come.
                let rec = loop {
                    match store
                        .wait_final(root(n).id, Duration::from_millis(50))
                        .unwrap()
                    {
                        Some(rec) => break rec,
                        None if stop.load(Ordering::Relaxed) => break 'results,
                        None => {}
                    }
                };
                assert_eq!(rec.status(), Status::Success);
                handed.lock().unwrap().push(n);
            }
        })
    };
    while handed.lock().unwrap().len() < 500 {
        std::thread::yield_now();
    }
    // The power fails now: every result handed out must be in the synced prefix.
    let before = handed.lock().unwrap().clone();
    let log = log_path(dir.path());
    let synced = fs.synced_len(&log) as usize;
    let bytes = std::fs::read(&log).unwrap();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    waiter.join().unwrap();
    let cut = tempfile::tempdir().unwrap();
    std::fs::write(log_path(cut.path()), &bytes[..synced]).unwrap();
    let after = FileStore::open(cut.path()).unwrap();
    for n in &before {
        let record = after.invocation(root(*n).id).unwrap();
        assert_eq!(
            record.status(),
            Status::Success,
            "result {n} was handed out, then lost in a power loss"
        );
    }
    // The rest: finished or not (timing decides), never half-written.
    for n in 0..TOTAL {
        check_whole(&after, &after.invocation(root(n).id).unwrap());
    }
}

/// A leader syncs its commit through the second handle while a claim's writer, writing a large
/// pipelined commit behind it, has to sync first (the unsynced-bytes bound) through the first
/// handle, and that fsync fails. On Linux both handles share one open file description, so
/// the writeback error (which may be the leader's own pages) is reported to that one fsync
/// only: the leader's sync returns success. The leader's commit must still not be acknowledged.
#[test]
fn an_fsync_failure_through_one_handle_fails_a_sync_running_through_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let fs = errseq::ErrseqFs::default();
    let opts = FileOptions::default()
        .file_system(Arc::new(fs.clone()))
        .pipelined_commits(true)
        .idle_sync(None);
    let store = Arc::new(FileStore::open_with(dir.path(), opts).unwrap());
    for n in 1..=3 {
        store.submit(root(n), T0).unwrap();
    }
    let x = claim(&store, T0);
    let y = claim(&store, T0);

    fs.set(|k| k.block_clone_sync = true);
    let leader = {
        let store = Arc::clone(&store);
        let lease = x.lease.clone();
        std::thread::spawn(move || {
            store.commit(
                &lease,
                Commit::outcome(Outcome::Success(result_of(1))),
                at(1),
            )
        })
    };
    fs.wait_until("the leader's sync", |k| k.clone_sync_waiting);

    // A large pipelined commit joins the batch; a claim then writes it while the leader syncs,
    // and must sync first: that fsync fails, reporting the description's writeback error.
    let big = Commit::outcome(Outcome::Success(vec![7; 600 << 10]));
    store.commit_pipelined(&y.lease, big, at(2)).unwrap();
    fs.set(|k| k.fail_first_handle_sync = true);
    let claimed = store.claim(&WorkerId::new("w"), &workload_tasks(), LEASE, at(3));
    assert!(
        !fs.knobs.0.lock().unwrap().fail_first_handle_sync,
        "the claim's write did not sync through the first handle (claim: {claimed:?})"
    );

    fs.set(|k| k.block_clone_sync = false);
    let acknowledged = leader.join().unwrap();
    assert!(
        acknowledged.is_err(),
        "a commit was acknowledged although an fsync over its bytes failed (the error went to \
         the other handle's fsync): {acknowledged:?}"
    );
}

/// An inspector reads a live store through [`FileStore::snapshot`], which reads the log as it is
/// in the OS (written, synced or not). A pipelined commit that a claim's write put there (a claim
/// writes the whole batch, without syncing) must not be shown as final while a power loss can
/// still take it back: the snapshot applies only what the owner published as synced
/// (`wf.synced`). Once synced, it is shown.
#[test]
fn a_snapshot_shows_no_result_a_power_loss_could_take_back() {
    let dir = tempfile::tempdir().unwrap();
    let fs = CountingFs::new();
    let store = FileStore::open_with(dir.path(), counted(&fs)).unwrap();
    store.submit_many(vec![root(1), root(2)], T0).unwrap();
    let first = claim(&store, T0);
    store
        .commit_pipelined(&first.lease, commit_of(number(&first.record)), at(1))
        .unwrap();
    let after_commit = store.stats().log_bytes;
    // The next claim writes the batch, the pipelined commit in it, and syncs nothing.
    let _second = claim(&store, at(1));
    assert!(
        fs.written_len(&log_path(dir.path())) >= after_commit
            && fs.synced_len(&log_path(dir.path())) < after_commit,
        "the commit must be written and not synced for this test to mean anything"
    );

    let seen = FileStore::snapshot(dir.path()).unwrap();
    let shown = seen.invocation(first.lease.invocation).unwrap();
    if shown.status().is_final() {
        synced_through(
            &fs,
            dir.path(),
            after_commit,
            "an inspector's snapshot read",
        );
    }

    store.flush().unwrap();
    let seen = FileStore::snapshot(dir.path()).unwrap();
    let shown = seen.invocation(first.lease.invocation).unwrap();
    assert!(
        check_whole(&seen, &shown),
        "once synced, the snapshot shows the result"
    );
}
