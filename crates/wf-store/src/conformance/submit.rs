//! Submitting: idempotent by id, conflicts refused.

use wf_core::Status;

use crate::error::StoreError;
use crate::limits::MAX_TASK_NAME_BYTES;
use crate::model::{Commit, Outcome, Submitted};

use super::Subject;
use super::fixtures::*;

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

/// A batch is submitted in one call, in order, each idempotent by id (an invocation already
/// stored, and an identical repeat inside the batch, are `AlreadyExists`), and claimed in the
/// order given.
pub fn submit_many_is_one_atomic_batch(s: Subject) {
    let store = &*s.store;
    let stored = root(1, "t", b"a");
    submit(store, &stored, T0);
    let (a, b) = (root(2, "t", b"b"), root(3, "u", b"c"));
    let answers = ok(
        store.submit_many(vec![a.clone(), stored.clone(), b.clone(), a.clone()], at(1)),
        "submit_many",
    );
    assert_eq!(
        answers,
        vec![
            Submitted::Created,
            Submitted::AlreadyExists,
            Submitted::Created,
            Submitted::AlreadyExists
        ],
        "one answer per submission, in order; repeats and stored ids already exist"
    );
    assert_eq!(ok(store.counts(), "counts").total(), 3);
    assert_eq!(
        record(store, stored.id).spec.created_at,
        T0,
        "a batch must not touch an invocation already stored"
    );
    for inv in [&a, &b] {
        let rec = record(store, inv.id);
        assert_eq!(rec.state.status, Status::Pending);
        assert_eq!(rec.spec.args, inv.args);
        assert_eq!(rec.spec.created_at, at(1));
    }
    for expected in [stored.id, a.id, b.id] {
        claim_expect(store, "w", at(2), expected);
    }
    assert_eq!(
        ok(store.submit_many(Vec::new(), at(3)), "an empty batch"),
        Vec::new()
    );
}

/// A batch with one conflicting submission (against the store, or against an earlier one in the
/// batch) is refused whole: nothing of it is stored.
pub fn submit_many_conflict_submits_nothing(s: Subject) {
    let store = &*s.store;
    let stored = root(1, "t", b"a");
    submit(store, &stored, T0);
    let fresh = root(2, "t", b"b");
    let conflicting = root(1, "t", b"other args");
    match err(
        store.submit_many(vec![fresh.clone(), conflicting], at(1)),
        "a batch conflicting with the store",
    ) {
        StoreError::Conflict(i) => assert_eq!(i, stored.id),
        other => panic!("expected Conflict({}), got {other:?}", stored.id),
    }
    assert_not_found(
        store.invocation(fresh.id),
        fresh.id,
        "a refused batch must submit nothing, not even the submissions before the conflict",
    );

    let twin = root(2, "t", b"twin with other args");
    match err(
        store.submit_many(vec![fresh.clone(), twin], at(2)),
        "a batch conflicting with itself",
    ) {
        StoreError::Conflict(i) => assert_eq!(i, fresh.id),
        other => panic!("expected Conflict({}), got {other:?}", fresh.id),
    }
    assert_not_found(
        store.invocation(fresh.id),
        fresh.id,
        "a batch conflicting with itself must submit nothing",
    );
    assert_eq!(ok(store.counts(), "counts").total(), 1);
    assert_eq!(record(store, stored.id).spec.args, b"a");
}

/// Asserts that `result` is [`StoreError::TooLarge`] for a task name of `len` bytes.
#[track_caller]
fn assert_long_task_name<T: std::fmt::Debug>(
    result: Result<T, StoreError>,
    len: usize,
    what: &str,
) {
    match err(result, what) {
        StoreError::TooLarge { size, limit, .. } => {
            assert_eq!((size, limit), (len, MAX_TASK_NAME_BYTES), "{what}");
        }
        other => panic!("{what}: expected TooLarge, got {other:?}"),
    }
}

/// A task name longer than [`MAX_TASK_NAME_BYTES`] is `TooLarge`, whether submitted alone, in a
/// batch or as a child in a commit, and nothing is written; one at the limit is accepted.
pub fn long_task_names_are_refused(s: Subject) {
    let store = &*s.store;
    let long = "t".repeat(MAX_TASK_NAME_BYTES + 1);
    let len = long.len();
    let refused = root(1, &long, b"");
    assert_long_task_name(store.submit(refused.clone(), T0), len, "submit");
    assert_not_found(
        store.invocation(refused.id),
        refused.id,
        "the refused submission",
    );
    let fine = root(2, "t", b"");
    assert_long_task_name(
        store.submit_many(vec![fine.clone(), refused.clone()], T0),
        len,
        "submit_many",
    );
    assert_not_found(
        store.invocation(fine.id),
        fine.id,
        "a refused batch submits nothing",
    );
    let at_limit = root(3, &"u".repeat(MAX_TASK_NAME_BYTES), b"");
    submit(store, &at_limit, T0);

    submit(store, &fine, T0);
    let c = claim_expect(store, "w", at(1), fine.id);
    let kid = child(20, &fine, &long, b"");
    assert_long_task_name(
        store.commit(
            &c.lease,
            Commit {
                journal: entries(0, 1),
                children: vec![kid],
                ..Commit::outcome(Outcome::Waiting { on: vec![id(20)] })
            },
            at(2),
        ),
        len,
        "a commit with a child of a long task name",
    );
    assert_not_found(store.invocation(id(20)), id(20), "the refused child");
    assert_eq!(
        status(store, fine.id),
        Status::Running,
        "the refused commit wrote nothing"
    );
}
