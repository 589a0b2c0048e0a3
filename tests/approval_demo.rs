//! The approval example as its docs tell a user to run it across processes: `serve` runs the
//! workers and waits for the answer, `send` approves from another process while it runs.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};

use common::process::{ChildLines, example_binary, output_within};

#[test]
fn an_approval_sent_from_another_terminal_finishes_the_served_workflow() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("approvals");
    let bin = example_binary("approval");
    let mut serve = Command::new(&bin)
        .arg("serve")
        .arg(&dir)
        .arg("1234")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = ChildLines::of(&mut serve);
    let hint = lines.until(&mut serve, "the command to approve", |l| {
        l.contains("-- send ")
    });
    // "  cargo run --example approval -- send <DIR> <ID> approve ana"
    let id = hint.split_whitespace().nth(7).unwrap().to_owned();

    let sent = output_within(
        Command::new(&bin)
            .args(["send"])
            .arg(&dir)
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
