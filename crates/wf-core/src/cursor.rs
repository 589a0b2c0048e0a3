//! The replay cursor: answers each deterministic operation from the recorded journal while it
//! lasts, then generates, records and buffers new entries.
//!
//! It is a small state machine over one position counter:
//!
//! ```text
//!   position < recorded.len()  --(op of the recorded kind/child/key)-->  Recorded(value), position + 1
//!   position < recorded.len()  --(any other op)----------------------->  NonDeterminism at position
//!   position >= recorded.len() --(op)--------------------------------->  Live: generate or observe,
//!                                                                         record, position + 1
//!   end of the body, position < recorded.len() ---------------------->  NonDeterminism at position
//! ```
//!
//! Every operation goes through one step, [`ReplayCursor`]'s private `replay`: peek at the entry
//! at the position, check that it is the operation asked for, advance. Operations whose value the
//! cursor cannot make itself (a child's outcome, a data read) return [`Replay::Live`] past the
//! journal; the caller observes the value and records it with the matching `record_*` method.
//!
//! The buffered entries ([`ReplayCursor::take_new_entries`]) are what the runtime commits.

use std::fmt;

use std::time::Duration;

use crate::deterministic;
use crate::ids::{CallId, InvocationId, TaskId, Timestamp};
use crate::journal::{ChildOutcome, JournalEntry, Op, OpKind};

/// A replay asked for something other than what the journal recorded at that position, or ended
/// before asking for everything the journal recorded.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, thiserror::Error,
)]
#[error(
    "non-determinism in invocation {invocation} at journal position {position}: the journal recorded \
     {recorded}, but this run asked for {requested}; workflow bodies must issue the same operations in \
     the same order on every run (see docs/guide/workflows.md); finish or cancel in-flight workflows \
     before changing their code"
)]
pub struct NonDeterminism {
    /// The invocation being replayed.
    pub invocation: InvocationId,
    /// The journal position where the runs diverged.
    pub position: u32,
    /// What the journal holds there.
    pub recorded: String,
    /// What this run asked for (for a run that ended too early: "nothing more", and how it
    /// ended).
    pub requested: String,
}

/// What the journal answers for an operation whose value the cursor cannot make itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay<T> {
    /// The journal recorded this operation: here is its value; the cursor moved past it.
    Recorded(T),
    /// Past the recorded journal: the caller observes the value live and records it.
    Live,
}

/// The outcome of starting a child through the cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildStart {
    /// The child's invocation id (recorded, or freshly derived).
    pub child: InvocationId,
    /// True when the start was replayed from the journal (the child was already submitted).
    pub replayed: bool,
}

/// An event a `wait_event` consumed, as the journal holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    /// Its number among the events sent to the invocation (arrival order, from 0).
    pub seq: u64,
    /// Its payload.
    pub payload: Vec<u8>,
}

/// How a body ended, for [`ReplayCursor::check_end`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ending {
    /// It returned a value.
    Returned,
    /// It returned an error.
    Failed,
    /// It panicked.
    Panicked,
}

impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ending::Returned => "returned",
            Ending::Failed => "failed",
            Ending::Panicked => "panicked",
        })
    }
}

/// Replays one invocation's journal and records what comes after it.
#[derive(Debug, Clone)]
pub struct ReplayCursor {
    invocation: InvocationId,
    recorded: Vec<JournalEntry>,
    position: u32,
    new_entries: Vec<JournalEntry>,
    last_time: Option<i128>,
}

impl ReplayCursor {
    /// A cursor for `invocation` over its recorded journal (entries in sequence order).
    pub fn new(invocation: InvocationId, recorded: Vec<JournalEntry>) -> Self {
        Self {
            invocation,
            recorded,
            position: 0,
            new_entries: Vec::new(),
            last_time: None,
        }
    }

    /// The invocation this cursor belongs to.
    pub fn invocation(&self) -> InvocationId {
        self.invocation
    }

    /// The next journal position.
    pub fn position(&self) -> u32 {
        self.position
    }

    /// True while operations are answered from the recorded journal.
    pub fn is_replaying(&self) -> bool {
        (self.position as usize) < self.recorded.len()
    }

    /// How many entries the journal held when this run started.
    pub fn recorded_len(&self) -> usize {
        self.recorded.len()
    }

    /// The new entries recorded since the last call, in order; the caller commits them.
    pub fn take_new_entries(&mut self) -> Vec<JournalEntry> {
        std::mem::take(&mut self.new_entries)
    }

    /// The new entries recorded so far, without taking them.
    pub fn new_entries(&self) -> &[JournalEntry] {
        &self.new_entries
    }

    /// The one replay step: peek at the recorded entry at the position; if `matching` accepts
    /// it, advance and return its value; if it does not, that is non-determinism (described by
    /// `requested`); past the journal, [`Replay::Live`] without moving.
    fn replay<T>(
        &mut self,
        requested: impl FnOnce() -> String,
        matching: impl FnOnce(&Op) -> Option<T>,
    ) -> Result<Replay<T>, NonDeterminism> {
        let Some(entry) = self.recorded.get(self.position as usize) else {
            return Ok(Replay::Live);
        };
        match matching(&entry.op) {
            Some(value) => {
                self.position += 1;
                Ok(Replay::Recorded(value))
            }
            None => Err(NonDeterminism {
                invocation: self.invocation,
                position: self.position,
                recorded: entry.op.to_string(),
                requested: requested(),
            }),
        }
    }

    /// Appends a live entry at the position and advances.
    fn record(&mut self, op: Op) {
        self.new_entries.push(JournalEntry {
            seq: self.position,
            op,
        });
        self.position += 1;
    }

    /// `random()`: a value in [0, 1), recorded.
    ///
    /// # Errors
    ///
    /// [`NonDeterminism`] when the journal recorded another operation at this position.
    pub fn random(&mut self) -> Result<f64, NonDeterminism> {
        let replayed = self.replay(
            || OpKind::Random.to_string(),
            |op| match op {
                Op::Random(bits) => Some(f64::from_bits(*bits)),
                _ => None,
            },
        )?;
        Ok(match replayed {
            Replay::Recorded(value) => value,
            Replay::Live => {
                let value = deterministic::random_at(self.invocation, self.position);
                self.record(Op::Random(value.to_bits()));
                value
            }
        })
    }

    /// `uuid()`: a version-4 UUID, recorded.
    ///
    /// # Errors
    ///
    /// [`NonDeterminism`] when the journal recorded another operation at this position.
    pub fn uuid(&mut self) -> Result<uuid::Uuid, NonDeterminism> {
        let replayed = self.replay(
            || OpKind::Uuid.to_string(),
            |op| match op {
                Op::Uuid(u) => Some(*u),
                _ => None,
            },
        )?;
        Ok(match replayed {
            Replay::Recorded(value) => value,
            Replay::Live => {
                let value = deterministic::uuid_at(self.invocation, self.position);
                self.record(Op::Uuid(value));
                value
            }
        })
    }

    /// `utc_now()`: `clock` (the real time, read by the caller) the first time, the recorded value
    /// on replay. Never earlier than any time this invocation saw before.
    ///
    /// # Errors
    ///
    /// [`NonDeterminism`] when the journal recorded another operation at this position.
    pub fn utc_now(
        &mut self,
        clock: time::OffsetDateTime,
    ) -> Result<time::OffsetDateTime, NonDeterminism> {
        let replayed = self.replay(
            || OpKind::Time.to_string(),
            |op| match op {
                Op::Time(ns) => Some(*ns),
                _ => None,
            },
        )?;
        let nanos = match replayed {
            Replay::Recorded(ns) => ns,
            Replay::Live => {
                let ns = clock
                    .unix_timestamp_nanos()
                    .max(self.last_time.unwrap_or(i128::MIN));
                self.record(Op::Time(ns));
                ns
            }
        };
        self.last_time = Some(self.last_time.map_or(nanos, |t| t.max(nanos)));
        // Recorded values came from OffsetDateTime, so they are in range; clamp defensively.
        Ok(time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH))
    }

    /// Starting a child of `task` with call id `call`: the recorded child on replay (which must be
    /// the same task and call), or a new deterministic child id.
    ///
    /// # Errors
    ///
    /// [`NonDeterminism`] when the journal recorded another operation, or a child of another
    /// task or call, at this position.
    pub fn child_start(
        &mut self,
        task: &TaskId,
        call: CallId,
    ) -> Result<ChildStart, NonDeterminism> {
        let replayed = self.replay(
            || format!("child start of task '{task}' (call {call})"),
            |op| match op {
                Op::ChildStart {
                    task: t,
                    call: c,
                    child,
                } if t == task && *c == call => Some(*child),
                _ => None,
            },
        )?;
        Ok(match replayed {
            Replay::Recorded(child) => ChildStart {
                child,
                replayed: true,
            },
            Replay::Live => {
                let child = deterministic::child_id_at(self.invocation, self.position);
                self.record(Op::ChildStart {
                    task: task.clone(),
                    call,
                    child,
                });
                ChildStart {
                    child,
                    replayed: false,
                }
            }
        })
    }

    /// The recorded outcome of `child` at this position, or [`Replay::Live`] (and no move) past
    /// the journal, where the caller looks the child up and, once it is final, calls
    /// [`ReplayCursor::record_child_result`].
    ///
    /// # Errors
    ///
    /// [`NonDeterminism`] when the journal recorded another operation, or another child's
    /// result, at this position.
    pub fn child_result(
        &mut self,
        child: InvocationId,
    ) -> Result<Replay<ChildOutcome>, NonDeterminism> {
        self.replay(
            || format!("child result of {child}"),
            |op| match op {
                Op::ChildResult { child: c, outcome } if *c == child => Some(outcome.clone()),
                _ => None,
            },
        )
    }

    /// Records the final outcome of `child`, observed past the recorded journal.
    ///
    /// While still replaying this behaves as [`ReplayCursor::child_result`] and returns the
    /// recorded outcome, so the journal always wins over a fresh observation.
    ///
    /// # Errors
    ///
    /// As [`ReplayCursor::child_result`].
    pub fn record_child_result(
        &mut self,
        child: InvocationId,
        outcome: ChildOutcome,
    ) -> Result<ChildOutcome, NonDeterminism> {
        match self.child_result(child)? {
            Replay::Recorded(recorded) => Ok(recorded),
            Replay::Live => {
                self.record(Op::ChildResult {
                    child,
                    outcome: outcome.clone(),
                });
                Ok(outcome)
            }
        }
    }

    /// The recorded value of a `get_data(key)` at this position, or [`Replay::Live`] (and no
    /// move) past the journal, where the caller reads the store and calls
    /// [`ReplayCursor::record_data_get`].
    ///
    /// # Errors
    ///
    /// [`NonDeterminism`] when the journal recorded another operation, or a read of another
    /// key, at this position.
    pub fn data_get(&mut self, key: &str) -> Result<Replay<Option<Vec<u8>>>, NonDeterminism> {
        self.replay(
            || format!("get_data(\"{key}\")"),
            |op| match op {
                Op::DataGet { key: k, value } if k == key => Some(value.clone()),
                _ => None,
            },
        )
    }

    /// Records the value a `get_data(key)` found past the recorded journal.
    ///
    /// While still replaying this behaves as [`ReplayCursor::data_get`] and returns the recorded
    /// value, so the journal always wins over a fresh observation.
    ///
    /// # Errors
    ///
    /// As [`ReplayCursor::data_get`].
    pub fn record_data_get(
        &mut self,
        key: &str,
        value: Option<Vec<u8>>,
    ) -> Result<Option<Vec<u8>>, NonDeterminism> {
        match self.data_get(key)? {
            Replay::Recorded(recorded) => Ok(recorded),
            Replay::Live => {
                self.record(Op::DataGet {
                    key: key.to_owned(),
                    value: value.clone(),
                });
                Ok(value)
            }
        }
    }

    /// A timer firing `delay` after now: the recorded fire time on replay; past the journal,
    /// `delay` after the later of `clock` (the real time, read by the caller) and every time this
    /// invocation saw before, rounded up to the millisecond, and recorded. So a `sleep` is never
    /// shorter than asked and every replay waits for the same time.
    ///
    /// # Errors
    ///
    /// [`NonDeterminism`] when the journal recorded another operation at this position.
    pub fn timer_after(
        &mut self,
        clock: time::OffsetDateTime,
        delay: Duration,
    ) -> Result<Timestamp, NonDeterminism> {
        let base = clock
            .unix_timestamp_nanos()
            .max(self.last_time.unwrap_or(i128::MIN));
        let mut live = false;
        let at = self.timer(|| {
            live = true;
            let nanos = i128::try_from(delay.as_nanos()).unwrap_or(i128::MAX);
            Timestamp::ceil_from_nanos(base.saturating_add(nanos))
        })?;
        if live {
            // The timer was set at `base`: a later `utc_now()` is never earlier.
            self.last_time = Some(base);
        }
        Ok(at)
    }

    /// A timer firing at `at`: the recorded fire time on replay (the journal wins), `at`
    /// recorded past the journal.
    ///
    /// # Errors
    ///
    /// [`NonDeterminism`] when the journal recorded another operation at this position.
    pub fn timer_at(&mut self, at: Timestamp) -> Result<Timestamp, NonDeterminism> {
        self.timer(|| at)
    }

    fn timer(&mut self, live: impl FnOnce() -> Timestamp) -> Result<Timestamp, NonDeterminism> {
        let replayed = self.replay(
            || OpKind::Timer.to_string(),
            |op| match op {
                Op::Timer { at } => Some(*at),
                _ => None,
            },
        )?;
        Ok(match replayed {
            Replay::Recorded(at) => at,
            Replay::Live => {
                let at = live();
                self.record(Op::Timer { at });
                at
            }
        })
    }

    /// Whether the timer set just before fired, as recorded: `Recorded(())` when the journal
    /// holds [`Op::TimerFired`] here, [`Replay::Live`] past the journal (the caller compares the
    /// clock with the fire time and calls [`ReplayCursor::record_timer_fired`] once it passed).
    ///
    /// # Errors
    ///
    /// [`NonDeterminism`] when the journal recorded another operation at this position.
    pub fn timer_fired(&mut self) -> Result<Replay<()>, NonDeterminism> {
        self.replay(
            || OpKind::TimerFired.to_string(),
            |op| matches!(op, Op::TimerFired).then_some(()),
        )
    }

    /// Records that the timer set just before fired (a sleep ended, or a wait timed out). While
    /// still replaying this behaves as [`ReplayCursor::timer_fired`].
    ///
    /// # Errors
    ///
    /// As [`ReplayCursor::timer_fired`].
    pub fn record_timer_fired(&mut self) -> Result<(), NonDeterminism> {
        if let Replay::Live = self.timer_fired()? {
            self.record(Op::TimerFired);
        }
        Ok(())
    }

    /// The recorded end of a race between `child` finishing and the timer set just before:
    /// `Recorded(Some(outcome))` when the child's result was recorded here, `Recorded(None)`
    /// when the timer fired first, [`Replay::Live`] past the journal.
    ///
    /// # Errors
    ///
    /// [`NonDeterminism`] when the journal recorded anything else at this position.
    pub fn child_result_or_timeout(
        &mut self,
        child: InvocationId,
    ) -> Result<Replay<Option<ChildOutcome>>, NonDeterminism> {
        self.replay(
            || format!("child result of {child}, or timer fired"),
            |op| match op {
                Op::ChildResult { child: c, outcome } if *c == child => Some(Some(outcome.clone())),
                Op::TimerFired => Some(None),
                _ => None,
            },
        )
    }

    /// The event named `name` that `wait_event` consumed at this position, or [`Replay::Live`]
    /// past the journal, where the caller looks for one and records it with
    /// [`ReplayCursor::record_event`].
    ///
    /// # Errors
    ///
    /// [`NonDeterminism`] when the journal recorded another operation, or an event of another
    /// name, at this position.
    pub fn event(&mut self, name: &str) -> Result<Replay<RecordedEvent>, NonDeterminism> {
        self.replay(
            || format!("event \"{name}\""),
            |op| match op {
                Op::Event {
                    name: n,
                    seq,
                    payload,
                } if n == name => Some(RecordedEvent {
                    seq: *seq,
                    payload: payload.clone(),
                }),
                _ => None,
            },
        )
    }

    /// The recorded end of a race between an event named `name` and the timer set just before:
    /// `Recorded(Some(event))`, `Recorded(None)` when the timer fired first, or
    /// [`Replay::Live`] past the journal.
    ///
    /// # Errors
    ///
    /// [`NonDeterminism`] when the journal recorded anything else at this position.
    pub fn event_or_timeout(
        &mut self,
        name: &str,
    ) -> Result<Replay<Option<RecordedEvent>>, NonDeterminism> {
        self.replay(
            || format!("event \"{name}\", or timer fired"),
            |op| match op {
                Op::Event {
                    name: n,
                    seq,
                    payload,
                } if n == name => Some(Some(RecordedEvent {
                    seq: *seq,
                    payload: payload.clone(),
                })),
                Op::TimerFired => Some(None),
                _ => None,
            },
        )
    }

    /// Records the event named `name` that a `wait_event` consumed past the recorded journal.
    /// While still replaying this returns the recorded event, so the journal always wins.
    ///
    /// # Errors
    ///
    /// As [`ReplayCursor::event`].
    pub fn record_event(
        &mut self,
        name: &str,
        event: RecordedEvent,
    ) -> Result<RecordedEvent, NonDeterminism> {
        match self.event(name)? {
            Replay::Recorded(recorded) => Ok(recorded),
            Replay::Live => {
                self.record(Op::Event {
                    name: name.to_owned(),
                    seq: event.seq,
                    payload: event.payload.clone(),
                });
                Ok(event)
            }
        }
    }

    /// `patched(id)`: whether this execution takes the new code's branch of change `id`.
    ///
    /// - Past the recorded journal (new code running live): records a marker and returns true.
    /// - Replaying, at a recorded marker of `id`: moves past it and returns true (the recorded run
    ///   took the new branch).
    /// - Replaying anything else: returns false **without moving**: the recorded run was made
    ///   without the patch, so it took the old branch, whose entries follow.
    ///
    /// Never a divergence by itself.
    pub fn patched(&mut self, id: &str) -> bool {
        match self.recorded.get(self.position as usize) {
            None => {
                self.record(Op::Patch { id: id.to_owned() });
                true
            }
            Some(JournalEntry {
                op: Op::Patch { id: recorded },
                ..
            }) if recorded == id => {
                self.position += 1;
                true
            }
            Some(_) => false,
        }
    }

    /// If the journal recorded, at this position, that the body was told of its cancellation,
    /// moves past the entry and returns its reason; otherwise (another entry, or past the
    /// journal) changes nothing and returns `None`.
    pub fn recorded_cancellation(&mut self) -> Option<String> {
        match self.recorded.get(self.position as usize) {
            Some(JournalEntry {
                op: Op::Cancelled { reason },
                ..
            }) => {
                let reason = reason.clone();
                self.position += 1;
                Some(reason)
            }
            _ => None,
        }
    }

    /// Records, past the journal, that the body is told here of its cancellation.
    ///
    /// # Errors
    ///
    /// [`NonDeterminism`] when called while the journal still has entries to replay (the
    /// cancellation was not recorded here).
    pub fn record_cancellation(&mut self, reason: &str) -> Result<(), NonDeterminism> {
        let replayed = self.replay(
            || OpKind::Cancelled.to_string(),
            |op| matches!(op, Op::Cancelled { .. }).then_some(()),
        )?;
        if let Replay::Live = replayed {
            self.record(Op::Cancelled {
                reason: reason.to_owned(),
            });
        }
        Ok(())
    }

    /// Checks that a body which *ended* (returned, failed or panicked) asked for every recorded
    /// entry. A body that ends before the journal does diverges too, at the first entry it
    /// skipped: changed code must not skip a recorded step (and orphan a recorded child). An
    /// execution cut short by a suspension has not ended: do not call this for it.
    ///
    /// `said` is what the body's error or panic said, if it failed or panicked: a body that
    /// stops short often does so *because* of that error (a bug hit on replay, a refused
    /// handle), so the divergence keeps its first [`MAX_SAID_BYTES`] bytes.
    ///
    /// # Errors
    ///
    /// [`NonDeterminism`] at the first unconsumed position, with "nothing more", `how` and
    /// `said` as the requested side.
    pub fn check_end(&self, how: Ending, said: Option<&str>) -> Result<(), NonDeterminism> {
        let Some(entry) = self.recorded.get(self.position as usize) else {
            return Ok(());
        };
        let requested = match said {
            None => format!("nothing more (the body {how})"),
            Some(said) => format!("nothing more (the body {how}: {})", shortened(said)),
        };
        Err(NonDeterminism {
            invocation: self.invocation,
            position: self.position,
            recorded: entry.op.to_string(),
            requested,
        })
    }
}

/// How much of a body's error or panic text a stop-short [`NonDeterminism`] keeps.
pub const MAX_SAID_BYTES: usize = 512;

/// `text`, cut to at most [`MAX_SAID_BYTES`] bytes on a character boundary, with "…" when cut.
fn shortened(text: &str) -> String {
    if text.len() <= MAX_SAID_BYTES {
        return text.to_owned();
    }
    let mut end = MAX_SAID_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}
