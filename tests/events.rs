//! External events end to end, on every backend: buffered before the wait, waking a waiting
//! workflow, consumed in arrival order each once, journaled (a replay returns the event it
//! consumed, not a newer one), idempotent by key, typed errors for unknown and finished
//! invocations and for payloads of the wrong type.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{PATIENCE, journal_kinds, steering_apps, until_waiting};
use serde::{Deserialize, Serialize};
use wf::core::OpKind;
use wf::prelude::*;
use wf::store::StoreError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Decision {
    Approve { by: String },
    Reject,
}

/// An event sent before the body waits for it is kept and taken at once; one sent while it
/// waits wakes it (a worker running, nothing polled by the test).
#[test]
fn events_are_buffered_or_wake_the_waiting_body() {
    for t in steering_apps(|b| b) {
        let app = &t.app;
        let expense = app
            .task(
                "expense",
                |ctx: &TaskContext, cents: u64| -> Result<String, TaskError> {
                    match ctx.wf().wait_event::<Decision>("decision")? {
                        Decision::Approve { by } => Ok(format!("{cents} approved by {by}")),
                        Decision::Reject => Ok(format!("{cents} rejected")),
                    }
                },
            )
            .unwrap();
        let early = expense.call(app, 10).unwrap();
        app.send_event(early.id(), "decision", &Decision::Reject)
            .unwrap();
        let worker = app.worker().threads(1).start().unwrap();
        assert_eq!(early.result_timeout(PATIENCE).unwrap(), "10 rejected");

        let waiting = expense.call(app, 20).unwrap();
        until_waiting(app, waiting.id());
        assert_eq!(
            waiting.progress().unwrap(),
            "waiting for event 'decision'",
            "{}",
            t.backend
        );
        let approve = Decision::Approve { by: "ana".into() };
        waiting.send_event("decision", &approve).unwrap();
        assert_eq!(
            waiting.result_timeout(PATIENCE).unwrap(),
            "20 approved by ana"
        );
        assert_eq!(journal_kinds(app, waiting.id()), [OpKind::Event]);
        worker.stop();
    }
}

/// Events of one name are consumed in arrival order, each once; other names are left alone.
#[test]
fn events_are_consumed_in_arrival_order_each_once() {
    for t in steering_apps(|b| b) {
        let app = &t.app;
        let collect = app
            .task(
                "collect",
                |ctx: &TaskContext, n: usize| -> Result<Vec<u32>, TaskError> {
                    let wf = ctx.wf();
                    (0..n)
                        .map(|_| wf.wait_event::<u32>("item").map_err(TaskError::from))
                        .collect()
                },
            )
            .unwrap();
        let inv = collect.call(app, 3).unwrap();
        for (name, n) in [("item", 1), ("noise", 9), ("item", 2)] {
            app.send_event(inv.id(), name, &n).unwrap();
        }
        app.run_until_idle().unwrap();
        assert_eq!(inv.status().unwrap(), Status::Waiting, "{}", t.backend);
        app.send_event(inv.id(), "item", &3).unwrap();
        app.send_event(inv.id(), "item", &4).unwrap();
        app.run_until_idle().unwrap();
        assert_eq!(inv.result().unwrap(), vec![1, 2, 3], "{}", t.backend);
        let inbox = app.store().events(inv.id()).unwrap();
        let consumed: Vec<(String, bool)> = inbox
            .events
            .iter()
            .map(|e| (e.name.clone(), e.consumed))
            .collect();
        let expected = [
            ("item", true),
            ("noise", false),
            ("item", true),
            ("item", true),
            ("item", false),
        ];
        assert_eq!(
            consumed,
            expected.map(|(n, c)| (n.to_owned(), c)),
            "{}",
            t.backend
        );
    }
}

/// The event a wait consumed is journaled: a replay returns it, even when newer events of the
/// same name have arrived since.
#[test]
fn a_replay_returns_the_journaled_event_not_a_newer_one() {
    for t in steering_apps(|b| b) {
        let app = &t.app;
        let leaf = app
            .task(
                "leaf",
                |_: &TaskContext, n: u32| -> Result<u32, TaskError> { Ok(n) },
            )
            .unwrap();
        let flow = app
            .task(
                "flow",
                move |ctx: &TaskContext, (): ()| -> Result<(u32, u32), TaskError> {
                    let wf = ctx.wf();
                    let first: u32 = wf.wait_event("x")?;
                    wf.execute_task(&leaf, first)?;
                    Ok((first, wf.wait_event("x")?))
                },
            )
            .unwrap();
        let inv = flow.call(app, ()).unwrap();
        // Both arrive first: the first execution consumes 1 and suspends on the leaf; the
        // replay after it must return 1 from the journal, not take 2, the oldest unconsumed.
        app.send_event(inv.id(), "x", &1).unwrap();
        app.send_event(inv.id(), "x", &2).unwrap();
        app.run_until_idle().unwrap();
        assert_eq!(inv.result().unwrap(), (1, 2), "{}", t.backend);
        assert_eq!(
            journal_kinds(app, inv.id()),
            [
                OpKind::Event,
                OpKind::ChildStart,
                OpKind::ChildResult,
                OpKind::Event
            ]
        );
    }
}

/// A keyed send is idempotent (also after the workflow finished); an unkeyed one is not.
/// Sending to an unknown or finished invocation is a typed error; so is a payload of another
/// type, which the body can handle.
#[test]
fn keys_errors_and_payload_types() {
    for t in steering_apps(|b| b) {
        let app = &t.app;
        let count = app
            .task(
                "count",
                |ctx: &TaskContext, (): ()| -> Result<String, TaskError> {
                    let wf = ctx.wf();
                    let a: u32 = wf.wait_event("n")?;
                    let b: u32 = wf.wait_event("n")?;
                    match wf.wait_event::<u32>("n") {
                        Err(WfError::EventPayload { name, .. }) => {
                            Ok(format!("{a}+{b}, then bad {name}"))
                        }
                        other => Ok(format!("unexpected {other:?}")),
                    }
                },
            )
            .unwrap();
        let inv = count.call(app, ()).unwrap();
        let first = app.send_event_with_key(inv.id(), "n", "k1", &1).unwrap();
        let again = app.send_event_with_key(inv.id(), "n", "k1", &1).unwrap();
        assert_eq!(first, EventSent::Stored { seq: 0 });
        assert_eq!(again, EventSent::AlreadyStored { seq: 0 }, "{}", t.backend);
        match app.send_event_with_key(inv.id(), "n", "k1", &5) {
            Err(WfError::Store(StoreError::EventConflict { key, .. })) => assert_eq!(key, "k1"),
            other => panic!("{}: expected EventConflict, got {other:?}", t.backend),
        }
        app.send_event(inv.id(), "n", &2).unwrap();
        app.send_event(inv.id(), "n", "not a number").unwrap();
        app.run_until_idle().unwrap();
        assert_eq!(inv.result().unwrap(), "1+2, then bad n", "{}", t.backend);

        assert_eq!(
            app.send_event_with_key(inv.id(), "n", "k1", &1).unwrap(),
            EventSent::AlreadyStored { seq: 0 },
            "a retried send is harmless after the end"
        );
        match app.send_event(inv.id(), "n", &3) {
            Err(WfError::Store(StoreError::AlreadyFinished { invocation, status })) => {
                assert_eq!((invocation, status), (inv.id(), Status::Success));
            }
            other => panic!("{}: expected AlreadyFinished, got {other:?}", t.backend),
        }
        let ghost = InvocationId::from_u128(77);
        match app.send_event(ghost, "n", &3) {
            Err(WfError::Store(StoreError::InvocationNotFound(id))) => assert_eq!(id, ghost),
            other => panic!("{}: expected InvocationNotFound, got {other:?}", t.backend),
        }
        assert!(matches!(
            app.send_event(inv.id(), "", &3),
            Err(WfError::Usage(_))
        ));
    }
}

/// A payload has one byte form whoever encodes it (JSON with sorted object keys), so the same
/// keyed event sent by the app and by another sender (`wf send-event` writes canonical JSON)
/// is stored once.
#[test]
fn the_same_keyed_payload_from_another_sender_is_stored_once() {
    #[derive(Serialize)]
    struct Note {
        zeta: u32,
        alpha: String,
    }
    for t in steering_apps(|b| b) {
        let app = &t.app;
        let wait = app
            .task(
                "wait",
                |ctx: &TaskContext, (): ()| -> Result<(), TaskError> {
                    Ok(ctx.wf().wait_event::<()>("never")?)
                },
            )
            .unwrap();
        let inv = wait.call(app, ()).unwrap();
        let note = Note {
            zeta: 1,
            alpha: "a".into(),
        };
        let first = app
            .send_event_with_key(inv.id(), "note", "k", &note)
            .unwrap();
        let canonical = wf::store::NewEvent {
            name: "note".into(),
            payload: br#"{"alpha":"a","zeta":1}"#.to_vec(),
            key: Some("k".into()),
        };
        let again = app
            .store()
            .send_event(inv.id(), canonical, wf::core::Timestamp(0))
            .unwrap();
        assert_eq!(
            again,
            EventSent::AlreadyStored { seq: first.seq() },
            "{}",
            t.backend
        );
    }
}
