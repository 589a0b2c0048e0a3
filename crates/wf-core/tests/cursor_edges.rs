//! The cursor's small promises, each pinned directly: found by mutation testing (`cargo xtask
//! mutants core`) as changes the property tests of `replay.rs` did not notice.

#![allow(clippy::unwrap_used)]

use wf_core::{
    ChildOutcome, Ending, InvocationId, JournalEntry, Op, RecordedEvent, Replay, ReplayCursor,
    Status, Timestamp,
};

fn journal(ops: Vec<Op>) -> Vec<JournalEntry> {
    ops.into_iter()
        .enumerate()
        .map(|(seq, op)| JournalEntry {
            seq: seq as u32,
            op,
        })
        .collect()
}

fn cursor(ops: Vec<Op>) -> ReplayCursor {
    ReplayCursor::new(InvocationId::from_u128(1), journal(ops))
}

fn event(name: &str, seq: u64) -> Op {
    Op::Event {
        name: name.into(),
        seq,
        payload: vec![seq as u8],
    }
}

#[test]
fn position_replaying_and_new_entries_follow_the_run() {
    let mut c = cursor(vec![Op::Random(7), Op::Timer { at: Timestamp(5) }]);
    assert_eq!(
        (c.position(), c.recorded_len(), c.is_replaying()),
        (0, 2, true)
    );
    c.random().unwrap();
    assert_eq!((c.position(), c.is_replaying()), (1, true));
    c.timer_at(Timestamp(9)).unwrap();
    assert_eq!((c.position(), c.is_replaying()), (2, false));
    assert!(c.new_entries().is_empty(), "replayed entries are not new");
    c.uuid().unwrap();
    assert_eq!((c.position(), c.recorded_len()), (3, 2));
    assert_eq!(c.new_entries().len(), 1);
    assert_eq!(c.new_entries()[0].seq, 2);
    assert_eq!(c.take_new_entries().len(), 1);
    assert!(c.new_entries().is_empty());
}

#[test]
fn a_timer_replays_its_recorded_time_and_records_a_live_one() {
    let mut c = cursor(vec![Op::Timer { at: Timestamp(5) }]);
    assert_eq!(
        c.timer_at(Timestamp(9)).unwrap(),
        Timestamp(5),
        "the journal wins"
    );
    assert_eq!(
        c.timer_at(Timestamp(11)).unwrap(),
        Timestamp(11),
        "past the journal"
    );
    assert_eq!(c.new_entries()[0].op, Op::Timer { at: Timestamp(11) });
}

#[test]
fn a_race_with_a_child_replays_only_that_child_or_the_timer() {
    let (a, b) = (InvocationId::from_u128(10), InvocationId::from_u128(11));
    let won = Op::ChildResult {
        child: a,
        outcome: ChildOutcome::Success(vec![1]),
    };
    assert!(
        cursor(vec![won.clone()])
            .child_result_or_timeout(b)
            .is_err()
    );
    assert_eq!(
        cursor(vec![won]).child_result_or_timeout(a).unwrap(),
        Replay::Recorded(Some(ChildOutcome::Success(vec![1])))
    );
    assert_eq!(
        cursor(vec![Op::TimerFired])
            .child_result_or_timeout(a)
            .unwrap(),
        Replay::Recorded(None)
    );
}

#[test]
fn a_race_with_an_event_replays_only_that_event_or_the_timer() {
    assert_eq!(
        cursor(vec![event("approve", 3)])
            .event_or_timeout("approve")
            .unwrap(),
        Replay::Recorded(Some(RecordedEvent {
            seq: 3,
            payload: vec![3]
        }))
    );
    assert!(
        cursor(vec![event("approve", 3)])
            .event_or_timeout("reject")
            .is_err()
    );
    assert_eq!(
        cursor(vec![Op::TimerFired])
            .event_or_timeout("approve")
            .unwrap(),
        Replay::Recorded(None)
    );
    assert_eq!(
        cursor(vec![]).event_or_timeout("approve").unwrap(),
        Replay::Live
    );
}

#[test]
fn a_patch_marker_of_another_change_is_not_taken() {
    let mut c = cursor(vec![Op::Patch { id: "v2".into() }]);
    assert!(!c.patched("v3"), "another change's marker: the old branch");
    assert_eq!(c.position(), 0, "and nothing consumed");
    assert!(c.patched("v2"));
    assert_eq!(c.position(), 1);
}

#[test]
fn a_stop_short_keeps_at_most_512_bytes_of_what_the_body_said_on_a_char_boundary() {
    let c = cursor(vec![Op::Random(1)]);
    // "é" is two bytes at 511..513: the cut falls inside it and must step back before it.
    let said = format!("{}é{}", "a".repeat(511), "b".repeat(100));
    let e = c.check_end(Ending::Failed, Some(&said)).unwrap_err();
    assert_eq!(
        e.requested,
        format!("nothing more (the body failed: {}…)", "a".repeat(511))
    );
    let short = c.check_end(Ending::Panicked, Some("oops")).unwrap_err();
    assert_eq!(short.requested, "nothing more (the body panicked: oops)");
    let quiet = c.check_end(Ending::Returned, None).unwrap_err();
    assert_eq!(quiet.requested, "nothing more (the body returned)");
}

#[test]
fn statuses_name_themselves_and_say_which_are_claimable() {
    let names = [
        (Status::Registered, "registered", false),
        (Status::Pending, "pending", true),
        (Status::Running, "running", false),
        (Status::Waiting, "waiting", false),
        (Status::Retry, "retry", true),
        (Status::Success, "success", false),
        (Status::Failed, "failed", false),
        (Status::Cancelled, "cancelled", false),
    ];
    assert_eq!(names.len(), Status::ALL.len());
    for (status, name, claimable) in names {
        assert_eq!(status.as_str(), name);
        assert_eq!(status.to_string(), name);
        assert_eq!(status.is_claimable(), claimable, "{name}");
    }
}
