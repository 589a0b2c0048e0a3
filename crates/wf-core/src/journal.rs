//! The journal: one ordered list of recorded operations per invocation.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::failure::Failure;
use crate::ids::{CallId, InvocationId, TaskId, Timestamp};

/// One recorded operation at position `seq` of its invocation's journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// Position in the invocation's single sequence, from 0.
    pub seq: u32,
    /// What was recorded.
    pub op: Op,
}

/// A recorded deterministic operation and its value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// `random()`, stored as the `f64`'s bits so equality is exact.
    Random(u64),
    /// `uuid()`.
    Uuid(uuid::Uuid),
    /// `utc_now()`, as nanoseconds since the Unix epoch.
    Time(i128),
    /// A child invocation was started.
    ChildStart {
        /// The child's task.
        task: TaskId,
        /// The child's call id (task + arguments).
        call: CallId,
        /// The child's invocation id.
        child: InvocationId,
    },
    /// A workflow data read (`get_data`), so a replay sees what the first run saw.
    DataGet {
        /// The key read.
        key: String,
        /// The encoded value found, if any.
        value: Option<Vec<u8>>,
    },
    /// A child's final outcome was observed.
    ChildResult {
        /// The child.
        child: InvocationId,
        /// Its outcome.
        outcome: ChildOutcome,
    },
    // New variants go last: journals (and store logs) written before a variant existed still
    // decode.
    /// A timer was set, by `sleep`/`sleep_until` or by a wait with a deadline: the wall-clock
    /// time (milliseconds since the epoch) at which it fires. Recorded when first reached, from
    /// the journaled clock, so every replay waits for the same time.
    Timer {
        /// When it fires.
        at: Timestamp,
    },
    /// The timer set just before fired first: the sleep is over, or the wait timed out (a
    /// recorded race: a replay never decides it again).
    TimerFired,
    /// An external event was consumed by `wait_event`: the store marked it consumed in the
    /// same commit that recorded this entry.
    Event {
        /// The event's name.
        name: String,
        /// Its number among the events sent to this invocation (arrival order, from 0).
        seq: u64,
        /// Its payload (JSON).
        payload: Vec<u8>,
    },
    /// A version marker: `patched(id)` (or `deprecate_patch(id)`) ran past the recorded journal,
    /// so this execution took the new code's branch.
    Patch {
        /// The change id.
        id: String,
    },
    /// The body was told here that its cancellation was requested: the operation at this
    /// position returned `WfError::Cancelled`, and every replay returns it there again.
    Cancelled {
        /// Why it was cancelled.
        reason: String,
    },
}

/// The final outcome of a child, as its parent saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChildOutcome {
    /// The child's encoded result.
    Success(Vec<u8>),
    /// The child's failure.
    Failed(Failure),
}

/// The kind of an [`Op`], without its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpKind {
    /// `random()`.
    Random,
    /// `uuid()`.
    Uuid,
    /// `utc_now()`.
    Time,
    /// Starting a child.
    ChildStart,
    /// Observing a child's outcome.
    ChildResult,
    /// Reading workflow data.
    DataGet,
    /// Setting a timer.
    Timer,
    /// A timer firing first.
    TimerFired,
    /// Consuming an external event.
    Event,
    /// A version marker.
    Patch,
    /// Being told of a cancellation.
    Cancelled,
}

impl Op {
    /// The kind of this operation.
    pub fn kind(&self) -> OpKind {
        match self {
            Op::Random(_) => OpKind::Random,
            Op::Uuid(_) => OpKind::Uuid,
            Op::Time(_) => OpKind::Time,
            Op::ChildStart { .. } => OpKind::ChildStart,
            Op::ChildResult { .. } => OpKind::ChildResult,
            Op::DataGet { .. } => OpKind::DataGet,
            Op::Timer { .. } => OpKind::Timer,
            Op::TimerFired => OpKind::TimerFired,
            Op::Event { .. } => OpKind::Event,
            Op::Patch { .. } => OpKind::Patch,
            Op::Cancelled { .. } => OpKind::Cancelled,
        }
    }
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OpKind::Random => "random()",
            OpKind::Uuid => "uuid()",
            OpKind::Time => "utc_now()",
            OpKind::ChildStart => "child start",
            OpKind::ChildResult => "child result",
            OpKind::DataGet => "get_data()",
            OpKind::Timer => "timer",
            OpKind::TimerFired => "timer fired",
            OpKind::Event => "event",
            OpKind::Patch => "patch marker",
            OpKind::Cancelled => "cancellation",
        })
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Random(bits) => write!(f, "random() = {}", f64::from_bits(*bits)),
            Op::Uuid(u) => write!(f, "uuid() = {u}"),
            Op::Time(ns) => write!(f, "utc_now() = {ns}ns since epoch"),
            Op::ChildStart { task, call, child } => {
                write!(f, "child start of task '{task}' (call {call}) as {child}")
            }
            Op::DataGet { key, value } => match value {
                Some(v) => write!(f, "get_data(\"{key}\") = {} bytes", v.len()),
                None => write!(f, "get_data(\"{key}\") = none"),
            },
            Op::ChildResult { child, outcome } => match outcome {
                ChildOutcome::Success(bytes) => {
                    write!(
                        f,
                        "child result of {child}: success ({} bytes)",
                        bytes.len()
                    )
                }
                ChildOutcome::Failed(e) => write!(f, "child result of {child}: failed ({e})"),
            },
            Op::Timer { at } => write!(f, "timer until {} ms since epoch", at.0),
            Op::TimerFired => f.write_str("timer fired"),
            Op::Event { name, seq, payload } => {
                write!(f, "event \"{name}\" (#{seq}, {} bytes)", payload.len())
            }
            Op::Patch { id } => write!(f, "patch marker \"{id}\""),
            Op::Cancelled { reason } => write!(f, "cancellation ({reason})"),
        }
    }
}
