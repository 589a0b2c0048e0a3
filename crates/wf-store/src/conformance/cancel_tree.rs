//! Cancelling a workflow tree (`cancel_tree`): pending and waiting members at once, running
//! ones at their next commit (after compensating, when their body was told), harmless to repeat.

use wf_core::{FailureKind, Status};

use crate::model::{Commit, Outcome};
use crate::steering::{EventSent, NewEvent};

use super::Subject;
use super::fixtures::*;

/// The tree of a fan-out workflow: its root waits on four children, one pending, one running,
/// one finished, and a sub-workflow waiting on a pending child of its own. Cancelling the tree
/// (by its root) cancels the pending and waiting members at once, parents before their
/// children, asks the running one to stop and leaves the finished one.
pub fn cancel_tree_cancels_a_fan_out(s: Subject) {
    let store = &*s.store;
    let p = root(1, "p", b"");
    let k1 = child(2, &p, "k1", b"");
    let k2 = child(3, &p, "k2", b"");
    let k3 = child(4, &p, "k3", b"");
    let sub = subworkflow(5, &p, "sub", b"");
    let sk = child(6, &sub, "sk", b"");
    submit(store, &p, T0);
    let pc = claim_task(store, "p", T0);
    let kids = vec![k1.clone(), k2.clone(), k3.clone(), sub.clone()];
    commit(
        store,
        &pc.lease,
        Commit {
            children: kids.clone(),
            ..Commit::outcome(Outcome::Waiting {
                on: kids.iter().map(|k| k.id).collect(),
            })
        },
        at(1),
    );
    let c3 = claim_task(store, "k3", at(2));
    succeed(store, &c3.lease, b"3", at(2));
    let _running = claim_task(store, "k2", at(3));
    let sc = claim_task(store, "sub", at(3));
    commit(
        store,
        &sc.lease,
        Commit {
            children: vec![sk.clone()],
            ..Commit::outcome(Outcome::Waiting { on: vec![sk.id] })
        },
        at(4),
    );

    let report = ok(
        store.cancel_tree(p.id, "the customer gave up", at(10)),
        "cancel_tree",
    );
    assert_eq!(report.invocation, p.id);
    assert_eq!(report.status_before, Status::Waiting);
    assert!(!report.was_final() && report.changed_anything());
    assert_eq!(report.cancelled, vec![p.id, k1.id, sub.id, sk.id]);
    assert_eq!(report.stopping, vec![k2.id]);
    assert!(report.already_stopping.is_empty());
    for m in [p.id, k1.id, sub.id, sk.id] {
        let rec = record(store, m);
        assert_eq!(rec.state.status, Status::Cancelled, "{m}");
        let error = rec
            .state
            .error
            .unwrap_or_else(|| panic!("{m} carries an error"));
        assert_eq!(error.kind, FailureKind::Cancelled);
        assert!(error.message.contains("the customer gave up"), "{error}");
        assert_eq!(rec.state.updated_at, at(10));
    }
    assert_eq!(
        status(store, k2.id),
        Status::Running,
        "running: asked to stop"
    );
    assert_eq!(
        status(store, k3.id),
        Status::Success,
        "finished: left alone"
    );
    assert_eq!(
        ok(
            store.cancel_requests(&[p.id, k1.id, k2.id, k3.id, id(99)]),
            "cancel_requests"
        ),
        vec![(k2.id, "the customer gave up".to_owned())]
    );
    assert_nothing_claimable(
        store,
        at(11),
        "everything left is cancelled, running or final",
    );
    assert_eq!(ok(store.counts(), "counts").get(Status::Cancelled), 4);
}

/// A running member asked to stop, whose body was not told (its commit does not acknowledge
/// the cancellation), ends cancelled at that commit: nothing else of the commit is written, and
/// its waiting parent outside the cancelled tree wakes to see it cancelled.
pub fn a_stopping_member_ends_cancelled_at_its_commit(s: Subject) {
    let store = &*s.store;
    let p = root(1, "p", b"");
    let k = child(2, &p, "k", b"");
    submit(store, &p, T0);
    let pc = claim_task(store, "p", T0);
    commit(
        store,
        &pc.lease,
        Commit {
            children: vec![k.clone()],
            ..Commit::outcome(Outcome::Waiting { on: vec![k.id] })
        },
        at(1),
    );
    let kc = claim_task(store, "k", at(2));
    let report = ok(
        store.cancel_tree(k.id, "not needed", at(3)),
        "cancel_tree of k",
    );
    assert_eq!(report.stopping, vec![k.id]);
    assert!(report.cancelled.is_empty());
    assert_eq!(status(store, p.id), Status::Waiting, "outside the tree");

    let mut late = everything(&k, 0, 50);
    late.data.clear(); // a child may not write data; the commit is the cancellation anyway
    commit(store, &kc.lease, late, at(4));
    let rec = record(store, k.id);
    assert_eq!(rec.state.status, Status::Cancelled);
    assert_eq!(
        rec.state.result, None,
        "the result of an untold body is not kept"
    );
    assert!(
        ok(store.journal(k.id), "journal").is_empty(),
        "nothing of the commit is written"
    );
    assert_not_found(store.invocation(id(50)), id(50), "the commit's child");
    assert_eq!(status(store, p.id), Status::Pending, "its parent wakes");
    assert!(
        ok(store.cancel_requests(&[k.id]), "cancel_requests").is_empty(),
        "it is final"
    );
}

/// A running member told of its cancellation (its commits acknowledge it) may suspend and wake
/// to run compensating steps; a second cancellation leaves it and its compensating children
/// alone; when it ends, whatever its outcome, it ends cancelled.
pub fn a_told_member_compensates_then_ends_cancelled(s: Subject) {
    let store = &*s.store;
    let r = root(1, "r", b"");
    let undo = child(2, &r, "k", b"undo");
    submit(store, &r, T0);
    let rc = claim_task(store, "r", T0);
    let report = ok(store.cancel_tree(r.id, "stop", at(1)), "cancel_tree");
    assert_eq!(report.stopping, vec![r.id]);
    commit(
        store,
        &rc.lease,
        Commit {
            journal: entries(0, 2),
            children: vec![undo.clone()],
            cancel_acknowledged: true,
            ..Commit::outcome(Outcome::Waiting { on: vec![undo.id] })
        },
        at(2),
    );
    assert_eq!(status(store, r.id), Status::Waiting, "compensating");
    assert_eq!(ok(store.journal(r.id), "journal").len(), 2);
    let again = ok(store.cancel_tree(r.id, "stop!", at(3)), "cancel_tree again");
    assert_eq!(again.already_stopping, vec![r.id]);
    assert!(!again.changed_anything());
    assert_eq!(
        status(store, undo.id),
        Status::Pending,
        "compensation is not cancelled"
    );

    let uc = claim_task(store, "k", at(4));
    succeed(store, &uc.lease, b"undone", at(5));
    assert_eq!(status(store, r.id), Status::Pending);
    let rc = claim_task(store, "r", at(6));
    commit(
        store,
        &rc.lease,
        Commit {
            journal: entries(2, 1),
            cancel_acknowledged: true,
            ..Commit::outcome(Outcome::Success(b"compensated".to_vec()))
        },
        at(7),
    );
    let rec = record(store, r.id);
    assert_eq!(
        rec.state.status,
        Status::Cancelled,
        "it ends cancelled, not successful"
    );
    assert_eq!(rec.state.result, None);
    assert_eq!(
        rec.state.error.map(|e| e.kind),
        Some(FailureKind::Cancelled)
    );
    assert_eq!(
        ok(store.journal(r.id), "journal").len(),
        3,
        "its compensation is kept"
    );
}

/// Cancelling a final invocation, or cancelling again, changes nothing and says so; an
/// unknown id is `InvocationNotFound`.
pub fn cancelling_again_or_a_final_invocation_is_harmless(s: Subject) {
    let store = &*s.store;
    let good = root(1, "good", b"");
    run_to_success(store, &good, T0);
    let before = record(store, good.id);
    let report = ok(
        store.cancel_tree(good.id, "late", at(1)),
        "cancel a finished one",
    );
    assert!(report.was_final() && !report.changed_anything());
    assert_eq!(report.status_before, Status::Success);
    assert_eq!(record(store, good.id), before);
    assert!(report.to_string().contains("already final"), "{report}");

    let p = root(2, "p", b"");
    submit(store, &p, at(2));
    let first = ok(store.cancel_tree(p.id, "stop", at(3)), "cancel");
    assert_eq!(first.cancelled, vec![p.id]);
    let second = ok(store.cancel_tree(p.id, "stop", at(4)), "cancel again");
    assert_eq!(second.status_before, Status::Cancelled);
    assert!(second.was_final() && !second.changed_anything());
    assert_eq!(record(store, p.id).state.updated_at, at(3));
    let ghost = id(99);
    assert_not_found(
        store.cancel_tree(ghost, "x", T0),
        ghost,
        "cancel_tree of a ghost",
    );
}

/// A running member asked to stop whose worker is lost ends cancelled at recovery instead of
/// running again; one that was told and is compensating is recovered to go on compensating.
pub fn a_stopping_member_whose_worker_is_lost_ends_cancelled(s: Subject) {
    let store = &*s.store;
    let r = root(1, "r", b"");
    submit(store, &r, T0);
    claim_task(store, "r", T0);
    ok(store.cancel_tree(r.id, "stop", at(1)), "cancel_tree");
    let lost = ok(store.recover_expired(at(31)), "recover");
    assert_eq!(lost, vec![r.id]);
    assert_eq!(status(store, r.id), Status::Cancelled);
    assert_nothing_claimable(store, at(32), "a cancelled invocation is not run again");

    let t = root(2, "t", b"");
    submit(store, &t, at(40));
    let c = claim_task(store, "t", at(40));
    ok(store.cancel_tree(t.id, "stop", at(41)), "cancel_tree");
    commit(
        store,
        &c.lease,
        Commit {
            journal: entries(0, 1),
            cancel_acknowledged: true,
            ..Commit::outcome(Outcome::Released)
        },
        at(42),
    );
    claim_task(store, "t", at(43));
    assert_eq!(ok(store.recover_expired(at(80)), "recover"), vec![t.id]);
    assert_eq!(
        status(store, t.id),
        Status::Pending,
        "told: it goes on compensating"
    );
}

/// A purged tree leaves none of its steering behind. Its root, submitted again under the same
/// id once the first run is gone (a fixed id used again), starts with no events, no
/// cancellation request and no children: cancelling it cancels it alone, and a new invocation
/// under its old child's id is not in its tree.
pub fn a_purged_root_submitted_again_starts_afresh(s: Subject) {
    let store = &*s.store;
    let p = root(1, "p", b"");
    let k = child(2, &p, "k", b"");
    submit(store, &p, T0);
    let go = NewEvent {
        name: "go".to_owned(),
        payload: b"1".to_vec(),
        key: Some("once".to_owned()),
    };
    ok(store.send_event(p.id, go.clone(), T0), "send an event to p");
    let pc = claim_task(store, "p", T0);
    start_and_wait(store, &pc.lease, &[&k], at(1));
    let kc = claim_task(store, "k", at(2));
    succeed(store, &kc.lease, b"k", at(3));
    let pc = claim_task(store, "p", at(4));
    let report = ok(store.cancel_tree(p.id, "stop", at(5)), "cancel_tree");
    assert_eq!(report.stopping, vec![p.id]);
    succeed(store, &pc.lease, b"p", at(6));
    assert_eq!(status(store, p.id), Status::Cancelled);
    assert_eq!(ok(store.purge_finished(at(100)), "purge"), 1);

    submit(store, &p, at(200));
    let other = root(2, "k", b"another call under the old child's id");
    submit(store, &other, at(200));
    let inbox = ok(store.events(p.id), "events of p submitted again");
    assert!(
        inbox.events.is_empty(),
        "the purged run's events are gone: {:?}",
        inbox.events
    );
    assert_eq!(
        ok(
            store.send_event(p.id, go, at(201)),
            "send the keyed event again"
        ),
        EventSent::Stored { seq: 0 },
        "the purged run's event keys are gone"
    );
    assert!(
        ok(store.cancel_requests(&[p.id]), "cancel_requests").is_empty(),
        "the purged run's cancellation request is gone"
    );
    let report = ok(
        store.cancel_tree(p.id, "again", at(202)),
        "cancel_tree again",
    );
    assert_eq!(
        (report.cancelled, report.stopping, report.already_stopping),
        (vec![p.id], vec![], vec![]),
        "p is cancelled alone, at once (not asked to stop again)"
    );
    assert_eq!(
        status(store, other.id),
        Status::Pending,
        "the purged run's children are not p's"
    );
}
