//! How the scripts reach the server: as a Redis 7 function library (`FUNCTION LOAD`, called by
//! `FCALL`), reloaded when the server lost it, and by `EVALSHA` on a server without functions.
//! Each test runs a real `redis-server` of its own.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use wf_core::{Status, WorkerId};
use wf_store::conformance::fixtures::{T0, root, tasks};
use wf_store::redis::RedisStore;
use wf_store::redis::testing::{
    RedisCluster, ServerOptions, available_or_skip, server_or_skip, unique_namespace,
};
use wf_store::{Commit, Outcome, StoreRead, StoreWork};

/// How many calls of `command` (lower case, `fcall` or `evalsha`) the server at `url` served.
fn calls(url: &str, command: &str) -> u64 {
    let mut admin = redis::Client::open(url).unwrap().get_connection().unwrap();
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut admin)
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{command}:calls=")))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

/// The names of the function libraries loaded on the server at `url`.
fn libraries(url: &str) -> Vec<String> {
    let mut admin = redis::Client::open(url).unwrap().get_connection().unwrap();
    let list: redis::Value = redis::cmd("FUNCTION")
        .arg("LIST")
        .query(&mut admin)
        .unwrap();
    let mut names = Vec::new();
    if let redis::Value::Array(libs) = list {
        for lib in libs {
            let fields: Vec<(String, redis::Value)> = match lib {
                redis::Value::Array(items) => items
                    .chunks(2)
                    .filter_map(|kv| {
                        Some((
                            redis::from_redis_value::<String>(kv[0].clone()).ok()?,
                            kv[1].clone(),
                        ))
                    })
                    .collect(),
                redis::Value::Map(items) => items
                    .into_iter()
                    .filter_map(|(k, v)| Some((redis::from_redis_value::<String>(k).ok()?, v)))
                    .collect(),
                _ => Vec::new(),
            };
            for (k, v) in fields {
                if k == "library_name" {
                    names.push(redis::from_redis_value::<String>(v).unwrap());
                }
            }
        }
    }
    names
}

fn function_flush(url: &str) {
    let mut admin = redis::Client::open(url).unwrap().get_connection().unwrap();
    let _: () = redis::cmd("FUNCTION")
        .arg("FLUSH")
        .query(&mut admin)
        .unwrap();
}

/// Submits, claims and commits one invocation of task `t` numbered `n`.
fn run_one(store: &RedisStore, n: u128) {
    let worker = WorkerId::new("w");
    store.submit(root(n, "t", b""), T0).unwrap();
    let claim = store
        .claim(&worker, &tasks(&["t"]), Duration::from_secs(60), T0)
        .unwrap()
        .expect("the submitted invocation is claimed");
    store
        .commit(
            &claim.lease,
            Commit::outcome(Outcome::Success(b"ok".to_vec())),
            T0,
        )
        .unwrap();
    assert_eq!(
        store
            .invocation(claim.lease.invocation)
            .unwrap()
            .state
            .status,
        Status::Success
    );
}

#[test]
fn scripts_are_called_as_functions_and_a_flushed_library_is_reloaded() {
    let Some(server) = server_or_skip("scripts_as_functions", &ServerOptions::default()) else {
        return;
    };
    let admin = server.url("");
    // Two shards: a claim probes both in one pipeline, which meets the flushed library too.
    let url = server.url(&format!("ns={}&shards=2", unique_namespace("fn")));
    let store = RedisStore::open(&url).unwrap();
    let loaded = libraries(&admin);
    assert_eq!(loaded.len(), 1, "{loaded:?}");
    assert!(loaded[0].starts_with("wf_"), "{loaded:?}");
    run_one(&store, 1);
    assert!(
        calls(&admin, "fcall") >= 4,
        "submit, probe, claim, commit, read by FCALL"
    );
    let evalsha = calls(&admin, "evalsha");

    // A server that lost the library (FUNCTION FLUSH; a restart without persistence): the next
    // call loads it again and succeeds, a single call and a pipelined one alike.
    function_flush(&admin);
    store.submit(root(2, "t", b""), T0).unwrap();
    assert_eq!(libraries(&admin), loaded, "reloaded by the failed call");
    function_flush(&admin);
    let claim = store
        .claim(
            &WorkerId::new("w"),
            &tasks(&["t"]),
            Duration::from_secs(60),
            T0,
        )
        .unwrap();
    assert!(claim.is_some(), "the claim after the flush claims");
    assert_eq!(libraries(&admin), loaded);
    function_flush(&admin);
    run_one(&store, 3);
    // Only bind goes by EVALSHA (once per open and app check): no script fell back.
    assert_eq!(calls(&admin, "evalsha"), evalsha);

    // A second store (another process, another wf build of the same scripts) finds the library
    // there and uses it as it is.
    let again = RedisStore::open(&url).unwrap();
    assert_eq!(again.counts().unwrap().total(), 3);
    assert_eq!(libraries(&admin), loaded);
}

#[test]
fn a_server_without_functions_is_served_by_evalsha() {
    // A server that does not know FUNCTION answers as Redis 6 does: "unknown command".
    let options = ServerOptions {
        extra: vec!["--rename-command".into(), "FUNCTION".into(), String::new()],
        ..ServerOptions::default()
    };
    let Some(server) = server_or_skip("a_server_without_functions", &options) else {
        return;
    };
    let admin = server.url("");
    let url = server.url(&format!("ns={}&shards=2", unique_namespace("nofn")));
    let store = RedisStore::open(&url).unwrap();
    run_one(&store, 1);
    assert_eq!(calls(&admin, "fcall"), 0);
    assert!(calls(&admin, "evalsha") >= 5);
    // The script cache emptied (as by a restart without persistence): loaded again.
    let mut con = redis::Client::open(admin.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let _: () = redis::cmd("SCRIPT").arg("FLUSH").query(&mut con).unwrap();
    run_one(&store, 2);
    assert_eq!(store.counts().unwrap().total(), 2);
}

#[test]
fn a_cluster_loads_the_library_on_every_master_and_again_after_a_flush() {
    if !available_or_skip("a_cluster_loads_the_library") {
        return;
    }
    let cluster = RedisCluster::start(3).unwrap();
    let url = cluster.url(&format!("ns={}&shards=6", unique_namespace("fncl")));
    let store = RedisStore::open(&url).unwrap();
    let node_urls: Vec<String> = cluster.nodes().iter().map(|n| n.url("")).collect();
    let loaded = libraries(&node_urls[0]);
    assert_eq!(loaded.len(), 1, "{loaded:?}");
    for n in &node_urls {
        assert_eq!(libraries(n), loaded, "every master has the library");
    }
    for n in 1..=6 {
        run_one(&store, n);
    }
    // One master lost it (a replaced node; FUNCTION FLUSH): calls that reach it reload it.
    function_flush(&node_urls[1]);
    for n in 7..=18 {
        run_one(&store, n);
    }
    assert_eq!(store.counts().unwrap().total(), 18);
    for n in &node_urls {
        assert_eq!(libraries(n), loaded, "every master has the library again");
    }
    // A second store finds the library on every master.
    let again = RedisStore::open(&url).unwrap();
    assert_eq!(again.counts().unwrap().total(), 18);
}

#[test]
fn an_acl_user_without_function_load_is_served_by_evalsha() {
    let ns = unique_namespace("aclfn");
    let rule = format!(
        "{} -function|load",
        wf_store::redis::testing::wf_acl_rule("plain", "plain-secret", &ns)
    );
    let options = ServerOptions {
        acl: vec![rule],
        ..ServerOptions::default()
    };
    let Some(server) = server_or_skip("an_acl_user_without_function_load", &options) else {
        return;
    };
    let admin = server.url("");
    let url = format!(
        "redis://plain:plain-secret@127.0.0.1:{}/?ns={ns}",
        server.port()
    );
    let store = RedisStore::open(&url).unwrap();
    run_one(&store, 1);
    assert_eq!(calls(&admin, "fcall"), 0);
    assert!(libraries(&admin).is_empty());
    assert!(calls(&admin, "evalsha") >= 5);
}
