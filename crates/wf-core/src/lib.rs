//! # wf-core
//!
//! The pure heart of `wf`: everything that decides *what* a durable workflow means, with no I/O
//! and no threads. Storage backends (`wf-store`) and the runtime (`wf-runtime`) build on it.
//!
//! | module | owns |
//! |---|---|
//! | [`ids`] | [`TaskId`], [`InvocationId`], [`CallId`], [`WorkerId`], [`Timestamp`] |
//! | [`identity`] | [`WorkflowIdentity`] and how a new invocation's identity derives from its caller |
//! | [`access`] | who may read and who may write a workflow's data |
//! | [`status`] | [`Status`] and the one declarative transition table every backend applies |
//! | [`deterministic`] | the seeded PCG draws behind `random()` and `uuid()` |
//! | [`journal`] | the replay log: [`JournalEntry`] and [`Op`] |
//! | [`cursor`] | [`ReplayCursor`], the state machine that answers operations from the journal, and [`NonDeterminism`] |
//! | [`codec`] | versioned, bounded binary encoding of every stored value |
//! | [`failure`] | [`Failure`], the stored form of an invocation's error |
//!
//! ```
//! use wf_core::{InvocationId, ReplayCursor};
//!
//! let id = InvocationId::from_u128(7);
//! let mut first = ReplayCursor::new(id, Vec::new());
//! let r = first.random().unwrap();
//! let recorded = first.take_new_entries();
//!
//! // A re-run of the same invocation replays its journal and records nothing new.
//! let mut replay = ReplayCursor::new(id, recorded);
//! assert_eq!(replay.random().unwrap(), r);
//! assert!(replay.take_new_entries().is_empty());
//! ```

/// The `time` crate, as used by `utc_now()`.
pub use time;
/// The `uuid` crate, as used by `uuid()` and invocation ids.
pub use uuid;

pub mod access;
pub mod codec;
pub mod cursor;
pub mod deterministic;
pub mod failure;
pub mod identity;
pub mod ids;
pub mod journal;
pub mod status;

pub use access::{WorkflowAccessError, check_read, check_write};
pub use codec::{CodecError, FORMAT_VERSION, decode, decode_limit, encode};
pub use cursor::{
    ChildStart, Ending, MAX_SAID_BYTES, NonDeterminism, RecordedEvent, Replay, ReplayCursor,
};
pub use failure::{Failure, FailureKind};
pub use identity::WorkflowIdentity;
pub use ids::{CallId, IdHasher, IdHashing, InvocationId, TaskId, Timestamp, WorkerId};
pub use journal::{ChildOutcome, JournalEntry, Op, OpKind};
pub use status::{Status, TRANSITIONS, Transition, TransitionError};
