//! The journal: one ordered list of recorded operations per invocation.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::failure::Failure;
use crate::ids::{CallId, InvocationId, TaskId};

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
        }
    }
}
