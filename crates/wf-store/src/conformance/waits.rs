//! Blocking waits (`wait_final`, `wait_for_work`): woken by events, not by their timeouts.

use std::sync::{Barrier, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use wf_core::Status;

use crate::error::StoreError;

use super::Subject;
use super::fixtures::*;

/// How long after a waiter began its wait the event it waits for is made to happen.
///
/// The trait cannot show that a thread is blocked, so the event comes this long after the
/// waiter called the wait: by then it is blocked, and it can only see the event by being woken.
/// A correct store passes however the threads are scheduled; the delay only makes sure that a
/// store that never wakes its waiters fails (its waiter returns at [`LONG_WAIT`], far past
/// [`WAKE_BOUND`]) instead of passing because the waiter saw the event on arrival.
pub(super) const SETTLE: Duration = Duration::from_millis(200);

/// How soon after the event began a blocked waiter must have returned: far below its timeout
/// ([`LONG_WAIT`]), so only a wake-up meets it.
pub(super) const WAKE_BOUND: Duration = Duration::from_secs(2);

/// Runs `wait` on another thread and `event` on this one [`SETTLE`] after the wait began;
/// returns what the wait returned and how long after the start of the event it returned.
pub(super) fn woken_by<T: Send>(
    wait: impl FnOnce() -> T + Send,
    event: impl FnOnce(),
) -> (T, Duration) {
    thread::scope(|scope| {
        let (started, began) = mpsc::channel();
        let waiter = scope.spawn(move || {
            let _ = started.send(Instant::now());
            let got = wait();
            (got, Instant::now())
        });
        let began = began
            .recv()
            .unwrap_or_else(|_| panic!("the waiting thread died before it began to wait"));
        thread::sleep((began + SETTLE).saturating_duration_since(Instant::now()));
        let event_at = Instant::now();
        event();
        let (got, returned) = waiter
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        (got, returned.saturating_duration_since(event_at))
    })
}

/// `wait_final` blocked on one thread returns promptly with the final record when another
/// thread commits; it returns at once for an already-final invocation.
pub fn wait_final_wakes_on_commit(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"");
    submit(store, &inv, T0);
    let c = claim_expect(store, "w", T0, inv.id);
    let (got, waited) = woken_by(
        || ok(store.wait_final(inv.id, LONG_WAIT), "wait_final"),
        || succeed(store, &c.lease, b"the result", at(1)),
    );
    let rec =
        got.unwrap_or_else(|| panic!("wait_final timed out although the invocation finished"));
    assert!(
        waited < WAKE_BOUND,
        "wait_final returned {waited:?} after the commit: a commit must wake it, not its timeout"
    );
    assert_eq!(rec.id(), inv.id);
    assert_eq!(rec.state.status, Status::Success);
    assert_eq!(rec.state.result.as_deref(), Some(&b"the result"[..]));

    let start = Instant::now();
    let again = ok(store.wait_final(inv.id, LONG_WAIT), "wait_final when final");
    assert_eq!(again.map(|r| r.state.status), Some(Status::Success));
    assert!(
        start.elapsed() < WAKE_BOUND,
        "wait_final on a final invocation must return at once"
    );
}

/// `wait_final` wakes for any final status (here a cancellation from another thread).
pub fn wait_final_wakes_on_cancel(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"");
    submit(store, &inv, T0);
    let (got, waited) = woken_by(
        || ok(store.wait_final(inv.id, LONG_WAIT), "wait_final"),
        || ok(store.cancel(inv.id, "stop", at(1)), "cancel"),
    );
    let rec =
        got.unwrap_or_else(|| panic!("wait_final timed out although the invocation was cancelled"));
    assert_eq!(rec.state.status, Status::Cancelled);
    assert!(
        waited < WAKE_BOUND,
        "wait_final returned {waited:?} after the cancel: a cancel must wake it"
    );
}

/// `wait_final` on an invocation that never finishes returns `None` after its timeout.
pub fn wait_final_times_out(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"");
    submit(store, &inv, T0);
    let timeout = Duration::from_millis(150);
    let start = Instant::now();
    let got = ok(store.wait_final(inv.id, timeout), "wait_final");
    assert!(
        got.is_none(),
        "an unfinished invocation: expected None, got {got:?}"
    );
    assert!(
        start.elapsed() >= timeout / 2,
        "wait_final returned after {:?}, before its timeout of {timeout:?}",
        start.elapsed()
    );
    assert_eq!(
        status(store, inv.id),
        Status::Pending,
        "waiting changes nothing"
    );
}

/// A wait "forever" (`Duration::MAX`, too long to add to any clock) is a valid timeout: it
/// returns at once for a final invocation and for an unknown one, and waits for a commit.
pub fn wait_final_accepts_the_longest_timeout(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"");
    submit(store, &inv, T0);
    let c = claim_expect(store, "w", T0, inv.id);
    let (got, waited) = woken_by(
        || ok(store.wait_final(inv.id, Duration::MAX), "wait_final"),
        || succeed(store, &c.lease, b"done", at(1)),
    );
    assert_eq!(got.map(|r| r.status()), Some(Status::Success));
    assert!(waited < WAKE_BOUND, "woken after {waited:?}");
    let again = ok(store.wait_final(inv.id, Duration::MAX), "wait_final");
    assert_eq!(again.map(|r| r.status()), Some(Status::Success));
    match store.wait_final(root(2, "t", b"").id, Duration::MAX) {
        Err(StoreError::InvocationNotFound(_)) => {}
        other => panic!("an unknown invocation: expected InvocationNotFound, got {other:?}"),
    }
}

/// `wait_final` on an invocation that is gone (purged, or never submitted) is
/// `InvocationNotFound` at once, and a `wait_final` blocked on an invocation that is purged
/// meanwhile ends promptly instead of waiting out its timeout.
pub fn wait_final_ends_when_purged(s: Subject) {
    let store = &*s.store;
    let gone = root(1, "t", b"");
    run_to_success(store, &gone, T0);
    assert_eq!(ok(store.purge_finished(at(1)), "purge"), 1);
    let start = Instant::now();
    assert_not_found(
        store.wait_final(gone.id, LONG_WAIT),
        gone.id,
        "wait_final on a purged invocation",
    );
    assert!(
        start.elapsed() < LONG_WAIT / 2,
        "wait_final on a purged invocation must return at once"
    );

    // A waiter may see the invocation final (between its commit and the purge) or see it gone;
    // either way it must return promptly. Which one happens depends on thread scheduling, so
    // the scenario runs several times to reach the waiter that only wakes after the purge.
    for round in 0..20u64 {
        let inv = root(100 + u128::from(round), "t", b"");
        let now = at(10 + round);
        submit(store, &inv, now);
        let c = claim_expect(store, "w", now, inv.id);
        let barrier = Barrier::new(2);
        let (got, waited) = thread::scope(|scope| {
            let waiter = scope.spawn(|| {
                barrier.wait();
                let start = Instant::now();
                let got = store.wait_final(inv.id, LONG_WAIT);
                (got, start.elapsed())
            });
            barrier.wait();
            succeed(store, &c.lease, b"r", now);
            assert_eq!(
                ok(store.purge_finished(at(100_000)), "purge while waited on"),
                1,
                "round {round}: the finished workflow is purged"
            );
            waiter
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
        });
        match got {
            Ok(Some(rec)) => assert_eq!(
                (rec.id(), rec.state.status),
                (inv.id, Status::Success),
                "round {round}: a waiter that saw it final gets its final record"
            ),
            Ok(None) => panic!(
                "round {round}: wait_final timed out after {waited:?} although the invocation \
                 was purged: it must return InvocationNotFound when the invocation disappears"
            ),
            Err(StoreError::InvocationNotFound(i)) if i == inv.id => {}
            Err(e) => panic!("round {round}: expected InvocationNotFound, got {e:?}"),
        }
        assert!(
            waited < LONG_WAIT / 2,
            "round {round}: wait_final took {waited:?}: it must wake on the purge"
        );
    }
}

/// `wait_for_work` blocked on one thread returns `true` promptly when another thread submits.
pub fn wait_for_work_wakes_on_submit(s: Subject) {
    let store = &*s.store;
    let (found, waited) = woken_by(
        || {
            ok(
                store.wait_for_work(&suite_tasks(), LONG_WAIT),
                "wait_for_work",
            )
        },
        || submit(store, &root(1, "t", b""), system_now()),
    );
    assert!(found, "wait_for_work must report work after a submit");
    assert!(
        waited < WAKE_BOUND,
        "wait_for_work returned {waited:?} after the submit: a submit must wake it, not its \
         timeout"
    );
    let c = ok(
        store.claim(&worker("w"), &suite_tasks(), LEASE, system_now()),
        "claim",
    );
    assert!(c.is_some(), "the announced work is claimable");
}

/// A worker's `wait_for_work` right after its claim found nothing (what a worker does when it
/// goes idle) is woken by a submit, like any other.
pub fn wait_for_work_after_an_empty_claim_wakes_on_submit(s: Subject) {
    let store = &*s.store;
    let (found, waited) = woken_by(
        || {
            let none = ok(
                store.claim(&worker("w"), &suite_tasks(), LEASE, system_now()),
                "claim of an empty store",
            );
            assert!(none.is_none(), "an empty store has nothing to claim");
            ok(
                store.wait_for_work(&suite_tasks(), LONG_WAIT),
                "wait_for_work",
            )
        },
        || submit(store, &root(1, "t", b""), system_now()),
    );
    assert!(found, "wait_for_work must report work after a submit");
    assert!(
        waited < WAKE_BOUND,
        "wait_for_work returned {waited:?} after the submit: a submit must wake it, not its \
         timeout"
    );
    claim_expect(store, "w", system_now(), id(1));
}

/// A worker's `wait_for_work` right after its claim found nothing returns when delayed work
/// becomes due, though nothing rings meanwhile.
pub fn wait_for_work_after_an_empty_claim_wakes_when_due(s: Subject) {
    let store = &*s.store;
    let delay = Duration::from_millis(300);
    let mut later = root(1, "later", b"");
    later.not_before = Some(system_now().saturating_add(delay));
    submit(store, &later, system_now());
    // A first short wait takes whatever announcement the submit made: after it, only the clock
    // can end the next wait early.
    assert!(
        !ok(
            store.wait_for_work(&suite_tasks(), Duration::from_millis(50)),
            "a short wait_for_work"
        ),
        "nothing is claimable before the not-before time"
    );
    let start = Instant::now();
    let none = ok(
        store.claim(&worker("w"), &suite_tasks(), LEASE, system_now()),
        "claim before the not-before time",
    );
    assert!(
        none.is_none(),
        "delayed work is not claimable before its time"
    );
    assert!(
        ok(
            store.wait_for_work(&suite_tasks(), LONG_WAIT),
            "wait_for_work"
        ),
        "wait_for_work must report the delayed work once due"
    );
    let waited = start.elapsed();
    assert!(
        waited < delay + WAKE_BOUND,
        "wait_for_work returned {waited:?} after the empty claim: it must wake when the work is \
         due ({delay:?}), not at its timeout"
    );
    let due = Instant::now() + WAKE_BOUND;
    loop {
        let c = ok(
            store.claim(&worker("w"), &suite_tasks(), LEASE, system_now()),
            "claim once due",
        );
        if let Some(c) = c {
            assert_eq!(c.lease.invocation, later.id);
            break;
        }
        // wait_for_work may return a moment early (a store whose clock reading rounds): it
        // must not stay early.
        assert!(
            Instant::now() < due,
            "the delayed work never became claimable"
        );
        ok(
            store.wait_for_work(&suite_tasks(), WAKE_BOUND),
            "wait_for_work",
        );
    }
}

/// An operator's retry of a failed invocation is new work: it wakes a blocked `wait_for_work`.
pub fn wait_for_work_wakes_on_retry(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"");
    submit(store, &inv, system_now());
    let c = claim_expect(store, "w", system_now(), inv.id);
    commit(
        store,
        &c.lease,
        crate::model::Commit::outcome(crate::model::Outcome::Failed(failure("no"))),
        system_now(),
    );
    let (found, waited) = woken_by(
        || {
            ok(
                store.wait_for_work(&suite_tasks(), LONG_WAIT),
                "wait_for_work",
            )
        },
        || ok(store.retry(inv.id, system_now()), "retry"),
    );
    assert!(found, "wait_for_work must report work after a retry");
    assert!(
        waited < WAKE_BOUND,
        "wait_for_work returned {waited:?} after the retry: a retry must wake it, not its \
         timeout"
    );
    claim_expect(store, "w", system_now(), inv.id);
}

/// `wait_for_work` with nothing to do returns `false` after its timeout.
pub fn wait_for_work_times_out_when_idle(s: Subject) {
    let store = &*s.store;
    let timeout = Duration::from_millis(150);
    let start = Instant::now();
    assert!(
        !ok(
            store.wait_for_work(&suite_tasks(), timeout),
            "wait_for_work"
        ),
        "an empty store has no work"
    );
    assert!(
        start.elapsed() >= timeout / 2,
        "wait_for_work returned after {:?}, before its timeout of {timeout:?}",
        start.elapsed()
    );

    // A finished invocation is no work either.
    let now = system_now();
    run_to_success(store, &root(1, "t", b""), now);
    assert!(
        !ok(
            store.wait_for_work(&suite_tasks(), timeout),
            "wait_for_work"
        ),
        "a store holding only finished invocations has no work"
    );
}

/// A running invocation whose lease expired is work: a claim recovers it. `wait_for_work`
/// reports it at once, without waiting for anything to wake it.
pub fn wait_for_work_reports_an_expired_lease(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"");
    // Claimed two leases ago by the real clock: its lease has expired by now.
    let then = wf_core::Timestamp(system_now().0.saturating_sub(2 * LEASE.as_secs() * 1000));
    submit(store, &inv, then);
    claim_expect(store, "lost", then, inv.id);
    let start = Instant::now();
    assert!(
        ok(
            store.wait_for_work(&suite_tasks(), LONG_WAIT),
            "wait_for_work"
        ),
        "an expired lease is work to recover"
    );
    assert!(
        start.elapsed() < WAKE_BOUND,
        "wait_for_work returned after {:?}: an expired lease is work at once",
        start.elapsed()
    );
    let c = claim_expect(store, "w", system_now(), inv.id);
    assert_eq!(c.lease.attempt, 2, "the claim recovered the lost execution");
}

/// Work that went away unclaimed (a cancelled pending invocation) does not keep an idle worker
/// awake: its announcement may wake one `wait_for_work`, whose claim finds nothing, but the
/// next wait runs out its timeout instead of returning at once (a worker must not spin).
pub fn wait_for_work_is_not_woken_again_by_work_that_went_away(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"");
    submit(store, &inv, system_now());
    ok(store.cancel(inv.id, "gone", system_now()), "cancel");
    let w = worker("w");
    assert!(
        ok(
            store.claim(&w, &suite_tasks(), LEASE, system_now()),
            "claim"
        )
        .is_none(),
        "a cancelled invocation is not claimable"
    );
    let timeout = Duration::from_millis(150);
    // The first wait may be woken by the announcement the submit made; its claim finds nothing.
    if ok(
        store.wait_for_work(&suite_tasks(), timeout),
        "wait_for_work",
    ) {
        assert!(
            ok(
                store.claim(&w, &suite_tasks(), LEASE, system_now()),
                "claim"
            )
            .is_none(),
            "a cancelled invocation is not claimable"
        );
    }
    let start = Instant::now();
    assert!(
        !ok(
            store.wait_for_work(&suite_tasks(), timeout),
            "wait_for_work"
        ),
        "wait_for_work reported work again, but the only invocation was cancelled"
    );
    assert!(
        start.elapsed() >= timeout / 2,
        "wait_for_work returned after {:?}, before its timeout of {timeout:?}: a worker would \
         spin on work that went away",
        start.elapsed()
    );
    // New work still wakes it.
    let (found, waited) = woken_by(
        || {
            ok(
                store.wait_for_work(&suite_tasks(), LONG_WAIT),
                "wait_for_work",
            )
        },
        || submit(store, &root(2, "t", b""), system_now()),
    );
    assert!(
        found && waited < WAKE_BOUND,
        "a submit must wake the idle worker"
    );
    claim_expect(store, "w", system_now(), id(2));
}

/// The caller's own `call` then `result`: `wait_final` on the thread that just submitted the
/// invocation returns its final record, whether it finished before the wait began or while
/// the caller waited.
pub fn wait_final_right_after_the_own_submit(s: Subject) {
    let store = &*s.store;
    // Finished while the caller waits.
    let inv = root(1, "t", b"");
    submit(store, &inv, system_now());
    let rec = thread::scope(|scope| {
        let worker = scope.spawn(|| {
            thread::sleep(SETTLE);
            let c = claim_expect(store, "w", system_now(), inv.id);
            succeed(store, &c.lease, b"later", system_now());
        });
        let rec = ok(store.wait_final(inv.id, LONG_WAIT), "wait_final");
        worker
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        rec
    })
    .unwrap_or_else(|| panic!("wait_final timed out although the invocation finished"));
    assert_eq!(rec.state.status, Status::Success);
    assert_eq!(rec.state.result.as_deref(), Some(&b"later"[..]));

    // Finished before the caller waits.
    let inv = root(2, "t", b"");
    submit(store, &inv, system_now());
    thread::scope(|scope| {
        scope.spawn(|| {
            let c = claim_expect(store, "w", system_now(), inv.id);
            succeed(store, &c.lease, b"at once", system_now());
        });
    });
    let start = Instant::now();
    let rec = ok(store.wait_final(inv.id, LONG_WAIT), "wait_final")
        .unwrap_or_else(|| panic!("wait_final timed out on a final invocation"));
    assert!(
        start.elapsed() < WAKE_BOUND,
        "wait_final on a final invocation must return at once"
    );
    assert_eq!(rec.state.result.as_deref(), Some(&b"at once"[..]));

    // Not finished: the wait runs out its timeout.
    let inv = root(3, "t", b"");
    submit(store, &inv, system_now());
    let got = ok(
        store.wait_final(inv.id, Duration::from_millis(150)),
        "wait_final",
    );
    assert!(got.is_none(), "an unfinished invocation: expected None");
}
