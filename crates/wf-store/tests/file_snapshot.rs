//! Read-only snapshots of a file store: readable while another store owns the directory, never
//! modifying a byte, ending cleanly at a partial last record.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod file_common;

use std::fs;
use std::io::Write;

use file_common::*;
use wf_core::Status;
use wf_store::{FileOptions, FileStore, StoreError, StoreRead, StoreWork};

fn opts() -> FileOptions {
    FileOptions::default().sync(false)
}

/// Every file in a directory with its bytes, sorted by name.
fn dir_bytes(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_snapshot_of_a_locked_store_shows_its_committed_state() {
    let dir = tempfile::tempdir().unwrap();
    let owner = FileStore::open_with(dir.path(), opts()).unwrap();
    for n in 0..5 {
        run_one(&owner, n, at(n));
    }
    owner.submit(root(5), at(10)).unwrap();
    // The directory is locked: opening it again is refused, a snapshot is not.
    assert!(matches!(
        FileStore::open_with(dir.path(), opts()),
        Err(StoreError::StoreLocked { .. })
    ));
    let copy = FileStore::snapshot(dir.path()).unwrap();
    assert_eq!(copy.counts().unwrap(), owner.counts().unwrap());
    assert_eq!(copy.counts().unwrap().get(Status::Success), 5);
    assert_eq!(copy.counts().unwrap().get(Status::Pending), 1);
    assert_eq!(copy.workflows().unwrap(), owner.workflows().unwrap());
    for record in copy.workflows().unwrap() {
        if record.status() == Status::Success {
            assert!(check_whole(&copy, &record));
        }
    }
    // The owner goes on; a new snapshot sees what it did since.
    claim_and_finish(&owner, "w", at(11)).unwrap();
    let later = FileStore::snapshot(dir.path()).unwrap();
    assert_eq!(later.counts().unwrap().get(Status::Success), 6);
    assert_eq!(copy.counts().unwrap().get(Status::Success), 5);
}

#[test]
fn a_snapshot_never_modifies_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let owner = FileStore::open_with(dir.path(), opts()).unwrap();
    for n in 0..3 {
        run_one(&owner, n, at(n));
    }
    drop(owner);
    // A torn last record, as a crash or an append in progress leaves it.
    let log = log_path(dir.path());
    let full = fs::read(&log).unwrap();
    let offsets = record_offsets(&full);
    let last = offsets[offsets.len() - 2];
    fs::write(&log, &full[..last + 5]).unwrap();
    let before = dir_bytes(dir.path());

    let copy = FileStore::snapshot(dir.path()).unwrap();
    assert_eq!(
        dir_bytes(dir.path()),
        before,
        "the snapshot changed the files"
    );
    // The torn record (the last commit) is simply not there.
    assert_eq!(copy.counts().unwrap().get(Status::Success), 2);
}

#[test]
fn a_record_being_appended_ends_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let owner = FileStore::open_with(dir.path(), opts()).unwrap();
    run_one(&owner, 0, at(0));
    drop(owner);
    let log = log_path(dir.path());
    let whole = fs::read(&log).unwrap();
    // Half a frame header, then a frame whose payload has not arrived yet.
    for tail in [&[7u8, 0][..], &[200, 0, 0, 0, 1, 2, 3, 4, 9][..]] {
        fs::write(&log, &whole).unwrap();
        fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .unwrap()
            .write_all(tail)
            .unwrap();
        let copy = FileStore::snapshot(dir.path()).unwrap();
        assert_eq!(copy.counts().unwrap().get(Status::Success), 1);
        assert_eq!(fs::read(&log).unwrap().len(), whole.len() + tail.len());
    }
}

#[test]
fn missing_stores_and_newer_formats_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = FileStore::snapshot(&missing).err().unwrap();
    assert!(
        matches!(&err, StoreError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound),
        "{err}"
    );
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(!missing.exists(), "a snapshot created the directory");

    let empty = tempfile::tempdir().unwrap();
    let err = FileStore::snapshot(empty.path()).err().unwrap();
    assert!(err.to_string().contains("has no store log"), "{err}");
    assert_eq!(fs::read_dir(empty.path()).unwrap().count(), 0);

    let owner = FileStore::open_with(dir.path(), opts()).unwrap();
    drop(owner);
    let log = log_path(dir.path());
    let mut bytes = fs::read(&log).unwrap();
    bytes[8..12].copy_from_slice(&99u32.to_le_bytes());
    fs::write(&log, &bytes).unwrap();
    assert!(matches!(
        FileStore::snapshot(dir.path()),
        Err(StoreError::NewerFormat { found: 99, .. })
    ));
}

/// `wf.synced` limits a snapshot by the entry for the log file it names (by device and inode);
/// with no entry for the log read (a copy of a store directory, a backup restored elsewhere,
/// with a stale `wf.synced` that names the original's log) a reader cannot tell the copy from a
/// log whose owner failed to publish, so it shows only what the log's own watermarks prove
/// durable (never more than is synced): here the submission, not the last synced group (the
/// commit), until an owner opens the copy and publishes it whole. The original, whose log the
/// stale entry names, shows only what the entry says is synced (a stale entry only shows less).
#[test]
fn a_stale_synced_watermark_of_another_log_shows_what_the_log_proves_durable() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    let synced_at_open = fs::read(dir.path().join("wf.synced")).unwrap();
    run_one(&store, 0, at(1));
    drop(store);
    let copy = tempfile::tempdir().unwrap();
    fs::copy(log_path(dir.path()), log_path(copy.path())).unwrap();
    // The watermark as it was when the log held only its header.
    fs::write(copy.path().join("wf.synced"), &synced_at_open).unwrap();
    fs::write(dir.path().join("wf.synced"), &synced_at_open).unwrap();

    let seen = FileStore::snapshot(copy.path()).unwrap();
    let record = seen.invocation(root(0).id).unwrap();
    assert!(
        !check_whole(&seen, &record),
        "the copy shows what the watermarks prove durable, not the last synced group (the commit)"
    );
    drop(FileStore::open(copy.path()).unwrap());
    let seen = FileStore::snapshot(copy.path()).unwrap();
    assert!(
        check_whole(&seen, &seen.invocation(root(0).id).unwrap()),
        "once an owner opened the copy, it is shown whole"
    );
    // The original log, with the stale entry naming it: only what it says is synced.
    let seen = FileStore::snapshot(dir.path()).unwrap();
    assert!(matches!(
        seen.invocation(root(0).id),
        Err(StoreError::InvocationNotFound(_))
    ));
}
