//! External events: sent to one invocation, stored durably in arrival order, buffered until a
//! body waits for them, consumed each once by the commit that journals them, idempotent by key.

use wf_core::Status;

use crate::error::StoreError;
use crate::model::{Commit, Outcome, Suspension};
use crate::steering::{EventSent, NewEvent};
use crate::store::Store;

use super::Subject;
use super::fixtures::*;

/// An event named `name` with payload `payload`, without a key.
fn event(name: &str, payload: &[u8]) -> NewEvent {
    NewEvent {
        name: name.to_owned(),
        payload: payload.to_vec(),
        key: None,
    }
}

/// The same with idempotency key `key`.
fn keyed(name: &str, payload: &[u8], key: &str) -> NewEvent {
    NewEvent {
        key: Some(key.to_owned()),
        ..event(name, payload)
    }
}

#[track_caller]
fn send(
    store: &dyn Store,
    to: wf_core::InvocationId,
    e: NewEvent,
    now: wf_core::Timestamp,
) -> EventSent {
    ok(
        store.send_event(to, e, now),
        format!("send an event to {to}"),
    )
}

/// A suspension waiting for the event `name`.
fn waiting_for(name: &str) -> Commit {
    suspended(Suspension {
        event: Some(name.to_owned()),
        ..Suspension::default()
    })
}

/// Events sent before anyone waits for them are kept: numbered from 0 in arrival order, with
/// their names, payloads and arrival times, not consumed. An unknown invocation has no events.
pub fn events_are_buffered_in_arrival_order(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"");
    submit(store, &inv, T0);
    assert_eq!(
        send(store, inv.id, event("a", b"1"), at(1)),
        EventSent::Stored { seq: 0 }
    );
    assert_eq!(
        send(store, inv.id, event("b", b"2"), at(2)),
        EventSent::Stored { seq: 1 }
    );
    assert_eq!(
        send(store, inv.id, event("a", b"3"), at(3)),
        EventSent::Stored { seq: 2 }
    );
    let inbox = ok(store.events(inv.id), "events");
    let seen: Vec<(u64, &str, &[u8], wf_core::Timestamp, bool)> = inbox
        .events
        .iter()
        .map(|e| {
            (
                e.seq,
                e.name.as_str(),
                e.payload.as_slice(),
                e.sent_at,
                e.consumed,
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (0, "a", &b"1"[..], at(1), false),
            (1, "b", &b"2"[..], at(2), false),
            (2, "a", &b"3"[..], at(3), false),
        ]
    );
    assert_eq!(inbox.waiting_for, None, "it does not wait for anything");
    assert_eq!(
        status(store, inv.id),
        Status::Pending,
        "an event does not queue anything"
    );
    let ghost = id(99);
    assert_not_found(
        store.events(ghost),
        ghost,
        "events of an unknown invocation",
    );
}

/// Consumption is atomic with the commit that journals it: a refused commit consumes nothing,
/// an accepted one marks exactly its events, and an event consumed before, never sent, or named
/// twice makes the commit invalid (nothing written).
pub fn consumption_is_atomic_with_the_commit(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"");
    submit(store, &inv, T0);
    send(store, inv.id, event("a", b"x"), at(1));
    send(store, inv.id, event("a", b"y"), at(1));
    let c = claim_expect(store, "w", at(2), inv.id);
    let refused = Commit {
        journal: entries(5, 1),
        consumed: vec![0],
        ..Commit::outcome(Outcome::Released)
    };
    assert_invalid(
        store.commit(&c.lease, refused, at(3)),
        inv.id,
        "a gap in the journal",
    );
    assert!(
        ok(store.events(inv.id), "events")
            .events
            .iter()
            .all(|e| !e.consumed),
        "a refused commit consumes nothing"
    );
    commit(
        store,
        &c.lease,
        Commit {
            journal: entries(0, 1),
            consumed: vec![0],
            ..Commit::outcome(Outcome::Released)
        },
        at(3),
    );
    let consumed: Vec<bool> = ok(store.events(inv.id), "events")
        .events
        .iter()
        .map(|e| e.consumed)
        .collect();
    assert_eq!(consumed, vec![true, false]);

    let c = claim_expect(store, "w", at(4), inv.id);
    for (seqs, why) in [
        (vec![0], "an event consumed before"),
        (vec![7], "an event never sent"),
        (vec![1, 1], "the same event twice"),
    ] {
        let again = Commit {
            journal: entries(1, 1),
            consumed: seqs,
            ..Commit::outcome(Outcome::Released)
        };
        assert_invalid(store.commit(&c.lease, again, at(5)), inv.id, why);
    }
    assert_eq!(
        ok(store.journal(inv.id), "journal").len(),
        1,
        "nothing written"
    );
    assert!(!ok(store.events(inv.id), "events").events[1].consumed);
    assert_eq!(status(store, inv.id), Status::Running);
}

/// A body waiting for an event holds no worker; another event's arrival leaves it waiting, an
/// event of its name makes it pending at once (and readable as what it waited for until then).
pub fn event_wakes_an_invocation_waiting_for_its_name(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"");
    submit(store, &inv, T0);
    let c = claim_expect(store, "w", T0, inv.id);
    commit(store, &c.lease, waiting_for("approve"), at(1));
    assert_eq!(status(store, inv.id), Status::Waiting);
    assert_eq!(
        ok(store.events(inv.id), "events").waiting_for.as_deref(),
        Some("approve")
    );
    assert_nothing_claimable(store, at(2), "it waits for an event");
    assert_eq!(
        ok(store.next_due(&suite_tasks()), "next_due"),
        None,
        "no timer"
    );
    send(store, inv.id, event("comment", b"hi"), at(3));
    assert_eq!(
        status(store, inv.id),
        Status::Waiting,
        "not the event it waits for"
    );
    send(store, inv.id, event("approve", b"yes"), at(4));
    let rec = record(store, inv.id);
    assert_eq!(rec.state.status, Status::Pending);
    assert_eq!(rec.state.updated_at, at(4));
    assert_eq!(ok(store.events(inv.id), "events").waiting_for, None);
    let c = claim_expect(store, "w", at(4), inv.id);
    assert_eq!(c.lease.attempt, 2);
}

/// Waiting for an event that is already there (it arrived while the body ran) is pending at
/// once; an event that the same commit consumes does not count.
pub fn waiting_for_a_buffered_event_is_pending_at_once(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"");
    submit(store, &inv, T0);
    let c = claim_expect(store, "w", T0, inv.id);
    send(store, inv.id, event("go", b""), at(1));
    commit(store, &c.lease, waiting_for("go"), at(2));
    assert_eq!(
        status(store, inv.id),
        Status::Pending,
        "the event is already there"
    );
    let c = claim_expect(store, "w", at(3), inv.id);
    commit(
        store,
        &c.lease,
        Commit {
            journal: entries(0, 1),
            consumed: vec![0],
            ..waiting_for("go")
        },
        at(4),
    );
    assert_eq!(
        status(store, inv.id),
        Status::Waiting,
        "the only \"go\" was consumed by this very commit"
    );
    send(store, inv.id, event("go", b""), at(5));
    assert_eq!(status(store, inv.id), Status::Pending);
}

/// An event or a timer, whichever comes first.
pub fn event_or_timer_whichever_first(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"");
    submit(store, &inv, T0);
    let c = claim_expect(store, "w", T0, inv.id);
    let both = || {
        suspended(Suspension {
            wake_at: Some(at(60)),
            event: Some("e".to_owned()),
            ..Suspension::default()
        })
    };
    commit(store, &c.lease, both(), at(1));
    assert_nothing_claimable(store, at(59), "neither yet");
    let c = claim_expect(store, "w", at(60), inv.id);
    commit(store, &c.lease, both(), at(61));
    send(store, inv.id, event("e", b""), at(62));
    let rec = record(store, inv.id);
    assert_eq!(rec.state.status, Status::Pending, "the event came first");
    assert_eq!(rec.state.not_before, None, "its timer no longer counts");
    claim_expect(store, "w", at(62), inv.id);
}

/// Keys make sending idempotent: the same key again (same name and payload) stores nothing and
/// answers with the first event's number, even once the invocation is final; the same key with
/// another name or payload is a conflict. Events without a key are all stored.
pub fn event_keys_make_sending_idempotent(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"");
    submit(store, &inv, T0);
    assert_eq!(
        send(store, inv.id, keyed("pay", b"10", "k"), at(1)),
        EventSent::Stored { seq: 0 }
    );
    assert_eq!(
        send(store, inv.id, keyed("pay", b"10", "k"), at(2)),
        EventSent::AlreadyStored { seq: 0 }
    );
    for conflicting in [keyed("pay", b"11", "k"), keyed("refund", b"10", "k")] {
        match err(store.send_event(inv.id, conflicting, at(3)), "a reused key") {
            StoreError::EventConflict { invocation, key } => {
                assert_eq!((invocation, key.as_str()), (inv.id, "k"));
            }
            other => panic!("expected EventConflict, got {other:?}"),
        }
    }
    send(store, inv.id, event("pay", b"10"), at(4));
    send(store, inv.id, event("pay", b"10"), at(5));
    assert_eq!(ok(store.events(inv.id), "events").events.len(), 3);

    let c = claim_expect(store, "w", at(6), inv.id);
    succeed(store, &c.lease, b"", at(7));
    assert_eq!(
        send(store, inv.id, keyed("pay", b"10", "k"), at(8)),
        EventSent::AlreadyStored { seq: 0 },
        "a retried send of a delivered event is still idempotent after the end"
    );
}

/// Sending to an unknown invocation is `InvocationNotFound`; to a final one (success, failed,
/// cancelled) `AlreadyFinished` naming its status. Nothing is stored.
pub fn events_to_unknown_or_final_invocations_are_refused(s: Subject) {
    let store = &*s.store;
    let ghost = id(99);
    assert_not_found(
        store.send_event(ghost, event("a", b""), T0),
        ghost,
        "send to a ghost",
    );
    let good = root(1, "good", b"");
    run_to_success(store, &good, T0);
    let cancelled = root(2, "t", b"");
    submit(store, &cancelled, T0);
    ok(store.cancel(cancelled.id, "stop", at(1)), "cancel");
    for (inv, final_status) in [
        (good.id, Status::Success),
        (cancelled.id, Status::Cancelled),
    ] {
        match err(
            store.send_event(inv, event("a", b""), at(2)),
            "send to a final one",
        ) {
            StoreError::AlreadyFinished { invocation, status } => {
                assert_eq!((invocation, status), (inv, final_status));
            }
            other => panic!("expected AlreadyFinished, got {other:?}"),
        }
        assert!(ok(store.events(inv), "events").events.is_empty());
    }
}

/// Events go with their workflow when it is purged.
pub fn events_are_purged_with_their_workflow(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"");
    submit(store, &inv, T0);
    send(store, inv.id, event("a", b"kept until the purge"), at(1));
    let c = claim_expect(store, "w", at(2), inv.id);
    succeed(store, &c.lease, b"", at(3));
    assert_eq!(ok(store.events(inv.id), "events").events.len(), 1);
    assert_eq!(ok(store.purge_finished(at(10)), "purge"), 1);
    assert_not_found(store.events(inv.id), inv.id, "events after the purge");
}
