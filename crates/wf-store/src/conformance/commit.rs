//! Commits: each outcome, and what makes a commit invalid.

use std::time::Duration;

use wf_core::{Failure, FailureKind, JournalEntry, Status};

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
