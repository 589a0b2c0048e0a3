//! Submitting: idempotent by id, conflicts refused.

use wf_core::Status;

use crate::error::StoreError;
use crate::model::Submitted;

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
