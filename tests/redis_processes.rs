//! Many worker processes on one real Redis: two processes racing for the same invocations never
//! both execute one; committed children are never executed again; a worker killed with SIGKILL
//! mid-workflow is recovered by another process once its lease expires; a restart of
//! `redis-server` (AOF `appendfsync always`) mid-run loses nothing acknowledged and the run
//! completes.
//!
//! Worker processes are this test binary re-executed with `WF_REDIS_ROLE` set: the
//! `redis_worker_entry` test is their entry point and does nothing in a normal run. Each test
//! starts its own throwaway `redis-server` on a free port.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use common::process::{ChildLines, kill_9};
use wf::prelude::*;
use wf_store::redis::testing::{RedisServer, ServerOptions, server_or_skip};

const LEASE: Duration = Duration::from_millis(1000);
const PATIENCE: Duration = Duration::from_secs(90);

/// Appends one line to this process's log in `dir` and syncs it (it survives a kill).
fn log_line(dir: &Path, line: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("runs-{}.log", std::process::id())))
        .unwrap();
    f.write_all(format!("{line}\n").as_bytes()).unwrap();
    f.sync_all().unwrap();
}

/// Every line every process logged in `dir`.
fn logged(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("runs-")
        {
            let text = std::fs::read_to_string(&path).unwrap();
            lines.extend(text.lines().map(|l| format!("{l} pid={}", pid_of(&path))));
        }
    }
    lines
}

fn pid_of(path: &Path) -> String {
    let name = path.file_name().unwrap().to_string_lossy();
    name.trim_start_matches("runs-")
        .trim_end_matches(".log")
        .to_owned()
}

fn block_forever() -> ! {
    let pair = (Mutex::new(()), Condvar::new());
    let mut g = pair.0.lock().unwrap();
    loop {
        g = pair.1.wait(g).unwrap();
    }
}

struct Tasks {
    single: Task<u32, u32>,
    flow: Task<u32, u64>,
}

/// The tasks of every role. `hang_at` makes the step with that argument block (the process is
/// about to be killed there).
fn register(app: &App, dir: PathBuf, hang_at: Option<u32>) -> Tasks {
    let d = dir.clone();
    let single = app
        .task(
            "single",
            move |ctx: &TaskContext, n: u32| -> Result<u32, TaskError> {
                log_line(&d, &format!("single {}", ctx.invocation_id()));
                Ok(n + 1)
            },
        )
        .unwrap();
    let d = dir.clone();
    let step = app
        .task(
            "step",
            move |ctx: &TaskContext, i: u32| -> Result<u32, TaskError> {
                log_line(&d, &format!("step {} {i}", ctx.invocation_id()));
                if hang_at == Some(i) {
                    println!("RUNNING");
                    block_forever();
                }
                // Long enough that a restart of the server falls in the middle of the run.
                std::thread::sleep(Duration::from_millis(20));
                Ok(i * 2)
            },
        )
        .unwrap();
    let flow = app
        .task(
            "flow",
            move |ctx: &TaskContext, n: u32| -> Result<u64, TaskError> {
                let wf = ctx.wf();
                // Half in sequence, half fanned out.
                let mut sum = 0u64;
                for i in 0..n / 2 {
                    sum += u64::from(wf.execute_task(&step, i)?);
                }
                let handles = (n / 2..n)
                    .map(|i| wf.start_task(&step, i))
                    .collect::<Result<Vec<_>, _>>()?;
                sum += wf
                    .join_all(&handles)?
                    .into_iter()
                    .map(u64::from)
                    .sum::<u64>();
                Ok(sum)
            },
        )
        .unwrap();
    Tasks { single, flow }
}

/// The sum a `flow(n)` returns.
fn flow_sum(n: u32) -> u64 {
    (0..n).map(|i| u64::from(i) * 2).sum()
}

fn open(url: &str) -> App {
    App::builder()
        .app_id("redis-processes")
        .redis(url)
        .lease_duration(LEASE)
        .build()
        .unwrap()
}

#[test]
fn redis_worker_entry() {
    let (Ok(role), Ok(url), Ok(dir)) = (
        std::env::var("WF_REDIS_ROLE"),
        std::env::var("WF_REDIS_URL"),
        std::env::var("WF_REDIS_DIR"),
    ) else {
        return; // a normal test run: nothing to do here
    };
    let app = open(&url);
    let hang_at = role.strip_prefix("hang-at-").map(|i| i.parse().unwrap());
    register(&app, PathBuf::from(dir), hang_at);
    let _worker = app.worker().threads(4).start().unwrap();
    println!("READY");
    block_forever();
}

/// A worker process of this test binary, and its stdout lines.
struct WorkerProcess {
    child: Child,
    lines: ChildLines,
}

impl WorkerProcess {
    fn start(url: &str, dir: &Path, role: &str) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "redis_worker_entry",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env("WF_REDIS_ROLE", role)
            .env("WF_REDIS_URL", url)
            .env("WF_REDIS_DIR", dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = ChildLines::of(&mut child);
        let mut p = WorkerProcess { child, lines };
        p.expect("READY");
        p
    }

    /// Waits for a line ending in `word` (libtest may print in front of the first line).
    fn expect(&mut self, word: &str) {
        self.lines.until(&mut self.child, word, |line| {
            line.trim_end().ends_with(word)
        });
    }

    fn kill(&mut self) {
        kill_9(&mut self.child);
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One test's world: its own server, a directory for the processes' logs, and an app (no
/// workers in this process) with the tasks registered.
struct World {
    server: RedisServer,
    dir: tempfile::TempDir,
    url: String,
    app: App,
    tasks: Tasks,
}

impl World {
    /// `None` (after the loud skip notice) without a `redis-server`.
    fn new(test: &str, options: &ServerOptions) -> Option<Self> {
        let server = server_or_skip(test, options)?;
        let dir = tempfile::tempdir().unwrap();
        let url = server.url("");
        let app = open(&url);
        let tasks = register(&app, dir.path().to_path_buf(), None);
        Some(World {
            server,
            dir,
            url,
            app,
            tasks,
        })
    }

    /// Starts `n` worker processes in `role`.
    fn workers(&self, n: usize, role: &str) -> Vec<WorkerProcess> {
        (0..n)
            .map(|_| WorkerProcess::start(&self.url, self.dir.path(), role))
            .collect()
    }
}

/// Counts the lines starting with `prefix` by their second word (an invocation id).
fn runs_by_id(lines: &[String], prefix: &str) -> BTreeMap<String, Vec<String>> {
    let mut by_id: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for l in lines.iter().filter(|l| l.starts_with(prefix)) {
        let id = l.split_whitespace().nth(1).unwrap().to_owned();
        by_id.entry(id).or_default().push(l.clone());
    }
    by_id
}

/// Two processes, four threads each, race to claim the same 300 invocations: every one is
/// executed exactly once, and both processes executed some.
#[test]
fn two_processes_never_execute_one_invocation_twice() {
    let Some(w) = World::new(
        "two_processes_never_execute_one_invocation_twice",
        &ServerOptions::default(),
    ) else {
        return;
    };
    let _workers = w.workers(2, "work");
    let calls: Vec<_> = (0..300)
        .map(|n| w.tasks.single.call(&w.app, n).unwrap())
        .collect();
    for (n, c) in calls.iter().enumerate() {
        assert_eq!(c.result_timeout(PATIENCE).unwrap(), n as u32 + 1);
    }
    let lines = logged(w.dir.path());
    let by_id = runs_by_id(&lines, "single ");
    assert_eq!(by_id.len(), 300, "every invocation ran");
    for (id, runs) in &by_id {
        assert_eq!(
            runs.len(),
            1,
            "invocation {id} ran more than once: {runs:?}"
        );
    }
    let pids: BTreeSet<&str> = lines
        .iter()
        .filter_map(|l| l.rsplit("pid=").next())
        .collect();
    assert_eq!(pids.len(), 2, "both worker processes took part: {pids:?}");
}

/// Three worker processes run ten workflows of eight children each (half in sequence, half
/// fanned out; the parents are replayed after every wake-up): every child runs exactly once.
#[test]
fn worker_processes_never_run_a_committed_child_twice() {
    let Some(w) = World::new(
        "worker_processes_never_run_a_committed_child_twice",
        &ServerOptions::default(),
    ) else {
        return;
    };
    let _workers = w.workers(3, "work");
    let flows: Vec<_> = (0..10)
        .map(|_| w.tasks.flow.call(&w.app, 8).unwrap())
        .collect();
    for f in &flows {
        assert_eq!(f.result_timeout(PATIENCE).unwrap(), flow_sum(8));
    }
    let by_id = runs_by_id(&logged(w.dir.path()), "step ");
    assert_eq!(by_id.len(), 80, "every child ran");
    for (id, runs) in &by_id {
        assert_eq!(runs.len(), 1, "child {id} ran more than once: {runs:?}");
    }
}

/// A worker process is killed with SIGKILL while a workflow's step runs; another worker process
/// takes the step over once the dead one's lease expires, and the workflow completes. The steps
/// committed before the kill do not run again.
#[test]
fn killed_worker_process_is_recovered_by_another() {
    let Some(w) = World::new(
        "killed_worker_process_is_recovered_by_another",
        &ServerOptions::default(),
    ) else {
        return;
    };
    // Only the doomed process runs at first: it takes the workflow and hangs in step 1.
    let mut doomed = WorkerProcess::start(&w.url, w.dir.path(), "hang-at-1");
    let flow = w.tasks.flow.call(&w.app, 4).unwrap();
    doomed.expect("RUNNING");
    let _survivor = WorkerProcess::start(&w.url, w.dir.path(), "work");
    let killed_at = Instant::now();
    doomed.kill();
    assert_eq!(flow.result_timeout(PATIENCE).unwrap(), flow_sum(4));
    assert!(
        killed_at.elapsed() >= LEASE / 2,
        "the step was taken over only after the dead worker's lease"
    );
    let by_id = runs_by_id(&logged(w.dir.path()), "step ");
    let step_runs = |i: u32| -> usize {
        by_id
            .values()
            .filter(|runs| runs[0].split_whitespace().nth(2) == Some(&i.to_string()))
            .map(Vec::len)
            .sum()
    };
    assert_eq!(
        step_runs(0),
        1,
        "the step committed before the kill ran once"
    );
    assert_eq!(step_runs(1), 2, "the killed step ran again in the survivor");
    assert_eq!(
        step_runs(2) + step_runs(3),
        2,
        "the later steps ran once each"
    );
}

/// `redis-server` with `appendfsync always` is killed (SIGKILL) and restarted on the same port
/// while two worker processes run workflows: the workers reconnect, every submitted workflow
/// completes with its result, and nothing acknowledged is lost.
#[test]
fn redis_restart_mid_run_loses_nothing_acknowledged() {
    let options = ServerOptions {
        aof_always: true,
        ..ServerOptions::default()
    };
    let Some(mut w) = World::new("redis_restart_mid_run_loses_nothing_acknowledged", &options)
    else {
        return;
    };
    let _workers = w.workers(2, "work");
    let flows: Vec<_> = (0..12)
        .map(|_| w.tasks.flow.call(&w.app, 6).unwrap())
        .collect();
    // Restart once the run is well under way (a third of the children ran).
    let started = Instant::now();
    while runs_by_id(&logged(w.dir.path()), "step ").len() < 24 {
        assert!(started.elapsed() < PATIENCE, "the run did not get going");
        std::thread::sleep(Duration::from_millis(20));
    }
    let before: BTreeSet<String> = runs_by_id(&logged(w.dir.path()), "step ")
        .into_keys()
        .collect();
    w.server.restart().unwrap();
    for f in &flows {
        // The caller's own reads may meet the restart too: it retries them like a worker.
        let deadline = Instant::now() + PATIENCE;
        let sum = loop {
            match f.result_timeout(PATIENCE) {
                Ok(sum) => break sum,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("waiting for a result through the restart: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("workflow {} did not complete: {e}", f.id()),
            }
        };
        assert_eq!(sum, flow_sum(6));
    }
    let after = runs_by_id(&logged(w.dir.path()), "step ");
    assert_eq!(after.len(), 72, "every child ran");
    assert!(before.iter().all(|id| after.contains_key(id)));
}
