//! The conformance suite against the memory backend.

use wf_store::MemoryStore;
use wf_store::conformance::Subject;

wf_store::conformance_tests!(|| Subject::new(MemoryStore::new()));
wf_store::steering_conformance_tests!(|| Subject::new(MemoryStore::new()));

/// This backend runs children inline: it must support checkpoints.
#[test]
fn supports_checkpoints() {
    let s = Subject::new(MemoryStore::new());
    wf_store::conformance::checkpoint::supports_checkpoints(&*s.store);
}
