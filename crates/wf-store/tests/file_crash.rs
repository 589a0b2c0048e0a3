//! A real crash test: a child process (this test binary, re-executed in child mode) commits in
//! a loop and prints every acknowledged submission and commit; the parent `kill -9`s it at a
//! random moment, reopens the store and checks that everything acknowledged is there, whole,
//! and that nothing half-written is visible. Several rounds run on one directory, so every
//! round also recovers from the previous crash and proves a dead owner's lock does not block.
//!
//! Set `WF_CRASH_SEED` to replay a failing run's kill points (the seed is printed), and
//! `WF_CRASH_ROUNDS` for more rounds than the default 12: `cargo xtask soak [--rounds N]` runs
//! the long loop (not in CI). A long run starts a fresh directory every
//! `ROUNDS_PER_DIRECTORY` rounds, so each reopen checks a bounded store; it ends with one line,
//! `soak: N rounds, …`, counting the acknowledged commits checked and those lost (which fails
//! the test).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod file_common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use file_common::*;
use wf_core::{Status, Timestamp};
use wf_store::{FileOptions, FileStore, StoreError, StoreRead, StoreWork};

const CHILD_DIR: &str = "WF_FILE_CRASH_CHILD_DIR";
const CHILD_BASE: &str = "WF_FILE_CRASH_CHILD_BASE";
const THREADS: u64 = 4;
/// Rounds unless `WF_CRASH_ROUNDS` says otherwise.
const ROUNDS: u64 = 12;
/// How many rounds share one store directory.
const ROUNDS_PER_DIRECTORY: u64 = 25;

/// Child mode: does nothing unless the parent test started this process.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let base: u64 = std::env::var(CHILD_BASE).unwrap().parse().unwrap();
    // A small compaction threshold, so kills also land in and around compactions.
    let options = FileOptions::default().compact_min_bytes(16 << 10);
    let store = Arc::new(FileStore::open_with(&dir, options).unwrap());
    println!("open");
    let started = Instant::now();
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                // Bounded, so an orphaned child cannot run forever.
                for i in 0.. {
                    if started.elapsed() > Duration::from_secs(60) {
                        return;
                    }
                    let now = Timestamp::from_system_time(SystemTime::now());
                    let n = base + i * THREADS + t;
                    store.submit(root(n), now).unwrap();
                    println!("sub {n}");
                    if let Some(done) = claim_and_finish(&*store, &format!("w{t}"), now) {
                        println!("ack {done}");
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
}

/// A small xorshift generator: the test needs jitter, not quality.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn kill_9_loses_nothing_acknowledged() {
    let seed = std::env::var("WF_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            let t = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64;
            t ^ u64::from(std::process::id()).rotate_left(32)
        })
        | 1;
    let rounds: u64 = std::env::var("WF_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(ROUNDS)
        .max(2);
    println!("WF_CRASH_SEED={seed} WF_CRASH_ROUNDS={rounds}");
    let mut rng = Rng(seed);
    let exe = std::env::current_exe().unwrap();
    let started = Instant::now();
    let mut dir = tempfile::tempdir().unwrap();
    let mut acked = BTreeSet::new();
    let mut submitted = BTreeSet::new();
    let (mut checked, mut lost, mut torn_tails, mut all_acked) = (0u64, 0u64, 0u64, 0u64);

    for round in 0..rounds {
        if round > 0 && round % ROUNDS_PER_DIRECTORY == 0 {
            dir = tempfile::tempdir().unwrap();
            all_acked += acked.len() as u64;
            acked.clear();
            submitted.clear();
        }
        let first_of_dir = round % ROUNDS_PER_DIRECTORY == 0;
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR, dir.path())
            .env(CHILD_BASE, (round * 1_000_000).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap());
        let mut note = |line: &str| {
            if let Some(n) = line.strip_prefix("ack ") {
                acked.insert(n.trim_end().parse::<u64>().unwrap());
            } else if let Some(n) = line.strip_prefix("sub ") {
                submitted.insert(n.trim_end().parse::<u64>().unwrap());
            }
        };
        // Kill after a random number of acknowledged commits (0: right after opening).
        let kill_after = if round == 1 { 0 } else { rng.below(400) };
        let mut acks = 0;
        let mut line = String::new();
        loop {
            line.clear();
            let read = lines.read_line(&mut line).unwrap();
            assert!(
                read > 0,
                "round {round}: the child ended early: {:?}",
                child.wait()
            );
            note(&line);
            if line.starts_with("open") && first_of_dir {
                // The child owns the store: this process may not open it, not even after
                // deleting `LOCK` (the lock is on the log itself).
                assert!(matches!(
                    FileStore::open(dir.path()),
                    Err(StoreError::StoreLocked { pid: Some(_), .. })
                ));
                std::fs::remove_file(dir.path().join("LOCK")).unwrap();
                assert!(matches!(
                    FileStore::open(dir.path()),
                    Err(StoreError::StoreLocked { .. })
                ));
            }
            acks += u64::from(line.starts_with("ack "));
            if acks >= kill_after && (line.starts_with("ack ") || kill_after == 0) {
                break;
            }
        }
        // Jitter, so the kill lands anywhere in the commit path, not right after a print.
        let spin = Duration::from_micros(rng.below(3000));
        let t = Instant::now();
        while t.elapsed() < spin {
            std::hint::spin_loop();
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // What the child printed before it died was acknowledged too; a cut-off line was not.
        loop {
            line.clear();
            if lines.read_line(&mut line).unwrap() == 0 {
                break;
            }
            if line.ends_with('\n') {
                note(&line);
            }
        }

        // The dead child's lock does not block; the store opens and is complete and whole.
        let store = FileStore::open(dir.path()).unwrap();
        let torn = store.torn_tail().is_some();
        torn_tails += u64::from(torn);
        for n in &submitted {
            let record = match store.invocation(root(*n).id) {
                Ok(record) => record,
                Err(e) => {
                    eprintln!("round {round}: acknowledged submission {n} is lost: {e}");
                    lost += 1;
                    continue;
                }
            };
            if acked.contains(n) {
                checked += 1;
                if record.status() != Status::Success {
                    eprintln!(
                        "round {round}: acknowledged commit {n} is lost: the invocation is {}",
                        record.status()
                    );
                    lost += 1;
                }
            }
        }
        let mut finished = 0;
        for record in store.workflows().unwrap() {
            finished += u64::from(check_whole(&store, &record));
        }
        assert!(finished >= acked.len() as u64 - lost.min(acked.len() as u64));
        if rounds <= ROUNDS || round % 50 == 0 || round + 1 == rounds {
            println!(
                "round {round}: {} acknowledged commits, {} submissions, {finished} finished in the store, log {} bytes, torn tail cut: {torn}",
                acked.len(),
                submitted.len(),
                std::fs::metadata(log_path(dir.path())).unwrap().len()
            );
        }
        drop(store);
    }
    all_acked += acked.len() as u64;
    println!(
        "soak: {rounds} rounds, {checked} acknowledged-commit checks over {all_acked} acknowledged commits, {lost} lost, {torn_tails} torn tails cut, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(lost, 0, "acknowledged work was lost (seed {seed})");
    assert!(
        all_acked >= rounds,
        "the child acknowledged too little to test anything"
    );
}
