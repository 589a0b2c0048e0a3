//! Durable timers: an invocation suspended with a wake time (a `sleep`, or a wait's deadline)
//! waits without a worker and is claimable at that time, like a retry: in its task's delayed
//! set, reported by `next_due`, filtered by the worker's tasks.

use wf_core::Status;

use crate::model::{Commit, NewInvocation, Outcome, Suspension};

use std::time::Duration;

use super::Subject;
use super::fixtures::*;
use super::waits::{WAKE_BOUND, woken_by};

/// Submits root 1 of task `t` at `T0`, runs it, and suspends it at `at(1)` on a timer alone,
/// until `until`.
fn sleeping(store: &dyn crate::store::Store, until: wf_core::Timestamp) -> NewInvocation {
    let inv = root(1, "t", b"");
    submit(store, &inv, T0);
    let c = claim_expect(store, "w", T0, inv.id);
    let timer = Suspension {
        wake_at: Some(until),
        ..Suspension::default()
    };
    commit(store, &c.lease, suspended(timer), at(1));
    inv
}

/// A suspension on a timer alone: waiting until its time, claimable from then (not a
/// millisecond before) as the next attempt, reported by `next_due`; claimed, it waits on
/// nothing any more.
pub fn timer_wakes_at_its_time(s: Subject) {
    let store = &*s.store;
    let inv = sleeping(store, at(60));
    let rec = record(store, inv.id);
    assert_eq!(rec.state.status, Status::Waiting);
    assert_eq!(
        rec.state.not_before,
        Some(at(60)),
        "the wake time is stored"
    );
    assert!(
        rec.state.lease.is_none(),
        "a sleeping invocation holds no worker"
    );
    assert_nothing_claimable(store, at_ms(59_999), "the timer has not fired yet");
    assert_eq!(
        ok(store.next_due(&suite_tasks()), "next_due"),
        Some(at(60)),
        "next_due reports the timer"
    );
    let again = claim_expect(store, "w", at(60), inv.id);
    assert_eq!(again.lease.attempt, 2);
    let rec = record(store, inv.id);
    assert_eq!(rec.state.status, Status::Running);
    assert_eq!(rec.state.not_before, None);
    assert!(rec.state.waiting_on.is_empty());
}

/// Children or timer, whichever comes first. A child finishing first makes the invocation
/// pending at once (its timer no longer counts); a timer firing first makes it claimable while
/// the child still runs, and the child finishing afterwards changes nothing.
pub fn child_or_timer_whichever_first(s: Subject) {
    let store = &*s.store;
    let p = root(1, "p", b"");
    let k1 = child(2, &p, "k1", b"");
    let k2 = child(3, &p, "k2", b"");
    submit(store, &p, T0);
    let c = claim_task(store, "p", T0);
    let wait_for = |kid: &NewInvocation, until| Commit {
        children: vec![kid.clone()],
        ..suspended(Suspension {
            children: vec![kid.id],
            wake_at: Some(until),
            event: None,
        })
    };
    commit(store, &c.lease, wait_for(&k1, at(100)), at(1));
    assert_eq!(status(store, p.id), Status::Waiting);
    let kc = claim_task(store, "k1", at(2));
    succeed(store, &kc.lease, b"", at(3));
    let rec = record(store, p.id);
    assert_eq!(rec.state.status, Status::Pending, "the child came first");
    assert_eq!(rec.state.not_before, None, "its timer no longer counts");
    let c = claim_task(store, "p", at(4));

    // Now the timer comes first.
    commit(store, &c.lease, wait_for(&k2, at(10)), at(5));
    let kc = claim_task(store, "k2", at(6));
    assert!(
        ok(
            store.claim(&worker("w"), &tasks(&["p"]), LEASE, at(9)),
            "claim"
        )
        .is_none(),
        "neither the child nor the timer yet"
    );
    let c = claim_task(store, "p", at(10));
    assert_eq!(c.lease.attempt, 3);
    succeed(store, &kc.lease, b"", at(11));
    assert_eq!(
        status(store, p.id),
        Status::Running,
        "a child finishing after the timer fired does not touch the running parent"
    );
    succeed(store, &c.lease, b"", at(12));
    assert_eq!(status(store, p.id), Status::Success);
}

/// Timers are per task: a timer of a task outside the worker's set is neither claimable by it
/// nor reported by its `next_due`.
pub fn timers_are_per_task(s: Subject) {
    let store = &*s.store;
    sleeping(store, at(5));
    assert_eq!(ok(store.next_due(&tasks(&["u"])), "next_due of u"), None);
    assert!(
        ok(
            store.claim(&worker("w"), &tasks(&["u"]), LEASE, at(10)),
            "claim"
        )
        .is_none(),
        "a worker of task u never gets task t's timer"
    );
    assert_eq!(
        ok(store.next_due(&tasks(&["t"])), "next_due of t"),
        Some(at(5))
    );
    claim_task(store, "t", at(10));
}

/// A suspension that waits for nothing (no child, no timer, no event) would never wake: the
/// commit is refused and nothing changes.
pub fn suspension_on_nothing_is_invalid(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"");
    submit(store, &inv, T0);
    let c = claim_expect(store, "w", T0, inv.id);
    let refused = Commit {
        journal: entries(0, 1),
        ..Commit::outcome(Outcome::Suspended(Suspension::default()))
    };
    assert_invalid(
        store.commit(&c.lease, refused, at(1)),
        inv.id,
        "suspend on nothing",
    );
    assert_eq!(status(store, inv.id), Status::Running);
    assert!(ok(store.journal(inv.id), "journal").is_empty());
}

/// `wait_for_work` blocked on one thread wakes for a timer: another thread commits a
/// suspension whose timer fires a moment later, and the waiter returns `true` once it is due
/// (woken by the commit to learn the new time, then by the time itself), well before its
/// timeout.
pub fn wait_for_work_wakes_when_a_timer_is_due(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"");
    let now = system_now();
    submit(store, &inv, now);
    let c = claim_expect(store, "w", now, inv.id);
    let delay = Duration::from_millis(300);
    let (found, waited) = woken_by(
        || {
            ok(
                store.wait_for_work(&suite_tasks(), LONG_WAIT),
                "wait_for_work",
            )
        },
        || {
            let sleep = crate::model::Suspension {
                wake_at: Some(system_now().saturating_add(delay)),
                ..crate::model::Suspension::default()
            };
            commit(store, &c.lease, suspended(sleep), system_now());
        },
    );
    assert!(found, "wait_for_work must report the due timer");
    assert!(
        waited < WAKE_BOUND + delay,
        "wait_for_work returned {waited:?} after the commit: a timer must wake it when due"
    );
    claim_expect(store, "w", system_now(), inv.id);
}
