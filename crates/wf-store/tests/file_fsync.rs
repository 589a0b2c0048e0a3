//! What is durable when, seen through the counting file system the store really works through
//! (`wf_store::file::testing::CountingFs`): every acknowledged operation is covered by an fsync
//! (claims and renewals: everything before their own record), every rename by a directory
//! sync. Plus the lock, the restart cost and the files' permissions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod file_common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use file_common::*;
use wf_core::{Status, WorkerId};
use wf_store::file::testing::CountingFs;
use wf_store::{
    Commit, FileOptions, FileStore, NewEvent, Outcome, StoreAdmin, StoreError, StoreRead, StoreWork,
};

const LEASE: Duration = Duration::from_secs(600);

fn counted(fs: &CountingFs) -> FileOptions {
    FileOptions::default()
        .file_system(Arc::new(fs.clone()))
        .idle_sync(None)
}

/// Asserts that nothing the store wrote to its log is unsynced.
fn all_synced(fs: &CountingFs, dir: &Path, what: &str) {
    let log = log_path(dir);
    assert_eq!(
        fs.unsynced_bytes(&log),
        0,
        "{what} was acknowledged with {} of the log's {} bytes not synced",
        fs.unsynced_bytes(&log),
        fs.written_len(&log)
    );
}

#[test]
fn every_acknowledged_operation_is_covered_by_an_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let fs = CountingFs::new();
    let store = FileStore::open_with(dir.path(), counted(&fs)).unwrap();
    let log = log_path(dir.path());
    all_synced(&fs, dir.path(), "open");
    store.bind_app("app").unwrap();
    all_synced(&fs, dir.path(), "bind_app");
    let parent = root(1);
    store.submit(parent.clone(), T0).unwrap();
    all_synced(&fs, dir.path(), "submit");
    store.submit_many(vec![root(2), root(3)], T0).unwrap();
    all_synced(&fs, dir.path(), "submit_many");

    // A claim's own record need only be written (a lease a power loss may forget), but
    // everything before it must be synced, and the record written.
    let before = store.stats().log_bytes;
    let claim = store
        .claim(&WorkerId::new("w"), &workload_tasks(), LEASE, T0)
        .unwrap()
        .expect("claimable");
    assert!(fs.synced_len(&log) >= before, "claim");
    assert_eq!(fs.written_len(&log), store.stats().log_bytes, "claim");
    // The renewal saw the claim's record, which may stay unsynced (lease-only) too.
    let lease = store.renew(&claim.lease, LEASE, at(1)).unwrap();
    assert!(fs.synced_len(&log) >= before, "renew");
    assert_eq!(fs.written_len(&log), store.stats().log_bytes, "renew");

    let child = child_of(10, &parent);
    let commit = Commit {
        children: vec![child.clone()],
        ..Commit::outcome(Outcome::Waiting { on: vec![child.id] })
    };
    store.commit(&lease, commit, at(1)).unwrap();
    all_synced(&fs, dir.path(), "commit");
    store
        .send_event(
            root(2).id,
            NewEvent {
                name: "go".to_owned(),
                payload: b"payload".to_vec(),
                key: None,
            },
            at(1),
        )
        .unwrap();
    all_synced(&fs, dir.path(), "send_event");
    store.cancel(root(3).id, "no longer needed", at(1)).unwrap();
    all_synced(&fs, dir.path(), "cancel");
    assert!(store.recover_expired(at(10_000)).unwrap().len() <= 1);
    all_synced(&fs, dir.path(), "recover_expired");
    store.purge_finished(at(20_000)).unwrap();
    all_synced(&fs, dir.path(), "purge_finished");
    store.flush().unwrap();
    all_synced(&fs, dir.path(), "flush");
    assert!(fs.counts().syncs > 0);
}

#[test]
fn every_rename_is_made_durable_by_a_directory_sync() {
    let dir = tempfile::tempdir().unwrap();
    let fs = CountingFs::new();
    let options = counted(&fs).compact_min_bytes(4 << 10);
    let store = FileStore::open_with(dir.path(), options.clone()).unwrap();
    for n in 0..200 {
        run_one(&store, n, T0);
        assert!(
            fs.unsynced_renames().is_empty(),
            "a compaction returned before its rename was durable: {:?}",
            fs.unsynced_renames()
        );
        all_synced(&fs, dir.path(), "a commit");
    }
    assert!(store.stats().compactions > 0, "the workload compacted");
    store.compact().unwrap();
    assert!(fs.unsynced_renames().is_empty(), "compact()");
    all_synced(&fs, dir.path(), "compact()");
    assert!(fs.counts().renames > 1 && fs.counts().dir_syncs >= fs.counts().renames);
}

/// The lock is on the log itself: deleting `LOCK` (or anything else but the log) while the
/// owner runs does not let a second opener in, before or after a compaction replaced the log.
#[test]
fn deleting_the_lock_file_does_not_let_a_second_open_in() {
    let dir = tempfile::tempdir().unwrap();
    let first = FileStore::open_with(dir.path(), FileOptions::default()).unwrap();
    run_one(&first, 1, T0);
    match FileStore::open(dir.path()) {
        Err(e @ StoreError::StoreLocked { .. }) => {
            let message = e.to_string();
            assert!(
                message.contains(&format!("pid {}", std::process::id())),
                "{message}"
            );
            assert!(
                message.contains(&dir.path().display().to_string()),
                "{message}"
            );
            assert!(message.contains("Redis"), "{message}");
        }
        other => panic!("expected StoreLocked, got {other:?}"),
    }
    std::fs::remove_file(dir.path().join("LOCK")).unwrap();
    assert!(
        matches!(
            FileStore::open(dir.path()),
            Err(StoreError::StoreLocked { .. })
        ),
        "a second owner opened the store after LOCK was deleted"
    );
    // A compaction replaces the log file: the lock moves with it.
    first.compact().unwrap();
    std::fs::remove_file(dir.path().join("LOCK")).ok();
    assert!(
        matches!(
            FileStore::open(dir.path()),
            Err(StoreError::StoreLocked { .. })
        ),
        "a second owner opened the store after a compaction"
    );
    run_one(&first, 2, T0);
    drop(first);
    let second = FileStore::open(dir.path()).unwrap();
    for n in [1, 2] {
        assert_eq!(
            second.invocation(root(n).id).unwrap().status(),
            Status::Success
        );
    }
}

/// Opening does not count the log as garbage: the first change after a restart does not
/// rewrite the whole log.
#[test]
fn a_restart_does_not_compact_on_the_first_change() {
    let dir = tempfile::tempdir().unwrap();
    let options = FileOptions::default().compact_min_bytes(16 << 10);
    let store = FileStore::open_with(dir.path(), options.clone()).unwrap();
    for n in 0..1000 {
        store.submit(root(n), T0).unwrap();
    }
    store.compact().unwrap();
    let compacted = store.stats().log_bytes;
    assert!(compacted > 16 << 10, "the live state is over the threshold");
    drop(store);
    let store = FileStore::open_with(dir.path(), options).unwrap();
    run_one(&store, 1000, T0);
    assert_eq!(
        store.stats().compactions,
        0,
        "the first commit after reopening rewrote a log that was compacted already"
    );
}

/// The mode a file created with `mode` gets under this process's umask.
#[cfg(unix)]
fn under_umask(dir: &Path, mode: u32) -> u32 {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let probe = dir.join(format!("probe-{mode:o}"));
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .mode(mode)
        .open(&probe)
        .unwrap();
    let got = std::fs::metadata(&probe).unwrap().permissions().mode() & 0o777;
    std::fs::remove_file(&probe).unwrap();
    got
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
#[test]
fn the_store_is_private_by_default_and_stays_so_across_compaction() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("store");
    let store = FileStore::open_with(&dir, FileOptions::default()).unwrap();
    run_one(&store, 1, T0);
    assert_eq!(mode(&dir), 0o700, "the directory");
    assert_eq!(mode(&log_path(&dir)), 0o600, "the log");
    assert_eq!(mode(&dir.join("LOCK")), 0o600, "LOCK");
    store.compact().unwrap();
    assert_eq!(mode(&log_path(&dir)), 0o600, "the compacted log");
}

#[cfg(unix)]
#[test]
fn group_access_lets_the_group_read() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("store");
    let options = FileOptions::default().group_access(true);
    let store = FileStore::open_with(&dir, options).unwrap();
    run_one(&store, 1, T0);
    store.compact().unwrap();
    // The umask may take bits away, never add them.
    let file = under_umask(parent.path(), 0o640);
    assert_eq!(mode(&log_path(&dir)), file, "the compacted log");
    assert_eq!(
        mode(&dir) & 0o7,
        0,
        "others have no access to the directory"
    );
    assert_eq!(mode(&dir) & 0o700, 0o700);
}

/// A simulated power loss: the log cut to what an fsync covered, at a moment when threads are
/// still submitting and committing. Every submission and commit acknowledged before that
/// moment is in the cut log, whole.
#[test]
fn a_power_loss_keeps_everything_acknowledged() {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let fs = CountingFs::new();
    // No compaction, so the log only grows and its synced prefix is what survives.
    let options = counted(&fs).compact_min_bytes(u64::MAX);
    let store = Arc::new(FileStore::open_with(dir.path(), options).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..4u64)
        .map(|t| {
            let (store, stop, acked) = (Arc::clone(&store), Arc::clone(&stop), Arc::clone(&acked));
            std::thread::spawn(move || {
                for i in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let n = i * 4 + t;
                    store.submit(root(n), T0).unwrap();
                    acked.lock().unwrap().push((n, false));
                    if let Some(done) = claim_and_finish(&*store, &format!("w{t}"), T0) {
                        acked.lock().unwrap().push((done, true));
                    }
                }
            })
        })
        .collect();
    while store.stats().records < 3_000 {
        std::thread::yield_now();
    }
    // The power fails now: whatever was acknowledged so far must be in the synced prefix.
    let before = acked.lock().unwrap().clone();
    let log = log_path(dir.path());
    let synced = fs.synced_len(&log) as usize;
    let bytes = std::fs::read(&log).unwrap();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    // What survives: the synced prefix, plus any part of the unsynced rest (a prefix of it, or
    // all of it with its pages lost as zeros). Each must open (what the writer leaves unsynced is
    // always a torn tail recovery accepts) and hold everything acknowledged.
    let unsynced = bytes.len() - synced;
    let mut survivors = vec![bytes[..synced].to_vec(), bytes.clone()];
    for part in [unsynced / 3, unsynced / 2, unsynced.saturating_sub(1)] {
        survivors.push(bytes[..synced + part].to_vec());
    }
    let mut zeroed = bytes[..synced].to_vec();
    zeroed.resize(bytes.len(), 0);
    survivors.push(zeroed);
    for survivor in &survivors {
        let cut = tempfile::tempdir().unwrap();
        std::fs::write(log_path(cut.path()), survivor).unwrap();
        let after = FileStore::open(cut.path()).unwrap_or_else(|e| {
            panic!(
                "a log cut {} bytes into its {unsynced} unsynced bytes does not open: {e}",
                survivor.len() - synced
            )
        });
        let mut commits = 0;
        for (n, committed) in &before {
            let record = after.invocation(root(*n).id).unwrap_or_else(|e| {
                panic!("acknowledged submission {n} lost in a power loss: {e}")
            });
            if *committed {
                commits += 1;
                assert_eq!(
                    record.status(),
                    Status::Success,
                    "acknowledged commit {n} lost in a power loss"
                );
            }
            check_whole(&after, &record);
        }
        assert!(commits > 100, "too few commits to test anything: {commits}");
    }
}

/// An owner running an older `wf` locked only `LOCK`: this build respects that lock too.
#[test]
fn a_lock_on_lock_held_by_an_older_owner_is_respected() {
    let dir = tempfile::tempdir().unwrap();
    drop(FileStore::open(dir.path()).unwrap());
    let old_owner = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join("LOCK"))
        .unwrap();
    old_owner.try_lock().unwrap();
    assert!(matches!(
        FileStore::open(dir.path()),
        Err(StoreError::StoreLocked { .. })
    ));
    drop(old_owner);
    FileStore::open(dir.path()).unwrap();
}
