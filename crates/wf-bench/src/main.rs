//! `wf-bench`: measures what one task costs in `wf`, next to the floors it cannot beat.
//!
//! Run it with `cargo xtask bench [--quick]` (a release build). Each scenario is one function in
//! its own module and returns table rows; `main` runs them in order and prints one table:
//!
//! | module | scenario | status |
//! |---|---|---|
//! | [`memory`] | memory store: submit + claim + commit round trips, 1 and 4 threads, per-op latency | measured |
//! | [`disk`] | raw `write 4 KiB + fsync` rate of the disk under the target dir: the file store's floor | measured |
//! | [`file_store`] | file store round trips with fsync on 1, 4, 8, 16 threads: fsyncs/s, records per fsync (group commit), ratio to the fsync floor | measured |
//! | [`redis`] | Redis: an `EVALSHA` floor (1 and 4 clients), and the Redis store's submit + claim + commit round trips (1 and 4 threads), against a throwaway `redis-server` or `--redis URL` | measured |
//! | [`runtime`] | tasks/s call to result through a `wf` App: memory (pools of 1 and 4, `run_until_idle`), file (pools of 4 and 16), 10 sequential children, a 1000-child fan-out; µs per task and ratio to the memory round trip | measured |
//!
//! After the table, a "floors" summary restates the floors and the best file store and runtime
//! rates against them. Disk scenarios work in fresh directories under `--dir` (by default
//! `cargo xtask bench` passes `<target dir>/wf-bench`) and remove them when done.
//!
//! Timing here is for humans and for comparing runs on one machine; no test asserts on it.

mod disk;
mod file_store;
mod memory;
mod redis;
mod report;
mod runtime;
mod scratch;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use report::{Floors, Row, Table};

const USAGE: &str = "\
usage: wf-bench [--quick] [--dir DIR] [--redis URL]

  --quick     short measurements (a smoke run, numbers are noisier)
  --dir DIR   scratch directory for disk scenarios (default: a temporary directory);
              `cargo xtask bench` passes <target dir>/wf-bench
  --redis URL a Redis to measure (default: a throwaway redis-server on a free port, if installed)
";

/// What every scenario is told.
#[derive(Debug)]
pub struct Config {
    /// Short runs.
    pub quick: bool,
    /// How long one measurement runs (each scenario may stop earlier at its operation cap).
    pub duration: Duration,
    /// Scratch directory for anything that touches the disk; scenarios use subdirectories.
    pub dir: PathBuf,
    /// Thread count of the multi-threaded scenarios.
    pub threads: usize,
    /// The Redis to measure (`--redis`); `None`: a throwaway server.
    pub redis: Option<String>,
}

/// One scenario: measures, may record a floor for later scenarios, returns its table rows.
type Scenario = fn(&Config, &mut Floors) -> Result<Vec<Row>, String>;

/// The scenarios, in the order they run. Floors are measured before the scenarios judged
/// against them. Add new scenarios here.
const SCENARIOS: &[(&str, Scenario)] = &[
    ("memory store", memory::run),
    ("disk fsync floor", disk::run),
    ("file store", file_store::run),
    ("redis", redis::run),
    ("runtime", runtime::run),
];

fn parse_args() -> Result<Config, String> {
    let mut quick = false;
    let mut dir = None;
    let mut redis = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--dir" => {
                let d = args.next().ok_or("--dir needs a directory")?;
                dir = Some(PathBuf::from(d));
            }
            "--redis" => redis = Some(args.next().ok_or("--redis needs a URL")?),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    let dir = dir
        .unwrap_or_else(|| std::env::temp_dir().join(format!("wf-bench-{}", std::process::id())));
    Ok(Config {
        quick,
        duration: if quick {
            Duration::from_millis(250)
        } else {
            Duration::from_secs(1)
        },
        dir,
        threads: 4,
        redis,
    })
}

fn main() -> ExitCode {
    let config = match parse_args() {
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
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "wf-bench {} ({} mode: {:.2}s per measurement) on {} core(s); scratch dir {}",
        env!("CARGO_PKG_VERSION"),
        if config.quick { "quick" } else { "full" },
        config.duration.as_secs_f64(),
        cores,
        config.dir.display()
    );
    if cfg!(debug_assertions) {
        println!("warning: debug build; numbers are meaningless, use `cargo xtask bench`");
    }

    let mut floors = Floors::default();
    let mut table = Table::default();
    let mut failed = false;
    for (name, scenario) in SCENARIOS {
        eprintln!("running: {name}");
        match scenario(&config, &mut floors) {
            Ok(rows) => table.extend(rows),
            Err(e) => {
                failed = true;
                table.push(Row::note(format!("{name}: FAILED"), e));
            }
        }
    }
    // Only remove what the bench created; a --dir given by the user is left, emptied.
    let _ = std::fs::remove_dir(&config.dir);

    println!();
    table.print();
    println!();
    floors.print();
    if failed {
        eprintln!("wf-bench: some scenarios failed (see the table)");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
