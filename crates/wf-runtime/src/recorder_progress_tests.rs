//! Unit tests of [`Recorder::progress`]: what an execution may persist by a checkpoint before it
//! runs a child inline. A checkpoint carries the journal, data writes and children; it cannot
//! mark events consumed (only a commit does), so an execution that consumed one, or was told of
//! its cancellation (which decides its commit), or is a replay check (which writes nothing),
//! has no progress to checkpoint.
#![allow(clippy::unwrap_used)]

use wf_core::{InvocationId, RecordedEvent};

use crate::cancel::CancelFlag;
use crate::recorder::Recorder;

fn id() -> InvocationId {
    InvocationId::from_u128(1)
}

#[test]
fn a_live_execution_checkpoints_what_it_recorded() {
    let mut r = Recorder::new(id(), Vec::new());
    r.random();
    r.write("k", vec![1]).unwrap();
    let progress = r
        .progress()
        .unwrap()
        .expect("a live execution has progress");
    assert_eq!(progress.journal.len(), 1);
    assert_eq!(progress.data, vec![("k".to_owned(), vec![1])]);
}

#[test]
fn an_execution_that_consumed_an_event_does_not_checkpoint() {
    let mut r = Recorder::new(id(), Vec::new());
    let event = RecordedEvent {
        seq: 0,
        payload: vec![7],
    };
    r.consume_event("approved", event).unwrap();
    assert!(
        r.progress().unwrap().is_none(),
        "a checkpoint cannot mark the event consumed: only the commit may carry this journal"
    );
}

#[test]
fn an_execution_told_of_its_cancellation_does_not_checkpoint() {
    let flag = CancelFlag::default();
    let mut r = Recorder::new(id(), Vec::new()).with_cancel(flag.clone());
    r.random();
    flag.raise("stop");
    assert!(r.tell_cancellation().is_err(), "told at the next operation");
    assert!(r.told());
    assert!(
        r.progress().unwrap().is_none(),
        "the cancellation decides the commit: nothing runs inline meanwhile"
    );
}

#[test]
fn a_replay_check_does_not_checkpoint() {
    let mut r = Recorder::new(id(), Vec::new()).check_only();
    assert!(
        r.progress().unwrap().is_none(),
        "a replay check writes nothing"
    );
}
