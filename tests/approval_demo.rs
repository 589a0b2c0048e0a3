//! The approval example as its docs tell a user to run it across processes: `serve` runs the
//! workers and waits for the answer, `send` approves from another process while it runs; on
//! the file store (through its owner's control socket) and on Redis (feature `redis`: a shared
//! store, as across machines).
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};

use common::process::{ChildLines, example_binary, output_within};

/// `serve` on `store` (a directory or a Redis URL), `send` from a second process, the result
/// printed by the serving process.
fn approve_across_processes(store: &std::ffi::OsStr) {
    let bin = example_binary("approval");
    let mut serve = Command::new(&bin)
        .arg("serve")
        .arg(store)
        .arg("1234")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = ChildLines::of(&mut serve);
    let hint = lines.until(&mut serve, "the command to approve", |l| {
        l.contains("-- send ")
    });
    // "  cargo run [--features redis ]--example approval -- send '<STORE>' <ID> approve ana"
    let id = hint.split_whitespace().rev().nth(2).unwrap().to_owned();

    let sent = output_within(
        Command::new(&bin)
            .args(["send"])
            .arg(store)
            .args([id.as_str(), "approve", "ana"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        "sending the approval",
    );
    let said = String::from_utf8_lossy(&sent.stdout);
    assert!(
        sent.status.success() && said.contains("the running workers finish it"),
        "{said}{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let result = lines.until(&mut serve, "the workflow's result", |l| {
        l.contains("approved by")
    });
    assert_eq!(
        result,
        "1234 cents for a conference ticket: paid, approved by ana"
    );
    let status = common::process::wait_exit(&mut serve, "serving the approval");
    assert!(status.success(), "{status}");
}

#[test]
fn an_approval_sent_from_another_terminal_finishes_the_served_workflow() {
    let tmp = tempfile::tempdir().unwrap();
    approve_across_processes(tmp.path().join("approvals").as_os_str());
}

/// The same on Redis: the serving process's workers wake when the second process's event
/// arrives in the shared store.
#[cfg(feature = "redis")]
#[test]
fn on_redis_an_approval_sent_from_another_process_finishes_the_served_workflow() {
    let Some(server) = wf_store::redis::testing::shared_server("the approval example on Redis")
    else {
        return;
    };
    let ns = wf_store::redis::testing::unique_namespace("approval");
    approve_across_processes(std::ffi::OsStr::new(&server.url(&format!("ns={ns}"))));
}
