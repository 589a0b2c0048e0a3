//! A file store reached from a second process while its owner runs: the second process's `App`
//! finds the store locked, becomes a client of the owner's control socket, and submits, awaits
//! results, reads and sends events through it; it cannot run workers.
//!
//! The second process is this test binary re-executed with `WF_SECOND_DIR` set: the
//! `second_process_entry` test is that process's entry point and does nothing in a normal run.
#![cfg(all(feature = "file", unix))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::process::output_within;
use common::{PATIENCE, until_waiting};
use wf::InvocationId;
use wf::prelude::*;
use wf::store::StoreError;

fn open(dir: &Path) -> App {
    App::builder()
        .app_id("second")
        .file(dir.join("store"))
        .build()
        .unwrap()
}

/// The tasks both processes register: an approval that waits for an event, and a double.
fn register(app: &App) -> (Task<u32, String>, Task<u64, u64>) {
    let approval = app
        .task(
            "approval",
            |ctx: &TaskContext, n: u32| -> Result<String, TaskError> {
                let by: String = ctx.wf().wait_event("approve")?;
                Ok(format!("{n} approved by {by}"))
            },
        )
        .unwrap();
    let double = app
        .task(
            "double",
            |_: &TaskContext, n: u64| -> Result<u64, TaskError> { Ok(n * 2) },
        )
        .unwrap();
    (approval, double)
}

/// The second process: approves the waiting workflow, runs a task through the owner's workers
/// and awaits its result, and is refused workers.
#[test]
fn second_process_entry() {
    let (Ok(dir), Ok(id)) = (
        std::env::var("WF_SECOND_DIR"),
        std::env::var("WF_SECOND_ID"),
    ) else {
        return; // a normal test run: nothing to do here
    };
    let app = open(Path::new(&dir));
    let (_, double) = register(&app);
    let id: InvocationId = id.parse().unwrap();

    match app.worker().start() {
        Err(WfError::Store(StoreError::NotOwner { pid, .. })) => {
            assert_ne!(pid, std::process::id())
        }
        other => panic!("a client process ran workers: {other:?}"),
    }
    assert_eq!(app.invocation(id).unwrap().status(), wf::Status::Waiting);
    app.send_event(id, "approve", "dee").unwrap();
    let doubled = double.call(&app, 21).unwrap();
    assert_eq!(doubled.result_timeout(PATIENCE).unwrap(), 42);
    println!("SECOND PROCESS OK");
}

#[test]
fn a_second_process_submits_awaits_and_approves_through_the_owner() {
    let tmp = tempfile::tempdir().unwrap();
    let app = open(tmp.path());
    let (approval, _) = register(&app);
    let worker = app.worker().threads(2).start().unwrap();
    let waiting = approval.call(&app, 3).unwrap();
    until_waiting(&app, waiting.id());

    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "second_process_entry",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("WF_SECOND_DIR", tmp.path())
        .env("WF_SECOND_ID", waiting.id().to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = output_within(child, "the second process's work");
    let status = out.status;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        status.success() && stdout.contains("SECOND PROCESS OK"),
        "the second process failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        waiting.result_timeout(PATIENCE).unwrap(),
        "3 approved by dee"
    );
    worker.stop();
}

/// Once the owner is gone, the next process owns the store itself.
#[test]
fn the_store_is_owned_again_once_its_owner_is_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let first = open(tmp.path());
    assert_eq!(first.store().backend(), "file");
    let second = open(tmp.path());
    assert_ne!(second.store().backend(), "file", "a client of the first");
    drop(second);
    drop(first);
    let third = open(tmp.path());
    assert_eq!(third.store().backend(), "file");
    assert!(third.worker().start().is_ok());
}
