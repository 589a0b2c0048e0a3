//! wf's durability on Redis is Redis's: a `redis-server` killed (SIGKILL) and started again on
//! the same directory comes back with every write it acknowledged only when it writes them to
//! disk first (`appendonly yes`, `appendfsync always`); without persistence, a restart loses
//! work wf already reported as submitted. What the simulator's `--redis` mode relies on, shown
//! both ways on real servers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use wf_runtime::{App, TaskContext, TaskError};
use wf_store::redis::testing::{self, RedisServer, ServerOptions};

/// Submits a workflow through wf, restarts the server, and tells whether wf still finds it.
fn survives_a_restart(options: &ServerOptions) -> bool {
    let mut server = RedisServer::start_with(options).expect("redis-server starts");
    let ns = testing::unique_namespace("restart");
    let app = App::builder()
        .app_id("restart")
        .redis(server.url(&format!("ns={ns}")))
        .lease_duration(Duration::from_millis(500))
        .build()
        .expect("app builds");
    let task = app
        .task("t", |_: &TaskContext, x: u64| Ok::<u64, TaskError>(x))
        .expect("registers");
    let inv = task.call(&app, 7).expect("submission acknowledged");
    server.restart().expect("the server comes back");
    app.store().invocation(inv.id()).is_ok()
}

#[test]
fn with_appendfsync_always_an_acknowledged_submission_survives_a_restart() {
    if !testing::available_or_skip("redis_restart_aof") {
        return;
    }
    let options = ServerOptions {
        aof_always: true,
        ..ServerOptions::default()
    };
    assert!(survives_a_restart(&options));
}

#[test]
fn without_persistence_a_restart_loses_an_acknowledged_submission() {
    if !testing::available_or_skip("redis_restart_no_aof") {
        return;
    }
    // `--appendonly no` and no snapshots: what a cache-configured Redis does.
    assert!(!survives_a_restart(&ServerOptions::default()));
}
