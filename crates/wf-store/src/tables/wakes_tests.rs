//! Unit tests of [`Tables`] for what the memory backend relies on: whom each change wakes,
//! unlogged tables (no change list, wakes counted instead), and the debug view.

use wf_core::{InvocationId, Status, Timestamp};

use super::tests::root;
use super::{Change, Tables, Wakes};
use crate::conformance::fixtures::at_ms as at;
use crate::model::InvocationState;

fn state(status: Status, not_before: Option<Timestamp>) -> InvocationState {
    InvocationState {
        status,
        attempts: 0,
        retries: 0,
        recoveries: 0,
        lease: None,
        not_before,
        result: None,
        error: None,
        waiting_on: Vec::new(),
        updated_at: at(0),
    }
}

fn wakes_of(change: &Change) -> Wakes {
    let mut w = Wakes::default();
    w.note(change);
    w
}

/// A change wakes a worker when it makes something claimable (now, or later by the clock: a
/// delayed start, a retry, a waiting invocation's timer), and the `wait_final` waiters when it
/// makes something final or purges it; nothing else wakes anyone (a worker woken for nothing
/// would take the wake-up another change meant for a worker that has work).
#[test]
fn changes_wake_workers_for_claimable_work_and_waiters_for_final_or_purged_invocations() {
    let id = InvocationId::from_u128(1);
    let work = Wakes {
        new_work: 1,
        any_final: false,
    };
    let finished = Wakes {
        new_work: 0,
        any_final: true,
    };
    let nobody = Wakes::default();
    for (status, not_before, expected, what) in [
        (Status::Pending, None, work, "a pending invocation"),
        (Status::Pending, Some(at(5)), work, "a delayed one"),
        (Status::Retry, Some(at(5)), work, "a retry"),
        (
            Status::Waiting,
            Some(at(5)),
            work,
            "a waiting one with a timer",
        ),
        (
            Status::Waiting,
            None,
            nobody,
            "a waiting one without a timer",
        ),
        (Status::Running, None, nobody, "a running one"),
        (Status::Success, None, finished, "a successful one"),
        (Status::Failed, None, finished, "a failed one"),
        (Status::Cancelled, None, finished, "a cancelled one"),
    ] {
        assert_eq!(
            wakes_of(&Change::State(id, state(status, not_before))),
            expected,
            "{what}"
        );
    }
    assert_eq!(
        wakes_of(&Change::Purged(id)),
        finished,
        "a purge: a waiter on a purged invocation must learn it is gone"
    );
    assert_eq!(wakes_of(&Change::Journal(id, Vec::new())), nobody);
    assert_eq!(wakes_of(&Change::App("a".to_owned())), nobody);

    let mut w = Wakes::default();
    for _ in 0..3 {
        w.note(&Change::State(id, state(Status::Pending, None)));
    }
    w.note(&Change::State(id, state(Status::Running, None)));
    assert_eq!(w.new_work, 3, "each claimable change counts once");
    assert!(!w.any_final);
}

/// Unlogged tables (the memory backend's) leave the change list empty and count whom their
/// changes wake instead, until `take_wakes` hands the count over and starts again; logged
/// tables (the file backend's) list every change and count nothing themselves.
#[test]
fn unlogged_tables_list_no_changes_and_count_whom_they_wake() {
    let mut logged = Tables::new();
    let mut out = Vec::new();
    logged.submit(&mut out, root(1), at(0)).unwrap();
    assert_eq!(out.len(), 1, "a logged submit lists its change: {out:?}");
    assert_eq!(logged.take_wakes(), Wakes::default());

    let mut unlogged = Tables::new().unlogged();
    let mut out = Vec::new();
    unlogged.submit(&mut out, root(1), at(0)).unwrap();
    unlogged.submit(&mut out, root(2), at(0)).unwrap();
    assert!(out.is_empty(), "an unlogged submit lists nothing: {out:?}");
    assert_eq!(
        unlogged.take_wakes(),
        Wakes {
            new_work: 2,
            any_final: false
        }
    );
    assert_eq!(
        unlogged.take_wakes(),
        Wakes::default(),
        "counting starts again"
    );
    assert_eq!(
        unlogged.invocation(root(2).id).unwrap().state.status,
        Status::Pending,
        "the change was applied all the same"
    );
}

/// The debug view names the app and how many invocations the tables hold (a store's
/// `Debug` shows it).
#[test]
fn the_debug_view_shows_the_app_and_the_number_of_invocations() {
    let mut t = Tables::new();
    let mut out = Vec::new();
    t.bind_app(&mut out, "here", "billing").unwrap();
    t.submit(&mut out, root(1), at(0)).unwrap();
    let seen = format!("{t:?}");
    assert!(seen.starts_with("Tables {"), "{seen}");
    assert!(seen.contains("\"billing\""), "{seen}");
    assert!(seen.contains("invocations: 1"), "{seen}");
}
