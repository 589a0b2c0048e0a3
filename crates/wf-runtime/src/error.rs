//! Errors of the runtime and of task bodies.

use std::fmt;
use std::time::Duration;

use wf_core::{
    CodecError, Failure, InvocationId, NonDeterminism, TaskId, Timestamp, WorkflowAccessError,
};
use wf_store::StoreError;

/// An error from the `wf` API: building an app, calling tasks, waiting for results, and the
/// workflow context's fallible operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WfError {
    /// A task tried to write workflow data it does not own (only the workflow's root may).
    #[error(transparent)]
    Access(#[from] WorkflowAccessError),
    /// A replay diverged from the recorded journal; the invocation fails. Returned inside the
    /// body by the operation that diverged, and by [`crate::Invocation::result`] for an
    /// invocation that failed this way (instead of [`WfError::Failed`]), with the position, what
    /// the journal recorded and what the run asked for.
    #[error(transparent)]
    NonDeterminism(#[from] NonDeterminism),
    /// The workflow body is suspended until what it waits for happens: its children finish, its
    /// timer fires (a sleep, a deadline) or an event arrives. Propagate it with `?`: the worker
    /// is released and the body is replayed then. Swallowing it changes nothing: the invocation
    /// is suspended anyway.
    #[error(
        "workflow suspended: waiting (on {waiting_on} unfinished child invocation(s), a timer or an event); return this error with `?` so the worker can take other work"
    )]
    Suspended {
        /// How many children it waits on (0 for a sleep or an event).
        waiting_on: usize,
    },
    /// The invocation was cancelled. Inside a body: returned once, by the first journaled
    /// operation after the cancellation of its workflow tree was requested (and again at the
    /// same point on every replay). The body may then run compensating steps — the operations
    /// after it work as usual — and whatever it returns, it ends cancelled. From
    /// [`crate::Invocation::result`]: the invocation ended cancelled.
    #[error(
        "invocation {invocation} was cancelled ({reason}); a body told so may run compensating steps, then it ends cancelled whatever it returns"
    )]
    Cancelled {
        /// The cancelled invocation.
        invocation: InvocationId,
        /// Why.
        reason: String,
    },
    /// A wait with a deadline (`join_timeout`, `execute_task_timeout`, `wait_event_timeout`)
    /// ran out of time first. The deadline and the fact that it won are journaled: every replay
    /// returns this again at the same point. The body may handle it (a child waited for keeps
    /// running and can be joined again).
    #[error("timed out waiting for {waiting_for}: the deadline ({} ms since the epoch) passed first", deadline.0)]
    TimedOut {
        /// The deadline that passed.
        deadline: Timestamp,
        /// What was waited for, in words.
        waiting_for: String,
    },
    /// An event's payload does not decode as the type `wait_event` asked for.
    #[error(
        "event '{name}' has a payload that does not decode as the type wait_event asked for ({message}); event payloads are JSON: send one that matches the type"
    )]
    EventPayload {
        /// The event's name.
        name: String,
        /// The decoder's message.
        message: String,
    },
    /// A child task failed; its failure is recorded, so a replay sees the same error.
    #[error("child task '{task}' ({child}) failed: {failure}")]
    ChildFailed {
        /// The child's task.
        task: TaskId,
        /// The child invocation.
        child: InvocationId,
        /// Its failure.
        failure: Failure,
    },
    /// The invocation whose result was asked for failed.
    #[error("invocation {invocation} failed: {failure}")]
    Failed {
        /// The invocation.
        invocation: InvocationId,
        /// Its failure.
        failure: Failure,
    },
    /// The invocation did not finish within the time given to `result_timeout`.
    #[error("invocation {invocation} did not finish within {waited:?}: {progress}")]
    Timeout {
        /// The invocation.
        invocation: InvocationId,
        /// How long was waited.
        waited: Duration,
        /// Where it stands, in words (see [`crate::Invocation::progress`]).
        progress: String,
    },
    /// A child handle was joined by an invocation that did not create it (another workflow, or
    /// the other side of a sub-workflow). A handle belongs to the execution that started the
    /// child.
    #[error(
        "the handle of child {child} was created by invocation {created_by}; invocation {joined_by} \
         cannot join it: a handle belongs to the execution that started the child. Pass values \
         between workflows as arguments and results, not handles"
    )]
    ForeignHandle {
        /// The child the handle points to.
        child: InvocationId,
        /// The invocation whose body started the child.
        created_by: InvocationId,
        /// The invocation that tried to join it.
        joined_by: InvocationId,
    },
    /// A child handle kept from an earlier execution of the same invocation was joined. Handles
    /// do not outlive the execution that created them.
    #[error(
        "the handle of child {child} comes from an earlier execution of invocation {invocation}; \
         handles do not outlive the execution that created them. Call `start_task` with the same \
         task and arguments in this execution (it replays and returns the same child) and join \
         that handle"
    )]
    StaleHandle {
        /// The child the handle points to.
        child: InvocationId,
        /// The invocation (whose earlier execution created the handle).
        invocation: InvocationId,
    },
    /// `Task::call` was used inside a running task body. It would start a new top-level
    /// workflow on every replay of the body, outside its journal.
    #[error(
        "task '{task}' was called with `Task::call` from inside the body of invocation \
         {invocation}: that would start a new top-level workflow on every replay. Use \
         `ctx.wf().execute_task(..)` or `ctx.wf().start_task(..)` to run it as a child of this \
         invocation; for an independent sub-workflow, register the task with \
         `TaskOptions::force_new_workflow(true)` and start it the same way"
    )]
    CallInsideBody {
        /// The task called.
        task: TaskId,
        /// The invocation whose body made the call.
        invocation: InvocationId,
    },
    /// [`crate::Invocation::result`] or [`crate::Invocation::result_timeout`] was called inside a
    /// running task body. A blocking wait there holds the worker (with one thread, the very
    /// worker that must run what it waits for), and is not journaled, so a replay would not see
    /// the same answer.
    #[error(
        "the body of invocation {invocation} waited for the result of invocation {awaited}: a \
         body must not block on another invocation (it holds its worker, perhaps the one that \
         must run what it waits for, and a replay would not see the same answer). Start the \
         work as a child with `ctx.wf().execute_task(..)` or `ctx.wf().start_task(..)` and join \
         it; to only look at an invocation, use `Invocation::status()`"
    )]
    WaitInsideBody {
        /// The invocation whose result was waited for.
        awaited: InvocationId,
        /// The invocation whose body waited.
        invocation: InvocationId,
    },
    /// [`crate::Task::call_keyed`] was given a key that already started an invocation of the
    /// task with other arguments. Nothing was started.
    #[error(
        "key {key:?} of task '{task}' already started invocation {existing} with other arguments; a key stands for one piece of work: reuse it only with the same arguments, or pick a new key"
    )]
    KeyConflict {
        /// The task called.
        task: TaskId,
        /// The idempotency key.
        key: String,
        /// The invocation the key started first.
        existing: InvocationId,
    },
    /// A task with this name is already registered in the app.
    #[error("task '{0}' is already registered in this app; task names must be unique")]
    DuplicateTask(TaskId),
    /// No task with this name is registered.
    #[error(
        "task '{0}' is not registered in this app; register it with `app.task(..)` before workers run"
    )]
    UnknownTask(TaskId),
    /// A task handle from another app was used.
    #[error("task '{0}' belongs to another app (or was registered with a different signature)")]
    ForeignTask(TaskId),
    /// Arguments or a result could not be encoded or decoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The app's configuration is invalid: the error names the setting (the environment
    /// variable or the builder method) and the value.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The operating system refused a thread the worker needs.
    #[error("cannot start the {what}: {source}; the process may be out of threads or memory")]
    Spawn {
        /// Which thread.
        what: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Workflow-context operations are only valid inside the body that owns the context.
    #[error("{0}")]
    Usage(String),
    /// A file given to the replay check is not a readable export of this format.
    #[error("bad workflow export: {0}")]
    BadExport(String),
}

/// A configuration an [`crate::App`] cannot be built with. Each message names the setting as the
/// user wrote it — `WF_LEASE_MS=0`, `lease_duration(5ms)` — and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A setting has a value it cannot take.
    #[error("{setting}={value}: {problem}")]
    Invalid {
        /// The environment variable (`WF_LEASE_MS`) or builder method (`lease_duration`).
        setting: &'static str,
        /// The value given, as given.
        value: String,
        /// What is wrong with it and what to write instead.
        problem: String,
    },
}

/// The error type of task bodies. Anything implementing `std::error::Error` converts into it, so
/// `?` works in bodies; [`TaskError::new`] makes one from a message.
///
/// ```
/// use wf_runtime::TaskError;
///
/// fn parse(s: &str) -> Result<u32, TaskError> {
///     let n: u32 = s.parse()?; // ParseIntError converts
///     if n == 0 {
///         return Err(TaskError::new("zero is not a valid quantity").permanent());
///     }
///     Ok(n)
/// }
/// assert!(parse("x").is_err());
/// assert!(!parse("0").unwrap_err().is_retryable());
/// ```
pub struct TaskError {
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    permanent: bool,
}

impl TaskError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
            permanent: false,
        }
    }

    /// Marks the error as permanent: it is never retried, whatever the task's retry settings.
    pub fn permanent(mut self) -> Self {
        self.permanent = true;
        self
    }

    /// False when marked [`TaskError::permanent`].
    pub fn is_retryable(&self) -> bool {
        !self.permanent
    }

    /// True when this error is a joined child's recorded failure passed on by the body: a
    /// [`WfError::ChildFailed`] propagated with `?` (or `TaskError::from`), or an error of your
    /// own whose [`source`](std::error::Error::source) chain holds one. Such an error is final
    /// for the parent unless its `retry_if` asks for a retry: a retry would replay the same
    /// failure. A failure rewritten as a new message (`TaskError::new(format!(..))`) keeps no
    /// source: it is the parent's own error, and retries as one.
    pub fn is_child_failure(&self) -> bool {
        let mut next = self
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static));
        while let Some(e) = next {
            if matches!(
                e.downcast_ref::<WfError>(),
                Some(WfError::ChildFailed { .. })
            ) {
                return true;
            }
            next = e.source();
        }
        false
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The wrapped error, if this came from one, for downcasting in retry predicates.
    pub fn source(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.source.as_deref()
    }

    /// The wrapped error as `E`, if it is one.
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.source.as_deref().and_then(|e| e.downcast_ref::<E>())
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for TaskError {
    fn from(e: E) -> Self {
        Self {
            message: e.to_string(),
            source: Some(Box::new(e)),
            permanent: false,
        }
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskError")
            .field("message", &self.message)
            .field("permanent", &self.permanent)
            .finish()
    }
}
