//! Workspace automation for `wf`, run as `cargo xtask <command>` (see `.cargo/config.toml`).
//!
//! | command | runs |
//! |---|---|
//! | `ci` | fmt check, clippy (`-D warnings`), the test suite, the README check, rustdoc (`-D warnings`), stopping at the first failure |
//! | `test [-- ARGS]` | `cargo test --workspace --all-features [ARGS]`: the one test command README and `.ci/run` use |
//! | `readme` | compiles every Rust block of README.md as a new project depending on `wf` by path |
//! | `sim [--seeds N] [--from S] [--seed S] [--trace] [--keep-going] [--unpipelined] [--memory \| --redis]` | deterministic simulation seeds (`crates/wf-sim`): crashes, power losses, torn and reordered flushes, fsync and write failures under generated workflows; a failing seed prints the command that replays it; `--redis`: a real redis-server behind a fault proxy; `--unpipelined`: the file store without pipelined commits (they are its default) |
//! | `mutants [core\|store-commit\|store\|runtime\|all] [-- ARGS]` | cargo-mutants over the replay core, the store's state machine and the runtime's commit path (see `mutants`) |
//! | `bench [--backend B] [--quick] [-- ARGS]` | builds `crates/wf-bench` in release and runs it; the report goes to stdout and `target/bench/latest.{md,json}` |
//! | `soak [--rounds N] [--seed S]` | the long crash loop (not in CI): `kill -9` rounds of a child process writing to a file store, checking every acknowledged commit after each reopen (`crates/wf-store/tests/file_crash.rs`, default 1000 rounds) |
//!
//! Only the standard library: this crate must build before anything else does.

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

mod mutants;
mod readme;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  ci                     fmt check, clippy -D warnings, tests, README check, rustdoc -D warnings
                         (stops at the first failure)
  test [-- ARGS]         cargo test --workspace --all-features [ARGS]
  readme                 compile every Rust block of README.md as a new project using wf by path
  sim [--seeds N] [--from S] [--keep-going] | sim --seed S [--trace]
                         run deterministic simulation seeds (crates/wf-sim; default 100 from
                         seed 0); --seed S --trace replays one seed's history step by step;
                         --max-faults N / --max-workflows N for heavier histories;
                         --memory: the memory store (no disk faults);
                         --redis: a real redis-server behind a fault proxy (cut connections,
                         lost replies, outages, restarts; the plan is seeded, the timing is not);
                         --stress: real worker threads of two apps on Redis (not deterministic)
  bench [--backend memory|file|redis|all] [--quick] [-- ARGS]
                         build crates/wf-bench in release and run it (--quick: short measurements);
                         the report goes to stdout and target/bench/latest.{md,json}
  soak [--rounds N] [--seed S]
                         the long crash loop, not in CI: N (default 1000) kill -9 rounds of a child
                         process writing to a file store, every acknowledged commit checked after
                         each reopen; ends with `soak: N rounds, ... checks ..., L lost`
  mutants [core|store-commit|store|runtime|all] [-- ARGS]
                         mutation testing (cargo-mutants, installed if missing) of the replay core,
                         the store's state machine and the runtime's commit path; reports go to
                         target/mutants/<scope>/ (slow: not part of ci)
  help                   this message
";

/// One external command of a pipeline.
struct Step {
    /// What the step checks, for messages.
    name: &'static str,
    /// Arguments to `cargo`.
    args: Vec<OsString>,
    /// Extra environment variables.
    env: Vec<(&'static str, OsString)>,
    /// What to do when it fails.
    hint: &'static str,
}

impl Step {
    fn new(name: &'static str, args: &[&str], hint: &'static str) -> Self {
        Self {
            name,
            args: args.iter().map(OsString::from).collect(),
            env: Vec::new(),
            hint,
        }
    }

    fn env(mut self, key: &'static str, value: impl Into<OsString>) -> Self {
        self.env.push((key, value.into()));
        self
    }

    fn extra_args(mut self, extra: &[String]) -> Self {
        self.args.extend(extra.iter().map(OsString::from));
        self
    }

    /// The command line as a user would type it, for messages.
    fn display(&self) -> String {
        let mut s = String::new();
        for (k, v) in &self.env {
            s.push_str(&format!("{k}={:?} ", v.to_string_lossy()));
        }
        s.push_str("cargo");
        for a in &self.args {
            s.push(' ');
            s.push_str(&a.to_string_lossy());
        }
        s
    }
}

/// Why a pipeline stopped.
struct Failed {
    step: &'static str,
    command: String,
    detail: String,
    hint: &'static str,
}

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let root = workspace_root();
    let result = match command.as_str() {
        "ci" if rest.is_empty() => ci(&root),
        "test" => match passthrough(rest) {
            Ok(extra) => run_steps("test", &root, vec![test_step().extra_args(&extra)]),
            Err(e) => usage_error(&e),
        },
        "bench" => bench(&root, rest),
        "sim" => sim(&root, rest),
        "soak" => soak(&root, rest),
        "mutants" => mutants::mutants(&root, rest),
        "readme" if rest.is_empty() => {
            readme_step(&root).and_then(|s| run_steps("readme", &root, vec![s]))
        }
        "readme" => usage_error("`readme` takes no arguments"),
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        "ci" => usage_error("`ci` takes no arguments"),
        other => usage_error(&format!("unknown command `{other}`")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!();
            eprintln!("xtask: FAILED at step `{}`", f.step);
            eprintln!("  command: {}", f.command);
            eprintln!("  result:  {}", f.detail);
            eprintln!("  fix:     {}", f.hint);
            ExitCode::FAILURE
        }
    }
}

fn usage_error(message: &str) -> Result<(), Failed> {
    Err(Failed {
        step: "arguments",
        command: format!(
            "cargo xtask {}",
            env::args().skip(1).collect::<Vec<_>>().join(" ")
        ),
        detail: message.to_owned(),
        hint: "run `cargo xtask help` for the commands and their arguments",
    })
}

/// Arguments after an optional leading `--`, handed on unchanged.
fn passthrough(rest: &[String]) -> Result<Vec<String>, String> {
    match rest.split_first() {
        None => Ok(Vec::new()),
        Some((dashes, extra)) if dashes == "--" => Ok(extra.to_vec()),
        Some((first, _)) => Err(format!(
            "unexpected argument `{first}`; put arguments for cargo after `--`"
        )),
    }
}

/// THE test command: README.md and `.ci/run` (through `ci`) use exactly this.
fn test_step() -> Step {
    Step::new(
        "test",
        &["test", "--workspace", "--all-features"],
        "a test failed or did not build; rerun it alone with `cargo xtask test -- <test name>`",
    )
}

/// Generates the README project (`target/readme-check`) and returns the step that checks it.
fn readme_step(root: &Path) -> Result<Step, Failed> {
    let failed = |detail: String| Failed {
        step: "readme",
        command: "cargo xtask readme".into(),
        detail,
        hint: "make README.md's blocks what a user can paste: a [dependencies] block naming wf by path, whole programs in ```rust blocks",
    };
    let text = std::fs::read_to_string(root.join("README.md"))
        .map_err(|e| failed(format!("cannot read README.md: {e}")))?;
    let project = readme::project(&text, root).map_err(failed)?;
    let dir = target_dir(root).join("readme-check");
    readme::write(&project, &dir, &root.join("Cargo.lock")).map_err(failed)?;
    let manifest = dir.join("Cargo.toml").to_string_lossy().into_owned();
    let target = target_dir(root).to_string_lossy().into_owned();
    Ok(Step::new(
        "readme",
        &[
            "check",
            "--quiet",
            "--examples",
            "--manifest-path",
            &manifest,
            "--target-dir",
            &target,
        ],
        "a README block does not compile as a new project (target/readme-check): fix the block, or the API it shows",
    ))
}

fn ci(root: &Path) -> Result<(), Failed> {
    let readme = readme_step(root)?;
    let steps = vec![
        Step::new(
            "fmt",
            &["fmt", "--all", "--", "--check"],
            "run `cargo fmt --all` and commit the result",
        ),
        Step::new(
            "clippy",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--",
                "-D",
                "warnings",
            ],
            "fix the warnings clippy printed above (every warning is an error in CI)",
        ),
        test_step(),
        readme,
        Step::new(
            "doc",
            &["doc", "--workspace", "--no-deps", "--all-features"],
            "fix the rustdoc warnings printed above (broken intra-doc links, missing docs, bad code blocks)",
        )
        .env("RUSTDOCFLAGS", rustdocflags()),
    ];
    run_steps("ci", root, steps)
}

/// `-D warnings` added to whatever RUSTDOCFLAGS the caller set.
fn rustdocflags() -> OsString {
    match env::var_os("RUSTDOCFLAGS") {
        Some(mut flags) if !flags.is_empty() => {
            flags.push(" -D warnings");
            flags
        }
        _ => OsString::from("-D warnings"),
    }
}

fn bench(root: &Path, rest: &[String]) -> Result<(), Failed> {
    let mut bench_args: Vec<String> = Vec::new();
    let mut iter = rest.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--quick" => bench_args.push(arg.clone()),
            "--backend" => match iter.next() {
                Some(b) if ["memory", "file", "redis", "all"].contains(&b.as_str()) => {
                    bench_args.extend([arg.clone(), b.clone()]);
                }
                _ => return usage_error("--backend takes memory, file, redis or all"),
            },
            "--" => break,
            other => {
                return usage_error(&format!(
                    "unknown bench argument `{other}`; use --backend and --quick, and pass others to wf-bench after `--`"
                ));
            }
        }
    }
    bench_args.extend(iter.cloned());
    // The raw fsync floor is measured on the disk that holds the target directory.
    let scratch = target_dir(root).join("wf-bench");
    if !bench_args.iter().any(|a| a == "--dir") {
        bench_args.push("--dir".to_owned());
        bench_args.push(scratch.to_string_lossy().into_owned());
    }
    if !bench_args.iter().any(|a| a == "--out") {
        bench_args.push("--out".to_owned());
        bench_args.push(
            target_dir(root)
                .join("bench")
                .to_string_lossy()
                .into_owned(),
        );
    }
    let mut args = vec!["run", "--release", "--quiet", "-p", "wf-bench", "--"];
    args.extend(bench_args.iter().map(String::as_str));
    run_steps(
        "bench",
        root,
        vec![Step::new(
            "bench",
            &args,
            "see the error above; `cargo run --release -p wf-bench -- --help` lists the bench options",
        )],
    )
}

/// Runs the simulator (`crates/wf-sim`) with the caller's arguments, which it checks itself.
fn sim(root: &Path, rest: &[String]) -> Result<(), Failed> {
    let mut args = vec!["run", "--quiet", "-p", "wf-sim", "--"];
    args.extend(rest.iter().map(String::as_str));
    run_steps(
        "sim",
        root,
        vec![Step::new(
            "sim",
            &args,
            "a seed failed: run the command it printed (`cargo xtask sim --seed S --trace`) to see its history step by step",
        )],
    )
}

/// `cargo xtask soak`: the crash test of the file store with many rounds.
fn soak(root: &Path, rest: &[String]) -> Result<(), Failed> {
    let mut rounds = String::from("1000");
    let mut seed = None;
    let mut iter = rest.iter();
    while let Some(arg) = iter.next() {
        let value = iter
            .next()
            .filter(|v| v.parse::<u64>().is_ok_and(|n| n > 0));
        match (arg.as_str(), value) {
            ("--rounds", Some(n)) => rounds = n.clone(),
            ("--seed", Some(s)) => seed = Some(s.clone()),
            ("--rounds" | "--seed", None) => {
                return usage_error(&format!("{arg} takes a positive whole number"));
            }
            (other, _) => {
                return usage_error(&format!(
                    "unknown soak argument `{other}`; use --rounds N and --seed S"
                ));
            }
        }
    }
    let mut step = Step::new(
        "soak",
        &[
            "test",
            "-p",
            "wf-store",
            "--all-features",
            "--test",
            "file_crash",
            "--",
            "--exact",
            "kill_9_loses_nothing_acknowledged",
            "--nocapture",
        ],
        "acknowledged work was lost or half-written after a kill -9: rerun with the printed WF_CRASH_SEED (`cargo xtask soak --seed S --rounds N`) and read the round's lines",
    )
    .env("WF_CRASH_ROUNDS", rounds);
    if let Some(seed) = seed {
        step = step.env("WF_CRASH_SEED", seed);
    }
    run_steps("soak", root, vec![step])
}

fn run_steps(pipeline: &str, root: &Path, steps: Vec<Step>) -> Result<(), Failed> {
    let started = Instant::now();
    let total = steps.len();
    let mut timings = Vec::with_capacity(total);
    for (i, step) in steps.iter().enumerate() {
        let command = step.display();
        eprintln!("\n==> [{}/{total}] {}: {command}", i + 1, step.name);
        let t = Instant::now();
        let status = cargo(root)
            .args(&step.args)
            .envs(step.env.iter().map(|(k, v)| (*k, v)))
            .status();
        let took = t.elapsed();
        let detail = match status {
            Ok(s) if s.success() => None,
            Ok(s) => Some(match s.code() {
                Some(code) => format!("exited with status {code} after {}", secs(took)),
                None => format!("killed by a signal after {}", secs(took)),
            }),
            Err(e) => Some(format!("could not start cargo: {e}")),
        };
        if let Some(detail) = detail {
            return Err(Failed {
                step: step.name,
                command,
                detail,
                hint: step.hint,
            });
        }
        eprintln!("==> {} ok ({})", step.name, secs(took));
        timings.push((step.name, took));
    }
    if total > 1 {
        eprintln!();
        for (name, took) in &timings {
            eprintln!("    {name:<8} {}", secs(*took));
        }
    }
    eprintln!(
        "==> cargo xtask {pipeline}: all {total} step(s) passed in {}",
        secs(started.elapsed())
    );
    Ok(())
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// A `cargo` command in the workspace root, without the variables `cargo run` set for xtask
/// itself (they describe the xtask package and would leak into the nested build, e.g.
/// `CARGO_PRIMARY_PACKAGE` changes what clippy lints).
fn cargo(root: &Path) -> Command {
    let program = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut cmd = Command::new(program);
    cmd.current_dir(root);
    for (key, _) in env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("CARGO_PKG_")
            || k.starts_with("CARGO_BIN_")
            || k.starts_with("CARGO_CRATE_")
            || k.starts_with("CARGO_MANIFEST_")
            || k == "CARGO_PRIMARY_PACKAGE"
        {
            cmd.env_remove(&key);
        }
    }
    cmd
}

fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

fn target_dir(root: &Path) -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    }
}
