//! The conformance suite every backend must pass unchanged (feature `testing`).
//!
//! A backend's test file instantiates it with one line:
//!
//! ```text
//! wf_store::conformance_tests!(|| wf_store::conformance::Subject::new(wf_store::MemoryStore::new()));
//! ```
//!
//! Each test gets a fresh, empty store from the factory. A [`Subject`] may carry a guard (for
//! example a temporary directory) that lives as long as the store.
//!
//! The tests use only the [`Store`] trait, never a backend's internals, and drive the clock
//! explicitly: every operation takes `now`, so a test passes [`T0`], `T0 + 30 s`, … instead of
//! sleeping. The blocking waits (`wait_final`, `wait_for_work`) are the only operations that
//! read the real clock; their tests synchronise threads with barriers, never with sleeps.
// Test support: a failed expectation is a failed test, so unwrap and panic are the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{Debug, Display};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use wf_core::{
    CallId, ChildOutcome, Failure, FailureKind, InvocationId, JournalEntry, Op, Status, TaskId,
    Timestamp, WorkerId, WorkflowIdentity,
};

use crate::error::StoreError;
use crate::model::{
    Claim, Commit, DEFAULT_MAX_RECOVERIES, InvocationRecord, Lease, NewInvocation, Outcome,
    Submitted,
};
use crate::store::Store;

/// A store under test, and whatever must outlive it.
pub struct Subject {
    /// The store.
    pub store: Arc<dyn Store>,
    _guard: Box<dyn Any + Send>,
}

impl Subject {
    /// A store with nothing else to keep alive.
    pub fn new(store: impl Store) -> Self {
        Self {
            store: Arc::new(store),
            _guard: Box::new(()),
        }
    }

    /// A store with a guard (a temporary directory, a server handle) that must outlive it.
    pub fn with_guard(store: impl Store, guard: impl Any + Send) -> Self {
        Self {
            store: Arc::new(store),
            _guard: Box::new(guard),
        }
    }
}

// ----- helpers -----------------------------------------------------------------------------------

/// A root invocation of task `task` with argument bytes `args`.
pub fn root(n: u128, task: &str, args: &[u8]) -> NewInvocation {
    let id = InvocationId::from_u128(n);
    let task = TaskId::new(task);
    NewInvocation {
        id,
        call: CallId::of(&task, args),
        identity: WorkflowIdentity::new_workflow(id, task.clone()),
        task,
        args: args.to_vec(),
        parent: None,
        not_before: None,
        max_recoveries: DEFAULT_MAX_RECOVERIES,
    }
}

/// A child of `parent` that joins `parent`'s workflow.
pub fn child(n: u128, parent: &NewInvocation, task: &str, args: &[u8]) -> NewInvocation {
    let task = TaskId::new(task);
    NewInvocation {
        id: InvocationId::from_u128(n),
        call: CallId::of(&task, args),
        identity: parent.identity.clone(),
        task,
        args: args.to_vec(),
        parent: Some(parent.id),
        not_before: None,
        max_recoveries: DEFAULT_MAX_RECOVERIES,
    }
}

/// A child of `parent` that roots a sub-workflow of `parent`'s workflow.
pub fn subworkflow(n: u128, parent: &NewInvocation, task: &str, args: &[u8]) -> NewInvocation {
    let id = InvocationId::from_u128(n);
    let task = TaskId::new(task);
    NewInvocation {
        id,
        call: CallId::of(&task, args),
        identity: WorkflowIdentity::new_subworkflow(id, task.clone(), &parent.identity),
        task,
        args: args.to_vec(),
        parent: Some(parent.id),
        not_before: None,
        max_recoveries: DEFAULT_MAX_RECOVERIES,
    }
}

/// A fixed clock reading for tests: 2026-01-01T00:00:00Z.
pub const T0: Timestamp = Timestamp(1_767_225_600_000);

/// The lease length most tests claim with.
const LEASE: Duration = Duration::from_secs(30);

/// `T0` plus `secs` seconds.
fn at(secs: u64) -> Timestamp {
    Timestamp(T0.0 + secs * 1000)
}

/// `T0` plus `ms` milliseconds.
fn at_ms(ms: u64) -> Timestamp {
    Timestamp(T0.0 + ms)
}

fn worker(name: &str) -> WorkerId {
    WorkerId::new(name)
}

fn id(n: u128) -> InvocationId {
    InvocationId::from_u128(n)
}

fn failure(message: &str) -> Failure {
    Failure::new(FailureKind::Task, message)
}

/// `n` journal entries with sequence numbers `from..from + n`.
fn entries(from: u32, n: u32) -> Vec<JournalEntry> {
    (from..from + n)
        .map(|seq| JournalEntry {
            seq,
            op: Op::Random(u64::from(seq) * 7 + 1),
        })
        .collect()
}

/// Unwraps a store result, naming the operation when it failed.
#[track_caller]
fn ok<T>(result: Result<T, StoreError>, what: impl Display) -> T {
    result.unwrap_or_else(|e| panic!("{what}: unexpected error: {e} ({e:?})"))
}

/// The error of a store result that must have failed.
#[track_caller]
fn err<T: Debug>(result: Result<T, StoreError>, what: impl Display) -> StoreError {
    match result {
        Ok(v) => panic!("{what}: expected an error, got Ok({v:?})"),
        Err(e) => e,
    }
}

#[track_caller]
fn assert_lease_lost<T: Debug>(result: Result<T, StoreError>, inv: InvocationId, what: &str) {
    match err(result, what) {
        StoreError::LeaseLost { invocation, .. } if invocation == inv => {}
        other => panic!("{what}: expected LeaseLost for {inv}, got {other:?}"),
    }
}

#[track_caller]
fn assert_not_found<T: Debug>(result: Result<T, StoreError>, inv: InvocationId, what: &str) {
    match err(result, what) {
        StoreError::InvocationNotFound(i) if i == inv => {}
        other => panic!("{what}: expected InvocationNotFound({inv}), got {other:?}"),
    }
}

#[track_caller]
fn assert_invalid<T: Debug>(result: Result<T, StoreError>, inv: InvocationId, what: &str) {
    match err(result, what) {
        StoreError::InvalidCommit { invocation, .. } if invocation == inv => {}
        other => panic!("{what}: expected InvalidCommit for {inv}, got {other:?}"),
    }
}

#[track_caller]
fn submit(store: &dyn Store, inv: &NewInvocation, now: Timestamp) {
    let r = ok(store.submit(inv.clone(), now), format!("submit {}", inv.id));
    assert_eq!(r, Submitted::Created, "submit {} should create it", inv.id);
}

/// Claims at `now` and asserts that invocation `expected` is the one claimed.
#[track_caller]
fn claim_expect(store: &dyn Store, w: &str, now: Timestamp, expected: InvocationId) -> Claim {
    let claim = ok(store.claim(&worker(w), LEASE, now), format!("claim by {w}"))
        .unwrap_or_else(|| panic!("claim by {w} at {now:?}: expected {expected}, got nothing"));
    assert_eq!(
        claim.lease.invocation, expected,
        "claim by {w}: claimed the wrong invocation"
    );
    claim
}

#[track_caller]
fn assert_nothing_claimable(store: &dyn Store, now: Timestamp, why: &str) {
    let claim = ok(store.claim(&worker("idle"), LEASE, now), "claim");
    assert!(
        claim.is_none(),
        "{why}: expected nothing claimable, but {:?} was claimed",
        claim.map(|c| c.lease.invocation)
    );
}

#[track_caller]
fn record(store: &dyn Store, inv: InvocationId) -> InvocationRecord {
    ok(store.invocation(inv), format!("invocation {inv}"))
}

#[track_caller]
fn status(store: &dyn Store, inv: InvocationId) -> Status {
    record(store, inv).state.status
}

#[track_caller]
fn commit(store: &dyn Store, lease: &Lease, c: Commit, now: Timestamp) {
    ok(
        store.commit(lease, c, now),
        format!("commit of {}", lease.invocation),
    );
}

#[track_caller]
fn succeed(store: &dyn Store, lease: &Lease, result: &[u8], now: Timestamp) {
    commit(
        store,
        lease,
        Commit::outcome(Outcome::Success(result.to_vec())),
        now,
    );
}

/// Submits `inv` at `now`, claims it (it must be the only runnable one) and commits success.
#[track_caller]
fn run_to_success(store: &dyn Store, inv: &NewInvocation, now: Timestamp) {
    submit(store, inv, now);
    let c = claim_expect(store, "runner", now, inv.id);
    succeed(store, &c.lease, b"done", now);
}

/// A commit that touches everything a commit can: journal entries from `seq`, a data write, a
/// child submission (`child_n`) and a success outcome. Used to show a rejected commit wrote
/// nothing.
fn everything(parent: &NewInvocation, seq: u32, child_n: u128) -> Commit {
    Commit {
        journal: entries(seq, 2),
        data: vec![("rejected-key".to_owned(), b"rejected".to_vec())],
        children: vec![child(child_n, parent, "rejected-child", b"c")],
        outcome: Outcome::Success(b"rejected result".to_vec()),
    }
}

/// Asserts that a commit built by [`everything`] left no trace.
#[track_caller]
fn assert_not_written(store: &dyn Store, inv: &NewInvocation, journal_len: usize, child_n: u128) {
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

/// A byte pattern of `len` bytes that is not trivially compressible or constant.
fn pattern(len: usize, salt: u8) -> Vec<u8> {
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

// ----- submit ------------------------------------------------------------------------------------

/// Submitting the same invocation twice stores one; the stored record is the submitted call.
pub fn submit_is_idempotent(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"a");
    assert_eq!(
        ok(store.submit(inv.clone(), T0), "submit"),
        Submitted::Created
    );
    assert_eq!(
        ok(store.submit(inv.clone(), at(5)), "resubmit"),
        Submitted::AlreadyExists,
        "an identical resubmission must report AlreadyExists"
    );
    assert_eq!(
        ok(store.counts(), "counts").total(),
        1,
        "one invocation stored"
    );

    let rec = record(store, inv.id);
    assert_eq!(rec.id(), inv.id);
    assert_eq!(rec.spec.task, inv.task);
    assert_eq!(rec.spec.call, inv.call);
    assert_eq!(rec.spec.args, inv.args);
    assert_eq!(rec.spec.identity, inv.identity);
    assert_eq!(rec.spec.parent, None);
    assert_eq!(
        rec.spec.created_at, T0,
        "a resubmission must not change created_at"
    );
    assert!(rec.is_root());
    assert_eq!(rec.state.status, Status::Pending, "submitted means pending");
    assert_eq!(rec.state.attempts, 0, "nothing claimed it yet");
    assert_eq!(rec.state.lease, None);

    // A resubmission while it runs changes nothing either.
    let c = claim_expect(store, "w", at(6), inv.id);
    assert_eq!(
        ok(store.submit(inv.clone(), at(7)), "resubmit while running"),
        Submitted::AlreadyExists
    );
    let rec = record(store, inv.id);
    assert_eq!(
        rec.state.status,
        Status::Running,
        "a resubmission must not re-queue a running invocation"
    );
    assert_eq!(rec.state.attempts, 1);
    assert_nothing_claimable(store, at(7), "a resubmission must not queue a second copy");
    succeed(store, &c.lease, b"r", at(8));
    assert_eq!(
        ok(store.submit(inv.clone(), at(9)), "resubmit when finished"),
        Submitted::AlreadyExists
    );
    assert_eq!(status(store, inv.id), Status::Success);
    assert_eq!(ok(store.counts(), "counts").total(), 1);
}

/// The same id for a different call is a conflict, and the stored invocation is untouched.
pub fn submit_conflict_is_refused(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"a");
    submit(store, &inv, T0);

    let other_args = root(1, "t", b"b");
    match err(store.submit(other_args, T0), "submit with other args") {
        StoreError::Conflict(i) => assert_eq!(i, inv.id),
        other => panic!("other args under the same id: expected Conflict, got {other:?}"),
    }
    let mut other_task = root(1, "u", b"a");
    other_task.identity = inv.identity.clone();
    match err(store.submit(other_task, T0), "submit with other task") {
        StoreError::Conflict(i) => assert_eq!(i, inv.id),
        other => panic!("another task under the same id: expected Conflict, got {other:?}"),
    }
    let mut other_parent = inv.clone();
    other_parent.parent = Some(id(99));
    match err(store.submit(other_parent, T0), "submit with other parent") {
        StoreError::Conflict(i) => assert_eq!(i, inv.id),
        other => panic!("another parent under the same id: expected Conflict, got {other:?}"),
    }

    let rec = record(store, inv.id);
    assert_eq!(
        rec.spec.args, b"a",
        "a refused submission must not overwrite"
    );
    assert_eq!(rec.spec.task, inv.task);
    assert_eq!(rec.spec.parent, None);
    assert_eq!(ok(store.counts(), "counts").total(), 1);
}

// ----- claim -------------------------------------------------------------------------------------

/// Claims hand out the oldest runnable invocation first, mark it running under a lease, and
/// return `None` when nothing is runnable.
pub fn claim_is_fifo_and_leases(s: Subject) {
    let store = &*s.store;
    assert_nothing_claimable(store, T0, "an empty store");

    // Ids deliberately out of numeric order: submission order decides.
    let invs = [root(3, "t", b"3"), root(1, "t", b"1"), root(2, "t", b"2")];
    for (i, inv) in invs.iter().enumerate() {
        submit(store, inv, at_ms(i as u64));
    }
    for (i, inv) in invs.iter().enumerate() {
        let w = format!("w{i}");
        let now = at(10 + i as u64);
        let c = claim_expect(store, &w, now, inv.id);
        assert_eq!(
            c.lease.worker,
            worker(&w),
            "lease names the claiming worker"
        );
        assert_eq!(c.lease.attempt, 1, "first claim is attempt 1");
        assert_eq!(
            c.lease.expires_at,
            now.saturating_add(LEASE),
            "lease expires at now + lease_for"
        );
        assert_eq!(c.record.id(), inv.id);
        assert_eq!(c.record.spec.args, inv.args, "claim returns the arguments");
        assert_eq!(c.record.state.status, Status::Running);
        assert_eq!(c.record.state.attempts, 1);
        let info = c
            .record
            .state
            .lease
            .clone()
            .unwrap_or_else(|| panic!("a running record carries its lease"));
        assert_eq!(info.worker, worker(&w));
        assert_eq!(info.expires_at, c.lease.expires_at);
        assert!(c.journal.is_empty(), "a fresh invocation has no journal");

        let stored = record(store, inv.id);
        assert_eq!(
            stored.state, c.record.state,
            "claim's record is the stored one"
        );
    }
    assert_nothing_claimable(store, at(20), "everything is running under a live lease");
    let counts = ok(store.counts(), "counts");
    assert_eq!(counts.get(Status::Running), 3);
    assert_eq!(counts.get(Status::Pending), 0);
}

/// A claim returns the journal so far, and the attempt number keeps growing.
pub fn claim_returns_journal(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"a");
    submit(store, &inv, T0);
    let c1 = claim_expect(store, "w1", T0, inv.id);
    commit(
        store,
        &c1.lease,
        Commit {
            journal: entries(0, 3),
            ..Commit::outcome(Outcome::Released)
        },
        at(1),
    );
    assert_eq!(
        status(store, inv.id),
        Status::Pending,
        "released means pending"
    );

    let c2 = claim_expect(store, "w2", at(2), inv.id);
    assert_eq!(c2.lease.attempt, 2, "second claim is attempt 2");
    assert_eq!(c2.record.state.attempts, 2);
    assert_eq!(
        c2.journal,
        entries(0, 3),
        "claim returns the stored journal"
    );
    assert_eq!(ok(store.journal(inv.id), "journal"), entries(0, 3));
}

/// Many threads claiming at once never get the same invocation: each of several hundred
/// invocations is claimed exactly once. Fails when a backend's claim is not atomic.
pub fn concurrent_claims_never_duplicate(s: Subject) {
    const INVOCATIONS: u128 = 300;
    const THREADS: usize = 8;
    let store = &*s.store;
    for n in 1..=INVOCATIONS {
        submit(store, &root(n, "race", &n.to_le_bytes()), T0);
    }
    let barrier = Barrier::new(THREADS);
    // (invocation, attempt, what its commit returned) per claim, per thread.
    type Claimed = Vec<(InvocationId, u32, Result<(), String>)>;
    let results: Vec<Claimed> = thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let w = worker(&format!("racer-{t}"));
                    let mut got = Vec::new();
                    barrier.wait();
                    loop {
                        match store.claim(&w, LEASE, at(1)) {
                            Ok(Some(c)) => {
                                let done = Commit::outcome(Outcome::Success(w.as_str().into()));
                                let r = store.commit(&c.lease, done, at(1));
                                got.push((
                                    c.lease.invocation,
                                    c.lease.attempt,
                                    r.map_err(|e| e.to_string()),
                                ));
                            }
                            Ok(None) => break,
                            Err(e) => panic!("claim by {w} failed: {e}"),
                        }
                    }
                    got
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });

    let mut claimed: BTreeMap<InvocationId, usize> = BTreeMap::new();
    for (inv, _, _) in results.iter().flatten() {
        *claimed.entry(*inv).or_default() += 1;
    }
    let duplicated: Vec<_> = claimed.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        duplicated.is_empty(),
        "{} invocations claimed more than once (id, times): {duplicated:?}",
        duplicated.len()
    );
    assert_eq!(
        claimed.len() as u128,
        INVOCATIONS,
        "every invocation is claimed exactly once"
    );
    for (inv, attempt, committed) in results.iter().flatten() {
        assert_eq!(*attempt, 1, "{inv} was claimed as attempt {attempt}");
        if let Err(e) = committed {
            panic!("the one holder of {inv} could not commit: {e}");
        }
    }
    let counts = ok(store.counts(), "counts");
    assert_eq!(counts.get(Status::Success) as u128, INVOCATIONS);
    assert_eq!(counts.total() as u128, INVOCATIONS);
}

// ----- leases ------------------------------------------------------------------------------------

/// Renewing extends the lease: the invocation is not recovered at the old expiry and the
/// holder can commit after it.
pub fn renew_extends_lease(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"a");
    submit(store, &inv, T0);
    let c = claim_expect(store, "w", T0, inv.id);
    assert_eq!(c.lease.expires_at, at(30));

    let renewed = ok(store.renew(&c.lease, LEASE, at(20)), "renew");
    assert_eq!(renewed.expires_at, at(50), "renewed until now + lease_for");
    assert_eq!(renewed.invocation, c.lease.invocation);
    assert_eq!(renewed.worker, c.lease.worker);
    assert_eq!(
        renewed.attempt, c.lease.attempt,
        "renewal keeps the attempt"
    );
    let info = record(store, inv.id).state.lease;
    assert_eq!(
        info.map(|l| l.expires_at),
        Some(at(50)),
        "stored lease is extended"
    );

    assert_eq!(
        ok(store.recover_expired(at(40)), "recover"),
        Vec::<InvocationId>::new(),
        "a renewed lease is not expired at the old expiry"
    );
    assert_nothing_claimable(store, at(40), "the renewed lease still holds");
    succeed(store, &renewed, b"ok", at(45));
    assert_eq!(status(store, inv.id), Status::Success);
}

/// A lease is valid through its expiry instant and void one millisecond later.
pub fn lease_expiry_boundary(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"a");
    submit(store, &inv, T0);
    let c = claim_expect(store, "w", T0, inv.id);
    assert_eq!(
        ok(store.recover_expired(at(30)), "recover at expiry"),
        Vec::<InvocationId>::new(),
        "a lease is not expired at its expiry instant"
    );
    let renewed = ok(store.renew(&c.lease, LEASE, at(30)), "renew at expiry");
    assert_eq!(renewed.expires_at, at(60));
    assert_eq!(
        ok(store.recover_expired(at_ms(60_001)), "recover after expiry"),
        vec![inv.id],
        "a lease is expired one millisecond after its expiry"
    );
}

/// A lease that expired by the clock can neither renew nor commit, and the rejected commit
/// writes nothing, even if nobody has recovered the invocation yet.
pub fn stale_lease_expired_cannot_commit(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"a");
    submit(store, &inv, T0);
    let c = claim_expect(store, "w", T0, inv.id);

    assert_lease_lost(
        store.renew(&c.lease, LEASE, at(31)),
        inv.id,
        "renew after expiry",
    );
    assert_lease_lost(
        store.commit(&c.lease, everything(&inv, 0, 50), at(31)),
        inv.id,
        "commit after expiry",
    );
    assert_not_written(store, &inv, 0, 50);
    let rec = record(store, inv.id);
    assert!(
        !rec.state.status.is_final(),
        "a rejected commit must not finish the invocation"
    );
    assert_eq!(
        ok(store.recover_expired(at(31)), "recover"),
        vec![inv.id],
        "the expired invocation is still recoverable"
    );
}

/// After recovery hands the invocation to another worker, the old holder's renew and commit
/// are refused and write nothing; the new holder commits normally.
pub fn stale_lease_after_takeover_cannot_commit(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"a");
    submit(store, &inv, T0);
    let old = claim_expect(store, "old", T0, inv.id);
    commit(
        store,
        &old.lease,
        Commit {
            journal: entries(0, 1),
            ..Commit::outcome(Outcome::Released)
        },
        at(1),
    );
    let old = claim_expect(store, "old", at(2), inv.id);
    assert_eq!(old.lease.attempt, 2);

    // The old worker stalls; its lease expires; a new worker takes over (claim recovers).
    let new = claim_expect(store, "new", at(40), inv.id);
    assert_eq!(new.lease.attempt, 3, "a takeover is a new attempt");
    assert_eq!(new.journal, entries(0, 1));

    // The old worker wakes up at a time its own lease would still have covered.
    assert_lease_lost(
        store.renew(&old.lease, LEASE, at(20)),
        inv.id,
        "renew by the replaced worker",
    );
    assert_lease_lost(
        store.commit(&old.lease, everything(&inv, 1, 50), at(20)),
        inv.id,
        "commit by the replaced worker",
    );
    assert_lease_lost(
        store.commit(&old.lease, everything(&inv, 1, 50), at(41)),
        inv.id,
        "commit by the replaced worker, later",
    );
    assert_not_written(store, &inv, 1, 50);
    let rec = record(store, inv.id);
    assert_eq!(rec.state.status, Status::Running);
    assert_eq!(rec.state.attempts, 3);
    assert_eq!(
        rec.state.lease.map(|l| l.worker),
        Some(worker("new")),
        "the new worker still holds it"
    );

    commit(
        store,
        &new.lease,
        Commit {
            journal: entries(1, 1),
            ..Commit::outcome(Outcome::Success(b"new".to_vec()))
        },
        at(42),
    );
    let rec = record(store, inv.id);
    assert_eq!(rec.state.status, Status::Success);
    assert_eq!(rec.state.result.as_deref(), Some(&b"new"[..]));
    assert_eq!(ok(store.journal(inv.id), "journal"), entries(0, 2));
}

/// A lease for an older attempt is refused even when the same worker holds the newer one
/// (the attempt number is the fencing token).
pub fn stale_attempt_cannot_commit(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"a");
    submit(store, &inv, T0);
    let first = claim_expect(store, "w", T0, inv.id);
    let second = claim_expect(store, "w", at(31), inv.id);
    assert_eq!(second.lease.attempt, 2);

    // The first attempt's lease, even dressed up with the current expiry.
    let stale = Lease {
        attempt: first.lease.attempt,
        ..second.lease.clone()
    };
    assert_lease_lost(
        store.renew(&stale, LEASE, at(32)),
        inv.id,
        "renew of attempt 1",
    );
    assert_lease_lost(
        store.commit(&stale, everything(&inv, 0, 50), at(32)),
        inv.id,
        "commit of attempt 1",
    );
    assert_not_written(store, &inv, 0, 50);
    assert_eq!(status(store, inv.id), Status::Running);
    succeed(store, &second.lease, b"second", at(33));
    assert_eq!(
        record(store, inv.id).state.result.as_deref(),
        Some(&b"second"[..])
    );
}

/// Cancelling a running invocation voids its lease: the worker's commit is refused.
pub fn cancelled_running_cannot_commit(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"a");
    submit(store, &inv, T0);
    let c = claim_expect(store, "w", T0, inv.id);
    ok(store.cancel(inv.id, "operator says stop", at(1)), "cancel");
    assert_lease_lost(
        store.commit(&c.lease, everything(&inv, 0, 50), at(2)),
        inv.id,
        "commit after cancel",
    );
    assert_not_written(store, &inv, 0, 50);
    let rec = record(store, inv.id);
    assert_eq!(rec.state.status, Status::Failed);
    assert_eq!(
        rec.state.error.map(|e| e.kind),
        Some(FailureKind::Cancelled)
    );
}

// ----- commit ------------------------------------------------------------------------------------

/// Success stores the result, appends the journal and drops the lease.
pub fn commit_success(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"a");
    submit(store, &inv, T0);
    let c = claim_expect(store, "w", T0, inv.id);
    commit(
        store,
        &c.lease,
        Commit {
            journal: entries(0, 3),
            ..Commit::outcome(Outcome::Success(b"result".to_vec()))
        },
        at(1),
    );
    let rec = record(store, inv.id);
    assert_eq!(rec.state.status, Status::Success);
    assert_eq!(rec.state.result.as_deref(), Some(&b"result"[..]));
    assert_eq!(rec.state.error, None);
    assert_eq!(
        rec.state.lease, None,
        "a finished invocation holds no lease"
    );
    assert_eq!(rec.state.attempts, 1);
    assert_eq!(ok(store.journal(inv.id), "journal"), entries(0, 3));
    assert_nothing_claimable(store, at(100), "a successful invocation never runs again");
    assert_lease_lost(
        store.commit(&c.lease, Commit::outcome(Outcome::Released), at(2)),
        inv.id,
        "a second commit with the same lease",
    );
}

/// Failed stores the error and is final.
pub fn commit_failed(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"a");
    submit(store, &inv, T0);
    let c = claim_expect(store, "w", T0, inv.id);
    commit(
        store,
        &c.lease,
        Commit {
            journal: entries(0, 1),
            ..Commit::outcome(Outcome::Failed(failure("boom")))
        },
        at(1),
    );
    let rec = record(store, inv.id);
    assert_eq!(rec.state.status, Status::Failed);
    assert_eq!(rec.state.error, Some(failure("boom")));
    assert_eq!(rec.state.result, None);
    assert_eq!(rec.state.lease, None);
    assert_eq!(ok(store.journal(inv.id), "journal"), entries(0, 1));
    assert_nothing_claimable(store, at(100), "a failed invocation never runs again");
}

/// Retry records the error and makes the invocation claimable again at, not before, its
/// not-before time, as the next attempt.
pub fn commit_retry_honours_not_before(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"a");
    submit(store, &inv, T0);
    let c = claim_expect(store, "w", T0, inv.id);
    commit(
        store,
        &c.lease,
        Commit {
            journal: entries(0, 2),
            ..Commit::outcome(Outcome::Retry {
                not_before: at(60),
                error: failure("flaky"),
            })
        },
        at(1),
    );
    let rec = record(store, inv.id);
    assert_eq!(rec.state.status, Status::Retry);
    assert_eq!(rec.state.not_before, Some(at(60)));
    assert_eq!(rec.state.error, Some(failure("flaky")));
    assert_eq!(rec.state.retries, 1, "one retry spent");
    assert_eq!(rec.state.lease, None);

    assert_nothing_claimable(store, at(2), "retry before its not-before time");
    assert_nothing_claimable(
        store,
        at_ms(59_999),
        "retry 1 ms before its not-before time",
    );
    let c2 = claim_expect(store, "w2", at(60), inv.id);
    assert_eq!(c2.lease.attempt, 2, "a retry is the next attempt");
    assert_eq!(c2.record.state.status, Status::Running);
    assert_eq!(c2.journal, entries(0, 2));
    succeed(store, &c2.lease, b"finally", at(61));
    let rec = record(store, inv.id);
    assert_eq!(rec.state.status, Status::Success);
    assert_eq!(rec.state.retries, 1);
    assert_eq!(rec.state.attempts, 2);
}

/// Released hands the invocation back unfinished: pending and claimable at once.
pub fn commit_released_requeues(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"a");
    submit(store, &inv, T0);
    let c = claim_expect(store, "w", T0, inv.id);
    commit(store, &c.lease, Commit::outcome(Outcome::Released), at(1));
    let rec = record(store, inv.id);
    assert_eq!(rec.state.status, Status::Pending);
    assert_eq!(rec.state.lease, None);
    assert_eq!(rec.state.retries, 0, "a release is not a retry");
    let c2 = claim_expect(store, "w2", at(1), inv.id);
    assert_eq!(c2.lease.attempt, 2);
}

/// Journal entries must continue the stored sequence; a gap, an overlap or a restart is
/// `InvalidCommit` and writes nothing (the lease stays valid).
pub fn commit_journal_must_be_contiguous(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"a");
    submit(store, &inv, T0);
    let c = claim_expect(store, "w", T0, inv.id);
    commit(
        store,
        &c.lease,
        Commit {
            journal: entries(0, 3),
            ..Commit::outcome(Outcome::Released)
        },
        at(1),
    );
    let c = claim_expect(store, "w", at(2), inv.id);

    let gap = [entries(3, 1), entries(5, 1)].concat();
    let bad: [(&str, Vec<JournalEntry>); 4] = [
        ("a gap inside the batch", gap),
        ("a batch starting after the end", entries(4, 2)),
        ("a batch overlapping the stored journal", entries(2, 2)),
        ("a batch restarting at 0", entries(0, 4)),
    ];
    for (what, journal) in bad {
        let attempt = Commit {
            journal,
            ..everything(&inv, 0, 50)
        };
        assert_invalid(store.commit(&c.lease, attempt, at(3)), inv.id, what);
        assert_not_written(store, &inv, 3, 50);
        assert_eq!(
            status(store, inv.id),
            Status::Running,
            "{what}: an invalid commit leaves the invocation running"
        );
    }
    commit(
        store,
        &c.lease,
        Commit {
            journal: entries(3, 2),
            ..Commit::outcome(Outcome::Success(b"r".to_vec()))
        },
        at(4),
    );
    assert_eq!(ok(store.journal(inv.id), "journal"), entries(0, 5));
}

/// A child submitted by a commit must name the committing invocation as its parent.
pub fn commit_child_must_name_parent(s: Subject) {
    let store = &*s.store;
    let a = root(1, "a", b"");
    let b = root(2, "b", b"");
    submit(store, &a, T0);
    submit(store, &b, T0);
    let c = claim_expect(store, "w", T0, a.id);
    let foreign = child(20, &b, "c", b"");
    assert_invalid(
        store.commit(
            &c.lease,
            Commit {
                journal: entries(0, 1),
                children: vec![foreign],
                ..Commit::outcome(Outcome::Released)
            },
            at(1),
        ),
        a.id,
        "a child naming another parent",
    );
    assert_not_found(store.invocation(id(20)), id(20), "the refused child");
    assert!(ok(store.journal(a.id), "journal").is_empty());
    assert_eq!(status(store, a.id), Status::Running);
}

// ----- waiting parents ---------------------------------------------------------------------------

/// A parent waiting on two children wakes only when both are final; a failed child counts
/// as final.
pub fn parent_wakes_when_all_children_final(s: Subject) {
    let store = &*s.store;
    let p = root(1, "parent", b"");
    let c1 = child(2, &p, "c1", b"1");
    let c2 = child(3, &p, "c2", b"2");
    submit(store, &p, T0);
    let pc = claim_expect(store, "w", T0, p.id);
    commit(
        store,
        &pc.lease,
        Commit {
            journal: entries(0, 2),
            children: vec![c1.clone(), c2.clone()],
            ..Commit::outcome(Outcome::Waiting {
                on: vec![c1.id, c2.id],
            })
        },
        at(1),
    );
    let rec = record(store, p.id);
    assert_eq!(rec.state.status, Status::Waiting);
    assert_eq!(rec.state.lease, None);
    let mut on = rec.state.waiting_on.clone();
    on.sort();
    let mut expected = vec![c1.id, c2.id];
    expected.sort();
    assert_eq!(on, expected, "waiting on both children");
    for c in [&c1, &c2] {
        let r = record(store, c.id);
        assert_eq!(
            r.state.status,
            Status::Pending,
            "a submitted child is pending"
        );
        assert_eq!(r.spec.parent, Some(p.id));
        assert_eq!(r.spec.identity, p.identity);
    }

    let k1 = claim_expect(store, "w", at(2), c1.id);
    succeed(store, &k1.lease, b"one", at(3));
    assert_eq!(
        status(store, p.id),
        Status::Waiting,
        "one of two children final: the parent still waits"
    );
    let k2 = claim_expect(store, "w", at(4), c2.id);
    assert_nothing_claimable(store, at(4), "the parent waits on a running child");
    commit(
        store,
        &k2.lease,
        Commit::outcome(Outcome::Failed(failure("child broke"))),
        at(5),
    );
    assert_eq!(
        status(store, p.id),
        Status::Pending,
        "both children final (one failed): the parent is runnable"
    );
    let again = claim_expect(store, "w", at(6), p.id);
    assert_eq!(again.lease.attempt, 2);
    assert_eq!(
        again.journal,
        entries(0, 2),
        "the woken parent replays its journal"
    );
}

/// Waiting on children that are already final makes the parent pending at once; waiting on
/// some final and some unfinished children waits for the unfinished ones.
pub fn waiting_on_finished_children_is_pending_at_once(s: Subject) {
    let store = &*s.store;
    let p = root(1, "parent", b"");
    let c1 = child(2, &p, "c1", b"");
    let c2 = child(3, &p, "c2", b"");
    submit(store, &p, T0);
    let pc = claim_expect(store, "w", T0, p.id);
    commit(
        store,
        &pc.lease,
        Commit {
            children: vec![c1.clone()],
            ..Commit::outcome(Outcome::Released)
        },
        at(1),
    );
    let k = claim_expect(store, "w", at(2), c1.id);
    succeed(store, &k.lease, b"one", at(2));
    assert_eq!(
        status(store, p.id),
        Status::Pending,
        "a child finishing does not disturb a parent that is not waiting"
    );

    let pc = claim_expect(store, "w", at(3), p.id);
    commit(
        store,
        &pc.lease,
        Commit::outcome(Outcome::Waiting { on: vec![c1.id] }),
        at(4),
    );
    assert_eq!(
        status(store, p.id),
        Status::Pending,
        "waiting only on final children: pending at once"
    );
    let pc = claim_expect(store, "w", at(5), p.id);
    assert_eq!(pc.lease.attempt, 3);

    // One final child and one new one: waits for the new one only.
    commit(
        store,
        &pc.lease,
        Commit {
            children: vec![c2.clone()],
            ..Commit::outcome(Outcome::Waiting {
                on: vec![c1.id, c2.id],
            })
        },
        at(6),
    );
    let rec = record(store, p.id);
    assert_eq!(rec.state.status, Status::Waiting);
    assert!(rec.state.waiting_on.contains(&c2.id));
    let k = claim_expect(store, "w", at(7), c2.id);
    succeed(store, &k.lease, b"two", at(8));
    assert_eq!(status(store, p.id), Status::Pending);
}

/// Waiting on something that is not the committer's child is `InvalidCommit`, and writes
/// nothing.
pub fn waiting_on_non_child_is_invalid(s: Subject) {
    let store = &*s.store;
    let a = root(1, "a", b"");
    let b = root(2, "b", b"");
    let b_child = child(3, &b, "bc", b"");
    submit(store, &a, T0);
    submit(store, &b, T0);
    let ca = claim_expect(store, "w", T0, a.id);
    let cb = claim_expect(store, "w", T0, b.id);
    commit(
        store,
        &cb.lease,
        Commit {
            children: vec![b_child.clone()],
            ..Commit::outcome(Outcome::Waiting {
                on: vec![b_child.id],
            })
        },
        at(1),
    );

    for (what, on) in [
        ("waiting on another root", b.id),
        ("waiting on another invocation's child", b_child.id),
        ("waiting on an unknown invocation", id(77)),
        ("waiting on itself", a.id),
    ] {
        assert_invalid(
            store.commit(
                &ca.lease,
                Commit {
                    outcome: Outcome::Waiting { on: vec![on] },
                    ..everything(&a, 0, 50)
                },
                at(2),
            ),
            a.id,
            what,
        );
        assert_not_written(store, &a, 0, 50);
        assert_eq!(
            status(store, a.id),
            Status::Running,
            "{what}: still running"
        );
    }
    assert_eq!(status(store, b.id), Status::Waiting, "b is not disturbed");
}

/// Many children finishing concurrently on several threads wake their parent exactly once,
/// and only after every child is final.
pub fn parent_wakes_once_under_concurrent_children(s: Subject) {
    const CHILDREN: u128 = 40;
    const THREADS: usize = 4;
    let store = &*s.store;
    let p = root(1, "parent", b"");
    let kids: Vec<NewInvocation> = (0..CHILDREN)
        .map(|n| child(100 + n, &p, "kid", &n.to_le_bytes()))
        .collect();
    let kid_ids: Vec<InvocationId> = kids.iter().map(|k| k.id).collect();
    submit(store, &p, T0);
    let pc = claim_expect(store, "w", T0, p.id);
    commit(
        store,
        &pc.lease,
        Commit {
            children: kids,
            ..Commit::outcome(Outcome::Waiting {
                on: kid_ids.clone(),
            })
        },
        at(1),
    );

    let pid = p.id;
    let parent_claims = Mutex::new(Vec::new());
    let barrier = Barrier::new(THREADS);
    thread::scope(|scope| {
        for t in 0..THREADS {
            let (barrier, parent_claims, kid_ids) = (&barrier, &parent_claims, &kid_ids);
            scope.spawn(move || {
                let w = worker(&format!("w{t}"));
                barrier.wait();
                while let Some(c) = ok(store.claim(&w, LEASE, at(2)), "claim") {
                    if c.lease.invocation == pid {
                        let kids = ok(store.invocations(kid_ids), "children");
                        let unfinished: Vec<_> = kids
                            .iter()
                            .filter(|k| !k.state.status.is_final())
                            .map(InvocationRecord::id)
                            .collect();
                        parent_claims
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push((c.lease.attempt, unfinished));
                        continue;
                    }
                    let n = c.record.spec.args[0];
                    let outcome = if n % 3 == 0 {
                        Outcome::Failed(failure("kid failed"))
                    } else {
                        Outcome::Success(vec![n])
                    };
                    commit(store, &c.lease, Commit::outcome(outcome), at(2));
                }
            });
        }
    });
    let parent_claims = parent_claims
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    assert_eq!(
        parent_claims.len(),
        1,
        "the parent must be claimed exactly once after its children: {parent_claims:?}"
    );
    let (attempt, unfinished) = &parent_claims[0];
    assert_eq!(*attempt, 2, "the woken parent's second attempt");
    assert!(
        unfinished.is_empty(),
        "the parent ran while children were unfinished: {unfinished:?}"
    );
}

// ----- not-before --------------------------------------------------------------------------------

/// A submitted invocation with a not-before time is not claimable before it, is claimable at
/// it, and does not hold up invocations behind it.
pub fn submitted_not_before_is_honoured(s: Subject) {
    let store = &*s.store;
    let mut delayed = root(1, "later", b"");
    delayed.not_before = Some(at(10));
    let now = root(2, "now", b"");
    submit(store, &delayed, T0);
    submit(store, &now, T0);
    assert_eq!(record(store, delayed.id).state.not_before, Some(at(10)));

    let c = claim_expect(store, "w", T0, now.id);
    succeed(store, &c.lease, b"", T0);
    assert_nothing_claimable(store, at(1), "before the not-before time");
    assert_nothing_claimable(store, at_ms(9_999), "1 ms before the not-before time");
    let c = claim_expect(store, "w", at(10), delayed.id);
    assert_eq!(c.lease.attempt, 1);
    assert_eq!(c.record.state.status, Status::Running);
}

/// `next_due` reports the earliest moment something becomes claimable by the clock alone: a
/// retry's or a delayed submission's not-before time, or the first millisecond after a lease
/// expires. Claiming at that moment succeeds; a millisecond earlier nothing is claimable.
pub fn next_due_reports_earliest_clock_event(s: Subject) {
    let store = &*s.store;
    assert_eq!(ok(store.next_due(), "next_due"), None, "an empty store");
    let a = root(1, "a", b"");
    let b = root(2, "b", b"");
    let mut c = root(3, "c", b"");
    c.not_before = Some(at(50));
    submit(store, &a, T0);
    submit(store, &b, T0);
    submit(store, &c, T0);
    let ca = claim_expect(store, "w", T0, a.id); // lease until 30 s
    let cb = claim_expect(store, "w", T0, b.id);
    commit(
        store,
        &cb.lease,
        Commit::outcome(Outcome::Retry {
            not_before: at(20),
            error: failure("again"),
        }),
        at(1),
    );

    // Retry at 20 s < lease expiry after 30 s < delayed start at 50 s.
    assert_eq!(
        ok(store.next_due(), "next_due"),
        Some(at(20)),
        "the retry is first"
    );
    assert_nothing_claimable(store, at_ms(19_999), "before the retry is due");
    let cb = claim_expect(store, "w", at(20), b.id); // lease until 50 s

    assert_eq!(
        ok(store.next_due(), "next_due"),
        Some(at_ms(30_001)),
        "a's lease (valid through 30 s) is void from 30.001 s"
    );
    assert_nothing_claimable(store, at(30), "a's lease is still valid at its expiry");
    let ca2 = claim_expect(store, "w2", at_ms(30_001), a.id); // lease until 60.001 s
    assert_eq!(ca2.lease.attempt, 2);
    assert_lease_lost(
        store.commit(&ca.lease, Commit::outcome(Outcome::Released), at(31)),
        a.id,
        "a's first attempt",
    );

    assert_eq!(
        ok(store.next_due(), "next_due"),
        Some(at(50)),
        "c's delayed start"
    );
    assert_nothing_claimable(store, at_ms(49_999), "before c is due");
    let cc = claim_expect(store, "w", at(50), c.id);
    for lease in [&ca2.lease, &cb.lease, &cc.lease] {
        succeed(store, lease, b"", at(50));
    }
    assert_eq!(
        ok(store.next_due(), "next_due"),
        None,
        "nothing delayed and no lease left"
    );
}

// ----- recovery ----------------------------------------------------------------------------------

/// Many threads recovering at once recover each expired lease exactly once, and leave
/// unexpired leases alone. Several expire-and-recover rounds give a racy backend several
/// chances to show a double recovery.
pub fn recover_expired_exactly_once(s: Subject) {
    const SHORT: u128 = 150;
    const LONG: u128 = 50;
    const THREADS: usize = 8;
    const ROUNDS: u32 = 5;
    let short_lease = Duration::from_secs(10);
    let store = &*s.store;
    for n in 1..=SHORT + LONG {
        let mut inv = root(n, "t", &n.to_le_bytes());
        inv.max_recoveries = ROUNDS; // every round recovers, none fails
        submit(store, &inv, T0);
    }
    let mut expiring = BTreeSet::new();
    for _ in 0..SHORT {
        let c = ok(store.claim(&worker("short"), short_lease, T0), "claim")
            .unwrap_or_else(|| panic!("expected something to claim"));
        expiring.insert(c.lease.invocation);
    }
    let mut holding = Vec::new();
    for _ in 0..LONG {
        let c = ok(
            store.claim(&worker("long"), Duration::from_secs(3600), T0),
            "claim",
        )
        .unwrap_or_else(|| panic!("expected something to claim"));
        holding.push(c.lease);
    }

    let barrier = Barrier::new(THREADS);
    let mut now = T0;
    for round in 1..=ROUNDS {
        now = at(60 * u64::from(round));
        let recovered: Vec<InvocationId> = thread::scope(|scope| {
            let handles: Vec<_> = (0..THREADS)
                .map(|_| {
                    let barrier = &barrier;
                    scope.spawn(move || {
                        barrier.wait();
                        let mut got = Vec::new();
                        for _ in 0..3 {
                            got.extend(ok(store.recover_expired(now), "recover_expired"));
                        }
                        got
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        let unique: BTreeSet<InvocationId> = recovered.iter().copied().collect();
        assert_eq!(
            recovered.len() - unique.len(),
            0,
            "round {round}: expired leases recovered more than once"
        );
        assert_eq!(
            unique, expiring,
            "round {round}: exactly the expired leases are recovered"
        );
        assert!(
            ok(store.recover_expired(now), "recover again").is_empty(),
            "round {round}: nothing is left to recover"
        );
        for inv in &expiring {
            let rec = record(store, *inv);
            assert_eq!(
                rec.state.status,
                Status::Pending,
                "{inv} recovered to pending"
            );
            assert_eq!(rec.state.lease, None);
            assert_eq!(
                rec.state.attempts, round,
                "recovery itself does not count an attempt"
            );
        }
        let counts = ok(store.counts(), "counts");
        assert_eq!(counts.get(Status::Pending) as u128, SHORT);
        assert_eq!(counts.get(Status::Running) as u128, LONG);

        // Claim them all again (the next attempt) with a lease that expires before the next round.
        if round < ROUNDS {
            for _ in 0..SHORT {
                let c = ok(store.claim(&worker("short"), short_lease, now), "reclaim")
                    .unwrap_or_else(|| {
                        panic!("round {round}: a recovered invocation is claimable")
                    });
                assert!(expiring.contains(&c.lease.invocation));
                assert_eq!(
                    c.lease.attempt,
                    round + 1,
                    "a recovered invocation runs again as the next attempt"
                );
            }
            assert_nothing_claimable(store, now, "every recovered invocation was claimed again");
        }
    }

    for lease in &holding {
        let rec = record(store, lease.invocation);
        assert_eq!(
            rec.state.status,
            Status::Running,
            "an unexpired lease must not be recovered"
        );
        assert_eq!(rec.state.attempts, 1);
        assert_eq!(
            rec.state.lease.map(|l| l.expires_at),
            Some(lease.expires_at)
        );
        ok(
            store.renew(lease, LEASE, now),
            "the unexpired lease still renews",
        );
    }
}

/// Claiming recovers expired leases by itself, once, under concurrent claims.
pub fn claim_recovers_expired(s: Subject) {
    const INVOCATIONS: u128 = 60;
    const THREADS: usize = 4;
    let store = &*s.store;
    for n in 1..=INVOCATIONS {
        submit(store, &root(n, "t", &n.to_le_bytes()), T0);
    }
    let mut first = Vec::new();
    while let Some(c) = ok(store.claim(&worker("vanishing"), LEASE, T0), "claim") {
        first.push(c.lease);
    }
    assert_eq!(first.len() as u128, INVOCATIONS);
    assert_nothing_claimable(store, at(30), "leases are valid until they expire");

    let barrier = Barrier::new(THREADS);
    let claimed: Vec<(InvocationId, u32)> = thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let w = worker(&format!("rescuer-{t}"));
                    barrier.wait();
                    let mut got = Vec::new();
                    while let Some(c) = ok(store.claim(&w, LEASE, at(31)), "claim") {
                        got.push((c.lease.invocation, c.lease.attempt));
                    }
                    got
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let unique: BTreeSet<InvocationId> = claimed.iter().map(|(i, _)| *i).collect();
    assert_eq!(
        unique.len(),
        claimed.len(),
        "a recovered invocation was claimed twice"
    );
    assert_eq!(
        unique.len() as u128,
        INVOCATIONS,
        "every expired lease is taken over"
    );
    assert!(
        claimed.iter().all(|(_, attempt)| *attempt == 2),
        "every takeover is attempt 2: {claimed:?}"
    );
    for lease in &first {
        assert_lease_lost(
            store.commit(lease, Commit::outcome(Outcome::Released), at(32)),
            lease.invocation,
            "the vanished worker's commit",
        );
    }
}

/// An invocation whose executions keep getting lost is recovered `max_recoveries` times in a
/// row; the next loss fails it with `WorkerLost`, and its waiting parent wakes.
pub fn crash_loop_fails_after_max_recoveries(s: Subject) {
    let store = &*s.store;
    let p = root(1, "parent", b"");
    let mut c = child(2, &p, "crashes", b"");
    c.max_recoveries = 2;
    submit(store, &p, T0);
    let parent = claim_expect(store, "w", T0, p.id);
    commit(
        store,
        &parent.lease,
        Commit {
            children: vec![c.clone()],
            ..Commit::outcome(Outcome::Waiting { on: vec![c.id] })
        },
        at(1),
    );
    // Each round: claimed, then the worker vanishes and the lease expires.
    for lost in 1..=3u32 {
        let start = at(u64::from(lost) * 100);
        let claim = claim_expect(store, "doomed", start, c.id);
        assert_eq!(claim.lease.attempt, lost);
        let recovered = ok(
            store.recover_expired(at(u64::from(lost) * 100 + 31)),
            "recover",
        );
        assert_eq!(
            recovered,
            vec![c.id],
            "loss {lost}: the expired lease is recovered"
        );
        let rec = record(store, c.id);
        if lost <= 2 {
            assert_eq!(
                rec.state.status,
                Status::Pending,
                "loss {lost} is recovered"
            );
            assert_eq!(rec.state.recoveries, lost);
            assert_eq!(
                status(store, p.id),
                Status::Waiting,
                "the parent still waits"
            );
        } else {
            assert_eq!(
                rec.state.status,
                Status::Failed,
                "loss {lost} ends the crash loop"
            );
            let error = rec
                .state
                .error
                .expect("a failed invocation carries its error");
            assert_eq!(error.kind, FailureKind::WorkerLost);
            assert!(
                error.message.contains("3 time(s) in a row"),
                "the message counts the losses: {}",
                error.message
            );
            assert_eq!(rec.state.lease, None);
            assert_eq!(status(store, p.id), Status::Pending, "the parent wakes");
        }
    }
    let again = claim_expect(store, "w", at(400), p.id);
    assert_eq!(
        again.lease.invocation, p.id,
        "only the parent is left to run"
    );
    assert_nothing_claimable(store, at(400), "the failed child is not queued again");
}

/// Any commit ends a run of losses: the count starts again from zero.
pub fn commit_resets_recovery_count(s: Subject) {
    let store = &*s.store;
    let mut inv = root(1, "flaky", b"");
    inv.max_recoveries = 1;
    submit(store, &inv, T0);
    let first = claim_expect(store, "a", T0, inv.id);
    ok(store.recover_expired(at(31)), "recover");
    assert_eq!(record(store, inv.id).state.recoveries, 1);
    let second = claim_expect(store, "b", at(40), inv.id);
    assert_eq!(second.lease.attempt, first.lease.attempt + 1);
    commit(
        store,
        &second.lease,
        Commit::outcome(Outcome::Retry {
            not_before: at(50),
            error: failure("try again"),
        }),
        at(41),
    );
    assert_eq!(
        record(store, inv.id).state.recoveries,
        0,
        "a commit resets the count"
    );
    let _third = claim_expect(store, "c", at(50), inv.id);
    ok(store.recover_expired(at(81)), "recover");
    let rec = record(store, inv.id);
    assert_eq!(
        rec.state.status,
        Status::Pending,
        "one loss after a commit is within max_recoveries = 1"
    );
    let _fourth = claim_expect(store, "d", at(90), inv.id);
    ok(store.recover_expired(at(121)), "recover");
    let rec = record(store, inv.id);
    assert_eq!(
        rec.state.status,
        Status::Failed,
        "the second loss in a row fails it"
    );
    assert_eq!(
        rec.state.error.map(|e| e.kind),
        Some(FailureKind::WorkerLost)
    );
}

/// A deferred execution is pending again at its not-before time, keeps its error, and spends
/// no retry budget.
pub fn commit_deferred_honours_not_before_without_spending_retries(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "reads", b"");
    submit(store, &inv, T0);
    let first = claim_expect(store, "w", T0, inv.id);
    let error = Failure::new(FailureKind::Store, "the store did not answer");
    commit(
        store,
        &first.lease,
        Commit {
            journal: entries(0, 2),
            ..Commit::outcome(Outcome::Deferred {
                not_before: at(10),
                error: error.clone(),
            })
        },
        at(1),
    );
    let rec = record(store, inv.id);
    assert_eq!(rec.state.status, Status::Pending);
    assert_eq!(rec.state.retries, 0, "a deferral spends no retry budget");
    assert_eq!(rec.state.error, Some(error));
    assert_eq!(rec.state.lease, None);
    assert_eq!(
        ok(store.journal(inv.id), "journal").len(),
        2,
        "its journal is kept"
    );
    assert_nothing_claimable(store, at(9), "deferred until its not-before time");
    assert_eq!(ok(store.next_due(), "next_due"), Some(at(10)));
    let again = claim_expect(store, "w", at(10), inv.id);
    assert_eq!(again.lease.attempt, 2);
    assert_eq!(
        again.journal.len(),
        2,
        "the next attempt replays the kept journal"
    );
}

// ----- data --------------------------------------------------------------------------------------

/// A root's data writes land in its workflow: readable by key, keys sorted, overwrites win;
/// a sub-workflow root writes its own workflow's data.
pub fn data_writes_by_root(s: Subject) {
    let store = &*s.store;
    let r = root(1, "root", b"");
    let sub = subworkflow(2, &r, "sub", b"");
    submit(store, &r, T0);
    let c = claim_expect(store, "w", T0, r.id);
    commit(
        store,
        &c.lease,
        Commit {
            data: vec![
                ("b".to_owned(), b"2".to_vec()),
                ("a".to_owned(), b"1".to_vec()),
                ("c".to_owned(), b"3".to_vec()),
            ],
            children: vec![sub.clone()],
            ..Commit::outcome(Outcome::Waiting { on: vec![sub.id] })
        },
        at(1),
    );
    assert_eq!(
        ok(store.data_keys(r.id), "keys"),
        ["a", "b", "c"],
        "keys sorted"
    );
    assert_eq!(
        ok(store.get_data(r.id, "a"), "get a").as_deref(),
        Some(&b"1"[..])
    );
    assert_eq!(
        ok(store.get_data(r.id, "c"), "get c").as_deref(),
        Some(&b"3"[..])
    );
    assert_eq!(
        ok(store.get_data(r.id, "zz"), "get zz"),
        None,
        "unknown key"
    );

    let k = claim_expect(store, "w", at(2), sub.id);
    commit(
        store,
        &k.lease,
        Commit {
            data: vec![("a".to_owned(), b"sub".to_vec())],
            ..Commit::outcome(Outcome::Success(b"s".to_vec()))
        },
        at(3),
    );
    assert_eq!(
        ok(store.get_data(sub.id, "a"), "sub data").as_deref(),
        Some(&b"sub"[..]),
        "a sub-workflow root writes its own workflow"
    );
    assert_eq!(ok(store.data_keys(sub.id), "sub keys"), ["a"]);
    assert_eq!(
        ok(store.get_data(r.id, "a"), "root data").as_deref(),
        Some(&b"1"[..]),
        "a sub-workflow's writes do not touch its parent workflow"
    );

    let c = claim_expect(store, "w", at(4), r.id);
    commit(
        store,
        &c.lease,
        Commit {
            data: vec![
                ("a".to_owned(), b"one".to_vec()),
                ("d".to_owned(), Vec::new()),
            ],
            ..Commit::outcome(Outcome::Success(b"r".to_vec()))
        },
        at(5),
    );
    assert_eq!(
        ok(store.get_data(r.id, "a"), "overwritten").as_deref(),
        Some(&b"one"[..]),
        "the later write wins"
    );
    assert_eq!(
        ok(store.get_data(r.id, "d"), "empty value").as_deref(),
        Some(&b""[..]),
        "an empty value is stored, not absent"
    );
    assert_eq!(ok(store.data_keys(r.id), "keys"), ["a", "b", "c", "d"]);
}

/// A non-root member's commit with data writes is refused with `Access`; nothing of that
/// commit is written and the invocation stays running.
pub fn data_write_by_child_is_refused(s: Subject) {
    let store = &*s.store;
    let r = root(1, "root", b"");
    let k = child(2, &r, "kid", b"");
    submit(store, &r, T0);
    let c = claim_expect(store, "w", T0, r.id);
    commit(
        store,
        &c.lease,
        Commit {
            children: vec![k.clone()],
            ..Commit::outcome(Outcome::Waiting { on: vec![k.id] })
        },
        at(1),
    );
    let kc = claim_expect(store, "w", at(2), k.id);
    let refused = Commit {
        journal: entries(0, 2),
        data: vec![("x".to_owned(), b"from child".to_vec())],
        children: vec![child(3, &k, "grandkid", b"")],
        outcome: Outcome::Success(b"kid".to_vec()),
    };
    match err(store.commit(&kc.lease, refused, at(3)), "child writes data") {
        StoreError::Access(e) => {
            assert_eq!(e.invocation, k.id, "the error names the writer");
            assert_eq!(e.workflow, r.id, "the error names the workflow");
        }
        other => panic!("a child writing workflow data: expected Access, got {other:?}"),
    }
    assert!(
        ok(store.data_keys(r.id), "keys").is_empty(),
        "nothing written"
    );
    assert_eq!(ok(store.get_data(r.id, "x"), "get"), None);
    assert!(ok(store.journal(k.id), "journal").is_empty(), "no journal");
    assert_not_found(store.invocation(id(3)), id(3), "the refused grandchild");
    let rec = record(store, k.id);
    assert_eq!(rec.state.status, Status::Running, "status unchanged");
    assert_eq!(rec.state.attempts, 1);
    assert_eq!(
        status(store, r.id),
        Status::Waiting,
        "the parent is not woken"
    );

    succeed(store, &kc.lease, b"kid", at(4));
    assert_eq!(status(store, r.id), Status::Pending);
}

// ----- cancel and transitions --------------------------------------------------------------------

/// Moves outside the wf-core transition table are refused: final invocations cannot be
/// cancelled, and stay as they were.
pub fn cancel_of_final_is_refused(s: Subject) {
    let store = &*s.store;
    let good = root(1, "good", b"");
    let bad = root(2, "bad", b"");
    run_to_success(store, &good, T0);
    submit(store, &bad, T0);
    let c = claim_expect(store, "w", T0, bad.id);
    commit(
        store,
        &c.lease,
        Commit::outcome(Outcome::Failed(failure("no"))),
        T0,
    );

    for (inv, from) in [(good.id, Status::Success), (bad.id, Status::Failed)] {
        let before = record(store, inv);
        match err(
            store.cancel(inv, "too late", at(1)),
            "cancel a final invocation",
        ) {
            StoreError::Transition { invocation, source } => {
                assert_eq!(invocation, inv);
                assert_eq!(source.from, from);
                assert_eq!(source.to, Status::Failed);
            }
            other => panic!("cancel of a {from} invocation: expected Transition, got {other:?}"),
        }
        assert_eq!(
            record(store, inv),
            before,
            "a refused cancel changes nothing"
        );
    }
}

/// Cancelling pending, retrying and waiting invocations fails them (kind `Cancelled`), they
/// are never claimed again, and a cancelled child wakes its waiting parent.
pub fn cancel_non_final(s: Subject) {
    let store = &*s.store;
    let pending = root(1, "pending", b"");
    submit(store, &pending, T0);
    ok(
        store.cancel(pending.id, "not needed", at(1)),
        "cancel pending",
    );
    let rec = record(store, pending.id);
    assert_eq!(rec.state.status, Status::Failed);
    let error = rec
        .state
        .error
        .unwrap_or_else(|| panic!("a cancelled invocation carries an error"));
    assert_eq!(error.kind, FailureKind::Cancelled);
    assert!(
        error.message.contains("not needed"),
        "the reason is kept: {error:?}"
    );
    assert_nothing_claimable(store, at(2), "a cancelled invocation is not claimable");

    let retrying = root(2, "retrying", b"");
    submit(store, &retrying, at(2));
    let c = claim_expect(store, "w", at(2), retrying.id);
    commit(
        store,
        &c.lease,
        Commit::outcome(Outcome::Retry {
            not_before: at(10),
            error: failure("x"),
        }),
        at(3),
    );
    ok(store.cancel(retrying.id, "give up", at(4)), "cancel retry");
    assert_eq!(status(store, retrying.id), Status::Failed);
    assert_nothing_claimable(store, at(20), "a cancelled retry is not claimable");

    // A parent waiting on two children: cancelling both children wakes it.
    let p = root(3, "parent", b"");
    let k1 = child(4, &p, "k1", b"");
    let k2 = child(5, &p, "k2", b"");
    submit(store, &p, at(20));
    let pc = claim_expect(store, "w", at(20), p.id);
    commit(
        store,
        &pc.lease,
        Commit {
            children: vec![k1.clone(), k2.clone()],
            ..Commit::outcome(Outcome::Waiting {
                on: vec![k1.id, k2.id],
            })
        },
        at(21),
    );
    ok(store.cancel(k1.id, "stop k1", at(22)), "cancel child 1");
    assert_eq!(status(store, p.id), Status::Waiting, "one child left");
    ok(store.cancel(k2.id, "stop k2", at(23)), "cancel child 2");
    assert_eq!(
        status(store, p.id),
        Status::Pending,
        "cancelled children are final: the parent wakes"
    );

    // Cancelling a waiting parent: it stays failed when its child later finishes.
    let pc = claim_expect(store, "w", at(24), p.id);
    let k3 = child(6, &p, "k3", b"");
    commit(
        store,
        &pc.lease,
        Commit {
            children: vec![k3.clone()],
            ..Commit::outcome(Outcome::Waiting { on: vec![k3.id] })
        },
        at(25),
    );
    ok(store.cancel(p.id, "stop parent", at(26)), "cancel waiting");
    assert_eq!(status(store, p.id), Status::Failed);
    let kc = claim_expect(store, "w", at(27), k3.id);
    succeed(store, &kc.lease, b"", at(28));
    assert_eq!(
        status(store, p.id),
        Status::Failed,
        "a finished child must not revive a cancelled parent"
    );
    assert_nothing_claimable(store, at(29), "nothing left");
}

// ----- values ------------------------------------------------------------------------------------

/// 1 MiB arguments, results, data values and journal values round trip byte for byte.
pub fn large_values_round_trip(s: Subject) {
    const MIB: usize = 1 << 20;
    let store = &*s.store;
    let args = pattern(MIB, 1);
    let result = pattern(MIB, 2);
    let value = pattern(MIB, 3);
    let observed = pattern(MIB, 4);
    let inv = root(1, "big", &args);
    submit(store, &inv, T0);
    let c = claim_expect(store, "w", T0, inv.id);
    assert!(c.record.spec.args == args, "1 MiB args from claim differ");
    let journal = vec![JournalEntry {
        seq: 0,
        op: Op::ChildResult {
            child: id(9),
            outcome: ChildOutcome::Success(observed.clone()),
        },
    }];
    commit(
        store,
        &c.lease,
        Commit {
            journal: journal.clone(),
            data: vec![("big".to_owned(), value.clone())],
            children: Vec::new(),
            outcome: Outcome::Success(result.clone()),
        },
        at(1),
    );
    let rec = record(store, inv.id);
    assert!(
        rec.spec.args == args,
        "1 MiB args differ after reading back"
    );
    assert!(
        rec.state.result.as_deref() == Some(&result[..]),
        "1 MiB result differs after reading back"
    );
    assert!(
        ok(store.get_data(inv.id, "big"), "get_data").as_deref() == Some(&value[..]),
        "1 MiB data value differs after reading back"
    );
    assert!(
        ok(store.journal(inv.id), "journal") == journal,
        "1 MiB journal value differs after reading back"
    );
}

// ----- reads -------------------------------------------------------------------------------------

/// Reads of ids the store never saw are typed not-found errors; data of an unknown workflow
/// is empty.
pub fn unknown_ids_are_not_found(s: Subject) {
    let store = &*s.store;
    let known = root(1, "t", b"");
    submit(store, &known, T0);
    let ghost = id(404);
    assert_not_found(store.invocation(ghost), ghost, "invocation");
    assert_not_found(store.journal(ghost), ghost, "journal");
    assert_not_found(store.cancel(ghost, "x", T0), ghost, "cancel");
    assert_not_found(
        store.invocations(&[known.id, ghost]),
        ghost,
        "invocations with one unknown",
    );
    assert_not_found(
        store.wait_final(ghost, Duration::from_millis(10)),
        ghost,
        "wait_final",
    );
    assert_eq!(ok(store.get_data(ghost, "k"), "get_data"), None);
    assert!(ok(store.data_keys(ghost), "data_keys").is_empty());
    assert!(ok(store.workflow_invocations(ghost), "members").is_empty());
    assert_eq!(
        ok(store.counts(), "counts").total(),
        1,
        "reads create nothing"
    );
}

/// `invocations` returns records in the order asked, repeats included.
pub fn invocations_in_order_asked(s: Subject) {
    let store = &*s.store;
    for n in 1..=4 {
        submit(store, &root(n, "t", &[n as u8]), at_ms(n as u64));
    }
    let ask = [id(3), id(1), id(4), id(1)];
    let got: Vec<InvocationId> = ok(store.invocations(&ask), "invocations")
        .iter()
        .map(InvocationRecord::id)
        .collect();
    assert_eq!(got, ask, "records in the order asked");
    assert!(ok(store.invocations(&[]), "none").is_empty());
}

/// Workflow membership: a workflow lists its root and member children in submission order; a
/// sub-workflow child is listed under its own workflow; `workflows` lists roots oldest first.
pub fn workflow_membership(s: Subject) {
    let store = &*s.store;
    let r = root(5, "root", b"");
    let k1 = child(6, &r, "k", b"1");
    let sub = subworkflow(7, &r, "sub", b"");
    let k2 = child(8, &r, "k", b"2");
    let sub_k = child(9, &sub, "sk", b"");
    let other = root(3, "other", b"");

    submit(store, &r, T0);
    submit(store, &other, at(2));
    let c = claim_expect(store, "w", at(3), r.id);
    commit(
        store,
        &c.lease,
        Commit {
            children: vec![k1.clone(), sub.clone(), k2.clone()],
            ..Commit::outcome(Outcome::Waiting {
                on: vec![k1.id, sub.id, k2.id],
            })
        },
        at(4),
    );
    claim_expect(store, "w", at(5), other.id);
    claim_expect(store, "w", at(5), k1.id);
    let sc = claim_expect(store, "w", at(5), sub.id);
    commit(
        store,
        &sc.lease,
        Commit {
            children: vec![sub_k.clone()],
            ..Commit::outcome(Outcome::Waiting { on: vec![sub_k.id] })
        },
        at(6),
    );

    assert_eq!(
        ok(store.workflow_invocations(r.id), "root members"),
        [r.id, k1.id, k2.id],
        "root and member children in submission order; the sub-workflow is not a member"
    );
    assert_eq!(
        ok(store.workflow_invocations(sub.id), "sub members"),
        [sub.id, sub_k.id],
        "a sub-workflow lists its own root and members"
    );
    assert_eq!(
        ok(store.workflow_invocations(other.id), "other"),
        [other.id]
    );
    assert!(
        ok(store.workflow_invocations(k1.id), "not a workflow").is_empty(),
        "a member is not a workflow"
    );

    let rec = record(store, sub.id);
    assert_eq!(rec.spec.parent, Some(r.id));
    assert_eq!(rec.spec.identity.workflow_id, sub.id);
    assert_eq!(rec.spec.identity.parent_workflow_id, Some(r.id));
    assert!(rec.is_root());
    let rec = record(store, sub_k.id);
    assert_eq!(rec.spec.parent, Some(sub.id));
    assert_eq!(rec.spec.identity.workflow_id, sub.id);
    assert!(!rec.is_root());

    let roots: Vec<InvocationId> = ok(store.workflows(), "workflows")
        .iter()
        .map(InvocationRecord::id)
        .collect();
    assert_eq!(
        roots,
        [r.id, other.id, sub.id],
        "every workflow root (sub-workflows included), oldest first"
    );
}

/// Counts by status follow every change.
pub fn counts_by_status(s: Subject) {
    let store = &*s.store;
    assert_eq!(ok(store.counts(), "counts").total(), 0, "empty store");
    let invs: Vec<NewInvocation> = (1..=6).map(|n| root(n, "t", &[n as u8])).collect();
    for inv in &invs {
        submit(store, inv, T0);
    }
    // 1 success, 2 failed, 3 retry, 4 waiting (on child 7, pending), 5 running, 6 pending.
    let mut leases = Vec::new();
    for inv in &invs[..5] {
        leases.push(claim_expect(store, "w", T0, inv.id).lease);
    }
    succeed(store, &leases[0], b"", at(1));
    commit(
        store,
        &leases[1],
        Commit::outcome(Outcome::Failed(failure("f"))),
        at(1),
    );
    commit(
        store,
        &leases[2],
        Commit::outcome(Outcome::Retry {
            not_before: at(100),
            error: failure("r"),
        }),
        at(1),
    );
    let k = child(7, &invs[3], "k", b"");
    commit(
        store,
        &leases[3],
        Commit {
            children: vec![k.clone()],
            ..Commit::outcome(Outcome::Waiting { on: vec![k.id] })
        },
        at(1),
    );
    let counts = ok(store.counts(), "counts");
    let expected = [
        (Status::Registered, 0),
        (Status::Pending, 2),
        (Status::Running, 1),
        (Status::Waiting, 1),
        (Status::Retry, 1),
        (Status::Success, 1),
        (Status::Failed, 1),
    ];
    for (st, n) in expected {
        assert_eq!(counts.get(st), n, "count of {st}");
    }
    assert_eq!(counts.total(), 7);
    let listed: u64 = counts.iter().map(|(_, n)| n).sum();
    assert_eq!(listed, 7, "iter covers every status");
}

// ----- blocking waits ----------------------------------------------------------------------------

/// How long a blocking wait may wait for an event that does happen; it must return well before.
const LONG_WAIT: Duration = Duration::from_secs(10);

/// `wait_final` blocked on one thread returns promptly with the final record when another
/// thread commits; it returns at once for an already-final invocation.
pub fn wait_final_wakes_on_commit(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"");
    submit(store, &inv, T0);
    let c = claim_expect(store, "w", T0, inv.id);
    let barrier = Barrier::new(2);
    let (got, waited) = thread::scope(|scope| {
        let waiter = scope.spawn(|| {
            barrier.wait();
            let start = Instant::now();
            let got = ok(store.wait_final(inv.id, LONG_WAIT), "wait_final");
            (got, start.elapsed())
        });
        barrier.wait();
        succeed(store, &c.lease, b"the result", at(1));
        waiter
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    });
    let rec =
        got.unwrap_or_else(|| panic!("wait_final timed out although the invocation finished"));
    assert!(
        waited < LONG_WAIT / 2,
        "wait_final took {waited:?}: it must wake on the commit, not on its timeout"
    );
    assert_eq!(rec.id(), inv.id);
    assert_eq!(rec.state.status, Status::Success);
    assert_eq!(rec.state.result.as_deref(), Some(&b"the result"[..]));

    let start = Instant::now();
    let again = ok(store.wait_final(inv.id, LONG_WAIT), "wait_final when final");
    assert_eq!(again.map(|r| r.state.status), Some(Status::Success));
    assert!(
        start.elapsed() < LONG_WAIT / 2,
        "wait_final on a final invocation must return at once"
    );
}

/// `wait_final` wakes for a failure too (here a cancellation from another thread).
pub fn wait_final_wakes_on_cancel(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"");
    submit(store, &inv, T0);
    let barrier = Barrier::new(2);
    let got = thread::scope(|scope| {
        let waiter = scope.spawn(|| {
            barrier.wait();
            ok(store.wait_final(inv.id, LONG_WAIT), "wait_final")
        });
        barrier.wait();
        ok(store.cancel(inv.id, "stop", at(1)), "cancel");
        waiter
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    });
    let rec = got.unwrap_or_else(|| panic!("wait_final timed out although the invocation failed"));
    assert_eq!(rec.state.status, Status::Failed);
}

/// `wait_final` on an invocation that never finishes returns `None` after its timeout.
pub fn wait_final_times_out(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"");
    submit(store, &inv, T0);
    let timeout = Duration::from_millis(150);
    let start = Instant::now();
    let got = ok(store.wait_final(inv.id, timeout), "wait_final");
    assert!(
        got.is_none(),
        "an unfinished invocation: expected None, got {got:?}"
    );
    assert!(
        start.elapsed() >= timeout / 2,
        "wait_final returned after {:?}, before its timeout of {timeout:?}",
        start.elapsed()
    );
    assert_eq!(
        status(store, inv.id),
        Status::Pending,
        "waiting changes nothing"
    );
}

/// `wait_final` on an invocation that is gone (purged, or never submitted) is
/// `InvocationNotFound` at once, and a `wait_final` blocked on an invocation that is purged
/// meanwhile ends promptly instead of waiting out its timeout.
pub fn wait_final_ends_when_purged(s: Subject) {
    let store = &*s.store;
    let gone = root(1, "t", b"");
    run_to_success(store, &gone, T0);
    assert_eq!(ok(store.purge_finished(at(1)), "purge"), 1);
    let start = Instant::now();
    assert_not_found(
        store.wait_final(gone.id, LONG_WAIT),
        gone.id,
        "wait_final on a purged invocation",
    );
    assert!(
        start.elapsed() < LONG_WAIT / 2,
        "wait_final on a purged invocation must return at once"
    );

    // A waiter may see the invocation final (between its commit and the purge) or see it gone;
    // either way it must return promptly. Which one happens depends on thread scheduling, so
    // the scenario runs several times to reach the waiter that only wakes after the purge.
    for round in 0..20u64 {
        let inv = root(100 + u128::from(round), "t", b"");
        let now = at(10 + round);
        submit(store, &inv, now);
        let c = claim_expect(store, "w", now, inv.id);
        let barrier = Barrier::new(2);
        let (got, waited) = thread::scope(|scope| {
            let waiter = scope.spawn(|| {
                barrier.wait();
                let start = Instant::now();
                let got = store.wait_final(inv.id, LONG_WAIT);
                (got, start.elapsed())
            });
            barrier.wait();
            succeed(store, &c.lease, b"r", now);
            assert_eq!(
                ok(store.purge_finished(at(100_000)), "purge while waited on"),
                1,
                "round {round}: the finished workflow is purged"
            );
            waiter
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
        });
        match got {
            Ok(Some(rec)) => assert_eq!(
                (rec.id(), rec.state.status),
                (inv.id, Status::Success),
                "round {round}: a waiter that saw it final gets its final record"
            ),
            Ok(None) => panic!(
                "round {round}: wait_final timed out after {waited:?} although the invocation \
                 was purged: it must return InvocationNotFound when the invocation disappears"
            ),
            Err(StoreError::InvocationNotFound(i)) if i == inv.id => {}
            Err(e) => panic!("round {round}: expected InvocationNotFound, got {e:?}"),
        }
        assert!(
            waited < LONG_WAIT / 2,
            "round {round}: wait_final took {waited:?}: it must wake on the purge"
        );
    }
}

/// `wait_for_work` blocked on one thread returns `true` promptly when another thread submits.
pub fn wait_for_work_wakes_on_submit(s: Subject) {
    let store = &*s.store;
    let barrier = Barrier::new(2);
    let (found, waited) = thread::scope(|scope| {
        let waiter = scope.spawn(|| {
            barrier.wait();
            let start = Instant::now();
            let found = ok(store.wait_for_work(LONG_WAIT), "wait_for_work");
            (found, start.elapsed())
        });
        barrier.wait();
        submit(store, &root(1, "t", b""), system_now());
        waiter
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    });
    assert!(found, "wait_for_work must report work after a submit");
    assert!(
        waited < LONG_WAIT / 2,
        "wait_for_work took {waited:?}: it must wake on the submit, not on its timeout"
    );
    let c = ok(store.claim(&worker("w"), LEASE, system_now()), "claim");
    assert!(c.is_some(), "the announced work is claimable");
}

/// `wait_for_work` with nothing to do returns `false` after its timeout.
pub fn wait_for_work_times_out_when_idle(s: Subject) {
    let store = &*s.store;
    let timeout = Duration::from_millis(150);
    let start = Instant::now();
    assert!(
        !ok(store.wait_for_work(timeout), "wait_for_work"),
        "an empty store has no work"
    );
    assert!(
        start.elapsed() >= timeout / 2,
        "wait_for_work returned after {:?}, before its timeout of {timeout:?}",
        start.elapsed()
    );

    // A finished invocation is no work either.
    let now = system_now();
    run_to_success(store, &root(1, "t", b""), now);
    assert!(
        !ok(store.wait_for_work(timeout), "wait_for_work"),
        "a store holding only finished invocations has no work"
    );
}

fn system_now() -> Timestamp {
    Timestamp::from_system_time(std::time::SystemTime::now())
}

// ----- retention ---------------------------------------------------------------------------------

/// `purge_finished` removes workflows finished before the cut-off with everything they own
/// (invocations, journals, data), and leaves unfinished and newer ones alone.
pub fn purge_finished_removes_only_old_finished(s: Subject) {
    let store = &*s.store;
    // A: root + child, finished at 10 s, with journal and data.
    let a = root(1, "a", b"");
    let ak = child(11, &a, "ak", b"");
    submit(store, &a, T0);
    let c = claim_expect(store, "w", T0, a.id);
    commit(
        store,
        &c.lease,
        Commit {
            journal: entries(0, 1),
            data: vec![("k".to_owned(), b"a".to_vec())],
            children: vec![ak.clone()],
            outcome: Outcome::Waiting { on: vec![ak.id] },
        },
        at(1),
    );
    let c = claim_expect(store, "w", at(2), ak.id);
    commit(
        store,
        &c.lease,
        Commit {
            journal: entries(0, 1),
            ..Commit::outcome(Outcome::Success(b"ak".to_vec()))
        },
        at(3),
    );
    let c = claim_expect(store, "w", at(4), a.id);
    commit(
        store,
        &c.lease,
        Commit {
            journal: entries(1, 1),
            ..Commit::outcome(Outcome::Success(b"a".to_vec()))
        },
        at(10),
    );

    // B: finished at 100 s, with data.
    let b = root(2, "b", b"");
    submit(store, &b, at(11));
    let c = ok(
        store.claim(&worker("w"), Duration::from_secs(600), at(11)),
        "claim b",
    )
    .unwrap_or_else(|| panic!("b must be claimable"));
    assert_eq!(c.lease.invocation, b.id);
    commit(
        store,
        &c.lease,
        Commit {
            data: vec![("k".to_owned(), b"b".to_vec())],
            ..Commit::outcome(Outcome::Success(b"b".to_vec()))
        },
        at(100),
    );

    // C: waiting on a child that never runs. D: root cancelled at 14 s while its child is
    // still pending. Both roots are queued before any of their children.
    let cr = root(3, "c", b"");
    let ck = child(31, &cr, "ck", b"");
    let d = root(4, "d", b"");
    let dk = child(41, &d, "dk", b"");
    submit(store, &cr, at(12));
    submit(store, &d, at(12));
    let c = claim_expect(store, "w", at(12), cr.id);
    commit(
        store,
        &c.lease,
        Commit {
            children: vec![ck.clone()],
            ..Commit::outcome(Outcome::Waiting { on: vec![ck.id] })
        },
        at(13),
    );

    let c = claim_expect(store, "w", at(14), d.id);
    commit(
        store,
        &c.lease,
        Commit {
            children: vec![dk.clone()],
            ..Commit::outcome(Outcome::Waiting { on: vec![dk.id] })
        },
        at(14),
    );
    ok(store.cancel(d.id, "stop", at(14)), "cancel d");

    assert_eq!(
        ok(store.purge_finished(at(50)), "purge at 50 s"),
        1,
        "only A finished before 50 s"
    );
    for inv in [a.id, ak.id] {
        assert_not_found(store.invocation(inv), inv, "a purged invocation");
        assert_not_found(store.journal(inv), inv, "a purged journal");
    }
    assert_eq!(ok(store.get_data(a.id, "k"), "purged data"), None);
    assert!(ok(store.data_keys(a.id), "purged keys").is_empty());
    assert!(ok(store.workflow_invocations(a.id), "purged members").is_empty());

    let roots: Vec<InvocationId> = ok(store.workflows(), "workflows")
        .iter()
        .map(InvocationRecord::id)
        .collect();
    assert_eq!(roots, [b.id, cr.id, d.id], "A is gone, the rest remain");
    assert_eq!(status(store, b.id), Status::Success);
    assert_eq!(
        ok(store.get_data(b.id, "k"), "b data").as_deref(),
        Some(&b"b"[..]),
        "a newer workflow keeps its data"
    );
    assert_eq!(ok(store.workflow_invocations(cr.id), "c"), [cr.id, ck.id]);
    assert_eq!(ok(store.workflow_invocations(d.id), "d"), [d.id, dk.id]);
    assert_eq!(ok(store.counts(), "counts").total(), 5);

    assert_eq!(
        ok(store.purge_finished(at(50)), "purge again"),
        0,
        "idempotent"
    );
    assert_eq!(
        ok(store.purge_finished(at(100_000)), "purge later"),
        1,
        "B is old enough now; C and D still have unfinished invocations"
    );
    assert_not_found(store.invocation(b.id), b.id, "purged B");
    assert_eq!(ok(store.get_data(b.id, "k"), "purged B data"), None);
    assert_eq!(status(store, cr.id), Status::Waiting);
    assert_eq!(status(store, d.id), Status::Failed);
    assert_eq!(status(store, dk.id), Status::Pending);
    assert_eq!(ok(store.counts(), "counts").total(), 4);
    let c = claim_expect(store, "w", at(100_001), ck.id);
    succeed(store, &c.lease, b"", at(100_001));
    assert_eq!(
        status(store, cr.id),
        Status::Pending,
        "C still works after a purge"
    );
}

/// A workflow finished when its last invocation became final, not when its root did: a member
/// the root started without waiting for it (fire and forget) that finishes later keeps the
/// workflow until the cut-off passes its own finishing time.
pub fn purge_judges_by_last_finished_member(s: Subject) {
    let store = &*s.store;
    let r = root(1, "r", b"");
    let m = child(2, &r, "m", b"");
    submit(store, &r, T0);
    let c = claim_expect(store, "w", T0, r.id);
    commit(
        store,
        &c.lease,
        Commit {
            children: vec![m.clone()],
            ..Commit::outcome(Outcome::Success(b"r".to_vec()))
        },
        at(1),
    );
    let c = ok(
        store.claim(&worker("w"), Duration::from_secs(600), at(2)),
        "claim m",
    )
    .unwrap_or_else(|| panic!("the member must be claimable"));
    assert_eq!(c.lease.invocation, m.id);
    assert_eq!(
        ok(store.purge_finished(at(50)), "purge while the member runs"),
        0,
        "a member still runs"
    );
    succeed(store, &c.lease, b"m", at(100));

    assert_eq!(
        ok(store.purge_finished(at(50)), "purge at 50 s"),
        0,
        "the root finished at 1 s, but the member only at 100 s"
    );
    assert_eq!(
        ok(store.purge_finished(at(100)), "purge at 100 s"),
        0,
        "finished at 100 s is not finished before 100 s"
    );
    let rec = ok(
        store.wait_final(m.id, LONG_WAIT),
        "wait_final on the member",
    )
    .unwrap_or_else(|| panic!("the member is final"));
    assert_eq!(rec.state.result.as_deref(), Some(&b"m"[..]));
    assert_eq!(
        ok(store.workflow_invocations(r.id), "members"),
        [r.id, m.id]
    );

    assert_eq!(
        ok(store.purge_finished(at(150)), "purge at 150 s"),
        1,
        "the whole workflow finished at 100 s"
    );
    assert_not_found(store.invocation(r.id), r.id, "purged root");
    assert_not_found(store.invocation(m.id), m.id, "purged member");
}

/// A workflow and the sub-workflows started from it are purged together, once all of them
/// finished before the cut-off: a finished sub-workflow stays while its caller, which has yet to
/// read its result, or anything else in the caller's workflow is unfinished; a workflow stays
/// while a sub-workflow it started without waiting still runs.
pub fn purge_keeps_subworkflows_with_their_callers(s: Subject) {
    let store = &*s.store;
    // W: root R waits on member P, which waits on the sub-workflow S.
    let r = root(1, "r", b"");
    let p = child(2, &r, "p", b"");
    let sub = subworkflow(3, &p, "s", b"");
    submit(store, &r, T0);
    let c = claim_expect(store, "w", T0, r.id);
    commit(
        store,
        &c.lease,
        Commit {
            children: vec![p.clone()],
            ..Commit::outcome(Outcome::Waiting { on: vec![p.id] })
        },
        at(1),
    );
    let c = claim_expect(store, "w", at(2), p.id);
    commit(
        store,
        &c.lease,
        Commit {
            children: vec![sub.clone()],
            ..Commit::outcome(Outcome::Waiting { on: vec![sub.id] })
        },
        at(2),
    );
    let c = claim_expect(store, "w", at(3), sub.id);
    succeed(store, &c.lease, b"sub result", at(3));
    assert_eq!(status(store, p.id), Status::Pending, "P woke up");

    assert_eq!(
        ok(
            store.purge_finished(at(100_000)),
            "purge while P is pending"
        ),
        0,
        "S finished, but P has not read its result yet"
    );
    let c = claim_expect(store, "w", at(4), p.id);
    let read = ok(
        store.invocations(&[sub.id]),
        "P reads its child's result on replay",
    );
    assert_eq!(read[0].state.result.as_deref(), Some(&b"sub result"[..]));
    succeed(store, &c.lease, b"p", at(5));
    assert_eq!(
        ok(
            store.purge_finished(at(100_000)),
            "purge while R is pending"
        ),
        0,
        "P finished, but its workflow has not"
    );
    assert_eq!(status(store, sub.id), Status::Success);
    let c = claim_expect(store, "w", at(6), r.id);
    succeed(store, &c.lease, b"r", at(10));
    assert_eq!(
        ok(store.purge_finished(at(10)), "purge at 10 s"),
        0,
        "the tree finished at 10 s, not before"
    );
    assert_eq!(
        ok(store.purge_finished(at(100_000)), "purge later"),
        2,
        "W and its sub-workflow S go together"
    );
    for inv in [r.id, p.id, sub.id] {
        assert_not_found(store.invocation(inv), inv, "a purged invocation");
    }

    // W2: root R2 starts the sub-workflow S2 and finishes without waiting for it.
    let r2 = root(11, "r2", b"");
    let sub2 = subworkflow(12, &r2, "s2", b"");
    submit(store, &r2, at(20));
    let c = claim_expect(store, "w", at(20), r2.id);
    commit(
        store,
        &c.lease,
        Commit {
            children: vec![sub2.clone()],
            ..Commit::outcome(Outcome::Success(b"r2".to_vec()))
        },
        at(20),
    );
    let c = ok(
        store.claim(&worker("w"), Duration::from_secs(600), at(21)),
        "claim s2",
    )
    .unwrap_or_else(|| panic!("S2 must be claimable"));
    assert_eq!(c.lease.invocation, sub2.id);
    assert_eq!(
        ok(store.purge_finished(at(100_000)), "purge while S2 runs"),
        0,
        "W2 finished, but a sub-workflow it started still runs"
    );
    succeed(store, &c.lease, b"s2", at(30));
    assert_eq!(
        ok(store.purge_finished(at(25)), "purge at 25 s"),
        0,
        "the tree's last invocation finished at 30 s"
    );
    assert_eq!(ok(store.purge_finished(at(100_000)), "purge W2"), 2);
    assert!(ok(store.workflows(), "workflows").is_empty());
    assert_eq!(ok(store.counts(), "counts").total(), 0);
}

// ----- the macro ---------------------------------------------------------------------------------

/// Instantiates every conformance test for a backend. The argument is a factory expression
/// (a closure or fn) returning a fresh [`Subject`].
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@tests $make;
            submit_is_idempotent,
            submit_conflict_is_refused,
            claim_is_fifo_and_leases,
            claim_returns_journal,
            concurrent_claims_never_duplicate,
            renew_extends_lease,
            lease_expiry_boundary,
            stale_lease_expired_cannot_commit,
            stale_lease_after_takeover_cannot_commit,
            stale_attempt_cannot_commit,
            cancelled_running_cannot_commit,
            commit_success,
            commit_failed,
            commit_retry_honours_not_before,
            commit_released_requeues,
            commit_deferred_honours_not_before_without_spending_retries,
            commit_journal_must_be_contiguous,
            commit_child_must_name_parent,
            parent_wakes_when_all_children_final,
            waiting_on_finished_children_is_pending_at_once,
            waiting_on_non_child_is_invalid,
            parent_wakes_once_under_concurrent_children,
            submitted_not_before_is_honoured,
            next_due_reports_earliest_clock_event,
            recover_expired_exactly_once,
            claim_recovers_expired,
            crash_loop_fails_after_max_recoveries,
            commit_resets_recovery_count,
            data_writes_by_root,
            data_write_by_child_is_refused,
            cancel_of_final_is_refused,
            cancel_non_final,
            large_values_round_trip,
            unknown_ids_are_not_found,
            invocations_in_order_asked,
            workflow_membership,
            counts_by_status,
            wait_final_wakes_on_commit,
            wait_final_wakes_on_cancel,
            wait_final_times_out,
            wait_final_ends_when_purged,
            wait_for_work_wakes_on_submit,
            wait_for_work_times_out_when_idle,
            purge_finished_removes_only_old_finished,
            purge_judges_by_last_finished_member,
            purge_keeps_subworkflows_with_their_callers,
        );
    };
    (@tests $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let make: &dyn Fn() -> $crate::conformance::Subject = &$make;
                $crate::conformance::$name(make());
            }
        )*
    };
}
