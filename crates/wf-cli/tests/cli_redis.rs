//! The inspector on a Redis store: a real `redis-server` with a password, workflows written by
//! the runtime through it, then the `wf` binary reading them (tables and JSON), retrying and
//! purging while the store stays shared; the password appears in no output.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use serde_json::Value;
use wf_runtime::{App, TaskContext, TaskError};
use wf_store::redis::testing::{ServerOptions, server_or_skip, unique_namespace};

const SECRET: &str = "hunter2-inspector-secret";

fn wf(url: &str, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_wf"))
        .arg("--store")
        .arg(url)
        .args(args)
        .env_remove("WF_STORE")
        .env_remove("WF_APP_ID")
        .output()
        .unwrap();
    for text in [&out.stdout, &out.stderr] {
        assert!(
            !String::from_utf8_lossy(text).contains(SECRET),
            "wf {args:?} printed the password: {}",
            String::from_utf8_lossy(text)
        );
    }
    out
}

fn ok(url: &str, args: &[&str]) -> String {
    let out = wf(url, args);
    assert!(
        out.status.success(),
        "wf {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_inspector_reads_and_manages_a_redis_store() {
    let options = ServerOptions {
        extra: vec!["--requirepass".into(), SECRET.into()],
        ..ServerOptions::default()
    };
    let Some(server) = server_or_skip("the_inspector_reads_and_manages_a_redis_store", &options)
    else {
        return;
    };
    let ns = unique_namespace("cli");
    let url = format!("redis://:{SECRET}@127.0.0.1:{}/?ns={ns}", server.port());
    let app = App::builder()
        .app_id("cli-redis")
        .redis(&url)
        .build()
        .unwrap();
    let step = app
        .task(
            "step",
            |_: &TaskContext, i: u32| -> Result<u32, TaskError> { Ok(i * 2) },
        )
        .unwrap();
    let order = app
        .task(
            "order",
            move |ctx: &TaskContext, n: u32| -> Result<u32, TaskError> {
                let wf = ctx.wf();
                wf.set_data("progress", "done")?;
                Ok(wf.execute_task(&step, n)? + 1)
            },
        )
        .unwrap();
    let broken = app
        .task(
            "broken",
            |_: &TaskContext, (): ()| -> Result<(), TaskError> {
                Err(TaskError::new("card declined").permanent())
            },
        )
        .unwrap();
    let order_id = order.call(&app, 20).unwrap().id();
    let broken_id = broken.call(&app, ()).unwrap().id();
    app.run_until_idle().unwrap();

    let listed = ok(&url, &["workflows"]);
    assert!(listed.contains(&order_id.to_string()), "{listed}");
    assert!(listed.contains("broken"), "{listed}");
    let counts: Value = serde_json::from_str(&ok(&url, &["--json", "counts"])).unwrap();
    assert_eq!(counts["total"], 3, "{counts}");
    let shown = ok(&url, &["show", &order_id.to_string()]);
    assert!(shown.contains("step"), "{shown}");
    let data = ok(&url, &["data", &order_id.to_string()]);
    assert!(data.contains("progress"), "{data}");
    ok(
        &url,
        &["--app", "cli-redis", "journal", &order_id.to_string()],
    );

    // Another app id is refused, naming both; the store stays shared with running workers.
    let other = wf(&url, &["--app", "billing", "counts"]);
    assert!(!other.status.success());
    assert!(String::from_utf8_lossy(&other.stderr).contains("'cli-redis'"));

    // Retry and purge work on a store other processes use (no lock to take).
    let retried = ok(&url, &["retry", &broken_id.to_string()]);
    assert!(retried.contains("pending again"), "{retried}");
    app.run_until_idle().unwrap();
    let purged = ok(&url, &["purge", "--older-than", "0s"]);
    assert!(purged.contains("purged 2 finished workflows"), "{purged}");

    // A wrong password, an empty namespace: errors that say what to do, without the password.
    let wrong = format!("redis://:not-{SECRET}@127.0.0.1:{}/?ns={ns}", server.port());
    let out = wf(&wrong, &["counts"]);
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(e.contains("password"), "{e}");
    let empty = format!(
        "redis://:{SECRET}@127.0.0.1:{}/?ns=nothing-here",
        server.port()
    );
    let out = wf(&empty, &["workflows"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no wf store at"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
