//! A whole app on an encrypted, authenticated Redis: a worker runs workflows over `rediss://` as
//! an ACL user (restricted to the commands and keys docs/backends.md lists; the `default` user
//! is off), loses the server, and carries on once it is back. Everything the process logs
//! through `tracing` (captured at every level by a subscriber of this test) and every `Debug`
//! shows no password.
#![cfg(feature = "redis-tls")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use wf::prelude::*;
use wf_store::redis::testing::{
    RedisServer, ServerOptions, available_or_skip, unique_namespace, wf_acl_rule,
};

const SECRET: &str = "pa55-for-the-whole-app-91c2";
const USER: &str = "shop";

fn acl_user() -> String {
    wf_acl_rule(USER, SECRET, "secrets-")
}

#[test]
fn an_app_over_tls_with_an_acl_user_logs_no_password_through_an_outage() {
    if !available_or_skip("an app over TLS with an ACL user") {
        return;
    }
    wf_store::log_capture::install();
    let mut server = RedisServer::start_with(&ServerOptions {
        tls: true,
        acl: vec![acl_user()],
        default_user_off: true,
        ..ServerOptions::default()
    })
    .unwrap();
    let ns = unique_namespace("secrets");
    let url = server
        .tls_url(
            &format!("{USER}:{SECRET}@"),
            &format!("ns={ns}&timeout_ms=1000&connect_timeout_ms=500"),
        )
        .unwrap();
    let builder = App::builder().app_id("secrets").redis(&url);
    let builder_debug = format!("{builder:?}");
    let app = builder.build().unwrap();
    let double = app
        .task(
            "double",
            |_: &TaskContext, n: u64| -> Result<u64, TaskError> { Ok(n * 2) },
        )
        .unwrap();
    let worker = app.worker().threads(2).start().unwrap();
    assert_eq!(
        double
            .call(&app, 21)
            .unwrap()
            .result_timeout(Duration::from_secs(30))
            .unwrap(),
        42
    );

    // The server goes away: the worker logs store errors (awaited in the captured log).
    server.kill();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !wf_store::log_capture::captured().contains("store error") {
        assert!(
            Instant::now() < deadline,
            "no store error logged: {}",
            wf_store::log_capture::captured()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let refused = double.call(&app, 1).map(|h| h.id());
    server.restart().unwrap();
    // Back (empty: no persistence): new work runs.
    assert_eq!(
        double
            .call(&app, 50)
            .unwrap()
            .result_timeout(Duration::from_secs(30))
            .unwrap(),
        100
    );
    worker.stop();

    let log = wf_store::log_capture::captured();
    assert!(log.contains("worker started"), "{log}");
    for (what, text) in [
        ("the tracing output", log),
        ("the builder's Debug", builder_debug),
        ("the app's Debug", format!("{app:?}")),
        ("the call during the outage", format!("{refused:?}")),
    ] {
        assert!(!text.contains(SECRET), "{what} shows the password: {text}");
    }
}
