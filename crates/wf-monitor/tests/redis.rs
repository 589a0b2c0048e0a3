//! The monitor over a Redis store (a throwaway redis-server): the same pages, and a retry
//! straight on Redis while an app holds the same store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::http::{get, post_form};
use common::{csrf, populate_app, serve};
use wf_core::Status;
use wf_monitor::{MonitorConfig, StoreSource};
use wf_runtime::App;
use wf_store::redis::testing::{ServerOptions, server_or_skip, unique_namespace};

#[test]
fn the_monitor_reads_and_retries_on_redis() {
    let Some(server) = server_or_skip(
        "the_monitor_reads_and_retries_on_redis",
        &ServerOptions::default(),
    ) else {
        return;
    };
    let url = server.url(&format!("ns={}", unique_namespace("monitor")));
    let app = || {
        App::builder()
            .app_id("monitor-test")
            .redis(url.clone())
            .build()
            .unwrap()
    };
    let stored = populate_app(app());
    let addr = serve(MonitorConfig::new(StoreSource::Redis(url.clone())));

    let list = get(addr, "/");
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(list.body.contains("<b>3</b>all"), "{}", list.body);
    assert!(list.body.contains("Redis store redis://127.0.0.1:"));
    let page = get(addr, &format!("/workflows/{}", stored.tree));
    assert!(page.body.contains("data-rows=\"4\""), "{}", page.body);

    let owner = app();
    let _tasks = common::tasks(&owner);
    let path = format!("/invocations/{}/retry", stored.tree);
    let secret = csrf(&get(addr, &path).body);
    let done = post_form(addr, &path, &[], &format!("csrf={secret}&confirm=yes"));
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(
        owner.invocation(stored.tree).unwrap().status(),
        Status::Pending
    );
    // The page shows it at once (Redis is read per request).
    let after = get(addr, &format!("/workflows/{}", stored.tree));
    assert!(after.body.contains(&format!(
        "data-id=\"{}\" data-status=\"pending\"",
        stored.tree
    )));

    // A namespace that holds nothing is refused at start, not shown as an empty store.
    let empty = server.url(&format!("ns={}", unique_namespace("nothing")));
    let err = wf_monitor::router(MonitorConfig::new(StoreSource::Redis(empty))).unwrap_err();
    assert!(err.to_string().contains("holds nothing"), "{err}");
}
