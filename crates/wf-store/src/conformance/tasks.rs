//! Claims filtered by the worker's task set: a worker is handed only invocations of tasks it
//! runs, in the order they became runnable across those tasks; work of other tasks stays
//! pending, untouched, and never wakes or hurries an idle worker.

use std::time::{Duration, Instant};

use wf_core::Status;

use crate::model::{Commit, Outcome};

use super::Subject;
use super::fixtures::*;

/// A claim never hands out an invocation whose task is outside the claiming worker's set:
/// queued, delayed-and-due or retrying, it stays pending with no attempt and no lease, its
/// record unchanged, until a worker whose set has its task claims it.
pub fn claim_hands_out_only_tasks_in_the_set(s: Subject) {
    let store = &*s.store;
    let mine = tasks(&["mine"]);
    let other = root(1, "other", b"o");
    let mut other_delayed = root(2, "other", b"d");
    other_delayed.not_before = Some(at(1));
    let own = root(3, "mine", b"m");
    let retrying = root(4, "retrying", b"r");
    submit(store, &other, T0);
    submit(store, &other_delayed, T0);
    submit(store, &own, at_ms(1));
    submit(store, &retrying, at_ms(2));
    let r = ok(
        store.claim(&worker("w"), &tasks(&["retrying"]), LEASE, at_ms(3)),
        "claim",
    )
    .unwrap_or_else(|| panic!("the retrying task is claimable"));
    assert_eq!(r.lease.invocation, retrying.id);
    commit(
        store,
        &r.lease,
        Commit::outcome(Outcome::Retry {
            not_before: at(2),
            error: failure("again"),
        }),
        at_ms(4),
    );
    let before = [other.id, other_delayed.id, retrying.id].map(|i| record(store, i));

    let c = ok(store.claim(&worker("mine"), &mine, LEASE, at(10)), "claim")
        .unwrap_or_else(|| panic!("the worker's own task is claimable"));
    assert_eq!(
        c.lease.invocation, own.id,
        "the only invocation of the worker's task, though two of another task are older"
    );
    for _ in 0..3 {
        let got = ok(store.claim(&worker("mine"), &mine, LEASE, at(10)), "claim");
        assert!(
            got.is_none(),
            "a worker was handed {:?}, an invocation of a task outside its set {mine:?}",
            got.map(|c| (c.lease.invocation, c.record.spec.task.clone()))
        );
    }
    let none = ok(
        store.claim(&worker("none"), &tasks(&[]), LEASE, at(10)),
        "claim",
    );
    assert!(none.is_none(), "a worker with no tasks claims nothing");
    for rec in &before {
        assert_eq!(
            &record(store, rec.id()),
            rec,
            "claims by other tasks' workers must leave an invocation exactly as it was"
        );
    }
    assert_eq!(record(store, other.id).state.status, Status::Pending);
    assert_eq!(record(store, other.id).state.attempts, 0);
    assert_eq!(record(store, other.id).state.lease, None);

    let later = ok(
        store.claim(&worker("later"), &tasks(&["other"]), LEASE, at(11)),
        "claim by a worker that runs the task",
    )
    .unwrap_or_else(|| panic!("a worker that runs the task claims it"));
    assert_eq!(later.lease.invocation, other.id);
    assert_eq!(later.lease.attempt, 1, "its first attempt");
    let delayed = ok(
        store.claim(&worker("later"), &tasks(&["other"]), LEASE, at(11)),
        "claim",
    )
    .map(|c| c.lease.invocation);
    assert_eq!(delayed, Some(other_delayed.id), "then the delayed one");
    let retried = ok(
        store.claim(&worker("r"), &tasks(&["retrying", "other"]), LEASE, at(11)),
        "claim",
    )
    .map(|c| c.lease.invocation);
    assert_eq!(retried, Some(retrying.id), "and the retry");
}

/// A worker running two tasks is handed their invocations in the order they became runnable,
/// across both tasks: queued ones since they were queued (submitted, released), delayed and
/// retrying ones since their not-before time.
pub fn claim_is_fifo_across_tasks(s: Subject) {
    let store = &*s.store;
    let both = tasks(&["a", "b"]);
    let claim = |now| {
        ok(store.claim(&worker("w"), &both, LEASE, now), "claim")
            .unwrap_or_else(|| panic!("expected something to claim at {now:?}"))
    };
    let x1 = root(1, "a", b"x1");
    let y1 = root(2, "b", b"y1");
    let mut z = root(3, "b", b"z");
    z.not_before = Some(at_ms(2));
    let x2 = root(4, "a", b"x2");
    submit(store, &x1, at_ms(0));
    submit(store, &y1, at_ms(1));
    submit(store, &z, at_ms(0));
    submit(store, &x2, at_ms(3));
    let mut order = Vec::new();
    let mut leases = Vec::new();
    for _ in 0..4 {
        let c = claim(at(10));
        order.push(c.lease.invocation);
        leases.push(c.lease);
    }
    assert_eq!(
        order,
        [x1.id, y1.id, z.id, x2.id],
        "queued since 0, 1 and 3 ms, delayed until 2 ms: runnable-longest first across tasks"
    );
    assert!(
        ok(store.claim(&worker("w"), &both, LEASE, at(10)), "claim").is_none(),
        "everything is running"
    );

    // x1 released at 11 s, y1 retrying from 12 s, x2 released at 13 s, w submitted at 14 s.
    commit(
        store,
        &leases[0],
        Commit::outcome(Outcome::Released),
        at(11),
    );
    commit(
        store,
        &leases[1],
        Commit::outcome(Outcome::Retry {
            not_before: at(12),
            error: failure("again"),
        }),
        at(11),
    );
    succeed(store, &leases[2], b"z", at(11));
    commit(
        store,
        &leases[3],
        Commit::outcome(Outcome::Released),
        at(13),
    );
    let w = root(5, "b", b"w");
    submit(store, &w, at(14));
    let order: Vec<_> = (0..4).map(|_| claim(at(20)).lease.invocation).collect();
    assert_eq!(
        order,
        [x1.id, y1.id, x2.id, w.id],
        "ready since 11 s (released), 12 s (retry due), 13 s (released), 14 s (submitted)"
    );
}

/// A worker whose set lacks the only pending task is idle: `wait_for_work` runs out its
/// timeout instead of returning at once (a worker must not spin on work it cannot claim), and
/// `next_due` ignores that task's delayed work. A worker that runs the task gets it.
pub fn idle_worker_ignores_other_tasks_work(s: Subject) {
    let store = &*s.store;
    let mine = tasks(&["mine"]);
    let theirs = tasks(&["theirs"]);
    let now = system_now();
    let pending = root(1, "theirs", b"now");
    let mut delayed = root(2, "theirs", b"later");
    let due = now.saturating_add(Duration::from_secs(3600));
    delayed.not_before = Some(due);
    submit(store, &pending, now);
    submit(store, &delayed, now);

    assert_eq!(
        ok(store.next_due(&mine), "next_due"),
        None,
        "another task's delayed work is nothing this worker waits for"
    );
    assert_eq!(
        ok(store.next_due(&theirs), "next_due"),
        Some(due),
        "the task's own worker sees it"
    );
    let timeout = Duration::from_millis(150);
    let start = Instant::now();
    let found = ok(store.wait_for_work(&mine, timeout), "wait_for_work");
    let waited = start.elapsed();
    assert!(
        !found,
        "wait_for_work reported work, but the only pending invocation is of another task"
    );
    assert!(
        waited >= timeout / 2,
        "wait_for_work returned after {waited:?}, before its timeout of {timeout:?}: a worker \
         would spin on work it cannot claim"
    );
    assert!(
        ok(store.wait_for_work(&theirs, LONG_WAIT), "wait_for_work"),
        "the task's own worker has work"
    );
    let c = ok(
        store.claim(&worker("theirs"), &theirs, LEASE, system_now()),
        "claim",
    )
    .unwrap_or_else(|| panic!("a worker that runs the task claims it"));
    assert_eq!(c.lease.invocation, pending.id);
    assert_eq!(c.lease.attempt, 1, "nobody touched it before");
}

/// Across a worker's tasks, of the delayed invocations that are due, the one due earliest is
/// claimed first, whichever task's queue holds it; and a queued invocation that became ready at
/// the instant a delayed one became due is claimed before it (the queue wins ties).
pub fn claim_takes_the_earliest_due_across_tasks(s: Subject) {
    let store = &*s.store;
    let both = tasks(&["a", "b"]);
    let claim =
        |now| ok(store.claim(&worker("w"), &both, LEASE, now), "claim").map(|c| c.lease.invocation);
    let delayed = |n: u128, task: &str, due: u64| {
        let mut inv = root(n, task, &n.to_le_bytes());
        inv.not_before = Some(at_ms(due));
        inv
    };
    // Due at 20 and 30 ms (task a), 10 and 40 ms (task b): neither task's queue holds the
    // earliest each time.
    let a1 = delayed(1, "a", 20);
    let b1 = delayed(2, "b", 10);
    let b2 = delayed(3, "b", 40);
    let a2 = delayed(4, "a", 30);
    for inv in [&a1, &b1, &b2, &a2] {
        submit(store, inv, T0);
    }
    let order: Vec<_> = (0..4).map(|_| claim(at(10))).collect();
    assert_eq!(
        order,
        [Some(b1.id), Some(a1.id), Some(a2.id), Some(b2.id)],
        "due at 10, 20, 30 and 40 ms: earliest due first across tasks"
    );

    let d = delayed(5, "b", 50);
    submit(store, &d, T0);
    let q = root(6, "a", b"q");
    submit(store, &q, at_ms(50));
    assert_eq!(
        [claim(at(10)), claim(at(10)), claim(at(10))],
        [Some(q.id), Some(d.id), None],
        "queued at 50 ms and due at 50 ms: the queued one first"
    );
}
