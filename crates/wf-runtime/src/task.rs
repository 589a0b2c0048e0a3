//! Typed task handles and task options.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use wf_core::TaskId;
use wf_store::DEFAULT_MAX_RECOVERIES;

use crate::error::TaskError;
use crate::retry::{Backoff, RetryPolicy};

/// How a task is registered: its name, retries and workflow behaviour.
///
/// ```
/// use std::time::Duration;
/// use wf_runtime::{Backoff, TaskOptions};
///
/// let options = TaskOptions::new("charge_card")
///     .max_retries(3)
///     .retry_backoff(Backoff::exponential(Duration::from_millis(200)))
///     .retry_if(|e| !e.message().contains("declined"));
/// # let _ = options;
/// ```
#[derive(Clone, Debug)]
pub struct TaskOptions {
    pub(crate) id: TaskId,
    pub(crate) retry: RetryPolicy,
    pub(crate) force_new_workflow: bool,
    pub(crate) max_recoveries: u32,
}

impl TaskOptions {
    /// Options for a task called `name`: no retries, joins its caller's workflow.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            id: TaskId::new(name),
            retry: RetryPolicy::default(),
            force_new_workflow: false,
            max_recoveries: DEFAULT_MAX_RECOVERIES,
        }
    }

    /// How many times a failed attempt (error or panic) is retried. Default 0.
    ///
    /// A failure that comes from a recorded child failure — the body returned the
    /// [`WfError::ChildFailed`](crate::WfError::ChildFailed) of a child it joined, typically with
    /// `?`, or an error whose source chain holds it ([`TaskError::is_child_failure`]) — is
    /// **final** for the parent unless [`TaskOptions::retry_if`] asks for a retry: a retry
    /// replays the journal, so it would meet the same recorded failure again. Retry the child
    /// instead (its own `max_retries`), or handle its failure in the body. A failure rewritten
    /// as a new message (`TaskError::new(format!(..))`) is the parent's own error and retries.
    pub fn max_retries(mut self, n: u32) -> Self {
        self.retry.max_retries = n;
        self
    }

    /// The delay between retries: a [`Backoff`], or a `Duration` for a fixed delay. Default:
    /// exponential from 100 ms, capped at 60 s, jitter 0.5.
    pub fn retry_backoff(mut self, backoff: impl Into<Backoff>) -> Self {
        self.retry.backoff = backoff.into();
        self
    }

    /// Retries only errors for which `predicate` is true (panics always count as retryable;
    /// errors marked [`TaskError::permanent`] never do).
    ///
    /// It is also the only way to retry a failure that comes from a recorded child failure,
    /// which is otherwise final (see [`TaskOptions::max_retries`]): for such an error
    /// ([`TaskError::is_child_failure`]) the predicate is asked, and `true` spends a retry. Each such retry replays the journal and so meets the same
    /// recorded failure.
    pub fn retry_if(
        mut self,
        predicate: impl Fn(&TaskError) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.retry.predicate = Some(Arc::new(predicate));
        self
    }

    /// When called from inside another task, start a sub-workflow (own data, own root) instead of
    /// joining the caller's workflow.
    pub fn force_new_workflow(mut self, yes: bool) -> Self {
        self.force_new_workflow = yes;
        self
    }

    /// How many times in a row an invocation is run again after its worker vanished mid-body
    /// (a crash, `kill -9`, or a stall past the lease). The next loss fails it with
    /// `FailureKind::WorkerLost`, so a body that crashes its process cannot take workers down
    /// forever. Any completed execution (success, error, retry, suspension) resets the count.
    /// Default 3. Separate from [`TaskOptions::max_retries`], which counts errors and panics.
    pub fn max_recoveries(mut self, n: u32) -> Self {
        self.max_recoveries = n;
        self
    }
}

/// A registered task: call it with [`Task::call`] (from outside any task) or through the workflow
/// context (from inside a task).
pub struct Task<A, R> {
    pub(crate) id: TaskId,
    pub(crate) force_new_workflow: bool,
    pub(crate) max_recoveries: u32,
    _types: PhantomData<fn(A) -> R>,
}

impl<A, R> Task<A, R> {
    pub(crate) fn new(options: &TaskOptions) -> Self {
        Self {
            id: options.id.clone(),
            force_new_workflow: options.force_new_workflow,
            max_recoveries: options.max_recoveries,
            _types: PhantomData,
        }
    }

    /// The task's id (its registered name).
    pub fn id(&self) -> &TaskId {
        &self.id
    }

    /// The task's name.
    pub fn name(&self) -> &str {
        self.id.as_str()
    }
}

impl<A, R> Clone for Task<A, R> {
    fn clone(&self) -> Self {
        Self {
            id: self.id.clone(),
            force_new_workflow: self.force_new_workflow,
            max_recoveries: self.max_recoveries,
            _types: PhantomData,
        }
    }
}

impl<A, R> fmt::Debug for Task<A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task").field("id", &self.id).finish()
    }
}
