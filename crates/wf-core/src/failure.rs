//! The stored form of an invocation's error.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::cursor::NonDeterminism;

/// Why an invocation (or one attempt of it) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FailureKind {
    /// The task body returned an error.
    Task,
    /// The task body panicked.
    Panic,
    /// A replay asked for different operations than the journal recorded.
    NonDeterminism,
    /// Arguments or a result could not be encoded or decoded.
    Codec,
    /// No task with this name is registered in the worker's app.
    UnknownTask,
    /// Cancelled by an operator.
    Cancelled,
    /// A child's failure, passed on by its parent.
    Child,
    /// The workers running it vanished (crashed, were killed, or stalled past their lease) more
    /// times in a row than the task allows: failed to stop a crash loop.
    WorkerLost,
    /// The store failed while the body ran (the attempt is run again later).
    Store,
    /// The runtime found one of its own rules broken (a bug in wf); the message says which.
    Internal,
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailureKind::Task => "task error",
            FailureKind::Panic => "panic",
            FailureKind::NonDeterminism => "non-determinism",
            FailureKind::Codec => "codec error",
            FailureKind::UnknownTask => "unknown task",
            FailureKind::Cancelled => "cancelled",
            FailureKind::Child => "child failed",
            FailureKind::WorkerLost => "worker lost",
            FailureKind::Store => "store error",
            FailureKind::Internal => "internal error",
        })
    }
}

/// An error as stored with an invocation and passed to its caller.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Failure {
    /// What kind of failure.
    pub kind: FailureKind,
    /// The error's message.
    pub message: String,
    /// For kind [`FailureKind::NonDeterminism`]: where the replay diverged, what the journal
    /// recorded and what was asked.
    pub non_determinism: Option<Box<NonDeterminism>>,
}

impl Failure {
    /// A failure of the given kind.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            non_determinism: None,
        }
    }

    /// The failure of an invocation whose replay diverged from its journal.
    pub fn non_determinism(nd: NonDeterminism) -> Self {
        Self {
            kind: FailureKind::NonDeterminism,
            message: nd.to_string(),
            non_determinism: Some(Box::new(nd)),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for Failure {}
