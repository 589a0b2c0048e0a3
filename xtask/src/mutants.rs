//! `cargo xtask mutants [core|store-commit|store|runtime|all] [-- ARGS]`: mutation testing, with
//! cargo-mutants, of the code where a silent bug costs users double side effects: the replay
//! core (cursor, journal, access, status, deterministic draws), the store's shared state machine
//! (`Tables`: claim, commit, fencing, recovery) and the runtime's execution and commit path.
//! Each scope mutates one package and runs the tests that guard it; the reports go to
//! `target/mutants/<scope>/mutants.out/` (`caught.txt`, `missed.txt`, `timeout.txt`). Too slow
//! for CI on two cores: run it after changing these files, and explain or kill every survivor
//! (docs/testing.md).

use std::path::Path;
use std::process::Command;

use crate::{Failed, Step, run_steps, target_dir, usage_error};

/// One mutated area: the package, its files, and the tests that judge the mutants.
struct Scope {
    name: &'static str,
    package: &'static str,
    files: &'static [&'static str],
    /// The packages whose tests judge the mutants.
    tests: &'static [&'static str],
    /// Build with every feature (Redis included) rather than the default ones.
    all_features: bool,
    /// The test targets that judge each mutant: they guard the scope and finish in seconds. Given
    /// to cargo-mutants as `--cargo-arg`, so that each mutant builds only these (a mutant costs a
    /// rebuild of them plus their run).
    test_args: &'static [&'static str],
    /// Seconds after which a mutant's tests count as hung (a mutant that loops forever).
    timeout: &'static str,
    /// Skip cargo-mutants' unmutated baseline: it builds only the mutated package's targets,
    /// so it cannot build test targets of another package (`runtime`'s judges are the
    /// facade's). Run the judges once by hand before (`cargo test --test ...`): with no
    /// baseline, a test that fails anyway would count every mutant as caught.
    skip_baseline: bool,
}

/// The store's judges: its unit tests and the conformance suite on the two backends that run
/// `Tables` itself (Redis runs its own scripts, so its suites judge nothing here).
const STORE_TESTS: &[&str] = &[
    "--lib",
    "--test=memory_conformance",
    "--test=file_conformance",
];

const SCOPES: &[Scope] = &[
    Scope {
        name: "core",
        package: "wf-core",
        files: &[
            "crates/wf-core/src/cursor.rs",
            "crates/wf-core/src/journal.rs",
            "crates/wf-core/src/access.rs",
            "crates/wf-core/src/status.rs",
            "crates/wf-core/src/deterministic.rs",
        ],
        tests: &["wf-core"],
        all_features: true,
        test_args: &[],
        timeout: "120",
        skip_baseline: false,
    },
    // The part of `store` where a silent bug runs work twice or loses a commit: commit, claim,
    // fencing, renewal and recovery. Run it first when time is short.
    Scope {
        name: "store-commit",
        package: "wf-store",
        files: &[
            "crates/wf-store/src/tables/commit.rs",
            "crates/wf-store/src/tables/lease.rs",
        ],
        tests: &["wf-store"],
        all_features: true,
        test_args: STORE_TESTS,
        timeout: "90",
        skip_baseline: false,
    },
    Scope {
        name: "store",
        package: "wf-store",
        files: &["crates/wf-store/src/tables/*.rs"],
        tests: &["wf-store"],
        all_features: true,
        test_args: STORE_TESTS,
        timeout: "90",
        skip_baseline: false,
    },
    Scope {
        name: "runtime",
        package: "wf-runtime",
        files: &[
            "crates/wf-runtime/src/execution.rs",
            "crates/wf-runtime/src/recorder.rs",
            "crates/wf-runtime/src/inline.rs",
        ],
        // The recorder's own properties, then the end-to-end tests of the facade that drive
        // execution and recording, on the memory and file stores (default features: Redis
        // would add minutes per mutant and judge the same runtime code).
        tests: &["wf"],
        all_features: false,
        test_args: &[
            // wf-runtime's own unit and property tests (the recorder's), beside the facade's.
            "--package=wf-runtime",
            "--lib",
            "--test=runtime",
            "--test=workflow",
            "--test=retry_replay",
            "--test=hostile_replay",
            "--test=stop_short",
            "--test=nondeterminism_matrix",
            "--test=inline",
            "--test=events",
            "--test=timers",
            "--test=cancel",
            "--test=data_writes",
            "--test=swallowed_suspension",
            "--test=store_failure",
            "--test=worker_faults",
            "--test=versioning",
        ],
        // The judges take ~21 s; a mutant that hangs (a cancellation that never arrives)
        // should cost little more.
        timeout: "90",
        skip_baseline: true,
    },
];

pub(crate) fn mutants(root: &Path, rest: &[String]) -> Result<(), Failed> {
    let (wanted, extra) = match rest.iter().position(|a| a == "--") {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let scopes: Vec<&Scope> = match wanted {
        // `store-commit` is part of `store`: `all` runs each file once.
        [one] if one == "all" => SCOPES.iter().filter(|s| s.name != "store-commit").collect(),
        [one] => match SCOPES.iter().find(|s| s.name == one) {
            Some(s) => vec![s],
            None => {
                return usage_error("mutants takes core, store-commit, store, runtime or all");
            }
        },
        [] => SCOPES.iter().filter(|s| s.name != "store-commit").collect(),
        _ => {
            return usage_error(
                "mutants takes one scope (core, store-commit, store, runtime or all), then `-- ARGS`",
            );
        }
    };
    ensure_installed(root)?;
    let mut steps = Vec::new();
    for scope in scopes {
        let out = target_dir(root).join("mutants").join(scope.name);
        // cargo-mutants writes `mutants.out` inside an existing directory.
        if let Err(e) = std::fs::create_dir_all(&out) {
            return Err(Failed {
                step: "mutants",
                command: format!("mkdir -p {}", out.display()),
                detail: e.to_string(),
                hint: "make the target directory writable",
            });
        }
        steps.push({
            let mut args = vec![
                "mutants".to_owned(),
                "--package".to_owned(),
                scope.package.to_owned(),
                "--test-package".to_owned(),
                scope.tests.join(","),
                "--no-shuffle".to_owned(),
                "--jobs".to_owned(),
                "1".to_owned(),
                "--timeout".to_owned(),
                scope.timeout.to_owned(),
                "--output".to_owned(),
                out.to_string_lossy().into_owned(),
            ];
            if scope.skip_baseline {
                args.push("--baseline=skip".to_owned());
            }
            if scope.all_features {
                args.push("--all-features".to_owned());
            }
            for file in scope.files {
                args.push("--file".to_owned());
                args.push((*file).to_owned());
            }
            // To both `cargo test --no-run` and `cargo test` (arguments after `--` would reach
            // only the second, and every other test target would be rebuilt for each mutant).
            for arg in scope.test_args {
                args.push(format!("--cargo-arg={arg}"));
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            Step::new(
                scope.name,
                &args,
                "a mutant survived or the run failed: see target/mutants/<scope>/mutants.out/missed.txt, then add a test that fails on it or explain it in docs/testing.md",
            )
            .extra_args(extra)
        });
    }
    run_steps("mutants", root, steps)
}

/// Installs cargo-mutants when `cargo mutants` is not available.
fn ensure_installed(root: &Path) -> Result<(), Failed> {
    let present = Command::new("cargo")
        .args(["mutants", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return Ok(());
    }
    eprintln!(
        "cargo-mutants is not installed: installing it with `cargo install --locked cargo-mutants`"
    );
    run_steps(
        "mutants",
        root,
        vec![Step::new(
            "install cargo-mutants",
            &["install", "--locked", "cargo-mutants"],
            "install it yourself (`cargo install cargo-mutants`) and run again",
        )],
    )
}
