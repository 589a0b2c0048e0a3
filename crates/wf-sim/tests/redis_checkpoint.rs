//! On Redis, through the fault-injecting proxy (a real `redis-server`): a checkpoint (a child
//! run inline) whose reply is lost, with Redis unreachable through every retry the store makes,
//! has an unknown outcome. It was applied; the body must not commit its entries again as if it
//! was not (the store refused those positions, and the runtime then failed the invocation), and
//! the child must not run twice.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wf_core::{Status, Timestamp};
use wf_runtime::testing::freeze_clock;
use wf_runtime::{App, TaskContext, TaskError};
use wf_sim::check;
use wf_sim::ledger::{Acks, Ledger, SharedAcks};
use wf_sim::proxy::{Proxy, ProxyFault};
use wf_store::RedisStore;
use wf_store::redis::testing::{self, RedisServer, ServerOptions};

const MARKER: &str = "lost-checkpoint-reply-marker";

#[test]
fn a_checkpoint_whose_reply_is_lost_in_an_outage_keeps_the_result_and_runs_the_child_once() {
    let test = "a_checkpoint_whose_reply_is_lost_in_an_outage";
    if !testing::available_or_skip(test) {
        return;
    }
    let options = ServerOptions {
        aof_always: true,
        ..ServerOptions::default()
    };
    let server = Arc::new(Mutex::new(
        RedisServer::start_with(&options).expect("redis-server starts"),
    ));
    let proxy = Arc::new(Proxy::start(server.clone()).expect("proxy starts"));
    let ns = testing::unique_namespace("ckpt");
    let store = RedisStore::open(&proxy.url(&format!("ns={ns}"))).expect("store opens");
    let acks = SharedAcks::new(Mutex::new(Acks::default()));
    // The outage ends once the checkpoint gave up: the commit that follows reaches Redis.
    let p = proxy.clone();
    let store = Ledger::new(store, acks.clone()).with_hook(Arc::new(move |call, _| {
        if call == "checkpoint" {
            p.heal();
        }
    }));
    let app = App::builder()
        .app_id("ckpt")
        .store(Arc::new(store))
        .lease_duration(Duration::from_millis(300))
        .build()
        .expect("app builds");
    let runs = Arc::new(AtomicU64::new(0));
    let r = runs.clone();
    let child = app
        .task("child", move |_: &TaskContext, s: String| {
            r.fetch_add(1, Ordering::SeqCst);
            Ok::<u64, TaskError>(s.len() as u64)
        })
        .expect("registers");
    let parent = app
        .task("parent", move |ctx: &TaskContext, x: u64| {
            let wf = ctx.wf();
            let _drawn = wf.random();
            let v = wf.execute_task(&child, format!("{MARKER}-{x}"))?;
            Ok::<u64, TaskError>(v + x)
        })
        .expect("registers");
    let mut now = Timestamp(1_893_456_000_000);
    freeze_clock(Some(now));
    // A first workflow without faults loads the scripts: the first `EVALSHA` of a script on a
    // fresh server is answered `NOSCRIPT` (not applied) and sent again.
    let warm = parent.call(&app, 0).expect("submitted");
    app.run_until_idle().expect("runs without faults");
    assert_eq!(warm.result().expect("a result"), MARKER.len() as u64 + 2);
    runs.store(0, Ordering::SeqCst);
    // Now the checkpoint is the first request carrying the child's argument: it is applied,
    // its reply lost, and Redis unreachable until the store gives up on it.
    proxy.arm_containing(MARKER.as_bytes(), ProxyFault::LostReplyThenOutage(0));
    let inv = parent.call(&app, 3).expect("submitted");
    let mut status = Status::Pending;
    for _ in 0..8 {
        // Errors of a round are the fault's; the next round (an hour later) recovers.
        let _ = app.run_until_idle();
        status = app
            .store()
            .invocation(inv.id())
            .expect("readable")
            .state
            .status;
        if status.is_final() {
            break;
        }
        now = now.saturating_add(Duration::from_secs(3600));
        freeze_clock(Some(now));
    }
    freeze_clock(None);
    let counts = proxy.counts();
    assert_eq!(counts.lost_replies, 1, "the fault fired: {counts:?}");
    assert!(counts.refused > 0, "the store met the outage: {counts:?}");
    let record = app.store().invocation(inv.id()).expect("readable");
    assert_eq!(
        record.state.status,
        Status::Success,
        "the parent ended {status:?}: {:?}",
        record.state.error
    );
    let expected = format!("{MARKER}-3").len() as u64 + 3;
    assert_eq!(inv.result().expect("a result"), expected);
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the child ran once");
    assert_eq!(
        check::acknowledged(&**app.store(), &acks),
        Vec::<String>::new()
    );
}
