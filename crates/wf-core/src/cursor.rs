//! The replay cursor: answers each deterministic operation from the recorded journal while it
//! lasts, then generates, records and buffers new entries.
//!
//! It is a small state machine over one position counter:
//!
//! ```text
//!   position < recorded.len()  --(op of the recorded kind/child)-->  return recorded, position + 1
//!   position < recorded.len()  --(any other op)------------------->  NonDeterminism at position
//!   position >= recorded.len() --(op)----------------------------->  generate, buffer, position + 1
//! ```
//!
//! The buffered entries ([`ReplayCursor::take_new_entries`]) are what the runtime commits.

use crate::deterministic;
use crate::ids::{CallId, InvocationId, TaskId};
use crate::journal::{ChildOutcome, JournalEntry, Op, OpKind};

/// A replay asked for something other than what the journal recorded at that position.
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
    /// What this run asked for.
    pub requested: String,
}

/// The outcome of starting a child through the cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildStart {
    /// The child's invocation id (recorded, or freshly derived).
    pub child: InvocationId,
    /// True when the start was replayed from the journal (the child was already submitted).
    pub replayed: bool,
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

    fn mismatch(&self, recorded: &Op, requested: String) -> NonDeterminism {
        NonDeterminism {
            invocation: self.invocation,
            position: self.position,
            recorded: recorded.to_string(),
            requested,
        }
    }

    /// The recorded op at the position if it has `kind`; `None` past the recorded journal.
    fn replay(&mut self, kind: OpKind) -> Result<Option<Op>, NonDeterminism> {
        let Some(entry) = self.recorded.get(self.position as usize) else {
            return Ok(None);
        };
        if entry.op.kind() != kind {
            return Err(self.mismatch(&entry.op, kind.to_string()));
        }
        let op = entry.op.clone();
        self.position += 1;
        Ok(Some(op))
    }

    fn record(&mut self, op: Op) {
        self.new_entries.push(JournalEntry {
            seq: self.position,
            op,
        });
        self.position += 1;
    }

    /// `random()`: a value in [0, 1), recorded.
    pub fn random(&mut self) -> Result<f64, NonDeterminism> {
        if let Some(Op::Random(bits)) = self.replay(OpKind::Random)? {
            return Ok(f64::from_bits(bits));
        }
        let value = deterministic::random_at(self.invocation, self.position);
        self.record(Op::Random(value.to_bits()));
        Ok(value)
    }

    /// `uuid()`: a version-4 UUID, recorded.
    pub fn uuid(&mut self) -> Result<uuid::Uuid, NonDeterminism> {
        if let Some(Op::Uuid(u)) = self.replay(OpKind::Uuid)? {
            return Ok(u);
        }
        let value = deterministic::uuid_at(self.invocation, self.position);
        self.record(Op::Uuid(value));
        Ok(value)
    }

    /// `utc_now()`: `clock` (the real time, read by the caller) the first time, the recorded value
    /// on replay. Never earlier than any time this invocation saw before.
    pub fn utc_now(
        &mut self,
        clock: time::OffsetDateTime,
    ) -> Result<time::OffsetDateTime, NonDeterminism> {
        let nanos = match self.replay(OpKind::Time)? {
            Some(Op::Time(ns)) => ns,
            _ => {
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
    pub fn child_start(
        &mut self,
        task: &TaskId,
        call: CallId,
    ) -> Result<ChildStart, NonDeterminism> {
        let requested = || format!("child start of task '{task}' (call {call})");
        if let Some(entry) = self.recorded.get(self.position as usize) {
            return match &entry.op {
                Op::ChildStart {
                    task: t,
                    call: c,
                    child,
                } if t == task && *c == call => {
                    let child = *child;
                    self.position += 1;
                    Ok(ChildStart {
                        child,
                        replayed: true,
                    })
                }
                other => Err(self.mismatch(other, requested())),
            };
        }
        let child = deterministic::child_id_at(self.invocation, self.position);
        self.record(Op::ChildStart {
            task: task.clone(),
            call,
            child,
        });
        Ok(ChildStart {
            child,
            replayed: false,
        })
    }

    /// The recorded outcome of `child` if the journal holds one at this position; `None` (and no
    /// move) past the recorded journal, where the caller looks the child up and, once it is final,
    /// calls [`ReplayCursor::record_child_result`].
    pub fn replay_child_result(
        &mut self,
        child: InvocationId,
    ) -> Result<Option<ChildOutcome>, NonDeterminism> {
        let Some(entry) = self.recorded.get(self.position as usize) else {
            return Ok(None);
        };
        match &entry.op {
            Op::ChildResult { child: c, outcome } if *c == child => {
                let outcome = outcome.clone();
                self.position += 1;
                Ok(Some(outcome))
            }
            other => Err(self.mismatch(other, format!("child result of {child}"))),
        }
    }

    /// Records the final outcome of `child`, observed past the recorded journal.
    ///
    /// While still replaying this behaves as [`ReplayCursor::replay_child_result`] and returns the
    /// recorded outcome, so the journal always wins over a fresh observation.
    pub fn record_child_result(
        &mut self,
        child: InvocationId,
        outcome: ChildOutcome,
    ) -> Result<ChildOutcome, NonDeterminism> {
        if let Some(recorded) = self.replay_child_result(child)? {
            return Ok(recorded);
        }
        self.record(Op::ChildResult {
            child,
            outcome: outcome.clone(),
        });
        Ok(outcome)
    }

    /// The recorded value of a `get_data(key)` if the journal holds one at this position;
    /// `None` (and no move) past the recorded journal, where the caller reads the store and
    /// calls [`ReplayCursor::record_data_get`]. A read of another key is non-determinism.
    pub fn replay_data_get(
        &mut self,
        key: &str,
    ) -> Result<Option<Option<Vec<u8>>>, NonDeterminism> {
        let Some(entry) = self.recorded.get(self.position as usize) else {
            return Ok(None);
        };
        match &entry.op {
            Op::DataGet { key: k, value } if k == key => {
                let value = value.clone();
                self.position += 1;
                Ok(Some(value))
            }
            other => Err(self.mismatch(other, format!("get_data(\"{key}\")"))),
        }
    }

    /// Records the value a `get_data(key)` found past the recorded journal.
    pub fn record_data_get(&mut self, key: &str, value: Option<Vec<u8>>) {
        self.record(Op::DataGet {
            key: key.to_owned(),
            value,
        });
    }
}
