//! Workloads that need processes of their own: the burst (its peak RSS must be the worker
//! process's alone, not the bench's high-water mark) and recovery after `kill -9`.
//!
//! The bench starts itself again with a hidden `--role` (see [`role`]); a role prints one line
//! the parent parses (`BURST ...`, `SUBMITTED <id>`, `RUNNING`, `RESULT ...`).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use wf_core::InvocationId;
use wf_runtime::{App, Invocation, Task, TaskContext, TaskError};

use super::calls::noop;
use super::{LEASE, Run, fresh_store};
use crate::Config;
use crate::backend::{Backend, StoreAt};
use crate::report::human;

/// Tasks of the burst.
pub(crate) const BURST: u64 = 20_000;
/// The lease of the recovery workload: the time a dead worker's invocation waits.
pub(crate) const RECOVERY_LEASE: Duration = Duration::from_secs(1);
/// How long a role process may take.
const PATIENCE: Duration = Duration::from_secs(300);

/// A role this binary plays in a child process.
#[derive(Debug, Clone)]
pub(crate) struct Role {
    pub(crate) name: String,
    pub(crate) backend: Backend,
    pub(crate) store: PathBuf,
    /// The Redis store's URL (namespace included), for the Redis backend.
    pub(crate) redis: Option<String>,
    pub(crate) id: Option<String>,
}

/// Runs the role and returns what to exit with.
pub(crate) fn role(role: &Role) -> Result<(), String> {
    let at = StoreAt::at(role.backend, &role.store, role.redis.clone());
    match role.name.as_str() {
        "burst" => burst_role(&at),
        "victim" => victim_role(&at, &role.store),
        "resume" => {
            let id = role.id.as_deref().ok_or("resume needs --id")?;
            resume_role(&at, &role.store, id)
        }
        other => Err(format!("unknown role `{other}`")),
    }
}

/// Starts this binary in `role` on the store `at`, with `store` its directory (the file store's,
/// and where the role keeps its notes).
fn start(
    config: &Config,
    role: &str,
    at: &StoreAt,
    store: &Path,
    id: Option<&str>,
) -> Result<Child, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the bench binary: {e}"))?;
    std::fs::create_dir_all(store).map_err(|e| format!("{}: {e}", store.display()))?;
    let mut cmd = Command::new(exe);
    cmd.args(["--role", role, "--backend", at.backend.name(), "--store"])
        .arg(store)
        .arg("--dir")
        .arg(&config.dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(id) = id {
        cmd.args(["--id", id]);
    }
    if let Some(url) = &at.redis {
        cmd.args(["--redis", url]);
    }
    cmd.spawn()
        .map_err(|e| format!("cannot start the {role} process: {e}"))
}

/// Reads `child`'s stdout until a line starting with `until`, returning every line read.
fn read_until(child: &mut Child, until: &str) -> Result<Vec<String>, String> {
    let out = child.stdout.take().ok_or("no stdout")?;
    let mut lines = Vec::new();
    let mut reader = BufReader::new(out);
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) => {
                return Err(format!(
                    "the process ended before printing {until}: {lines:?}"
                ));
            }
            Ok(_) => {}
            Err(e) => return Err(format!("reading the process's output: {e}")),
        }
        let line = line.trim().to_owned();
        let done = line.starts_with(until);
        lines.push(line);
        if done {
            // Keep the pipe open (a role writing more must not get EPIPE): hand it back.
            child.stdout = Some(reader.into_inner());
            return Ok(lines);
        }
    }
}

fn field(line: &str, key: &str) -> Result<f64, String> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("no {key}= in {line:?}"))
}

/// The burst in a fresh process: tasks/s, and the process's peak RSS.
pub(crate) fn burst(config: &Config, backend: Backend) -> Result<(Run, Run), String> {
    let (at, dir) = fresh_store(config, backend, "burst")?;
    let mut child = start(config, "burst", &at, &dir.path().join("store"), None)?;
    let lines = read_until(&mut child, "BURST");
    let status = child
        .wait()
        .map_err(|e| format!("waiting for the burst process: {e}"))?;
    let lines = lines?;
    if !status.success() {
        return Err(format!("the burst process failed: {status}"));
    }
    let line = lines.last().ok_or("no output")?;
    let (secs, rss_kb) = (field(line, "secs")?, field(line, "rss_kb")?);
    let rate = BURST as f64 / secs;
    let fsyncs = match field(line, "fsyncs") {
        Ok(n) if n >= 0.0 => format!("; {n} fsyncs, {:.3} per task", n / BURST as f64),
        _ => String::new(),
    };
    Ok((
        Run {
            value: rate,
            detail: format!(
                "call_many of {} (one store operation), then every result; {:.2} µs/task{fsyncs}",
                human(BURST as f64),
                1e6 / rate
            ),
        },
        Run {
            value: rss_kb / 1024.0,
            detail: format!(
                "VmHWM of the process that produced, ran and awaited {} tasks",
                human(BURST as f64)
            ),
        },
    ))
}

fn burst_role(at: &StoreAt) -> Result<(), String> {
    let (app, fsyncs) = at.app_counting(LEASE, true)?;
    let task = noop(&app)?;
    let worker = app
        .worker()
        .threads(2)
        .start()
        .map_err(|e| format!("cannot start a worker: {e}"))?;
    let run = |from: u64, n: u64| -> Result<Duration, String> {
        let start = Instant::now();
        let calls = task
            .call_many(&app, from..from + n)
            .map_err(|e| format!("call_many: {e}"))?;
        for (inv, arg) in calls.iter().zip(from..) {
            let got = inv.result().map_err(|e| format!("result: {e}"))?;
            if got != arg {
                return Err(format!("task {arg} returned {got}"));
            }
        }
        Ok(start.elapsed())
    };
    let mut before = None;
    let outcome = run(1 << 40, 500).and_then(|_| {
        before = fsyncs.now();
        let elapsed = run(0, BURST)?;
        Ok((elapsed, fsyncs.now()))
    });
    let stats = worker.stop();
    let (elapsed, after) = outcome?;
    // -1: not a file store.
    let spent = before.zip(after).map_or(-1, |(b, a)| (a - b) as i64);
    println!(
        "BURST tasks={BURST} secs={} rss_kb={} executed={} fsyncs={spent}",
        elapsed.as_secs_f64(),
        peak_rss_kb()?,
        stats.executed
    );
    Ok(())
}

/// The process's peak resident set, from `/proc/self/status`.
fn peak_rss_kb() -> Result<u64, String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("cannot read /proc/self/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmHWM in /proc/self/status".to_owned())
}

/// The task of the recovery workload: logs each execution, and in the victim process blocks
/// (the process is killed there).
fn recover_task(app: &App, dir: &Path, block: bool) -> Result<Task<u64, u64>, String> {
    let log = dir.join("runs.log");
    app.task(
        "bench.recover",
        move |_: &TaskContext, n: u64| -> Result<u64, TaskError> {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)?;
            f.write_all(b"run\n")?;
            if block {
                println!("RUNNING");
                std::io::stdout().flush()?;
                loop {
                    std::thread::park();
                }
            }
            Ok(n * 6)
        },
    )
    .map_err(|e| format!("cannot register bench.recover: {e}"))
}

fn victim_role(at: &StoreAt, dir: &Path) -> Result<(), String> {
    let app = at.app(RECOVERY_LEASE, true)?;
    let task = recover_task(&app, dir, true)?;
    let inv = task.call(&app, 7).map_err(|e| format!("call: {e}"))?;
    println!("SUBMITTED {}", inv.id());
    let _worker = app
        .worker()
        .threads(1)
        .start()
        .map_err(|e| format!("cannot start a worker: {e}"))?;
    loop {
        std::thread::park(); // killed here
    }
}

fn resume_role(at: &StoreAt, dir: &Path, id: &str) -> Result<(), String> {
    let id: InvocationId = id.parse().map_err(|e| format!("bad id {id}: {e:?}"))?;
    let app = at.app(RECOVERY_LEASE, true)?;
    recover_task(&app, dir, false)?;
    let worker = app
        .worker()
        .threads(1)
        .start()
        .map_err(|e| format!("cannot start a worker: {e}"))?;
    let got = Invocation::<u64>::attach(&app, id)
        .result_timeout(PATIENCE)
        .map_err(|e| format!("result: {e}"))?;
    println!("RESULT value={got}");
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    worker.stop();
    Ok(())
}

/// A worker process runs a task and is killed with SIGKILL mid-body; a new process opens the
/// store and waits for the result: the time from the kill to the result, and how many times the
/// body ran.
pub(crate) fn recovery(config: &Config, backend: Backend) -> Result<Run, String> {
    let (at, dir) = fresh_store(config, backend, "recovery")?;
    let store = dir.path().join("store");
    let mut victim = start(config, "victim", &at, &store, None)?;
    let lines = read_until(&mut victim, "RUNNING");
    let killed = victim.kill().and_then(|()| victim.wait().map(|_| ()));
    let t_kill = Instant::now();
    let lines = lines?;
    killed.map_err(|e| format!("cannot kill the worker process: {e}"))?;
    let id = lines
        .iter()
        .find_map(|l| l.strip_prefix("SUBMITTED "))
        .ok_or("the worker process did not report its invocation")?
        .to_owned();
    let mut resume = start(config, "resume", &at, &store, Some(&id))?;
    let lines = read_until(&mut resume, "RESULT");
    let took = t_kill.elapsed();
    let status = resume.wait().map_err(|e| e.to_string())?;
    let lines = lines?;
    if !status.success() || field(lines.last().ok_or("no output")?, "value")? != 42.0 {
        return Err(format!(
            "the new process did not finish it: {status}, {lines:?}"
        ));
    }
    let runs = std::fs::read_to_string(dir.path().join("store").join("runs.log"))
        .map_err(|e| format!("runs.log: {e}"))?
        .lines()
        .count();
    Ok(Run {
        value: took.as_secs_f64(),
        detail: format!(
            "lease {:.1} s; the body ran {runs} times; includes starting the new process",
            RECOVERY_LEASE.as_secs_f64()
        ),
    })
}
