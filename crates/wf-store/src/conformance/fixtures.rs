//! What every store test shares: invocation builders, a fixed clock, store helpers that name
//! the operation when it fails, and assertions on typed errors.
//!
//! The conformance topics use all of it; the backends' own tests, the runtime's tests and
//! future backends' tests use the builders and clocks instead of writing their own. Ids are
//! small numbers (`id(7)`), so a failing assertion names an invocation a reader can find in the
//! test.

use std::fmt::{Debug, Display};
use std::time::Duration;

use wf_core::{
    CallId, Failure, FailureKind, InvocationId, JournalEntry, Op, Status, TaskId, Timestamp,
    WorkerId, WorkflowIdentity,
};

use crate::error::StoreError;
use crate::model::{
    Claim, Commit, DEFAULT_MAX_RECOVERIES, InvocationRecord, Lease, NewInvocation, Outcome,
    Submitted, TaskSet,
};
use crate::store::Store;

/// An invocation of task `task` with argument bytes `args`, in the workflow `identity` makes
/// for its id; called by `parent`, if any.
fn invocation(
    n: u128,
    task: &str,
    args: &[u8],
    identity: impl FnOnce(InvocationId, TaskId) -> WorkflowIdentity,
    parent: Option<&NewInvocation>,
) -> NewInvocation {
    let id = InvocationId::from_u128(n);
    let task = TaskId::new(task);
    NewInvocation {
        id,
        call: CallId::of(&task, args),
        identity: identity(id, task.clone()),
        task,
        args: args.to_vec(),
        parent: parent.map(|p| p.id),
        not_before: None,
        max_recoveries: DEFAULT_MAX_RECOVERIES,
    }
}

/// Root invocation number `n` (id `id(n)`) of task `task` with argument bytes `args`: a new
/// workflow.
pub fn root(n: u128, task: &str, args: &[u8]) -> NewInvocation {
    invocation(n, task, args, WorkflowIdentity::new_workflow, None)
}

/// Invocation number `n`, a child of `parent` that joins `parent`'s workflow.
pub fn child(n: u128, parent: &NewInvocation, task: &str, args: &[u8]) -> NewInvocation {
    invocation(n, task, args, |_, _| parent.identity.clone(), Some(parent))
}

/// Invocation number `n`, a child of `parent` that roots a sub-workflow of `parent`'s workflow.
pub fn subworkflow(n: u128, parent: &NewInvocation, task: &str, args: &[u8]) -> NewInvocation {
    let identity = |id, task| WorkflowIdentity::new_subworkflow(id, task, &parent.identity);
    invocation(n, task, args, identity, Some(parent))
}

/// Every task the conformance tests submit invocations of. The claim helpers claim for all of
/// them; the `tasks` topic claims for smaller sets.
pub const SUITE_TASKS: &[&str] = &[
    "a",
    "ak",
    "b",
    "bad",
    "bc",
    "big",
    "c",
    "c1",
    "c2",
    "ck",
    "crashes",
    "d",
    "dk",
    "flaky",
    "good",
    "grandkid",
    "k",
    "k1",
    "k2",
    "k3",
    "kid",
    "later",
    "m",
    "now",
    "other",
    "p",
    "parent",
    "pending",
    "r",
    "r2",
    "race",
    "reads",
    "rejected-child",
    "retrying",
    "root",
    "s",
    "s2",
    "sk",
    "sub",
    "t",
    "u",
];

/// The set of [`SUITE_TASKS`]: a worker that runs every task the suite submits.
pub fn suite_tasks() -> TaskSet {
    TaskSet::new(SUITE_TASKS.iter().copied())
}

/// The set of these tasks.
pub fn tasks(names: &[&str]) -> TaskSet {
    TaskSet::new(names.iter().copied())
}

/// A fixed clock reading for tests: 2026-01-01T00:00:00Z.
pub const T0: Timestamp = Timestamp(1_767_225_600_000);

/// The lease length most tests claim with.
pub const LEASE: Duration = Duration::from_secs(30);

/// How long a blocking wait may wait for an event that does happen; it must return well before.
pub const LONG_WAIT: Duration = Duration::from_secs(10);

/// `T0` plus `secs` seconds.
pub fn at(secs: u64) -> Timestamp {
    Timestamp(T0.0 + secs * 1000)
}

/// `T0` plus `ms` milliseconds.
pub fn at_ms(ms: u64) -> Timestamp {
    Timestamp(T0.0 + ms)
}

/// The wall clock now, for the tests of blocking waits (the only ones that read it).
pub fn system_now() -> Timestamp {
    Timestamp::from_system_time(std::time::SystemTime::now())
}

/// A worker id.
pub fn worker(name: &str) -> WorkerId {
    WorkerId::new(name)
}

/// Invocation id number `n`, as the builders make them.
pub fn id(n: u128) -> InvocationId {
    InvocationId::from_u128(n)
}

/// A task failure with this message.
pub fn failure(message: &str) -> Failure {
    Failure::new(FailureKind::Task, message)
}

/// `n` journal entries with sequence numbers `from..from + n`.
pub fn entries(from: u32, n: u32) -> Vec<JournalEntry> {
    (from..from + n)
        .map(|seq| JournalEntry {
            seq,
            op: Op::Random(u64::from(seq) * 7 + 1),
        })
        .collect()
}

/// A byte pattern of `len` bytes that is not trivially compressible or constant.
pub fn pattern(len: usize, salt: u8) -> Vec<u8> {
    let mut x: u32 = 0x9E37_79B9 ^ u32::from(salt);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()[0]
        })
        .collect()
}

/// Unwraps a store result, naming the operation when it failed.
#[track_caller]
pub fn ok<T>(result: Result<T, StoreError>, what: impl Display) -> T {
    result.unwrap_or_else(|e| panic!("{what}: unexpected error: {e} ({e:?})"))
}

/// The error of a store result that must have failed.
#[track_caller]
pub fn err<T: Debug>(result: Result<T, StoreError>, what: impl Display) -> StoreError {
    match result {
        Ok(v) => panic!("{what}: expected an error, got Ok({v:?})"),
        Err(e) => e,
    }
}

/// Asserts that `result` is [`StoreError::LeaseLost`] for invocation `inv`.
#[track_caller]
pub fn assert_lease_lost<T: Debug>(result: Result<T, StoreError>, inv: InvocationId, what: &str) {
    match err(result, what) {
        StoreError::LeaseLost { invocation, .. } if invocation == inv => {}
        other => panic!("{what}: expected LeaseLost for {inv}, got {other:?}"),
    }
}

/// Asserts that `result` is [`StoreError::InvocationNotFound`] for invocation `inv`.
#[track_caller]
pub fn assert_not_found<T: Debug>(result: Result<T, StoreError>, inv: InvocationId, what: &str) {
    match err(result, what) {
        StoreError::InvocationNotFound(i) if i == inv => {}
        other => panic!("{what}: expected InvocationNotFound({inv}), got {other:?}"),
    }
}

/// Asserts that `result` is [`StoreError::InvalidCommit`] for invocation `inv`.
#[track_caller]
pub fn assert_invalid<T: Debug>(result: Result<T, StoreError>, inv: InvocationId, what: &str) {
    match err(result, what) {
        StoreError::InvalidCommit { invocation, .. } if invocation == inv => {}
        other => panic!("{what}: expected InvalidCommit for {inv}, got {other:?}"),
    }
}

/// Submits `inv` at `now`, asserting that it is new.
#[track_caller]
pub fn submit(store: &dyn Store, inv: &NewInvocation, now: Timestamp) {
    let r = ok(store.submit(inv.clone(), now), format!("submit {}", inv.id));
    assert_eq!(r, Submitted::Created, "submit {} should create it", inv.id);
}

/// Claims at `now` and asserts that invocation `expected` is the one claimed.
#[track_caller]
pub fn claim_expect(store: &dyn Store, w: &str, now: Timestamp, expected: InvocationId) -> Claim {
    let claim = ok(store.claim(&worker(w), &suite_tasks(), LEASE, now), format!("claim by {w}"))
        .unwrap_or_else(|| panic!(
            "claim by {w} at {now:?}: expected {expected}, got nothing (is its task in SUITE_TASKS?)"
        ));
    assert_eq!(
        claim.lease.invocation, expected,
        "claim by {w}: claimed the wrong invocation"
    );
    claim
}

/// Asserts that a claim at `now` finds nothing; `why` says why nothing should be there.
#[track_caller]
pub fn assert_nothing_claimable(store: &dyn Store, now: Timestamp, why: &str) {
    let claim = ok(
        store.claim(&worker("idle"), &suite_tasks(), LEASE, now),
        "claim",
    );
    assert!(
        claim.is_none(),
        "{why}: expected nothing claimable, but {:?} was claimed",
        claim.map(|c| c.lease.invocation)
    );
}

/// The stored record of `inv`, which must exist.
#[track_caller]
pub fn record(store: &dyn Store, inv: InvocationId) -> InvocationRecord {
    ok(store.invocation(inv), format!("invocation {inv}"))
}

/// The status of `inv`, which must exist.
#[track_caller]
pub fn status(store: &dyn Store, inv: InvocationId) -> Status {
    record(store, inv).state.status
}

/// Commits `c` under `lease` at `now`, which must succeed.
#[track_caller]
pub fn commit(store: &dyn Store, lease: &Lease, c: Commit, now: Timestamp) {
    ok(
        store.commit(lease, c, now),
        format!("commit of {}", lease.invocation),
    );
}

/// Commits success with `result` under `lease` at `now`, which must succeed.
#[track_caller]
pub fn succeed(store: &dyn Store, lease: &Lease, result: &[u8], now: Timestamp) {
    commit(
        store,
        lease,
        Commit::outcome(Outcome::Success(result.to_vec())),
        now,
    );
}

/// Commits, under `lease` at `now`, the start of `children` and a suspension waiting on all of
/// them (what a body that starts children and joins them commits).
#[track_caller]
pub fn start_and_wait(
    store: &dyn Store,
    lease: &Lease,
    children: &[&NewInvocation],
    now: Timestamp,
) {
    commit(
        store,
        lease,
        Commit {
            children: children.iter().map(|c| (*c).clone()).collect(),
            ..Commit::outcome(Outcome::Waiting {
                on: children.iter().map(|c| c.id).collect(),
            })
        },
        now,
    );
}

/// Submits `inv` at `now`, claims it (it must be the only runnable one) and commits success.
#[track_caller]
pub fn run_to_success(store: &dyn Store, inv: &NewInvocation, now: Timestamp) {
    submit(store, inv, now);
    let c = claim_expect(store, "runner", now, inv.id);
    succeed(store, &c.lease, b"done", now);
}

/// A commit that touches everything a commit can: journal entries from `seq`, a data write, a
/// child submission (`child_n`) and a success outcome. Used to show a rejected commit wrote
/// nothing.
pub fn everything(parent: &NewInvocation, seq: u32, child_n: u128) -> Commit {
    Commit {
        journal: entries(seq, 2),
        data: vec![("rejected-key".to_owned(), b"rejected".to_vec())],
        children: vec![child(child_n, parent, "rejected-child", b"c")],
        outcome: Outcome::Success(b"rejected result".to_vec()),
        ..Commit::outcome(Outcome::Released)
    }
}

/// Asserts that a commit built by [`everything`] left no trace.
#[track_caller]
pub fn assert_not_written(
    store: &dyn Store,
    inv: &NewInvocation,
    journal_len: usize,
    child_n: u128,
) {
    let journal = ok(store.journal(inv.id), "journal");
    assert_eq!(
        journal.len(),
        journal_len,
        "a rejected commit's journal entries must not be visible"
    );
    assert_eq!(
        ok(
            store.get_data(inv.identity.workflow_id, "rejected-key"),
            "get_data"
        ),
        None,
        "a rejected commit's data write must not be visible"
    );
    assert!(
        ok(store.data_keys(inv.identity.workflow_id), "data_keys").is_empty(),
        "a rejected commit must not create data keys"
    );
    assert_not_found(
        store.invocation(id(child_n)),
        id(child_n),
        "a rejected commit's child must not be submitted",
    );
    assert!(
        !ok(
            store.workflow_invocations(inv.identity.workflow_id),
            "members"
        )
        .contains(&id(child_n)),
        "a rejected commit's child must not join the workflow"
    );
    let rec = record(store, inv.id);
    assert_ne!(
        rec.state.result.as_deref(),
        Some(&b"rejected result"[..]),
        "a rejected commit's result must not be visible"
    );
}

/// Claims at `now` with a worker that runs only `task`, and asserts something was claimed (and
/// that it is of `task`).
#[track_caller]
pub fn claim_task(store: &dyn Store, task: &str, now: Timestamp) -> Claim {
    let claim = ok(
        store.claim(&worker("w"), &tasks(&[task]), LEASE, now),
        format!("claim of task {task}"),
    )
    .unwrap_or_else(|| panic!("claim of task {task} at {now:?}: nothing claimable"));
    assert_eq!(claim.record.spec.task.as_str(), task);
    claim
}

/// A commit of a suspension (no journal, data or children).
pub fn suspended(suspension: crate::model::Suspension) -> Commit {
    Commit::outcome(Outcome::Suspended(suspension))
}
