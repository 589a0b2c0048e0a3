//! Criterion micro benchmarks of the pieces every task pays for: the replay cursor (recording
//! and replaying deterministic operations), the codec (journal entries and arguments), and one
//! commit on each backend (memory; file with fsync on, which measures the disk).
//!
//! Run with `cargo bench -p wf-bench` (or `-- cursor` for one group). They are not part of the
//! test run; CI only compiles them. `cargo xtask bench` is the end-to-end benchmark.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use wf_core::{
    CallId, InvocationId, JournalEntry, ReplayCursor, TaskId, Timestamp, WorkerId,
    WorkflowIdentity, decode, encode,
};
use wf_store::{
    Claim, Commit, DEFAULT_MAX_RECOVERIES, FileStore, MemoryStore, NewInvocation, Outcome, Store,
    TaskSet,
};

const OPS: usize = 1_000;

/// The journal of `OPS` alternating `random()` and `uuid()` draws.
fn recorded_journal(id: InvocationId) -> Vec<JournalEntry> {
    let mut cursor = ReplayCursor::new(id, Vec::new());
    for i in 0..OPS {
        if i % 2 == 0 {
            cursor.random().unwrap();
        } else {
            cursor.uuid().unwrap();
        }
    }
    cursor.take_new_entries()
}

fn cursor(c: &mut Criterion) {
    let id = InvocationId::from_u128(7);
    let journal = recorded_journal(id);
    let mut g = c.benchmark_group("cursor");
    g.bench_function("record 1,000 draws", |b| {
        b.iter(|| black_box(recorded_journal(id)));
    });
    g.bench_function("replay 1,000 draws", |b| {
        b.iter_batched(
            || journal.clone(),
            |journal| {
                let mut cursor = ReplayCursor::new(id, journal);
                for i in 0..OPS {
                    if i % 2 == 0 {
                        black_box(cursor.random().unwrap());
                    } else {
                        black_box(cursor.uuid().unwrap());
                    }
                }
                cursor
            },
            BatchSize::SmallInput,
        );
    });
    let task = TaskId::new("bench.child");
    let call = CallId::of(&task, b"args");
    g.bench_function("child start (live)", |b| {
        b.iter_batched(
            || ReplayCursor::new(id, Vec::new()),
            |mut cursor| black_box(cursor.child_start(&task, call).unwrap()),
            BatchSize::SmallInput,
        );
    });
    g.finish();
}

fn codec(c: &mut Criterion) {
    let journal = recorded_journal(InvocationId::from_u128(7));
    let bytes = encode(&journal).unwrap();
    let args = (42u64, "a customer's order".to_owned(), vec![1u32, 2, 3]);
    let mut g = c.benchmark_group("codec");
    g.bench_function("encode 1,000 journal entries", |b| {
        b.iter(|| black_box(encode(&journal).unwrap()));
    });
    g.bench_function("decode 1,000 journal entries", |b| {
        b.iter(|| black_box(decode::<Vec<JournalEntry>>(&bytes).unwrap()));
    });
    g.bench_function("encode arguments", |b| {
        b.iter(|| black_box(encode(&args).unwrap()));
    });
    g.bench_function("call id of arguments", |b| {
        let task = TaskId::new("bench.task");
        let encoded = encode(&args).unwrap();
        b.iter(|| black_box(CallId::of(&task, &encoded)));
    });
    g.finish();
}

/// A claimed root invocation on `store`, ready to commit.
fn claimed(store: &dyn Store, n: u128) -> Claim {
    let id = InvocationId::from_u128(n);
    let task = TaskId::new("bench.noop");
    let args = vec![1, 2, 3];
    let now = Timestamp::from_system_time(std::time::SystemTime::now());
    store
        .submit(
            NewInvocation {
                id,
                call: CallId::of(&task, &args),
                identity: WorkflowIdentity::new_workflow(id, task.clone()),
                task: task.clone(),
                args,
                parent: None,
                not_before: None,
                max_recoveries: DEFAULT_MAX_RECOVERIES,
            },
            now,
        )
        .unwrap();
    store
        .claim(
            &WorkerId::new("bench"),
            &TaskSet::new([task]),
            Duration::from_secs(60),
            now,
        )
        .unwrap()
        .expect("the invocation just submitted")
}

/// Times `iters` commits on `store`, each of an invocation claimed beforehand (untimed).
fn time_commits(store: &dyn Store, first: &mut u128, iters: u64) -> Duration {
    let claims: Vec<Claim> = (0..iters)
        .map(|_| {
            *first += 1;
            claimed(store, *first)
        })
        .collect();
    let now = Timestamp::from_system_time(std::time::SystemTime::now());
    let start = std::time::Instant::now();
    for claim in &claims {
        store
            .commit(
                &claim.lease,
                Commit::outcome(Outcome::Success(vec![0; 8])),
                now,
            )
            .unwrap();
    }
    start.elapsed()
}

fn commit(c: &mut Criterion) {
    let mut g = c.benchmark_group("commit");
    let memory = MemoryStore::new();
    let mut n = 0u128;
    g.bench_function("memory", |b| {
        b.iter_custom(|iters| time_commits(&memory, &mut n, iters));
    });
    let dir = tempfile::tempdir().unwrap();
    let file = FileStore::open(dir.path()).unwrap();
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    g.bench_function("file (fsync)", |b| {
        b.iter_custom(|iters| time_commits(&file, &mut n, iters));
    });
    g.finish();
}

criterion_group!(benches, cursor, codec, commit);
criterion_main!(benches);
