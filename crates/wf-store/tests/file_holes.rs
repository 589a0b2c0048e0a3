//! Unsynced holes (issue 15): a power loss on a disk that writes the unsynced end of the log out
//! of order can keep later records and lose an earlier one. Every record carries the log's
//! synced watermark when it was appended (format 3), so recovery cuts such a hole (no record
//! after it was acknowledged as durable) and still refuses damage that a record appended after
//! the damaged one was synced proves to be damage. The logs are built by real stores on real
//! directories, through the counting file system to know what was synced when.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod file_common;

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use file_common::*;
use wf_core::{Status, WorkerId};
use wf_store::file::testing::CountingFs;
use wf_store::fuzzing::reseal_log;
use wf_store::{FileOptions, FileStore, StoreError, StoreRead, StoreWork};

const LEASE: Duration = Duration::from_secs(600);

/// Only the operations sync (no idle sync): what a test leaves unsynced stays so.
fn counted(fs: &CountingFs, pipelined: bool) -> FileOptions {
    FileOptions::default()
        .file_system(Arc::new(fs.clone()))
        .pipelined_commits(pipelined)
        .idle_sync(None)
}

fn claim(store: &FileStore, now: wf_core::Timestamp) -> wf_store::Claim {
    store
        .claim(&WorkerId::new("w"), &workload_tasks(), LEASE, now)
        .unwrap()
        .expect("something claimable")
}

/// Zeroes a 512-byte sector (or what of it fits) inside the record at `at`, after its frame: what
/// a disk that never wrote that sector leaves.
fn hole_in(bytes: &mut [u8], at: usize) {
    let end = record_offsets(bytes).into_iter().find(|&o| o > at).unwrap();
    let start = at + FRAME_LEN;
    let stop = (start + 512).min(end);
    bytes[start..stop].fill(0);
}

/// The log as the store wrote it so far (the page cache: what a killed process leaves).
fn written(dir: &Path) -> Vec<u8> {
    fs::read(log_path(dir)).unwrap()
}

/// `wf.synced` as the store wrote it so far: what a power loss may leave of it (never more; the
/// owner writes an entry only once the sync it reports returned).
fn published(dir: &Path) -> Vec<u8> {
    fs::read(dir.join("wf.synced")).unwrap()
}

/// Pipelined: a commit and the claim after it are written, not synced; the disk keeps the claim
/// and loses a sector of the commit. Opening cuts both, as an unsynced hole, and the invocation
/// is as its last synced record left it (claimed, running: its lease expires and it runs again).
#[test]
fn a_reordered_unsynced_tail_is_cut_as_a_hole() {
    let dir = tempfile::tempdir().unwrap();
    let fs = CountingFs::new();
    let store = FileStore::open_with(dir.path(), counted(&fs, true)).unwrap();
    store.submit_many(vec![root(1), root(2)], T0).unwrap();
    let first = claim(&store, T0);
    let commit_at = store.stats().log_bytes as usize;
    store
        .commit_pipelined(&first.lease, commit_of(number(&first.record)), at(1))
        .unwrap();
    let second = claim(&store, at(1));
    let end = store.stats().log_bytes as usize;
    // The precondition of a hole: the commit is not durable, the claim after it is written.
    assert!(
        (fs.synced_len(&log_path(dir.path())) as usize) <= commit_at,
        "the pipelined commit must still be unsynced"
    );
    let mut bytes = written(dir.path());
    let marks = published(dir.path());
    assert_eq!(bytes.len(), end, "the claim is written");
    let offsets = record_offsets(&bytes);
    assert_eq!(offsets[offsets.len() - 3], commit_at, "commit, then claim");
    for &at in &offsets[offsets.len() - 3..offsets.len() - 1] {
        assert!(watermark(&bytes, at) <= commit_at as u64);
    }
    drop(store);

    // The power loss: the log with a hole, and `wf.synced` as it was then (closing the store
    // synced and published the rest, which the power loss would not have let happen).
    hole_in(&mut bytes, commit_at);
    fs::write(log_path(dir.path()), &bytes).unwrap();
    fs::write(dir.path().join("wf.synced"), &marks).unwrap();
    let store = FileStore::open(dir.path()).expect("an unsynced hole is cut, not refused");
    let cut = store.torn_tail().expect("the hole was cut").clone();
    assert_eq!(cut.offset, commit_at as u64);
    assert_eq!(cut.bytes, (end - commit_at) as u64);
    assert!(cut.hole && !cut.repaired, "{cut:?}");
    assert!(cut.reason.contains("unsynced hole"), "{}", cut.reason);
    let record = store.invocation(first.lease.invocation).unwrap();
    assert_eq!(
        record.status(),
        Status::Running,
        "the commit was taken back"
    );
    assert!(!check_whole(&store, &record));
    assert_eq!(
        store.invocation(second.lease.invocation).unwrap().status(),
        Status::Pending,
        "the claim after the hole was taken back too"
    );
    drop(store);
    assert_eq!(written(dir.path()), &bytes[..commit_at], "cut at the hole");
}

/// The same damage, but a record appended after the damaged one was synced follows it: that
/// record proves the damaged bytes were durable (acknowledged), so the log is refused as
/// `Corrupt`, naming the offset, and nothing is cut.
#[test]
fn damage_before_a_record_appended_after_it_was_synced_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let fs = CountingFs::new();
    let store = FileStore::open_with(dir.path(), counted(&fs, false)).unwrap();
    store.submit(root(1), T0).unwrap();
    let first = claim(&store, T0);
    let commit_at = store.stats().log_bytes as usize;
    // Not pipelined: durable when it returns.
    store
        .commit(&first.lease, commit_of(number(&first.record)), at(1))
        .unwrap();
    let later = store.stats().log_bytes as usize;
    store.submit(root(2), at(2)).unwrap();
    drop(store);
    let mut bytes = written(dir.path());
    assert!(
        watermark(&bytes, later) > commit_at as u64,
        "the later submission was appended once the commit was synced"
    );

    hole_in(&mut bytes, commit_at);
    fs::write(log_path(dir.path()), &bytes).unwrap();
    // Without `wf.synced` (a power loss may take it back): the later record's watermark alone
    // proves the damage (with it, its published synced size does; see `file_attack_pipeline`).
    fs::remove_file(dir.path().join("wf.synced")).unwrap();
    match FileStore::open(dir.path()) {
        Err(StoreError::Corrupt { offset, reason, .. }) => {
            assert_eq!(offset, commit_at as u64, "{reason}");
            assert!(reason.contains("not an unsynced hole"), "{reason}");
        }
        Err(e) => panic!("expected Corrupt, got {e}"),
        Ok(_) => panic!("cut acknowledged records as if they were an unsynced hole"),
    }
    assert_eq!(written(dir.path()), bytes, "nothing cut");
}

/// A log of format 2 (records without a watermark): `bytes` (format 3) with every watermark
/// taken out, resealed.
fn as_format_2(bytes: &[u8]) -> Vec<u8> {
    let offsets = record_offsets(bytes);
    let mut old = bytes[..HEADER_LEN].to_vec();
    old[8..12].copy_from_slice(&2u32.to_le_bytes());
    for w in offsets.windows(2) {
        let changes = &bytes[w[0] + CHANGES_AT..w[1]];
        old.extend_from_slice(&u32::try_from(changes.len()).unwrap().to_le_bytes());
        old.extend_from_slice(&[0; 8]);
        old.extend_from_slice(changes);
    }
    reseal_log(&mut old);
    old
}

/// A format 2 log still opens, with the same state, and is rewritten in format 3; damage
/// followed by valid records in one is `Corrupt` (it has no watermarks to tell a hole by).
#[test]
fn a_format_2_log_opens_and_is_rewritten_in_format_3() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    run_one(&store, 0, at(1));
    store.submit(root(1), at(2)).unwrap();
    drop(store);
    let old = as_format_2(&written(dir.path()));
    // A build that wrote format 2 wrote no `wf.synced`.
    fs::remove_file(dir.path().join("wf.synced")).unwrap();

    fs::write(log_path(dir.path()), &old).unwrap();
    let seen = FileStore::snapshot(dir.path()).unwrap();
    assert!(check_whole(&seen, &seen.invocation(root(0).id).unwrap()));
    let store = FileStore::open(dir.path()).unwrap();
    assert!(check_whole(&store, &store.invocation(root(0).id).unwrap()));
    assert_eq!(
        store.invocation(root(1).id).unwrap().status(),
        Status::Pending
    );
    drop(store);
    let now = written(dir.path());
    assert_eq!(u32::from_le_bytes(now[8..12].try_into().unwrap()), 3);

    let mut damaged = old.clone();
    let second = record_offsets(&damaged)[1];
    hole_in(&mut damaged, second);
    fs::write(log_path(dir.path()), &damaged).unwrap();
    fs::remove_file(dir.path().join("wf.synced")).unwrap();
    match FileStore::open(dir.path()) {
        Err(StoreError::Corrupt { offset, reason, .. }) => {
            assert_eq!(offset, second as u64);
            assert!(reason.contains("format 2"), "{reason}");
        }
        Err(e) => panic!("expected Corrupt, got {e}"),
        Ok(_) => panic!("cut a format 2 log's middle as a hole"),
    }
}
