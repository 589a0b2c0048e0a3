//! Async task bodies, the async worker and the async client (feature `tokio`).
//!
//! An async body is a function returning a future: `app.task_async(name, |ctx, args| async move
//! { … })`. It gets an [`AsyncTaskContext`], whose workflow view ([`AsyncWorkflow`]) keeps the
//! deterministic operations as plain calls and makes the waiting ones (`execute_task`, `join`,
//! `join_all`, …) futures. Everything is recorded by the same recorder and committed by the same
//! execution as a sync body: the replay rules are the sync ones.
//!
//! | module | owns |
//! |---|---|
//! | `body` | running an async body: on the async worker (awaited), or anywhere else (driven to its end on a runtime of its own) |
//! | `context` | [`AsyncTaskContext`] and [`AsyncWorkflow`], what an async body receives |
//! | `park` | parking a body that waits on children, and waking it when their commits land |
//! | `worker` | the async worker threads: a current-thread tokio runtime each, bodies as local tasks |
//! | `client` | `Invocation::result_async`, `Task::call_async`, `Worker::stop_on` |
//!
//! Where an async body runs:
//! - on a worker started with [`crate::WorkerBuilder::concurrency`]: as a local task of one of
//!   the worker's threads, up to that many at once per thread; a body that waits on children
//!   that are not final stays parked in memory (its lease renewed) and resumes when their
//!   commits land; it is suspended and replayed only when the bound on parked bodies
//!   ([`crate::WorkerBuilder::max_parked`]) is reached, the worker stops, or its lease is lost;
//! - anywhere else (a sync worker, `App::run_until_idle`, a sync parent running it inline): its
//!   future is driven to its end on a current-thread runtime of its own (on a thread of its own
//!   when the caller's thread belongs to a runtime), and its waiting operations behave as in a
//!   sync body (run a child inline, or suspend).

mod body;
mod client;
mod context;
mod park;
pub(crate) mod worker;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use wf_core::{decode, encode};

pub(crate) use body::run_body_blocking;
pub use context::{AsyncTaskContext, AsyncWorkflow};
pub(crate) use worker::on_async_thread;

use crate::app::App;
use crate::error::{TaskError, WfError};
use crate::registry::{BodyError, RegisteredTask};
use crate::task::{Task, TaskOptions};

/// The future of one run of an async body, on encoded results.
pub(crate) type LocalBody = Pin<Box<dyn Future<Output = Result<Vec<u8>, BodyError>>>>;

/// An async body on encoded arguments.
pub(crate) type ErasedAsyncBody = dyn Fn(AsyncTaskContext, Vec<u8>) -> LocalBody + Send + Sync;

impl App {
    /// Registers a task whose body is async, with default options. See [`App::task_async_with`].
    ///
    /// ```
    /// # async fn demo() -> Result<(), wf_runtime::WfError> {
    /// use wf_runtime::{App, AsyncTaskContext, TaskError};
    ///
    /// let app = App::builder().memory().build()?;
    /// let double = app.task_async("double", |_ctx: AsyncTaskContext, n: u64| async move {
    ///     Ok::<_, TaskError>(n * 2)
    /// })?;
    /// let flow = app.task_async("flow", move |ctx: AsyncTaskContext, n: u64| {
    ///     let double = double.clone();
    ///     async move {
    ///         let wf = ctx.wf();
    ///         let twice = wf.execute_task(&double, n).await?; // parked, not replayed
    ///         Ok::<_, TaskError>(twice + 1)
    ///     }
    /// })?;
    /// let worker = app.worker().threads(1).concurrency(16).start()?;
    /// assert_eq!(flow.call_async(&app, 20).await?.await?, 41);
    /// worker.stop_async().await;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`App::task_async_with`].
    pub fn task_async<A, R, F, Fut>(&self, name: &str, body: F) -> Result<Task<A, R>, WfError>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        F: Fn(AsyncTaskContext, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, TaskError>> + 'static,
    {
        self.task_async_with(TaskOptions::new(name), body)
    }

    /// Registers a task whose body is async, with options. The future need not be `Send`: it
    /// runs on one thread. Call it like any task ([`Task::call`], [`Task::call_async`],
    /// `execute_task` from a sync or an async body).
    ///
    /// # Errors
    ///
    /// [`WfError::DuplicateTask`] when a task of this name is already registered.
    pub fn task_async_with<A, R, F, Fut>(
        &self,
        options: TaskOptions,
        body: F,
    ) -> Result<Task<A, R>, WfError>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        F: Fn(AsyncTaskContext, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, TaskError>> + 'static,
    {
        let handle = Task::new(&options);
        let f = Arc::new(body);
        let erased = move |ctx: AsyncTaskContext, args: Vec<u8>| -> LocalBody {
            let f = f.clone();
            Box::pin(async move {
                let args: A = decode(&args).map_err(BodyError::Args)?;
                let result = f(ctx, args).await.map_err(BodyError::Task)?;
                encode(&result).map_err(BodyError::Result)
            })
        };
        let task = RegisteredTask::new_async::<A, R>(options, Box::new(erased));
        self.registry().register_built(task)?;
        Ok(handle)
    }
}
