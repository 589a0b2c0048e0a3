//! Claiming: which invocation a claim hands out, and when (FIFO, leases, not-before times, `next_due`).

use std::collections::BTreeMap;
use std::sync::Barrier;
use std::thread;

use wf_core::{InvocationId, Status};

use crate::model::{Commit, Outcome};

use super::Subject;
use super::fixtures::*;

/// Claims hand out the oldest runnable invocation first, mark it running under a lease, and
/// return `None` when nothing is runnable.
pub fn claim_is_fifo_and_leases(s: Subject) {
    let store = &*s.store;
    assert_nothing_claimable(store, T0, "an empty store");

    // Ids deliberately out of numeric order: submission order decides.
    let invs = [root(3, "t", b"3"), root(1, "t", b"1"), root(2, "t", b"2")];
    for (i, inv) in invs.iter().enumerate() {
        submit(store, inv, at_ms(i as u64));
    }
    for (i, inv) in invs.iter().enumerate() {
        let w = format!("w{i}");
        let now = at(10 + i as u64);
        let c = claim_expect(store, &w, now, inv.id);
        assert_eq!(
            c.lease.worker,
            worker(&w),
            "lease names the claiming worker"
        );
        assert_eq!(c.lease.attempt, 1, "first claim is attempt 1");
        assert_eq!(
            c.lease.expires_at,
            now.saturating_add(LEASE),
            "lease expires at now + lease_for"
        );
        assert_eq!(c.record.id(), inv.id);
        assert_eq!(c.record.spec.args, inv.args, "claim returns the arguments");
        assert_eq!(c.record.state.status, Status::Running);
        assert_eq!(c.record.state.attempts, 1);
        let info = c
            .record
            .state
            .lease
            .clone()
            .unwrap_or_else(|| panic!("a running record carries its lease"));
        assert_eq!(info.worker, worker(&w));
        assert_eq!(info.expires_at, c.lease.expires_at);
        assert!(c.journal.is_empty(), "a fresh invocation has no journal");

        let stored = record(store, inv.id);
        assert_eq!(
            stored.state, c.record.state,
            "claim's record is the stored one"
        );
    }
    assert_nothing_claimable(store, at(20), "everything is running under a live lease");
    let counts = ok(store.counts(), "counts");
    assert_eq!(counts.get(Status::Running), 3);
    assert_eq!(counts.get(Status::Pending), 0);
}

/// A claim returns the journal so far, and the attempt number keeps growing.
pub fn claim_returns_journal(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"a");
    submit(store, &inv, T0);
    let c1 = claim_expect(store, "w1", T0, inv.id);
    commit(
        store,
        &c1.lease,
        Commit {
            journal: entries(0, 3),
            ..Commit::outcome(Outcome::Released)
        },
        at(1),
    );
    assert_eq!(
        status(store, inv.id),
        Status::Pending,
        "released means pending"
    );

    let c2 = claim_expect(store, "w2", at(2), inv.id);
    assert_eq!(c2.lease.attempt, 2, "second claim is attempt 2");
    assert_eq!(c2.record.state.attempts, 2);
    assert_eq!(
        c2.journal,
        entries(0, 3),
        "claim returns the stored journal"
    );
    assert_eq!(ok(store.journal(inv.id), "journal"), entries(0, 3));
}

/// Many threads claiming at once never get the same invocation: each of several hundred
/// invocations is claimed exactly once. Fails when a backend's claim is not atomic.
pub fn concurrent_claims_never_duplicate(s: Subject) {
    const INVOCATIONS: u128 = 300;
    const THREADS: usize = 8;
    let store = &*s.store;
    for n in 1..=INVOCATIONS {
        submit(store, &root(n, "race", &n.to_le_bytes()), T0);
    }
    let barrier = Barrier::new(THREADS);
    // (invocation, attempt, what its commit returned) per claim, per thread.
    type Claimed = Vec<(InvocationId, u32, Result<(), String>)>;
    let results: Vec<Claimed> = thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let w = worker(&format!("racer-{t}"));
                    let mut got = Vec::new();
                    barrier.wait();
                    loop {
                        match store.claim(&w, &suite_tasks(), LEASE, at(1)) {
                            Ok(Some(c)) => {
                                let done = Commit::outcome(Outcome::Success(w.as_str().into()));
                                let r = store.commit(&c.lease, done, at(1));
                                got.push((
                                    c.lease.invocation,
                                    c.lease.attempt,
                                    r.map_err(|e| e.to_string()),
                                ));
                            }
                            Ok(None) => break,
                            Err(e) => panic!("claim by {w} failed: {e}"),
                        }
                    }
                    got
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });

    let mut claimed: BTreeMap<InvocationId, usize> = BTreeMap::new();
    for (inv, _, _) in results.iter().flatten() {
        *claimed.entry(*inv).or_default() += 1;
    }
    let duplicated: Vec<_> = claimed.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        duplicated.is_empty(),
        "{} invocations claimed more than once (id, times): {duplicated:?}",
        duplicated.len()
    );
    assert_eq!(
        claimed.len() as u128,
        INVOCATIONS,
        "every invocation is claimed exactly once"
    );
    for (inv, attempt, committed) in results.iter().flatten() {
        assert_eq!(*attempt, 1, "{inv} was claimed as attempt {attempt}");
        if let Err(e) = committed {
            panic!("the one holder of {inv} could not commit: {e}");
        }
    }
    let counts = ok(store.counts(), "counts");
    assert_eq!(counts.get(Status::Success) as u128, INVOCATIONS);
    assert_eq!(counts.total() as u128, INVOCATIONS);
}

/// A submitted invocation with a not-before time is not claimable before it, is claimable at
/// it, and does not hold up invocations behind it.
pub fn submitted_not_before_is_honoured(s: Subject) {
    let store = &*s.store;
    let mut delayed = root(1, "later", b"");
    delayed.not_before = Some(at(10));
    let now = root(2, "now", b"");
    submit(store, &delayed, T0);
    submit(store, &now, T0);
    assert_eq!(record(store, delayed.id).state.not_before, Some(at(10)));

    let c = claim_expect(store, "w", T0, now.id);
    succeed(store, &c.lease, b"", T0);
    assert_nothing_claimable(store, at(1), "before the not-before time");
    assert_nothing_claimable(store, at_ms(9_999), "1 ms before the not-before time");
    let c = claim_expect(store, "w", at(10), delayed.id);
    assert_eq!(c.lease.attempt, 1);
    assert_eq!(c.record.state.status, Status::Running);
}

/// `next_due` reports the earliest moment something becomes claimable by the clock alone: a
/// retry's or a delayed submission's not-before time, or the first millisecond after a lease
/// expires. Claiming at that moment succeeds; a millisecond earlier nothing is claimable.
pub fn next_due_reports_earliest_clock_event(s: Subject) {
    let store = &*s.store;
    assert_eq!(
        ok(store.next_due(&suite_tasks()), "next_due"),
        None,
        "an empty store"
    );
    let a = root(1, "a", b"");
    let b = root(2, "b", b"");
    let mut c = root(3, "c", b"");
    c.not_before = Some(at(50));
    submit(store, &a, T0);
    submit(store, &b, T0);
    submit(store, &c, T0);
    let ca = claim_expect(store, "w", T0, a.id); // lease until 30 s
    let cb = claim_expect(store, "w", T0, b.id);
    commit(
        store,
        &cb.lease,
        Commit::outcome(Outcome::Retry {
            not_before: at(20),
            error: failure("again"),
        }),
        at(1),
    );

    // Retry at 20 s < lease expiry after 30 s < delayed start at 50 s.
    assert_eq!(
        ok(store.next_due(&suite_tasks()), "next_due"),
        Some(at(20)),
        "the retry is first"
    );
    assert_nothing_claimable(store, at_ms(19_999), "before the retry is due");
    let cb = claim_expect(store, "w", at(20), b.id); // lease until 50 s

    assert_eq!(
        ok(store.next_due(&suite_tasks()), "next_due"),
        Some(at_ms(30_001)),
        "a's lease (valid through 30 s) is void from 30.001 s"
    );
    assert_nothing_claimable(store, at(30), "a's lease is still valid at its expiry");
    let ca2 = claim_expect(store, "w2", at_ms(30_001), a.id); // lease until 60.001 s
    assert_eq!(ca2.lease.attempt, 2);
    assert_lease_lost(
        store.commit(&ca.lease, Commit::outcome(Outcome::Released), at(31)),
        a.id,
        "a's first attempt",
    );

    assert_eq!(
        ok(store.next_due(&suite_tasks()), "next_due"),
        Some(at(50)),
        "c's delayed start"
    );
    assert_nothing_claimable(store, at_ms(49_999), "before c is due");
    let cc = claim_expect(store, "w", at(50), c.id);
    for lease in [&ca2.lease, &cb.lease, &cc.lease] {
        succeed(store, lease, b"", at(50));
    }
    assert_eq!(
        ok(store.next_due(&suite_tasks()), "next_due"),
        None,
        "nothing delayed and no lease left"
    );
}
