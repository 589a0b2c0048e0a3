//! The conformance suite, unchanged, against real Redis servers started on free ports for this
//! test process (each test gets its own key namespace):
//!
//! - `single`: one `redis-server`, one shard (the default);
//! - `sharded`: the same server, four shards: cross-shard claims (a probe of every shard picks the
//!   one whose work waits longest), id lookups, one doorbell listener blocking on every shard;
//! - `cluster`: a local 3-master Redis Cluster (`redis-cli --cluster create`), six shards so that
//!   workflow trees spread over the masters.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use wf_store::conformance::Subject;
use wf_store::redis::RedisStore;
use wf_store::redis::testing::unique_namespace;

/// A store at `url`, or `None` (after the loud skip notice) without a server.
fn subject(url: Option<String>) -> Option<Subject> {
    Some(Subject::new(
        RedisStore::open(&url?).expect("the Redis store opens"),
    ))
}

mod single {
    use wf_store::redis::testing::shared_server;

    fn subject() -> Option<wf_store::conformance::Subject> {
        let url = shared_server("redis conformance (single)")
            .map(|s| s.url(&format!("ns={}", super::unique_namespace("single"))));
        super::subject(url)
    }

    wf_store::conformance_tests!(subject);
    wf_store::steering_conformance_tests!(subject);

    /// This backend runs children inline: it must support checkpoints.
    #[test]
    fn supports_checkpoints() {
        if let Some(s) = subject() {
            wf_store::conformance::checkpoint::supports_checkpoints(&*s.store);
        }
    }
}

mod sharded {
    use wf_store::redis::testing::shared_server;

    fn subject() -> Option<wf_store::conformance::Subject> {
        let url = shared_server("redis conformance (sharded)").map(|s| {
            s.url(&format!(
                "ns={}&shards=4",
                super::unique_namespace("sharded")
            ))
        });
        super::subject(url)
    }

    wf_store::conformance_tests!(subject);
    wf_store::steering_conformance_tests!(subject);

    /// This backend runs children inline: it must support checkpoints.
    #[test]
    fn supports_checkpoints() {
        if let Some(s) = subject() {
            wf_store::conformance::checkpoint::supports_checkpoints(&*s.store);
        }
    }
}

mod cluster {
    use wf_store::redis::testing::shared_cluster;

    fn subject() -> Option<wf_store::conformance::Subject> {
        let url = shared_cluster("redis conformance (cluster)").map(|c| {
            c.url(&format!(
                "ns={}&shards=6",
                super::unique_namespace("cluster")
            ))
        });
        super::subject(url)
    }

    wf_store::conformance_tests!(subject);
    wf_store::steering_conformance_tests!(subject);

    /// This backend runs children inline: it must support checkpoints.
    #[test]
    fn supports_checkpoints() {
        if let Some(s) = subject() {
            wf_store::conformance::checkpoint::supports_checkpoints(&*s.store);
        }
    }
}
