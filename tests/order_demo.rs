//! The order demo as a user runs it: output to a closed pipe or to a file never fails an order,
//! a clean run prints no replay lines, and running it again resumes the one batch.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::process::{example_binary, output_within, wait_exit};
use wf::WorkflowQuery;
use wf::prelude::*;

const ORDERS: u32 = 6;

/// The order example's binary.
fn demo() -> PathBuf {
    example_binary("order")
}

fn run(dir: &Path, stdout: Stdio, stderr: Stdio) -> std::process::Child {
    Command::new(demo())
        .args(["--orders", &ORDERS.to_string(), "--step-ms", "1", "--dir"])
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .unwrap()
}

/// Order workflows by status, read from the demo's store after it exited.
fn finished_orders(dir: &Path) -> (usize, usize, usize) {
    let app = App::builder()
        .app_id("orders")
        .file(dir.join("store"))
        .build()
        .unwrap();
    let count = |q: WorkflowQuery| app.workflows(&q).unwrap().matched;
    (
        count(WorkflowQuery::new().task("order").status(Status::Success)),
        count(WorkflowQuery::new().task("order")),
        count(WorkflowQuery::new().task("order_batch")),
    )
}

#[test]
fn output_to_a_closed_pipe_fails_no_order() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = run(tmp.path(), Stdio::piped(), Stdio::piped());
    // Close the reading ends at once: every line the demo writes meets a broken pipe.
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = wait_exit(&mut child, "the demo");
    assert!(status.success(), "the demo failed: {status}");
    assert_eq!(
        finished_orders(tmp.path()),
        (ORDERS as usize, ORDERS as usize, 1)
    );
}

#[test]
fn a_clean_run_to_a_file_is_plain_and_says_nothing_of_replays() {
    let tmp = tempfile::tempdir().unwrap();
    let out_path = tmp.path().join("out.txt");
    let err_path = tmp.path().join("err.txt");
    let out = std::fs::File::create(&out_path).unwrap();
    let err = std::fs::File::create(&err_path).unwrap();
    let status = wait_exit(&mut run(tmp.path(), out.into(), err.into()), "the demo");
    assert!(status.success());
    let stdout = std::fs::read_to_string(&out_path).unwrap();
    let stderr = std::fs::read_to_string(&err_path).unwrap();
    assert!(
        stdout.contains(&format!("batch finished: {ORDERS} orders")),
        "{stdout}"
    );
    assert!(
        stdout.contains("repeated (in flight when interrupted): 0"),
        "{stdout}"
    );
    let store = format!("--store file:{}", tmp.path().join("store").display());
    assert!(
        stdout.contains(&format!(
            "inspect it: cargo run -q -p wf-cli -- {store} show "
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "or in a browser, as trees and timelines: cargo run -q -p wf-cli -- {store} serve"
        )),
        "{stdout}"
    );
    assert!(stderr.contains("started batch"), "{stderr}");
    for word in ["replay", "rerun", "resuming"] {
        assert!(
            !stderr.contains(word),
            "a clean run printed {word:?}:\n{stderr}"
        );
    }
    // 4 steps per order, one line each; no progress bar drawing in a file.
    assert_eq!(
        stderr.matches("  run ").count(),
        4 * ORDERS as usize,
        "{stderr}"
    );
    assert!(
        !stderr.contains('\r') && !stderr.contains('\x1b'),
        "{stderr:?}"
    );
    assert_eq!(
        finished_orders(tmp.path()),
        (ORDERS as usize, ORDERS as usize, 1)
    );

    // Running it again finds the batch (an idempotent start) instead of starting a second one.
    let again: Output = output_within(
        Command::new(demo())
            .args(["--orders", "99", "--step-ms", "1", "--dir"])
            .arg(tmp.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        "the demo's second run",
    );
    assert!(again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains(&format!("holds a batch of {ORDERS} orders, not 99")),
        "{stderr}"
    );
    assert!(
        !stderr.contains("  run "),
        "a finished batch ran steps again:\n{stderr}"
    );
    assert_eq!(
        finished_orders(tmp.path()),
        (ORDERS as usize, ORDERS as usize, 1)
    );
}
