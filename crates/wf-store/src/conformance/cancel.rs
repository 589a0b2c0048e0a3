//! Force-cancelling one invocation (`cancel`), and the transition table. Cancelling a tree is
//! the `cancel_tree` topic.

use wf_core::{FailureKind, Status};

use crate::error::StoreError;
use crate::model::{Commit, Outcome};

use super::Subject;
use super::fixtures::*;

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
                assert_eq!(source.to, Status::Cancelled);
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

/// Cancelling pending, retrying and waiting invocations makes them cancelled (a final status,
/// error kind `Cancelled`), they are never claimed again, and a cancelled child wakes its
/// waiting parent.
pub fn cancel_non_final(s: Subject) {
    let store = &*s.store;
    let pending = root(1, "pending", b"");
    submit(store, &pending, T0);
    ok(
        store.cancel(pending.id, "not needed", at(1)),
        "cancel pending",
    );
    let rec = record(store, pending.id);
    assert_eq!(rec.state.status, Status::Cancelled);
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
    assert_eq!(status(store, retrying.id), Status::Cancelled);
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
    assert_eq!(status(store, p.id), Status::Cancelled);
    let kc = claim_expect(store, "w", at(27), k3.id);
    succeed(store, &kc.lease, b"", at(28));
    assert_eq!(
        status(store, p.id),
        Status::Cancelled,
        "a finished child must not revive a cancelled parent"
    );
    assert_nothing_claimable(store, at(29), "nothing left");
}
