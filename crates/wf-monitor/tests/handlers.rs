//! The monitor's pages and actions over a real file store, through a real socket: what each
//! page shows, that user-controlled text is escaped, that actions need their confirmation, the
//! form's secret and the token, and that a store owned by a running app is acted on through
//! its owner.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::http::{get, post_form, request};
use common::{XSS_ERROR, XSS_TASK, csrf, populate, serve, serve_dir};
use wf_core::Status;
use wf_monitor::{MonitorConfig, StoreSource};

#[test]
fn the_list_counts_filters_and_escapes() {
    let tmp = tempfile::tempdir().unwrap();
    let stored = populate(tmp.path());
    let addr = serve_dir(tmp.path());

    let all = get(addr, "/");
    assert_eq!(all.status, 200, "{}", all.body);
    // Three workflows: the order (failed), the lone charge (success), the XSS task (failed).
    assert!(
        all.body.contains("data-count=\"failed\"><b>2</b>"),
        "{}",
        all.body
    );
    assert!(
        all.body.contains("data-count=\"success\"><b>1</b>"),
        "{}",
        all.body
    );
    for id in [stored.tree, stored.xss, stored.done] {
        assert!(
            all.body.contains(&format!("href=\"/workflows/{id}\"")),
            "{id} not listed"
        );
    }
    assert!(
        !all.body.contains(XSS_TASK),
        "a task name went out unescaped"
    );
    assert!(
        all.body
            .contains("&lt;script&gt;alert(&#39;task&#39;)&lt;/script&gt;")
    );

    let failed = get(addr, "/?status=failed");
    assert!(failed.body.contains(&stored.tree.to_string()));
    assert!(
        !failed
            .body
            .contains(&format!("href=\"/workflows/{}\"", stored.done))
    );
    let by_task = get(addr, "/?task=charge");
    assert!(
        by_task
            .body
            .contains(&format!("href=\"/workflows/{}\"", stored.done))
    );
    assert!(
        !by_task
            .body
            .contains(&format!("href=\"/workflows/{}\"", stored.tree))
    );
    let prefix = &stored.xss.to_string()[..13];
    let by_id = get(addr, &format!("/?q={prefix}"));
    assert!(
        by_id.body.contains("1 of 3 workflows match"),
        "{}",
        by_id.body
    );

    assert_eq!(get(addr, "/?status=sleepy").status, 400);
    assert_eq!(get(addr, "/?age=forever").status, 400);
}

#[test]
fn a_workflow_page_draws_its_tree_and_updates_only_on_change() {
    let tmp = tempfile::tempdir().unwrap();
    let stored = populate(tmp.path());
    let addr = serve_dir(tmp.path());

    let page = get(addr, &format!("/workflows/{}", stored.tree));
    assert_eq!(page.status, 200, "{}", page.body);
    // order, charge, ship, notify: one timeline row each, in the tree's order.
    assert!(
        page.body.contains("<svg id=\"timeline\" data-rows=\"4\""),
        "{}",
        page.body
    );
    assert_eq!(page.body.matches("<g class=\"row\"").count(), 4);
    let order = page.body.find("data-id=\"").unwrap();
    assert!(page.body[order..].starts_with(&format!("data-id=\"{}\"", stored.tree)));
    assert!(
        page.body.contains("id=\"retry\""),
        "a failed workflow offers a retry"
    );
    assert!(
        !page.body.contains("id=\"cancel\""),
        "a finished one offers no cancel"
    );

    // Asking by one of its invocations shows the same workflow.
    let via_leaf = get(addr, &format!("/workflows/{}", stored.failed_leaf));
    assert!(via_leaf.body.contains("is an invocation of this workflow"));

    // The live endpoint: nothing to send while the version is current.
    let version = {
        let at = page.body.find("data-version=\"").unwrap() + "data-version=\"".len();
        page.body[at..at + 16].to_owned()
    };
    let same = get(
        addr,
        &format!("/workflows/{}/live?v={version}", stored.tree),
    );
    assert_eq!(same.status, 204);
    assert_eq!(same.header("x-wf-final"), Some("true"));
    let fresh = get(addr, &format!("/workflows/{}/live?v=old", stored.tree));
    assert_eq!(fresh.status, 200);
    assert_eq!(fresh.header("x-wf-version"), Some(version.as_str()));
    assert!(fresh.body.contains("data-rows=\"4\""));

    let xss = get(addr, &format!("/workflows/{}", stored.xss));
    assert!(!xss.body.contains(XSS_TASK) && !xss.body.contains(XSS_ERROR));

    // No inline script: the page loads the polling script from the monitor, whose policy
    // forbids any other; no framing.
    assert!(!page.body.contains("<script>"));
    assert!(page.body.contains("<script src=\"/static/live.js\">"));
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    let js = get(addr, "/static/live.js");
    assert_eq!(js.status, 200);
    assert!(
        js.body.contains("/live?v=") && js.body.contains("2000"),
        "{}",
        js.body
    );

    assert_eq!(get(addr, "/workflows/not-an-id").status, 400);
    assert_eq!(
        get(addr, "/workflows/00000000-0000-7000-8000-000000000000").status,
        404
    );
}

#[test]
fn an_invocation_page_shows_journal_data_and_error() {
    let tmp = tempfile::tempdir().unwrap();
    let stored = populate(tmp.path());
    let addr = serve_dir(tmp.path());

    let root = get(addr, &format!("/invocations/{}", stored.tree));
    assert_eq!(root.status, 200);
    // The order started three callees and read two results before the third failed.
    assert!(root.body.contains("Journal (6 entries)"), "{}", root.body);
    assert_eq!(root.body.matches("callee started").count(), 3);
    assert!(
        root.body.contains("succeeded: 300"),
        "charge's result decoded"
    );
    assert!(
        root.body.contains("&lt;i&gt;fragile&lt;/i&gt;"),
        "data escaped"
    );
    assert!(!root.body.contains("<i>fragile"));

    let leaf = get(addr, &format!("/invocations/{}", stored.failed_leaf));
    assert!(leaf.body.contains("raised by attempt 1"), "{}", leaf.body);
    assert!(leaf.body.contains("mail server unavailable"));

    let xss = get(addr, &format!("/invocations/{}", stored.xss));
    assert!(
        xss.body
            .contains("&lt;img src=x onerror=alert(&#39;error&#39;)&gt;")
    );
    assert!(!xss.body.contains(XSS_ERROR) && !xss.body.contains(XSS_TASK));
}

#[test]
fn a_retry_needs_its_confirmation_and_goes_through_the_owner() {
    let tmp = tempfile::tempdir().unwrap();
    let stored = populate(tmp.path());
    let addr = serve_dir(tmp.path());
    // A running app owns the store: the monitor reads snapshots and acts through its control
    // socket.
    let owner = common::app(tmp.path());
    let _tasks = common::tasks(&owner);

    let path = format!("/invocations/{}/retry", stored.tree);
    let confirm = get(addr, &path);
    assert_eq!(confirm.status, 200);
    assert!(confirm.body.contains("method=\"post\""));
    let secret = csrf(&confirm.body);

    // A GET never acts; a post without the secret (another site's form) or without the
    // confirmation is refused.
    assert_eq!(
        owner.invocation(stored.tree).unwrap().status(),
        Status::Failed
    );
    assert_eq!(post_form(addr, &path, &[], "confirm=yes").status, 403);
    assert_eq!(
        post_form(addr, &path, &[], "confirm=yes&csrf=guess").status,
        403
    );
    assert_eq!(
        post_form(addr, &path, &[], &format!("csrf={secret}")).status,
        403
    );
    assert_eq!(
        owner.invocation(stored.tree).unwrap().status(),
        Status::Failed
    );

    let done = post_form(addr, &path, &[], &format!("csrf={secret}&confirm=yes"));
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Retried"));
    assert_eq!(
        owner.invocation(stored.tree).unwrap().status(),
        Status::Pending
    );

    // A second retry of what is no longer failed is refused with the store's reason.
    let again = post_form(addr, &path, &[], &format!("csrf={secret}&confirm=yes"));
    assert_eq!(again.status, 409, "{}", again.body);
}

#[test]
fn cancel_and_purge_act_after_a_dry_run() {
    let tmp = tempfile::tempdir().unwrap();
    let stored = populate(tmp.path());
    // A charge nobody runs: pending until cancelled.
    let pending = {
        let app = common::app(tmp.path());
        let (charge, _, _) = common::tasks(&app);
        charge.call(&app, 9).unwrap().id()
    };
    let addr = serve_dir(tmp.path());

    let path = format!("/invocations/{pending}/cancel");
    let secret = csrf(&get(addr, &path).body);
    let cancelled = post_form(
        addr,
        &path,
        &[],
        &format!("csrf={secret}&confirm=yes&reason=operator+said+so"),
    );
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    let inv = get(addr, &format!("/invocations/{pending}"));
    assert!(
        inv.body.contains("data-status=\"cancelled\""),
        "{}",
        inv.body
    );

    // Everything is finished now: the dry run lists all four workflows and removes nothing.
    let dry = get(addr, "/purge?older_than=0");
    assert!(dry.body.contains("would remove <b>4</b>"), "{}", dry.body);
    assert!(get(addr, "/").body.contains("<b>4</b>all"));
    let purged = post_form(
        addr,
        "/purge",
        &[],
        &format!("csrf={secret}&confirm=yes&older_than=0"),
    );
    assert_eq!(purged.status, 200, "{}", purged.body);
    assert!(
        purged.body.contains("Purged 4 workflow(s)"),
        "{}",
        purged.body
    );
    assert!(get(addr, "/").body.contains("<b>0</b>all"));
    assert_eq!(
        get(addr, &format!("/workflows/{}", stored.tree)).status,
        404
    );
}

#[test]
fn with_a_token_every_request_needs_it() {
    let tmp = tempfile::tempdir().unwrap();
    let stored = populate(tmp.path());
    let addr =
        serve(MonitorConfig::new(StoreSource::File(tmp.path().to_owned())).token("s3cret token"));
    let page = format!("/workflows/{}", stored.tree);

    assert_eq!(get(addr, "/").status, 401);
    assert_eq!(get(addr, &page).status, 401);
    assert_eq!(get(addr, &format!("{page}/live")).status, 401);
    assert_eq!(
        request(addr, "GET", "/", &[("Authorization", "Bearer s3cret")], "").status,
        401
    );
    assert_eq!(get(addr, "/?token=wrong").status, 401);
    let path = format!("/invocations/{}/retry", stored.tree);
    assert_eq!(post_form(addr, &path, &[], "confirm=yes").status, 401);

    let ok = request(
        addr,
        "GET",
        &page,
        &[("Authorization", "Bearer s3cret token")],
        "",
    );
    assert_eq!(ok.status, 200);

    // A browser: the token once in the address, then a cookie; the address loses the token.
    let first = get(addr, "/?status=failed&token=s3cret%20token");
    assert_eq!(first.status, 303);
    assert_eq!(first.header("location"), Some("/?status=failed"));
    let cookie = first.header("set-cookie").unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap();
    assert_eq!(
        pair.split('=').next(),
        Some(format!("wf_token_{}", addr.port()).as_str())
    );
    let listed = request(addr, "GET", "/?status=failed", &[("Cookie", pair)], "");
    assert_eq!(listed.status, 200);
    assert!(listed.body.contains(&stored.tree.to_string()));
    let confirm = request(addr, "GET", &path, &[("Cookie", pair)], "");
    let done = post_form(
        addr,
        &path,
        &[("Cookie", pair)],
        &format!("csrf={}&confirm=yes", csrf(&confirm.body)),
    );
    assert_eq!(done.status, 200, "{}", done.body);
}

#[test]
fn a_token_less_monitor_answers_loopback_names_only() {
    let tmp = tempfile::tempdir().unwrap();
    populate(tmp.path());
    let addr = serve_dir(tmp.path());
    // A page elsewhere that resolves its own name to 127.0.0.1 (DNS rebinding) is refused.
    let rebound = request(addr, "GET", "/", &[("Host", "attacker.example:80")], "");
    assert_eq!(rebound.status, 403);
    let port = addr.port();
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
    ] {
        assert_eq!(
            request(addr, "GET", "/", &[("Host", &host)], "").status,
            200,
            "{host}"
        );
    }
}

#[test]
fn a_missing_store_is_an_error_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let err = wf_monitor::router(MonitorConfig::new(StoreSource::File(
        tmp.path().join("nope"),
    )))
    .unwrap_err();
    assert!(err.to_string().contains("no wf store at"), "{err}");
}

#[test]
fn a_waiting_workflow_says_what_it_waits_for_and_can_be_cancelled() {
    let tmp = tempfile::tempdir().unwrap();
    let flow = {
        let app = common::app(tmp.path());
        let approve = app
            .task(
                "approve",
                |ctx: &wf_runtime::TaskContext, (): ()| -> Result<bool, wf_runtime::TaskError> {
                    Ok(ctx.wf().wait_event::<bool>("ok")?)
                },
            )
            .unwrap();
        let flow = app
            .task(
                "flow",
                move |ctx: &wf_runtime::TaskContext,
                      (): ()|
                      -> Result<bool, wf_runtime::TaskError> {
                    Ok(ctx.wf().execute_task(&approve, ())?)
                },
            )
            .unwrap();
        let id = flow.call(&app, ()).unwrap().id();
        app.run_until_idle().unwrap();
        id
    };
    let addr = serve_dir(tmp.path());
    let page = get(addr, &format!("/workflows/{flow}"));
    assert!(page.body.contains("data-final=\"false\""), "{}", page.body);
    assert!(
        page.body.contains("waiting on <a href=\"/invocations/"),
        "{}",
        page.body
    );
    assert!(page.body.contains("waiting for an event"), "{}", page.body);
    assert!(page.body.contains("id=\"cancel\""));
    let live = get(addr, &format!("/workflows/{flow}/live?v=x"));
    assert_eq!(live.header("x-wf-final"), Some("false"));

    let path = format!("/invocations/{flow}/cancel");
    let secret = csrf(&get(addr, &path).body);
    let done = post_form(addr, &path, &[], &format!("csrf={secret}&confirm=yes"));
    assert_eq!(done.status, 200, "{}", done.body);
    let after = get(addr, &format!("/workflows/{flow}"));
    assert!(
        after
            .body
            .contains(&format!("data-id=\"{flow}\" data-status=\"cancelled\"")),
        "{}",
        after.body
    );
    assert!(after.body.contains("data-final=\"true\""));
}

#[test]
fn the_timeline_marks_what_journals_recorded_of_time() {
    let tmp = tempfile::tempdir().unwrap();
    let id = {
        let app = common::app(tmp.path());
        let stamp = app
            .task(
                "stamp",
                |ctx: &wf_runtime::TaskContext, (): ()| -> Result<u32, wf_runtime::TaskError> {
                    let wf = ctx.wf();
                    wf.utc_now();
                    wf.utc_now();
                    Ok(1)
                },
            )
            .unwrap();
        let id = stamp.call(&app, ()).unwrap().id();
        app.run_until_idle().unwrap();
        id
    };
    let addr = serve_dir(tmp.path());
    let page = get(addr, &format!("/workflows/{id}"));
    // Two clock reads, each a tick on the row: when an execution was running.
    assert_eq!(
        page.body.matches("<rect class=\"clock\"").count(),
        2,
        "{}",
        page.body
    );
    assert!(page.body.contains("utc_now() read 20"));
}
