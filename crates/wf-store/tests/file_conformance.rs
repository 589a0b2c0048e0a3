//! The conformance suite against the file backend (fsync on, as in production).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use wf_store::FileStore;
use wf_store::conformance::Subject;

fn subject() -> Subject {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = FileStore::open(dir.path()).expect("a fresh file store opens");
    Subject::with_guard(store, dir)
}

wf_store::conformance_tests!(subject);
wf_store::steering_conformance_tests!(subject);

/// This backend runs children inline: it must support checkpoints.
#[test]
fn supports_checkpoints() {
    let s = subject();
    wf_store::conformance::checkpoint::supports_checkpoints(&*s.store);
}
