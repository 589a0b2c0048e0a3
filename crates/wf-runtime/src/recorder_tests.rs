//! Unit and property tests of the [`Recorder`]: what one execution records and commits (its
//! stop point, suspensions, divergence, cancellation, the refusals before it unwinds a body that
//! insists). [`Recorder::progress`] has its own file, `recorder_progress_tests.rs`.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use wf_core::{CallId, Ending, InvocationId, OpKind, RecordedEvent, Replay, TaskId, Timestamp};
use wf_store::{NewInvocation, StoreError};

use crate::cancel::CancelFlag;
use crate::error::WfError;
use crate::recorder::{InsistedAfterStop, Interruption, REFUSALS_BEFORE_UNWIND, Recorder, Verdict};

/// One operation of a body, for the recorder's own properties.
#[derive(Debug, Clone, Copy)]
enum Req {
    Random,
    Uuid,
    Data,
}

fn req() -> impl Strategy<Value = Req> {
    prop_oneof![Just(Req::Random), Just(Req::Uuid), Just(Req::Data)]
}

fn perform(r: &mut Recorder, reqs: &[Req]) {
    for q in reqs {
        match q {
            Req::Random => {
                r.random();
            }
            Req::Uuid => {
                r.uuid();
            }
            Req::Data => {
                if let Replay::Live = r.data_get("k").unwrap() {
                    r.record_data_get("k", Some(vec![1])).unwrap();
                }
            }
        }
    }
}

fn ending() -> impl Strategy<Value = Ending> {
    prop_oneof![
        Just(Ending::Returned),
        Just(Ending::Failed),
        Just(Ending::Panicked)
    ]
}

proptest! {
    /// Any prefix-truncation of a completed run's replay is reported as stopping short, at
    /// the first skipped entry, however the body ends; unless the execution was cut by a
    /// suspension, which is not an ending.
    #[test]
    fn a_replay_cut_short_diverges_unless_suspended(
        reqs in proptest::collection::vec(req(), 1..30),
        cut in any::<prop::sample::Index>(),
        how in ending(),
    ) {
        let id = InvocationId::from_u128(5);
        let mut first = Recorder::new(id, Vec::new());
        perform(&mut first, &reqs);
        let sealed = first.seal(Some(how.into()));
        prop_assert_eq!(&sealed.verdict, &Verdict::Ended);
        let journal = sealed.journal;
        let k = cut.index(reqs.len());

        let mut ended = Recorder::new(id, journal.clone());
        perform(&mut ended, &reqs[..k]);
        match ended.seal(Some(how.into())).verdict {
            Verdict::Diverged(nd) => {
                prop_assert_eq!(nd.position as usize, k);
                prop_assert_eq!(&nd.recorded, &journal[k].op.to_string());
            }
            other => prop_assert!(false, "stopping short at {} gave {:?}", k, other),
        }

        let mut suspended = Recorder::new(id, journal);
        perform(&mut suspended, &reqs[..k]);
        let _ = suspended.suspend(vec![InvocationId::from_u128(6)], None, None);
        let sealed = suspended.seal(Some(how.into()));
        let suspended_verdict =
            matches!(sealed.verdict, Verdict::Interrupted(Interruption::Suspended { .. }));
        prop_assert!(suspended_verdict, "{:?}", sealed.verdict);
        prop_assert!(sealed.journal.is_empty(), "a replay records nothing new");
    }
}

#[test]
fn nothing_after_the_stop_point_counts() {
    let id = InvocationId::from_u128(1);
    let mut r = Recorder::new(id, Vec::new());
    r.random();
    r.write("a", vec![1]).unwrap();
    let err = r.suspend(vec![InvocationId::from_u128(2)], None, None);
    assert!(matches!(err, WfError::Suspended { waiting_on: 1 }));
    // A body that swallowed the suspension carries on: refused, and not recorded.
    r.uuid();
    assert!(matches!(
        r.write("b", vec![2]),
        Err(WfError::Suspended { .. })
    ));
    assert!(matches!(r.data_get("a"), Err(WfError::Suspended { .. })));
    let _ = r.store_failed(&StoreError::Unavailable("later".into()));
    let sealed = r.seal(Some(Ending::Returned.into()));
    assert_eq!(sealed.journal.len(), 1);
    assert_eq!(sealed.writes, vec![("a".to_owned(), vec![1])]);
    assert_eq!(
        sealed.verdict,
        Verdict::Interrupted(Interruption::Suspended {
            on: vec![InvocationId::from_u128(2)],
            until: None,
            event: None,
        }),
        "the first stop point wins"
    );
}

#[test]
fn a_body_that_insists_after_the_stop_point_is_unwound() {
    let mut r = Recorder::new(InvocationId::from_u128(1), Vec::new());
    let _ = r.suspend(vec![InvocationId::from_u128(2)], None, None);
    for _ in 0..REFUSALS_BEFORE_UNWIND {
        assert!(matches!(r.check_live(), Err(WfError::Suspended { .. })));
    }
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| r.check_live()));
    let payload = unwound.expect_err("the next refusal unwinds");
    assert!(payload.is::<InsistedAfterStop>());
    assert!(matches!(
        r.seal(Some(Ending::Panicked.into())).verdict,
        Verdict::Interrupted(Interruption::Suspended { .. })
    ));
}

#[test]
fn a_live_execution_is_never_refused_however_long_it_runs() {
    let mut r = Recorder::new(InvocationId::from_u128(1), Vec::new());
    for _ in 0..=REFUSALS_BEFORE_UNWIND {
        r.check_live().unwrap();
    }
}

#[test]
fn a_divergence_commits_nothing() {
    let id = InvocationId::from_u128(1);
    let mut first = Recorder::new(id, Vec::new());
    first.random();
    let journal = first.seal(Some(Ending::Returned.into())).journal;
    let mut replay = Recorder::new(id, journal);
    replay.uuid();
    replay.write("a", vec![1]).unwrap_err();
    let sealed = replay.seal(Some(Ending::Returned.into()));
    assert!(matches!(sealed.verdict, Verdict::Diverged(ref nd) if nd.position == 0));
    assert!(sealed.journal.is_empty() && sealed.writes.is_empty());
}

/// A child submission of `parent`, for tests.
fn submission(parent: InvocationId, child: InvocationId) -> NewInvocation {
    let task = TaskId::new("leaf");
    NewInvocation {
        id: child,
        call: CallId::of(&task, b""),
        identity: wf_core::WorkflowIdentity::new_workflow(parent, task.clone()),
        task,
        args: Vec::new(),
        parent: Some(parent),
        not_before: None,
        max_recoveries: 3,
    }
}

/// The cancellation is told once, at the first journaled operation past the journal after
/// the flag is raised, and recorded there; a replay tells it at the same position without
/// the flag. Children started before the telling are listed for cancelling.
#[test]
fn a_cancellation_is_told_once_and_replayed_at_its_position() {
    let id = InvocationId::from_u128(1);
    let flag = CancelFlag::default();
    let mut live = Recorder::new(id, Vec::new()).with_cancel(flag.clone());
    let task = TaskId::new("leaf");
    let early = live
        .start_child(&task, CallId::of(&task, b"1"), |c| submission(id, c))
        .unwrap();
    assert!(live.tell_cancellation().is_ok(), "not requested yet");
    flag.raise("stop");
    match live.tell_cancellation() {
        Err(WfError::Cancelled { invocation, reason }) => {
            assert_eq!((invocation, reason.as_str()), (id, "stop"));
        }
        other => panic!("expected Cancelled, got {other:?}"),
    }
    assert!(live.tell_cancellation().is_ok(), "told once");
    live.start_child(&task, CallId::of(&task, b"2"), |c| submission(id, c))
        .unwrap();
    let sealed = live.seal(Some(Ending::Returned.into()));
    assert_eq!(sealed.told.as_deref(), Some("stop"));
    assert_eq!(sealed.started_before_told, vec![early]);
    assert_eq!(sealed.children.len(), 2, "both are submitted");
    let kinds: Vec<_> = sealed.journal.iter().map(|e| e.op.kind()).collect();
    assert_eq!(
        kinds,
        [OpKind::ChildStart, OpKind::Cancelled, OpKind::ChildStart]
    );

    let mut replay = Recorder::new(id, sealed.journal);
    replay
        .start_child(&task, CallId::of(&task, b"1"), |c| submission(id, c))
        .unwrap();
    assert!(matches!(
        replay.tell_cancellation(),
        Err(WfError::Cancelled { .. })
    ));
    assert!(replay.told());
    replay
        .start_child(&task, CallId::of(&task, b"2"), |c| submission(id, c))
        .unwrap();
    let sealed = replay.seal(Some(Ending::Returned.into()));
    assert_eq!(sealed.verdict, Verdict::Ended);
    assert!(sealed.journal.is_empty() && sealed.started_before_told.is_empty());
}

/// Events consumed after the stop point are not committed (nor consumed).
#[test]
fn events_consumed_after_the_stop_point_are_not_committed() {
    let id = InvocationId::from_u128(1);
    let mut r = Recorder::new(id, Vec::new());
    let event = |seq| RecordedEvent {
        seq,
        payload: b"1".to_vec(),
    };
    r.consume_event("a", event(0)).unwrap();
    let _ = r.suspend(Vec::new(), Some(Timestamp(5)), None);
    assert!(r.consume_event("a", event(1)).is_err());
    let sealed = r.seal(Some(Ending::Returned.into()));
    assert_eq!(sealed.consumed, vec![0]);
    assert_eq!(sealed.journal.len(), 1);
    assert_eq!(
        sealed.verdict,
        Verdict::Interrupted(Interruption::Suspended {
            on: Vec::new(),
            until: Some(Timestamp(5)),
            event: None,
        })
    );
}

/// A replay check never runs past the journal: a live child start stops it, submitting
/// nothing.
#[test]
fn a_replay_check_stops_at_the_end_of_the_journal() {
    let id = InvocationId::from_u128(1);
    let task = TaskId::new("leaf");
    let mut r = Recorder::new(id, Vec::new()).check_only();
    assert!(
        r.start_child(&task, CallId::of(&task, b""), |c| submission(id, c))
            .is_err()
    );
    let sealed = r.seal(Some(Ending::Returned.into()));
    assert_eq!(
        sealed.verdict,
        Verdict::Interrupted(Interruption::EndOfJournal)
    );
    assert!(sealed.children.is_empty());
}

/// After a checkpoint whose outcome is unknown, nothing recorded since the last persisted
/// checkpoint is committed (the checkpoint may hold it already), and the execution is
/// deferred like one whose store read failed.
#[test]
fn an_unknown_checkpoint_commits_nothing_recorded_since_the_last_checkpoint() {
    let id = InvocationId::from_u128(1);
    let task = TaskId::new("leaf");
    let mut r = Recorder::new(id, Vec::new());
    r.random();
    r.start_child(&task, CallId::of(&task, b""), |c| submission(id, c))
        .unwrap();
    let e = r.checkpoint_unknown(&StoreError::Unavailable("reply lost".into()));
    assert!(
        matches!(e, WfError::Store(StoreError::Unavailable(_))),
        "{e:?}"
    );
    r.uuid();
    let sealed = r.seal(Some(Ending::Returned.into()));
    assert!(
        matches!(
            sealed.verdict,
            Verdict::Interrupted(Interruption::StoreFailed { .. })
        ),
        "{:?}",
        sealed.verdict
    );
    assert!(sealed.journal.is_empty(), "{:?}", sealed.journal);
    assert!(sealed.children.is_empty());
}
