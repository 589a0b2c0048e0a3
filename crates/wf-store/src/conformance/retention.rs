//! Retention: purging finished workflow trees.

use std::time::Duration;

use wf_core::{InvocationId, Status};

use crate::model::{Commit, InvocationRecord, Outcome};

use super::Subject;
use super::fixtures::*;

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
            ..Commit::outcome(Outcome::Released)
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
        store.claim(
            &worker("w"),
            &suite_tasks(),
            Duration::from_secs(600),
            at(11),
        ),
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
    assert_eq!(status(store, d.id), Status::Cancelled);
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
        store.claim(
            &worker("w"),
            &suite_tasks(),
            Duration::from_secs(600),
            at(2),
        ),
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
        store.claim(
            &worker("w"),
            &suite_tasks(),
            Duration::from_secs(600),
            at(21),
        ),
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
