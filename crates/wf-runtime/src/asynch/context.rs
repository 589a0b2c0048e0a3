//! What an async body receives: [`AsyncTaskContext`], and its workflow view [`AsyncWorkflow`]
//! whose waiting operations are futures.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::rc::Rc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use wf_core::{Replay, Timestamp};

use super::park::{Parking, join_all};
use crate::context::TaskContext;
use crate::error::WfError;
use crate::handle::ChildHandle;
use crate::task::Task;
use crate::waits::decode_payload;
use crate::workflow::WorkflowContext;

/// The context of an async body: what a [`TaskContext`] tells (it derefs to one), and
/// [`AsyncTaskContext::wf`], the workflow operations with futures for the waiting ones. Cheap
/// to clone; not `Send` (a body runs on one thread).
#[derive(Clone)]
pub struct AsyncTaskContext {
    inner: Rc<TaskContext>,
    parking: Option<Parking>,
}

impl fmt::Debug for AsyncTaskContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncTaskContext")
            .field("invocation", &self.inner.invocation_id())
            .field("parks", &self.parking.is_some())
            .finish()
    }
}

impl AsyncTaskContext {
    pub(crate) fn new(inner: Rc<TaskContext>, parking: Option<Parking>) -> Self {
        Self { inner, parking }
    }

    /// The workflow context, its waiting operations as futures. See [`AsyncWorkflow`].
    pub fn wf(&self) -> AsyncWorkflow<'_> {
        AsyncWorkflow {
            wf: self.inner.wf(),
            parking: self.parking.as_ref(),
        }
    }

    /// Whether this execution's waits may park the body in memory (it runs on an async
    /// worker) rather than suspend it to be replayed.
    pub fn parks(&self) -> bool {
        self.parking.is_some()
    }
}

impl Deref for AsyncTaskContext {
    type Target = TaskContext;

    fn deref(&self) -> &TaskContext {
        &self.inner
    }
}

/// The workflow context of an async body (`ctx.wf()`). The deterministic operations and data
/// are the [`WorkflowContext`]'s own, as plain calls (it derefs to one): `uuid`, `random`,
/// `utc_now`, `get_data`, `set_data`, `start_task`, `patched`, …. The waiting operations are
/// futures: [`AsyncWorkflow::execute_task`], [`AsyncWorkflow::join`],
/// [`AsyncWorkflow::join_all`], and the durable timers and events.
///
/// Replay rules: await these futures one at a time, in an order that depends only on the
/// body's arguments and what the workflow context returned. Never race one against a future
/// the journal does not know (`tokio::time::sleep`, a socket) with `select!`: which side won
/// is not recorded, so a replay could take the other branch. See `docs/guide/async.md`.
#[derive(Clone, Copy)]
pub struct AsyncWorkflow<'a> {
    wf: &'a WorkflowContext,
    parking: Option<&'a Parking>,
}

impl fmt::Debug for AsyncWorkflow<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncWorkflow")
            .field("identity", self.wf.identity())
            .finish()
    }
}

impl Deref for AsyncWorkflow<'_> {
    type Target = WorkflowContext;

    fn deref(&self) -> &WorkflowContext {
        self.wf
    }
}

impl AsyncWorkflow<'_> {
    /// Runs `task` (sync or async) as a child and returns its result; on replay the recorded
    /// result, without running it again. On an async worker the body stays parked in memory
    /// while the child runs and resumes when the child's commit lands; elsewhere it behaves as
    /// [`WorkflowContext::execute_task`].
    ///
    /// # Errors
    ///
    /// As [`WorkflowContext::execute_task`]: [`WfError::Suspended`] when the body must be
    /// suspended after all (propagate it with `?`), [`WfError::ChildFailed`], ….
    pub async fn execute_task<A, R>(&self, task: &Task<A, R>, args: A) -> Result<R, WfError>
    where
        A: Serialize + 'static,
        R: DeserializeOwned + 'static,
    {
        let handle = self.wf.start_task(task, args)?;
        self.join(&handle).await
    }

    /// Waits for one child. See [`AsyncWorkflow::join_all`].
    ///
    /// # Errors
    ///
    /// As [`WorkflowContext::join`].
    pub async fn join<R: DeserializeOwned>(
        &self,
        handle: impl Borrow<ChildHandle<R>>,
    ) -> Result<R, WfError> {
        let mut results = self.join_all(std::slice::from_ref(handle.borrow())).await?;
        results
            .pop()
            .ok_or_else(|| WfError::Usage("join returned no result".into()))
    }

    /// Waits for all `handles` (started with `start_task`, so they run in parallel); their
    /// results in order, or the first child failure. Parks on an async worker; elsewhere as
    /// [`WorkflowContext::join_all`].
    ///
    /// # Errors
    ///
    /// As [`WorkflowContext::join_all`].
    pub async fn join_all<R: DeserializeOwned>(
        &self,
        handles: impl AsRef<[ChildHandle<R>]>,
    ) -> Result<Vec<R>, WfError> {
        join_all(self.wf, self.parking, handles.as_ref()).await
    }

    /// A durable sleep: [`WorkflowContext::sleep`] as a future. The wake-up time is journaled;
    /// on an async worker a timer due within a minute parks the body until it fires, a later
    /// one suspends it (replayed when it fires); elsewhere it suspends.
    ///
    /// # Errors
    ///
    /// As [`WorkflowContext::sleep`].
    pub async fn sleep(&self, duration: Duration) -> Result<(), WfError> {
        let Some(parking) = self.parking else {
            return self.wf.sleep(duration);
        };
        self.wf.recorder().tell_cancellation()?;
        let now = self.wf.clock().now_utc();
        let at = self.wf.recorder().timer_after(now, duration)?;
        parking.wait_timer(self.wf, at).await
    }

    /// [`WorkflowContext::sleep_until`] as a future; parks as [`AsyncWorkflow::sleep`] does.
    ///
    /// # Errors
    ///
    /// As [`WorkflowContext::sleep_until`].
    pub async fn sleep_until(&self, time: time::OffsetDateTime) -> Result<(), WfError> {
        let Some(parking) = self.parking else {
            return self.wf.sleep_until(time);
        };
        self.wf.recorder().tell_cancellation()?;
        let at = Timestamp::ceil_from_nanos(time.unix_timestamp_nanos());
        let at = self.wf.recorder().timer_at(at)?;
        parking.wait_timer(self.wf, at).await
    }

    /// [`WorkflowContext::wait_event`] as a future. On an async worker the body parks until the
    /// event arrives (an event sent from this process wakes it at once, one from another within
    /// a quarter second), for at most a minute; then, and elsewhere, it suspends until the event
    /// arrives.
    ///
    /// # Errors
    ///
    /// As [`WorkflowContext::wait_event`].
    pub async fn wait_event<T: DeserializeOwned>(&self, name: &str) -> Result<T, WfError> {
        let Some(parking) = self.parking else {
            return self.wf.wait_event(name);
        };
        self.wf.recorder().tell_cancellation()?;
        let recorded = self.wf.recorder().event(name)?;
        let event = match recorded {
            Replay::Recorded(event) => event,
            Replay::Live => {
                self.wf.recorder().go_live()?;
                parking.wait_event(self.wf, name).await?
            }
        };
        decode_payload(name, &event)
    }

    /// [`WorkflowContext::wait_event_timeout`] as a future (suspends, does not park).
    ///
    /// # Errors
    ///
    /// As [`WorkflowContext::wait_event_timeout`].
    pub async fn wait_event_timeout<T: DeserializeOwned>(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<T, WfError> {
        self.wf.wait_event_timeout(name, timeout)
    }

    /// [`WorkflowContext::join_timeout`] as a future (suspends, does not park).
    ///
    /// # Errors
    ///
    /// As [`WorkflowContext::join_timeout`].
    pub async fn join_timeout<R: DeserializeOwned>(
        &self,
        handle: impl Borrow<ChildHandle<R>>,
        timeout: Duration,
    ) -> Result<R, WfError> {
        self.wf.join_timeout(handle, timeout)
    }

    /// [`WorkflowContext::join_all_timeout`] as a future (suspends, does not park).
    ///
    /// # Errors
    ///
    /// As [`WorkflowContext::join_all_timeout`].
    pub async fn join_all_timeout<R: DeserializeOwned>(
        &self,
        handles: impl AsRef<[ChildHandle<R>]>,
        timeout: Duration,
    ) -> Result<Vec<R>, WfError> {
        self.wf.join_all_timeout(handles, timeout)
    }
}
