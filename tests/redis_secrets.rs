//! A whole app on an encrypted, authenticated Redis: a worker runs workflows over `rediss://` as
//! an ACL user (restricted to the commands and keys docs/backends.md lists; the `default` user
//! is off), loses the server, and carries on once it is back. Everything the process logs
//! through `tracing` (captured at every level by a subscriber of this test) and every `Debug`
//! shows no password.
#![cfg(feature = "redis-tls")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use wf::prelude::*;
use wf_store::redis::testing::{
    RedisServer, ServerOptions, available_or_skip, unique_namespace, wf_acl_rule,
};

const SECRET: &str = "pa55-for-the-whole-app-91c2";
const USER: &str = "shop";

/// Everything `tracing` emitted in this process, as text.
static LOGGED: Mutex<String> = Mutex::new(String::new());

fn logged() -> String {
    LOGGED.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// A subscriber that writes every span and event, at every level, with all fields.
struct Capture;

struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        let _ = write!(self.0, " {}={value}", field.name());
    }
}

impl Capture {
    fn write(&self, head: &str, record: impl FnOnce(&mut Fields<'_>)) {
        let mut log = LOGGED.lock().unwrap_or_else(|p| p.into_inner());
        log.push_str(head);
        record(&mut Fields(&mut log));
        log.push('\n');
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        self.write(span.metadata().name(), |f| span.record(f));
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        self.write("record", |f| values.record(f));
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        self.write(event.metadata().level().as_str(), |f| event.record(f));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

fn acl_user() -> String {
    wf_acl_rule(USER, SECRET, "secrets-")
}

#[test]
fn an_app_over_tls_with_an_acl_user_logs_no_password_through_an_outage() {
    if !available_or_skip("an app over TLS with an ACL user") {
        return;
    }
    tracing::subscriber::set_global_default(Capture).expect("the only subscriber here");
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
    while !logged().contains("store error") {
        assert!(
            Instant::now() < deadline,
            "no store error logged: {}",
            logged()
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

    let log = logged();
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
