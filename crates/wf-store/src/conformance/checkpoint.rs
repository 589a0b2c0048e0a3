//! Checkpoints: a running execution persists its progress and claims one of its new children
//! for the same worker in one step (the runtime then runs that child inline), keeping its own
//! lease.
//!
//! Checkpoints are optional: a backend that answers `Ok(None)` does not support them (the
//! runtime then suspends on the child), and these tests have nothing to check on it. A backend
//! that supports them pins that with a test of its own (`supports_checkpoints`).

use wf_core::{ChildOutcome, JournalEntry, Op, Status};

use crate::error::StoreError;
use crate::model::{Checkpoint, Claim, Commit, Lease, NewInvocation, Outcome};
use crate::store::Store;

use super::Subject;
use super::fixtures::*;

/// Whether `store` supports checkpoints: asked with a checkpoint it must refuse either way (its
/// lease names no invocation), it answers `Ok(None)` only when it does not.
fn answers(store: &dyn Store) -> bool {
    let probe = Lease {
        invocation: id(u128::MAX),
        worker: worker("probe"),
        attempt: 1,
        expires_at: T0,
    };
    let answer = store.checkpoint(&probe, Checkpoint::default(), id(u128::MAX - 1), LEASE, T0);
    !matches!(answer, Ok(None))
}

/// Whether the checkpoint tests have anything to check on `store`.
fn supported(store: &dyn Store) -> bool {
    let yes = answers(store);
    if !yes {
        eprintln!(
            "the {} backend does not support checkpoints: nothing to check",
            store.backend()
        );
    }
    yes
}

/// Asserts that `store` supports checkpoints: for the backends that do.
pub fn supports_checkpoints(store: &dyn Store) {
    assert!(
        answers(store),
        "the {} backend must support checkpoints",
        store.backend()
    );
}

/// Runs a checkpoint that must be supported and accepted.
#[track_caller]
fn checkpoint_ok(
    store: &dyn Store,
    lease: &Lease,
    cp: Checkpoint,
    run: &NewInvocation,
    now: wf_core::Timestamp,
) -> Claim {
    ok(
        store.checkpoint(lease, cp, run.id, LEASE, now),
        format!("checkpoint of {} running {}", lease.invocation, run.id),
    )
    .unwrap_or_else(|| {
        panic!("the backend does not support checkpoints: StoreWork::checkpoint returned None")
    })
}

/// A checkpoint with journal entries, a data write and two children: everything is stored, the
/// child to run is running under the caller's worker (attempt 1), the other is pending, and the
/// parent still runs under its lease, extended; it commits later, continuing its journal.
pub fn checkpoint_persists_progress_and_claims_the_child(s: Subject) {
    let store = &*s.store;
    if !supported(store) {
        return;
    }
    let p = root(1, "p", b"");
    submit(store, &p, T0);
    let c = claim_expect(store, "w", T0, p.id);
    let (inline, other) = (child(2, &p, "c1", b"x"), subworkflow(3, &p, "c2", b"y"));
    let claim = checkpoint_ok(
        store,
        &c.lease,
        Checkpoint {
            journal: entries(0, 2),
            data: vec![("k".to_owned(), b"v".to_vec())],
            children: vec![inline.clone(), other.clone()],
        },
        &inline,
        at(10),
    );
    assert_eq!(claim.lease.invocation, inline.id);
    assert_eq!(
        claim.lease.worker,
        worker("w"),
        "the caller's worker runs it"
    );
    assert_eq!(claim.lease.attempt, 1);
    assert_eq!(claim.lease.expires_at, at(10).saturating_add(LEASE));
    assert_eq!(claim.record.spec.args, b"x");
    assert_eq!(claim.record.spec.parent, Some(p.id));
    assert_eq!(claim.record.state.status, Status::Running);
    assert!(claim.journal.is_empty(), "a new child has no journal");

    assert_eq!(ok(store.journal(p.id), "journal"), entries(0, 2));
    assert_eq!(
        ok(store.get_data(p.id, "k"), "get_data"),
        Some(b"v".to_vec())
    );
    let parent = record(store, p.id);
    assert_eq!(parent.state.status, Status::Running, "the parent goes on");
    assert_eq!(
        parent.state.attempts, 1,
        "a checkpoint is not a new attempt"
    );
    assert_eq!(
        parent.state.lease.as_ref().map(|l| l.expires_at),
        Some(at(10).saturating_add(LEASE)),
        "the parent's lease is extended"
    );
    assert_eq!(status(store, inline.id), Status::Running);
    assert_eq!(
        ok(store.workflow_invocations(p.id), "members"),
        vec![p.id, inline.id],
        "the inline child joins the workflow; the sub-workflow has its own"
    );
    // Only the other child is claimable: the inline one is running already.
    claim_expect(store, "w2", at(11), other.id);
    assert_nothing_claimable(store, at(11), "the inline child is not queued");

    // The child commits; its parent is running, not waiting: nothing to wake.
    succeed(store, &claim.lease, b"child result", at(12));
    assert_eq!(status(store, p.id), Status::Running);
    // The parent's lease still holds, past its first expiry, and its journal continues.
    commit(
        store,
        &c.lease,
        Commit {
            journal: entries(2, 1),
            ..Commit::outcome(Outcome::Success(b"done".to_vec()))
        },
        T0.saturating_add(LEASE)
            .saturating_add(std::time::Duration::from_secs(5)),
    );
    assert_eq!(status(store, p.id), Status::Success);
    assert_eq!(ok(store.journal(p.id), "journal"), entries(0, 3));
}

/// A checkpoint is fenced like a commit: with a lost lease it is refused and writes nothing.
pub fn checkpoint_with_a_lost_lease_writes_nothing(s: Subject) {
    let store = &*s.store;
    if !supported(store) {
        return;
    }
    let p = root(1, "p", b"");
    submit(store, &p, T0);
    let c = claim_expect(store, "w", T0, p.id);
    let kid = child(2, &p, "kid", b"");
    let late = T0
        .saturating_add(LEASE)
        .saturating_add(std::time::Duration::from_secs(1));
    assert_lease_lost(
        store.checkpoint(
            &c.lease,
            Checkpoint {
                journal: entries(0, 1),
                data: vec![("rejected-key".to_owned(), b"no".to_vec())],
                children: vec![kid.clone()],
            },
            kid.id,
            LEASE,
            late,
        ),
        p.id,
        "a checkpoint after the lease expired",
    );
    assert!(ok(store.journal(p.id), "journal").is_empty());
    assert_eq!(ok(store.get_data(p.id, "rejected-key"), "get_data"), None);
    assert_not_found(store.invocation(kid.id), kid.id, "the refused child");
}

/// What a commit refuses, a checkpoint refuses, writing nothing; and the child to run must be
/// one this checkpoint submits.
pub fn checkpoint_refuses_what_a_commit_refuses(s: Subject) {
    let store = &*s.store;
    if !supported(store) {
        return;
    }
    let p = root(1, "p", b"");
    submit(store, &p, T0);
    let c = claim_expect(store, "w", T0, p.id);
    let kid = child(2, &p, "kid", b"");
    let cp = |journal, children: Vec<NewInvocation>| Checkpoint {
        journal,
        data: Vec::new(),
        children,
    };
    assert_invalid(
        store.checkpoint(
            &c.lease,
            cp(entries(1, 1), vec![kid.clone()]),
            kid.id,
            LEASE,
            at(1),
        ),
        p.id,
        "a journal that skips a sequence number",
    );
    let stranger = root(3, "kid", b"");
    assert_invalid(
        store.checkpoint(
            &c.lease,
            cp(Vec::new(), vec![stranger.clone()]),
            stranger.id,
            LEASE,
            at(1),
        ),
        p.id,
        "a child that does not name the parent",
    );
    assert_invalid(
        store.checkpoint(
            &c.lease,
            cp(entries(0, 1), vec![kid.clone()]),
            id(9),
            LEASE,
            at(1),
        ),
        p.id,
        "running a child the checkpoint does not submit",
    );
    let mut delayed = kid.clone();
    delayed.not_before = Some(at(60));
    assert_invalid(
        store.checkpoint(
            &c.lease,
            cp(Vec::new(), vec![delayed]),
            kid.id,
            LEASE,
            at(1),
        ),
        p.id,
        "running a delayed child",
    );
    assert!(
        ok(store.journal(p.id), "journal").is_empty(),
        "nothing written"
    );
    assert_not_found(store.invocation(kid.id), kid.id, "nothing submitted");

    // A child stored already (submitted by an earlier commit) is not new: it cannot run inline.
    let earlier = child(4, &p, "k", b"");
    commit(
        store,
        &c.lease,
        Commit {
            children: vec![earlier.clone()],
            ..Commit::outcome(Outcome::Waiting {
                on: vec![earlier.id],
            })
        },
        at(2),
    );
    let k = claim_expect(store, "w", at(3), earlier.id);
    succeed(store, &k.lease, b"", at(4));
    let c = claim_expect(store, "w", at(5), p.id);
    assert_invalid(
        store.checkpoint(
            &c.lease,
            cp(Vec::new(), vec![earlier.clone()]),
            earlier.id,
            LEASE,
            at(6),
        ),
        p.id,
        "running a child that is stored already",
    );

    // Only a workflow's root writes its data, in a checkpoint as in a commit.
    let member = child(5, &p, "m", b"");
    let grandkid = child(6, &member, "grandkid", b"");
    let c2 = checkpoint_ok(
        store,
        &c.lease,
        cp(Vec::new(), vec![member.clone()]),
        &member,
        at(7),
    );
    match err(
        store.checkpoint(
            &c2.lease,
            Checkpoint {
                journal: Vec::new(),
                data: vec![("rejected-key".to_owned(), b"no".to_vec())],
                children: vec![grandkid.clone()],
            },
            grandkid.id,
            LEASE,
            at(8),
        ),
        "a data write by a member that is not the root",
    ) {
        StoreError::Access(_) => {}
        other => panic!("expected Access, got {other:?}"),
    }
    assert_not_found(
        store.invocation(grandkid.id),
        grandkid.id,
        "nothing submitted",
    );
    assert_eq!(ok(store.get_data(p.id, "rejected-key"), "get_data"), None);
}

/// A worker that dies after a checkpoint loses both leases: recovery makes the parent and the
/// inline child pending again, the parent keeping the journal the checkpoint stored, and a
/// checkpoint resets the parent's count of lost executions (it is progress).
pub fn checkpoint_then_crash_recovers_parent_and_child(s: Subject) {
    let store = &*s.store;
    if !supported(store) {
        return;
    }
    let p = root(1, "p", b"");
    submit(store, &p, T0);
    let first = claim_expect(store, "w", T0, p.id);
    // The first execution is lost: one recovery counted.
    let after_lease = |t: wf_core::Timestamp| {
        t.saturating_add(LEASE)
            .saturating_add(std::time::Duration::from_secs(1))
    };
    let t1 = after_lease(T0);
    ok(store.recover_expired(t1), "recover_expired");
    assert_eq!(record(store, p.id).state.recoveries, 1);
    let c = claim_expect(store, "w", t1, p.id);
    let kid = child(2, &p, "kid", b"");
    let inline = checkpoint_ok(
        store,
        &c.lease,
        Checkpoint {
            journal: entries(0, 3),
            data: Vec::new(),
            children: vec![kid.clone()],
        },
        &kid,
        t1,
    );
    assert_eq!(
        record(store, p.id).state.recoveries,
        0,
        "a checkpoint resets the count of lost executions"
    );
    assert_lease_lost(
        store.commit(&first.lease, Commit::outcome(Outcome::Released), t1),
        p.id,
        "the lost first attempt",
    );

    // The worker dies here, before the child commits.
    let t2 = after_lease(t1);
    let mut recovered = ok(store.recover_expired(t2), "recover_expired");
    recovered.sort();
    assert_eq!(recovered, vec![p.id, kid.id], "both leases are recovered");
    assert_eq!(ok(store.journal(p.id), "journal"), entries(0, 3));
    assert_eq!(status(store, kid.id), Status::Pending);
    assert_lease_lost(
        store.commit(
            &inline.lease,
            Commit::outcome(Outcome::Success(Vec::new())),
            t2,
        ),
        kid.id,
        "the dead worker's inline child",
    );
    // Both run again, as new attempts.
    let again = claim_expect(store, "w2", t2, p.id);
    assert_eq!(
        again.journal,
        entries(0, 3),
        "the parent replays its checkpoint"
    );
    assert_eq!(again.lease.attempt, 3);
    let k = claim_expect(store, "w2", t2, kid.id);
    assert_eq!(k.lease.attempt, 2);
}

/// The journal entries a caller records around an inline child: its start, then its outcome.
fn child_entries(from: u32, kid: &NewInvocation, result: Option<&[u8]>) -> Vec<JournalEntry> {
    let mut out = vec![JournalEntry {
        seq: from,
        op: Op::ChildStart {
            task: kid.task.clone(),
            call: kid.call,
            child: kid.id,
        },
    }];
    if let Some(result) = result {
        out.push(JournalEntry {
            seq: from + 1,
            op: Op::ChildResult {
                child: kid.id,
                outcome: ChildOutcome::Success(result.to_vec()),
            },
        });
    }
    out
}

/// A replayable checkpoint (only child starts and child results: `Checkpoint::replayable`,
/// which a store may let run its child before it is durable) is a checkpoint like any other:
/// its journal, children and claim are all there, for every reader and every later operation,
/// and the sequence goes on after it. What tells it apart (when it is durable) is the file
/// store's to pin.
pub fn replayable_checkpoint_is_a_checkpoint(s: Subject) {
    let store = &*s.store;
    if !supported(store) {
        return;
    }
    let p = root(1, "p", b"");
    submit(store, &p, T0);
    let c = claim_expect(store, "w", T0, p.id);
    let (first, second) = (child(2, &p, "c1", b"1"), child(3, &p, "c2", b"2"));

    // What the body drew comes first: that checkpoint is not replayable.
    let drawn = Checkpoint {
        journal: [entries(0, 2), child_entries(2, &first, None)].concat(),
        data: Vec::new(),
        children: vec![first.clone()],
    };
    assert!(!drawn.replayable(), "random draws are not replayable");
    let one = checkpoint_ok(store, &c.lease, drawn, &first, at(1));
    succeed(store, &one.lease, b"r1", at(2));

    // The first child's outcome and the second child's start: replayable.
    let cp = Checkpoint {
        journal: [
            child_entries(2, &first, Some(b"r1")).split_off(1),
            child_entries(4, &second, None),
        ]
        .concat(),
        data: Vec::new(),
        children: vec![second.clone()],
    };
    assert!(cp.replayable(), "child starts and results only");
    let two = checkpoint_ok(store, &c.lease, cp, &second, at(3));
    assert_eq!(two.lease.invocation, second.id);
    assert_eq!(two.lease.attempt, 1);
    assert_eq!(two.record.spec.args, b"2");
    assert_eq!(status(store, second.id), Status::Running);
    let journal = ok(store.journal(p.id), "journal");
    assert_eq!(journal.len(), 5, "both checkpoints' entries: {journal:?}");
    assert!(matches!(journal[3].op, Op::ChildResult { child, .. } if child == first.id));
    assert!(matches!(journal[4].op, Op::ChildStart { child, .. } if child == second.id));
    assert_eq!(
        ok(store.workflow_invocations(p.id), "members"),
        vec![p.id, first.id, second.id]
    );
    assert_nothing_claimable(store, at(3), "the inline child is running already");

    succeed(store, &two.lease, b"r2", at(4));
    commit(
        store,
        &c.lease,
        Commit {
            journal: child_entries(4, &second, Some(b"r2")).split_off(1),
            ..Commit::outcome(Outcome::Success(b"done".to_vec()))
        },
        at(5),
    );
    let done = ok(
        store.wait_final(p.id, std::time::Duration::from_secs(10)),
        "wait_final",
    )
    .unwrap_or_else(|| panic!("the parent committed its success"));
    assert_eq!(done.state.status, Status::Success);
    assert_eq!(ok(store.journal(p.id), "journal").len(), 6);
    assert_eq!(
        record(store, second.id).state.result.as_deref(),
        Some(&b"r2"[..])
    );
}

/// Two children under one id in one checkpoint: other arguments under the same id are
/// `Conflict` naming that id, with nothing written; identical ones are one child, created once
/// (and run inline).
pub fn checkpoint_conflicting_duplicate_child_is_refused(s: Subject) {
    let store = &*s.store;
    if !supported(store) {
        return;
    }
    let p = root(1, "p", b"");
    submit(store, &p, T0);
    let c = claim_expect(store, "w", T0, p.id);
    let first = child(20, &p, "c", b"one");
    let other = child(20, &p, "c", b"two");
    let refused = store.checkpoint(
        &c.lease,
        Checkpoint {
            journal: entries(0, 1),
            data: Vec::new(),
            children: vec![first.clone(), other],
        },
        first.id,
        LEASE,
        at(1),
    );
    match err(refused, "a checkpoint with two children under one id") {
        StoreError::Conflict(i) => assert_eq!(i, first.id, "the conflict names the child"),
        other => panic!("expected Conflict({}), got {other:?}", first.id),
    }
    assert_not_found(
        store.invocation(first.id),
        first.id,
        "the conflicting child",
    );
    assert!(ok(store.journal(p.id), "journal").is_empty());

    let claim = checkpoint_ok(
        store,
        &c.lease,
        Checkpoint {
            journal: entries(0, 1),
            data: Vec::new(),
            children: vec![first.clone(), first.clone()],
        },
        &first,
        at(2),
    );
    assert_eq!(claim.lease.invocation, first.id);
    assert_eq!(
        ok(store.workflow_invocations(p.id), "members"),
        vec![p.id, first.id],
        "the child is created once"
    );
    assert_eq!(ok(store.counts(), "counts").get(Status::Running), 2);
}
