//! The workflow context: the seed's `WorkflowContext`, with durable replay.

use std::borrow::Borrow;
use std::cell::RefCell;
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;
use wf_core::{
    CallId, ChildOutcome, InvocationId, TaskId, WorkflowIdentity, check_read, check_write, decode,
    encode,
};
use wf_store::{NewInvocation, StoreError};

use crate::app::App;
use crate::deterministic::DeterministicExecutor;
use crate::error::WfError;
use crate::task::Task;

/// What a body buffered for its commit.
#[derive(Default)]
pub(crate) struct Buffers {
    pub data: Vec<(String, Vec<u8>)>,
    pub children: Vec<NewInvocation>,
    /// The first interruption: what was buffered after it is not committed.
    pub cut: Option<Cut>,
}

/// Where a body's execution was interrupted, and why. Whatever the body does afterwards (even
/// if it swallows the error and returns a result) does not count.
pub(crate) struct Cut {
    pub why: Interruption,
    pub data_len: usize,
    pub children_len: usize,
}

/// Why an execution stops counting before its body returns.
pub(crate) enum Interruption {
    /// Waiting on unfinished children: the invocation becomes waiting.
    Suspended { on: Vec<InvocationId> },
    /// A store read failed: the invocation runs again later, replaying up to this point.
    StoreFailed { error: String },
}

/// A started child: join it with [`WorkflowContext::join`] or [`WorkflowContext::join_all`].
#[derive(Debug)]
pub struct ChildHandle<R> {
    child: InvocationId,
    task: TaskId,
    /// Started (and so not yet submitted) in this execution.
    fresh: bool,
    _result: PhantomData<fn() -> R>,
}

impl<R> ChildHandle<R> {
    /// The child's invocation id.
    pub fn id(&self) -> InvocationId {
        self.child
    }

    /// The child's task.
    pub fn task(&self) -> &TaskId {
        &self.task
    }
}

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
pub struct WorkflowContext {
    app: App,
    invocation: InvocationId,
    identity: WorkflowIdentity,
    det: DeterministicExecutor,
    buffers: RefCell<Buffers>,
}

impl WorkflowContext {
    pub(crate) fn new(
        app: App,
        invocation: InvocationId,
        identity: WorkflowIdentity,
        det: DeterministicExecutor,
    ) -> Self {
        Self {
            app,
            invocation,
            identity,
            det,
            buffers: RefCell::new(Buffers::default()),
        }
    }

    /// This invocation's workflow identity.
    pub fn identity(&self) -> &WorkflowIdentity {
        &self.identity
    }

    /// The app the task runs in.
    pub fn app(&self) -> &App {
        &self.app
    }

    /// The replay executor of this invocation.
    pub fn deterministic(&self) -> &DeterministicExecutor {
        &self.det
    }

    /// A number in [0, 1), the same on every replay. See [`DeterministicExecutor::random`].
    pub fn random(&self) -> f64 {
        self.det.random()
    }

    /// The time this point was first executed, the same on every replay.
    pub fn utc_now(&self) -> time::OffsetDateTime {
        self.det.utc_now()
    }

    /// A UUID, the same on every replay.
    pub fn uuid(&self) -> uuid::Uuid {
        self.det.uuid()
    }

    /// Reads `key` from the workflow's data; any task of the workflow may. The value read is
    /// journaled, so a replay sees what the first run saw. Within one execution, the root reads
    /// its own writes.
    pub fn get_data<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, WfError> {
        check_read(self.invocation, &self.identity, self.identity.workflow_id)?;
        let replayed = self.det.with_cursor(|c| c.replay_data_get(key))?;
        let bytes = match replayed {
            Some(v) => v,
            None => {
                let buffered = self
                    .buffers
                    .borrow()
                    .data
                    .iter()
                    .rev()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.clone());
                let value = match buffered {
                    Some(v) => Some(v),
                    None => self
                        .app
                        .store()
                        .get_data(self.identity.workflow_id, key)
                        .map_err(|e| self.store_failed(e))?,
                };
                self.det.with_cursor(|c| {
                    c.record_data_get(key, value.clone());
                    Ok(())
                })?;
                value
            }
        };
        bytes.map(|b| decode(&b)).transpose().map_err(WfError::from)
    }

    /// Reads `key`, or `default` when it is not set.
    pub fn get_data_or<T: DeserializeOwned>(&self, key: &str, default: T) -> Result<T, WfError> {
        Ok(self.get_data(key)?.unwrap_or(default))
    }

    /// Writes `key` in the workflow's data. Only the workflow's root invocation may; any other
    /// task gets [`WfError::Access`] and nothing is written. The write is committed with the
    /// invocation's next status change.
    pub fn set_data<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<(), WfError> {
        check_write(self.invocation, &self.identity, self.identity.workflow_id)?;
        self.det.check()?;
        let bytes = encode(value)?;
        self.buffers.borrow_mut().data.push((key.to_owned(), bytes));
        Ok(())
    }

    /// Runs `task` as a child and returns its result. On replay the recorded result is returned
    /// and the child is not executed again. If the child is not finished yet, this returns
    /// [`WfError::Suspended`]: propagate it with `?`; the worker is released and the body replays
    /// to this point when the child finishes. A failed child is [`WfError::ChildFailed`].
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
    /// a replay returns the same child instead of starting another.
    pub fn start_task<A, R>(&self, task: &Task<A, R>, args: A) -> Result<ChildHandle<R>, WfError>
    where
        A: Serialize + 'static,
        R: 'static,
    {
        self.app.check_handle(task)?;
        let encoded = encode(&args)?;
        let call = CallId::of(&task.id, &encoded);
        let start = self.det.with_cursor(|c| c.child_start(&task.id, call))?;
        if !start.replayed {
            let identity = WorkflowIdentity::derive(
                start.child,
                &task.id,
                task.force_new_workflow,
                Some(&self.identity),
            );
            self.buffers.borrow_mut().children.push(NewInvocation {
                id: start.child,
                task: task.id.clone(),
                call,
                args: encoded,
                identity,
                parent: Some(self.invocation),
                not_before: None,
                max_recoveries: task.max_recoveries,
            });
        }
        Ok(ChildHandle {
            child: start.child,
            task: task.id.clone(),
            fresh: !start.replayed,
            _result: PhantomData,
        })
    }

    /// Waits for one child. See [`WorkflowContext::execute_task`]. Takes the handle by
    /// reference or by value.
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
    pub fn join_all<R: DeserializeOwned>(
        &self,
        handles: impl AsRef<[ChildHandle<R>]>,
    ) -> Result<Vec<R>, WfError> {
        let handles = handles.as_ref();
        self.det.check()?;
        let mut outcomes = Vec::with_capacity(handles.len());
        // Replay what the journal recorded, in order.
        for h in handles {
            match self.det.with_cursor(|c| c.replay_child_result(h.child))? {
                Some(o) => outcomes.push(o),
                None => break,
            }
        }
        let rest = &handles[outcomes.len()..];
        if !rest.is_empty() {
            // Past the journal: children started in this execution are not even submitted yet;
            // the others are looked up in one round trip.
            let lookup: Vec<InvocationId> =
                rest.iter().filter(|h| !h.fresh).map(|h| h.child).collect();
            let records = if rest.iter().any(|h| h.fresh) {
                Vec::new()
            } else {
                self.app
                    .store()
                    .invocations(&lookup)
                    .map_err(|e| self.store_failed(e))?
            };
            let all_final =
                rest.iter().all(|h| !h.fresh) && records.iter().all(|r| r.status().is_final());
            if !all_final {
                let on: Vec<InvocationId> = rest.iter().map(|h| h.child).collect();
                return Err(self.suspend(on));
            }
            for (h, r) in rest.iter().zip(records) {
                let outcome = match (r.state.result, r.state.error) {
                    (Some(bytes), _) if r.state.status == wf_core::Status::Success => {
                        ChildOutcome::Success(bytes)
                    }
                    (_, Some(f)) => ChildOutcome::Failed(f),
                    _ => ChildOutcome::Failed(wf_core::Failure::new(
                        wf_core::FailureKind::Task,
                        "child failed without an error message",
                    )),
                };
                outcomes.push(
                    self.det
                        .with_cursor(|c| c.record_child_result(h.child, outcome))?,
                );
            }
        }
        handles
            .iter()
            .zip(outcomes)
            .map(|(h, o)| match o {
                ChildOutcome::Success(bytes) => decode(&bytes).map_err(WfError::from),
                ChildOutcome::Failed(failure) => Err(WfError::ChildFailed {
                    task: h.task.clone(),
                    child: h.child,
                    failure,
                }),
            })
            .collect()
    }

    fn suspend(&self, on: Vec<InvocationId>) -> WfError {
        let waiting_on = on.len();
        self.interrupt(Interruption::Suspended { on });
        WfError::Suspended { waiting_on }
    }

    /// A store read failed. A transient failure interrupts the execution (it runs again later
    /// from this point); any other is an ordinary error of the body.
    fn store_failed(&self, error: StoreError) -> WfError {
        if error.is_transient() {
            self.interrupt(Interruption::StoreFailed {
                error: error.to_string(),
            });
        }
        WfError::Store(error)
    }

    /// Records the first interruption and cuts the journal there.
    fn interrupt(&self, why: Interruption) {
        let mut b = self.buffers.borrow_mut();
        if b.cut.is_none() {
            self.det.mark_cut();
            b.cut = Some(Cut {
                why,
                data_len: b.data.len(),
                children_len: b.children.len(),
            });
        }
    }

    /// Hands the buffered work to the execution that commits it.
    pub(crate) fn finish(self) -> (DeterministicExecutor, Buffers) {
        (self.det, self.buffers.into_inner())
    }
}
