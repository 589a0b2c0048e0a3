//! Recovery of expired leases: exactly once, by claims too, and the crash-loop limit.

use std::collections::BTreeSet;
use std::sync::Barrier;
use std::thread;
use std::time::Duration;

use wf_core::{FailureKind, InvocationId, Status};

use crate::model::{Commit, Outcome};

use super::Subject;
use super::fixtures::*;

/// Many threads recovering at once recover each expired lease exactly once, and leave
/// unexpired leases alone. Several expire-and-recover rounds give a racy backend several
/// chances to show a double recovery.
pub fn recover_expired_exactly_once(s: Subject) {
    const SHORT: u128 = 150;
    const LONG: u128 = 50;
    const THREADS: usize = 8;
    const ROUNDS: u32 = 5;
    let short_lease = Duration::from_secs(10);
    let store = &*s.store;
    for n in 1..=SHORT + LONG {
        let mut inv = root(n, "t", &n.to_le_bytes());
        inv.max_recoveries = ROUNDS; // every round recovers, none fails
        submit(store, &inv, T0);
    }
    let mut expiring = BTreeSet::new();
    for _ in 0..SHORT {
        let c = ok(
            store.claim(&worker("short"), &suite_tasks(), short_lease, T0),
            "claim",
        )
        .unwrap_or_else(|| panic!("expected something to claim"));
        expiring.insert(c.lease.invocation);
    }
    let mut holding = Vec::new();
    for _ in 0..LONG {
        let c = ok(
            store.claim(
                &worker("long"),
                &suite_tasks(),
                Duration::from_secs(3600),
                T0,
            ),
            "claim",
        )
        .unwrap_or_else(|| panic!("expected something to claim"));
        holding.push(c.lease);
    }

    let barrier = Barrier::new(THREADS);
    let mut now = T0;
    for round in 1..=ROUNDS {
        now = at(60 * u64::from(round));
        let recovered: Vec<InvocationId> = thread::scope(|scope| {
            let handles: Vec<_> = (0..THREADS)
                .map(|_| {
                    let barrier = &barrier;
                    scope.spawn(move || {
                        barrier.wait();
                        let mut got = Vec::new();
                        for _ in 0..3 {
                            got.extend(ok(store.recover_expired(now), "recover_expired"));
                        }
                        got
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        let unique: BTreeSet<InvocationId> = recovered.iter().copied().collect();
        assert_eq!(
            recovered.len() - unique.len(),
            0,
            "round {round}: expired leases recovered more than once"
        );
        assert_eq!(
            unique, expiring,
            "round {round}: exactly the expired leases are recovered"
        );
        assert!(
            ok(store.recover_expired(now), "recover again").is_empty(),
            "round {round}: nothing is left to recover"
        );
        for inv in &expiring {
            let rec = record(store, *inv);
            assert_eq!(
                rec.state.status,
                Status::Pending,
                "{inv} recovered to pending"
            );
            assert_eq!(rec.state.lease, None);
            assert_eq!(
                rec.state.attempts, round,
                "recovery itself does not count an attempt"
            );
        }
        let counts = ok(store.counts(), "counts");
        assert_eq!(counts.get(Status::Pending) as u128, SHORT);
        assert_eq!(counts.get(Status::Running) as u128, LONG);

        // Claim them all again (the next attempt) with a lease that expires before the next round.
        if round < ROUNDS {
            for _ in 0..SHORT {
                let c = ok(
                    store.claim(&worker("short"), &suite_tasks(), short_lease, now),
                    "reclaim",
                )
                .unwrap_or_else(|| panic!("round {round}: a recovered invocation is claimable"));
                assert!(expiring.contains(&c.lease.invocation));
                assert_eq!(
                    c.lease.attempt,
                    round + 1,
                    "a recovered invocation runs again as the next attempt"
                );
            }
            assert_nothing_claimable(store, now, "every recovered invocation was claimed again");
        }
    }

    for lease in &holding {
        let rec = record(store, lease.invocation);
        assert_eq!(
            rec.state.status,
            Status::Running,
            "an unexpired lease must not be recovered"
        );
        assert_eq!(rec.state.attempts, 1);
        assert_eq!(
            rec.state.lease.map(|l| l.expires_at),
            Some(lease.expires_at)
        );
        ok(
            store.renew(lease, LEASE, now),
            "the unexpired lease still renews",
        );
    }
}

/// Claiming recovers expired leases by itself, once, under concurrent claims.
pub fn claim_recovers_expired(s: Subject) {
    const INVOCATIONS: u128 = 60;
    const THREADS: usize = 4;
    let store = &*s.store;
    for n in 1..=INVOCATIONS {
        submit(store, &root(n, "t", &n.to_le_bytes()), T0);
    }
    let mut first = Vec::new();
    while let Some(c) = ok(
        store.claim(&worker("vanishing"), &suite_tasks(), LEASE, T0),
        "claim",
    ) {
        first.push(c.lease);
    }
    assert_eq!(first.len() as u128, INVOCATIONS);
    assert_nothing_claimable(store, at(30), "leases are valid until they expire");

    let barrier = Barrier::new(THREADS);
    let claimed: Vec<(InvocationId, u32)> = thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let w = worker(&format!("rescuer-{t}"));
                    barrier.wait();
                    let mut got = Vec::new();
                    while let Some(c) = ok(store.claim(&w, &suite_tasks(), LEASE, at(31)), "claim")
                    {
                        got.push((c.lease.invocation, c.lease.attempt));
                    }
                    got
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let unique: BTreeSet<InvocationId> = claimed.iter().map(|(i, _)| *i).collect();
    assert_eq!(
        unique.len(),
        claimed.len(),
        "a recovered invocation was claimed twice"
    );
    assert_eq!(
        unique.len() as u128,
        INVOCATIONS,
        "every expired lease is taken over"
    );
    assert!(
        claimed.iter().all(|(_, attempt)| *attempt == 2),
        "every takeover is attempt 2: {claimed:?}"
    );
    for lease in &first {
        assert_lease_lost(
            store.commit(lease, Commit::outcome(Outcome::Released), at(32)),
            lease.invocation,
            "the vanished worker's commit",
        );
    }
}

/// An invocation whose executions keep getting lost is recovered `max_recoveries` times in a
/// row; the next loss fails it with `WorkerLost`, and its waiting parent wakes.
pub fn crash_loop_fails_after_max_recoveries(s: Subject) {
    let store = &*s.store;
    let p = root(1, "parent", b"");
    let mut c = child(2, &p, "crashes", b"");
    c.max_recoveries = 2;
    submit(store, &p, T0);
    let parent = claim_expect(store, "w", T0, p.id);
    commit(
        store,
        &parent.lease,
        Commit {
            children: vec![c.clone()],
            ..Commit::outcome(Outcome::Waiting { on: vec![c.id] })
        },
        at(1),
    );
    // Each round: claimed, then the worker vanishes and the lease expires.
    for lost in 1..=3u32 {
        let start = at(u64::from(lost) * 100);
        let claim = claim_expect(store, "doomed", start, c.id);
        assert_eq!(claim.lease.attempt, lost);
        let recovered = ok(
            store.recover_expired(at(u64::from(lost) * 100 + 31)),
            "recover",
        );
        assert_eq!(
            recovered,
            vec![c.id],
            "loss {lost}: the expired lease is recovered"
        );
        let rec = record(store, c.id);
        if lost <= 2 {
            assert_eq!(
                rec.state.status,
                Status::Pending,
                "loss {lost} is recovered"
            );
            assert_eq!(rec.state.recoveries, lost);
            assert_eq!(
                status(store, p.id),
                Status::Waiting,
                "the parent still waits"
            );
        } else {
            assert_eq!(
                rec.state.status,
                Status::Failed,
                "loss {lost} ends the crash loop"
            );
            let error = rec
                .state
                .error
                .expect("a failed invocation carries its error");
            assert_eq!(error.kind, FailureKind::WorkerLost);
            assert!(
                error.message.contains("3 time(s) in a row"),
                "the message counts the losses: {}",
                error.message
            );
            assert_eq!(rec.state.lease, None);
            assert_eq!(status(store, p.id), Status::Pending, "the parent wakes");
        }
    }
    let again = claim_expect(store, "w", at(400), p.id);
    assert_eq!(
        again.lease.invocation, p.id,
        "only the parent is left to run"
    );
    assert_nothing_claimable(store, at(400), "the failed child is not queued again");
}

/// Any commit ends a run of losses: the count starts again from zero.
pub fn commit_resets_recovery_count(s: Subject) {
    let store = &*s.store;
    let mut inv = root(1, "flaky", b"");
    inv.max_recoveries = 1;
    submit(store, &inv, T0);
    let first = claim_expect(store, "a", T0, inv.id);
    ok(store.recover_expired(at(31)), "recover");
    assert_eq!(record(store, inv.id).state.recoveries, 1);
    let second = claim_expect(store, "b", at(40), inv.id);
    assert_eq!(second.lease.attempt, first.lease.attempt + 1);
    commit(
        store,
        &second.lease,
        Commit::outcome(Outcome::Retry {
            not_before: at(50),
            error: failure("try again"),
        }),
        at(41),
    );
    assert_eq!(
        record(store, inv.id).state.recoveries,
        0,
        "a commit resets the count"
    );
    let _third = claim_expect(store, "c", at(50), inv.id);
    ok(store.recover_expired(at(81)), "recover");
    let rec = record(store, inv.id);
    assert_eq!(
        rec.state.status,
        Status::Pending,
        "one loss after a commit is within max_recoveries = 1"
    );
    let _fourth = claim_expect(store, "d", at(90), inv.id);
    ok(store.recover_expired(at(121)), "recover");
    let rec = record(store, inv.id);
    assert_eq!(
        rec.state.status,
        Status::Failed,
        "the second loss in a row fails it"
    );
    assert_eq!(
        rec.state.error.map(|e| e.kind),
        Some(FailureKind::WorkerLost)
    );
}
