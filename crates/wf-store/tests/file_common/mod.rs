//! Helpers shared by the file backend's tests: a workload whose every stored byte is a function
//! of the invocation's number, so a reopened store can be checked for completeness and for
//! half-written state.

#![allow(
    dead_code,
    unused_imports,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used
)]

pub mod errseq;

use std::path::{Path, PathBuf};
use std::time::Duration;

use wf_core::{JournalEntry, Op, Status, Timestamp, WorkerId};
use wf_store::conformance::fixtures;
use wf_store::{
    Commit, InvocationRecord, NewInvocation, Outcome, Store, StoreAdmin, StoreRead, StoreWork,
    TaskSet,
};

/// The task every invocation of this workload calls.
pub const TASK: &str = "crash-test";

pub use wf_store::conformance::fixtures::{T0, at_ms as at};

/// The log file of a store directory.
pub fn log_path(dir: &Path) -> PathBuf {
    dir.join("wf.log")
}

/// Size of the log file's header.
pub const HEADER_LEN: usize = 12;

/// Size of a record's frame before its payload: length, tag (position), checksum.
pub const FRAME_LEN: usize = 12;

/// Where a record's encoded changes start: after its frame and the watermark that begins its
/// payload (format 3: how far the log was synced when the record was appended).
pub const CHANGES_AT: usize = FRAME_LEN + 8;

/// The watermark of the record at `at` (format 3): the log's offset known durable when it was
/// appended.
pub fn watermark(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at + FRAME_LEN..at + CHANGES_AT].try_into().unwrap())
}

/// Offsets of every record in a log file's bytes, followed by the end of the last one.
pub fn record_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut at = HEADER_LEN;
    let mut out = vec![at];
    while at + FRAME_LEN <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        at += FRAME_LEN + len;
        assert!(at <= bytes.len(), "the log ends inside a record");
        out.push(at);
    }
    out
}

/// Recomputes the checksum of the record at `at` after a test changed its payload, so the record
/// is whole again as far as its frame can tell.
pub fn fix_checksum(bytes: &mut [u8], at: usize) {
    let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    let mut h = crc32fast::Hasher::new();
    h.update(&bytes[at..at + 4]);
    h.update(&bytes[at + FRAME_LEN..at + FRAME_LEN + len]);
    bytes[at + 8..at + 12].copy_from_slice(&h.finalize().to_le_bytes());
}

/// Root invocation number `n` (id `n + 1`) of the one task of this workload; its arguments
/// carry `n`.
pub fn root(n: u64) -> NewInvocation {
    fixtures::root(u128::from(n) + 1, TASK, &n.to_le_bytes())
}

/// Invocation number `n`, a child of `parent` in its workflow, made like [`root`].
pub fn child_of(n: u64, parent: &NewInvocation) -> NewInvocation {
    fixtures::child(u128::from(n) + 1, parent, TASK, &n.to_le_bytes())
}

/// The tasks of this workload: the one task [`TASK`].
pub fn workload_tasks() -> TaskSet {
    fixtures::tasks(&[TASK])
}

/// The number an invocation was made from.
pub fn number(record: &InvocationRecord) -> u64 {
    u64::from_le_bytes(
        record
            .spec
            .args
            .as_slice()
            .try_into()
            .expect("8 argument bytes"),
    )
}

/// The result invocation `n` commits.
pub fn result_of(n: u64) -> Vec<u8> {
    format!("result of {n} ")
        .repeat(1 + (n % 7) as usize)
        .into_bytes()
}

/// The journal invocation `n` commits.
pub fn journal_of(n: u64) -> Vec<JournalEntry> {
    (0..1 + (n % 3) as u32)
        .map(|seq| JournalEntry {
            seq,
            op: Op::Random(n * 10 + u64::from(seq)),
        })
        .collect()
}

/// The data invocation `n` writes to its workflow.
pub fn data_of(n: u64) -> Vec<(String, Vec<u8>)> {
    vec![
        ("first".to_owned(), format!("{n}-a").into_bytes()),
        (
            "second".to_owned(),
            vec![(n % 251) as u8; 64 + (n % 100) as usize],
        ),
    ]
}

/// The commit that finishes invocation `n`.
pub fn commit_of(n: u64) -> Commit {
    Commit {
        journal: journal_of(n),
        data: data_of(n),
        children: Vec::new(),
        outcome: Outcome::Success(result_of(n)),
        ..Commit::outcome(Outcome::Released)
    }
}

/// Claims one invocation and commits it; returns its number, or `None` when nothing was
/// claimable.
pub fn claim_and_finish(store: &dyn Store, worker: &str, now: Timestamp) -> Option<u64> {
    let claim = store
        .claim(
            &WorkerId::new(worker),
            &workload_tasks(),
            Duration::from_secs(600),
            now,
        )
        .unwrap()?;
    let n = number(&claim.record);
    store.commit(&claim.lease, commit_of(n), now).unwrap();
    Some(n)
}

/// Submits invocation `n` and runs one claim and commit.
pub fn run_one(store: &dyn Store, n: u64, now: Timestamp) -> u64 {
    store.submit(root(n), now).unwrap();
    claim_and_finish(store, "w", now).expect("something to claim")
}

/// Checks that a stored invocation is either finished exactly as `commit_of` says or untouched
/// by its commit (no journal, no data, no result): never half-written.
pub fn check_whole(store: &dyn StoreRead, record: &InvocationRecord) -> bool {
    let n = number(record);
    let id = record.id();
    let journal = store.journal(id).unwrap();
    let data: Vec<(String, Vec<u8>)> = store
        .data_keys(id)
        .unwrap()
        .into_iter()
        .map(|k| {
            let v = store
                .get_data(id, &k)
                .unwrap()
                .expect("a listed key has a value");
            (k, v)
        })
        .collect();
    match record.status() {
        Status::Success => {
            assert_eq!(
                record.state.result.as_deref(),
                Some(result_of(n).as_slice()),
                "{n}"
            );
            assert_eq!(journal, journal_of(n), "journal of {n}");
            assert_eq!(data, data_of(n), "data of {n}");
            true
        }
        Status::Pending | Status::Running => {
            assert!(
                journal.is_empty(),
                "{n} is {} with a journal",
                record.status()
            );
            assert!(data.is_empty(), "{n} is {} with data", record.status());
            assert_eq!(record.state.result, None, "{n}");
            false
        }
        other => panic!("invocation {n} is {other}, which this workload never makes"),
    }
}

/// The journal entry of a checkpoint that starts child `kid` at `seq`.
pub fn child_start(seq: u32, kid: &NewInvocation) -> JournalEntry {
    JournalEntry {
        seq,
        op: Op::ChildStart {
            task: kid.task.clone(),
            call: kid.call,
            child: kid.id,
        },
    }
}

/// The journal entry of a checkpoint that records child `kid`'s success with `value` at `seq`.
pub fn child_success(seq: u32, kid: &NewInvocation, value: &[u8]) -> JournalEntry {
    JournalEntry {
        seq,
        op: Op::ChildResult {
            child: kid.id,
            outcome: wf_core::ChildOutcome::Success(value.to_vec()),
        },
    }
}
