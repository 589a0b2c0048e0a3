//! The file store keeps the app it belongs to in its log: across reopening, compaction and in
//! read-only snapshots.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod file_common;

use file_common::*;
use wf_store::{FileOptions, FileStore, StoreError, StoreRead, StoreWork};

/// Keeps everything whatever the clock: `bind_app` runs at the system's time, the workload at
/// the fixtures' (2026-01-01), which default retention would count as long finished.
fn open(dir: &std::path::Path) -> FileStore {
    FileStore::open_with(dir, FileOptions::default().keep_everything()).unwrap()
}

#[test]
fn the_app_survives_reopening_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert_eq!(store.app_id().unwrap(), None);
    run_one(&store, 0, at(0));
    store.bind_app("shop").unwrap();
    drop(store);

    let store = open(dir.path());
    assert_eq!(
        store.app_id().unwrap().as_deref(),
        Some("shop"),
        "after reopening"
    );
    match store.bind_app("billing") {
        Err(StoreError::AppMismatch {
            store: name,
            recorded,
            requested,
        }) => {
            assert_eq!(
                name,
                dir.path().display().to_string(),
                "names the directory"
            );
            assert_eq!((recorded.as_str(), requested.as_str()), ("shop", "billing"));
        }
        other => panic!("expected AppMismatch, got {other:?}"),
    }
    store.bind_app("shop").unwrap();
    for n in 1..20 {
        run_one(&store, n, at(n));
    }
    store.compact().unwrap();
    drop(store);

    let store = open(dir.path());
    assert_eq!(
        store.app_id().unwrap().as_deref(),
        Some("shop"),
        "after compaction"
    );
    assert_eq!(store.counts().unwrap().total(), 20);
    let copy = FileStore::snapshot(dir.path()).unwrap();
    assert_eq!(
        copy.app_id().unwrap().as_deref(),
        Some("shop"),
        "in a snapshot"
    );
    assert!(matches!(
        store.bind_app("billing"),
        Err(StoreError::AppMismatch { .. })
    ));
}
