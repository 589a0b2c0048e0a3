//! The conformance suite against the memory backend.

use wf_store::MemoryStore;
use wf_store::conformance::Subject;

wf_store::conformance_tests!(|| Subject::new(MemoryStore::new()));
wf_store::steering_conformance_tests!(|| Subject::new(MemoryStore::new()));
