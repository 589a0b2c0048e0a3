//! Commits: each outcome, and what makes a commit invalid.

use std::time::Duration;

use wf_core::{Failure, FailureKind, JournalEntry, Status, Timestamp};

use crate::error::StoreError;
use crate::model::{Commit, Outcome};

use super::Subject;
use super::fixtures::*;

/// Success stores the result, appends the journal and drops the lease.
pub fn commit_success(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"a");
    submit(store, &inv, T0);
    let c = claim_expect(store, "w", T0, inv.id);
    commit(
        store,
        &c.lease,
        Commit {
            journal: entries(0, 3),
            ..Commit::outcome(Outcome::Success(b"result".to_vec()))
        },
        at(1),
    );
    let rec = record(store, inv.id);
    assert_eq!(rec.state.status, Status::Success);
    assert_eq!(rec.state.result.as_deref(), Some(&b"result"[..]));
    assert_eq!(rec.state.error, None);
    assert_eq!(
        rec.state.lease, None,
        "a finished invocation holds no lease"
    );
    assert_eq!(rec.state.attempts, 1);
    assert_eq!(ok(store.journal(inv.id), "journal"), entries(0, 3));
    assert_nothing_claimable(store, at(100), "a successful invocation never runs again");
    assert_lease_lost(
        store.commit(&c.lease, Commit::outcome(Outcome::Released), at(2)),
        inv.id,
        "a second commit with the same lease",
    );
}

/// Failed stores the error and is final.
pub fn commit_failed(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"a");
    submit(store, &inv, T0);
    let c = claim_expect(store, "w", T0, inv.id);
    commit(
        store,
        &c.lease,
        Commit {
            journal: entries(0, 1),
            ..Commit::outcome(Outcome::Failed(failure("boom")))
        },
        at(1),
    );
    let rec = record(store, inv.id);
    assert_eq!(rec.state.status, Status::Failed);
    assert_eq!(rec.state.error, Some(failure("boom")));
    assert_eq!(rec.state.result, None);
    assert_eq!(rec.state.lease, None);
    assert_eq!(ok(store.journal(inv.id), "journal"), entries(0, 1));
    assert_nothing_claimable(store, at(100), "a failed invocation never runs again");
}

/// Retry records the error and makes the invocation claimable again at, not before, its
/// not-before time, as the next attempt.
pub fn commit_retry_honours_not_before(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"a");
    submit(store, &inv, T0);
    let c = claim_expect(store, "w", T0, inv.id);
    commit(
        store,
        &c.lease,
        Commit {
            journal: entries(0, 2),
            ..Commit::outcome(Outcome::Retry {
                not_before: at(60),
                error: failure("flaky"),
            })
        },
        at(1),
    );
    let rec = record(store, inv.id);
    assert_eq!(rec.state.status, Status::Retry);
    assert_eq!(rec.state.not_before, Some(at(60)));
    assert_eq!(rec.state.error, Some(failure("flaky")));
    assert_eq!(rec.state.retries, 1, "one retry spent");
    assert_eq!(rec.state.lease, None);

    assert_nothing_claimable(store, at(2), "retry before its not-before time");
    assert_nothing_claimable(
        store,
        at_ms(59_999),
        "retry 1 ms before its not-before time",
    );
    let c2 = claim_expect(store, "w2", at(60), inv.id);
    assert_eq!(c2.lease.attempt, 2, "a retry is the next attempt");
    assert_eq!(c2.record.state.status, Status::Running);
    assert_eq!(c2.journal, entries(0, 2));
    succeed(store, &c2.lease, b"finally", at(61));
    let rec = record(store, inv.id);
    assert_eq!(rec.state.status, Status::Success);
    assert_eq!(rec.state.retries, 1);
    assert_eq!(rec.state.attempts, 2);
}

/// Released hands the invocation back unfinished: pending and claimable at once.
pub fn commit_released_requeues(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"a");
    submit(store, &inv, T0);
    let c = claim_expect(store, "w", T0, inv.id);
    commit(store, &c.lease, Commit::outcome(Outcome::Released), at(1));
    let rec = record(store, inv.id);
    assert_eq!(rec.state.status, Status::Pending);
    assert_eq!(rec.state.lease, None);
    assert_eq!(rec.state.retries, 0, "a release is not a retry");
    let c2 = claim_expect(store, "w2", at(1), inv.id);
    assert_eq!(c2.lease.attempt, 2);
}

/// A deferred execution is pending again at its not-before time, keeps its error, and spends
/// no retry budget.
pub fn commit_deferred_honours_not_before_without_spending_retries(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "reads", b"");
    submit(store, &inv, T0);
    let first = claim_expect(store, "w", T0, inv.id);
    let error = Failure::new(FailureKind::Store, "the store did not answer");
    commit(
        store,
        &first.lease,
        Commit {
            journal: entries(0, 2),
            ..Commit::outcome(Outcome::Deferred {
                not_before: at(10),
                error: error.clone(),
            })
        },
        at(1),
    );
    let rec = record(store, inv.id);
    assert_eq!(rec.state.status, Status::Pending);
    assert_eq!(rec.state.retries, 0, "a deferral spends no retry budget");
    assert_eq!(rec.state.error, Some(error));
    assert_eq!(rec.state.lease, None);
    assert_eq!(
        ok(store.journal(inv.id), "journal").len(),
        2,
        "its journal is kept"
    );
    assert_nothing_claimable(store, at(9), "deferred until its not-before time");
    assert_eq!(ok(store.next_due(&suite_tasks()), "next_due"), Some(at(10)));
    let again = claim_expect(store, "w", at(10), inv.id);
    assert_eq!(again.lease.attempt, 2);
    assert_eq!(
        again.journal.len(),
        2,
        "the next attempt replays the kept journal"
    );
}

/// Journal entries must continue the stored sequence; a gap, an overlap or a restart is
/// `InvalidCommit` and writes nothing (the lease stays valid).
pub fn commit_journal_must_be_contiguous(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"a");
    submit(store, &inv, T0);
    let c = claim_expect(store, "w", T0, inv.id);
    commit(
        store,
        &c.lease,
        Commit {
            journal: entries(0, 3),
            ..Commit::outcome(Outcome::Released)
        },
        at(1),
    );
    let c = claim_expect(store, "w", at(2), inv.id);

    let gap = [entries(3, 1), entries(5, 1)].concat();
    let bad: [(&str, Vec<JournalEntry>); 4] = [
        ("a gap inside the batch", gap),
        ("a batch starting after the end", entries(4, 2)),
        ("a batch overlapping the stored journal", entries(2, 2)),
        ("a batch restarting at 0", entries(0, 4)),
    ];
    for (what, journal) in bad {
        let attempt = Commit {
            journal,
            ..everything(&inv, 0, 50)
        };
        assert_invalid(store.commit(&c.lease, attempt, at(3)), inv.id, what);
        assert_not_written(store, &inv, 3, 50);
        assert_eq!(
            status(store, inv.id),
            Status::Running,
            "{what}: an invalid commit leaves the invocation running"
        );
    }
    commit(
        store,
        &c.lease,
        Commit {
            journal: entries(3, 2),
            ..Commit::outcome(Outcome::Success(b"r".to_vec()))
        },
        at(4),
    );
    assert_eq!(ok(store.journal(inv.id), "journal"), entries(0, 5));
}

/// A child submitted by a commit must name the committing invocation as its parent.
pub fn commit_child_must_name_parent(s: Subject) {
    let store = &*s.store;
    let a = root(1, "a", b"");
    let b = root(2, "b", b"");
    submit(store, &a, T0);
    submit(store, &b, T0);
    let c = claim_expect(store, "w", T0, a.id);
    let foreign = child(20, &b, "c", b"");
    assert_invalid(
        store.commit(
            &c.lease,
            Commit {
                journal: entries(0, 1),
                children: vec![foreign],
                ..Commit::outcome(Outcome::Released)
            },
            at(1),
        ),
        a.id,
        "a child naming another parent",
    );
    assert_not_found(store.invocation(id(20)), id(20), "the refused child");
    assert!(ok(store.journal(a.id), "journal").is_empty());
    assert_eq!(status(store, a.id), Status::Running);
}

/// Two children under one id in one commit: identical ones are one child (created once); other
/// arguments under the same id are `Conflict` naming that id, and nothing of the commit is
/// written (the first child is not created, the journal is not appended, the lease holds).
pub fn commit_conflicting_duplicate_child_is_refused(s: Subject) {
    let store = &*s.store;
    let p = root(1, "p", b"");
    submit(store, &p, T0);
    let c = claim_expect(store, "w", T0, p.id);
    let first = child(20, &p, "c", b"one");
    let other = child(20, &p, "c", b"two");
    let refused = store.commit(
        &c.lease,
        Commit {
            journal: entries(0, 1),
            children: vec![first.clone(), other],
            ..Commit::outcome(Outcome::Waiting { on: vec![id(20)] })
        },
        at(1),
    );
    match err(
        refused,
        "a commit with two children under one id, other arguments",
    ) {
        StoreError::Conflict(i) => assert_eq!(i, id(20), "the conflict names the child"),
        other => panic!("expected Conflict({}), got {other:?}", id(20)),
    }
    assert_not_found(store.invocation(id(20)), id(20), "the conflicting child");
    assert!(
        ok(store.journal(p.id), "journal").is_empty(),
        "a refused commit appends nothing"
    );
    assert_eq!(
        status(store, p.id),
        Status::Running,
        "the lease still holds"
    );

    commit(
        store,
        &c.lease,
        Commit {
            journal: entries(0, 1),
            children: vec![first.clone(), first.clone()],
            ..Commit::outcome(Outcome::Waiting { on: vec![id(20)] })
        },
        at(2),
    );
    let kid = record(store, id(20));
    assert_eq!(kid.spec.args, b"one", "the child's arguments");
    assert_eq!(
        ok(store.workflow_invocations(p.id), "members"),
        vec![p.id, id(20)],
        "an identical repeat is one child"
    );
    assert_eq!(status(store, p.id), Status::Waiting);
}

/// A pipelined commit is a commit: the children it submits are claimable, the parent it
/// completes wakes, `wait_final` and reads see its outcome, and a stale lease is refused.
pub fn pipelined_commit_is_a_commit(s: Subject) {
    let store = &*s.store;
    let parent = root(1, "t", b"p");
    let kid = child(2, &parent, "t", b"c");
    submit(store, &parent, T0);
    let p = claim_expect(store, "w", T0, parent.id);
    ok(
        store.commit_pipelined(
            &p.lease,
            Commit {
                journal: entries(0, 1),
                children: vec![kid.clone()],
                ..Commit::outcome(Outcome::Waiting { on: vec![kid.id] })
            },
            at(1),
        ),
        "a pipelined commit that suspends on a child",
    );
    let k = claim_expect(store, "w", at(2), kid.id);
    ok(
        store.commit_pipelined(
            &k.lease,
            Commit::outcome(Outcome::Success(b"kid".to_vec())),
            at(3),
        ),
        "the child's pipelined commit",
    );
    let kid_rec = ok(
        store.wait_final(kid.id, Duration::from_secs(10)),
        "wait_final",
    )
    .unwrap_or_else(|| panic!("the child's pipelined commit made it final"));
    assert_eq!(kid_rec.state.status, Status::Success);
    assert_eq!(kid_rec.state.result.as_deref(), Some(&b"kid"[..]));
    let p2 = claim_expect(store, "w", at(4), parent.id);
    assert_eq!(
        p2.journal,
        entries(0, 1),
        "the parent's journal, as committed"
    );
    assert_lease_lost(
        store.commit_pipelined(&p.lease, Commit::outcome(Outcome::Released), at(5)),
        parent.id,
        "a pipelined commit with the first attempt's lease",
    );
    ok(
        store.commit_pipelined(
            &p2.lease,
            Commit {
                journal: entries(1, 1),
                ..Commit::outcome(Outcome::Failed(failure("boom")))
            },
            at(6),
        ),
        "the parent's second pipelined commit",
    );
    let rec = ok(
        store.wait_final(parent.id, Duration::from_secs(10)),
        "wait_final",
    )
    .unwrap_or_else(|| panic!("the parent's pipelined commit made it final"));
    assert_eq!(rec.state.status, Status::Failed);
    assert_eq!(rec.state.error, Some(failure("boom")));
    assert_eq!(ok(store.journal(parent.id), "journal"), entries(0, 2));
}

/// `commit_then_claim` commits (the outcome is stored, `wait_final` sees it, a parent it
/// completes wakes) and then claims for the lease's worker what a claim would take next: the
/// runnable invocation of the given tasks waiting longest, leased until `now + lease_for`, with
/// its journal. With nothing left of those tasks it claims nothing, and work of other tasks
/// stays pending.
pub fn commit_then_claim_commits_then_claims_the_next(s: Subject) {
    let store = &*s.store;
    let parent = root(1, "p", b"p");
    submit(store, &parent, T0);
    let p = claim_expect(store, "w", T0, parent.id);
    let (a, b) = (child(2, &parent, "a", b"a"), child(3, &parent, "a", b"b"));
    commit(
        store,
        &p.lease,
        Commit {
            journal: entries(0, 1),
            children: vec![a.clone(), b.clone()],
            ..Commit::outcome(Outcome::Waiting { on: vec![a.id] })
        },
        at(1),
    );
    let other = root(4, "other", b"o");
    submit(store, &other, at(2));
    let first = claim_task(store, "a", at(3));
    assert_eq!(first.lease.invocation, a.id, "the oldest child first");
    let next = ok(
        store.commit_then_claim(
            &first.lease,
            Commit::outcome(Outcome::Success(b"ra".to_vec())),
            &tasks(&["a", "p"]),
            LEASE,
            at(4),
        ),
        "commit_then_claim of the first child",
    );
    let next = ok(next, "the claim after the commit")
        .unwrap_or_else(|| panic!("the parent (woken by the commit) and b are runnable"));
    assert_eq!(
        next.lease.invocation, b.id,
        "b became runnable before the commit woke the parent"
    );
    assert_eq!(
        next.lease.worker, first.lease.worker,
        "claimed for the same worker"
    );
    assert_eq!(next.lease.attempt, 1);
    assert_eq!(
        next.lease.expires_at,
        Timestamp(at(4).0 + LEASE.as_millis() as u64)
    );
    assert_eq!(next.record.state.status, Status::Running);
    assert!(next.journal.is_empty());
    let a_rec = ok(store.wait_final(a.id, LONG_WAIT), "wait_final of a")
        .unwrap_or_else(|| panic!("a's commit made it final"));
    assert_eq!(a_rec.state.result.as_deref(), Some(&b"ra"[..]));
    assert_eq!(
        status(store, parent.id),
        Status::Pending,
        "a's commit woke the parent"
    );

    let third = ok(
        store.commit_then_claim(
            &next.lease,
            Commit::outcome(Outcome::Failed(failure("b failed"))),
            &tasks(&["a", "p"]),
            LEASE,
            at(5),
        ),
        "commit_then_claim of b",
    );
    let third =
        ok(third, "the claim after b's commit").unwrap_or_else(|| panic!("the parent is runnable"));
    assert_eq!(third.lease.invocation, parent.id);
    assert_eq!(
        third.journal,
        entries(0, 1),
        "the claim carries the journal"
    );
    assert_eq!(status(store, b.id), Status::Failed);

    let none = ok(
        store.commit_then_claim(
            &third.lease,
            Commit::outcome(Outcome::Success(b"rp".to_vec())),
            &tasks(&["a", "p"]),
            LEASE,
            at(6),
        ),
        "commit_then_claim of the parent",
    );
    assert!(
        ok(none, "the claim after the parent's commit").is_none(),
        "nothing of tasks a and p is left"
    );
    assert_eq!(status(store, parent.id), Status::Success);
    assert_eq!(
        status(store, other.id),
        Status::Pending,
        "other tasks' work is left alone"
    );
}

/// A `commit_then_claim` whose commit is refused (a stale lease) commits nothing and claims
/// nothing: the work it would have claimed is still there for the next claim.
pub fn commit_then_claim_refused_claims_nothing(s: Subject) {
    let store = &*s.store;
    let (x, y) = (root(1, "t", b"x"), root(2, "t", b"y"));
    submit(store, &x, T0);
    let stale = claim_expect(store, "w", T0, x.id);
    // The lease expires; the next claim recovers x and takes it as attempt 2.
    let fresh = claim_expect(store, "w2", at(60), x.id);
    submit(store, &y, at(61));
    assert_lease_lost(
        store.commit_then_claim(
            &stale.lease,
            Commit::outcome(Outcome::Success(b"stale".to_vec())),
            &suite_tasks(),
            LEASE,
            at(62),
        ),
        x.id,
        "commit_then_claim with the first attempt's lease",
    );
    assert_eq!(
        status(store, y.id),
        Status::Pending,
        "a refused commit claims nothing"
    );
    assert_eq!(
        record(store, x.id).state.result,
        None,
        "nor writes anything"
    );
    let next = ok(
        store.commit_then_claim(
            &fresh.lease,
            Commit::outcome(Outcome::Success(b"x".to_vec())),
            &suite_tasks(),
            LEASE,
            at(63),
        ),
        "commit_then_claim with the live lease",
    );
    let next = ok(next, "the claim").unwrap_or_else(|| panic!("y is pending"));
    assert_eq!(next.lease.invocation, y.id);
    assert_eq!(next.lease.worker, worker("w2"));
}
