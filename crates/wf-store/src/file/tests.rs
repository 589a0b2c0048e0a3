//! Tests that need the file store's insides.
//!
//! Failures of the log's file are real: `/dev/full` fails every write with `ENOSPC`, so pointing
//! the log's writes at it shows what the store does when the disk fills up, without mocking the
//! file system. (Linux only; a full-disk test through a tiny mounted file system would need root.)
//!
//! A test that must act while another thread is blocked waits until the store's `blocking`
//! counter says the thread went to block, then takes the `Tables` lock once: the waiter blocks
//! holding that lock, so once this thread has it, the waiter is waiting on its condition variable.

#[cfg(target_os = "linux")]
use std::fs::OpenOptions;
#[cfg(target_os = "linux")]
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use wf_core::{Status, Timestamp, WorkerId};

use super::{FileOptions, FileStore};
use crate::conformance::fixtures::T0;
use crate::error::StoreError;
use crate::model::{Commit, NewInvocation, Outcome, TaskSet};
use crate::store::{StoreAdmin, StoreRead, StoreWork};

const LONG: Duration = Duration::from_secs(30);

/// Root number `n` of the one task these tests use.
fn root(n: u128) -> NewInvocation {
    crate::conformance::fixtures::root(n, "disk-full", b"")
}

/// The one task these tests use.
fn disk_full() -> TaskSet {
    crate::conformance::fixtures::tasks(&["disk-full"])
}

/// Returns once `n` waiters in all went to block and are waiting (see the module docs).
fn until_blocked(store: &FileStore, n: u64) {
    while store.blocking.load(Ordering::Relaxed) < n {
        std::thread::yield_now();
    }
    drop(store.lock());
}

/// From now on every write to the log fails with `ENOSPC`.
#[cfg(target_os = "linux")]
fn fill_the_disk(store: &FileStore) {
    let full = OpenOptions::new()
        .append(true)
        .open("/dev/full")
        .expect("/dev/full exists on Linux");
    store
        .log
        .redirect_writes(Box::new(super::fs::OsFile::new(full)));
}

/// The fail-stop error: an I/O error that says to reopen the store.
#[cfg(target_os = "linux")]
fn assert_stopped<T: std::fmt::Debug>(what: &str, result: Result<T, StoreError>) {
    match result {
        Err(e @ StoreError::Io { .. }) => {
            assert!(e.to_string().contains("reopen the store"), "{what}: {e}");
        }
        other => panic!("{what}: expected the store to have stopped, got {other:?}"),
    }
}

#[cfg(target_os = "linux")]
#[test]
fn after_a_failed_write_no_operation_hands_out_state_that_was_never_logged() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open_with(dir.path(), FileOptions::default()).unwrap();
    let id = root(1).id;
    store.submit(root(1), T0).unwrap();
    fill_the_disk(&store);

    // The claim is applied in memory, then its record cannot be written.
    let claimed = store.claim(&WorkerId::new("w"), &disk_full(), LONG, T0);
    match claimed {
        Err(StoreError::Io { source, .. }) => {
            assert_eq!(source.kind(), io::ErrorKind::StorageFull, "{source}");
        }
        other => panic!("expected ENOSPC from the claim, got {other:?}"),
    }

    // Memory says "running, attempt 1"; the log never took it. Nobody may see that.
    assert_stopped("invocation", store.invocation(id));
    assert_stopped("invocations", store.invocations(&[id]));
    assert_stopped("journal", store.journal(id));
    assert_stopped("get_data", store.get_data(id, "k"));
    assert_stopped("data_keys", store.data_keys(id));
    assert_stopped("workflow_invocations", store.workflow_invocations(id));
    assert_stopped("workflows", store.workflows());
    assert_stopped("counts", store.counts());
    assert_stopped("next_due", store.next_due(&disk_full()));
    assert_stopped("wait_for_work", store.wait_for_work(&disk_full(), LONG));
    assert_stopped("wait_final", store.wait_final(id, LONG));
    assert_stopped("submit", store.submit(root(2), T0));
    assert_stopped(
        "claim",
        store.claim(&WorkerId::new("w"), &disk_full(), LONG, T0),
    );
    assert_stopped("recover_expired", store.recover_expired(T0));
    assert_stopped("cancel", store.cancel(id, "no", T0));
    assert_stopped("purge_finished", store.purge_finished(T0));
    assert_stopped("compact", store.compact());
    assert_stopped("flush", store.flush());
    drop(store);

    // Reopening recovers what the log holds: the claim never happened.
    let store = FileStore::open_with(dir.path(), FileOptions::default()).unwrap();
    let record = store.invocation(id).unwrap();
    assert_eq!(record.status(), Status::Pending);
    assert_eq!(record.state.attempts, 0);
}

#[cfg(target_os = "linux")]
#[test]
fn a_failed_write_wakes_threads_blocked_in_wait_final_and_wait_for_work() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStore::open_with(dir.path(), FileOptions::default()).unwrap());
    let id = root(1).id;
    // Real time: `wait_for_work` also wakes for the lease's expiry, which must be far off.
    let now = Timestamp::from_system_time(SystemTime::now());
    store.submit(root(1), now).unwrap();
    let claim = store
        .claim(&WorkerId::new("w"), &disk_full(), LONG, now)
        .unwrap()
        .expect("the invocation is claimable");
    // Nothing is claimable and nothing is final: both would block for their whole timeout.
    let final_waiter = std::thread::spawn({
        let store = Arc::clone(&store);
        move || {
            let start = Instant::now();
            (
                store.wait_final(id, LONG).map(|r| r.is_some()),
                start.elapsed(),
            )
        }
    });
    let work_waiter = std::thread::spawn({
        let store = Arc::clone(&store);
        move || {
            let start = Instant::now();
            (store.wait_for_work(&disk_full(), LONG), start.elapsed())
        }
    });
    until_blocked(&store, 2);
    fill_the_disk(&store);
    assert!(store.renew(&claim.lease, LONG, now).is_err());
    for (what, (result, waited)) in [
        ("wait_final", final_waiter.join().unwrap()),
        ("wait_for_work", work_waiter.join().unwrap()),
    ] {
        assert!(
            waited < LONG / 2,
            "{what} took {waited:?}: it must wake on the failure, not on its timeout"
        );
        assert_stopped(what, result);
    }
}

/// The idle sync (`FileOptions::idle_sync`) is the only writer of an idle owner's pipelined
/// commit: when its write fails, the worker blocked in `wait_for_work` wakes to the failure, as
/// it does when an operation's write fails.
#[cfg(target_os = "linux")]
#[test]
fn a_failed_idle_sync_wakes_a_worker_blocked_in_wait_for_work() {
    let dir = tempfile::tempdir().unwrap();
    let options = FileOptions::default().idle_sync(Some(Duration::from_millis(1)));
    let store = Arc::new(FileStore::open_with(dir.path(), options).unwrap());
    // Real time: `wait_for_work` also wakes for the lease's expiry, which must be far off.
    let now = Timestamp::from_system_time(SystemTime::now());
    store.submit(root(1), now).unwrap();
    let claim = store
        .claim(&WorkerId::new("w"), &disk_full(), LONG, now)
        .unwrap()
        .expect("the invocation is claimable");
    // Everything durable: the syncer parks.
    store.flush().unwrap();
    let work_waiter = std::thread::spawn({
        let store = Arc::clone(&store);
        move || {
            let start = Instant::now();
            (store.wait_for_work(&disk_full(), LONG), start.elapsed())
        }
    });
    until_blocked(&store, 1);
    fill_the_disk(&store);
    // Returns before any write: only the idle sync writes it, into the full disk.
    store
        .commit_pipelined(
            &claim.lease,
            Commit::outcome(Outcome::Success(Vec::new())),
            now,
        )
        .unwrap();
    let (result, waited) = work_waiter.join().unwrap();
    assert!(
        waited < LONG / 2,
        "wait_for_work took {waited:?}: it must wake on the idle sync's failure, not on its timeout"
    );
    assert_stopped("wait_for_work", result);
    assert_stopped("invocation", store.invocation(root(1).id));
    drop(store);
    // The commit never reached the log: reopened, the invocation is still running.
    let store = FileStore::open(dir.path()).unwrap();
    assert_eq!(
        store.invocation(root(1).id).unwrap().status(),
        Status::Running
    );
}

#[test]
fn wait_final_ends_with_not_found_when_the_invocation_is_purged_while_it_waits() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStore::open_with(dir.path(), FileOptions::default()).unwrap());
    let id = root(1).id;
    store.submit(root(1), T0).unwrap();
    let claim = store
        .claim(&WorkerId::new("w"), &disk_full(), LONG, T0)
        .unwrap()
        .expect("the invocation is claimable");
    let waiter = std::thread::spawn({
        let store = Arc::clone(&store);
        move || store.wait_final(id, LONG)
    });
    until_blocked(&store, 1);
    // Finish and purge in one step, as when a purge takes the lock before the woken waiter does:
    // the waiter wakes to find the invocation gone.
    let later = Timestamp(T0.0 + 1);
    store
        .mutate(true, T0, |t, out| {
            t.commit(
                out,
                &claim.lease,
                Commit::outcome(Outcome::Success(Vec::new())),
                T0,
            )?;
            assert_eq!(t.purge_finished(out, later), 1);
            Ok(())
        })
        .unwrap();
    match waiter.join().unwrap() {
        Err(StoreError::InvocationNotFound(gone)) => assert_eq!(gone, id),
        other => {
            panic!("expected InvocationNotFound once the invocation was purged, got {other:?}")
        }
    }
}

/// Durable before visible, for claims too: a claim that finds a child whose parent's commit is
/// logged but not yet synced (the committing thread has not reached its fsync yet) must not
/// hand the child out before that commit is durable. Otherwise a power loss takes the commit
/// back while the child's side effects have happened.
#[test]
fn a_claim_waits_until_the_commit_that_created_its_child_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    let fs = super::testing::CountingFs::new();
    // Nothing but the operations syncs (the commit must stay unsynced until the claim).
    let options = FileOptions::default()
        .file_system(Arc::new(fs.clone()))
        .idle_sync(None);
    let store = FileStore::open_with(dir.path(), options).unwrap();
    let log = dir.path().join(super::LOG_FILE);
    let parent = root(1);
    let child = crate::conformance::fixtures::child(2, &parent, "disk-full", b"");
    store.submit(parent.clone(), T0).unwrap();
    let claim = store
        .claim(&WorkerId::new("parent"), &disk_full(), LONG, T0)
        .unwrap()
        .expect("the parent is claimable");
    // The parent's commit, applied and logged, its thread not yet waiting for the fsync.
    let commit = Commit {
        children: vec![child.clone()],
        ..Commit::outcome(Outcome::Waiting { on: vec![child.id] })
    };
    let staged = store
        .stage(true, T0, |t, out| t.commit(out, &claim.lease, commit, T0))
        .unwrap();
    let commit_end = store.log.size();
    assert!(
        fs.synced_len(&log) < commit_end,
        "the commit is not synced yet"
    );
    let claimed = store
        .claim(&WorkerId::new("child"), &disk_full(), LONG, T0)
        .unwrap()
        .expect("the child is claimable");
    assert_eq!(claimed.record.id(), child.id);
    assert!(
        fs.synced_len(&log) >= commit_end,
        "the child was handed out while the commit that created it was not durable ({} of {commit_end} bytes synced)",
        fs.synced_len(&log)
    );
    store.settle(staged).unwrap();
}

/// Opening a store whose directory or log others may read is noticed (and logged as a warning
/// naming the fix); a private store is not.
#[cfg(unix)]
#[test]
fn files_readable_by_others_are_noticed() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("store");
    drop(FileStore::open(&dir).unwrap());
    let disk = super::fsio::Disk {
        fs: Arc::new(super::fs::OsFileSystem),
        dir: dir.clone(),
        log: dir.join(super::LOG_FILE),
        tmp: dir.join(super::COMPACT_FILE),
        sync: true,
        file_mode: 0o600,
    };
    assert!(super::fsio::too_open(&disk, 0o700, 0o600).is_empty());
    std::fs::set_permissions(&disk.log, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(
        super::fsio::too_open(&disk, 0o700, 0o600),
        vec![(disk.log.clone(), 0o644)]
    );
    assert!(super::fsio::too_open(&disk, 0o750, 0o644).is_empty());
}

/// Claims are written without an fsync, but the unsynced bytes never pile up past
/// `UNSYNCED_LIMIT`: that bound is what lets recovery tell a torn tail from damage.
#[test]
fn unsynced_claims_never_pile_up_past_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let fs = super::testing::CountingFs::new();
    // Nothing but the claims' writes syncs: the limit must be what bounds them.
    let options = FileOptions::default()
        .file_system(Arc::new(fs.clone()))
        .compact_min_bytes(u64::MAX)
        .idle_sync(None);
    let store = FileStore::open_with(dir.path(), options).unwrap();
    let log = dir.path().join(super::LOG_FILE);
    let n = 12_000;
    store.submit_many((1..=n).map(root).collect(), T0).unwrap();
    let mut most = 0;
    for _ in 0..n {
        store
            .claim(&WorkerId::new("w"), &disk_full(), LONG, T0)
            .unwrap()
            .expect("claimable");
        most = most.max(fs.unsynced_bytes(&log));
    }
    let limit = super::format::UNSYNCED_LIMIT as u64;
    assert!(
        most > limit / 2,
        "the claims wrote too little to test the limit"
    );
    assert!(most <= limit, "{most} bytes were unsynced at once");
}
