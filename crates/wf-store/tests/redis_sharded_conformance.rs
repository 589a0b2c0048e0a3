//! The conformance suite against one real `redis-server` with four shards: cross-shard claims
//! (a probe of every shard picks the one whose work waits longest), id lookups, and one doorbell
//! listener blocking on every shard at once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use wf_store::conformance::Subject;
use wf_store::redis::RedisStore;
use wf_store::redis::testing::{shared_server, unique_namespace};

fn subject() -> Option<Subject> {
    let server = shared_server("redis_sharded_conformance")?;
    let url = server.url(&format!("ns={}&shards=4", unique_namespace("sharded")));
    Some(Subject::new(
        RedisStore::open(&url).expect("the sharded Redis store opens"),
    ))
}

wf_store::conformance_tests!(subject);
