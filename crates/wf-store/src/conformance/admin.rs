//! Operator actions beyond cancel: retrying a failed invocation, and listing what a purge would
//! remove without removing it.

use wf_core::{InvocationId, Status};

use crate::error::StoreError;
use crate::model::{Commit, Outcome};

use super::Subject;
use super::fixtures::*;

/// Claims `inv` (it must be the only runnable invocation) and commits its failure at `now`,
/// after recording `journal` journal entries and a data write.
fn fail_with_journal(store: &dyn crate::Store, inv: &crate::NewInvocation, journal: u32) {
    let c = claim_expect(store, "w", at(1), inv.id);
    commit(
        store,
        &c.lease,
        Commit {
            journal: entries(0, journal),
            data: vec![("progress".to_owned(), b"half".to_vec())],
            ..Commit::outcome(Outcome::Failed(failure("the card was declined")))
        },
        at(2),
    );
}

/// Asserts that `result` is [`StoreError::NotRetryable`] for `inv` and that the record did not
/// change.
#[track_caller]
fn assert_not_retryable(store: &dyn crate::Store, inv: InvocationId, now: wf_core::Timestamp) {
    let before = record(store, inv);
    match err(store.retry(inv, now), format!("retry {inv}")) {
        StoreError::NotRetryable { invocation, .. } if invocation == inv => {}
        other => panic!("retry {inv}: expected NotRetryable, got {other:?}"),
    }
    assert!(
        !err(store.retry(inv, now), "retry").is_transient(),
        "a refused retry is not transient"
    );
    assert_eq!(
        record(store, inv),
        before,
        "a refused retry changes nothing"
    );
}

/// `retry` makes a failed invocation pending again at once, keeping its journal (the next
/// attempt replays it), its data and its last error, and gives it its retry and recovery
/// budgets back; the next claim is a new attempt that continues the journal.
pub fn retry_requeues_a_failed_invocation_keeping_its_journal(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "flaky", b"args");
    submit(store, &inv, T0);
    // One retry spent before the final failure.
    let c = claim_expect(store, "w", T0, inv.id);
    commit(
        store,
        &c.lease,
        Commit::outcome(Outcome::Retry {
            not_before: at(1),
            error: failure("first"),
        }),
        T0,
    );
    fail_with_journal(store, &inv, 2);
    let failed = record(store, inv.id);
    assert_eq!(failed.state.status, Status::Failed);
    assert_eq!(failed.state.retries, 1);

    ok(store.retry(inv.id, at(10)), "retry");
    let rec = record(store, inv.id);
    assert_eq!(rec.state.status, Status::Pending);
    assert_eq!(rec.state.retries, 0, "a retry gives the retry budget back");
    assert_eq!(rec.state.recoveries, 0);
    assert_eq!(
        rec.state.attempts, failed.state.attempts,
        "no attempt ran yet"
    );
    assert_eq!(rec.state.not_before, None, "runnable at once");
    assert_eq!(rec.state.lease, None);
    assert_eq!(rec.state.result, None);
    assert_eq!(rec.state.updated_at, at(10));
    assert_eq!(
        rec.state.error.as_ref().map(|f| f.message.as_str()),
        Some("the card was declined"),
        "the last error stays visible until the next attempt ends"
    );
    assert_eq!(rec.spec, failed.spec, "the call is the same");
    assert_eq!(
        ok(store.get_data(inv.id, "progress"), "data").as_deref(),
        Some(&b"half"[..]),
        "the workflow's data stays"
    );
    assert_eq!(ok(store.counts(), "counts").get(Status::Failed), 0);
    assert_eq!(ok(store.counts(), "counts").get(Status::Pending), 1);

    let c = claim_expect(store, "w2", at(11), inv.id);
    assert_eq!(c.lease.attempt, failed.state.attempts + 1, "a new attempt");
    assert_eq!(
        c.journal,
        entries(0, 2),
        "the next attempt replays the journal"
    );
    commit(
        store,
        &c.lease,
        Commit {
            journal: entries(2, 1),
            ..Commit::outcome(Outcome::Success(b"paid".to_vec()))
        },
        at(12),
    );
    let rec = record(store, inv.id);
    assert_eq!(rec.state.status, Status::Success);
    assert_eq!(rec.state.error, None);
    assert_eq!(ok(store.journal(inv.id), "journal"), entries(0, 3));
}

/// Only a failed invocation can be retried: pending, running, waiting and successful ones are
/// refused with [`StoreError::NotRetryable`] and stay as they were; an unknown id is
/// [`StoreError::InvocationNotFound`].
pub fn retry_refuses_what_is_not_failed(s: Subject) {
    let store = &*s.store;
    let done = root(1, "good", b"");
    run_to_success(store, &done, T0);
    let parent = root(2, "parent", b"");
    let kid = child(21, &parent, "kid", b"");
    submit(store, &parent, at(1));
    let c = claim_expect(store, "w", at(1), parent.id);
    start_and_wait(store, &c.lease, &[&kid], at(1));
    let running = root(3, "r", b"");
    submit(store, &running, at(2));
    let _kid_claim = claim_expect(store, "w", at(2), kid.id);
    let _running_claim = claim_expect(store, "w", at(2), running.id);
    let pending = root(4, "pending", b"");
    submit(store, &pending, at(3));

    for (inv, expected) in [
        (done.id, Status::Success),
        (parent.id, Status::Waiting),
        (kid.id, Status::Running),
        (running.id, Status::Running),
        (pending.id, Status::Pending),
    ] {
        assert_eq!(status(store, inv), expected);
        assert_not_retryable(store, inv, at(4));
    }
    assert_not_found(store.retry(id(99), at(4)), id(99), "retry of an unknown id");
}

/// A failed child whose caller has finished cannot be retried: nothing would ever read its new
/// result.
pub fn retry_refuses_a_child_whose_caller_finished(s: Subject) {
    let store = &*s.store;
    let parent = root(1, "parent", b"");
    let kid = child(11, &parent, "kid", b"");
    submit(store, &parent, T0);
    let c = claim_expect(store, "w", T0, parent.id);
    start_and_wait(store, &c.lease, &[&kid], T0);
    let c = claim_expect(store, "w", at(1), kid.id);
    commit(
        store,
        &c.lease,
        Commit::outcome(Outcome::Failed(failure("out of stock"))),
        at(1),
    );
    // The parent takes the failure and fails too.
    let c = claim_expect(store, "w", at(2), parent.id);
    commit(
        store,
        &c.lease,
        Commit::outcome(Outcome::Failed(failure("child failed"))),
        at(2),
    );
    assert_not_retryable(store, kid.id, at(3));
    // The caller itself can be retried: it replays what it recorded.
    ok(store.retry(parent.id, at(3)), "retry the caller");
    assert_eq!(status(store, parent.id), Status::Pending);
}

/// A failed child retried while its caller still waits (on other children) is run again, and
/// the caller, replaying, waits for its new outcome.
pub fn retried_child_is_awaited_by_its_waiting_caller(s: Subject) {
    let store = &*s.store;
    let parent = root(1, "parent", b"");
    let k1 = child(11, &parent, "k1", b"");
    let k2 = child(12, &parent, "k2", b"");
    submit(store, &parent, T0);
    let c = claim_expect(store, "w", T0, parent.id);
    start_and_wait(store, &c.lease, &[&k1, &k2], T0);
    let c1 = claim_expect(store, "w", at(1), k1.id);
    let c2 = claim_expect(store, "w", at(1), k2.id);
    commit(
        store,
        &c1.lease,
        Commit::outcome(Outcome::Failed(failure("flaky"))),
        at(2),
    );
    assert_eq!(status(store, parent.id), Status::Waiting, "k2 still runs");

    ok(store.retry(k1.id, at(3)), "retry k1 while its caller waits");
    assert_eq!(status(store, k1.id), Status::Pending);
    let again = claim_expect(store, "w", at(3), k1.id);
    succeed(store, &c2.lease, b"k2", at(4));
    // The caller wakes (what it waited on is final) and, replaying, finds k1 unfinished.
    let c = claim_expect(store, "w", at(5), parent.id);
    commit(
        store,
        &c.lease,
        Commit::outcome(Outcome::Waiting { on: vec![k1.id] }),
        at(5),
    );
    assert_eq!(status(store, parent.id), Status::Waiting);
    succeed(store, &again.lease, b"k1 at last", at(7));
    assert_eq!(
        status(store, parent.id),
        Status::Pending,
        "the retried child's success wakes its caller"
    );
}

/// `purgeable` names exactly the workflows `purge_finished` would remove at the same cut-off
/// (a finished tree with its sub-workflows, in the order they were created), and removes
/// nothing itself.
pub fn purgeable_lists_what_purge_would_remove_and_removes_nothing(s: Subject) {
    let store = &*s.store;
    // A with sub-workflow AS, finished at 10 s.
    let a = root(1, "a", b"");
    let sub = subworkflow(11, &a, "sub", b"");
    submit(store, &a, T0);
    let c = claim_expect(store, "w", T0, a.id);
    commit(
        store,
        &c.lease,
        Commit {
            data: vec![("k".to_owned(), b"v".to_vec())],
            children: vec![sub.clone()],
            ..Commit::outcome(Outcome::Waiting { on: vec![sub.id] })
        },
        at(1),
    );
    let c = claim_expect(store, "w", at(2), sub.id);
    succeed(store, &c.lease, b"s", at(3));
    let c = claim_expect(store, "w", at(4), a.id);
    succeed(store, &c.lease, b"a", at(10));
    // B finished at 100 s; C never finishes.
    let b = root(2, "b", b"");
    submit(store, &b, at(11));
    let c = ok(
        store.claim(
            &worker("w"),
            &suite_tasks(),
            std::time::Duration::from_secs(600),
            at(11),
        ),
        "claim b",
    )
    .unwrap_or_else(|| panic!("b must be claimable"));
    assert_eq!(c.lease.invocation, b.id);
    succeed(store, &c.lease, b"b", at(100));
    let unfinished = root(3, "c", b"");
    submit(store, &unfinished, at(12));

    let before = ok(store.counts(), "counts");
    assert_eq!(
        ok(store.purgeable(at(50)), "purgeable at 50 s"),
        [a.id, sub.id],
        "A and its sub-workflow, in creation order"
    );
    assert_eq!(ok(store.purgeable(at(10)), "purgeable at 10 s"), []);
    let everything = ok(store.purgeable(at(100_000)), "purgeable later");
    assert_eq!(everything, [a.id, sub.id, b.id], "never the unfinished C");
    assert_eq!(
        ok(store.counts(), "counts"),
        before,
        "purgeable removes nothing"
    );
    assert_eq!(
        ok(store.get_data(a.id, "k"), "data").as_deref(),
        Some(&b"v"[..])
    );

    assert_eq!(
        ok(store.purge_finished(at(50)), "purge at 50 s"),
        2,
        "purge removes what purgeable listed"
    );
    assert_not_found(store.invocation(a.id), a.id, "purged A");
    assert_not_found(store.invocation(sub.id), sub.id, "purged sub-workflow");
    assert_eq!(ok(store.purgeable(at(50)), "purgeable after the purge"), []);
    assert_eq!(ok(store.purgeable(at(100_000)), "purgeable later"), [b.id]);
}
