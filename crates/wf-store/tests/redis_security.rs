//! Authenticated, encrypted Redis: a real `redis-server` serving TLS (a throwaway CA made with
//! `openssl`) with an ACL user restricted to the commands and keys docs/backends.md lists, and
//! its `default` user switched off.
//!
//! - `secured`: the whole conformance suite over `rediss://` as that user;
//! - plain text to the TLS port, an untrusted certificate, a wrong password, no credentials:
//!   each refused with an error that says what to check;
//! - the password appears in no `Display`, `Debug` or error text, nor in anything logged through
//!   `tracing` while the store works, loses its server and gets it back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;

use wf_store::conformance::fixtures;
use wf_store::redis::testing::{
    RedisServer, ServerOptions, available_or_skip, unique_namespace, wf_acl_rule,
};
use wf_store::redis::{RedisStore, RedisUrl};
use wf_store::{StoreError, StoreRead, StoreSpec, StoreWork};

/// The ACL user's password: it must never be printed.
const SECRET: &str = "s3cret-acl-password-7f3a";
/// The ACL user.
const USER: &str = "wfapp";
/// Every namespace these tests use starts with this; the user may touch no other keys.
const NS_PREFIX: &str = "sec";

/// The ACL rule line of the user: exactly what docs/backends.md says an ACL user needs.
fn acl_user() -> String {
    wf_acl_rule(USER, SECRET, &format!("{NS_PREFIX}-"))
}

fn secured_options() -> ServerOptions {
    ServerOptions {
        tls: true,
        acl: vec![acl_user()],
        default_user_off: true,
        remove_at_exit: true,
        ..ServerOptions::default()
    }
}

/// A TLS + ACL server shared by this test process.
fn shared_secured(test: &str) -> Option<&'static RedisServer> {
    static SERVER: OnceLock<Result<RedisServer, String>> = OnceLock::new();
    if !available_or_skip(test) {
        return None;
    }
    match SERVER.get_or_init(|| RedisServer::start_with(&secured_options())) {
        Ok(s) => Some(s),
        Err(e) => panic!("{test}: could not start a TLS redis-server: {e}"),
    }
}

/// `rediss://wfapp:<password>@…` with a fresh namespace and `query`.
fn secured_url(server: &RedisServer, password: &str, query: &str) -> String {
    let ns = unique_namespace(NS_PREFIX);
    let query = if query.is_empty() {
        format!("ns={ns}")
    } else {
        format!("ns={ns}&{query}")
    };
    server
        .tls_url(&format!("{USER}:{password}@"), &query)
        .expect("a TLS server")
}

/// Fails if `text` holds the password.
fn assert_hidden(what: &str, text: &str) {
    assert!(!text.contains(SECRET), "{what} shows the password: {text}");
}

mod secured {
    fn subject() -> Option<wf_store::conformance::Subject> {
        let server = super::shared_secured("redis conformance (TLS + ACL user)")?;
        let url = super::secured_url(server, super::SECRET, "shards=2");
        Some(wf_store::conformance::Subject::new(
            wf_store::redis::RedisStore::open(&url).expect("the TLS + ACL store opens"),
        ))
    }

    wf_store::conformance_tests!(subject);
    wf_store::steering_conformance_tests!(subject);
}

/// Opening fails; returns the error's Display, checked for the password in Display and Debug.
fn refused(url: &str) -> String {
    match RedisStore::open(url) {
        Ok(store) => panic!("{} opened", store.url()),
        Err(e) => {
            assert_hidden("the error's Debug", &format!("{e:?}"));
            let shown = e.to_string();
            assert_hidden("the error", &shown);
            shown
        }
    }
}

#[test]
fn what_is_not_tls_or_not_the_user_is_refused_without_showing_the_password() {
    let Some(server) = shared_secured("refusals over TLS") else {
        return;
    };
    let port = server.tls_port().unwrap();
    // A wrong password, and no credentials at all (the default user is off).
    let wrong = refused(&secured_url(server, &format!("not-{SECRET}"), ""));
    assert!(
        wrong.contains("check the user name and password"),
        "{wrong}"
    );
    let anonymous = refused(&server.tls_url("", "ns=sec-anon").unwrap());
    assert!(
        anonymous.contains("check the user name and password"),
        "{anonymous}"
    );
    // A key outside the user's pattern: the ACL refuses it, and the message says where to look.
    let outside = refused(
        &server
            .tls_url(&format!("{USER}:{SECRET}@"), "ns=elsewhere")
            .unwrap(),
    );
    assert!(outside.contains("ACL"), "{outside}");
    // Plain text to the TLS port, and TLS trusting only the system's roots (not the test CA).
    refused(&format!(
        "redis://{USER}:{SECRET}@127.0.0.1:{port}/?ns=sec-plain&connect_timeout_ms=500"
    ));
    let untrusted = refused(&format!(
        "rediss://{USER}:{SECRET}@127.0.0.1:{port}/?ns=sec-ca"
    ));
    assert!(
        untrusted.to_lowercase().contains("certificate"),
        "{untrusted}"
    );
}

#[test]
fn the_password_is_in_no_display_or_debug() {
    let Some(server) = shared_secured("printing a TLS + ACL store") else {
        return;
    };
    let url = secured_url(server, SECRET, "");
    let store = RedisStore::open(&url).unwrap();
    let parsed = RedisUrl::parse(&url).unwrap();
    let spec: StoreSpec = url.parse().unwrap();
    for (what, shown) in [
        ("the store's Debug", format!("{store:?}")),
        ("its URL", store.url().to_string()),
        ("its URL's Debug", format!("{:?}", store.url())),
        ("a parsed URL's Debug", format!("{parsed:?}")),
        ("the password's Debug", format!("{:?}", parsed.password)),
        ("the store spec", spec.to_string()),
        ("the store spec's Debug", format!("{spec:?}")),
        ("redact_url", wf_store::redact_url(&url)),
        ("the test server's Debug", format!("{server:?}")),
        (
            "the test server's options",
            format!("{:?}", secured_options()),
        ),
    ] {
        assert_hidden(what, &shown);
        if what.contains("URL") || what.contains("spec") {
            assert!(shown.contains(USER), "{what} names the user: {shown}");
        }
    }
}

#[test]
fn nothing_logged_shows_the_password_while_the_server_goes_away_and_comes_back() {
    if !available_or_skip("tracing output of a TLS + ACL store") {
        return;
    }
    wf_store::log_capture::install();
    // Its directory (with the certificates) must outlive a kill: removed when dropped.
    let options = ServerOptions {
        remove_at_exit: false,
        ..secured_options()
    };
    let mut server = RedisServer::start_with(&options).unwrap();
    let url = secured_url(&server, SECRET, "timeout_ms=500&connect_timeout_ms=500");
    let store = RedisStore::open(&url).unwrap();
    let root = fixtures::root(1, "a", b"args");
    store.submit(root.clone(), fixtures::T0).unwrap();
    // The server dies: reads fail (the retries log what failed), then it comes back.
    server.kill();
    let down = store.counts().unwrap_err();
    assert!(matches!(down, StoreError::Unavailable(_)), "{down:?}");
    assert_hidden("the error while the server is down", &down.to_string());
    let _ = store.wait_final(root.id, std::time::Duration::from_millis(200));
    server.restart().unwrap();
    // After the restart (no persistence), the store answers again.
    assert!(store.counts().is_ok());
    let _ = refused(&secured_url(&server, "wrong", ""));
    drop(store);
    let log = wf_store::log_capture::captured();
    assert!(
        log.contains("redis"),
        "the capture saw what the store logged: {log}"
    );
    assert_hidden("the tracing output", &log);
}

#[test]
fn the_purge_and_bind_path_work_for_the_acl_user() {
    let Some(server) = shared_secured("admin operations as the ACL user") else {
        return;
    };
    let store = RedisStore::open(&secured_url(server, SECRET, "")).unwrap();
    store.bind_app("secured-app").unwrap();
    assert_eq!(store.app_id().unwrap().as_deref(), Some("secured-app"));
    assert!(store.purgeable(fixtures::T0).unwrap().is_empty());
}
