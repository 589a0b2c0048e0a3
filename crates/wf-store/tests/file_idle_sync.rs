//! The idle sync (`FileOptions::idle_sync`): an owner with pipelined commits and nothing else to
//! do syncs them within its delay, so a read-only snapshot (`wf show`, the web monitor, another
//! process) sees them without any operation in the owner; the thread behind it ends when the
//! store is dropped. Without it nothing syncs them until the owner's next operation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod file_common;

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use file_common::*;
use wf_core::{Status, WorkerId};
use wf_store::{DEFAULT_IDLE_SYNC, FileOptions, FileStore, StoreError, StoreRead, StoreWork};

const LEASE: Duration = Duration::from_secs(600);
/// How long a test waits for what must happen (never a claim about speed: a loaded machine may
/// take long, and only a store that never syncs takes this long).
const PATIENCE: Duration = Duration::from_secs(60);

/// The tests of this file count the process's idle-sync threads: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// Submits and claims invocation `n`, then commits it pipelined (as a worker pool does): the
/// commit returns before any fsync covers it.
fn commit_pipelined(store: &FileStore, n: u64) {
    store.submit(root(n), at(1)).unwrap();
    let claim = store
        .claim(&WorkerId::new("w"), &workload_tasks(), LEASE, at(2))
        .unwrap()
        .expect("something to claim");
    store
        .commit_pipelined(&claim.lease, commit_of(n), at(3))
        .unwrap();
}

/// The status of invocation `n` in a fresh snapshot of `dir`, as another process reads it.
fn seen_from_outside(dir: &Path, n: u64) -> Status {
    FileStore::snapshot(dir)
        .unwrap()
        .invocation(root(n).id)
        .unwrap()
        .status()
}

/// Polls a fresh snapshot until invocation `n` is final there; panics after [`PATIENCE`].
fn await_success_outside(dir: &Path, n: u64) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match seen_from_outside(dir, n) {
            Status::Success => return,
            status if Instant::now() < deadline => {
                // The claim's record is written, not synced, until the commit's sync covers it.
                assert_eq!(status, Status::Pending, "at most the commit is missing");
                // Another process's view can only be polled.
                std::thread::sleep(Duration::from_millis(5));
            }
            status => panic!(
                "a snapshot still shows the pipelined commit's invocation {status:?} after \
                 {PATIENCE:?}, with the owner idle"
            ),
        }
    }
}

/// The store's idle-sync threads alive in this process (Linux names threads in `/proc`).
#[cfg(target_os = "linux")]
fn idle_sync_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim() == "wf-idle-sync")
        .count()
}

/// Polls until [`idle_sync_threads`] is `n`; panics after [`PATIENCE`].
#[cfg(target_os = "linux")]
fn await_threads(n: usize, what: &str) {
    let deadline = Instant::now() + PATIENCE;
    while idle_sync_threads() != n {
        assert!(
            Instant::now() < deadline,
            "{what}: {} threads",
            idle_sync_threads()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_snapshot_sees_a_pipelined_commit_of_an_idle_owner_within_the_idle_sync_delay() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let options = FileOptions::default();
    assert_eq!(options.idle_sync_delay(), Some(DEFAULT_IDLE_SYNC));
    let store = FileStore::open_with(dir.path(), options).unwrap();
    commit_pipelined(&store, 1);
    // Nothing in the owner reads, waits or syncs from here on.
    await_success_outside(dir.path(), 1);
    let snapshot = FileStore::snapshot(dir.path()).unwrap();
    let record = snapshot.invocation(root(1).id).unwrap();
    assert!(check_whole(&snapshot, &record), "the whole commit");

    // And again, once the syncer had parked with nothing to do.
    commit_pipelined(&store, 2);
    await_success_outside(dir.path(), 2);
    drop(store);
}

#[test]
fn without_the_idle_sync_a_pipelined_commit_waits_for_the_owners_next_operation() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let options = FileOptions::default().idle_sync(None);
    let store = FileStore::open_with(dir.path(), options).unwrap();
    commit_pipelined(&store, 1);
    // Nothing can sync it meanwhile, however long this takes.
    std::thread::sleep(DEFAULT_IDLE_SYNC * 4);
    assert_eq!(
        seen_from_outside(dir.path(), 1),
        Status::Pending,
        "neither the claim (written, not synced) nor the commit (in the batch) is synced"
    );
    // A read in the owner waits for what it saw to be durable.
    assert_eq!(
        store.invocation(root(1).id).unwrap().status(),
        Status::Success
    );
    assert_eq!(seen_from_outside(dir.path(), 1), Status::Success);
}

#[test]
fn a_short_idle_sync_delay_is_configurable_and_the_syncer_ends_with_its_store() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    #[cfg(target_os = "linux")]
    let before = idle_sync_threads();
    let options = FileOptions::default().idle_sync(Some(Duration::from_millis(1)));
    let store = FileStore::open_with(dir.path(), options).unwrap();
    // A new thread names itself once it runs.
    #[cfg(target_os = "linux")]
    await_threads(before + 1, "one thread per store");
    commit_pipelined(&store, 1);
    await_success_outside(dir.path(), 1);

    // Dropped with a pipelined commit pending (a delay far longer than this test): the drop
    // ends the syncer without waiting out the delay, then syncs on close, as always.
    drop(store);
    let store =
        FileStore::open_with(dir.path(), options_with_delay(Duration::from_secs(3600))).unwrap();
    commit_pipelined(&store, 2);
    drop(store);
    // Joined by the drops; the kernel lets go of an ended thread a moment after.
    #[cfg(target_os = "linux")]
    await_threads(before, "the syncers end with their stores");
    assert_eq!(seen_from_outside(dir.path(), 2), Status::Success);
    // Nothing holds the log: the store reopens, whole, with nothing cut.
    let store = FileStore::open(dir.path()).unwrap();
    assert!(store.torn_tail().is_none(), "{:?}", store.torn_tail());
    for n in [1, 2] {
        let record = store.invocation(root(n).id).unwrap();
        assert!(check_whole(&store, &record), "invocation {n}");
    }
    // A store that owns nothing else still refuses a second opener.
    assert!(matches!(
        FileStore::open(dir.path()),
        Err(StoreError::StoreLocked { .. })
    ));
}

fn options_with_delay(delay: Duration) -> FileOptions {
    FileOptions::default().idle_sync(Some(delay))
}
