//! # wf-runtime
//!
//! The engine of `wf`: an [`App`] holds a store and a task registry; [`Task`] handles call tasks;
//! [`Worker`]s claim invocations under leases, run their bodies with a [`TaskContext`], and commit
//! what happened; the [`WorkflowContext`] (`ctx.wf()`) gives bodies replayed, durable operations.
//!
//! ```
//! use wf_runtime::{App, TaskContext, TaskError};
//!
//! let app = App::builder().app_id("demo").memory().build()?;
//! let hello = app.task("hello", |_ctx: &TaskContext, name: String| -> Result<String, TaskError> {
//!     Ok(format!("hello, {name}"))
//! })?;
//! let worker = app.worker().threads(2).start()?;
//! let inv = hello.call(&app, "wf".to_string())?;
//! assert_eq!(inv.result()?, "hello, wf");
//! worker.stop();
//! # Ok::<(), wf_runtime::WfError>(())
//! ```

//! ## Modules, and the one import circle
//!
//! | module | owns |
//! |---|---|
//! | `app` | [`App`] and [`AppBuilder`]: the store, the registry, the configuration |
//! | `config` | resolving settings (builder, `WF_*` variables, defaults) and opening the store a [`wf_store::StoreSpec`] names |
//! | `manage` | the management API on [`App`]: [`Inspector`] (reads) and [`Admin`] (retry, purge) over any store |
//! | `registry` | the type-erased task registry: each task's options and its body on bytes |
//! | `task` | [`TaskOptions`] and the typed handle [`Task`] |
//! | `invocation` | `Task::call`, `Task::call_keyed` and [`Invocation`], a caller's handle on one call |
//! | `worker` | [`Worker`]s, `App::worker` and `App::run_until_idle` |
//! | `runner` | who runs executions: the worker, its clock, the pool that renews leases and counts |
//! | `execution` | one execution: run a claimed body, seal its recorder, commit one outcome |
//! | `inline` | running a child inline: checkpoint, the child's execution, its outcome |
//! | `context` | [`TaskContext`], what a body receives |
//! | `workflow` | [`WorkflowContext`] (`ctx.wf()`): data, primitives, children, joins |
//! | `recorder` | the recorder of one execution: replay cursor, buffered writes and children, divergence, the stop point |
//! | `waits` | the context's durable time, events and deadlines: `sleep`, `wait_event`, `join_timeout` |
//! | `steer` | steering from outside: `App::send_event`, `App::cancel`, `Invocation::cancel`, delayed calls |
//! | `cancel` | how a running body learns of its cancellation: per-execution flags |
//! | `testing` | [`testing::replay_check`]: replaying recorded workflows against the current code |
//! | `handle` | [`ChildHandle`] and the execution that owns it |
//! | `scope` | which invocation's body the current thread runs |
//! | `retry` | [`Backoff`] and the retry decision |
//! | `asynch` | (feature `tokio`) async bodies ([`App::task_async`]), the async worker ([`WorkerBuilder::concurrency`]) that parks waiting bodies, and the async client (`Invocation::result_async`, `Task::call_async`, `Worker::stop_on`) |
//! | `error`, `clock`, `ids` | [`WfError`] and [`TaskError`]; the wall clock; fresh ids |
//!
//! Dependencies between modules point one way except for one circle, `app` → `registry` →
//! `context` → `workflow` → `app`: the app holds the registry of bodies, a body receives a
//! context, and the context hands the body its app (to start children through it). The circle is
//! the product's shape — a body runs inside the app that registered it — and it is kept to those
//! four modules: workers and executions depend on the app, never the other way round.

mod app;
#[cfg(feature = "tokio")]
mod asynch;
mod cancel;
mod clock;
mod config;
mod context;
mod error;
mod execution;
mod handle;
mod ids;
mod inline;
mod invocation;
mod manage;
mod recorder;
#[cfg(test)]
mod recorder_progress_tests;
#[cfg(test)]
mod recorder_tests;
mod registry;
mod retry;
mod runner;
mod scope;
mod steer;
mod task;
pub mod testing;
mod waits;
mod worker;
mod workflow;

pub use app::{App, AppBuilder};
#[cfg(feature = "tokio")]
pub use asynch::{AsyncTaskContext, AsyncWorkflow};
pub use config::DEFAULT_LEASE;
pub use context::TaskContext;
pub use error::{ConfigError, TaskError, WfError};
pub use handle::ChildHandle;
pub use invocation::Invocation;
pub use manage::{
    Admin, Inspector, InvocationView, TreeNode, WorkflowList, WorkflowQuery, WorkflowSummary,
    WorkflowTree,
};
pub use retry::{Backoff, RetryPredicate};
pub use task::{Task, TaskOptions};
/// Invocation counts by status ([`App::counts`]).
pub use wf_store::StatusCounts;
pub use wf_store::{CancelReport, EventSent};
pub use worker::{Worker, WorkerBuilder, WorkerStats};
pub use workflow::{Deterministic, WorkflowContext};
