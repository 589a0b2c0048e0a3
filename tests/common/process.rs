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
