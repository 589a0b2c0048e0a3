//! Recovery of the file backend from torn and damaged logs, format versions and ownership.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod file_common;

use std::fs;

use file_common::*;
use wf_core::{InvocationId, Status, WorkerId};
use wf_store::{FileOptions, FileStore, StoreAdmin, StoreError, StoreRead, StoreWork};

fn opts() -> FileOptions {
    FileOptions::default()
}

/// A store with three records: submit 0, claim 0, commit 0 (journal, data and result).
fn three_records(dir: &std::path::Path) -> Vec<u8> {
    let store = FileStore::open_with(dir, opts()).unwrap();
    run_one(&store, 0, at(1));
    drop(store);
    fs::read(log_path(dir)).unwrap()
}

#[test]
fn truncating_the_last_record_anywhere_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let full = three_records(dir.path());
    let offsets = record_offsets(&full);
    assert_eq!(offsets.len(), 4, "submit, claim and commit records");
    let (last, end) = (offsets[2], offsets[3]);
    let id = root(0).id;
    for cut in last..=end {
        fs::write(log_path(dir.path()), &full[..cut]).unwrap();
        let store = FileStore::open_with(dir.path(), opts())
            .unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        let record = store.invocation(id).unwrap();
        let finished = check_whole(&store, &record);
        assert_eq!(
            finished,
            cut == end,
            "cut at {cut}: the commit is whole or absent"
        );
        if cut < end {
            assert_eq!(record.status(), Status::Running, "cut at {cut}");
        }
        drop(store);
        let len = fs::metadata(log_path(dir.path())).unwrap().len() as usize;
        assert_eq!(
            len,
            if cut == end { end } else { last },
            "cut at {cut}: the torn tail is cut"
        );
    }
    // After a cut, the log takes new records where the torn one was.
    fs::write(log_path(dir.path()), &full[..end - 1]).unwrap();
    let store = FileStore::open_with(dir.path(), opts()).unwrap();
    store.submit(root(1), at(2)).unwrap();
    drop(store);
    let store = FileStore::open_with(dir.path(), opts()).unwrap();
    assert_eq!(
        store.invocation(root(1).id).unwrap().status(),
        Status::Pending
    );
    assert_eq!(store.invocation(id).unwrap().status(), Status::Running);
}

/// `three_records`, then a submission appended by a later open: once the first three were
/// synced, so its watermark proves damage before it is no unsynced hole (see `file_holes.rs`).
fn four_records(dir: &std::path::Path) -> Vec<u8> {
    three_records(dir);
    let store = FileStore::open_with(dir, opts()).unwrap();
    store.submit(root(1), at(2)).unwrap();
    drop(store);
    let bytes = fs::read(log_path(dir)).unwrap();
    let offsets = record_offsets(&bytes);
    assert!(watermark(&bytes, offsets[3]) >= offsets[3] as u64);
    bytes
}

#[test]
fn a_damaged_middle_record_is_corruption_with_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let full = four_records(dir.path());
    let offsets = record_offsets(&full);
    let middle = offsets[1];
    // A flipped bit in the length, in the tag, in the checksum, and in the payload.
    for at in [middle, middle + 5, middle + 9, offsets[2] - 1] {
        let mut bytes = full.clone();
        bytes[at] ^= 0x10;
        fs::write(log_path(dir.path()), &bytes).unwrap();
        match FileStore::open_with(dir.path(), opts()) {
            Err(StoreError::Corrupt {
                path,
                offset,
                reason,
            }) => {
                assert_eq!(path, log_path(dir.path()));
                assert_eq!(offset, middle as u64, "byte {at} flipped: {reason}");
            }
            Err(e) => panic!("byte {at} flipped: expected Corrupt, got {e}"),
            Ok(_) => panic!("byte {at} flipped: opened a corrupt log"),
        }
        // Nothing was cut: the damage is left for an operator to see.
        assert_eq!(fs::read(log_path(dir.path())).unwrap(), bytes);
    }
    let message = {
        let mut bytes = full.clone();
        bytes[middle + 9] ^= 1;
        fs::write(log_path(dir.path()), &bytes).unwrap();
        FileStore::open_with(dir.path(), opts())
            .unwrap_err()
            .to_string()
    };
    assert!(message.contains(&format!("offset {middle}")), "{message}");
    assert!(message.contains("wf.log"), "{message}");
}

#[test]
fn a_damaged_last_record_is_cut_as_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let full = three_records(dir.path());
    let offsets = record_offsets(&full);
    let mut bytes = full.clone();
    bytes[offsets[2] + 20] ^= 0xff;
    fs::write(log_path(dir.path()), &bytes).unwrap();
    let store = FileStore::open_with(dir.path(), opts()).unwrap();
    let record = store.invocation(root(0).id).unwrap();
    assert!(!check_whole(&store, &record));
    assert_eq!(record.status(), Status::Running);
}

#[test]
fn an_intact_record_that_does_not_decode_is_corruption_not_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let full = three_records(dir.path());
    let offsets = record_offsets(&full);
    let last = offsets[2];
    let mut bytes = full.clone();
    // The payload is the codec's version byte, the number of changes, then the first change's
    // enum tag: a tag no build has written, as a record of a future `Change` variant would be.
    bytes[last + CHANGES_AT + 2] = 0x7f;
    fix_checksum(&mut bytes, last);
    fs::write(log_path(dir.path()), &bytes).unwrap();
    match FileStore::open_with(dir.path(), opts()) {
        Err(e @ StoreError::Corrupt { .. }) => {
            let message = e.to_string();
            let StoreError::Corrupt { path, offset, .. } = e else {
                unreachable!()
            };
            assert_eq!(path, log_path(dir.path()));
            assert_eq!(offset, last as u64);
            assert!(message.contains("intact"), "{message}");
            assert!(message.contains("upgrade wf"), "{message}");
        }
        Err(e) => panic!("expected Corrupt, got {e}"),
        Ok(_) => panic!("opened a log whose last record this build cannot read"),
    }
    assert_eq!(
        fs::read(log_path(dir.path())).unwrap(),
        bytes,
        "an intact record is never cut"
    );
}

#[test]
fn zeros_or_garbage_after_the_last_record_are_cut() {
    let dir = tempfile::tempdir().unwrap();
    let full = three_records(dir.path());
    for tail in [
        vec![0u8; 4096],
        b"\x05\x00\x00\x00garbage".to_vec(),
        vec![0xff; 3],
    ] {
        let mut bytes = full.clone();
        bytes.extend_from_slice(&tail);
        fs::write(log_path(dir.path()), &bytes).unwrap();
        let store = FileStore::open_with(dir.path(), opts()).unwrap();
        assert!(check_whole(&store, &store.invocation(root(0).id).unwrap()));
        drop(store);
        assert_eq!(fs::read(log_path(dir.path())).unwrap(), full);
    }
}

/// The log format this build writes (the header's last four bytes).
fn current_format(log: &[u8]) -> u32 {
    u32::from_le_bytes(log[8..12].try_into().unwrap())
}

#[test]
fn this_build_writes_format_3() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = three_records(dir.path());
    assert_eq!(&bytes[..8], b"wf-log\0\n");
    assert_eq!(current_format(&bytes), 3);
}

/// `len` bytes that look like nothing in particular (xorshift; the test needs noise, not quality).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Noise after a record cut short (say, a crash while the file's size was already extended but
/// its blocks held old data). Up to what one interrupted write can leave it is a torn tail, cut
/// silently; megabytes of it are more than any write of this store leaves unsynced, so they are
/// damage: `Corrupt` with the byte counts, until an explicit repair cuts them and says what it
/// dropped (saving the bytes). Ruling out a valid record in the noise takes time in proportion
/// to its size, not its cube (pinned in `format`'s unit tests).
#[test]
fn noise_after_a_torn_record_is_cut_only_within_one_write_and_otherwise_needs_a_repair() {
    let dir = tempfile::tempdir().unwrap();
    let full = three_records(dir.path());
    let offsets = record_offsets(&full);
    let (last, end) = (offsets[2], offsets[3]);
    let log = log_path(dir.path());
    // Within one write: cut without asking.
    for (seed, tail) in [(3, 1), (5, 100 << 10)] {
        let mut bytes = full[..end - 3].to_vec();
        bytes.extend_from_slice(&noise(tail, seed));
        fs::write(&log, &bytes).unwrap();
        let store = FileStore::open_with(dir.path(), opts()).unwrap();
        let cut = store.torn_tail().expect("a torn tail was cut").clone();
        assert_eq!((cut.offset, cut.repaired), (last as u64, false));
        assert_eq!(cut.bytes, (bytes.len() - last) as u64);
        let record = store.invocation(root(0).id).unwrap();
        assert!(!check_whole(&store, &record), "the torn commit is gone");
        assert_eq!(record.status(), Status::Running);
        drop(store);
        assert_eq!(
            fs::read(&log).unwrap(),
            &full[..last],
            "cut where the torn record starts"
        );
    }
    // More than one write leaves: refused, then repaired on request.
    for (seed, tail) in [(1, 8 << 20), (2, 3 << 20)] {
        let mut bytes = full[..end - 3].to_vec();
        bytes.extend_from_slice(&noise(tail, seed));
        fs::write(&log, &bytes).unwrap();
        match FileStore::open_with(dir.path(), opts()) {
            Err(e @ StoreError::Corrupt { offset, .. }) => {
                assert_eq!(offset, last as u64);
                let message = e.to_string();
                let dropped = (bytes.len() - last).to_string();
                assert!(message.contains(&dropped), "{message}");
                assert!(message.contains("wf --store <dir> repair"), "{message}");
            }
            Err(e) => panic!("expected Corrupt, got {e}"),
            Ok(_) => panic!("cut {tail} bytes of noise silently"),
        }
        assert_eq!(
            fs::read(&log).unwrap(),
            bytes,
            "a refused open changes nothing"
        );
        let cut = FileStore::repair(dir.path())
            .unwrap()
            .expect("the repair cut something");
        assert_eq!((cut.offset, cut.repaired), (last as u64, true));
        assert_eq!(cut.bytes, (bytes.len() - last) as u64);
        let saved = cut.saved_to.expect("the cut bytes are saved");
        assert_eq!(fs::read(&saved).unwrap(), &bytes[last..]);
        assert_eq!(fs::read(&log).unwrap(), &full[..last]);
        let store = FileStore::open_with(dir.path(), opts()).unwrap();
        assert_eq!(store.torn_tail(), None, "the repaired log is whole");
        assert_eq!(
            store.invocation(root(0).id).unwrap().status(),
            Status::Running
        );
    }
}

/// The case: a valid header followed by a megabyte of garbage is not a torn tail.
#[test]
fn a_megabyte_of_garbage_after_the_header_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    drop(FileStore::open_with(dir.path(), opts()).unwrap());
    let log = log_path(dir.path());
    let mut bytes = fs::read(&log).unwrap();
    assert_eq!(bytes.len(), HEADER_LEN);
    bytes.extend_from_slice(&noise(1 << 20, 9));
    fs::write(&log, &bytes).unwrap();
    match FileStore::open_with(dir.path(), opts()) {
        Err(StoreError::Corrupt { offset, reason, .. }) => {
            assert_eq!(offset, HEADER_LEN as u64);
            assert!(reason.contains(&(1u64 << 20).to_string()), "{reason}");
        }
        Err(e) => panic!("expected Corrupt, got {e}"),
        Ok(_) => panic!("cut a megabyte of garbage silently"),
    }
    // The read-only inspector refuses it too, rather than showing an empty store.
    assert!(matches!(
        FileStore::snapshot(dir.path()),
        Err(StoreError::Corrupt { .. })
    ));
}

/// The same noise after a damaged record that valid records follow is still corruption: the scan
/// for valid records does not give up on a long tail.
#[test]
fn a_damaged_record_followed_by_valid_ones_and_noise_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let full = three_records(dir.path());
    let offsets = record_offsets(&full);
    let middle = offsets[1];
    let mut bytes = full.clone();
    bytes[middle + 20] ^= 0x40;
    bytes.extend_from_slice(&noise(4 << 20, 4));
    fs::write(log_path(dir.path()), &bytes).unwrap();
    match FileStore::open_with(dir.path(), opts()) {
        Err(StoreError::Corrupt { offset, .. }) => assert_eq!(offset, middle as u64),
        Err(e) => panic!("expected Corrupt, got {e}"),
        Ok(_) => panic!("opened a log damaged before acknowledged records"),
    }
    assert_eq!(
        fs::read(log_path(dir.path())).unwrap(),
        bytes,
        "nothing cut"
    );
}

#[test]
fn a_newer_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = three_records(dir.path());
    let current = current_format(&bytes);
    bytes[8..12].copy_from_slice(&(current + 1).to_le_bytes());
    fs::write(log_path(dir.path()), &bytes).unwrap();
    match FileStore::open_with(dir.path(), opts()) {
        Err(e @ StoreError::NewerFormat { .. }) => {
            assert!(e.to_string().contains("upgrade wf"), "{e}");
            let StoreError::NewerFormat {
                path,
                found,
                supported,
            } = e
            else {
                unreachable!()
            };
            assert_eq!(
                (path, found, supported),
                (log_path(dir.path()), current + 1, current)
            );
        }
        Err(e) => panic!("expected NewerFormat, got {e}"),
        Ok(_) => panic!("opened a newer format"),
    }
    assert_eq!(
        fs::read(log_path(dir.path())).unwrap(),
        bytes,
        "left untouched"
    );
}

#[test]
fn an_older_pre_release_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = three_records(dir.path());
    let current = current_format(&bytes);
    for older in 1..2u32 {
        bytes[8..12].copy_from_slice(&older.to_le_bytes());
        fs::write(log_path(dir.path()), &bytes).unwrap();
        match FileStore::open_with(dir.path(), opts()) {
            Err(e @ StoreError::OlderFormat { .. }) => {
                let message = e.to_string();
                assert!(message.contains("new store directory"), "{message}");
                assert!(message.contains("in-flight workflows"), "{message}");
                let StoreError::OlderFormat {
                    path,
                    found,
                    supported,
                } = e
                else {
                    unreachable!()
                };
                assert_eq!(
                    (path, found, supported),
                    (log_path(dir.path()), older, current)
                );
            }
            Err(e) => panic!("format {older}: expected OlderFormat, got {e}"),
            Ok(_) => panic!("format {older}: opened an older format"),
        }
        assert!(matches!(
            FileStore::snapshot(dir.path()),
            Err(StoreError::OlderFormat { found, .. }) if found == older
        ));
        assert_eq!(
            fs::read(log_path(dir.path())).unwrap(),
            bytes,
            "left untouched"
        );
    }
}

#[test]
fn a_file_that_is_not_a_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(log_path(dir.path()), b"hello, not a log").unwrap();
    match FileStore::open_with(dir.path(), opts()) {
        Err(StoreError::Corrupt { offset: 0, .. }) => {}
        Err(e) => panic!("expected Corrupt at 0, got {e}"),
        Ok(_) => panic!("opened a file that is not a log"),
    }
}

#[test]
fn a_file_given_as_the_store_directory_is_not_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wf.log");
    fs::write(&file, b"").unwrap();
    for result in [
        FileStore::open_with(&file, opts()).map(|_| ()),
        FileStore::snapshot(&file).map(|_| ()),
    ] {
        match result {
            Err(e @ StoreError::NotADirectory { .. }) => {
                assert!(e.to_string().contains("is not a directory"), "{e}");
                assert!(e.to_string().contains(&file.display().to_string()), "{e}");
            }
            Err(e) => panic!("expected NotADirectory, got {e}"),
            Ok(()) => panic!("opened a file as a store directory"),
        }
    }
}

#[test]
fn a_second_open_is_locked_until_the_first_closes() {
    let dir = tempfile::tempdir().unwrap();
    let first = FileStore::open_with(dir.path(), opts()).unwrap();
    first.submit(root(0), at(0)).unwrap();
    match FileStore::open_with(dir.path(), opts()) {
        Err(e @ StoreError::StoreLocked { .. }) => {
            let message = e.to_string();
            // It names the real thing: the feature, the builder call and the URL form.
            for part in ["`redis` feature", ".redis(", "WF_STORE=redis://"] {
                assert!(message.contains(part), "{part}: {message}");
            }
            assert!(
                message.contains(&dir.path().display().to_string()),
                "{message}"
            );
        }
        Err(e) => panic!("expected StoreLocked, got {e}"),
        Ok(_) => panic!("two stores own one directory"),
    }
    drop(first);
    let second = FileStore::open_with(dir.path(), opts()).unwrap();
    assert_eq!(
        second.invocation(root(0).id).unwrap().status(),
        Status::Pending
    );
}

#[test]
fn state_survives_reopen_and_a_stale_compaction_file_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open_with(dir.path(), opts()).unwrap();
    for n in 0..20 {
        run_one(&store, n, at(n));
    }
    store.submit(root(100), at(50)).unwrap();
    let claim = store
        .claim(
            &WorkerId::new("w"),
            &workload_tasks(),
            std::time::Duration::from_secs(5),
            at(51),
        )
        .unwrap()
        .unwrap();
    store
        .cancel(root(100).id, "operator said so", at(52))
        .unwrap();
    store.submit(root(101), at(53)).unwrap();
    let before: Vec<_> = store.workflows().unwrap();
    let counts = store.counts().unwrap();
    drop(store);
    fs::write(dir.path().join("wf.log.compact"), b"half a compaction").unwrap();

    let store = FileStore::open_with(dir.path(), opts()).unwrap();
    assert!(!dir.path().join("wf.log.compact").exists());
    assert_eq!(store.workflows().unwrap(), before);
    assert_eq!(store.counts().unwrap(), counts);
    for n in 0..20 {
        assert!(check_whole(&store, &store.invocation(root(n).id).unwrap()));
    }
    assert!(matches!(
        store.commit(&claim.lease, commit_of(100), at(54)),
        Err(StoreError::LeaseLost { .. })
    ));
    // The queue is rebuilt: the pending invocation is claimable.
    assert_eq!(claim_and_finish(&store, "w", at(55)), Some(101));
    assert_eq!(
        store.invocation(root(101).id).unwrap().status(),
        Status::Success
    );
    assert_eq!(
        store
            .invocation(InvocationId::from_u128(101))
            .unwrap()
            .status(),
        Status::Cancelled,
        "root(100), cancelled"
    );
}

/// A store closed while another thread of the process spawns child processes can be reopened at
/// once: a forked child shares the lock's open file until it execs, so closing must unlock
/// explicitly rather than rely on closing the descriptor.
#[test]
fn closing_releases_the_lock_even_while_other_threads_spawn_processes() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    // Any child process: what matters is the fork in between.
                    let _ = std::process::Command::new("true").status();
                }
            });
        }
        let result = (0..300).try_for_each(|round| {
            let store = FileStore::open_with(dir.path(), opts()).map_err(|e| (round, e))?;
            drop(store);
            Ok(())
        });
        // An open refused after taking the lock (a damaged log) releases it at once too.
        let log = log_path(dir.path());
        let whole = fs::read(&log).unwrap();
        let result = result.and_then(|()| {
            (0..30).try_for_each(|round| {
                let mut damaged = whole.clone();
                damaged.extend_from_slice(&[0xff; 1 << 20]);
                fs::write(&log, &damaged).unwrap();
                match FileStore::open_with(dir.path(), opts()) {
                    Err(StoreError::Corrupt { .. }) => {}
                    other => panic!("expected Corrupt, got {other:?}"),
                }
                FileStore::repair(dir.path()).map_err(|e| (round, e))?;
                Ok(())
            })
        });
        done.store(true, Ordering::Relaxed);
        if let Err((round, e)) = result {
            panic!("reopening right after closing failed in round {round}: {e}");
        }
    });
}

/// An operator's retry is in the log: after reopening (and after compaction) the invocation is
/// still pending, claimable, with its journal.
#[test]
fn a_retry_survives_reopening_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open_with(dir.path(), opts()).unwrap();
    store.submit(root(0), at(0)).unwrap();
    let claim = store
        .claim(
            &WorkerId::new("w"),
            &workload_tasks(),
            std::time::Duration::from_secs(60),
            at(0),
        )
        .unwrap()
        .unwrap();
    let failed = wf_store::Commit {
        journal: journal_of(2),
        ..wf_store::Commit::outcome(wf_store::Outcome::Failed(wf_core::Failure::new(
            wf_core::FailureKind::Task,
            "declined",
        )))
    };
    store.commit(&claim.lease, failed, at(1)).unwrap();
    let id = claim.lease.invocation;
    store.retry(id, at(2)).unwrap();
    drop(store);

    for compact in [false, true] {
        let store = FileStore::open_with(dir.path(), opts()).unwrap();
        if compact {
            store.compact().unwrap();
        }
        let rec = store.invocation(id).unwrap();
        assert_eq!(rec.status(), Status::Pending, "compacted: {compact}");
        assert_eq!(store.journal(id).unwrap(), journal_of(2));
        drop(store);
    }
    let store = FileStore::open_with(dir.path(), opts()).unwrap();
    let again = store
        .claim(
            &WorkerId::new("w2"),
            &workload_tasks(),
            std::time::Duration::from_secs(60),
            at(3),
        )
        .unwrap()
        .unwrap();
    assert_eq!(again.lease.invocation, id);
    assert_eq!(again.journal, journal_of(2));
}
