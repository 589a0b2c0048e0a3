//! `Invocation<R>`: a caller's handle on one call.

use std::fmt;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use wf_core::{
    CallId, Failure, FailureKind, InvocationId, Status, Timestamp, WorkflowIdentity, decode, encode,
};
use wf_store::{CancelReport, EventSent, InvocationRecord, NewInvocation, StoreError, Submitted};

use crate::app::App;
use crate::clock;
use crate::error::WfError;
use crate::ids::fresh_invocation_id;
use crate::task::Task;

/// A call of a task from outside any task, typed by its result.
pub struct Invocation<R> {
    id: InvocationId,
    app: App,
    created: bool,
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
        self.submit(app, fresh_invocation_id(), &args, None)
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
        self.submit(app, fresh_invocation_id(), &args, Some(at))
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
        self.submit(app, fresh_invocation_id(), &args, Some(at))
    }

    /// Calls the task once per item of `args`, each call a new workflow as with [`Task::call`],
    /// and submits them all in **one** store operation ([`wf_store::StoreWork::submit_many`]:
    /// one log record and one fsync on the file store) instead of one per call. Returns the
    /// invocations in the order of `args`.
    ///
    /// All or nothing: if the store refuses or fails the batch, none of it is submitted.
    ///
    /// ```
    /// use wf_runtime::{App, TaskContext, TaskError};
    ///
    /// let app = App::builder().memory().build()?;
    /// let square = app.task("square", |_: &TaskContext, n: u64| -> Result<u64, TaskError> { Ok(n * n) })?;
    /// let calls = square.call_many(&app, 1..=3)?;
    /// app.run_until_idle()?;
    /// let results: Vec<u64> = calls.iter().map(|c| c.result()).collect::<Result<_, _>>()?;
    /// assert_eq!(results, [1, 4, 9]);
    /// # Ok::<(), wf_runtime::WfError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Task::call`]; [`WfError::Store`] with `StoreError::TooLarge` for a batch over the
    /// store's record limit (`wf_store::limits::MAX_RECORD_BYTES` encoded): split it.
    pub fn call_many(
        &self,
        app: &App,
        args: impl IntoIterator<Item = A>,
    ) -> Result<Vec<Invocation<R>>, WfError> {
        self.check_caller(app)?;
        let batch = args
            .into_iter()
            .map(|a| self.new_root(fresh_invocation_id(), &a))
            .collect::<Result<Vec<_>, _>>()?;
        let ids: Vec<InvocationId> = batch.iter().map(|i| i.id).collect();
        let answers = app.store().submit_many(batch, clock::now())?;
        Ok(ids
            .into_iter()
            .zip(answers)
            .map(|(id, submitted)| Invocation {
                created: submitted == Submitted::Created,
                ..Invocation::attach(app, id)
            })
            .collect())
    }

    /// Calls the task at most once per `key`: an idempotent start. The invocation's id derives
    /// from (app id, task, key) ([`InvocationId::keyed`]), so every call with the same key —
    /// from this process or another one sharing the store, now or after a restart — returns the
    /// same invocation, and only the first stores and queues it ([`Invocation::was_created`]
    /// tells which one this was). Use a key that names the work in your domain: an order number,
    /// a batch date, a request id.
    ///
    /// ```
    /// use wf_runtime::{App, TaskContext, TaskError, WfError};
    ///
    /// let app = App::builder().app_id("shop").memory().build()?;
    /// let ship = app.task("ship", |_: &TaskContext, order: u32| -> Result<String, TaskError> {
    ///     Ok(format!("parcel for order {order}"))
    /// })?;
    /// let first = ship.call_keyed(&app, "order-1042", 1042)?;
    /// let again = ship.call_keyed(&app, "order-1042", 1042)?; // a retry of the request
    /// assert_eq!(first.id(), again.id());
    /// assert!(first.was_created() && !again.was_created());
    ///
    /// // The same key with other arguments is a conflict, not a second start.
    /// let err = ship.call_keyed(&app, "order-1042", 7).unwrap_err();
    /// assert!(matches!(err, WfError::KeyConflict { existing, .. } if existing == first.id()));
    /// # Ok::<(), WfError>(())
    /// ```
    ///
    /// The key holds while the invocation is stored: once its workflow is purged, the same key
    /// starts anew. Like [`Task::call`], it is refused inside a task body.
    ///
    /// # Errors
    ///
    /// [`WfError::KeyConflict`] when the key already started an invocation with other arguments,
    /// and the errors of [`Task::call`].
    pub fn call_keyed(&self, app: &App, key: &str, args: A) -> Result<Invocation<R>, WfError> {
        let id = InvocationId::keyed(app.app_id(), &self.id, key);
        match self.submit(app, id, &args, None) {
            Err(WfError::Store(StoreError::Conflict(existing))) => Err(WfError::KeyConflict {
                task: self.id.clone(),
                key: key.to_owned(),
                existing,
            }),
            other => other,
        }
    }

    /// Submits a root invocation with id `id`, claimable from `not_before` (at once: `None`);
    /// idempotent by id.
    fn submit(
        &self,
        app: &App,
        id: InvocationId,
        args: &A,
        not_before: Option<Timestamp>,
    ) -> Result<Invocation<R>, WfError> {
        self.check_caller(app)?;
        let mut invocation = self.new_root(id, args)?;
        invocation.not_before = not_before;
        let submitted = app.store().submit(invocation, clock::now())?;
        Ok(Invocation {
            created: submitted == Submitted::Created,
            ..Invocation::attach(app, id)
        })
    }

    /// Refuses a top-level call from inside a body, or with a handle of another app.
    pub(crate) fn check_caller(&self, app: &App) -> Result<(), WfError> {
        if let Some(invocation) = app.body_in_progress() {
            return Err(WfError::CallInsideBody {
                task: self.id.clone(),
                invocation,
            });
        }
        app.check_handle(self)
    }

    /// A new root invocation `id` of this task with `args`: a workflow of its own.
    fn new_root(&self, id: InvocationId, args: &A) -> Result<NewInvocation, WfError> {
        let args = encode(args)?;
        Ok(NewInvocation {
            id,
            call: CallId::of(&self.id, &args),
            identity: WorkflowIdentity::derive(id, &self.id, self.force_new_workflow, None),
            task: self.id.clone(),
            args,
            parent: None,
            not_before: None,
            max_recoveries: self.max_recoveries,
        })
    }
}

impl<R: DeserializeOwned> Invocation<R> {
    /// A handle on an existing invocation (for example an id read from a log). The result type is
    /// the caller's promise; a mismatch shows as a decode error.
    pub fn attach(app: &App, id: InvocationId) -> Self {
        Self {
            id,
            app: app.clone(),
            created: false,
            _result: PhantomData,
        }
    }

    /// True when the call that returned this handle stored the invocation: always for
    /// [`Task::call`]; for [`Task::call_keyed`], only for the first call with its key. False
    /// for a handle from [`Invocation::attach`].
    pub fn was_created(&self) -> bool {
        self.created
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
    /// Not from inside a task body: a body waits for work through its workflow context
    /// (`execute_task`, `join`), which releases the worker while it waits.
    ///
    /// # Errors
    ///
    /// [`WfError::Failed`] with the stored failure; [`WfError::Cancelled`] for a cancelled
    /// invocation; [`WfError::NonDeterminism`] for an invocation whose replay diverged;
    /// [`WfError::Codec`] when the result does not decode as `R`; [`WfError::Store`] when the
    /// store fails or the invocation does not exist;
    /// [`WfError::WaitInsideBody`] from inside a task body (on the thread running it, or with the
    /// app a context handed out).
    pub fn result(&self) -> Result<R, WfError> {
        self.refuse_inside_body()?;
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
        self.refuse_inside_body()?;
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

    /// The app this handle waits in.
    #[cfg(feature = "tokio")]
    pub(crate) fn app(&self) -> &App {
        &self.app
    }

    /// Refuses a blocking wait from inside a task body.
    pub(crate) fn refuse_inside_body(&self) -> Result<(), WfError> {
        match self.app.body_in_progress() {
            Some(invocation) => Err(WfError::WaitInsideBody {
                awaited: self.id,
                invocation,
            }),
            None => Ok(()),
        }
    }

    /// Where the invocation stands, in words: what it waits for while unfinished. A pending
    /// invocation waits for a worker that runs its task; when this app does not register that
    /// task, the text says so (a partial deploy, a renamed task: work no worker can run stays
    /// pending, it is never failed). A waiting invocation says where the first children it
    /// waits on stand, so a workflow stalled by a child no worker runs shows it at its root.
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
        Ok(progress_of(&self.app, &record, true))
    }
}

/// Where `record` stands, in words, as `app` sees it; a waiting invocation describes the
/// children it waits on when `with_children` (one level: a tree is not walked).
fn progress_of(app: &App, record: &InvocationRecord, with_children: bool) -> String {
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
        Status::Waiting => format!(
            "{}{}",
            waiting_for(app, record),
            if with_children {
                children_progress(app, &state.waiting_on)
            } else {
                String::new()
            }
        ),
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

/// What a waiting invocation waits for, in words: children, an event, its timer.
fn waiting_for(app: &App, record: &InvocationRecord) -> String {
    let state = &record.state;
    let mut parts = Vec::new();
    if !state.waiting_on.is_empty() {
        parts.push(format!(
            "{} child invocation(s) to finish",
            state.waiting_on.len()
        ));
    }
    if let Some(name) = app
        .store()
        .events(record.id())
        .ok()
        .and_then(|inbox| inbox.waiting_for)
    {
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

/// How many of the children a waiting invocation waits on its progress describes.
const CHILDREN_DESCRIBED: usize = 3;

/// Where the first children a waiting invocation waits on stand (so a workflow stalled by a
/// child no worker runs says so), or nothing when the store cannot tell.
fn children_progress(app: &App, children: &[InvocationId]) -> String {
    let shown = &children[..children.len().min(CHILDREN_DESCRIBED)];
    let Ok(records) = app.store().invocations(shown) else {
        return String::new();
    };
    let mut text: String = records
        .iter()
        .map(|r| format!("; child {} ({})", r.id(), progress_of(app, r, false)))
        .collect();
    if children.len() > shown.len() {
        text.push_str(&format!("; and {} more", children.len() - shown.len()));
    }
    text
}

/// The result of a final invocation, or its failure.
pub(crate) fn outcome<R: DeserializeOwned>(r: InvocationRecord) -> Result<R, WfError> {
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
            created: self.created,
            _result: PhantomData,
        }
    }
}
