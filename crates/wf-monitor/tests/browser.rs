//! The monitor in a real headless browser (Debian's chromium, driven over WebDriver by a
//! throwaway chromedriver): open the list with the token, click into a workflow, see its
//! timeline with one row per invocation, open an invocation, retry the workflow behind its
//! confirmation, and watch the page update live as a worker runs it again. Screenshots of each
//! page (1400×900) go to `target/monitor-screens/`.
//!
//! Without chromium and chromedriver the test says so on stderr and passes, except with
//! `WF_REQUIRE_BROWSER=1` (CI sets it), where it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::path::PathBuf;

use common::webdriver::{Driver, find_browser};
use common::{populate, serve};
use wf_core::Status;
use wf_monitor::{MonitorConfig, StoreSource};

const TOKEN: &str = "browser-test-token";

/// `target/monitor-screens`, under `CARGO_TARGET_DIR` when it is set.
fn screens() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("monitor-screens")
}

#[test]
fn a_browser_opens_a_workflow_sees_its_timeline_and_retries_it() {
    let Some((chromium, chromedriver)) = find_browser() else {
        let why = "chromium or chromedriver is not installed (apt-get install chromium \
                   chromium-driver)";
        if std::env::var("WF_REQUIRE_BROWSER").as_deref() == Ok("1") {
            panic!("WF_REQUIRE_BROWSER=1 and {why}");
        }
        // Straight to stderr (not eprintln!, which the test harness captures): a skip is loud.
        let _ = writeln!(
            std::io::stderr(),
            "\n!!! SKIPPED the monitor's browser test: {why}; CI sets WF_REQUIRE_BROWSER=1 and fails instead\n"
        );
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let stored = populate(tmp.path());
    // A running app owns the store, as in production: the monitor acts through it.
    let owner = common::app(tmp.path());
    let _tasks = common::tasks(&owner);
    let addr = serve(MonitorConfig::new(StoreSource::File(tmp.path().to_owned())).token(TOKEN));
    let base = format!("http://{addr}");
    let shots = screens();
    let d = Driver::start(&chromium, &chromedriver, 1400, 900);

    // The list, reached with the token once; the browser keeps it in a cookie.
    d.goto(&format!("{base}/?token={TOKEN}"));
    d.find("table#workflows");
    assert_eq!(
        d.url(),
        format!("{base}/"),
        "the token left the address bar"
    );
    let counts = d.text(&d.find("#counts"));
    assert!(counts.contains("3\nall"), "{counts:?}");
    d.screenshot(&shots.join("list.png"));

    // Into the order workflow: four invocations, four timeline rows.
    d.click(&d.find(&format!("#workflows a[href='/workflows/{}']", stored.tree)));
    d.find("svg#timeline");
    let rows = d.find_all("svg#timeline g.row");
    assert_eq!(rows.len(), 4, "one timeline row per invocation");
    let statuses: Vec<String> = rows
        .iter()
        .map(|r| d.attribute(r, "data-status").unwrap_or_default())
        .collect();
    assert_eq!(statuses, ["failed", "success", "success", "failed"]);
    d.screenshot(&shots.join("workflow.png"));

    // One invocation: its journal, its error.
    d.click(&d.find(&format!(
        "#tree a[href='/invocations/{}']",
        stored.failed_leaf
    )));
    let error = d.text(&d.find("#error"));
    assert!(error.contains("mail server unavailable"), "{error}");
    d.find("#journal");
    d.screenshot(&shots.join("invocation.png"));

    // Retry the workflow: the confirmation, then the action.
    d.goto(&format!("{base}/workflows/{}", stored.tree));
    d.click(&d.find("#retry"));
    d.find("#confirm-form");
    d.screenshot(&shots.join("retry-confirm.png"));
    d.click(&d.find("#confirm"));
    d.click(&d.find("#do"));
    assert_eq!(d.text(&d.find("h1#done")), "Retried");
    assert_eq!(
        owner.invocation(stored.tree).unwrap().status(),
        Status::Pending
    );

    // Live: the workflow page, open while a worker runs the retried workflow, shows its new
    // outcome without a reload (it replays the recorded failure of `notify`, so fails again).
    d.goto(&format!("{base}/workflows/{}", stored.tree));
    d.find(&format!(
        "svg#timeline g.row[data-id='{}'][data-status='pending']",
        stored.tree
    ));
    let marker = d.script("window.__kept = 1; return window.__kept;");
    assert_eq!(marker, 1);
    owner.run_until_idle().unwrap();
    // `run_until_idle` pipelines its commits and the monitor's snapshot shows only what the
    // owner synced: nothing in the owner reads or syncs from here on, so the page updates once
    // the store's idle sync (`FileOptions::idle_sync`) has synced the new failure.
    d.find(&format!(
        "svg#timeline g.row[data-id='{}'][data-status='failed']",
        stored.tree
    ));
    assert_eq!(
        d.script("return window.__kept;"),
        1,
        "the page updated in place, without a reload"
    );
}
