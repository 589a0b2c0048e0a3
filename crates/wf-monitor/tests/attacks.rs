//! A hostile user against a running monitor, over a real socket: token bypasses (routes, methods,
//! path tricks), cross-site actions, loose `Host` headers, hostile query values, and a stored
//! workflow whose shape makes a page expensive.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::http::{PATIENCE, get, post_form, request, try_request};
use common::{csrf, populate, serve, serve_dir};
use wf_core::Timestamp;
use wf_monitor::{MonitorConfig, StoreSource};
use wf_store::conformance::fixtures::{child, root, submit};
use wf_store::{FileStore, StoreAdmin};

#[test]
fn no_route_method_or_path_trick_passes_the_token_check() {
    let tmp = tempfile::tempdir().unwrap();
    let stored = populate(tmp.path());
    let addr = serve(MonitorConfig::new(StoreSource::File(tmp.path().to_owned())).token("tok"));
    let retry = format!("/invocations/{}/retry", stored.tree);
    let paths = [
        "/".to_owned(),
        "//".to_owned(),
        "/static/live.js".to_owned(),
        "//static/live.js".to_owned(),
        "/static%2flive.js".to_owned(),
        "/purge".to_owned(),
        "/purge/".to_owned(),
        format!("/workflows/{}", stored.tree),
        format!("/workflows/{}/", stored.tree),
        format!("/workflows/{}/live?v=x", stored.tree),
        retry.clone(),
        format!("/{retry}"),
    ];
    let bad_credentials: [&[(&str, &str)]; 5] = [
        &[],
        &[("Authorization", "Bearer ")],
        &[("Authorization", "bearer tok")],
        &[("Authorization", "Basic dG9rOg==")],
        &[("Cookie", "wf_token_80=tok")],
    ];
    for path in &paths {
        for method in ["GET", "HEAD", "OPTIONS", "POST", "PUT", "DELETE"] {
            for headers in bad_credentials {
                let r = request(addr, method, path, headers, "");
                assert!(
                    r.status == 401 || r.status == 404,
                    "{method} {path} {headers:?} answered {} without the token: {}",
                    r.status,
                    r.body
                );
                assert!(!r.body.contains("csrf") && !r.body.contains("fetch("));
            }
        }
    }
}

#[test]
fn the_token_in_the_query_of_an_action_redirects_and_does_not_act() {
    let tmp = tempfile::tempdir().unwrap();
    let stored = populate(tmp.path());
    let addr = serve(MonitorConfig::new(StoreSource::File(tmp.path().to_owned())).token("tok"));
    let path = format!("/invocations/{}/retry", stored.tree);
    let secret = csrf(&request(addr, "GET", &path, &[("Authorization", "Bearer tok")], "").body);
    let r = post_form(
        addr,
        &format!("{path}?token=tok"),
        &[],
        &format!("csrf={secret}&confirm=yes"),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let inv = request(
        addr,
        "GET",
        &format!("/invocations/{}", stored.tree),
        &[("Authorization", "Bearer tok")],
        "",
    );
    assert!(inv.body.contains("data-status=\"failed\""), "{}", inv.body);
}

#[test]
fn actions_need_a_post_with_the_secret_and_a_form_body() {
    let tmp = tempfile::tempdir().unwrap();
    let stored = populate(tmp.path());
    let addr = serve_dir(tmp.path());
    let path = format!("/invocations/{}/retry", stored.tree);
    let secret = csrf(&get(addr, &path).body);
    // The confirmation's fields in a GET (a link, an <img>) only show the confirmation again.
    let q = format!("?csrf={secret}&confirm=yes&older_than=0");
    assert!(
        !get(addr, &format!("{path}{q}"))
            .body
            .contains("id=\"done\"")
    );
    assert!(
        !get(addr, &format!("/purge{q}"))
            .body
            .contains("id=\"done\"")
    );
    // A cross-site form can post text/plain without a preflight: refused.
    let plain = request(
        addr,
        "POST",
        &path,
        &[("Content-Type", "text/plain")],
        &format!("csrf={secret}&confirm=yes"),
    );
    assert_ne!(plain.status, 200, "{}", plain.body);
    // The secret in the query of a post is not the form's.
    let in_query = post_form(addr, &format!("{path}{q}"), &[], "confirm=yes");
    assert_eq!(in_query.status, 403, "{}", in_query.body);
    let inv = get(addr, &format!("/invocations/{}", stored.tree));
    assert!(inv.body.contains("data-status=\"failed\""), "{}", inv.body);
    assert!(get(addr, "/").body.contains("<b>3</b>all"));
}

#[test]
fn loose_host_headers_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    populate(tmp.path());
    let addr = serve_dir(tmp.path());
    for host in [
        "localhost.evil.example",
        "127.0.0.1.nip.io",
        "evil.example:127.0.0.1",
        "[::1]evil.example",
        "[::1].evil.example:80",
        "localhost:80@evil.example",
        "localhost:evil",
        "",
    ] {
        let r = request(addr, "GET", "/", &[("Host", host)], "");
        assert_eq!(r.status, 403, "Host {host:?} was let in");
    }
}

#[test]
fn hostile_query_values_are_answered_without_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    populate(tmp.path());
    let addr = serve_dir(tmp.path());
    let big = "x".repeat(20_000);
    for (path, want) in [
        ("/?page=18446744073709551615".to_owned(), 200),
        ("/?page=18446744073709551616".to_owned(), 400),
        ("/?page=-1".to_owned(), 400),
        ("/?page=".to_owned(), 400),
        (format!("/?q={big}&task={big}"), 200),
        ("/purge?older_than=18446744073709551615d".to_owned(), 200),
        ("/purge?older_than=99999999999999999999999d".to_owned(), 400),
        ("/purge?older_than=%C3%A9".to_owned(), 400),
        ("/workflows/%FF%FE".to_owned(), 400),
        (
            "/workflows/{00000000-0000-7000-8000-000000000000}".to_owned(),
            404,
        ),
        ("/invocations/%00".to_owned(), 400),
    ] {
        let r = get(addr, &path);
        assert_eq!(
            r.status,
            want,
            "{}: {}",
            &path[..path.len().min(60)],
            r.body
        );
    }
    let xss = get(addr, "/?q=%22%3E%3Cscript%3Ealert(1)%3C/script%3E");
    assert!(!xss.body.contains("<script>alert(1)"), "{}", xss.body);
    let err = get(addr, "/?status=%3Cscript%3Ealert(1)%3C/script%3E");
    assert_eq!(err.status, 400);
    assert!(!err.body.contains("<script>alert(1)"), "{}", err.body);
}

#[test]
fn a_cancel_reason_is_escaped_everywhere_it_lands() {
    let tmp = tempfile::tempdir().unwrap();
    populate(tmp.path());
    let pending = {
        let app = common::app(tmp.path());
        let (charge, _, _) = common::tasks(&app);
        charge.call(&app, 9).unwrap().id()
    };
    let addr = serve_dir(tmp.path());
    let path = format!("/invocations/{pending}/cancel");
    let secret = csrf(&get(addr, &path).body);
    let raw = "\"><svg onload=alert(1)>";
    let done = post_form(
        addr,
        &path,
        &[],
        &format!("csrf={secret}&confirm=yes&reason=%22%3E%3Csvg+onload%3Dalert(1)%3E"),
    );
    assert_eq!(done.status, 200, "{}", done.body);
    for page in [
        done.body,
        get(addr, &format!("/invocations/{pending}")).body,
        get(addr, &format!("/workflows/{pending}")).body,
        get(addr, &format!("/workflows/{pending}/live?v=x")).body,
    ] {
        assert!(!page.contains(raw), "{page}");
    }
}

/// A workflow that did a few milliseconds of work long ago and has been waiting since (a sleep
/// of weeks is ordinary for a durable workflow): its timeline's quiet stretch is cut out of the
/// axis, and the page must not walk the whole stretch in axis steps of a millisecond.
#[test]
fn a_workflow_quiet_for_years_still_renders() {
    let tmp = tempfile::tempdir().unwrap();
    let top = root(1, "reminder", b"");
    {
        let store = FileStore::open(tmp.path()).unwrap();
        let long_ago = 1_000_000;
        submit(&store, &top, Timestamp(long_ago));
        let step = child(2, &top, "step", b"");
        submit(&store, &step, Timestamp(long_ago + 2));
        store
            .cancel(step.id, "done quickly", Timestamp(long_ago + 4))
            .unwrap();
    }
    let addr = serve_dir(tmp.path());
    for path in [
        format!("/workflows/{}", top.id),
        format!("/workflows/{}/live?v=x", top.id),
    ] {
        let r = try_request(addr, "GET", &path, &[], "", PATIENCE)
            .unwrap_or_else(|e| panic!("GET {path}: no answer within {PATIENCE:?}: {e}"));
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.body.contains("data-rows=\"2\""), "{}", r.body);
        assert!(r.body.contains("class=\"quiet\""), "the stretch is cut");
    }
}

#[test]
fn the_token_redirect_stays_on_the_monitor() {
    let tmp = tempfile::tempdir().unwrap();
    populate(tmp.path());
    let addr = serve(MonitorConfig::new(StoreSource::File(tmp.path().to_owned())).token("tok"));
    for path in ["//evil.example/?token=tok", "///evil.example?token=tok&a=b"] {
        let r = get(addr, path);
        let location = r.header("location").unwrap_or_default();
        assert!(
            location.starts_with('/') && !location.starts_with("//"),
            "{path} redirected to {location:?}"
        );
    }
}
