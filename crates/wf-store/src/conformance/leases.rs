//! Leases: renewal, expiry and fencing (a stale holder can neither renew nor commit).

use wf_core::{FailureKind, InvocationId, Status};

use crate::model::{Commit, Lease, Outcome};

use super::Subject;
use super::fixtures::*;

/// Renewing extends the lease: the invocation is not recovered at the old expiry and the
/// holder can commit after it.
pub fn renew_extends_lease(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"a");
    submit(store, &inv, T0);
    let c = claim_expect(store, "w", T0, inv.id);
    assert_eq!(c.lease.expires_at, at(30));

    let renewed = ok(store.renew(&c.lease, LEASE, at(20)), "renew");
    assert_eq!(renewed.expires_at, at(50), "renewed until now + lease_for");
    assert_eq!(renewed.invocation, c.lease.invocation);
    assert_eq!(renewed.worker, c.lease.worker);
    assert_eq!(
        renewed.attempt, c.lease.attempt,
        "renewal keeps the attempt"
    );
    let info = record(store, inv.id).state.lease;
    assert_eq!(
        info.map(|l| l.expires_at),
        Some(at(50)),
        "stored lease is extended"
    );

    assert_eq!(
        ok(store.recover_expired(at(40)), "recover"),
        Vec::<InvocationId>::new(),
        "a renewed lease is not expired at the old expiry"
    );
    assert_nothing_claimable(store, at(40), "the renewed lease still holds");
    succeed(store, &renewed, b"ok", at(45));
    assert_eq!(status(store, inv.id), Status::Success);
}

/// A lease is valid through its expiry instant and void one millisecond later.
pub fn lease_expiry_boundary(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"a");
    submit(store, &inv, T0);
    let c = claim_expect(store, "w", T0, inv.id);
    assert_eq!(
        ok(store.recover_expired(at(30)), "recover at expiry"),
        Vec::<InvocationId>::new(),
        "a lease is not expired at its expiry instant"
    );
    let renewed = ok(store.renew(&c.lease, LEASE, at(30)), "renew at expiry");
    assert_eq!(renewed.expires_at, at(60));
    assert_eq!(
        ok(store.recover_expired(at_ms(60_001)), "recover after expiry"),
        vec![inv.id],
        "a lease is expired one millisecond after its expiry"
    );
}

/// A lease that expired by the clock can neither renew nor commit, and the rejected commit
/// writes nothing, even if nobody has recovered the invocation yet.
pub fn stale_lease_expired_cannot_commit(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"a");
    submit(store, &inv, T0);
    let c = claim_expect(store, "w", T0, inv.id);

    assert_lease_lost(
        store.renew(&c.lease, LEASE, at(31)),
        inv.id,
        "renew after expiry",
    );
    assert_lease_lost(
        store.commit(&c.lease, everything(&inv, 0, 50), at(31)),
        inv.id,
        "commit after expiry",
    );
    assert_not_written(store, &inv, 0, 50);
    let rec = record(store, inv.id);
    assert!(
        !rec.state.status.is_final(),
        "a rejected commit must not finish the invocation"
    );
    assert_eq!(
        ok(store.recover_expired(at(31)), "recover"),
        vec![inv.id],
        "the expired invocation is still recoverable"
    );
}

/// After recovery hands the invocation to another worker, the old holder's renew and commit
/// are refused and write nothing; the new holder commits normally.
pub fn stale_lease_after_takeover_cannot_commit(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"a");
    submit(store, &inv, T0);
    let old = claim_expect(store, "old", T0, inv.id);
    commit(
        store,
        &old.lease,
        Commit {
            journal: entries(0, 1),
            ..Commit::outcome(Outcome::Released)
        },
        at(1),
    );
    let old = claim_expect(store, "old", at(2), inv.id);
    assert_eq!(old.lease.attempt, 2);

    // The old worker stalls; its lease expires; a new worker takes over (claim recovers).
    let new = claim_expect(store, "new", at(40), inv.id);
    assert_eq!(new.lease.attempt, 3, "a takeover is a new attempt");
    assert_eq!(new.journal, entries(0, 1));

    // The old worker wakes up at a time its own lease would still have covered.
    assert_lease_lost(
        store.renew(&old.lease, LEASE, at(20)),
        inv.id,
        "renew by the replaced worker",
    );
    assert_lease_lost(
        store.commit(&old.lease, everything(&inv, 1, 50), at(20)),
        inv.id,
        "commit by the replaced worker",
    );
    assert_lease_lost(
        store.commit(&old.lease, everything(&inv, 1, 50), at(41)),
        inv.id,
        "commit by the replaced worker, later",
    );
    assert_not_written(store, &inv, 1, 50);
    let rec = record(store, inv.id);
    assert_eq!(rec.state.status, Status::Running);
    assert_eq!(rec.state.attempts, 3);
    assert_eq!(
        rec.state.lease.map(|l| l.worker),
        Some(worker("new")),
        "the new worker still holds it"
    );

    commit(
        store,
        &new.lease,
        Commit {
            journal: entries(1, 1),
            ..Commit::outcome(Outcome::Success(b"new".to_vec()))
        },
        at(42),
    );
    let rec = record(store, inv.id);
    assert_eq!(rec.state.status, Status::Success);
    assert_eq!(rec.state.result.as_deref(), Some(&b"new"[..]));
    assert_eq!(ok(store.journal(inv.id), "journal"), entries(0, 2));
}

/// A lease for an older attempt is refused even when the same worker holds the newer one
/// (the attempt number is the fencing token).
pub fn stale_attempt_cannot_commit(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"a");
    submit(store, &inv, T0);
    let first = claim_expect(store, "w", T0, inv.id);
    let second = claim_expect(store, "w", at(31), inv.id);
    assert_eq!(second.lease.attempt, 2);

    // The first attempt's lease, even dressed up with the current expiry.
    let stale = Lease {
        attempt: first.lease.attempt,
        ..second.lease.clone()
    };
    assert_lease_lost(
        store.renew(&stale, LEASE, at(32)),
        inv.id,
        "renew of attempt 1",
    );
    assert_lease_lost(
        store.commit(&stale, everything(&inv, 0, 50), at(32)),
        inv.id,
        "commit of attempt 1",
    );
    assert_not_written(store, &inv, 0, 50);
    assert_eq!(status(store, inv.id), Status::Running);
    succeed(store, &second.lease, b"second", at(33));
    assert_eq!(
        record(store, inv.id).state.result.as_deref(),
        Some(&b"second"[..])
    );
}

/// After a retry, the same worker's lease for the failed attempt is refused although it has
/// not expired by the clock: only the attempt number tells it from the lease of the attempt
/// that runs now.
pub fn stale_attempt_after_a_retry_cannot_commit(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"a");
    submit(store, &inv, T0);
    let first = claim_expect(store, "w", T0, inv.id);
    commit(
        store,
        &first.lease,
        Commit::outcome(Outcome::Retry {
            not_before: at(5),
            error: failure("flaky"),
        }),
        at(1),
    );
    let second = claim_expect(store, "w", at(5), inv.id);
    assert_eq!(
        (
            first.lease.attempt,
            second.lease.attempt,
            &second.lease.worker
        ),
        (1, 2, &first.lease.worker)
    );
    assert!(
        first.lease.expires_at > at(6),
        "the first lease has not expired by the clock"
    );
    assert_lease_lost(
        store.commit(&first.lease, everything(&inv, 0, 50), at(6)),
        inv.id,
        "commit of attempt 1 during attempt 2",
    );
    assert_lease_lost(
        store.renew(&first.lease, LEASE, at(6)),
        inv.id,
        "renew of attempt 1 during attempt 2",
    );
    assert_not_written(store, &inv, 0, 50);
    succeed(store, &second.lease, b"second", at(7));
    assert_eq!(status(store, inv.id), Status::Success);
}

/// Cancelling a running invocation voids its lease: the worker's commit is refused.
pub fn cancelled_running_cannot_commit(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"a");
    submit(store, &inv, T0);
    let c = claim_expect(store, "w", T0, inv.id);
    ok(store.cancel(inv.id, "operator says stop", at(1)), "cancel");
    assert_lease_lost(
        store.commit(&c.lease, everything(&inv, 0, 50), at(2)),
        inv.id,
        "commit after cancel",
    );
    assert_not_written(store, &inv, 0, 50);
    let rec = record(store, inv.id);
    assert_eq!(rec.state.status, Status::Cancelled);
    assert_eq!(
        rec.state.error.map(|e| e.kind),
        Some(FailureKind::Cancelled)
    );
}
