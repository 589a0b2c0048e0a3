//! Durable time, events and cancellation across real processes on one real Redis: an approval
//! workflow waits while workers run in this process, and a second process sends the event; a
//! workflow sleeps in a process that is killed, and the sleep ends in this one; a running tree
//! is cancelled from a second process and learns of it at its next lease renewal.
//!
//! The second processes are this test binary re-executed with `WF_STEER_ROLE` set: the
//! `steer_child_entry` test is their entry point and does nothing in a normal run. Each test
//! starts its own throwaway `redis-server` on a free port.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::process::{block_forever, log_run, runs};
use common::{PATIENCE, eventually, until_waiting};
use wf::InvocationId;
use wf::prelude::*;
use wf_store::redis::testing::{RedisServer, ServerOptions, server_or_skip};

/// How long the sleeper sleeps: long enough to kill its process and go on in this one.
const NAP: Duration = Duration::from_secs(2);

fn open(url: &str) -> App {
    App::builder()
        .app_id("steer")
        .redis(url)
        .lease_duration(Duration::from_millis(800))
        .build()
        .unwrap()
}

struct Tasks {
    nap: Task<(), i128>,
    expense: Task<u64, String>,
    busy: Task<(), ()>,
}

/// The tasks of every scenario. `busy` raises `started` and then makes workflow operations until
/// it is told it was cancelled.
fn register(app: &App, dir: PathBuf, started: Arc<AtomicBool>) -> Tasks {
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
                wf.uuid(); // journaled: the run after the event replays it, and knows it
                if first_run {
                    log_run(&dir, &format!("asked for approval of {cents}"));
                }
                let by: String = wf.wait_event("approve")?;
                Ok(format!("{cents} approved by {by}"))
            },
        )
        .unwrap();
    let busy = app
        .task(
            "busy",
            move |ctx: &TaskContext, (): ()| -> Result<(), TaskError> {
                started.store(true, Ordering::SeqCst);
                loop {
                    ctx.wf().get_data::<u32>("nothing")?;
                    std::thread::sleep(Duration::from_millis(10));
                }
            },
        )
        .unwrap();
    Tasks { nap, expense, busy }
}

/// The child processes' entry point.
#[test]
fn steer_child_entry() {
    let (Ok(role), Ok(url), Ok(dir)) = (
        std::env::var("WF_STEER_ROLE"),
        std::env::var("WF_STEER_URL"),
        std::env::var("WF_STEER_DIR"),
    ) else {
        return; // a normal test run: nothing to do here
    };
    let app = open(&url);
    let tasks = register(&app, PathBuf::from(dir), Arc::default());
    let target = || -> InvocationId { std::env::var("WF_STEER_ID").unwrap().parse().unwrap() };
    match role.as_str() {
        "sleep" => {
            let id = tasks.nap.call(&app, ()).unwrap().id();
            println!("SUBMITTED {id}");
            let _worker = app.worker().threads(1).start().unwrap();
            until_waiting(&app, id);
            println!("WAITING");
            block_forever();
        }
        "send" => {
            app.send_event_with_key(target(), "approve", "approval-1", "the second process")
                .unwrap();
            println!("SENT");
        }
        "cancel" => {
            let report = app
                .cancel_because(target(), "from the second process")
                .unwrap();
            println!("CANCELLED {}", report.stopping.len());
        }
        other => panic!("unknown role {other}"),
    }
}

/// Runs this binary in `role` and returns the process, its standard output piped.
fn spawn(url: &str, dir: &Path, role: &str, id: Option<InvocationId>) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "steer_child_entry",
        "--nocapture",
        "--test-threads",
        "1",
    ])
    .env("WF_STEER_ROLE", role)
    .env("WF_STEER_URL", url)
    .env("WF_STEER_DIR", dir)
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    if let Some(id) = id {
        cmd.env("WF_STEER_ID", id.to_string());
    }
    cmd.spawn().unwrap()
}

/// Runs this binary in `role` to its end; asserts it printed `word`.
fn run_to_end(url: &str, dir: &Path, role: &str, id: InvocationId, word: &str) -> String {
    let out = spawn(url, dir, role, Some(id)).wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "the {role} process failed: {out:?}");
    assert!(stdout.contains(word), "{stdout}");
    stdout
}

/// One test's world: its own server, a directory for the processes' logs, an app.
struct World {
    _server: RedisServer,
    dir: tempfile::TempDir,
    url: String,
    app: App,
    tasks: Tasks,
    started: Arc<AtomicBool>,
}

impl World {
    fn new(test: &str) -> Option<Self> {
        let server = server_or_skip(test, &ServerOptions::default())?;
        let dir = tempfile::tempdir().unwrap();
        let url = server.url("");
        let app = open(&url);
        let started = Arc::new(AtomicBool::new(false));
        let tasks = register(&app, dir.path().to_path_buf(), started.clone());
        Some(World {
            _server: server,
            dir,
            url,
            app,
            tasks,
            started,
        })
    }
}

/// Human in the loop on Redis: the workflow waits for its approval while workers run in this
/// process; a second process sends the event (keyed); the waiting workflow wakes and finishes on
/// the workers here, having asked once.
#[test]
fn an_approval_is_sent_from_a_second_process_while_workers_run() {
    let Some(w) = World::new("an_approval_is_sent_from_a_second_process_while_workers_run") else {
        return;
    };
    let worker = w.app.worker().threads(2).start().unwrap();
    let inv = w.tasks.expense.call(&w.app, 1250).unwrap();
    until_waiting(&w.app, inv.id());
    assert_eq!(
        w.app
            .store()
            .events(inv.id())
            .unwrap()
            .waiting_for
            .as_deref(),
        Some("approve")
    );
    run_to_end(&w.url, w.dir.path(), "send", inv.id(), "SENT");
    assert_eq!(
        inv.result_timeout(PATIENCE).unwrap(),
        "1250 approved by the second process"
    );
    worker.stop();
    assert_eq!(runs(w.dir.path()), vec!["asked for approval of 1250"]);
    let inbox = w.app.store().events(inv.id()).unwrap();
    assert_eq!(inbox.events.len(), 1);
    assert!(inbox.events[0].consumed);
}

/// A sleep on Redis survives its process: the workflow sleeps in a process that is killed, this
/// process finds it waiting with its wake time, and the sleep ends here, no sooner than asked;
/// the step before the sleep ran once.
#[test]
fn a_sleep_survives_a_process_restart() {
    let Some(w) = World::new("a_sleep_survives_a_process_restart") else {
        return;
    };
    let mut child = spawn(&w.url, w.dir.path(), "sleep", None);
    let mut id: Option<InvocationId> = None;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some((_, rest)) = line.split_once("SUBMITTED ") {
            id = Some(rest.trim().parse().unwrap());
        }
        if line.trim().ends_with("WAITING") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let id = id.expect("the process did not report its workflow");

    let record = w.app.store().invocation(id).unwrap();
    assert_eq!(record.status(), Status::Waiting);
    assert!(record.state.not_before.is_some(), "the wake time survived");
    let worker = w.app.worker().threads(1).start().unwrap();
    let slept = Invocation::<i128>::attach(&w.app, id)
        .result_timeout(PATIENCE)
        .unwrap();
    worker.stop();
    assert!(slept >= NAP.as_millis() as i128, "slept {slept} ms");
    assert_eq!(
        runs(w.dir.path()),
        vec!["before the sleep", "after the sleep"],
        "each side of the sleep ran once"
    );
}

/// A running invocation cancelled from a second process: the request is stored with it, the
/// worker here learns of it at its next lease renewal, the body is told at its next workflow
/// operation, and it ends cancelled with the second process's reason.
#[test]
fn a_running_invocation_is_cancelled_from_a_second_process() {
    let Some(w) = World::new("a_running_invocation_is_cancelled_from_a_second_process") else {
        return;
    };
    let worker = w.app.worker().threads(1).start().unwrap();
    let inv = w.tasks.busy.call(&w.app, ()).unwrap();
    eventually("the body runs", || w.started.load(Ordering::SeqCst));
    run_to_end(&w.url, w.dir.path(), "cancel", inv.id(), "CANCELLED 1");
    match inv.result_timeout(PATIENCE) {
        Err(WfError::Cancelled { reason, .. }) => {
            assert!(reason.contains("from the second process"), "{reason}");
        }
        other => panic!("expected Cancelled, got {other:?}"),
    }
    worker.stop();
}
