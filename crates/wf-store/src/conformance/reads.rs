//! Reads: not-found errors, batch reads, workflow membership, counts.

use std::time::Duration;

use wf_core::{InvocationId, Status};

use crate::model::{Commit, InvocationRecord, NewInvocation, Outcome};

use super::Subject;
use super::fixtures::*;

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
