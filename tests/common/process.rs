//! What the tests that run worker processes share: a log of the side effects bodies had, which
//! survives the process being killed, and a way to block a process until it is.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::{Condvar, Mutex};

/// Appends a line to `runs.log` in `dir` and syncs it, so it survives a kill.
pub fn log_run(dir: &Path, line: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("runs.log"))
        .unwrap();
    f.write_all(format!("{line}\n").as_bytes()).unwrap(); // one write: lines stay whole
    f.sync_all().unwrap();
}

/// The lines of `runs.log` in `dir`.
pub fn runs(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("runs.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Blocks the calling thread for good (the process is about to be killed).
pub fn block_forever() -> ! {
    let pair = (Mutex::new(()), Condvar::new());
    let mut g = pair.0.lock().unwrap();
    loop {
        g = pair.1.wait(g).unwrap();
    }
}

/// How long a test waits for a child process to print what it expects or to exit before it
/// kills the child and fails, saying what it was waiting for.
pub const CHILD_PATIENCE: std::time::Duration = std::time::Duration::from_secs(90);

/// A child process's standard output, read line by line on its own thread, so that every wait
/// for a line is bounded by [`CHILD_PATIENCE`].
pub struct ChildLines(std::sync::mpsc::Receiver<String>);

impl ChildLines {
    /// Takes `child`'s piped standard output.
    pub fn of(child: &mut std::process::Child) -> Self {
        use std::io::BufRead;
        let out = child.stdout.take().expect("the child's stdout is piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Self(rx)
    }

    /// Reads lines until one satisfies `wanted` and returns it, handing every line read to
    /// `wanted` in turn. If none comes within [`CHILD_PATIENCE`], or the child closes its
    /// output first, kills the child and fails naming `what`.
    pub fn until(
        &self,
        child: &mut std::process::Child,
        what: &str,
        mut wanted: impl FnMut(&str) -> bool,
    ) -> String {
        use std::sync::mpsc::RecvTimeoutError;
        let deadline = std::time::Instant::now() + CHILD_PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.0.recv_timeout(left) {
                Ok(line) if wanted(&line) => return line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    kill_9(child);
                    panic!(
                        "waited {CHILD_PATIENCE:?} for the child process to print {what}; killed it"
                    );
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = wait_exit(child, what);
                    panic!("the child process ended ({status}) before printing {what}");
                }
            }
        }
    }
}

/// Waits for `child` to exit, at most [`CHILD_PATIENCE`]; past it, kills the child and fails
/// naming `what` it was expected to finish.
pub fn wait_exit(child: &mut std::process::Child, what: &str) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + CHILD_PATIENCE;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if std::time::Instant::now() >= deadline {
            kill_9(child);
            panic!("waited {CHILD_PATIENCE:?} for the child process to finish {what}; killed it");
        }
        // A process's exit cannot be awaited with a deadline in std: look again shortly.
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// [`std::process::Child::wait_with_output`], bounded like [`wait_exit`].
pub fn output_within(mut child: std::process::Child, what: &str) -> std::process::Output {
    use std::io::Read;
    fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    }
    let (out, err) = (drain(child.stdout.take()), drain(child.stderr.take()));
    let status = wait_exit(&mut child, what);
    std::process::Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// Kills `child` with SIGKILL (no destructors, no flush, no unlock) and reaps it.
pub fn kill_9(child: &mut std::process::Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// The binary of example `name`, built for this test run by cargo (`cargo test` builds examples;
/// a run of one test alone builds it here), with this test build's backend features (so that
/// an `--all-features` run reuses what it built, and the example knows every backend it does).
pub fn example_binary(name: &str) -> std::path::PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let features: Vec<&str> = [
        ("file", cfg!(feature = "file")),
        ("redis", cfg!(feature = "redis")),
        ("redis-tls", cfg!(feature = "redis-tls")),
        ("tokio", cfg!(feature = "tokio")),
    ]
    .iter()
    .filter_map(|(f, on)| on.then_some(*f))
    .collect();
    let mut build = std::process::Command::new(cargo);
    // What cargo set for this test process (the package's name, version, directory): seen by
    // the inner cargo, build scripts that watch them (ring's) would rebuild, here and again in
    // the next outer build.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        let set_for_tests = [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
        ]
        .iter()
        .any(|p| key.starts_with(p))
            || key == "CARGO_PRIMARY_PACKAGE";
        if set_for_tests {
            build.env_remove(key);
        }
    }
    let status = build
        .args([
            "build",
            "--quiet",
            "--example",
            name,
            "--no-default-features",
        ])
        .args(["--features", &features.join(",")])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(status.success(), "cannot build the {name} example");
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let bin = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.is_file(), "no example binary at {}", bin.display());
    bin
}
