//! Unit tests of [`Tables`] for what bounds a store: an operation rolled back leaves no trace,
//! and a purge in batches removes whole trees of its candidates only.

use std::time::Duration;

use wf_core::{InvocationId, Timestamp, WorkerId};

use super::Tables;
use super::tests::{TASKS, child, claim, claim_order, root};
use crate::conformance::fixtures::{self, at_ms as at, tasks};
use crate::model::{Commit, NewInvocation, Outcome, StatusCounts};
use crate::tables::Change;

/// Everything an undo must restore: the snapshot (app, records, journals, events, cancellation
/// requests, queue order, data), counts, what a claim would hand out, and each workflow's
/// members in order.
type Seen = (
    Vec<Change>,
    StatusCounts,
    Vec<InvocationId>,
    Vec<(InvocationId, Vec<InvocationId>)>,
    Vec<(InvocationId, Vec<InvocationId>)>,
);

fn everything_seen(t: &Tables, now: Timestamp) -> Seen {
    let members = t
        .workflow_roots()
        .iter()
        .map(|r| (r.id(), t.workflow_invocations(r.id())))
        .collect();
    // Each invocation's children (what `cancel_tree` and retention walk): derived, not in the
    // snapshot.
    let mut children: Vec<(InvocationId, Vec<InvocationId>)> = t
        .children
        .iter()
        .map(|(id, kids)| (*id, kids.clone()))
        .collect();
    children.sort();
    (
        t.snapshot(),
        t.counts(),
        claim_order(t, &tasks(&TASKS), now),
        members,
        children,
    )
}

/// Runs `op` recorded for undoing, rolls it back and asserts the tables are as before; then
/// runs it again for good and asserts it does what it does on tables that never rolled back
/// (so sequence numbers and queue places given back are given out the same way again).
fn assert_undone(t: &mut Tables, now: Timestamp, op: impl Fn(&mut Tables, &mut Vec<Change>)) {
    let before = t.clone();
    t.begin_undo();
    let mut out = Vec::new();
    op(t, &mut out);
    assert!(!out.is_empty(), "the operation changed something");
    assert!(t.roll_back(), "every change of the operation can be undone");
    assert!(
        everything_seen(t, now) == everything_seen(&before, now),
        "a rolled back operation leaves no trace"
    );
    let mut reference = before;
    op(&mut reference, &mut Vec::new());
    op(t, &mut Vec::new());
    assert!(
        everything_seen(t, now) == everything_seen(&reference, now),
        "the operation done again after a roll-back"
    );
}

#[test]
fn roll_back_restores_the_tables_exactly() {
    let mut t = Tables::new();
    let mut out = Vec::new();
    t.bind_app(&mut out, "dir", "app").unwrap();
    let p = root(1);
    let q = root(2);
    let r = root(3);
    for inv in [&p, &q, &r] {
        t.submit(&mut out, inv.clone(), at(0)).unwrap();
    }
    // p runs and waits on two children, one of which it runs inline (a checkpoint).
    let lp = claim(&mut t, &mut out, &tasks(&TASKS), at(1))
        .unwrap()
        .lease;
    let (c1, c2) = (child(0x11, &p), child(0x12, &p));
    assert_undone(&mut t, at(5), |t, out| {
        t.commit(
            out,
            &lp,
            Commit {
                journal: fixtures::entries(0, 2),
                data: vec![("k".to_owned(), b"v".to_vec())],
                children: vec![c1.clone(), c2.clone()],
                ..Commit::outcome(Outcome::Waiting {
                    on: vec![c1.id, c2.id],
                })
            },
            at(2),
        )
        .unwrap();
    });
    // q's lease expires; a claim recovers it and takes the oldest runnable.
    let lq = claim(&mut t, &mut out, &tasks(&TASKS), at(3))
        .unwrap()
        .lease;
    assert_undone(&mut t, at(5), |t, out| {
        t.claim(
            out,
            &WorkerId::new("w2"),
            &tasks(&TASKS),
            Duration::from_secs(60),
            lq.expires_at.saturating_add(Duration::from_millis(1)),
        )
        .unwrap();
    });
    // A child finishes while its parent still waits on the other.
    let lc = claim(&mut t, &mut out, &tasks(&TASKS), at(4))
        .unwrap()
        .lease;
    assert_undone(&mut t, at(5), |t, out| {
        t.commit(
            out,
            &lc,
            Commit::outcome(Outcome::Success(b"r".to_vec())),
            at(4),
        )
        .unwrap();
    });
    // Steering: an event, then a tree cancellation.
    assert_undone(&mut t, at(5), |t, out| {
        let event = crate::steering::NewEvent {
            name: "go".to_owned(),
            payload: b"x".to_vec(),
            key: Some("k1".to_owned()),
        };
        t.send_event(out, p.id, event, at(5)).unwrap();
    });
    // A third member joins p's workflow (p and its two children are in it).
    let c3 = child(0x13, &p);
    assert_undone(&mut t, at(6), |t, out| {
        t.submit(out, c3.clone(), at(6)).unwrap();
    });
    assert_eq!(
        t.workflow_invocations(p.id),
        vec![p.id, c1.id, c2.id, c3.id]
    );
    assert_undone(&mut t, at(6), |t, out| {
        t.cancel_tree(out, p.id, "stop", at(6)).unwrap();
    });
}

/// A purge in batches looks only at its candidates: a finished sub-workflow goes with the tree
/// its top heads (never alone, even when it is the candidate), and a tree goes whole once its
/// top is a candidate, sub-workflows not in the batch included.
#[test]
fn purge_trees_removes_whole_trees_of_the_candidates_only() {
    let mut t = Tables::new();
    let mut out = Vec::new();
    let (a, b) = (root(1), root(2));
    let sub = fixtures::subworkflow(3, &a, "t", b"");
    t.submit(&mut out, a.clone(), at(0)).unwrap();
    t.submit(&mut out, b.clone(), at(0)).unwrap();
    let la = claim(&mut t, &mut out, &tasks(&TASKS), at(1))
        .unwrap()
        .lease;
    let commit = Commit {
        children: vec![sub.clone()],
        ..Commit::outcome(Outcome::Waiting { on: vec![sub.id] })
    };
    t.commit(&mut out, &la, commit, at(1)).unwrap();
    for _ in 0..3 {
        let c = claim(&mut t, &mut out, &tasks(&TASKS), at(2)).unwrap();
        let done = Commit::outcome(Outcome::Success(Vec::new()));
        t.commit(&mut out, &c.lease, done, at(2)).unwrap();
    }
    assert!(
        [a.id, b.id, sub.id]
            .iter()
            .all(|i| t.status(*i).unwrap().is_final())
    );
    assert_eq!(
        t.purge_trees(&mut out, &[sub.id], at(10)),
        0,
        "a sub-workflow never goes alone"
    );
    assert_eq!(
        t.purge_trees(&mut out, &[a.id], at(10)),
        2,
        "a tree goes whole"
    );
    assert!(t.status(sub.id).is_none() && t.status(a.id).is_none());
    assert!(
        t.status(b.id).is_some(),
        "a workflow not among the candidates stays"
    );
    assert_eq!(
        t.purge_trees(&mut out, &[b.id], at(2)),
        0,
        "finished too recently"
    );
    assert_eq!(t.purge_trees(&mut out, &[b.id], at(3)), 1);
}

/// A candidate that is not a workflow (here an invocation of a workflow whose root is not
/// stored, finished) is skipped: the purge neither counts it nor logs anything for it.
#[test]
fn purge_trees_skips_candidates_that_are_not_workflows() {
    let mut t = Tables::new();
    let mut out = Vec::new();
    let absent = root(1);
    let orphan = child(2, &absent);
    t.submit(&mut out, orphan.clone(), at(0)).unwrap();
    let lease = claim(&mut t, &mut out, &tasks(&TASKS), at(1))
        .unwrap()
        .lease;
    t.commit(
        &mut out,
        &lease,
        Commit::outcome(Outcome::Success(b"r".to_vec())),
        at(2),
    )
    .unwrap();
    let mut out = Vec::new();
    let removed = t.purge_trees(&mut out, &[orphan.id, absent.id], at(1_000_000));
    assert_eq!(removed, 0, "nothing is a workflow to remove: {out:?}");
    assert!(out.is_empty(), "nothing logged: {out:?}");
    assert!(t.invocation(orphan.id).is_ok());
}

/// A child that joins another workflow (one it does not root) is a member of that workflow,
/// not a sub-workflow of its caller's tree: the caller's finished workflow goes, although the
/// other workflow still runs.
#[test]
fn a_child_in_another_workflow_does_not_join_its_callers_tree() {
    let mut t = Tables::new();
    let mut out = Vec::new();
    let p = root(1);
    let w = root(2);
    t.submit(&mut out, p.clone(), at(0)).unwrap();
    t.submit(&mut out, w.clone(), at(0)).unwrap();
    let lease = claim(&mut t, &mut out, &tasks(&TASKS), at(1))
        .unwrap()
        .lease;
    assert_eq!(lease.invocation, p.id);
    let joins_w = NewInvocation {
        parent: Some(p.id),
        ..child(3, &w)
    };
    t.commit(
        &mut out,
        &lease,
        Commit {
            children: vec![joins_w.clone()],
            ..Commit::outcome(Outcome::Success(b"r".to_vec()))
        },
        at(2),
    )
    .unwrap();
    assert_eq!(t.workflow_invocations(w.id), vec![w.id, joins_w.id]);
    assert_eq!(t.purgeable(at(1_000_000)), vec![p.id]);
    let removed = t.purge_trees(&mut out, &[p.id], at(1_000_000));
    assert_eq!(removed, 1, "p's workflow goes alone, w's runs on");
    assert!(t.invocation(w.id).is_ok());
}

/// `keep_changes` stops recording and forgets what was recorded: a later `roll_back` undoes
/// nothing, neither the kept operation nor one done after it.
#[test]
fn kept_changes_stand_through_a_later_roll_back() {
    let mut t = Tables::new();
    let mut out = Vec::new();
    t.begin_undo();
    t.submit(&mut out, root(1), at(0)).unwrap();
    t.keep_changes();
    t.submit(&mut out, root(2), at(1)).unwrap();
    assert!(t.roll_back(), "nothing to undo is whole");
    for n in [1, 2] {
        assert!(t.invocation(root(n).id).is_ok(), "root {n} stands");
    }
}

/// A purge cannot be undone: a roll-back over one says so (the caller must treat its state as
/// lost), even when the changes recorded after it could be undone.
#[test]
fn a_roll_back_over_a_purge_says_it_is_not_whole() {
    let mut t = Tables::new();
    let mut out = Vec::new();
    let p = root(1);
    t.submit(&mut out, p.clone(), at(0)).unwrap();
    let lease = claim(&mut t, &mut out, &tasks(&TASKS), at(1))
        .unwrap()
        .lease;
    t.commit(
        &mut out,
        &lease,
        Commit::outcome(Outcome::Success(b"r".to_vec())),
        at(2),
    )
    .unwrap();
    t.begin_undo();
    assert_eq!(t.purge_finished(&mut out, at(1_000_000)), 1);
    t.submit(&mut out, root(2), at(3)).unwrap();
    assert!(!t.roll_back(), "the purge cannot be undone");
}

/// Undoing an event sent to an invocation that had events keeps the earlier ones; undoing a
/// commit that consumed an event marks that one unconsumed again, and only that one.
#[test]
fn roll_back_restores_events_and_their_consumption() {
    let mut t = Tables::new();
    let mut out = Vec::new();
    let p = root(1);
    t.submit(&mut out, p.clone(), at(0)).unwrap();
    let event = |name: &str| crate::steering::NewEvent {
        name: name.to_owned(),
        payload: b"x".to_vec(),
        key: None,
    };
    t.send_event(&mut out, p.id, event("a"), at(1)).unwrap();
    let lease = claim(&mut t, &mut out, &tasks(&TASKS), at(2))
        .unwrap()
        .lease;
    t.commit(
        &mut out,
        &lease,
        Commit {
            consumed: vec![0],
            ..Commit::outcome(Outcome::Released)
        },
        at(3),
    )
    .unwrap();
    assert_undone(&mut t, at(4), |t, out| {
        t.send_event(out, p.id, event("b"), at(4)).unwrap();
    });
    let lease = claim(&mut t, &mut out, &tasks(&TASKS), at(5))
        .unwrap()
        .lease;
    assert_undone(&mut t, at(6), |t, out| {
        t.commit(
            out,
            &lease,
            Commit {
                consumed: vec![1],
                ..Commit::outcome(Outcome::Released)
            },
            at(6),
        )
        .unwrap();
    });
    let consumed: Vec<bool> = t
        .events(p.id)
        .unwrap()
        .events
        .iter()
        .map(|e| e.consumed)
        .collect();
    assert_eq!(consumed, vec![true, true]);
}
