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

mod app;
mod clock;
mod config;
mod context;
mod deterministic;
mod error;
mod execution;
mod ids;
mod invocation;
mod manage;
mod retry;
mod task;
mod worker;
mod workflow;

pub use app::{App, AppBuilder};
pub use config::DEFAULT_LEASE;
pub use context::TaskContext;
pub use deterministic::DeterministicExecutor;
pub use error::{ConfigError, TaskError, WfError};
pub use invocation::Invocation;
pub use manage::{
    Admin, Inspector, InvocationView, TreeNode, WorkflowList, WorkflowQuery, WorkflowSummary,
    WorkflowTree,
};
pub use retry::{Backoff, RetryPredicate};
pub use task::{Task, TaskOptions};
/// Invocation counts by status ([`App::counts`]).
pub use wf_store::StatusCounts;
pub use worker::{Worker, WorkerBuilder, WorkerStats};
pub use workflow::{ChildHandle, WorkflowContext};
