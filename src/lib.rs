//! # wf: durable workflows for Rust
//!
//! Register tasks in an [`App`], run them on workers over memory or file storage, and give task
//! bodies a [workflow context](WorkflowContext) whose operations are recorded, so that a re-run
//! after a crash or a retry *replays* them instead of repeating them: an order is charged,
//! shipped and mailed once per step, even when a worker is `kill -9`ed halfway.
//!
//! ```
//! use wf::prelude::*;
//!
//! let app = App::builder().app_id("shop").memory().build()?;
//!
//! let charge = app.task("charge", |_ctx: &TaskContext, cents: u64| -> Result<String, TaskError> {
//!     Ok(format!("receipt-{cents}"))
//! })?;
//! let order = app.task("order", move |ctx: &TaskContext, cents: u64| -> Result<String, TaskError> {
//!     let wf = ctx.wf();
//!     let order_id = wf.uuid();                       // the same on every replay
//!     wf.set_data("order_id", &order_id)?;            // workflow data; only the root writes
//!     let receipt = wf.execute_task(&charge, cents)?; // runs once; replays return the recorded result
//!     Ok(format!("{order_id} paid with {receipt}"))
//! })?;
//!
//! let worker = app.worker().threads(2).start()?;
//! let inv = order.call(&app, 1250)?;
//! assert!(inv.result()?.ends_with("paid with receipt-1250"));
//! worker.stop();
//! # Ok::<(), wf::WfError>(())
//! ```
//!
//! The crates behind this facade: [`core`] (identities, journal, replay cursor, codec; no I/O),
//! [`store`] (the storage contract and its backends) and the runtime re-exported at the top.
//! `docs/ARCHITECTURE.md` explains how they fit; `docs/guide/workflows.md` lists the determinism
//! rules a workflow body must follow.

pub use wf_runtime::{
    App, AppBuilder, Backoff, CancelReport, ChildHandle, DEFAULT_LEASE, Deterministic, EventSent,
    Invocation, RetryPredicate, Task, TaskContext, TaskError, TaskOptions, WfError, Worker,
    WorkerBuilder, WorkerStats, WorkflowContext,
};

/// Replay checks for CI: replay workflows recorded in production (`wf export`) against the code
/// you are about to deploy. See [`testing::replay_check`].
pub mod testing {
    pub use wf_runtime::testing::*;
}

/// Re-exported so `wf::uuid::Uuid` and `wf::time::OffsetDateTime` match what the context returns.
pub use wf_core::{time, uuid};

pub use wf_core::{
    Failure, FailureKind, InvocationId, NonDeterminism, Status, TaskId, WorkflowAccessError,
    WorkflowIdentity,
};

/// The pure core: identities, access rules, status table, journal, replay cursor, codec.
pub mod core {
    pub use wf_core::*;
}

/// The storage contract and its backends.
pub mod store {
    pub use wf_store::*;
}

/// Everything a task author needs: `use wf::prelude::*;`.
pub mod prelude {
    pub use crate::{
        App, Backoff, CancelReport, ChildHandle, EventSent, Failure, FailureKind, Invocation,
        InvocationId, NonDeterminism, Status, Task, TaskContext, TaskError, TaskOptions, WfError,
        WorkflowAccessError, WorkflowContext, WorkflowIdentity,
    };
}

/// The README's code blocks, compiled and run as doc-tests so the quick start stays honest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The determinism guide's runnable examples, compiled and run as doc-tests.
#[doc = include_str!("../docs/guide/workflows.md")]
#[cfg(doctest)]
pub struct WorkflowGuideDoctests;
