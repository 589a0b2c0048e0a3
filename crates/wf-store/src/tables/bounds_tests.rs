//! Unit tests of [`Tables`] for what bounds a store: an operation rolled back leaves no trace,
//! and a purge in batches removes whole trees of its candidates only.

use std::time::Duration;

use wf_core::{InvocationId, Timestamp, WorkerId};

use super::Tables;
use super::tests::{TASKS, child, claim, claim_order, root};
use crate::conformance::fixtures::{self, at_ms as at, tasks};
use crate::model::{Commit, Outcome, StatusCounts};
use crate::tables::Change;

/// Everything an undo must restore: the snapshot (app, records, journals, events, cancellation
/// requests, queue order, data), counts, and what a claim would hand out.
fn everything_seen(t: &Tables, now: Timestamp) -> (Vec<Change>, StatusCounts, Vec<InvocationId>) {
    (
        t.snapshot(),
        t.counts(),
        claim_order(t, &tasks(&TASKS), now),
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
