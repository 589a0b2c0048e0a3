//! Faults on a real `redis-server`: an unreachable server, a server busy with a long script, a
//! server killed and restarted. Transient ones are `StoreError::Unavailable` (`is_transient`),
//! reported without the URL's password; operations that may be repeated ride them out.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpListener;
use std::time::{Duration, Instant};

use wf_core::{Status, WorkerId};
use wf_store::conformance::fixtures::{T0, root, tasks};
use wf_store::redis::RedisStore;
use wf_store::redis::testing::{ServerOptions, server_or_skip, unique_namespace};
use wf_store::{StoreAdmin, StoreError, StoreRead, StoreWork};

const SECRET: &str = "fault-test-secret";

#[test]
fn an_unreachable_server_is_unavailable_and_the_password_stays_hidden() {
    if server_or_skip(
        "an_unreachable_server_is_unavailable",
        &ServerOptions::default(),
    )
    .is_none()
    {
        return;
    }
    // A port nothing listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://app:{SECRET}@127.0.0.1:{port}/?connect_timeout_ms=500");
    let started = Instant::now();
    let e = RedisStore::open(&url).unwrap_err();
    assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
    assert!(e.is_transient());
    for shown in [e.to_string(), format!("{e:?}")] {
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(shown.contains("127.0.0.1"), "names the server: {shown}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "gave up in bounded time"
    );
}

#[test]
fn a_busy_server_is_transient_and_waited_out() {
    let Some(server) = server_or_skip(
        "a_busy_server_is_transient_and_waited_out",
        &ServerOptions::default(),
    ) else {
        return;
    };
    let url = server.url(&format!("ns={}", unique_namespace("busy")));
    let store = RedisStore::open(&url).unwrap();
    store.submit(root(1, "t", b""), T0).unwrap();
    let client = redis::Client::open(server.url("")).unwrap();
    let mut admin = client.get_connection().unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("busy-reply-threshold")
        .arg(50)
        .query(&mut admin)
        .unwrap();
    // A script that keeps the server busy for about a second.
    let busy = std::thread::spawn(move || {
        let mut con = client.get_connection().unwrap();
        let script = "local t = redis.call('TIME') local s = t[1] * 1e6 + t[2] \
                      while true do local n = redis.call('TIME') \
                      if n[1] * 1e6 + n[2] - s > 1000000 then return 1 end end";
        let _: i64 = redis::cmd("EVAL")
            .arg(script)
            .arg(0)
            .query(&mut con)
            .unwrap();
    });
    // Wait until the server says BUSY (nothing announces it: ask, with a deadline).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r: redis::RedisResult<String> = redis::cmd("PING").query(&mut admin);
        match r {
            Err(e) if e.code() == Some("BUSY") => break,
            _ if Instant::now() > deadline => panic!("the server never got busy"),
            _ => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    // An operation that is not repeated blindly (a cancel) reports the busy server as
    // transient; one that may be repeated (a read) waits it out.
    match store.cancel(wf_core::InvocationId::from_u128(1), "stop", T0) {
        Err(e @ StoreError::Unavailable(_)) => assert!(e.is_transient()),
        other => panic!("a cancel during BUSY: expected Unavailable, got {other:?}"),
    }
    assert_eq!(store.counts().unwrap().get(Status::Pending), 1);
    busy.join().unwrap();
}

#[test]
fn a_restarted_server_is_reconnected_and_keeps_what_it_acknowledged() {
    let options = ServerOptions {
        aof_always: true,
        ..ServerOptions::default()
    };
    let Some(mut server) = server_or_skip("a_restarted_server_is_reconnected", &options) else {
        return;
    };
    // Two shards: claims probe both shards in one pipeline, which after the restart meets the
    // server's empty script cache (NOSCRIPT inside a pipeline).
    let url = server.url(&format!("ns={}&shards=2", unique_namespace("restart")));
    let store = RedisStore::open(&url).unwrap();
    let worker = WorkerId::new("w");
    for n in 1..=3 {
        store.submit(root(n, "t", b""), T0).unwrap();
    }
    let c = store
        .claim(&worker, &tasks(&["t"]), Duration::from_secs(60), T0)
        .unwrap()
        .unwrap();
    store.bind_app("restart").unwrap();
    server.restart().unwrap();
    // Every pooled connection is dead now: the next operations reconnect and find everything
    // acknowledged before the kill.
    assert_eq!(store.app_id().unwrap().as_deref(), Some("restart"));
    let rec = store.invocation(c.lease.invocation).unwrap();
    assert_eq!(rec.state.status, Status::Running);
    store
        .commit(
            &c.lease,
            wf_store::Commit::outcome(wf_store::Outcome::Success(b"ok".to_vec())),
            T0,
        )
        .unwrap();
    let next = store
        .claim(&worker, &tasks(&["t"]), Duration::from_secs(60), T0)
        .unwrap();
    assert!(next.is_some(), "the queue survived the restart");
    assert_eq!(store.counts().unwrap().total(), 3);
}
