//! Crash tests: a worker process on the file store is killed with SIGKILL mid-work; a new process
//! opening the same store resumes and completes the work once the dead worker's lease expires.
//!
//! The worker process is this test binary re-executed with `WF_CRASH_ROLE` set: the
//! `crash_child_entry` test is that process's entry point and does nothing in a normal run.
#![cfg(feature = "file")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::process::{ChildLines, block_forever, kill_9, log_run, output_within, runs};
use wf::core::OpKind;
use wf::prelude::*;
use wf::{FailureKind, InvocationId, uuid};

const LEASE: Duration = Duration::from_millis(800);
const PATIENCE: Duration = Duration::from_secs(60);

/// Registers the tasks of both scenarios. `crashing` makes the marked step block (the process is
/// about to be killed there) instead of finishing.
fn register(app: &App, dir: PathBuf, crashing: bool) -> (Task<u32, u32>, Task<(), String>) {
    let d = dir.clone();
    let single = app
        .task(
            "single",
            move |ctx: &TaskContext, n: u32| -> Result<u32, TaskError> {
                log_run(&d, &format!("single attempt {}", ctx.attempt()));
                if crashing {
                    println!("RUNNING");
                    block_forever();
                }
                Ok(n * 10)
            },
        )
        .unwrap();
    let d = dir.clone();
    let step = app
        .task(
            "step",
            move |_: &TaskContext, i: u32| -> Result<u32, TaskError> {
                log_run(&d, &format!("step {i}"));
                if crashing && i == 2 {
                    println!("RUNNING");
                    block_forever();
                }
                Ok(i)
            },
        )
        .unwrap();
    let d = dir;
    let flow = app
        .task(
            "flow",
            move |ctx: &TaskContext, (): ()| -> Result<String, TaskError> {
                let wf = ctx.wf();
                let draw = (wf.random(), wf.uuid(), wf.utc_now().unix_timestamp_nanos());
                log_run(&d, &format!("flow draw {} {} {}", draw.0, draw.1, draw.2));
                wf.set_data("draw", &draw.1)?;
                let mut sum = 0;
                for i in 1..=3 {
                    sum += wf.execute_task(&step, i)?;
                }
                Ok(format!("{} {} {} {sum}", draw.0, draw.1, draw.2))
            },
        )
        .unwrap();
    (single, flow)
}

/// A workflow that runs a child inline and then crashes its process in its own body, after the
/// child committed and before the workflow's next commit (`crashing`).
fn register_after(app: &App, dir: PathBuf, crashing: bool) -> Task<(), u32> {
    let d = dir.clone();
    let note = app
        .task(
            "note",
            move |_: &TaskContext, n: u32| -> Result<u32, TaskError> {
                log_run(&d, &format!("note {n}"));
                Ok(n + 1)
            },
        )
        .unwrap();
    app.task(
        "after",
        move |ctx: &TaskContext, (): ()| -> Result<u32, TaskError> {
            let got = ctx.wf().execute_task(&note, 41)?;
            log_run(&dir, "after the child");
            if crashing {
                println!("RUNNING");
                block_forever();
            }
            Ok(got)
        },
    )
    .unwrap()
}

/// How many lost executions in a row the poison task allows.
const POISON_RECOVERIES: u32 = 2;

/// A task whose body crashes its process every time (`crashing`), as a segfault in native code
/// or an out-of-memory kill would.
fn register_poison(app: &App, dir: PathBuf, crashing: bool) -> Task<(), ()> {
    let options = TaskOptions::new("poison").max_recoveries(POISON_RECOVERIES);
    app.task_with(options, move |ctx: &TaskContext, (): ()| {
        log_run(&dir, &format!("poison attempt {}", ctx.attempt()));
        if crashing {
            std::process::abort();
        }
        Ok(())
    })
    .unwrap()
}

fn open(dir: &Path) -> App {
    App::builder()
        .app_id("crash")
        .file(dir.join("store"))
        .lease_duration(LEASE)
        .build()
        .unwrap()
}

/// The worker process: submits the scenario's invocation, prints its id, and works until killed.
#[test]
fn crash_child_entry() {
    let (Ok(role), Ok(dir)) = (
        std::env::var("WF_CRASH_ROLE"),
        std::env::var("WF_CRASH_DIR"),
    ) else {
        return; // a normal test run: nothing to do here
    };
    let dir = PathBuf::from(dir);
    let app = open(&dir);
    let poison = register_poison(&app, dir.clone(), true);
    let after = register_after(&app, dir.clone(), true);
    let (single, flow) = register(&app, dir, true);
    let id = match role.as_str() {
        "single" => Some(single.call(&app, 4).unwrap().id()),
        "flow" => Some(flow.call(&app, ()).unwrap().id()),
        "after" => Some(after.call(&app, ()).unwrap().id()),
        "poison" => Some(poison.call(&app, ()).unwrap().id()),
        _ => None, // "work": only run what the store holds
    };
    if let Some(id) = id {
        println!("SUBMITTED {id}");
    }
    let _worker = app.worker().threads(2).start().unwrap();
    block_forever();
}

/// Starts this test binary again as a worker process in `role` (see `crash_child_entry`), with
/// its stdout piped to the caller.
fn spawn_worker_process(dir: &Path, role: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child_entry",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("WF_CRASH_ROLE", role)
        .env("WF_CRASH_DIR", dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Starts the worker process and waits until a body reports it is running; returns the child
/// and the submitted invocation id.
fn start_and_wait_until_running(dir: &Path, role: &str) -> (Child, InvocationId) {
    let mut child = spawn_worker_process(dir, role);
    let lines = ChildLines::of(&mut child);
    let mut id = None;
    lines.until(&mut child, "RUNNING", |line| {
        // libtest prints "test crash_child_entry ... " in front of the first line.
        if let Some((_, rest)) = line.split_once("SUBMITTED ") {
            id = Some(rest.trim().parse().unwrap());
        }
        line.trim() == "RUNNING"
    });
    (
        child,
        id.expect("the worker process did not report its invocation"),
    )
}

#[test]
fn a_killed_worker_s_invocation_is_resumed_by_a_new_process() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, id) = start_and_wait_until_running(dir.path(), "single");
    kill_9(&mut child);
    assert_eq!(runs(dir.path()), vec!["single attempt 1"]);

    // A new "process" (a new app on the same directory: the dead process's lock is gone).
    let app = open(dir.path());
    register(&app, dir.path().to_owned(), false);
    let worker = app.worker().threads(1).start().unwrap();
    let inv: Invocation<u32> = Invocation::attach(&app, id);
    assert_eq!(inv.result_timeout(PATIENCE).unwrap(), 40);
    worker.stop();
    assert_eq!(
        runs(dir.path()),
        vec!["single attempt 1", "single attempt 2"],
        "the body ran at most twice"
    );
}

#[test]
fn a_workflow_killed_mid_child_resumes_without_repeating_finished_steps() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, id) = start_and_wait_until_running(dir.path(), "flow");
    kill_9(&mut child);
    let before = runs(dir.path());
    assert_eq!(before.iter().filter(|l| l.as_str() == "step 1").count(), 1);
    assert_eq!(before.iter().filter(|l| l.as_str() == "step 2").count(), 1);

    let app = open(dir.path());
    // Step 2 ran inline: the process died between the checkpoint that persisted the workflow's
    // progress and claimed step 2, and step 2's commit.
    assert_eq!(
        common::journal_kinds(&app, id),
        [
            OpKind::Random,
            OpKind::Uuid,
            OpKind::Time,
            OpKind::ChildStart,
            OpKind::ChildResult,
            OpKind::ChildStart
        ],
        "the checkpoint before step 2 is durable"
    );
    let members = app.store().workflow_invocations(id).unwrap();
    let step2 = app.store().invocation(members[2]).unwrap();
    assert_eq!(
        (step2.status(), step2.state.attempts),
        (Status::Running, 1),
        "step 2 was claimed by the checkpoint and never committed"
    );
    assert!(app.store().get_data(id, "draw").unwrap().is_some());
    register(&app, dir.path().to_owned(), false);
    let worker = app.worker().threads(2).start().unwrap();
    let inv: Invocation<String> = Invocation::attach(&app, id);
    let result = inv.result_timeout(PATIENCE).unwrap();
    worker.stop();

    let after = runs(dir.path());
    let count = |l: &str| after.iter().filter(|x| x.as_str() == l).count();
    assert_eq!(
        (count("step 1"), count("step 2"), count("step 3")),
        (1, 2, 1),
        "{after:?}"
    );
    // Every execution of the workflow body drew the same values, and the result carries them.
    let draws: Vec<&String> = after
        .iter()
        .filter(|l| l.starts_with("flow draw "))
        .collect();
    assert!(draws.len() >= 2, "{after:?}");
    assert!(draws.iter().all(|d| *d == draws[0]), "{draws:?}");
    assert_eq!(
        format!("flow draw {}", result.rsplit_once(' ').unwrap().0),
        *draws[0]
    );
    assert!(result.ends_with(" 6"));
    let stored: uuid::Uuid =
        wf::core::decode(&app.store().get_data(id, "draw").unwrap().unwrap()).unwrap();
    assert!(result.contains(&stored.to_string()));
}

/// The process dies after a child ran inline and committed, before the workflow's next commit:
/// the child's outcome is durable (it is not run again) though the workflow's journal never
/// recorded it; the workflow's replay reads it from the store.
#[test]
fn a_workflow_killed_after_an_inline_child_committed_does_not_rerun_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, id) = start_and_wait_until_running(dir.path(), "after");
    kill_9(&mut child);
    assert_eq!(runs(dir.path()), vec!["note 41", "after the child"]);

    let app = open(dir.path());
    assert_eq!(
        common::journal_kinds(&app, id),
        [OpKind::ChildStart],
        "the child's result was recorded only in the lost execution"
    );
    let members = app.store().workflow_invocations(id).unwrap();
    assert_eq!(
        app.store().invocation(members[1]).unwrap().status(),
        Status::Success
    );
    register_after(&app, dir.path().to_owned(), false);
    let worker = app.worker().threads(1).start().unwrap();
    let inv: Invocation<u32> = Invocation::attach(&app, id);
    assert_eq!(inv.result_timeout(PATIENCE).unwrap(), 42);
    worker.stop();
    assert_eq!(
        runs(dir.path()),
        vec!["note 41", "after the child", "after the child"],
        "the child ran once; the workflow's body twice"
    );
}

/// The lease is what lets the new process take over: until it expires, nothing runs twice at
/// once. Kept separate so a broken lease shows up as a clear failure.
#[test]
fn work_is_not_taken_over_before_the_lease_expires() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, id) = start_and_wait_until_running(dir.path(), "single");
    kill_9(&mut child);
    let app = open(dir.path());
    let ran = Arc::new(AtomicU32::new(0));
    let r = ran.clone();
    app.task(
        "single",
        move |_: &TaskContext, n: u32| -> Result<u32, TaskError> {
            r.fetch_add(1, Ordering::SeqCst);
            Ok(n)
        },
    )
    .unwrap();
    // Immediately after the crash the dead worker's lease is still valid: a claim finds nothing.
    let store = app.store();
    let now = wf::core::Timestamp::from_system_time(std::time::SystemTime::now());
    let record = store.invocation(id).unwrap();
    let expires = record.state.lease.as_ref().unwrap().expires_at;
    assert!(
        store
            .claim(
                &wf::core::WorkerId::new("early"),
                &wf::store::TaskSet::new(["single"]),
                LEASE,
                wf::core::Timestamp(expires.0 - 1).min(now)
            )
            .unwrap()
            .is_none()
    );
    // Once it has expired, it is recovered and runs.
    let worker = app.worker().threads(1).start().unwrap();
    let inv: Invocation<u32> = Invocation::attach(&app, id);
    assert_eq!(inv.result_timeout(PATIENCE).unwrap(), 4);
    worker.stop();
    assert_eq!(ran.load(Ordering::SeqCst), 1);
}

/// Starts a worker process in `role` and waits for it to crash by itself.
fn run_until_it_crashes(dir: &Path, role: &str) -> Option<InvocationId> {
    let child = spawn_worker_process(dir, role);
    let output = output_within(child, &format!("crashing in role {role}"));
    assert!(
        !output.status.success(),
        "the worker process should have crashed: {:?}",
        output.status
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|l| {
            l.split_once("SUBMITTED ")
                .map(|(_, id)| id.trim().parse().unwrap())
        })
}

/// A body that crashes its worker process every time is run `1 + max_recoveries` times, by as
/// many processes, and then fails with `WorkerLost` instead of crashing workers forever.
#[test]
fn a_task_that_crashes_every_worker_fails_after_max_recoveries() {
    let dir = tempfile::tempdir().unwrap();
    let id = run_until_it_crashes(dir.path(), "poison").expect("the first process submits");
    for _ in 0..POISON_RECOVERIES {
        assert_eq!(run_until_it_crashes(dir.path(), "work"), None);
    }
    let attempts = |dir: &Path| {
        runs(dir)
            .into_iter()
            .filter(|l| l.starts_with("poison attempt"))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        attempts(dir.path()),
        vec!["poison attempt 1", "poison attempt 2", "poison attempt 3"],
        "each process ran the body once, as the next attempt"
    );

    // The next worker finds the third loss in a row and fails the invocation instead of running it.
    let app = open(dir.path());
    register_poison(&app, dir.path().to_owned(), false);
    let worker = app.worker().threads(1).start().unwrap();
    let inv: Invocation<()> = Invocation::attach(&app, id);
    match inv.result_timeout(PATIENCE) {
        Err(WfError::Failed {
            invocation,
            failure,
        }) => {
            assert_eq!(invocation, id);
            assert_eq!(failure.kind, FailureKind::WorkerLost, "{failure}");
        }
        other => panic!("expected a WorkerLost failure, got {other:?}"),
    }
    worker.stop();
    assert_eq!(
        attempts(dir.path()).len(),
        3,
        "the body did not run again after the crash loop was detected"
    );
}
