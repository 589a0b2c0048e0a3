//! Durable time and events across real process restarts, on the file store: a workflow sleeps
//! in one process, which is killed; the sleep ends in the next process. An approval workflow
//! waits in one process; a second process sends the event; a third finishes it.
//!
//! The processes are this test binary re-executed with `WF_DURABLE_ROLE` set: the
//! `durable_child_entry` test is their entry point and does nothing in a normal run.
#![cfg(feature = "file")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::process::{ChildLines, block_forever, kill_9, log_run, output_within, runs};
use serde::{Deserialize, Serialize};
use wf::InvocationId;
use wf::prelude::*;

/// How long the sleeper sleeps: long enough to kill its process and start another first.
const NAP: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Decision {
    Approve { by: String },
    Reject,
}

fn open(dir: &Path) -> App {
    App::builder()
        .app_id("durable")
        .file(dir.join("store"))
        .lease_duration(Duration::from_millis(800))
        .build()
        .unwrap()
}

/// The tasks of both scenarios.
fn register(app: &App, dir: PathBuf) -> (Task<(), i128>, Task<u64, String>) {
    let d = dir.clone();
    let nap = app
        .task(
            "nap",
            move |ctx: &TaskContext, (): ()| -> Result<i128, TaskError> {
                let wf = ctx.wf();
                let before = wf.utc_now();
                if !wf.is_replaying() {
                    log_run(&d, "before the sleep");
                }
                wf.sleep(NAP)?;
                log_run(&d, "after the sleep");
                Ok((wf.utc_now() - before).whole_milliseconds())
            },
        )
        .unwrap();
    let expense = app
        .task(
            "expense",
            move |ctx: &TaskContext, cents: u64| -> Result<String, TaskError> {
                let wf = ctx.wf();
                let first_run = !wf.is_replaying();
                let request = wf.uuid(); // journaled: the same request on every replay
                if first_run {
                    log_run(&dir, &format!("asked for approval of {request}"));
                }
                Ok(match wf.wait_event::<Decision>("approve")? {
                    Decision::Approve { by } => format!("{request}: {cents} approved by {by}"),
                    Decision::Reject => format!("{request}: {cents} rejected"),
                })
            },
        )
        .unwrap();
    (nap, expense)
}

/// The child processes' entry point.
#[test]
fn durable_child_entry() {
    let (Ok(role), Ok(dir)) = (
        std::env::var("WF_DURABLE_ROLE"),
        std::env::var("WF_DURABLE_DIR"),
    ) else {
        return; // a normal test run: nothing to do here
    };
    let dir = PathBuf::from(dir);
    let app = open(&dir);
    let (nap, expense) = register(&app, dir.clone());
    match role.as_str() {
        "sleep" | "ask" => {
            let id = match role.as_str() {
                "sleep" => nap.call(&app, ()).unwrap().id(),
                _ => expense.call(&app, 1250).unwrap().id(),
            };
            println!("SUBMITTED {id}");
            let _worker = app.worker().threads(1).start().unwrap();
            common::until_waiting(&app, id);
            println!("WAITING");
            block_forever();
        }
        "send" => {
            let id: InvocationId = std::env::var("WF_DURABLE_ID").unwrap().parse().unwrap();
            let approve = Decision::Approve {
                by: "the second process".into(),
            };
            app.send_event(id, "approve", &approve).unwrap();
            println!("SENT");
        }
        other => panic!("unknown role {other}"),
    }
}

fn spawn(dir: &Path, role: &str, id: Option<InvocationId>) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "durable_child_entry",
        "--nocapture",
        "--test-threads",
        "1",
    ])
    .env("WF_DURABLE_ROLE", role)
    .env("WF_DURABLE_DIR", dir)
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    if let Some(id) = id {
        cmd.env("WF_DURABLE_ID", id.to_string());
    }
    cmd.spawn().unwrap()
}

/// Starts a process in `role`, waits until its workflow waits, kills it with SIGKILL, and
/// returns the workflow's id.
fn run_until_waiting_then_kill(dir: &Path, role: &str) -> InvocationId {
    let mut child = spawn(dir, role, None);
    let lines = ChildLines::of(&mut child);
    let mut id = None;
    lines.until(&mut child, "WAITING", |line| {
        if let Some((_, rest)) = line.split_once("SUBMITTED ") {
            id = Some(rest.trim().parse().unwrap());
        }
        line.trim().ends_with("WAITING")
    });
    kill_9(&mut child);
    id.expect("the process did not report its workflow")
}

/// A workflow sleeps in a process that is then killed; the next process finds it waiting with
/// its wake time, and the sleep ends there, no sooner than asked (the journaled clock spans
/// both processes); the step before the sleep ran once.
#[test]
fn a_sleep_survives_a_process_restart() {
    let dir = tempfile::tempdir().unwrap();
    let id = run_until_waiting_then_kill(dir.path(), "sleep");

    let app = open(dir.path());
    register(&app, dir.path().to_owned());
    let record = app.store().invocation(id).unwrap();
    assert_eq!(record.status(), Status::Waiting);
    assert!(record.state.not_before.is_some(), "the wake time survived");
    let worker = app.worker().threads(1).start().unwrap();
    let slept = Invocation::<i128>::attach(&app, id)
        .result_timeout(common::PATIENCE)
        .unwrap();
    worker.stop();
    assert!(slept >= NAP.as_millis() as i128, "slept {slept} ms");
    assert_eq!(
        runs(dir.path()),
        vec!["before the sleep", "after the sleep"],
        "each side of the sleep ran once"
    );
}

/// A human-in-the-loop approval: the workflow waits in one process (killed meanwhile), a
/// second process sends the `approve` event, and a third runs the workflow to its end.
#[test]
fn an_approval_is_sent_from_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let id = run_until_waiting_then_kill(dir.path(), "ask");

    let sender = output_within(spawn(dir.path(), "send", Some(id)), "sending the event");
    assert!(sender.status.success(), "the sender failed: {sender:?}");
    assert!(String::from_utf8_lossy(&sender.stdout).contains("SENT"));

    let app = open(dir.path());
    register(&app, dir.path().to_owned());
    let worker = app.worker().threads(1).start().unwrap();
    let result = Invocation::<String>::attach(&app, id)
        .result_timeout(common::PATIENCE)
        .unwrap();
    worker.stop();
    let (request, verdict) = result.split_once(": ").unwrap();
    assert_eq!(verdict, "1250 approved by the second process");
    assert_eq!(
        runs(dir.path()),
        vec![format!("asked for approval of {request}")],
        "asked once, in the first process"
    );
}
