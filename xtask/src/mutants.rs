//! `cargo xtask mutants [core|store|runtime|all] [-- ARGS]`: mutation testing, with
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

/// One mutated area: the package, its files, and the package whose tests judge the mutants.
struct Scope {
    name: &'static str,
    package: &'static str,
    files: &'static [&'static str],
    tests: &'static str,
}

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
        tests: "wf-core",
    },
    Scope {
        name: "store",
        package: "wf-store",
        files: &["crates/wf-store/src/tables/*.rs"],
        tests: "wf-store",
    },
    Scope {
        name: "runtime",
        package: "wf-runtime",
        files: &[
            "crates/wf-runtime/src/execution.rs",
            "crates/wf-runtime/src/recorder.rs",
        ],
        // The end-to-end tests of the facade judge the runtime.
        tests: "wf",
    },
];

pub(crate) fn mutants(root: &Path, rest: &[String]) -> Result<(), Failed> {
    let (wanted, extra) = match rest.iter().position(|a| a == "--") {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let scopes: Vec<&Scope> = match wanted {
        [] => SCOPES.iter().collect(),
        [one] if one == "all" => SCOPES.iter().collect(),
        [one] => match SCOPES.iter().find(|s| s.name == one) {
            Some(s) => vec![s],
            None => return usage_error("mutants takes core, store, runtime or all"),
        },
        _ => {
            return usage_error(
                "mutants takes one scope (core, store, runtime or all), then `-- ARGS`",
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
                scope.tests.to_owned(),
                "--all-features".to_owned(),
                "--no-shuffle".to_owned(),
                "--output".to_owned(),
                out.to_string_lossy().into_owned(),
            ];
            for file in scope.files {
                args.push("--file".to_owned());
                args.push((*file).to_owned());
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
