//! `Invocation<R>`: a caller's handle on one call.

use std::fmt;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use wf_core::{
    CallId, Failure, FailureKind, InvocationId, Status, Timestamp, WorkflowIdentity, decode, encode,
};
use wf_store::{CancelReport, EventSent, InvocationRecord, NewInvocation};

use crate::app::App;
use crate::clock;
use crate::error::WfError;
use crate::ids::fresh_invocation_id;
use crate::task::Task;

/// A call of a task from outside any task, typed by its result.
pub struct Invocation<R> {
    id: InvocationId,
    app: App,
    _result: PhantomData<fn() -> R>,
}

impl<A: Serialize + 'static, R: DeserializeOwned + 'static> Task<A, R> {
    /// Calls the task from outside any task: a new workflow rooted at this invocation. Returns
    /// at once; workers run it.
    ///
    /// Inside a task body it is refused: a body runs again on every replay, so each run would
    /// start another workflow. Use `ctx.wf().execute_task` / `start_task` there (with a task
    /// registered with `force_new_workflow(true)` for an independent sub-workflow).
    ///
    /// # Errors
    ///
    /// [`WfError::CallInsideBody`] from inside a task body (on the thread running it, or with the
    /// app a context handed out); [`WfError::ForeignTask`] for a handle of another app;
    /// [`WfError::Codec`] when the arguments cannot be encoded; [`WfError::Store`] when the store
    /// refuses or fails the submission.
    pub fn call(&self, app: &App, args: A) -> Result<Invocation<R>, WfError> {
        self.call_not_before(app, args, None)
    }

    /// Calls the task from outside any task, to run `delay` from now at the earliest: stored
    /// now, durably, and claimable by workers from then on (a restart in between changes
    /// nothing). See [`Task::call`].
    ///
    /// # Errors
    ///
    /// As [`Task::call`].
    pub fn call_after(
        &self,
        app: &App,
        delay: Duration,
        args: A,
    ) -> Result<Invocation<R>, WfError> {
        let delay = i128::try_from(delay.as_nanos()).unwrap_or(i128::MAX);
        let now = clock::now_utc().unix_timestamp_nanos();
        let at = Timestamp::ceil_from_nanos(now.saturating_add(delay));
        self.call_not_before(app, args, Some(at))
    }

    /// Calls the task from outside any task, to run at `time` at the earliest (at once if it
    /// has passed). See [`Task::call_after`].
    ///
    /// # Errors
    ///
    /// As [`Task::call`].
    pub fn call_at(
        &self,
        app: &App,
        time: time::OffsetDateTime,
        args: A,
    ) -> Result<Invocation<R>, WfError> {
        let at = Timestamp::ceil_from_nanos(time.unix_timestamp_nanos());
        self.call_not_before(app, args, Some(at))
    }

    fn call_not_before(
        &self,
        app: &App,
        args: A,
        not_before: Option<Timestamp>,
    ) -> Result<Invocation<R>, WfError> {
        if let Some(invocation) = app.body_in_progress() {
            return Err(WfError::CallInsideBody {
                task: self.id.clone(),
                invocation,
            });
        }
        app.check_handle(self)?;
        let args = encode(&args)?;
        let id = fresh_invocation_id();
        let invocation = NewInvocation {
            id,
            call: CallId::of(&self.id, &args),
            identity: WorkflowIdentity::derive(id, &self.id, self.force_new_workflow, None),
            task: self.id.clone(),
            args,
            parent: None,
            not_before,
            max_recoveries: self.max_recoveries,
        };
        app.store().submit(invocation, clock::now())?;
        Ok(Invocation::attach(app, id))
    }
}

impl<R: DeserializeOwned> Invocation<R> {
    /// A handle on an existing invocation (for example an id read from a log). The result type is
    /// the caller's promise; a mismatch shows as a decode error.
    pub fn attach(app: &App, id: InvocationId) -> Self {
        Self {
            id,
            app: app.clone(),
            _result: PhantomData,
        }
    }

    /// The invocation's id.
    pub fn id(&self) -> InvocationId {
        self.id
    }

    /// Cancels this invocation and everything it started: see [`App::cancel`].
    ///
    /// # Errors
    ///
    /// As [`App::cancel`].
    pub fn cancel(&self) -> Result<CancelReport, WfError> {
        self.app.cancel(self.id)
    }

    /// Sends an event to this invocation: see [`App::send_event`].
    ///
    /// # Errors
    ///
    /// As [`App::send_event`].
    pub fn send_event<T: Serialize + ?Sized>(
        &self,
        name: &str,
        payload: &T,
    ) -> Result<EventSent, WfError> {
        self.app.send_event(self.id, name, payload)
    }

    /// Its current status.
    ///
    /// # Errors
    ///
    /// [`WfError::Store`] when the store cannot read it (for example, it does not exist).
    pub fn status(&self) -> Result<Status, WfError> {
        Ok(self.app.store().invocation(self.id)?.status())
    }

    /// Its stored record (status, attempts, identity, timings).
    ///
    /// # Errors
    ///
    /// [`WfError::Store`] when the store cannot read it (for example, it does not exist).
    pub fn record(&self) -> Result<InvocationRecord, WfError> {
        Ok(self.app.store().invocation(self.id)?)
    }

    /// Blocks until the invocation is final and returns its result, or its failure as
    /// [`WfError::Failed`]. Needs a worker running somewhere (or `app.run_until_idle()`).
    ///
    /// # Errors
    ///
    /// [`WfError::Failed`] with the stored failure; [`WfError::Cancelled`] for a cancelled
    /// invocation; [`WfError::NonDeterminism`] for an invocation whose replay diverged; [`WfError::Codec`] when the result does not decode as
    /// `R`; [`WfError::Store`] when the store fails or the invocation does not exist.
    pub fn result(&self) -> Result<R, WfError> {
        loop {
            if let Some(r) = self
                .app
                .store()
                .wait_final(self.id, Duration::from_secs(3600))?
            {
                return outcome(r);
            }
        }
    }

    /// Like [`Invocation::result`], giving up with [`WfError::Timeout`] after `timeout`.
    ///
    /// # Errors
    ///
    /// [`WfError::Timeout`] when it is not final in time; otherwise as [`Invocation::result`].
    pub fn result_timeout(&self, timeout: Duration) -> Result<R, WfError> {
        let start = Instant::now();
        match self.app.store().wait_final(self.id, timeout)? {
            Some(r) => outcome(r),
            None => Err(WfError::Timeout {
                invocation: self.id,
                waited: start.elapsed(),
                progress: self.progress()?,
            }),
        }
    }

    /// Where the invocation stands, in words: what it waits for while unfinished. A pending
    /// invocation waits for a worker that runs its task; when this app does not register that
    /// task, the text says so (a partial deploy, a renamed task: work no worker can run stays
    /// pending, it is never failed).
    ///
    /// ```
    /// use wf_runtime::{App, Invocation, TaskContext, TaskError};
    ///
    /// let app = App::builder().memory().build()?;
    /// let ship = app.task("ship", |_: &TaskContext, (): ()| -> Result<(), TaskError> { Ok(()) })?;
    /// let inv = ship.call(&app, ())?;
    /// assert_eq!(inv.progress()?, "pending: waiting for a worker that runs task 'ship'");
    ///
    /// // Seen from an app of the same store that does not register the task:
    /// let other = App::builder().store(app.store().clone()).build()?;
    /// let seen = Invocation::<()>::attach(&other, inv.id()).progress()?;
    /// assert!(seen.contains("this app does not register it"));
    /// # Ok::<(), wf_runtime::WfError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`WfError::Store`] when the store cannot read the invocation.
    pub fn progress(&self) -> Result<String, WfError> {
        let record = self.app.store().invocation(self.id)?;
        let event = match record.state.status {
            Status::Waiting => self.app.store().events(self.id)?.waiting_for,
            _ => None,
        };
        Ok(progress_of(&self.app, &record, event.as_deref()))
    }
}

/// What a waiting invocation waits for, in words: children, an event, a timer.
fn waiting_for(record: &InvocationRecord, event: Option<&str>) -> String {
    let state = &record.state;
    let mut parts = Vec::new();
    if !state.waiting_on.is_empty() {
        parts.push(format!(
            "{} child invocation(s) to finish",
            state.waiting_on.len()
        ));
    }
    if let Some(name) = event {
        parts.push(format!("event '{name}'"));
    }
    if let Some(at) = state.not_before {
        match time::OffsetDateTime::from_unix_timestamp_nanos(at.as_nanos()) {
            Ok(t) => parts.push(format!("its timer at {t}")),
            Err(_) => parts.push(format!("its timer at {} ms since the epoch", at.0)),
        }
    }
    match parts.is_empty() {
        true => "waiting".to_owned(),
        false => format!("waiting for {}", parts.join(", or ")),
    }
}

/// Where `record` stands, in words, as `app` sees it (`event`: the event it waits for).
fn progress_of(app: &App, record: &InvocationRecord, event: Option<&str>) -> String {
    let state = &record.state;
    let task = &record.spec.task;
    match state.status {
        Status::Pending | Status::Registered if state.not_before.is_some() => format!(
            "pending: deferred until {} ms since the epoch, then waiting for a worker that runs \
             task '{task}'",
            state.not_before.map_or(0, |t| t.0)
        ),
        Status::Pending | Status::Registered if app.registered(task).is_none() => format!(
            "pending: waiting for a worker that runs task '{task}'; this app does not register \
             it, so start a worker of an app that does"
        ),
        Status::Pending | Status::Registered => {
            format!("pending: waiting for a worker that runs task '{task}'")
        }
        Status::Running => match &state.lease {
            Some(lease) => format!(
                "running on worker '{}' (attempt {})",
                lease.worker, state.attempts
            ),
            None => format!("running (attempt {})", state.attempts),
        },
        Status::Waiting => waiting_for(record, event),
        Status::Retry => format!(
            "waiting to retry after failed attempt {}{}",
            state.attempts,
            state
                .error
                .as_ref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        ),
        Status::Success | Status::Failed | Status::Cancelled => {
            format!("finished: {}", state.status)
        }
    }
}

fn outcome<R: DeserializeOwned>(r: InvocationRecord) -> Result<R, WfError> {
    let id = r.id();
    match (r.state.status, r.state.result, r.state.error) {
        (Status::Success, Some(bytes), _) => Ok(decode(&bytes)?),
        (Status::Cancelled, _, error) => Err(WfError::Cancelled {
            invocation: id,
            reason: error.map_or_else(|| "cancelled".to_owned(), |e| e.message),
        }),
        (
            _,
            _,
            Some(Failure {
                non_determinism: Some(nd),
                ..
            }),
        ) => Err(WfError::NonDeterminism(*nd)),
        (_, _, Some(failure)) => Err(WfError::Failed {
            invocation: id,
            failure,
        }),
        (status, _, None) => Err(WfError::Failed {
            invocation: id,
            failure: Failure::new(
                FailureKind::Task,
                format!("finished as {status} without a result"),
            ),
        }),
    }
}

impl<R> fmt::Debug for Invocation<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Invocation").field("id", &self.id).finish()
    }
}

impl<R> Clone for Invocation<R> {
    fn clone(&self) -> Self {
        Self {
            id: self.id,
            app: self.app.clone(),
            _result: PhantomData,
        }
    }
}
