//! The workflow context (`ctx.wf()`): identity, workflow data, deterministic primitives,
//! durable child execution and versioning, recorded by the execution's [`Recorder`]. Durable
//! time, events and deadlines are in `waits`.

use std::borrow::Borrow;
use std::cell::{RefCell, RefMut};

use serde::Serialize;
use serde::de::DeserializeOwned;
use wf_core::{
    CallId, ChildOutcome, Failure, FailureKind, InvocationId, Replay, Status, WorkflowIdentity,
    check_read, check_write, decode, encode,
};
use wf_store::{InvocationRecord, NewInvocation, StoreError};

use crate::app::App;
use crate::clock::ExecClock;
use crate::error::WfError;
use crate::handle::ChildHandle;
use crate::inline::Inline;
use crate::recorder::Recorder;
use crate::task::Task;

/// Workflow capabilities of a running task: identity, workflow data, deterministic primitives
/// and durable child execution. Get it with `ctx.wf()` in any task body.
///
/// Everything it records is committed atomically with the invocation's status when the body
/// returns; a re-run (retry, recovery, wake-up after children finish) replays it.
///
/// ```
/// use wf_runtime::{App, TaskContext, TaskError};
///
/// let app = App::builder().memory().build()?;
/// let price = app.task("price", |_: &TaskContext, sku: String| -> Result<u64, TaskError> {
///     Ok(sku.len() as u64 * 100)
/// })?;
/// let p = price.clone();
/// let order = app.task("order", move |ctx: &TaskContext, sku: String| -> Result<String, TaskError> {
///     let wf = ctx.wf();
///     let order_id = wf.uuid();                 // same value on every replay
///     wf.set_data("order_id", &order_id)?;      // only the workflow's root may write
///     let cents = wf.execute_task(&p, sku)?;    // runs once; replays return the recorded result
///     Ok(format!("{order_id}: {cents}"))
/// })?;
/// let inv = order.call(&app, "book".to_string())?;
/// app.run_until_idle()?;
/// assert!(inv.result()?.ends_with(": 400"));
/// # Ok::<(), wf_runtime::WfError>(())
/// ```
#[derive(Debug)]
pub struct WorkflowContext {
    app: App,
    identity: WorkflowIdentity,
    recorder: RefCell<Recorder>,
    clock: ExecClock,
    /// Runs children inline (see `crate::inline`).
    inline: Inline,
}

/// The deterministic primitives of one execution, as `ctx.wf().deterministic()` returns them: a
/// read-only view of the execution's replay state plus the draws, which are the same on every
/// replay. The same methods exist on [`WorkflowContext`] itself.
#[derive(Debug, Clone, Copy)]
pub struct Deterministic<'a> {
    wf: &'a WorkflowContext,
}

impl Deterministic<'_> {
    /// A number in [0, 1), the same on every replay. See [`WorkflowContext::random`].
    pub fn random(&self) -> f64 {
        self.wf.random()
    }

    /// A UUID, the same on every replay. See [`WorkflowContext::uuid`].
    pub fn uuid(&self) -> uuid::Uuid {
        self.wf.uuid()
    }

    /// The time this point was first executed. See [`WorkflowContext::utc_now`].
    pub fn utc_now(&self) -> time::OffsetDateTime {
        self.wf.utc_now()
    }

    /// True while operations are answered from the journal. See
    /// [`WorkflowContext::is_replaying`].
    pub fn is_replaying(&self) -> bool {
        self.wf.is_replaying()
    }

    /// The next journal position. See [`WorkflowContext::position`].
    pub fn position(&self) -> u32 {
        self.wf.position()
    }
}

impl WorkflowContext {
    pub(crate) fn new(
        app: App,
        identity: WorkflowIdentity,
        recorder: Recorder,
        clock: ExecClock,
        inline: Inline,
    ) -> Self {
        Self {
            app,
            identity,
            recorder: RefCell::new(recorder),
            clock,
            inline,
        }
    }

    pub(crate) fn recorder(&self) -> RefMut<'_, Recorder> {
        self.recorder.borrow_mut()
    }

    pub(crate) fn invocation(&self) -> InvocationId {
        self.recorder.borrow().execution().invocation()
    }

    /// The execution's clock.
    pub(crate) fn clock(&self) -> ExecClock {
        self.clock
    }

    /// This invocation's workflow identity.
    pub fn identity(&self) -> &WorkflowIdentity {
        &self.identity
    }

    /// The app the task runs in. Starting work from a body goes through this context
    /// ([`WorkflowContext::execute_task`], [`WorkflowContext::start_task`]); a top-level
    /// `Task::call` with this app is refused with [`WfError::CallInsideBody`].
    pub fn app(&self) -> &App {
        &self.app
    }

    /// The deterministic primitives and replay state of this execution, as one read-only view
    /// ([`Deterministic`]); the same methods exist on the context itself. The recorder behind
    /// them is internal: the view can draw and observe, never rewind or edit the journal.
    pub fn deterministic(&self) -> Deterministic<'_> {
        Deterministic { wf: self }
    }

    /// True while operations are answered from the journal: this execution has not yet reached
    /// the point where the previous one stopped. Useful to skip logging on replay.
    pub fn is_replaying(&self) -> bool {
        self.recorder.borrow().is_replaying()
    }

    /// The journal position the next operation gets (0 for the first of the invocation).
    pub fn position(&self) -> u32 {
        self.recorder.borrow().position()
    }

    /// A number in [0, 1), the same on every replay.
    ///
    /// Infallible: if the journal recorded another operation here, the invocation fails with
    /// non-determinism when the body returns, whatever it returns.
    pub fn random(&self) -> f64 {
        self.recorder().random()
    }

    /// The time this point was first executed, the same on every replay; never earlier than a
    /// time this invocation saw before. Infallible like [`WorkflowContext::random`].
    pub fn utc_now(&self) -> time::OffsetDateTime {
        self.recorder().utc_now(self.clock.now_utc())
    }

    /// A UUID, the same on every replay. Infallible like [`WorkflowContext::random`].
    pub fn uuid(&self) -> uuid::Uuid {
        self.recorder().uuid()
    }

    /// Reads `key` from the workflow's data; any task of the workflow may. The value read is
    /// journaled, so a replay sees what the first run saw. Within one execution, the root reads
    /// its own writes.
    ///
    /// # Errors
    ///
    /// [`WfError::NonDeterminism`] when the journal recorded something else here;
    /// [`WfError::Codec`] when the value does not decode as `T`; [`WfError::Store`] when the
    /// store fails (a transient failure defers the execution: return the error with `?`);
    /// [`WfError::Suspended`] after this execution was suspended; [`WfError::Cancelled`] once,
    /// when the invocation's cancellation was requested.
    pub fn get_data<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, WfError> {
        check_read(self.invocation(), &self.identity, self.identity.workflow_id)?;
        self.recorder().tell_cancellation()?;
        let replayed = self.recorder().data_get(key)?;
        let bytes = match replayed {
            Replay::Recorded(value) => value,
            Replay::Live => {
                self.recorder().go_live()?;
                let written = self.recorder().written(key);
                let value = match written {
                    Some(v) => Some(v),
                    None => self
                        .app
                        .store()
                        .get_data(self.identity.workflow_id, key)
                        .map_err(|e| self.store_failed(e))?,
                };
                self.recorder().record_data_get(key, value)?
            }
        };
        bytes.map(|b| decode(&b)).transpose().map_err(WfError::from)
    }

    /// Reads `key`, or `default` when it is not set.
    ///
    /// # Errors
    ///
    /// As [`WorkflowContext::get_data`].
    pub fn get_data_or<T: DeserializeOwned>(&self, key: &str, default: T) -> Result<T, WfError> {
        Ok(self.get_data(key)?.unwrap_or(default))
    }

    /// Writes `key` in the workflow's data. Only the workflow's root invocation may; any other
    /// task gets [`WfError::Access`] and nothing is written. The write is committed with the
    /// invocation's next status change.
    ///
    /// # Errors
    ///
    /// [`WfError::Access`] from a task that is not its workflow's root; [`WfError::Codec`] when
    /// the value cannot be encoded; [`WfError::NonDeterminism`] or [`WfError::Suspended`] once
    /// this execution diverged or was suspended.
    pub fn set_data<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<(), WfError> {
        self.recorder().check_live()?;
        check_write(self.invocation(), &self.identity, self.identity.workflow_id)?;
        let bytes = encode(value)?;
        self.recorder().write(key, bytes)
    }

    /// Runs `task` as a child and returns its result. On replay the recorded result is returned
    /// and the child is not executed again. If the child is not finished yet, this returns
    /// [`WfError::Suspended`]: propagate it with `?`; the worker is released and the body replays
    /// to this point when the child finishes.
    ///
    /// # Errors
    ///
    /// [`WfError::Suspended`] while the child runs; [`WfError::ChildFailed`] when it failed
    /// (final for this invocation unless its `retry_if` asks for a retry); otherwise as
    /// [`WorkflowContext::start_task`] and [`WorkflowContext::join`].
    pub fn execute_task<A, R>(&self, task: &Task<A, R>, args: A) -> Result<R, WfError>
    where
        A: Serialize + 'static,
        R: DeserializeOwned + 'static,
    {
        let handle = self.start_task(task, args)?;
        self.join(&handle)
    }

    /// Starts `task` as a child without waiting, so several children can run in parallel on
    /// other workers; wait for them with [`WorkflowContext::join_all`]. The start is journaled:
    /// a replay returns the same child instead of starting another. The handle belongs to this
    /// execution: join it here, not in another invocation or a later execution.
    ///
    /// # Errors
    ///
    /// [`WfError::NonDeterminism`] when the journal recorded something else here (another task,
    /// other arguments, another operation); [`WfError::ForeignTask`] for a handle of another app;
    /// [`WfError::Codec`] when the arguments cannot be encoded; [`WfError::Suspended`] once this
    /// execution was suspended; [`WfError::Cancelled`] once, when the invocation's cancellation
    /// was requested.
    pub fn start_task<A, R>(&self, task: &Task<A, R>, args: A) -> Result<ChildHandle<R>, WfError>
    where
        A: Serialize + 'static,
        R: 'static,
    {
        self.recorder().tell_cancellation()?;
        self.app.check_handle(task)?;
        let encoded = encode(&args)?;
        let call = CallId::of(&task.id, &encoded);
        let parent = self.invocation();
        let child = self.recorder().start_child(&task.id, call, |child| {
            let identity = WorkflowIdentity::derive(
                child,
                &task.id,
                task.force_new_workflow,
                Some(&self.identity),
            );
            NewInvocation {
                id: child,
                task: task.id.clone(),
                call,
                args: encoded,
                identity,
                parent: Some(parent),
                not_before: None,
                max_recoveries: task.max_recoveries,
            }
        })?;
        Ok(self.recorder().execution().handle(child, task.id.clone()))
    }

    /// Waits for one child. See [`WorkflowContext::execute_task`]. Takes the handle by
    /// reference or by value.
    ///
    /// # Errors
    ///
    /// As [`WorkflowContext::join_all`].
    pub fn join<R: DeserializeOwned>(
        &self,
        handle: impl Borrow<ChildHandle<R>>,
    ) -> Result<R, WfError> {
        let mut results = self.join_all(std::slice::from_ref(handle.borrow()))?;
        results
            .pop()
            .ok_or_else(|| WfError::Usage("join returned no result".into()))
    }

    /// Waits for all `handles`; returns their results in order, or the first child failure (in
    /// handle order). Suspends until every one of them is final, so the body replays once per
    /// join, not once per child. Takes the handles as a slice, a `Vec` or an array, by
    /// reference or by value.
    ///
    /// The steps: check that this execution created every handle; take the outcomes the journal
    /// recorded, in order; look the others up (past the journal): all final, they are recorded;
    /// otherwise the execution suspends; decode the outcomes.
    ///
    /// # Errors
    ///
    /// [`WfError::Suspended`] while a child runs; [`WfError::ChildFailed`] for the first failed
    /// child; [`WfError::ForeignHandle`] / [`WfError::StaleHandle`] for a handle another
    /// invocation or an earlier execution created; [`WfError::NonDeterminism`] when the journal
    /// recorded something else here; [`WfError::Codec`] when a result does not decode as `R`;
    /// [`WfError::Store`] when the lookup fails; [`WfError::Cancelled`] once, when the
    /// invocation's cancellation was requested.
    pub fn join_all<R: DeserializeOwned>(
        &self,
        handles: impl AsRef<[ChildHandle<R>]>,
    ) -> Result<Vec<R>, WfError> {
        let handles = handles.as_ref();
        self.check_owned(handles)?;
        self.recorder().tell_cancellation()?;
        let mut outcomes = self.recorded_outcomes(handles)?;
        if outcomes.len() < handles.len() {
            outcomes.extend(self.observe_outcomes(&handles[outcomes.len()..])?);
        }
        decode_outcomes(handles, outcomes)
    }

    /// Join step 1: every handle was created by this execution.
    pub(crate) fn check_owned<R>(&self, handles: &[ChildHandle<R>]) -> Result<(), WfError> {
        let mut recorder = self.recorder();
        recorder.check_live()?;
        let execution = recorder.execution();
        handles.iter().try_for_each(|h| execution.check_owns(h))
    }

    /// Join step 2: the outcomes the journal recorded, in handle order, up to the first handle
    /// past the journal.
    pub(crate) fn recorded_outcomes<R>(
        &self,
        handles: &[ChildHandle<R>],
    ) -> Result<Vec<ChildOutcome>, WfError> {
        let mut outcomes = Vec::with_capacity(handles.len());
        for h in handles {
            match self.recorder().child_result(h.id())? {
                Replay::Recorded(outcome) => outcomes.push(outcome),
                Replay::Live => break,
            }
        }
        Ok(outcomes)
    }

    /// Join step 3, past the journal: the outcomes of `rest` once all are final, recorded; or
    /// a suspension on those that are not. A child this execution started is not even submitted
    /// yet; the others are looked up in one round trip. The execution waits only on children it
    /// submits or saw unfinished: a child already final is consumed, never waited for.
    pub(crate) fn observe_outcomes<R>(
        &self,
        rest: &[ChildHandle<R>],
    ) -> Result<Vec<ChildOutcome>, WfError> {
        if let [only] = rest
            && let Some(outcome) = self.run_inline(only)?
        {
            return Ok(vec![outcome]);
        }
        match self.look_up_outcomes(rest)? {
            Ok(outcomes) => Ok(outcomes),
            Err(unfinished) => Err(self.recorder().suspend(unfinished, None, None)),
        }
    }

    /// One child this execution started (`execute_task`) and has not submitted yet: run inline
    /// when possible (see `crate::inline`), its final outcome recorded; `None` otherwise.
    fn run_inline<R>(&self, only: &ChildHandle<R>) -> Result<Option<ChildOutcome>, WfError> {
        self.recorder().go_live()?;
        if !self.recorder().submits(only.id()) {
            return Ok(None);
        }
        match self
            .inline
            .run(&self.app, &self.recorder, only.id(), only.task())?
        {
            Some(outcome) => Ok(Some(
                self.recorder().record_child_result(only.id(), outcome)?,
            )),
            None => Ok(None),
        }
    }

    /// Past the journal: the outcomes of `rest` once all are final, recorded (`Ok`), or the
    /// children among them not final yet (`Err`, nothing recorded). A child this execution
    /// started is not even submitted yet; the others are looked up in one round trip.
    pub(crate) fn look_up_outcomes<R>(
        &self,
        rest: &[ChildHandle<R>],
    ) -> Result<Result<Vec<ChildOutcome>, Vec<InvocationId>>, WfError> {
        self.recorder().go_live()?;
        let ids: Vec<InvocationId> = rest.iter().map(ChildHandle::id).collect();
        if ids.iter().any(|c| self.recorder().submits(*c)) {
            return Ok(Err(ids));
        }
        let records = self
            .app
            .store()
            .invocations(&ids)
            .map_err(|e| self.store_failed(e))?;
        let unfinished: Vec<InvocationId> = records
            .iter()
            .filter(|r| !r.status().is_final())
            .map(InvocationRecord::id)
            .collect();
        if !unfinished.is_empty() {
            return Ok(Err(unfinished));
        }
        // `invocations` answers in the order asked.
        ids.iter()
            .zip(records)
            .map(|(child, r)| self.recorder().record_child_result(*child, outcome_of(r)))
            .collect::<Result<Vec<_>, _>>()
            .map(Ok)
    }

    /// `patched(change_id)`: whether this execution takes the new code's branch of a change
    /// made while invocations of the old code may be in flight. See
    /// `docs/guide/workflows.md`, "Changing a workflow's code".
    ///
    /// - Running past the recorded journal (new code, live): records a marker and returns
    ///   `true`.
    /// - Replaying, where the journal recorded this marker: returns `true` (the recorded run
    ///   took the new branch).
    /// - Replaying entries recorded without the marker: returns `false` and consumes nothing,
    ///   so the old branch replays the entries the old code recorded.
    ///
    /// ```
    /// # use wf_runtime::{App, TaskContext, TaskError};
    /// # let app = App::builder().memory().build()?;
    /// let flow = app.task("flow", |ctx: &TaskContext, (): ()| -> Result<u32, TaskError> {
    ///     let wf = ctx.wf();
    ///     if wf.patched("bonus-step") {
    ///         Ok(2) // the new code's branch
    ///     } else {
    ///         Ok(1) // what the old code did, for invocations recorded by it
    ///     }
    /// })?;
    /// let inv = flow.call(&app, ())?;
    /// app.run_until_idle()?;
    /// assert_eq!(inv.result()?, 2);
    /// # Ok::<(), wf_runtime::WfError>(())
    /// ```
    pub fn patched(&self, change_id: &str) -> bool {
        self.recorder().patched(change_id)
    }

    /// `deprecate_patch(change_id)`: the second stage of removing a patch, once no invocation
    /// recorded without its marker is in flight: the old branch is gone and the new code runs
    /// unconditionally. Journals recorded with the marker still replay (the marker is consumed
    /// where it was recorded); live it records the marker, so a rollback to the code with
    /// `patched` still replays. Remove the call once no journal recorded with the marker is in
    /// flight. Never a divergence by itself.
    pub fn deprecate_patch(&self, change_id: &str) {
        self.recorder().patched(change_id);
    }

    /// Whether this invocation's body has been told of its cancellation (an operation returned
    /// [`WfError::Cancelled`] in this execution or, replayed, an earlier one): its compensating
    /// steps are running. The same on every replay.
    pub fn is_cancelled(&self) -> bool {
        self.recorder.borrow().told()
    }

    /// A store read failed. A transient failure interrupts the execution (it runs again later
    /// from this point); any other is an ordinary error of the body.
    pub(crate) fn store_failed(&self, error: StoreError) -> WfError {
        if error.is_transient() {
            return self.recorder().store_failed(&error);
        }
        WfError::Store(error)
    }

    /// Hands the recorder to the execution that seals and commits it.
    pub(crate) fn into_recorder(self) -> Recorder {
        self.recorder.into_inner()
    }

    /// A workflow wait was dropped before it ended (see `Recorder::abandoned`).
    #[cfg(feature = "tokio")]
    pub(crate) fn abandoned(&self, what: &str) {
        match self.recorder.try_borrow_mut() {
            Ok(mut recorder) => recorder.abandoned(what),
            Err(_) => tracing::error!(
                what,
                "a workflow wait was dropped while the recorder was in use"
            ),
        }
    }

    /// Takes the recorder out, leaving a fresh one that nothing commits.
    #[cfg(feature = "tokio")]
    pub(crate) fn take_recorder(&self) -> Recorder {
        let invocation = self.invocation();
        self.recorder.replace(Recorder::new(invocation, Vec::new()))
    }
}

/// The results of `handles` from their `outcomes`, or the first child failure.
pub(crate) fn decode_outcomes<R: DeserializeOwned>(
    handles: &[ChildHandle<R>],
    outcomes: Vec<ChildOutcome>,
) -> Result<Vec<R>, WfError> {
    handles
        .iter()
        .zip(outcomes)
        .map(|(h, outcome)| match outcome {
            ChildOutcome::Success(bytes) => decode(&bytes).map_err(WfError::from),
            ChildOutcome::Failed(failure) => Err(WfError::ChildFailed {
                task: h.task().clone(),
                child: h.id(),
                failure,
            }),
        })
        .collect()
}

/// A final child's outcome as its parent records it.
fn outcome_of(record: InvocationRecord) -> ChildOutcome {
    match (record.state.status, record.state.result, record.state.error) {
        (Status::Success, Some(bytes), _) => ChildOutcome::Success(bytes),
        (_, _, Some(failure)) => ChildOutcome::Failed(failure),
        (status, _, None) => ChildOutcome::Failed(Failure::new(
            FailureKind::Task,
            format!("child finished as {status} without a result or an error"),
        )),
    }
}
