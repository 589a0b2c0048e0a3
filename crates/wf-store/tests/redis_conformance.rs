//! The conformance suite against a real `redis-server` (one per test process, started on a
//! free port; each test gets its own key namespace).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use wf_store::conformance::Subject;
use wf_store::redis::RedisStore;
use wf_store::redis::testing::{shared_server, unique_namespace};

fn subject() -> Option<Subject> {
    let server = shared_server("redis_conformance")?;
    let url = server.url(&format!("ns={}", unique_namespace("conf")));
    Some(Subject::new(
        RedisStore::open(&url).expect("the Redis store opens"),
    ))
}

wf_store::conformance_tests!(subject);
