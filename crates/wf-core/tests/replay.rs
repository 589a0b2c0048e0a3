//! Property tests of the replay cursor: replays are exact and record nothing, divergence is
//! reported at exactly the diverging position, and the primitives keep their promises.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;

use proptest::prelude::*;
use time::OffsetDateTime;
use wf_core::{
    CallId, ChildOutcome, Ending, Failure, FailureKind, InvocationId, NonDeterminism,
    RecordedEvent, Replay, ReplayCursor, TaskId, Timestamp,
};

/// One operation a workflow body may ask for.
#[derive(Debug, Clone, PartialEq)]
enum Req {
    Random,
    Uuid,
    /// `utc_now()` with the wall clock at this many seconds since the epoch.
    Time(i64),
    /// Start a child of task `t{0}` with argument bytes `[1]`.
    Start(u8, u8),
    /// Observe the result of the most recently started child (success or failure).
    Result(bool),
    /// Read workflow data key `k{0}`.
    Data(u8),
    /// Set a timer this many milliseconds from now (`sleep`, or a wait's deadline).
    Timer(u16),
    /// The timer fired (`sleep` returned).
    Fired,
    /// Consume an event named `e{0}`.
    Event(u8),
    /// The race of the most recently started child with a timer: the child won (true) or the
    /// timer did (false).
    Race(bool),
    /// `patched("p{0}")`.
    Patch(u8),
}

/// The value an operation produced, comparable across runs.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Random(u64),
    Uuid(uuid::Uuid),
    Time(i128),
    Child(InvocationId, bool),
    Outcome(ChildOutcome),
    Data(Option<Vec<u8>>),
    Timer(Timestamp),
    Fired,
    Event(u64, Vec<u8>),
    Race(Option<ChildOutcome>),
    Patched(bool),
}

fn req() -> impl Strategy<Value = Req> {
    prop_oneof![
        Just(Req::Random),
        Just(Req::Uuid),
        (0i64..4_000_000_000).prop_map(Req::Time),
        (0u8..3, any::<u8>()).prop_map(|(t, a)| Req::Start(t, a)),
        any::<bool>().prop_map(Req::Result),
        (0u8..3).prop_map(Req::Data),
        any::<u16>().prop_map(Req::Timer),
        Just(Req::Fired),
        (0u8..3).prop_map(Req::Event),
        any::<bool>().prop_map(Req::Race),
        (0u8..3).prop_map(Req::Patch),
    ]
}

fn ending() -> impl Strategy<Value = Ending> {
    prop_oneof![
        Just(Ending::Returned),
        Just(Ending::Failed),
        Just(Ending::Panicked)
    ]
}

fn call_of(t: u8, a: u8) -> (TaskId, CallId) {
    let task = TaskId::new(format!("t{t}"));
    let call = CallId::of(&task, &[a]);
    (task, call)
}

/// Runs `reqs` against `cursor`; `clock_shift` moves the wall clock so replays see another time.
/// A `Result` before any `Start` is skipped (there is no child to observe).
fn run(
    cursor: &mut ReplayCursor,
    reqs: &[Req],
    clock_shift: i64,
) -> Result<Vec<Value>, NonDeterminism> {
    let mut out = Vec::new();
    let mut last_child = None;
    for r in reqs {
        let v = match r {
            Req::Random => Value::Random(cursor.random()?.to_bits()),
            Req::Uuid => Value::Uuid(cursor.uuid()?),
            Req::Time(secs) => {
                let clock = OffsetDateTime::from_unix_timestamp(secs + clock_shift).unwrap();
                Value::Time(cursor.utc_now(clock)?.unix_timestamp_nanos())
            }
            Req::Start(t, a) => {
                let (task, call) = call_of(*t, *a);
                let s = cursor.child_start(&task, call)?;
                last_child = Some(s.child);
                Value::Child(s.child, s.replayed)
            }
            Req::Result(ok) => {
                let Some(child) = last_child else { continue };
                let outcome = match cursor.child_result(child)? {
                    Replay::Recorded(o) => o,
                    Replay::Live => {
                        let fresh = if *ok {
                            ChildOutcome::Success(child.as_uuid().as_bytes().to_vec())
                        } else {
                            ChildOutcome::Failed(Failure::new(FailureKind::Task, "boom"))
                        };
                        cursor.record_child_result(child, fresh)?
                    }
                };
                Value::Outcome(outcome)
            }
            Req::Data(k) => {
                let key = format!("k{k}");
                let value = match cursor.data_get(&key)? {
                    Replay::Recorded(v) => v,
                    Replay::Live => {
                        // What the store holds now: depends on the clock shift, so a replay that
                        // re-read the store instead of the journal would see something else.
                        let fresh = (clock_shift == 0).then(|| vec![*k; 3]);
                        cursor.record_data_get(&key, fresh)?
                    }
                };
                Value::Data(value)
            }
            Req::Timer(ms) => {
                let clock = OffsetDateTime::from_unix_timestamp(1_000_000 + clock_shift).unwrap();
                let delay = std::time::Duration::from_millis(u64::from(*ms));
                Value::Timer(cursor.timer_after(clock, delay)?)
            }
            Req::Fired => {
                cursor.record_timer_fired()?;
                Value::Fired
            }
            Req::Event(k) => {
                let name = format!("e{k}");
                let event = match cursor.event(&name)? {
                    Replay::Recorded(e) => e,
                    Replay::Live => {
                        // What the store holds now: depends on the clock shift, like Data.
                        let fresh = RecordedEvent {
                            seq: u64::from(*k) + clock_shift.unsigned_abs(),
                            payload: if clock_shift == 0 {
                                vec![*k]
                            } else {
                                Vec::new()
                            },
                        };
                        cursor.record_event(&name, fresh)?
                    }
                };
                Value::Event(event.seq, event.payload)
            }
            Req::Race(child_wins) => {
                let Some(child) = last_child else { continue };
                let won = match cursor.child_result_or_timeout(child)? {
                    Replay::Recorded(o) => o,
                    Replay::Live if *child_wins => {
                        let fresh = ChildOutcome::Success(vec![1]);
                        Some(cursor.record_child_result(child, fresh)?)
                    }
                    Replay::Live => {
                        cursor.record_timer_fired()?;
                        None
                    }
                };
                Value::Race(won)
            }
            Req::Patch(k) => Value::Patched(cursor.patched(&format!("p{k}"))),
        };
        out.push(v);
    }
    Ok(out)
}

/// The requests that actually reach the cursor (drops leading `Result`s with no child).
fn effective(reqs: &[Req]) -> Vec<Req> {
    let mut started = false;
    reqs.iter()
        .filter(|r| {
            started |= matches!(r, Req::Start(..));
            !matches!(r, Req::Result(_) | Req::Race(_)) || started
        })
        .cloned()
        .collect()
}

/// A different request of another kind (or another child) for position-level divergence.
fn diverge(r: &Req) -> Vec<Req> {
    match r {
        Req::Random => vec![Req::Uuid, Req::Time(0), Req::Start(0, 0)],
        Req::Uuid => vec![Req::Random, Req::Time(0)],
        Req::Time(_) => vec![Req::Random, Req::Uuid],
        Req::Start(t, a) => vec![
            Req::Start(t.wrapping_add(1) % 3, *a),
            Req::Start(*t, a.wrapping_add(1)),
            Req::Random,
        ],
        Req::Result(_) => vec![Req::Random, Req::Uuid],
        Req::Data(k) => vec![Req::Data(k.wrapping_add(1) % 3), Req::Random],
        Req::Timer(_) => vec![Req::Random, Req::Fired, Req::Event(0)],
        Req::Fired => vec![Req::Random, Req::Timer(0), Req::Data(0)],
        Req::Event(k) => vec![Req::Event(k.wrapping_add(1) % 3), Req::Fired, Req::Random],
        Req::Race(_) => vec![Req::Random, Req::Uuid],
        // Another patch id, or another operation where a marker was recorded.
        Req::Patch(_) => vec![Req::Random, Req::Timer(1), Req::Event(1)],
    }
}

fn values_of_replay(original: &[Value]) -> Vec<Value> {
    // A replayed child start reports `replayed: true`; everything else is identical.
    original
        .iter()
        .map(|v| match v {
            Value::Child(c, _) => Value::Child(*c, true),
            other => other.clone(),
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// (a) Replaying a recorded journal yields identical values and records nothing new, even
    /// when the wall clock has moved.
    #[test]
    fn replay_is_exact_and_records_nothing(inv in any::<u128>(), reqs in proptest::collection::vec(req(), 0..40), shift in -1000i64..1000) {
        let reqs = effective(&reqs);
        let id = InvocationId::from_u128(inv);
        let mut first = ReplayCursor::new(id, Vec::new());
        let values = run(&mut first, &reqs, 0).unwrap();
        let journal = first.take_new_entries();
        prop_assert_eq!(journal.len(), reqs.len());
        for (i, e) in journal.iter().enumerate() {
            prop_assert_eq!(e.seq as usize, i);
        }

        let mut replay = ReplayCursor::new(id, journal.clone());
        let replayed = run(&mut replay, &reqs, shift).unwrap();
        prop_assert_eq!(replayed, values_of_replay(&values));
        prop_assert!(replay.take_new_entries().is_empty());
        prop_assert!(!replay.is_replaying());
    }

    /// A journal cut at any point (a crash mid-body) replays its prefix and records exactly the
    /// rest again, with the same positions.
    #[test]
    fn resumed_run_continues_the_journal(inv in any::<u128>(), reqs in proptest::collection::vec(req(), 1..30), cut in any::<prop::sample::Index>()) {
        let reqs = effective(&reqs);
        prop_assume!(!reqs.is_empty());
        let id = InvocationId::from_u128(inv);
        let mut first = ReplayCursor::new(id, Vec::new());
        let values = run(&mut first, &reqs, 0).unwrap();
        let journal = first.take_new_entries();
        let cut = cut.index(journal.len() + 1);

        let mut resumed = ReplayCursor::new(id, journal[..cut].to_vec());
        let again = run(&mut resumed, &reqs, 0).unwrap();
        let mut expect = values_of_replay(&values[..cut]);
        expect.extend_from_slice(&values[cut..]);
        prop_assert_eq!(again, expect);
        prop_assert_eq!(resumed.take_new_entries(), journal[cut..].to_vec());
    }

    /// (b) Changing the kind or the child at any recorded position is reported at exactly that
    /// position, naming what was recorded and what was asked.
    #[test]
    fn divergence_is_reported_at_its_position(inv in any::<u128>(), reqs in proptest::collection::vec(req(), 1..30), at in any::<prop::sample::Index>(), pick in any::<prop::sample::Index>()) {
        let reqs = effective(&reqs);
        prop_assume!(!reqs.is_empty());
        let id = InvocationId::from_u128(inv);
        let mut first = ReplayCursor::new(id, Vec::new());
        run(&mut first, &reqs, 0).unwrap();
        let journal = first.take_new_entries();

        let i = at.index(reqs.len());
        let options = diverge(&reqs[i]);
        let mut changed = reqs.clone();
        changed[i] = options[pick.index(options.len())].clone();
        // A changed child start must reach the cursor: keep the run from skipping it.
        let mut replay = ReplayCursor::new(id, journal.clone());
        let err = run(&mut replay, &changed, 0).unwrap_err();
        prop_assert_eq!(err.position as usize, i);
        prop_assert_eq!(err.invocation, id);
        prop_assert_eq!(&err.recorded, &journal[i].op.to_string());
        prop_assert!(!err.requested.is_empty());
        let msg = err.to_string();
        prop_assert!(msg.contains(&format!("position {i}")), "{}", msg);
    }

    /// (d) A replay of a completed run that ends (returns, fails, panics) after any strict
    /// prefix of its operations stops short: it is reported at exactly the first entry it
    /// skipped, naming that entry and how the body ended, with (the start of) what its error or
    /// panic said. The whole run ends cleanly.
    #[test]
    fn a_replay_that_ends_early_is_reported_at_the_first_skipped_entry(inv in any::<u128>(), reqs in proptest::collection::vec(req(), 0..30), cut in any::<prop::sample::Index>(), how in ending(), said in proptest::option::of(proptest::collection::vec(any::<char>(), 0..700))) {
        let said: Option<String> = said.map(|chars| chars.into_iter().collect());
        let reqs = effective(&reqs);
        let id = InvocationId::from_u128(inv);
        let mut first = ReplayCursor::new(id, Vec::new());
        run(&mut first, &reqs, 0).unwrap();
        prop_assert!(first.check_end(how, said.as_deref()).is_ok(), "a first run never stops short");
        let journal = first.take_new_entries();
        let k = cut.index(reqs.len() + 1);

        let mut replay = ReplayCursor::new(id, journal.clone());
        run(&mut replay, &reqs[..k], 0).unwrap();
        match replay.check_end(how, said.as_deref()) {
            Ok(()) => prop_assert_eq!(k, reqs.len(), "stopped short at {} undetected", k),
            Err(nd) => {
                prop_assert!(k < reqs.len());
                prop_assert_eq!(nd.position as usize, k);
                prop_assert_eq!(nd.invocation, id);
                prop_assert_eq!(&nd.recorded, &journal[k].op.to_string());
                prop_assert!(nd.requested.contains(&how.to_string()), "{}", nd.requested);
                if let Some(said) = &said {
                    let kept: String = said.chars().take_while({
                        let mut bytes = 0;
                        move |c| { bytes += c.len_utf8(); bytes <= wf_core::MAX_SAID_BYTES }
                    }).collect();
                    prop_assert!(nd.requested.contains(&kept), "{}", nd.requested);
                    prop_assert!(nd.requested.len() <= wf_core::MAX_SAID_BYTES + 64, "{}", nd.requested.len());
                }
            }
        }
    }

    /// (c) random() is in [0, 1); uuids are distinct within an invocation; utc_now() never
    /// decreases, even when the wall clock jumps backwards.
    #[test]
    fn primitives_keep_their_promises(inv in any::<u128>(), reqs in proptest::collection::vec(req(), 0..60)) {
        let id = InvocationId::from_u128(inv);
        let mut cursor = ReplayCursor::new(id, Vec::new());
        let values = run(&mut cursor, &effective(&reqs), 0).unwrap();
        let mut uuids = HashSet::new();
        let mut last_time = i128::MIN;
        for v in values {
            match v {
                Value::Random(bits) => {
                    let r = f64::from_bits(bits);
                    prop_assert!((0.0..1.0).contains(&r));
                }
                Value::Uuid(u) => prop_assert!(uuids.insert(u), "duplicate uuid"),
                Value::Child(c, _) => prop_assert!(uuids.insert(*c.as_uuid()), "child id reused"),
                Value::Time(t) => {
                    prop_assert!(t >= last_time, "time went back");
                    last_time = t;
                }
                Value::Timer(at) => {
                    // A timer is set from the journaled clock: never before a time seen earlier.
                    prop_assert!(at.as_nanos() >= last_time, "timer set in the past");
                }
                Value::Outcome(_)
                | Value::Data(_)
                | Value::Fired
                | Value::Event(..)
                | Value::Race(_)
                | Value::Patched(_) => {}
            }
        }
    }

    /// Versioning: a journal recorded by code without a patch replays under the patched code.
    /// Every `patched` call the new code inserts anywhere answers false (the recorded run took
    /// the old branch) without consuming an entry, nothing diverges and nothing is recorded;
    /// running the patched code live records its markers and answers true, and a replay of that
    /// new journal answers true again.
    #[test]
    fn patched_code_replays_journals_recorded_without_the_patch(inv in any::<u128>(), reqs in proptest::collection::vec(req(), 0..30), inserts in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..3), 1..5)) {
        let old: Vec<Req> = effective(&reqs).into_iter().filter(|r| !matches!(r, Req::Patch(_))).collect();
        let id = InvocationId::from_u128(inv);
        let mut first = ReplayCursor::new(id, Vec::new());
        let values = run(&mut first, &old, 0).unwrap();
        let journal = first.take_new_entries();

        let mut patched = old.clone();
        for (at, k) in &inserts {
            patched.insert(at.index(patched.len() + 1), Req::Patch(*k));
        }
        let mut replay = ReplayCursor::new(id, journal);
        let replayed = run(&mut replay, &patched, 0).unwrap();
        let (answers, rest): (Vec<Value>, Vec<Value>) =
            replayed.into_iter().partition(|v| matches!(v, Value::Patched(_)));
        // Patches after the last recorded entry run live: only those answer true.
        let live_patches = patched.iter().rev().take_while(|r| matches!(r, Req::Patch(_))).count();
        let recorded_patches = answers.len() - live_patches;
        prop_assert!(answers[..recorded_patches].iter().all(|v| *v == Value::Patched(false)), "{:?}", answers);
        if !old.is_empty() {
            prop_assert!(answers[recorded_patches..].iter().all(|v| *v == Value::Patched(true)));
        }
        prop_assert_eq!(rest, values_of_replay(&values));
        prop_assert_eq!(replay.take_new_entries().len(), live_patches.min(answers.len()));

        let mut new_run = ReplayCursor::new(id, Vec::new());
        let live = run(&mut new_run, &patched, 0).unwrap();
        prop_assert!(live.iter().filter(|v| matches!(v, Value::Patched(_))).all(|v| *v == Value::Patched(true)));
        let new_journal = new_run.take_new_entries();
        let mut again = ReplayCursor::new(id, new_journal);
        let replayed = run(&mut again, &patched, 0).unwrap();
        prop_assert_eq!(replayed, values_of_replay(&live));
        prop_assert!(again.take_new_entries().is_empty());
        prop_assert!(again.check_end(Ending::Returned, None).is_ok());
    }

    /// Two invocations never share deterministic values.
    #[test]
    fn invocations_do_not_share_values(a in any::<u128>(), b in any::<u128>()) {
        prop_assume!(a != b);
        let mut ca = ReplayCursor::new(InvocationId::from_u128(a), Vec::new());
        let mut cb = ReplayCursor::new(InvocationId::from_u128(b), Vec::new());
        prop_assert_ne!(ca.uuid().unwrap(), cb.uuid().unwrap());
        prop_assert_ne!(ca.random().unwrap().to_bits(), cb.random().unwrap().to_bits());
    }
}

/// A recorded race is never decided again: whichever of the child and the timer won is what
/// every replay answers, whatever the clock or the store say now.
#[test]
fn a_recorded_race_is_replayed_not_decided_again() {
    let id = InvocationId::from_u128(3);
    let (task, call) = call_of(0, 0);
    for child_won in [true, false] {
        let mut first = ReplayCursor::new(id, Vec::new());
        let child = first.child_start(&task, call).unwrap().child;
        let clock = OffsetDateTime::from_unix_timestamp(1_000).unwrap();
        let at = first
            .timer_after(clock, std::time::Duration::from_millis(1500))
            .unwrap();
        assert_eq!(at, Timestamp(1_001_500));
        assert_eq!(first.child_result_or_timeout(child).unwrap(), Replay::Live);
        if child_won {
            first
                .record_child_result(child, ChildOutcome::Success(vec![7]))
                .unwrap();
        } else {
            first.record_timer_fired().unwrap();
        }
        let journal = first.take_new_entries();

        let mut replay = ReplayCursor::new(id, journal);
        replay.child_start(&task, call).unwrap();
        let later = OffsetDateTime::from_unix_timestamp(9_000).unwrap();
        assert_eq!(
            replay
                .timer_after(later, std::time::Duration::from_secs(1))
                .unwrap(),
            at,
            "the recorded fire time, not a new one"
        );
        let expected = child_won.then(|| ChildOutcome::Success(vec![7]));
        assert_eq!(
            replay.child_result_or_timeout(child).unwrap(),
            Replay::Recorded(expected)
        );
        assert!(replay.take_new_entries().is_empty());
    }
}

/// A cancellation is told at the recorded position on every replay, and only there.
#[test]
fn a_recorded_cancellation_is_told_again_at_its_position() {
    let id = InvocationId::from_u128(4);
    let mut first = ReplayCursor::new(id, Vec::new());
    first.random().unwrap();
    assert_eq!(
        first.recorded_cancellation(),
        None,
        "nothing recorded: live"
    );
    first.record_cancellation("operator").unwrap();
    first.uuid().unwrap();
    let journal = first.take_new_entries();

    let mut replay = ReplayCursor::new(id, journal.clone());
    assert_eq!(
        replay.recorded_cancellation(),
        None,
        "a random() is recorded here"
    );
    replay.random().unwrap();
    assert_eq!(replay.recorded_cancellation().as_deref(), Some("operator"));
    assert_eq!(replay.recorded_cancellation(), None, "told once");
    replay.uuid().unwrap();
    assert!(replay.check_end(Ending::Returned, None).is_ok());

    // An operation asked where the cancellation was recorded diverges.
    let mut changed = ReplayCursor::new(id, journal);
    changed.random().unwrap();
    let nd = changed.random().unwrap_err();
    assert_eq!(nd.position, 1);
    assert!(nd.recorded.starts_with("cancellation"), "{nd}");
}

#[test]
fn replay_reads_the_journal_not_the_seed() {
    // A journal written by another seeding scheme still replays its own values.
    let id = InvocationId::from_u128(9);
    let forged = vec![wf_core::JournalEntry {
        seq: 0,
        op: wf_core::Op::Random(0.25f64.to_bits()),
    }];
    let mut c = ReplayCursor::new(id, forged);
    assert_eq!(c.random().unwrap(), 0.25);
}

#[test]
fn child_result_for_another_child_is_non_determinism() {
    let id = InvocationId::from_u128(1);
    let (task, call) = call_of(0, 0);
    let mut first = ReplayCursor::new(id, Vec::new());
    let a = first.child_start(&task, call).unwrap().child;
    first
        .record_child_result(a, ChildOutcome::Success(vec![1]))
        .unwrap();
    let journal = first.take_new_entries();

    let mut replay = ReplayCursor::new(id, journal);
    replay.child_start(&task, call).unwrap();
    let err = replay
        .child_result(InvocationId::from_u128(77))
        .unwrap_err();
    assert_eq!(err.position, 1);
}
