//! # wf-store
//!
//! The storage contract of `wf`, split by caller ([`StoreRead`] for readers, [`StoreWork`] for
//! workers and submitting callers, [`StoreAdmin`] for operators; [`Store`] is all three), and
//! its backends:
//!
//! - [`MemoryStore`]: in-process, for tests and single-process use;
//! - `FileStore` (feature `file`, default): the embedded, crash-safe directory store.
//!
//! Backends share one state machine ([`tables::Tables`]) where they keep state in process memory,
//! and one conformance suite (`conformance`, feature `testing`) that every backend must pass.
//! This crate knows nothing of workers or task bodies: it stores and hands out invocations.

pub mod error;
pub mod export;
pub mod limits;
pub mod memory;
pub mod model;
mod redact;
pub mod spec;
pub mod steering;
pub mod store;
pub mod tables;

pub use error::StoreError;
pub use export::{EXPORT_FORMAT, ExportedInvocation, WorkflowExport};
pub use memory::MemoryStore;
pub use model::{
    Checkpoint, Claim, Commit, DEFAULT_MAX_RECOVERIES, InvocationRecord, InvocationSpec,
    InvocationState, Lease, LeaseInfo, NewInvocation, Outcome, StatusCounts, Submitted, Suspension,
    TaskSet,
};
pub use redact::redact_url;
pub use spec::{StoreSpec, StoreSpecError};
pub use steering::{CancelReport, CancelRequest, EventInbox, EventSent, NewEvent, StoredEvent};
pub use store::{Store, StoreAdmin, StoreRead, StoreWork};

#[cfg(feature = "testing")]
pub mod conformance;
#[cfg(feature = "testing")]
pub mod fuzzing;
#[cfg(feature = "testing")]
pub mod log_capture;

#[cfg(all(feature = "file", unix))]
pub mod control;
#[cfg(feature = "file")]
pub mod file;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "file")]
pub use file::{
    DEFAULT_IDLE_SYNC, DEFAULT_RETENTION, FileOptions, FileSnapshot, FileStore, TornTail,
};
#[cfg(feature = "redis")]
pub use redis::RedisStore;
