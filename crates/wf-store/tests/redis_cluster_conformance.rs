//! The conformance suite against a real local Redis Cluster (three masters started on free
//! ports and joined with `redis-cli --cluster create`, once per test process), with six shards
//! so that workflow trees spread over the masters.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use wf_store::conformance::Subject;
use wf_store::redis::RedisStore;
use wf_store::redis::testing::{shared_cluster, unique_namespace};

fn subject() -> Option<Subject> {
    let cluster = shared_cluster("redis_cluster_conformance")?;
    let url = cluster.url(&format!("ns={}&shards=6", unique_namespace("cluster")));
    Some(Subject::new(
        RedisStore::open(&url).expect("the Redis Cluster store opens"),
    ))
}

wf_store::conformance_tests!(subject);
