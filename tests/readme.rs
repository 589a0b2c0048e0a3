//! The README's quick start is what a new user pastes: the same program as
//! `examples/quickstart.rs`, without rustdoc's hidden lines, and it runs in an empty directory.
//! (`cargo xtask readme` compiles every Rust block of the README as a new project.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

const README: &str = include_str!("../README.md");
const QUICKSTART: &str = include_str!("../examples/quickstart.rs");

/// The README's fenced blocks: (info string, body).
fn blocks(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut open: Option<(String, String)> = None;
    for line in text.lines() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(info)) => open = Some((info.trim().to_owned(), String::new())),
            (Some(_), Some(_)) => out.extend(open.take()),
            (Some((_, body)), None) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    out
}

fn rust_blocks() -> Vec<String> {
    blocks(README)
        .into_iter()
        .filter(|(info, _)| info == "rust")
        .map(|(_, body)| body)
        .collect()
}

#[test]
fn the_quick_start_is_examples_quickstart_rs() {
    let rust = rust_blocks();
    assert!(
        rust.iter().any(|b| b == QUICKSTART),
        "the README's rust blocks differ from examples/quickstart.rs; paste the file into the README"
    );
}

#[test]
fn readme_rust_blocks_have_no_hidden_lines() {
    for block in rust_blocks() {
        for line in block.lines() {
            let t = line.trim_start();
            assert!(
                !(t == "#" || t.starts_with("# ")),
                "a rustdoc hidden line in a README rust block would be pasted as is: {line:?}"
            );
        }
    }
}

#[test]
fn the_dependency_line_is_usable_and_serde_is_used() {
    let toml = blocks(README)
        .into_iter()
        .find(|(info, body)| info == "toml" && body.contains("[dependencies]"))
        .map(|(_, body)| body)
        .unwrap();
    assert!(toml.contains("wf = { path = "), "{toml}");
    assert!(README.contains("not on crates.io yet"));
    if toml.contains("serde") {
        assert!(
            QUICKSTART.contains("use serde::"),
            "the README asks for serde it does not use"
        );
    }
}

/// The example's binary (built by `cargo test`; a run of this test alone builds it here).
fn quickstart() -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "--example", "quickstart"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(status.success(), "cannot build the quickstart example");
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("examples")
        .join(format!("quickstart{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.is_file(), "no example binary at {}", bin.display());
    bin
}

#[test]
fn the_quick_start_runs_and_a_second_run_finds_the_same_checkout() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = quickstart();
    let run = || {
        let out = Command::new(&bin).current_dir(tmp.path()).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let first = run();
    assert!(
        first.starts_with("receipt for order 1042: 1250 cents (payment "),
        "{first}"
    );
    assert_eq!(run(), first, "the second run must find the first checkout");
    assert!(tmp.path().join("wf-data/quickstart").is_dir());
}
