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
//! ## Guides
//!
//! - [`guide::workflows`]: the five rules a workflow body must follow, what replays and what does
//!   not, workflow data (and why a failed attempt's writes are kept), fan-out, durable time,
//!   events, cancellation and compensation, patches, the replay check, testing.
//! - [`guide::operations`]: workers, leases and recovery, retries, retention, idempotent starts,
//!   managing workflows from code, the `wf` inspector, upgrading code while workflows are in
//!   flight.
//! - [`guide::backends`]: choosing a store.
//!
//! ## Long-running workflows
//!
//! Durable time: [`WorkflowContext::sleep`], [`Task::call_after`], deadlines on waits
//! ([`WorkflowContext::join_timeout`], [`WorkflowContext::wait_event_timeout`]). Events from
//! outside: [`App::send_event`] and [`WorkflowContext::wait_event`] (`examples/approval.rs`: a
//! person approves from another process). Cancelling a workflow tree: [`App::cancel`] (a body
//! told with [`WfError::Cancelled`] may compensate). Changing code in flight:
//! [`WorkflowContext::patched`], checked in CI by [`testing::replay_check`] against workflows
//! exported with `wf export`.
//!
//! ## Operating
//!
//! Starting work once per request: [`Task::call_keyed`]. Managing what runs, from code:
//! [`App::workflows`] (with a [`WorkflowQuery`]), [`App::invocation`] and [`App::workflow`]
//! (arguments and results typed by the caller), [`App::counts`], [`App::retry`],
//! [`App::purge_finished`] and [`App::purge_finished_dry_run`]. The same from the command line:
//! the `wf` inspector (crate `wf-cli`).
//!
//! ## Configuration
//!
//! [`AppBuilder`] takes every setting, or `WF_APP_ID`, `WF_STORE` (a [`StoreSpec`]: `memory`,
//! `file:<dir>`, a directory path or a `redis://` URL), `WF_LEASE_MS` and `WF_WORKER_THREADS`; a bad value is a
//! [`ConfigError`] naming its variable. Without a store choice an app uses memory and warns.
//!
//! ## Cargo features
//!
//! | feature | default | adds |
//! |---|---|---|
//! | `file` | yes | the embedded, crash-safe file store: [`AppBuilder::file`], [`store::FileStore`] |
//! | `redis` | no | the Redis backend, for workers in many processes on many machines, on one Redis or a Redis Cluster: `AppBuilder::redis`, `store::RedisStore`, `WF_STORE=redis://…` |
//! | `redis-tls` | no | `rediss://` (TLS, with rustls) for the Redis backend |
//! | `tokio` | no | async task bodies (`App::task_async`) run by async workers (`WorkerBuilder::concurrency`) that park waiting bodies instead of replaying them, and an async client (`Task::call_async`, `invocation.await`, `Worker::stop_on`); see `docs/guide/async.md` |
//!
//! Without `file`, only the memory store, Redis with `redis`, and stores you bring with
//! [`AppBuilder::store`] remain.
//!
//! ## Crates
//!
//! The crates behind this facade: [`core`] (identities, journal, replay cursor, codec; no I/O),
//! [`store`] (the storage contract and its backends) and the runtime re-exported at the top.
//! `docs/ARCHITECTURE.md` in the repository explains how they fit.

pub use wf_runtime::{
    Admin, App, AppBuilder, Backoff, CancelReport, ChildHandle, ConfigError, DEFAULT_LEASE,
    Deterministic, EventSent, Inspector, Invocation, InvocationView, RetryPredicate, StatusCounts,
    Task, TaskContext, TaskError, TaskOptions, TreeNode, WfError, Worker, WorkerBuilder,
    WorkerStats, WorkflowContext, WorkflowList, WorkflowQuery, WorkflowSummary, WorkflowTree,
};
/// Async bodies (feature `tokio`): what `App::task_async` bodies receive.
#[cfg(feature = "tokio")]
pub use wf_runtime::{AsyncTaskContext, AsyncWorkflow};

/// How a store is named in text (`WF_STORE`, `--store`): `memory`, `file:<dir>`, a directory.
pub use wf_store::{StoreSpec, StoreSpecError};

/// Replay checks for CI: replay workflows recorded in production (`wf export`) against the code
/// you are about to deploy. See [`testing::replay_check`].
pub mod testing {
    pub use wf_runtime::testing::*;
}

/// Re-exported so `wf::uuid::Uuid` and `wf::time::OffsetDateTime` match what the context returns.
pub use wf_core::{time, uuid};

pub use wf_core::{
    Failure, FailureKind, InvocationId, NonDeterminism, Status, TaskId, Timestamp,
    WorkflowAccessError, WorkflowIdentity,
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
    #[cfg(feature = "tokio")]
    pub use crate::{AsyncTaskContext, AsyncWorkflow};
}

/// The README's quick start (`examples/quickstart.rs`, the same text: `tests/readme.rs` checks),
/// compiled as a doc-test. It is run by `tests/readme.rs` in a scratch directory, and every Rust
/// block of the README is compiled as a new project by `cargo xtask readme`.
#[doc = concat!("```no_run\n", include_str!("../examples/quickstart.rs"), "```")]
#[cfg(doctest)]
pub struct QuickstartDoctest;

/// The guides, as rustdoc pages. Their sources are `docs/guide/*.md` in the repository (the same
/// text renders there); their Rust examples run as doc-tests.
pub mod guide {
    #[doc = include_str!("../docs/guide/workflows.md")]
    pub mod workflows {}

    #[doc = include_str!("../docs/guide/operations.md")]
    pub mod operations {}

    #[doc = include_str!("../docs/guide/backends.md")]
    pub mod backends {}

    #[cfg(feature = "tokio")]
    #[doc = include_str!("../docs/guide/async.md")]
    pub mod async_bodies {}
}
