//! The async client: awaiting a result, submitting without blocking the runtime, and stopping a
//! worker when a future (a signal) completes.
//!
//! Store calls block (the file store syncs to disk on every submit), so they run on the
//! runtime's blocking threads (`spawn_blocking`), never on the caller's task. A result is awaited
//! in slices of [`RESULT_SLICE`], one blocking thread each, so a dropped future frees its thread
//! within one slice.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::app::App;
use crate::error::WfError;
use crate::invocation::{Invocation, outcome};
use crate::task::Task;
use crate::worker::{Worker, WorkerStats};

/// How long one blocking wait for a result lasts before the future waits again.
const RESULT_SLICE: Duration = Duration::from_secs(1);

/// Runs a blocking store call on the runtime's blocking threads.
async fn blocking<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> Result<T, WfError> + Send + 'static,
) -> Result<T, WfError> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(WfError::Usage(format!(
            "{what} was awaited outside a tokio runtime; await it inside one (#[tokio::main], \
             Runtime::block_on), or use the blocking call instead"
        )));
    }
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        WfError::Usage(format!(
            "{what} ended abnormally on its blocking thread: {e}"
        ))
    })?
}

impl<A, R> Task<A, R>
where
    A: Serialize + Send + 'static,
    R: DeserializeOwned + 'static,
{
    /// [`Task::call`] without blocking the runtime: the submission (a disk sync on the file
    /// store) runs on a blocking thread. Await the returned [`Invocation`] for the result.
    ///
    /// # Errors
    ///
    /// As [`Task::call`]; [`WfError::Usage`] outside a tokio runtime.
    pub async fn call_async(&self, app: &App, args: A) -> Result<Invocation<R>, WfError> {
        self.check_caller(app)?;
        let (task, app) = (self.clone(), app.clone());
        blocking("Task::call_async", move || task.call(&app, args)).await
    }

    /// [`Task::call_keyed`] (an idempotent start: at most one invocation per key) without
    /// blocking the runtime.
    ///
    /// # Errors
    ///
    /// As [`Task::call_keyed`]; [`WfError::Usage`] outside a tokio runtime.
    pub async fn call_keyed_async(
        &self,
        app: &App,
        key: &str,
        args: A,
    ) -> Result<Invocation<R>, WfError> {
        self.check_caller(app)?;
        let (task, app, key) = (self.clone(), app.clone(), key.to_owned());
        blocking("Task::call_keyed_async", move || {
            task.call_keyed(&app, &key, args)
        })
        .await
    }
}

impl<R: DeserializeOwned + Send + 'static> Invocation<R> {
    /// [`Invocation::result`] as a future: waits for the invocation to be final without
    /// blocking the runtime. `invocation.await` does the same.
    ///
    /// # Errors
    ///
    /// As [`Invocation::result`]; [`WfError::Usage`] outside a tokio runtime.
    pub async fn result_async(&self) -> Result<R, WfError> {
        self.refuse_inside_body()?;
        loop {
            if let Some(r) = self.wait_slice(RESULT_SLICE).await? {
                return r;
            }
        }
    }

    /// [`Invocation::result_timeout`] as a future.
    ///
    /// # Errors
    ///
    /// As [`Invocation::result_timeout`]; [`WfError::Usage`] outside a tokio runtime.
    pub async fn result_timeout_async(&self, timeout: Duration) -> Result<R, WfError> {
        self.refuse_inside_body()?;
        let start = Instant::now();
        loop {
            let left = timeout.saturating_sub(start.elapsed());
            if let Some(r) = self.wait_slice(left.min(RESULT_SLICE)).await? {
                return r;
            }
            if start.elapsed() >= timeout {
                let this = self.clone();
                let progress = blocking("Invocation::progress", move || this.progress()).await?;
                return Err(WfError::Timeout {
                    invocation: self.id(),
                    waited: start.elapsed(),
                    progress,
                });
            }
        }
    }

    /// One blocking wait of at most `slice` for the final record; its result once final.
    async fn wait_slice(&self, slice: Duration) -> Result<Option<Result<R, WfError>>, WfError> {
        let (app, id) = (self.app().clone(), self.id());
        let record = blocking("Invocation::result_async", move || {
            Ok(app.store().wait_final(id, slice)?)
        })
        .await?;
        Ok(record.map(outcome))
    }
}

impl<R: DeserializeOwned + Send + 'static> IntoFuture for Invocation<R> {
    type Output = Result<R, WfError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<R, WfError>> + Send>>;

    /// `invocation.await`: [`Invocation::result_async`].
    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move { self.result_async().await })
    }
}

impl Worker {
    /// Stops the worker once `signal` completes (for example `tokio::signal::ctrl_c()`):
    /// no new claims, running bodies finish and commit, parked bodies are suspended (and
    /// replayed by the next worker). Returns the final counters.
    ///
    /// ```no_run
    /// # async fn demo(app: wf_runtime::App) -> Result<(), wf_runtime::WfError> {
    /// let worker = app.worker().concurrency(64).start()?;
    /// let stats = worker.stop_on(async { /* tokio::signal::ctrl_c().await */ }).await;
    /// println!("ran {} executions", stats.executed);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn stop_on<F: Future>(self, signal: F) -> WorkerStats {
        let _ = signal.await;
        self.stop_async().await
    }

    /// [`Worker::stop`] without blocking the runtime (the threads are joined on a blocking
    /// thread; outside a tokio runtime, on this one).
    pub async fn stop_async(self) -> WorkerStats {
        self.request_stop();
        if tokio::runtime::Handle::try_current().is_err() {
            return self.stop();
        }
        let stats = self.stats();
        match tokio::task::spawn_blocking(move || self.stop()).await {
            Ok(stats) => stats,
            Err(e) => {
                tracing::error!(error = %e, "stopping the worker ended abnormally");
                stats
            }
        }
    }
}
