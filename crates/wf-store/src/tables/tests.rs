//! Unit tests of [`Tables`]: log and snapshot replay rebuild what the live tables show.

use std::time::Duration;

use wf_core::WorkerId;

use super::*;
use crate::conformance::fixtures::{self, at_ms as at, id, tasks};
use crate::model::{
    Checkpoint, Claim, Commit, InvocationRecord, Lease, Outcome, Suspension, TaskSet,
};

/// The tasks these tests use: most use `t`, the per-task order tests `u` too.
pub(super) const TASKS: [&str; 2] = ["t", "u"];

/// Root number `n` of task `t`.
pub(super) fn root(n: u128) -> NewInvocation {
    fixtures::root(n, "t", b"")
}

/// Child number `n` of `parent`, of task `t`.
pub(super) fn child(n: u128, parent: &NewInvocation) -> NewInvocation {
    fixtures::child(n, parent, "t", b"")
}

/// Operations on live tables, keeping the log of their changes as a file store would.
#[derive(Default)]
struct Logged {
    tables: Tables,
    log: Vec<Change>,
}

impl Logged {
    fn submit(&mut self, inv: &NewInvocation, now: Timestamp) {
        self.tables.submit(&mut self.log, inv.clone(), now).unwrap();
    }

    fn claim(&mut self, now: Timestamp) -> Lease {
        claim(&mut self.tables, &mut self.log, &tasks(&TASKS), now)
            .unwrap()
            .lease
    }

    fn commit(&mut self, lease: &Lease, commit: Commit, now: Timestamp) {
        self.tables
            .commit(&mut self.log, lease, commit, now)
            .unwrap();
    }
}

pub(super) fn claim(
    t: &mut Tables,
    out: &mut Vec<Change>,
    tasks: &TaskSet,
    now: Timestamp,
) -> Option<Claim> {
    t.claim(
        out,
        &WorkerId::new("w"),
        tasks,
        Duration::from_secs(3600),
        now,
    )
    .unwrap()
}

fn replay(changes: Vec<Change>) -> Tables {
    let mut t = Tables::new();
    for change in changes {
        t.apply(change);
    }
    t
}

/// Everything a reader sees: roots, each workflow's members in order, every record and
/// journal, counts.
type Seen = (
    Vec<InvocationRecord>,
    Vec<Vec<InvocationId>>,
    Vec<(InvocationRecord, Vec<JournalEntry>)>,
    StatusCounts,
);

fn seen(t: &Tables) -> Seen {
    let roots = t.workflow_roots();
    let members: Vec<Vec<InvocationId>> = roots
        .iter()
        .map(|r| t.workflow_invocations(r.id()))
        .collect();
    let mut records: Vec<(InvocationRecord, Vec<JournalEntry>)> = members
        .iter()
        .flatten()
        .map(|m| (t.invocation(*m).unwrap(), t.journal(*m).unwrap()))
        .collect();
    records.sort_by_key(|(r, _)| r.id());
    (roots, members, records, t.counts())
}

/// The order in which claims by a worker running `tasks` at `now` hand everything out.
pub(super) fn claim_order(t: &Tables, tasks: &TaskSet, now: Timestamp) -> Vec<InvocationId> {
    let mut t = t.clone();
    let mut order = Vec::new();
    while let Some(c) = claim(&mut t, &mut Vec::new(), tasks, now) {
        order.push(c.lease.invocation);
    }
    order
}

/// Asserts that replaying the log and replaying a snapshot both rebuild what the live
/// tables show, the app and the claim order included: for a worker running both tasks
/// and for one running either, so the order within each task's queue and across them is
/// rebuilt. Returns the claim order of a worker running both.
fn assert_rebuilt(live: Logged, now: Timestamp) -> Vec<InvocationId> {
    let from_log = replay(live.log.clone());
    let from_snapshot = replay(live.tables.snapshot());
    let expected = seen(&live.tables);
    assert_eq!(seen(&from_log), expected, "log replay");
    assert_eq!(seen(&from_snapshot), expected, "snapshot replay");
    for (t, how) in [
        (&from_log, "log replay"),
        (&from_snapshot, "snapshot replay"),
    ] {
        assert_eq!(t.app_id(), live.tables.app_id(), "the app after {how}");
    }
    for set in [tasks(&TASKS), tasks(&["t"]), tasks(&["u"])] {
        let order = claim_order(&live.tables, &set, now);
        for (t, how) in [
            (&from_log, "log replay"),
            (&from_snapshot, "snapshot replay"),
        ] {
            assert_eq!(
                claim_order(t, &set, now),
                order,
                "claim order of a worker running {set:?} after {how}"
            );
        }
    }
    claim_order(&live.tables, &tasks(&TASKS), now)
}

/// Children created by one commit share `created_at`; a snapshot (compaction) must keep
/// them in submission order, not in id order.
#[test]
fn snapshot_keeps_submission_order() {
    let mut live = Logged::default();
    let p = root(1);
    live.submit(&p, at(0));
    let lease = live.claim(at(1));
    // Ids in descending order, so id order is the reverse of submission order.
    let kids = [child(0x30, &p), child(0x20, &p), child(0x10, &p)];
    live.commit(
        &lease,
        Commit {
            children: kids.to_vec(),
            ..Commit::outcome(Outcome::Waiting {
                on: kids.iter().map(|k| k.id).collect(),
            })
        },
        at(2),
    );
    let submitted = [p.id, id(0x30), id(0x20), id(0x10)];
    assert_eq!(live.tables.workflow_invocations(p.id), submitted);
    assert_eq!(
        replay(live.tables.snapshot()).workflow_invocations(p.id),
        submitted,
        "members after a snapshot replay"
    );
    assert_eq!(
        assert_rebuilt(live, at(10)),
        [id(0x30), id(0x20), id(0x10)],
        "children are claimed in submission order"
    );
}

/// The ready queue is not creation order (a released invocation queues again at the back,
/// a retry joins when its not-before time comes); log and snapshot replay keep its order.
#[test]
fn replay_keeps_the_queue_order() {
    let mut live = Logged::default();
    let (a, b, x) = (root(1), root(2), root(3));
    live.submit(&a, at(0));
    live.submit(&b, at(1));
    live.submit(&x, at(2));
    let lease = live.claim(at(3));
    assert_eq!(lease.invocation, a.id);
    live.commit(&lease, Commit::outcome(Outcome::Released), at(4));
    let lease = live.claim(at(5));
    assert_eq!(lease.invocation, b.id);
    live.commit(
        &lease,
        Commit::outcome(Outcome::Retry {
            not_before: at(8),
            error: Failure::new(FailureKind::Task, "flaky"),
        }),
        at(6),
    );
    // X waits since 2 ms, B's retry since 8 ms: X first.
    assert_eq!(live.claim(at(10)).invocation, x.id);
    let c = root(4);
    live.submit(&c, at(11));
    // Queued: A since 4 ms (released), B since 8 ms (retry due), C since 11 ms.
    assert_eq!(assert_rebuilt(live, at(20)), [a.id, b.id, c.id]);
}

/// A due retry is ordered among queued invocations by its not-before time, as a function of
/// the logged state alone: claims do not move it anywhere the log does not record.
#[test]
fn log_replay_keeps_the_order_of_due_retries() {
    let mut live = Logged::default();
    let (a, q1, q2) = (root(1), root(2), root(3));
    live.submit(&a, at(0));
    let lease = live.claim(at(0));
    live.commit(
        &lease,
        Commit::outcome(Outcome::Retry {
            not_before: at(5),
            error: Failure::new(FailureKind::Task, "flaky"),
        }),
        at(0),
    );
    live.submit(&q1, at(1));
    live.submit(&q2, at(2));
    // Q1 waits since 1 ms, A's retry since 5 ms.
    assert_eq!(live.claim(at(10)).invocation, q1.id);
    assert_eq!(assert_rebuilt(live, at(20)), [q2.id, a.id]);
}

/// Each child's completion logs a constant amount, not the parent's whole remaining
/// `waiting_on` list (a fan-out of N children would log O(N²) bytes), and replay still
/// wakes the parent exactly when its last child finishes.
#[test]
fn child_completion_logs_constant_size() {
    const N: u128 = 100;
    let mut live = Logged::default();
    let p = root(1);
    live.submit(&p, at(0));
    let lease = live.claim(at(0));
    let kids: Vec<NewInvocation> = (0..N).map(|n| child(1000 + n, &p)).collect();
    live.commit(
        &lease,
        Commit {
            children: kids.clone(),
            ..Commit::outcome(Outcome::Waiting {
                on: kids.iter().map(|k| k.id).collect(),
            })
        },
        at(1),
    );
    let mut sizes = Vec::new();
    for k in &kids {
        let lease = live.claim(at(2));
        assert_eq!(lease.invocation, k.id);
        let before = live.log.len();
        live.commit(&lease, Commit::outcome(Outcome::Success(Vec::new())), at(3));
        sizes.push(wf_core::codec::encode(&live.log[before..]).unwrap().len());
    }
    let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
    assert!(
        max < &(2 * min),
        "bytes logged per child completion must not grow with the children still awaited: \
         {sizes:?}"
    );
    let parent = live.tables.invocation(p.id).unwrap();
    assert_eq!(
        parent.state.status,
        Status::Pending,
        "the last child wakes it"
    );
    assert!(parent.state.waiting_on.is_empty());
    assert_eq!(parent.state.updated_at, at(3));
    assert_eq!(assert_rebuilt(live, at(10)), [p.id]);
}

/// Timers, events (consumed or not, with keys), what a waiting invocation waits for and
/// cancellation requests (new and acknowledged): log replay and snapshot replay rebuild
/// them, and the claim order with a due timer.
#[test]
fn replay_keeps_timers_events_and_cancellations() {
    use crate::steering::NewEvent;
    let event = |name: &str, key: Option<&str>| NewEvent {
        name: name.to_owned(),
        payload: name.as_bytes().to_vec(),
        key: key.map(str::to_owned),
    };
    let mut live = Logged::default();
    let (a, b, c, d) = (root(1), root(2), root(3), root(4));
    for (n, inv) in [&a, &b, &c, &d].into_iter().enumerate() {
        live.submit(inv, at(n as u64));
    }
    // a sleeps until 50 ms.
    let la = live.claim(at(5));
    assert_eq!(la.invocation, a.id);
    let sleep = Suspension {
        wake_at: Some(at(50)),
        ..Suspension::default()
    };
    live.commit(&la, Commit::outcome(Outcome::Suspended(sleep)), at(6));
    // b consumes one "go" and waits for the next.
    live.tables
        .send_event(&mut live.log, b.id, event("go", Some("k")), at(7))
        .unwrap();
    let lb = live.claim(at(8));
    assert_eq!(lb.invocation, b.id);
    let wait = Suspension {
        event: Some("go".to_owned()),
        ..Suspension::default()
    };
    let consume = Commit {
        journal: fixtures::entries(0, 1),
        consumed: vec![0],
        ..Commit::outcome(Outcome::Suspended(wait))
    };
    live.commit(&lb, consume, at(9));
    live.tables
        .send_event(&mut live.log, b.id, event("other", None), at(10))
        .unwrap();
    // c runs and is asked to stop; d runs, is asked to stop and acknowledges.
    let lc = live.claim(at(11));
    let ld = live.claim(at(11));
    assert_eq!((lc.invocation, ld.invocation), (c.id, d.id));
    for id in [c.id, d.id] {
        live.tables
            .cancel_tree(&mut live.log, id, "stop", at(12))
            .unwrap();
    }
    let told = Commit {
        cancel_acknowledged: true,
        ..Commit::outcome(Outcome::Released)
    };
    live.commit(&ld, told, at(13));

    let ids = [a.id, b.id, c.id, d.id];
    let steering = |t: &Tables| {
        let inboxes: Vec<_> = ids.iter().map(|id| t.events(*id).unwrap()).collect();
        let requests: Vec<_> = ids.iter().map(|id| t.cancels.get(id).cloned()).collect();
        (
            inboxes,
            requests,
            t.cancel_requests(&ids),
            t.next_due(&tasks(&TASKS)),
        )
    };
    let expected = steering(&live.tables);
    assert_eq!(expected.0[1].events.len(), 2);
    assert_eq!(expected.0[1].waiting_for.as_deref(), Some("go"));
    assert_eq!(expected.3, Some(at(50)));
    assert_eq!(steering(&replay(live.log.clone())), expected, "log replay");
    assert_eq!(
        steering(&replay(live.tables.snapshot())),
        expected,
        "snapshot replay"
    );
    // Claimable at 60 ms: d (released at 13 ms) then a (its timer fired at 50 ms).
    assert_eq!(assert_rebuilt(live, at(60)), [d.id, a.id]);
}

/// Logs written before a variant existed must still decode: every enum a log holds keeps
/// its variants' positions (the encoded variant index follows the codec's version byte),
/// and new variants go last.
#[test]
fn logged_enums_keep_their_variant_positions() {
    use wf_core::{ChildOutcome, Op, codec::encode};
    let index = |bytes: Vec<u8>| bytes[1];
    let app = Change::App(String::new());
    assert_eq!(index(encode(&app).unwrap()), 6, "Change::App");
    let awaited = Change::AwaitEvent(InvocationId::from_u128(1), None);
    assert_eq!(index(encode(&awaited).unwrap()), 9, "Change::AwaitEvent");
    assert_eq!(index(encode(&Status::Failed).unwrap()), 6, "Status::Failed");
    assert_eq!(
        index(encode(&Status::Cancelled).unwrap()),
        7,
        "Status::Cancelled"
    );
    let result = Op::ChildResult {
        child: InvocationId::from_u128(1),
        outcome: ChildOutcome::Success(Vec::new()),
    };
    assert_eq!(index(encode(&result).unwrap()), 5, "Op::ChildResult");
    assert_eq!(index(encode(&Op::TimerFired).unwrap()), 7, "Op::TimerFired");
    let told = Op::Cancelled {
        reason: String::new(),
    };
    assert_eq!(index(encode(&told).unwrap()), 10, "Op::Cancelled");
}

/// A checkpoint's inline child is created running (never queued), its siblings queued in
/// order; log and snapshot replay rebuild both, and the leases recovery looks at.
#[test]
fn replay_rebuilds_a_checkpoint() {
    let mut live = Logged::default();
    let p = root(1);
    live.submit(&p, at(0));
    let lease = live.claim(at(1));
    let (inline, sibling) = (child(2, &p), child(3, &p));
    let claim = live
        .tables
        .checkpoint(
            &mut live.log,
            &lease,
            Checkpoint {
                journal: fixtures::entries(0, 1),
                data: Vec::new(),
                children: vec![inline.clone(), sibling.clone()],
            },
            inline.id,
            Duration::from_secs(10),
            at(2),
        )
        .unwrap();
    assert_eq!(claim.lease.invocation, inline.id);
    let later = at(2).saturating_add(Duration::from_secs(11));
    for mut t in [replay(live.log.clone()), replay(live.tables.snapshot())] {
        let mut lost = t.recover_expired(&mut Vec::new(), later).unwrap();
        lost.sort();
        assert_eq!(
            lost,
            [p.id, inline.id],
            "both leases are indexed after replay"
        );
    }
    assert_eq!(assert_rebuilt(live, at(3)), [sibling.id]);
}

/// Two tasks' queues, each in its own order and interleaved by when their invocations
/// became ready (submitted, released, retry due), with the app the store was bound to:
/// log replay and snapshot replay rebuild all of it.
#[test]
fn replay_keeps_per_task_queues_and_the_order_across_them() {
    let mut live = Logged::default();
    live.tables.bind_app(&mut live.log, "test", "shop").unwrap();
    let [t1, u1, t2, u2, t3] = [
        fixtures::root(1, "t", b""),
        fixtures::root(2, "u", b""),
        fixtures::root(3, "t", b""),
        fixtures::root(4, "u", b""),
        fixtures::root(5, "t", b""),
    ];
    for (n, inv) in [&t1, &u1, &t2, &u2].into_iter().enumerate() {
        live.submit(inv, at(n as u64));
    }
    // t1 runs and is released (queued again at 11 ms); u1 runs and retries from 12 ms.
    let lease = live.claim(at(10));
    assert_eq!(lease.invocation, t1.id);
    live.commit(&lease, Commit::outcome(Outcome::Released), at(11));
    let lease = live.claim(at(10));
    assert_eq!(lease.invocation, u1.id);
    live.commit(
        &lease,
        Commit::outcome(Outcome::Retry {
            not_before: at(12),
            error: Failure::new(FailureKind::Task, "flaky"),
        }),
        at(11),
    );
    live.submit(&t3, at(13));
    // Ready: t2 (2 ms), u2 (3 ms), t1 (11 ms), u1 (retry, 12 ms), t3 (13 ms).
    assert_eq!(
        assert_rebuilt(live, at(20)),
        [t2.id, u2.id, t1.id, u1.id, t3.id]
    );
}

/// Task names are stored once per task, logged or not: every spec of a task shares the copy.
#[test]
fn specs_share_one_copy_of_each_task_name() {
    for mut t in [Tables::new(), Tables::new().unlogged()] {
        let mut out = Vec::new();
        // Each submission brings a name of its own (`fixtures::root` makes a new one each time).
        let (a, b) = (root(1), root(2));
        assert_ne!(a.task.as_str().as_ptr(), b.task.as_str().as_ptr());
        t.submit(&mut out, a.clone(), at(1)).unwrap();
        t.submit(&mut out, b.clone(), at(1)).unwrap();
        let (ra, rb) = (t.invocation(a.id).unwrap(), t.invocation(b.id).unwrap());
        assert_eq!(
            ra.spec.task.as_str().as_ptr(),
            rb.spec.task.as_str().as_ptr(),
            "one copy of the task name (unlogged: {})",
            t.unlogged
        );
        assert_eq!(
            ra.spec.identity.workflow_type.as_str().as_ptr(),
            ra.spec.task.as_str().as_ptr()
        );
    }
}
