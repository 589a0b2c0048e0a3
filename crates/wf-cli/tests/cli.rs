//! The `wf` inspector run as a user runs it: a real file store written by the runtime, then the
//! binary for each subcommand, in tables and in JSON, with bad arguments and missing or locked
//! stores.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use std::time::Duration;

use wf_core::{InvocationId, Timestamp, WorkerId};
use wf_runtime::{App, TaskContext, TaskError, TaskOptions};
use wf_store::conformance::fixtures::{at_ms, root, tasks};
use wf_store::{FileStore, StoreRead, StoreWork};

/// A store with two finished workflows: `order` (two children, a sub-workflow, data and
/// journaled draws) and `broken` (failed).
struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    order: InvocationId,
    broken: InvocationId,
    /// The sub-workflow the order started.
    notify: InvocationId,
    /// The order's invocations (root and two steps), in submission order.
    members: Vec<InvocationId>,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let app = App::builder()
        .app_id("cli-test")
        .file(&dir)
        .build()
        .unwrap();
    let step = app
        .task(
            "step",
            |_: &TaskContext, i: u32| -> Result<String, TaskError> { Ok(format!("step {i} done")) },
        )
        .unwrap();
    let notify = app
        .task_with(
            TaskOptions::new("notify").force_new_workflow(true),
            |ctx: &TaskContext, to: String| -> Result<bool, TaskError> {
                ctx.wf().set_data("sent_to", &to)?;
                Ok(true)
            },
        )
        .unwrap();
    let order = app
        .task(
            "order",
            move |ctx: &TaskContext, id: String| -> Result<u64, TaskError> {
                let wf = ctx.wf();
                wf.set_data("progress", "charging")?;
                let _ = wf.random();
                let _ = wf.uuid();
                let _ = wf.utc_now();
                wf.execute_task(&step, 1)?;
                wf.execute_task(&step, 2)?;
                wf.set_data("progress", "done")?;
                wf.set_data("items", &3u64)?;
                wf.execute_task(&notify, format!("customer of {id}"))?;
                Ok(42)
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
    let order_id = order.call(&app, "A-1".into()).unwrap().id();
    let broken_id = broken.call(&app, ()).unwrap().id();
    app.run_until_idle().unwrap();
    let store = app.store().clone();
    let members = store.workflow_invocations(order_id).unwrap();
    let notify_id = store
        .workflows()
        .unwrap()
        .into_iter()
        .find(|r| r.spec.identity.parent_workflow_id == Some(order_id))
        .expect("the sub-workflow")
        .id();
    drop(store);
    drop(app);
    Fixture {
        _tmp: tmp,
        dir,
        order: order_id,
        broken: broken_id,
        notify: notify_id,
        members,
    }
}

fn wf(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wf"))
        .args(args)
        .env_remove("WF_STORE")
        .env_remove("WF_APP_ID")
        .output()
        .unwrap()
}

fn run(dir: &Path, args: &[&str]) -> Output {
    let mut all = vec!["--store", dir.to_str().unwrap()];
    all.extend_from_slice(args);
    wf(&all)
}

/// Runs a command that must succeed; returns its stdout.
fn ok(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "wf {args:?} failed: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

fn json(dir: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let text = ok(dir, &all);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Every subcommand.
const COMMANDS: [&str; 11] = [
    "workflows",
    "show",
    "journal",
    "data",
    "counts",
    "retry",
    "purge",
    "send-event",
    "cancel",
    "export",
    "repair",
];

/// Waits until the wall clock has passed the store's last update, so `--older-than 0s` takes
/// everything that finished.
fn wait_past_last_update(dir: &Path) {
    let last = FileStore::snapshot(dir)
        .unwrap()
        .workflows()
        .unwrap()
        .iter()
        .map(|r| r.state.updated_at)
        .max()
        .unwrap();
    while Timestamp::from_system_time(std::time::SystemTime::now()) <= last {
        std::thread::yield_now();
    }
}

/// Asserts a failure with exit code `code` and one line on stderr; returns the line.
fn fails(out: &Output, code: i32) -> String {
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    assert_eq!(out.status.code(), Some(code), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr:?}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn workflows_lists_roots_with_status_and_size() {
    let f = fixture();
    let text = ok(&f.dir, &["workflows"]);
    for id in [f.order, f.broken, f.notify] {
        assert!(text.contains(&id.to_string()), "{id} missing:\n{text}");
    }
    assert!(text.contains("WORKFLOW") && text.contains("success") && text.contains("failed"));
    let order_line = text
        .lines()
        .find(|l| l.starts_with(&f.order.to_string()))
        .unwrap();
    assert!(
        order_line.contains("order") && order_line.contains(" 3 "),
        "{order_line}"
    );
    let notify_line = text
        .lines()
        .find(|l| l.starts_with(&f.notify.to_string()))
        .unwrap();
    assert!(notify_line.ends_with(&f.order.to_string()), "{notify_line}");

    let orders = ok(&f.dir, &["workflows", "--task", "order"]);
    assert!(orders.contains(&f.order.to_string()) && !orders.contains(&f.broken.to_string()));
    assert_eq!(
        ok(&f.dir, &["workflows", "--older-than", "1h"]),
        "no workflows\n"
    );
    assert_eq!(
        json(&f.dir, &["workflows", "--newer-than", "1h"])["total"],
        3
    );

    let failed = ok(&f.dir, &["workflows", "--status", "failed"]);
    assert!(failed.contains(&f.broken.to_string()) && !failed.contains(&f.order.to_string()));
    assert_eq!(
        ok(&f.dir, &["workflows", "--status", "running"]),
        "no running workflows\n"
    );

    let v = json(&f.dir, &["workflows", "--limit", "2"]);
    assert_eq!(v["total"], 3);
    let list = v["workflows"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    let order = v["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .chain(
            json(&f.dir, &["workflows"])["workflows"]
                .as_array()
                .unwrap(),
        )
        .find(|w| w["id"] == f.order.to_string())
        .cloned()
        .unwrap();
    assert_eq!(order["type"], "order");
    assert_eq!(order["status"], "success");
    assert_eq!(order["invocations"], 3);
    assert_eq!(order["parent_workflow"], Value::Null);
    assert!(order["age_ms"].is_u64() && order["created_at"].is_string());
}

#[test]
fn show_draws_the_tree_with_the_sub_workflow_under_its_caller() {
    let f = fixture();
    let text = ok(&f.dir, &["show", &f.order.to_string()]);
    println!("{text}");
    assert!(text.starts_with(&format!("workflow {}  type order  status success", f.order)));
    assert!(
        text.contains("4 invocations (1 in sub-workflows)"),
        "{text}"
    );
    for id in f.members.iter().chain([&f.notify]) {
        assert!(text.contains(&id.to_string()), "{id} missing:\n{text}");
    }
    assert!(text.contains("├─ ") && text.contains("└─ "), "{text}");
    assert!(text.contains("notify [sub-workflow]"), "{text}");
    assert!(text.contains("result: \"step 1 done\""), "{text}");
    assert!(text.contains("result: 42 (or signed 21)"), "{text}");

    let v = json(&f.dir, &["show", &f.order.to_string()]);
    assert_eq!(v["workflow"]["id"], f.order.to_string());
    assert_eq!(v["workflow"]["status"], "success");
    let list = v["invocations"].as_array().unwrap();
    assert_eq!(list.len(), 4);
    assert_eq!(list[0]["id"], f.order.to_string());
    assert_eq!(list[0]["depth"], 0);
    assert_eq!(list[0]["result"]["value"], 42);
    for inv in &list[1..] {
        assert_eq!(inv["parent"], f.order.to_string());
        assert_eq!(inv["depth"], 1);
        assert_eq!(inv["status"], "success");
        assert!(inv["attempts"].as_u64().unwrap() >= 1);
    }
    let notify = list
        .iter()
        .find(|i| i["id"] == f.notify.to_string())
        .unwrap();
    assert_eq!(notify["subworkflow_root"], true);
    assert_eq!(notify["workflow"], f.notify.to_string());

    let broken = ok(&f.dir, &["show", &f.broken.to_string()]);
    assert!(
        broken.contains("error: task error: card declined"),
        "{broken}"
    );
    let v = json(&f.dir, &["show", &f.broken.to_string()]);
    assert_eq!(v["invocations"][0]["error"]["message"], "card declined");

    // A child's id shows its workflow.
    let child = run(&f.dir, &["show", &f.members[1].to_string()]);
    assert!(child.status.success());
    assert!(String::from_utf8_lossy(&child.stdout).contains(&format!("workflow {}", f.order)));
}

#[test]
fn journal_lists_the_recorded_operations() {
    let f = fixture();
    let text = ok(&f.dir, &["journal", &f.order.to_string()]);
    println!("{text}");
    for op in [
        "random()",
        "uuid()",
        "utc_now()",
        "child start",
        "child result",
    ] {
        assert!(text.contains(op), "{op} missing:\n{text}");
    }
    assert!(text.contains("task step as"), "{text}");
    assert!(text.contains("success: \"step 2 done\""), "{text}");

    let v = json(&f.dir, &["journal", &f.order.to_string()]);
    assert_eq!(v["task"], "order");
    let entries = v["entries"].as_array().unwrap();
    let ops: Vec<&str> = entries.iter().map(|e| e["op"].as_str().unwrap()).collect();
    assert_eq!(&ops[..3], ["random", "uuid", "time"]);
    assert!(ops.contains(&"child_start") && ops.contains(&"child_result"));
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e["seq"], i);
    }
    let result = entries.iter().find(|e| e["op"] == "child_result").unwrap();
    assert_eq!(result["value"]["type"], "string");
    assert_eq!(result["value"]["value"], "step 1 done");

    let leaf = ok(&f.dir, &["journal", &f.members[1].to_string()]);
    assert!(leaf.contains("0 entries"), "{leaf}");
}

#[test]
fn data_shows_keys_and_decoded_values() {
    let f = fixture();
    let text = ok(&f.dir, &["data", &f.order.to_string()]);
    assert!(
        text.contains("progress") && text.contains("\"done\""),
        "{text}"
    );
    assert!(
        text.contains("items") && text.contains("3 (or signed"),
        "{text}"
    );
    assert_eq!(
        ok(&f.dir, &["data", &f.order.to_string(), "progress"]),
        "\"done\"\n"
    );
    let v = json(&f.dir, &["data", &f.order.to_string()]);
    assert_eq!(v["data"]["progress"]["value"], "done");
    assert_eq!(v["data"]["items"]["value"], 3);
    let v = json(&f.dir, &["data", &f.notify.to_string(), "sent_to"]);
    assert_eq!(v["value"]["value"], "customer of A-1");

    let missing = run(&f.dir, &["data", &f.order.to_string(), "nope"]);
    assert!(fails(&missing, 1).contains("no data key \"nope\""));
    assert_eq!(
        ok(&f.dir, &["data", &f.broken.to_string()]),
        format!("workflow {} has no data\n", f.broken)
    );
}

#[test]
fn counts_are_by_status() {
    let f = fixture();
    let text = ok(&f.dir, &["counts"]);
    let line = |s: &str| {
        text.lines()
            .find(|l| l.starts_with(s))
            .unwrap()
            .split_whitespace()
            .last()
            .unwrap()
            .to_owned()
    };
    assert_eq!(line("success"), "4");
    assert_eq!(line("failed"), "1");
    assert_eq!(line("total"), "5");
    let v = json(&f.dir, &["counts"]);
    assert_eq!(v["counts"]["success"], 4);
    assert_eq!(v["counts"]["pending"], 0);
    assert_eq!(v["total"], 5);
}

#[test]
fn bad_arguments_and_missing_stores_give_one_line() {
    let f = fixture();
    let missing = f.dir.join("nope");
    let e = fails(&run(&missing, &["workflows"]), 1);
    assert!(
        e.contains("no wf store at") && e.contains("does not exist"),
        "{e}"
    );
    let empty = tempfile::tempdir().unwrap();
    let e = fails(&run(empty.path(), &["counts"]), 1);
    assert!(e.contains("no store log"), "{e}");

    let e = fails(&run(&f.dir, &["show", "not-a-uuid"]), 2);
    assert!(e.contains("not a valid invocation id"), "{e}");
    let unknown = InvocationId::from_u128(7).to_string();
    let e = fails(&run(&f.dir, &["journal", &unknown]), 1);
    assert!(e.contains("not found"), "{e}");
    fails(&run(&f.dir, &["frobnicate"]), 2);
    fails(&run(&f.dir, &["workflows", "--status", "sleeping"]), 2);
    fails(&run(&f.dir, &["workflows", "--limit", "many"]), 2);
    let e = fails(&run(&f.dir, &["purge", "--older-than", "7"]), 2);
    assert!(e.contains("unit"), "{e}");
    fails(&run(&f.dir, &["workflows", "--jsn"]), 2);
    let e = fails(&wf(&["counts"]), 2);
    assert!(e.contains("--store"), "{e}");

    // WF_STORE in the form the runtime reads, and --app accepted.
    let out = Command::new(env!("CARGO_BIN_EXE_wf"))
        .args(["--app", "cli-test", "counts"])
        .env("WF_STORE", format!("file:{}", f.dir.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Help reads well and exits 0; no arguments at all prints help with exit 2.
    let help = wf(&["--help"]);
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout).unwrap();
    for cmd in COMMANDS {
        assert!(help.contains(cmd), "{cmd} not in help");
    }
    for cmd in COMMANDS {
        let out = wf(&[cmd, "--help"]);
        assert!(out.status.success(), "{cmd} --help");
        assert!(
            String::from_utf8(out.stdout).unwrap().contains("Example"),
            "{cmd}"
        );
    }
    assert!(
        String::from_utf8(wf(&["data", "--help"]).stdout)
            .unwrap()
            .contains("heuristic")
    );
    assert_eq!(wf(&[]).status.code(), Some(2));
}

#[test]
fn reads_work_on_a_store_a_live_process_owns() {
    let f = fixture();
    let owner = FileStore::open(&f.dir).unwrap();
    let text = ok(&f.dir, &["workflows"]);
    assert!(text.contains(&f.order.to_string()), "{text}");
    assert_eq!(json(&f.dir, &["counts"])["total"], 5);

    // A running invocation shows its lease holder.
    let args = wf_core::encode(&7u32).unwrap();
    let slow = root(99, "slow", &args);
    let id = slow.id;
    let now = Timestamp::from_system_time(std::time::SystemTime::now());
    owner.submit(slow, now).unwrap();
    owner
        .claim(
            &WorkerId::new("worker-7"),
            &tasks(&["slow"]),
            Duration::from_secs(600),
            now,
        )
        .unwrap()
        .unwrap();
    owner.flush().unwrap();
    let text = ok(&f.dir, &["show", &id.to_string()]);
    assert!(
        text.contains("running") && text.contains("lease: worker-7 (expires in"),
        "{text}"
    );
    let v = json(&f.dir, &["show", &id.to_string()]);
    assert_eq!(v["invocations"][0]["lease"]["worker"], "worker-7");
    assert_eq!(v["invocations"][0]["args"]["value"], 7);

    // A bare FileStore serves no control socket: the command cannot reach the owner.
    let e = fails(&run(&f.dir, &["purge", "--older-than", "0s"]), 1);
    assert!(e.contains("does not answer on its control socket"), "{e}");
    assert!(e.contains("stop it, run the command"), "{e}");
    let e = fails(&run(&f.dir, &["repair"]), 1);
    assert!(
        e.contains("owned by a running process")
            && e.contains(&format!("(pid {})", std::process::id())),
        "{e}"
    );
    drop(owner);
}

#[test]
fn purge_removes_finished_workflows() {
    let f = fixture();
    // Nothing finished a week ago.
    assert_eq!(json(&f.dir, &["purge", "--older-than", "7d"])["purged"], 0);
    // `purge --older-than 0s` keeps what finished in the cut-off's own millisecond: wait until
    // the clock has passed the store's last update.
    wait_past_last_update(&f.dir);
    let text = ok(&f.dir, &["purge", "--older-than", "0s"]);
    assert_eq!(
        text.lines().next().unwrap().split_whitespace().nth(1),
        Some("3"),
        "{text}"
    );
    assert_eq!(ok(&f.dir, &["workflows"]), "no workflows\n");
    assert_eq!(json(&f.dir, &["workflows"])["total"], 0);
    assert_eq!(json(&f.dir, &["counts"])["total"], 0);
    // Purging a missing store does not create one.
    let missing = f.dir.join("nope");
    fails(&run(&missing, &["purge", "--older-than", "0s"]), 1);
    assert!(!missing.exists());
}

#[test]
fn app_must_be_the_stores_and_pending_work_names_the_task_it_waits_for() {
    let f = fixture();
    assert!(ok(&f.dir, &["--app", "cli-test", "counts"]).contains("total"));
    for args in [&["counts"][..], &["purge", "--older-than", "0s"]] {
        let mut all = vec!["--app", "billing"];
        all.extend_from_slice(args);
        let e = fails(&run(&f.dir, &all), 1);
        assert!(
            e.contains("belongs to app 'cli-test', not 'billing'") && e.contains("its own store"),
            "{e}"
        );
    }

    // An invocation of a task no worker has registered waits, and says for what.
    let owner = FileStore::open(&f.dir).unwrap();
    let orphan = root(98, "renamed.task", &wf_core::encode(&1u32).unwrap());
    owner.submit(orphan.clone(), at_ms(0)).unwrap();
    drop(owner);
    let text = ok(&f.dir, &["show", &orphan.id.to_string()]);
    assert!(
        text.contains("pending")
            && text.contains("waiting for a worker that runs task 'renamed.task'"),
        "{text}"
    );
}

#[test]
fn retry_requeues_a_failed_invocation() {
    let f = fixture();
    let e = fails(&run(&f.dir, &["retry", &f.order.to_string()]), 1);
    assert!(
        e.contains("cannot be retried: it is success, not failed"),
        "{e}"
    );
    let unknown = InvocationId::from_u128(7).to_string();
    assert!(fails(&run(&f.dir, &["retry", &unknown]), 1).contains("not found"));

    let text = ok(&f.dir, &["retry", &f.broken.to_string()]);
    assert!(
        text.contains("pending again; a worker that runs task 'broken' takes it"),
        "{text}"
    );
    let shown = ok(&f.dir, &["show", &f.broken.to_string()]);
    assert!(shown.contains("pending"), "{shown}");
    assert!(
        shown.contains("error: task error: card declined"),
        "the last error stays: {shown}"
    );
    // A second retry is refused: it is pending now.
    let e = fails(&run(&f.dir, &["retry", &f.broken.to_string()]), 1);
    assert!(e.contains("it is pending, not failed"), "{e}");

    // The retried invocation runs again in an app, and fails again the same way.
    let app = App::builder()
        .app_id("cli-test")
        .file(&f.dir)
        .build()
        .unwrap();
    app.task(
        "broken",
        |_: &TaskContext, (): ()| -> Result<(), TaskError> { Ok(()) },
    )
    .unwrap();
    app.run_until_idle().unwrap();
    assert_eq!(
        app.invocation(f.broken).unwrap().status(),
        wf_core::Status::Success,
        "the retry ran with the fixed task"
    );
    drop(app);

    // A store held by a process without a control socket (a bare FileStore) cannot be reached.
    let owner = FileStore::open(&f.dir).unwrap();
    let e = fails(&run(&f.dir, &["retry", &f.broken.to_string()]), 1);
    assert!(
        e.contains("does not answer on its control socket") && e.contains("stop it"),
        "{e}"
    );
    drop(owner);
}

#[test]
fn purge_dry_run_lists_and_removes_nothing_even_on_a_live_store() {
    let f = fixture();
    wait_past_last_update(&f.dir);
    let owner = FileStore::open(&f.dir).unwrap();
    let text = ok(&f.dir, &["purge", "--older-than", "0s", "--dry-run"]);
    assert!(
        text.starts_with("would purge 3 finished workflows"),
        "{text}"
    );
    assert!(text.contains("nothing was removed"), "{text}");
    for id in [f.order, f.broken, f.notify] {
        assert!(text.contains(&id.to_string()), "{id} missing:\n{text}");
    }
    let v = json(&f.dir, &["purge", "--older-than", "0s", "--dry-run"]);
    assert_eq!(v["would_purge"], 3);
    assert_eq!(v["workflows"][0]["id"], f.order.to_string());
    let none = ok(&f.dir, &["purge", "--older-than", "7d", "--dry-run"]);
    assert!(
        none.starts_with("would purge 0 finished workflows"),
        "{none}"
    );
    assert_eq!(
        json(&f.dir, &["counts"])["total"],
        5,
        "a dry run removes nothing"
    );
    drop(owner);
}

/// An app on the store in `dir` whose `approval` task waits for an `approve` event.
fn approval_app(dir: &Path) -> (App, wf_runtime::Task<u32, String>) {
    let app = App::builder().app_id("cli-test").file(dir).build().unwrap();
    let approval = app
        .task(
            "approval",
            |ctx: &TaskContext, n: u32| -> Result<String, TaskError> {
                let by: String = ctx.wf().wait_event("approve")?;
                Ok(format!("{n} approved by {by}"))
            },
        )
        .unwrap();
    (app, approval)
}

/// `wf send-event` appends an event to a store no process owns: the waiting workflow takes it
/// when its app runs again. A key makes a second send harmless; bad JSON, an unknown or a
/// finished invocation and an owned store are one-line errors.
#[test]
fn send_event_reaches_a_waiting_workflow() {
    let f = fixture();
    let (app, approval) = approval_app(&f.dir);
    let id = approval.call(&app, 7).unwrap().id();
    app.run_until_idle().unwrap();
    drop(app); // the worker process stops; the workflow waits in the store

    let id_text = id.to_string();
    let shown = ok(&f.dir, &["show", &id_text]);
    assert!(shown.contains("waiting for event \"approve\""), "{shown}");
    let sent = ok(
        &f.dir,
        &["send-event", &id_text, "approve", "\"ana\"", "--key", "k1"],
    );
    assert!(sent.contains("stored as #0"), "{sent}");
    let again = json(
        &f.dir,
        &["send-event", &id_text, "approve", "\"ana\"", "--key", "k1"],
    );
    assert_eq!(again["stored"], Value::Bool(false), "{again}");
    assert_eq!(again["seq"], 0);
    let journal = ok(&f.dir, &["journal", &id_text]);
    assert!(
        journal.contains("0 entries"),
        "nothing consumed yet: {journal}"
    );

    let e = fails(&run(&f.dir, &["send-event", &id_text, "approve", "ana"]), 2);
    assert!(e.contains("not JSON"), "{e}");
    let unknown = InvocationId::from_u128(7).to_string();
    let e = fails(&run(&f.dir, &["send-event", &unknown, "approve", "1"]), 1);
    assert!(e.contains("not found"), "{e}");
    let e = fails(
        &run(
            &f.dir,
            &["send-event", &f.order.to_string(), "approve", "1"],
        ),
        1,
    );
    assert!(e.contains("already final (success)"), "{e}");

    // While an app owns the store, the command goes through the app's control socket.
    let (app, _) = approval_app(&f.dir);
    let sent = ok(&f.dir, &["send-event", &id_text, "approve", "\"bo\""]);
    assert!(sent.contains("stored as #1"), "{sent}");
    app.run_until_idle().unwrap();
    let result = wf_runtime::Invocation::<String>::attach(&app, id)
        .result()
        .unwrap();
    assert_eq!(result, "7 approved by ana");
    let journal = app.store().journal(id).unwrap();
    assert!(matches!(&journal[0].op, wf_core::Op::Event { name, .. } if name == "approve"));
}

/// `wf cancel` cancels a waiting workflow in a free store, and through the owner's control
/// socket while an app owns it; cancelling a finished one says so and changes nothing; an
/// unknown id is a one-line error.
#[test]
fn cancel_cancels_a_waiting_workflow() {
    let f = fixture();
    let (app, approval) = approval_app(&f.dir);
    let first = approval.call(&app, 1).unwrap().id();
    let second = approval.call(&app, 2).unwrap().id();
    app.run_until_idle().unwrap();
    drop(app); // the workflows wait in the store

    let done = ok(
        &f.dir,
        &["cancel", &first.to_string(), "--reason", "too late"],
    );
    assert!(done.contains("cancelled 1 invocation(s)"), "{done}");
    let shown = ok(&f.dir, &["show", &first.to_string()]);
    assert!(shown.contains("cancelled"), "{shown}");

    let (app, _) = approval_app(&f.dir);
    let report = json(&f.dir, &["cancel", &second.to_string()]);
    assert_eq!(report["status_before"], "waiting", "{report}");
    assert_eq!(report["cancelled"][0], second.to_string(), "{report}");
    assert_eq!(
        app.store().invocation(second).unwrap().status(),
        wf_core::Status::Cancelled
    );
    let again = ok(&f.dir, &["cancel", &f.order.to_string()]);
    assert!(again.contains("already final (success)"), "{again}");
    let unknown = InvocationId::from_u128(7).to_string();
    let e = fails(&run(&f.dir, &["cancel", &unknown]), 1);
    assert!(e.contains("not found"), "{e}");
}

/// `wf export` writes the workflows' trees with their journals, as `replay_check` reads them:
/// the order's tree holds its root, its two steps and the sub-workflow it started.
#[test]
fn export_writes_what_the_replay_check_reads() {
    let f = fixture();
    let file = f.dir.parent().unwrap().join("export.json");
    let text = ok(
        &f.dir,
        &[
            "export",
            &f.order.to_string(),
            "--output",
            file.to_str().unwrap(),
        ],
    );
    assert!(
        text.contains("exported 2 workflow(s), 4 invocation(s)"),
        "{text}"
    );
    let export = wf_runtime::testing::read_export(&file).unwrap();
    assert_eq!(export.app.as_deref(), Some("cli-test"));
    assert_eq!(export.workflows(), vec![f.order, f.notify]);
    let ids: Vec<InvocationId> = export.invocations.iter().map(|i| i.spec.id).collect();
    let mut expected = f.members.clone();
    expected.push(f.notify);
    assert_eq!(ids, expected);
    assert_eq!(
        export.invocations[0].journal,
        FileStore::snapshot(&f.dir)
            .unwrap()
            .journal(f.order)
            .unwrap()
    );

    let all: Value = serde_json::from_str(&ok(&f.dir, &["export", "--all"])).unwrap();
    assert_eq!(
        all["invocations"].as_array().unwrap().len(),
        5,
        "and `broken`"
    );
    assert!(fails(&run(&f.dir, &["export"]), 2).contains("required"));
}

#[test]
fn reads_note_a_torn_tail_and_repair_cuts_a_damaged_end() {
    let f = fixture();
    let log = f.dir.join("wf.log");
    let whole = std::fs::read(&log).unwrap();
    let counts = ok(&f.dir, &["counts"]);

    // A torn tail: reads still work, and say what they ignored.
    let mut torn = whole.clone();
    torn.extend_from_slice(&[0xff; 100]);
    std::fs::write(&log, &torn).unwrap();
    let out = run(&f.dir, &["counts"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), counts);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with("note: ") && stderr.contains("ignored 100 unreadable bytes"),
        "{stderr}"
    );

    // A megabyte of damage: no read, no silent cut; repair cuts it, saves it, says so.
    let mut damaged = whole.clone();
    damaged.extend_from_slice(&vec![0xff; 1 << 20]);
    std::fs::write(&log, &damaged).unwrap();
    let e = fails(&run(&f.dir, &["counts"]), 1);
    assert!(e.contains("corrupt") && e.contains("repair"), "{e}");
    let said = ok(&f.dir, &["repair"]);
    let offset = whole.len().to_string();
    assert!(
        said.contains(&format!("cut {} bytes at offset {offset}", 1 << 20))
            && said.contains("saved them to"),
        "{said}"
    );
    assert_eq!(std::fs::read(&log).unwrap(), whole);
    let saved = f.dir.join(format!("wf.log.cut-{offset}"));
    assert_eq!(std::fs::read(saved).unwrap().len(), 1 << 20);
    assert_eq!(ok(&f.dir, &["counts"]), counts);
    let again = json(&f.dir, &["repair"]);
    assert_eq!(again["repaired"], Value::Bool(false), "{again}");
}

/// The real second-process case: an app owns the store and its worker runs; `wf send-event`
/// (another process) goes through the app's control socket and wakes the waiting workflow, and
/// `wf retry` and `wf purge` run there too, while the worker goes on.
#[test]
fn commands_reach_a_store_whose_owner_is_running() {
    let f = fixture();
    let (app, approval) = approval_app(&f.dir);
    let worker = app.worker().threads(1).start().unwrap();
    let waiting = approval.call(&app, 9).unwrap();
    let id_text = waiting.id().to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while waiting.status().unwrap() != wf_core::Status::Waiting {
        assert!(std::time::Instant::now() < deadline, "never waited");
        std::thread::yield_now();
    }
    let shown = ok(&f.dir, &["show", &id_text]);
    assert!(shown.contains("waiting for event \"approve\""), "{shown}");
    let sent = json(&f.dir, &["send-event", &id_text, "approve", "\"cy\""]);
    assert_eq!(sent["stored"], Value::Bool(true), "{sent}");
    assert_eq!(
        waiting.result_timeout(Duration::from_secs(30)).unwrap(),
        "9 approved by cy"
    );
    let e = fails(&run(&f.dir, &["send-event", &id_text, "approve", "1"]), 1);
    assert!(e.contains("already final (success)"), "{e}");
    let dry = json(&f.dir, &["purge", "--older-than", "7d", "--dry-run"]);
    assert_eq!(dry["would_purge"], 0, "{dry}");
    worker.stop();
}

/// A store with an **unsynced hole**, made as `wf-store/tests/file_holes.rs` makes one: a
/// pipelined commit and the claim after it are written, not synced; a power loss on a disk that
/// writes unsynced pages out of order keeps the claim and loses a sector of the commit (and
/// `wf.synced` is as it was then). `wf repair` cuts the hole and what followed it, says it was
/// one (nothing acknowledged as durable lost, nothing saved), in text and in JSON.
#[test]
fn repair_cuts_an_unsynced_hole_and_says_nothing_durable_was_lost() {
    use wf_store::file::testing::CountingFs;
    use wf_store::{Commit, FileOptions, Outcome};

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let log = dir.join("wf.log");
    let (w, t, lease) = (WorkerId::new("w"), tasks(&["t"]), Duration::from_secs(600));
    let fs = CountingFs::new();
    // No idle sync: the pipelined commit must stay unsynced, as the power loss finds it.
    let options = FileOptions::default()
        .file_system(std::sync::Arc::new(fs.clone()))
        .idle_sync(None);
    let store = FileStore::open_with(&dir, options).unwrap();
    store.bind_app("cli-test").unwrap();
    store
        .submit_many(vec![root(1, "t", b""), root(2, "t", b"")], at_ms(0))
        .unwrap();
    let first = store.claim(&w, &t, lease, at_ms(1)).unwrap().unwrap();
    let commit_at = store.stats().log_bytes;
    let result = Outcome::Success(vec![7; 600]);
    store
        .commit_pipelined(&first.lease, Commit::outcome(result), at_ms(2))
        .unwrap();
    let commit_end = store.stats().log_bytes;
    let second = store.claim(&w, &t, lease, at_ms(3)).unwrap().unwrap();
    let end = store.stats().log_bytes;
    assert!(fs.synced_len(&log) <= commit_at, "the commit is unsynced");
    let mut bytes = std::fs::read(&log).unwrap();
    assert_eq!(bytes.len() as u64, end, "the claim after it is written");
    let synced = std::fs::read(dir.join("wf.synced")).unwrap();
    drop(store);

    // The power loss: one 512-byte sector of the commit's payload (after its 12-byte frame)
    // never written, the claim after it kept; `wf.synced` as it was before closing synced all.
    let start = commit_at as usize + 12;
    let stop = (start + 512).min(commit_end as usize);
    assert!(stop < commit_end as usize, "the hole is inside the commit");
    bytes[start..stop].fill(0);
    std::fs::write(&log, &bytes).unwrap();
    std::fs::write(dir.join("wf.synced"), &synced).unwrap();
    let copy = tmp.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    for name in ["wf.log", "wf.synced"] {
        std::fs::copy(dir.join(name), copy.join(name)).unwrap();
    }

    let cut = end - commit_at;
    let said = ok(&dir, &["repair"]);
    assert_eq!(
        said,
        format!(
            "cut an unsynced hole and what followed it, {cut} bytes at offset {commit_at}, off \
             {} (record checksum does not match its contents; the 1 valid records after it \
             were all appended before it was synced (an unsynced hole a power loss left: none \
             of them was acknowledged as durable)): records a power loss kept out of order, \
             none acknowledged as durable; nothing else was wrong\n",
            log.display()
        )
    );
    assert_eq!(std::fs::read(&log).unwrap(), bytes[..commit_at as usize]);
    let saved: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("wf.log.cut-"))
        .collect();
    assert!(saved.is_empty(), "a hole is cut, not saved: {saved:?}");
    // The store as its last synced record left it: the first claimed (its lease expires and it
    // runs again), the second pending (its claim went with the hole).
    let store = FileStore::snapshot(&dir).unwrap();
    let status = |id| store.invocation(id).unwrap().status();
    assert_eq!(status(first.lease.invocation), wf_core::Status::Running);
    assert_eq!(status(second.lease.invocation), wf_core::Status::Pending);
    assert!(
        ok(&dir, &["repair"]).ends_with("is whole: nothing to repair\n"),
        "repaired once"
    );

    let said = json(&copy, &["repair"]);
    assert_eq!(said["repaired"], Value::Bool(true), "{said}");
    assert_eq!(said["unsynced_hole"], Value::Bool(true), "{said}");
    assert_eq!(said["torn_tail_only"], Value::Bool(true), "{said}");
    assert_eq!(said["offset"], Value::from(commit_at), "{said}");
    assert_eq!(said["dropped_bytes"], Value::from(cut), "{said}");
    assert_eq!(said["saved_to"], Value::Null, "{said}");
}
