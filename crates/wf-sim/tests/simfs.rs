//! The simulated file system keeps what each crash kind keeps, and the file store on it keeps
//! what it acknowledged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use wf_sim::rng::SimRng;
use wf_sim::simfs::{CrashKind, Fault, SimFs};
use wf_store::file::fs::{FileSystem, OpenHow};
use wf_store::{FileOptions, FileStore, StoreWork};

const DIR: &str = "/d";

/// A disk with `/d/f` holding `synced` (synced, and its name synced) then `unsynced`.
fn disk(synced: &[u8], unsynced: &[u8]) -> SimFs {
    let fs = SimFs::new();
    fs.create_dir_all(Path::new(DIR), 0o700).unwrap();
    let mut f = fs.open(Path::new("/d/f"), OpenHow::Append, 0o600).unwrap();
    f.write_all(synced).unwrap();
    f.sync_data().unwrap();
    fs.sync_dir(Path::new(DIR)).unwrap();
    f.write_all(unsynced).unwrap();
    fs
}

#[test]
fn a_process_crash_keeps_everything_written() {
    let fs = disk(b"abc", b"def");
    fs.crash(CrashKind::Process, &mut SimRng::new(1));
    assert_eq!(fs.contents(Path::new("/d/f")).unwrap(), b"abcdef");
}

#[test]
fn a_power_loss_keeps_only_synced_bytes() {
    let fs = disk(b"abc", b"def");
    fs.crash(CrashKind::PowerLoss, &mut SimRng::new(1));
    assert_eq!(fs.contents(Path::new("/d/f")).unwrap(), b"abc");
}

#[test]
fn a_torn_crash_keeps_a_prefix_of_the_unsynced_bytes_and_every_prefix_happens() {
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..200 {
        let fs = disk(b"abc", b"defgh");
        fs.crash(CrashKind::Torn, &mut SimRng::new(seed));
        let kept = fs.contents(Path::new("/d/f")).unwrap();
        assert!(
            b"abcdefgh".starts_with(&kept) && kept.len() >= 3,
            "{kept:?}"
        );
        seen.insert(kept.len());
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec![3, 4, 5, 6, 7, 8]);
}

#[test]
fn a_new_file_whose_directory_was_not_synced_is_gone_after_a_power_loss() {
    let fs = disk(b"abc", b"");
    let mut g = fs.open(Path::new("/d/g"), OpenHow::Append, 0o600).unwrap();
    g.write_all(b"x").unwrap();
    g.sync_data().unwrap();
    fs.crash(CrashKind::PowerLoss, &mut SimRng::new(1));
    assert!(fs.contents(Path::new("/d/g")).is_none());
    assert!(fs.metadata(Path::new("/d/g")).unwrap().is_none());
}

#[test]
fn a_rename_not_yet_synced_has_either_outcome_in_a_torn_crash_and_holds_after_a_dir_sync() {
    let mut outcomes = std::collections::BTreeSet::new();
    for seed in 0..50 {
        let fs = disk(b"old", b"");
        let mut t = fs
            .open(Path::new("/d/t"), OpenHow::Truncate, 0o600)
            .unwrap();
        t.write_all(b"new").unwrap();
        t.sync_data().unwrap();
        fs.rename(Path::new("/d/t"), Path::new("/d/f")).unwrap();
        fs.crash(CrashKind::Torn, &mut SimRng::new(seed));
        outcomes.insert(fs.contents(Path::new("/d/f")).unwrap());
    }
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");

    let fs = disk(b"old", b"");
    let mut t = fs
        .open(Path::new("/d/t"), OpenHow::Truncate, 0o600)
        .unwrap();
    t.write_all(b"new").unwrap();
    t.sync_data().unwrap();
    fs.rename(Path::new("/d/t"), Path::new("/d/f")).unwrap();
    fs.sync_dir(Path::new(DIR)).unwrap();
    fs.crash(CrashKind::PowerLoss, &mut SimRng::new(1));
    assert_eq!(fs.contents(Path::new("/d/f")).unwrap(), b"new");
    assert!(fs.contents(Path::new("/d/t")).is_none());
}

#[test]
fn a_failed_fsync_leaves_the_unsynced_bytes_in_doubt_even_for_a_process_crash() {
    let mut kept = std::collections::BTreeSet::new();
    for seed in 0..50 {
        let fs = disk(b"abc", b"def");
        let mut f = fs.open(Path::new("/d/f"), OpenHow::Append, 0o600).unwrap();
        fs.arm(0, Fault::SyncEnospc);
        let err = f.sync_data().unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::StorageFull);
        assert_eq!(fs.fired(), Some(Fault::SyncEnospc));
        drop(f);
        fs.crash(CrashKind::Process, &mut SimRng::new(seed));
        let bytes = fs.contents(Path::new("/d/f")).unwrap();
        assert!(
            b"abcdef".starts_with(&bytes) && bytes.len() >= 3,
            "{bytes:?}"
        );
        kept.insert(bytes.len());
    }
    assert!(kept.contains(&3) && kept.contains(&6), "{kept:?}");
}

#[test]
fn after_the_process_dies_nothing_reaches_the_disk() {
    let fs = disk(b"abc", b"");
    let mut f = fs.open(Path::new("/d/f"), OpenHow::Append, 0o600).unwrap();
    fs.arm(fs.ops() + 1, Fault::Die);
    assert!(f.write_all(b"zzz").is_err());
    assert!(f.sync_data().is_err());
    assert!(fs.open(Path::new("/d/h"), OpenHow::Append, 0o600).is_err());
    fs.crash(CrashKind::Process, &mut SimRng::new(1));
    assert_eq!(fs.contents(Path::new("/d/f")).unwrap(), b"abc");
    // The new process can write again, and old handles stay dead.
    assert!(f.write_all(b"zzz").is_err());
    assert!(fs.open(Path::new("/d/h"), OpenHow::Append, 0o600).is_ok());
}

#[test]
fn what_the_file_store_acknowledged_survives_a_power_loss_and_the_rest_does_not_matter() {
    let fs = SimFs::new();
    let options = || FileOptions::default().file_system(Arc::new(fs.clone()));
    let store = FileStore::open_with(DIR, options()).unwrap();
    store.bind_app("sim").unwrap();
    drop(store);
    fs.crash(CrashKind::PowerLoss, &mut SimRng::new(7));
    let store = FileStore::open_with(DIR, options()).unwrap();
    assert_eq!(
        wf_store::StoreRead::app_id(&store).unwrap().as_deref(),
        Some("sim")
    );
    assert_eq!(fs.unsynced_bytes(Path::new("/d/wf.log")), 0);
}

#[test]
fn a_reordered_crash_leaves_sector_holes_only_inside_the_unsynced_tail() {
    let synced = vec![1u8; 5000];
    let unsynced = vec![2u8; 20000];
    let mut holes = 0;
    for seed in 0..100 {
        let fs = disk(&synced, &unsynced);
        fs.crash(CrashKind::Reordered, &mut SimRng::new(seed));
        let kept = fs.contents(Path::new("/d/f")).unwrap();
        assert!(kept.len() >= synced.len());
        assert_eq!(
            &kept[..synced.len()],
            &synced[..],
            "synced bytes are never touched"
        );
        let zeros: Vec<usize> = (0..kept.len()).filter(|&i| kept[i] == 0).collect();
        if let (Some(&first), Some(&last)) = (zeros.first(), zeros.last()) {
            holes += 1;
            assert_eq!(first % 512, 0, "a hole starts at a sector boundary");
            assert!(last + 1 < kept.len(), "written bytes follow a hole");
            assert!(kept[last + 1..].iter().all(|&b| b == 2));
        }
    }
    assert!(holes > 0);
}

#[test]
fn a_write_cut_short_by_enospc_leaves_half_its_bytes_and_the_disk_usable() {
    let fs = disk(b"abc", b"");
    let mut f = fs.open(Path::new("/d/f"), OpenHow::Append, 0o600).unwrap();
    fs.arm(0, Fault::WriteEnospc);
    let err = f.write_all(b"wxyz").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::StorageFull);
    assert_eq!(fs.contents(Path::new("/d/f")).unwrap(), b"abcwx");
    f.write_all(b"!").unwrap();
    assert_eq!(fs.counts().write_enospc, 1);
}

/// An operation from another thread than the first operation's (a store's background thread)
/// is counted, and the driver reports it: its timing would make the history unrepeatable.
#[test]
fn operations_from_another_thread_are_counted() {
    let fs = disk(b"abc", b"def");
    assert_eq!(fs.foreign_ops(), 0);
    let other = fs.clone();
    std::thread::spawn(move || {
        let mut f = other
            .open(Path::new("/d/f"), OpenHow::Append, 0o600)
            .unwrap();
        f.write_all(b"ghi").unwrap();
    })
    .join()
    .unwrap();
    assert!(fs.foreign_ops() > 0);
}
