//! `wf-bench`: what `wf` costs per task, per workflow and per recovery, on each backend, beside
//! the floors it cannot beat, measured in the same run.
//!
//! Run it with `cargo xtask bench [--backend memory|file|redis|all] [--quick]` (a release build;
//! the table goes to stdout and to `target/bench/latest.{md,json}`). First the floors:
//!
//! | module | floor |
//! |---|---|
//! | [`memory`] | memory store submit + claim + commit round trips, 1 and 4 threads, per-op latency |
//! | [`disk`] | raw `write 4 KiB + fdatasync` rate of the disk under the scratch dir: the file store's floor |
//! | [`file_store`] | file store round trips with fsync on 1–16 threads: group commit against the fsync floor |
//! | [`redis`] | `EVALSHA` round trips (1 and 4 clients) and the Redis store's submit + claim + commit, on a throwaway `redis-server` or `--redis URL` |
//!
//! then the workloads of issue 15 on each backend ([`workloads`]): burst, latency, workflows,
//! long workflows (sync, and async parked on an async worker), replay, recovery after `kill -9`, peak RSS. Each row shows its median over
//! `--runs` runs with the spread, its floor, the ratio to it and the target.
//!
//! Timing here is for humans and for comparing runs on one machine; no test asserts on it.

mod backend;
mod disk;
mod file_store;
mod memory;
mod redis;
mod report;
mod scratch;
mod targets;
mod workloads;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use backend::Backend;
use report::{Floors, Measurement, Row, Table};
use workloads::procs::Role;

const USAGE: &str = "\
usage: wf-bench [--backend memory|file|redis|all] [--quick] [--runs N] [--only W,..] [--dir DIR]
                [--out DIR]

  --backend B  the backends whose workloads run (default: all)
  --quick      short measurements and smaller workloads (a smoke run, numbers are noisier)
  --runs N     measure each workload N times and show the median and spread
               (default 3, 1 with --quick)
  --only W,..  only these workloads: burst (with RSS), latency, workflow, long, async, replay, recovery
  --no-floors  skip the floor measurements (for profiling a workload; no ratios then)
  --no-inline  run children the pre-inline way (AppBuilder::inline_children(false)): each
               child claimed by a worker, its caller replayed once per child; for before/after
  --redis URL  the Redis to measure (default: a throwaway redis-server on a free port, if
               installed; each workload uses its own namespace)
  --dir DIR    scratch directory for stores and the fsync floor (default: a temporary
               directory); `cargo xtask bench` passes <target dir>/wf-bench
  --out DIR    also write the report to DIR/latest.md and DIR/latest.json;
               `cargo xtask bench` passes <target dir>/bench
";

/// What every scenario is told.
#[derive(Debug)]
pub(crate) struct Config {
    /// Short runs.
    pub(crate) quick: bool,
    /// How long one floor measurement runs (each may stop earlier at its operation cap).
    pub(crate) duration: Duration,
    /// Scratch directory for anything that touches the disk; scenarios use subdirectories.
    pub(crate) dir: PathBuf,
    /// Thread count of the multi-threaded floor scenarios.
    pub(crate) threads: usize,
    /// Runs of each workload.
    pub(crate) runs: usize,
    /// The backends whose workloads run.
    pub(crate) backends: Vec<Backend>,
    /// Where to write `latest.md` and `latest.json`.
    pub(crate) out: Option<PathBuf>,
    /// Only these workloads (all when empty).
    pub(crate) only: Vec<String>,
    /// Whether apps run children inline (`--no-inline` turns it off).
    pub(crate) inline: bool,
    /// Whether the floors are measured (`--no-floors` skips them).
    floors: bool,
    /// The Redis server's URL: `--redis`, or the throwaway server `main` starts.
    pub(crate) redis: Option<String>,
    /// Set when this process plays a role for a parent bench process.
    role: Option<Role>,
}

impl Config {
    /// Whether workload `name` runs.
    pub(crate) fn wants(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|w| w == name)
    }
}

/// One floor scenario: measures, records its floor, returns its detail rows.
type Scenario = fn(&Config, &mut Floors) -> Result<Vec<Row>, String>;

fn parse_args() -> Result<Config, String> {
    let mut quick = false;
    let mut dir = None;
    let mut out = None;
    let mut runs = None;
    let mut only = Vec::new();
    let mut inline = true;
    let mut floors = true;
    let mut backends = Backend::ALL.to_vec();
    let (mut role, mut store, mut id, mut redis) = (None, None, None, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |what: &str| args.next().ok_or(format!("{arg} needs {what}"));
        match arg.as_str() {
            "--quick" => quick = true,
            "--no-inline" => inline = false,
            "--no-floors" => floors = false,
            "--dir" => dir = Some(PathBuf::from(value("a directory")?)),
            "--out" => out = Some(PathBuf::from(value("a directory")?)),
            "--runs" => {
                let n = value("a number")?;
                runs = Some(n.parse().map_err(|_| format!("--runs {n}: not a number"))?);
            }
            "--backend" => {
                let b = value("memory, file, redis or all")?;
                backends = Backend::parse(&b)
                    .ok_or(format!("--backend {b}: use memory, file, redis or all"))?;
            }
            "--only" => {
                only = value("workload names")?
                    .split(',')
                    .map(str::to_owned)
                    .collect();
            }
            "--role" => role = Some(value("a role")?),
            "--store" => store = Some(PathBuf::from(value("a directory")?)),
            "--id" => id = Some(value("an invocation id")?),
            "--redis" => redis = Some(value("a URL")?),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    let dir = dir
        .unwrap_or_else(|| std::env::temp_dir().join(format!("wf-bench-{}", std::process::id())));
    let role = match role {
        None => None,
        Some(name) => Some(Role {
            name,
            backend: *backends.first().ok_or("a role needs one --backend")?,
            store: store.ok_or("a role needs --store")?,
            redis: redis.clone(),
            id,
        }),
    };
    Ok(Config {
        quick,
        duration: if quick {
            Duration::from_millis(250)
        } else {
            Duration::from_secs(1)
        },
        dir,
        threads: 4,
        runs: runs.unwrap_or(if quick { 1 } else { 3 }).max(1),
        backends,
        out,
        only,
        inline,
        floors,
        redis,
        role,
    })
}

fn main() -> ExitCode {
    let mut config = match parse_args() {
        Ok(c) => c,
        Err(e) if e.is_empty() => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("wf-bench: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Some(role) = &config.role {
        return match workloads::procs::role(role) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("wf-bench --role {}: {e}", role.name);
                ExitCode::FAILURE
            }
        };
    }
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut header = vec![format!(
        "wf-bench {} ({} mode, {} run(s) per workload{}) on {} core(s); backends: {}; scratch dir {}",
        env!("CARGO_PKG_VERSION"),
        if config.quick { "quick" } else { "full" },
        config.runs,
        if config.inline {
            ""
        } else {
            ", children NOT inline"
        },
        cores,
        config
            .backends
            .iter()
            .map(|b| b.name())
            .collect::<Vec<_>>()
            .join(", "),
        config.dir.display()
    )];
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        header.push(format!(
            "load average at start: {}",
            load.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    if cfg!(debug_assertions) {
        header
            .push("warning: debug build; numbers are meaningless, use `cargo xtask bench`".into());
    }
    for line in &header {
        println!("{line}");
    }

    // One Redis for the whole run (floors and workloads), when the Redis backend runs.
    let _redis = match config.backends.contains(&Backend::Redis) {
        false => None,
        true => match redis::Target::open(config.redis.as_deref()) {
            Ok(target) => {
                config.redis = target.as_ref().map(|t| t.url.clone());
                target
            }
            Err(e) => {
                eprintln!("wf-bench: cannot start redis-server: {e}");
                None
            }
        },
    };
    let config = config;
    let wants = |b: Backend| config.backends.contains(&b);
    let mut scenarios: Vec<(&str, Scenario)> = vec![("memory store floor", memory::run)];
    if !config.floors {
        scenarios.clear();
    } else if wants(Backend::File) {
        scenarios.push(("disk fsync floor", disk::run));
        scenarios.push(("file store group commit", file_store::run));
    }
    if config.floors && wants(Backend::Redis) {
        scenarios.push(("redis EVALSHA floor", redis::run));
    }
    let mut floors = Floors::default();
    let mut detail = Table::default();
    let mut failed = false;
    for (name, scenario) in scenarios {
        eprintln!("running: {name}");
        match scenario(&config, &mut floors) {
            Ok(rows) => detail.extend(rows),
            Err(e) => {
                failed = true;
                detail.push(Row::note(format!("{name}: FAILED"), e));
            }
        }
    }
    let mut rows: Vec<Measurement> = Vec::new();
    for backend in &config.backends {
        eprintln!("running: workloads on {}", backend.name());
        workloads::run(&config, &floors, *backend, &mut rows);
    }
    failed |= rows.iter().any(|r| r.note.starts_with("failed"));
    // Only remove what the bench created; a --dir given by the user is left, emptied.
    let _ = std::fs::remove_dir(&config.dir);

    let md = render_markdown(&header, &floors, &rows, &detail);
    println!();
    print!("{md}");
    if let Some(out) = &config.out
        && let Err(e) = write_report(out, &md, &header, &floors, &rows, &detail)
    {
        eprintln!(
            "wf-bench: cannot write the report to {}: {e}",
            out.display()
        );
        failed = true;
    }
    if failed {
        eprintln!("wf-bench: some scenarios failed (see the tables)");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn render_markdown(
    header: &[String],
    floors: &Floors,
    rows: &[Measurement],
    detail: &Table,
) -> String {
    let mut md = String::from("## wf-bench\n\n");
    for line in header {
        md.push_str(&format!("{line}  \n"));
    }
    md.push_str("\n### Floors (measured first, same run)\n\n");
    for line in floors.lines() {
        md.push_str(&format!("- {line}\n"));
    }
    md.push_str("\n### Workloads\n\n");
    md.push_str(&report::measurements_markdown(rows));
    md.push_str("\n### Floor measurements\n\n");
    md.push_str(&detail.markdown());
    md
}

fn write_report(
    out: &std::path::Path,
    md: &str,
    header: &[String],
    floors: &Floors,
    rows: &[Measurement],
    detail: &Table,
) -> std::io::Result<()> {
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join("latest.md"), md)?;
    let json = serde_json::json!({
        "header": header,
        "floors": {
            "memory_round_trips_per_sec": floors.memory_round_trips_per_sec,
            "fsync_per_sec": floors.fsync_per_sec,
            "redis_evalsha_1_per_sec": floors.redis_evalsha_1,
            "redis_evalsha_4_per_sec": floors.redis_evalsha_4,
        },
        "workloads": report::measurements_json(rows),
        "floor_measurements": detail.json(),
    });
    let text = serde_json::to_string_pretty(&json).map_err(std::io::Error::other)?;
    std::fs::write(out.join("latest.json"), text + "\n")?;
    eprintln!("wf-bench: wrote {}/latest.{{md,json}}", out.display());
    Ok(())
}
