//! The conformance suite, unchanged, against real Redis servers started on free ports for this
//! test process (each test gets its own key namespace):
//!
//! - `single`: one `redis-server`, one shard (the default);
//! - `sharded`: the same server, four shards: cross-shard claims (a probe of every shard picks the
//!   one whose work waits longest), id lookups, each idle waiter's one `BLPOP` on every shard;
//! - `cluster`: a local 3-master Redis Cluster (`redis-cli --cluster create`), six shards so that
//!   workflow trees spread over the masters (doorbell listener threads, one per shard);
//! - `no_functions`: a server without `FUNCTION` (renamed away: it answers "unknown command" as
//!   Redis 6 does), two shards: every script by `EVALSHA`, the fallback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;
use wf_store::conformance::Subject;
use wf_store::redis::RedisStore;

use wf_store::redis::testing::{
    RedisServer, ServerOptions, available_or_skip, shared_cluster, shared_server, unique_namespace,
};

/// A store at `url`, or `None` (after the loud skip notice) without a server.
fn subject(url: Option<String>) -> Option<Subject> {
    Some(Subject::new(
        RedisStore::open(&url?).expect("the Redis store opens"),
    ))
}

fn single_url() -> Option<String> {
    shared_server("redis conformance (single)")
        .map(|s| s.url(&format!("ns={}", unique_namespace("single"))))
}

fn sharded_url() -> Option<String> {
    shared_server("redis conformance (sharded)")
        .map(|s| s.url(&format!("ns={}&shards=4", unique_namespace("sharded"))))
}

fn cluster_url() -> Option<String> {
    shared_cluster("redis conformance (cluster)")
        .map(|c| c.url(&format!("ns={}&shards=6", unique_namespace("cluster"))))
}

fn no_functions_url() -> Option<String> {
    static SERVER: OnceLock<Result<RedisServer, String>> = OnceLock::new();
    if !available_or_skip("redis conformance (no functions)") {
        return None;
    }
    let options = ServerOptions {
        remove_at_exit: true,
        extra: vec!["--rename-command".into(), "FUNCTION".into(), String::new()],
        ..ServerOptions::default()
    };
    match SERVER.get_or_init(|| RedisServer::start_with(&options)) {
        Ok(s) => Some(s.url(&format!("ns={}&shards=2", unique_namespace("nofn")))),
        Err(e) => panic!("could not start redis-server without FUNCTION: {e}"),
    }
}

/// One Redis setup as a module: its subject (a fresh namespace at the URL `$url` gives), the
/// whole suite, and the pin that it supports checkpoints (this backend runs children inline).
macro_rules! redis_suite {
    ($module:ident, $url:ident) => {
        mod $module {
            fn subject() -> Option<wf_store::conformance::Subject> {
                super::subject(super::$url())
            }

            wf_store::conformance_tests!(subject);
            wf_store::steering_conformance_tests!(subject);

            #[test]
            fn supports_checkpoints() {
                if let Some(s) = subject() {
                    wf_store::conformance::checkpoint::supports_checkpoints(&*s.store);
                }
            }
        }
    };
}

redis_suite!(single, single_url);
redis_suite!(sharded, sharded_url);
redis_suite!(cluster, cluster_url);
redis_suite!(no_functions, no_functions_url);
