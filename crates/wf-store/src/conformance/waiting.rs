//! Waiting parents: suspended on children, woken once when the last one is final.

use std::sync::{Barrier, Mutex};
use std::thread;

use wf_core::{InvocationId, Status};

use crate::model::{Commit, InvocationRecord, NewInvocation, Outcome, Suspension};

use super::Subject;
use super::fixtures::*;

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

/// A child its parent does not wait on leaves the parent alone when it finishes: a parent
/// asleep on a timer, with a child it started and did not await, sleeps on until its timer
/// (a child's end wakes only a parent waiting on that child).
pub fn a_child_not_awaited_does_not_wake_its_parent(s: Subject) {
    let store = &*s.store;
    let p = root(1, "parent", b"");
    let kid = child(2, &p, "kid", b"");
    submit(store, &p, T0);
    let pc = claim_expect(store, "w", T0, p.id);
    commit(
        store,
        &pc.lease,
        Commit {
            children: vec![kid.clone()],
            ..suspended(Suspension {
                wake_at: Some(at(60)),
                ..Suspension::default()
            })
        },
        at(1),
    );
    let k = claim_expect(store, "w", at(2), kid.id);
    succeed(store, &k.lease, b"done", at(3));
    let rec = record(store, p.id);
    assert_eq!(
        rec.state.status,
        Status::Waiting,
        "a child the parent did not wait on finished: the parent still sleeps"
    );
    assert_eq!(
        rec.state.not_before,
        Some(at(60)),
        "the parent keeps its wake time"
    );
    assert_nothing_claimable(store, at(59), "the parent sleeps until its timer");
    let again = claim_expect(store, "w", at(60), p.id);
    assert_eq!(again.lease.attempt, 2);
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
                while let Some(c) = ok(store.claim(&w, &suite_tasks(), LEASE, at(2)), "claim") {
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
