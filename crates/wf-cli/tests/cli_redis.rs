//! The inspector on a Redis store: a real `redis-server` with a password, workflows written by
//! the runtime through it, then the `wf` binary reading them (tables and JSON), retrying and
//! purging while the store stays shared; the password appears in no output.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use serde_json::Value;
use wf_core::Status;
use wf_runtime::{App, Invocation, TaskContext, TaskError};
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

/// Steering a Redis store from the inspector while workers run in another process (this test
/// process): `wf send-event` wakes an approval workflow that waits for it, which then finishes
/// on the running workers (woken by the event, no polling); `wf cancel` cancels a fan-out tree
/// whose members wait (children waiting for an event, one sleeping) and asks the running one to
/// stop: it learns of it at its next lease renewal and ends cancelled.
#[test]
fn the_inspector_steers_a_redis_store_while_workers_run() {
    let Some(server) = server_or_skip(
        "the_inspector_steers_a_redis_store_while_workers_run",
        &ServerOptions::default(),
    ) else {
        return;
    };
    let url = format!(
        "redis://127.0.0.1:{}/?ns={}",
        server.port(),
        unique_namespace("cli-steer")
    );
    let app = App::builder()
        .app_id("cli-steer")
        .redis(&url)
        .lease_duration(std::time::Duration::from_millis(600))
        .inline_children(false)
        .build()
        .unwrap();
    let approval = app
        .task(
            "approval",
            |ctx: &TaskContext, cents: u32| -> Result<String, TaskError> {
                let by: String = ctx.wf().wait_event("approve")?;
                Ok(format!("{cents} approved by {by}"))
            },
        )
        .unwrap();
    let napper = app
        .task(
            "napper",
            |ctx: &TaskContext, (): ()| -> Result<(), TaskError> {
                Ok(ctx.wf().sleep(std::time::Duration::from_secs(3600))?)
            },
        )
        .unwrap();
    let spinning = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let spin = spinning.clone();
    let busy = app
        .task(
            "busy",
            move |ctx: &TaskContext, (): ()| -> Result<(), TaskError> {
                spin.store(true, std::sync::atomic::Ordering::SeqCst);
                // Runs until told: each workflow operation checks for a cancellation request.
                loop {
                    ctx.wf().get_data::<u32>("nothing")?;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            },
        )
        .unwrap();
    let waits = approval.clone();
    let fan = app
        .task(
            "fan",
            move |ctx: &TaskContext, (): ()| -> Result<(), TaskError> {
                let wf = ctx.wf();
                let a = wf.start_task(&waits, 1)?;
                let b = wf.start_task(&waits, 2)?;
                let n = wf.start_task(&napper, ())?;
                let r = wf.start_task(&busy, ())?;
                wf.join(&a)?;
                wf.join(&b)?;
                wf.join(&n)?;
                wf.join(&r)?;
                Ok(())
            },
        )
        .unwrap();
    let worker = app.worker().threads(3).start().unwrap();
    let patience = std::time::Duration::from_secs(30);
    let eventually = |what: &str, mut cond: Box<dyn FnMut() -> bool + '_>| {
        let deadline = std::time::Instant::now() + patience;
        while !cond() {
            assert!(
                std::time::Instant::now() < deadline,
                "never happened: {what}"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    };

    // An approval sent from another process while the workflow waits.
    let inv = approval.call(&app, 4200).unwrap();
    let id = inv.id().to_string();
    eventually(
        "the approval waits for its event",
        Box::new(|| {
            app.store().events(inv.id()).unwrap().waiting_for.as_deref() == Some("approve")
        }),
    );
    let sent = ok(
        &url,
        &["send-event", &id, "approve", "\"ana\"", "--key", "k1"],
    );
    assert!(sent.contains("stored as #0"), "{sent}");
    assert_eq!(
        inv.result_timeout(patience).unwrap(),
        "4200 approved by ana"
    );
    let again = ok(
        &url,
        &["send-event", &id, "approve", "\"ana\"", "--key", "k1"],
    );
    assert!(again.contains("already stored"), "{again}");

    // A fan-out tree cancelled from another process.
    let tree = fan.call(&app, ()).unwrap();
    let members = || app.store().workflow_invocations(tree.id()).unwrap();
    eventually(
        "the fan-out's children wait, sleep and run",
        Box::new(|| {
            let records = app.store().invocations(&members()).unwrap();
            records.len() == 5
                && records
                    .iter()
                    .filter(|r| r.status() == Status::Waiting)
                    .count()
                    == 4
                && spinning.load(std::sync::atomic::Ordering::SeqCst)
        }),
    );
    let report: Value = serde_json::from_str(&ok(
        &url,
        &[
            "--json",
            "cancel",
            &tree.id().to_string(),
            "--reason",
            "not needed",
        ],
    ))
    .unwrap();
    assert_eq!(report["status_before"], "waiting", "{report}");
    assert_eq!(report["cancelled"].as_array().unwrap().len(), 4, "{report}");
    assert_eq!(report["cancelled"][0], tree.id().to_string(), "{report}");
    assert_eq!(report["stopping"].as_array().unwrap().len(), 1, "{report}");
    for m in members() {
        let r = Invocation::<()>::attach(&app, m).result_timeout(patience);
        match r {
            Err(wf_runtime::WfError::Cancelled { reason, .. }) => {
                assert!(reason.contains("not needed"), "{reason}");
            }
            other => panic!("{m}: expected Cancelled, got {other:?}"),
        }
    }
    let twice = ok(&url, &["cancel", &tree.id().to_string()]);
    assert!(twice.contains("already final"), "{twice}");
    worker.stop();
}
