//! Durable time, external events and deadlines: the waiting operations of the workflow context.
//!
//! Each one is journaled and suspends the body without holding a worker:
//!
//! | operation | journal | suspends until |
//! |---|---|---|
//! | `sleep(d)`, `sleep_until(t)` | `Timer { at }`, then `TimerFired` | the timer fires |
//! | `join_timeout`, `join_all_timeout`, `execute_task_timeout` | `Timer { at }`, then the children's results or `TimerFired` | the children are final, or the timer fires |
//! | `wait_event(name)` | `Event { name, seq, payload }` | an event of that name arrives |
//! | `wait_event_timeout(name, d)` | `Timer { at }`, then `Event` or `TimerFired` | the event arrives, or the timer fires |
//!
//! The fire time is computed once, from the journaled clock, when the operation is first
//! reached; which of a race's sides won is recorded when it is decided, so a replay never
//! decides it again.

use std::borrow::Borrow;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use wf_core::{RecordedEvent, Replay, Timestamp};

use crate::error::WfError;
use crate::handle::ChildHandle;
use crate::task::Task;
use crate::workflow::{WorkflowContext, decode_outcomes};

impl WorkflowContext {
    /// Sleeps for `duration`, durably: the wake-up time is journaled when this point is first
    /// reached (from the journaled clock), the body suspends without holding a worker, the store
    /// makes the invocation runnable at that time — after a restart too — and every replay after
    /// it fired returns at once.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use wf_runtime::{App, TaskContext, TaskError};
    /// # let app = App::builder().memory().build()?;
    /// let reminder = app.task("reminder", |ctx: &TaskContext, (): ()| -> Result<(), TaskError> {
    ///     ctx.wf().sleep(Duration::from_secs(24 * 3600))?; // a day, without holding a worker
    ///     Ok(())
    /// })?;
    /// let inv = reminder.call(&app, ())?;
    /// app.run_until_idle()?; // skips the day: its clock is virtual
    /// inv.result()?;
    /// # Ok::<(), wf_runtime::WfError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`WfError::Suspended`] until the time has come (propagate it with `?`);
    /// [`WfError::NonDeterminism`] when the journal recorded something else here;
    /// [`WfError::Cancelled`] once, when the invocation's cancellation was requested.
    pub fn sleep(&self, duration: Duration) -> Result<(), WfError> {
        self.recorder().tell_cancellation()?;
        let now = self.clock().now_utc();
        let at = self.recorder().timer_after(now, duration)?;
        self.wait_for_timer(at)
    }

    /// Sleeps until `time` (at once if it has passed), durably. See [`WorkflowContext::sleep`].
    ///
    /// # Errors
    ///
    /// As [`WorkflowContext::sleep`].
    pub fn sleep_until(&self, time: time::OffsetDateTime) -> Result<(), WfError> {
        self.recorder().tell_cancellation()?;
        let at = Timestamp::ceil_from_nanos(time.unix_timestamp_nanos());
        let at = self.recorder().timer_at(at)?;
        self.wait_for_timer(at)
    }

    /// After a timer: returns once it fired (recorded), or suspends until it does.
    fn wait_for_timer(&self, at: Timestamp) -> Result<(), WfError> {
        let fired = self.recorder().timer_fired()?;
        if let Replay::Recorded(()) = fired {
            return Ok(());
        }
        self.recorder().go_live()?;
        if self.clock().now() >= at {
            return self.recorder().record_timer_fired();
        }
        Err(self.recorder().suspend(Vec::new(), Some(at), None))
    }

    /// Waits for one child for at most `timeout`. See [`WorkflowContext::join_all_timeout`].
    ///
    /// # Errors
    ///
    /// As [`WorkflowContext::join_all_timeout`].
    pub fn join_timeout<R: DeserializeOwned>(
        &self,
        handle: impl Borrow<ChildHandle<R>>,
        timeout: Duration,
    ) -> Result<R, WfError> {
        let mut results = self.join_all_timeout(std::slice::from_ref(handle.borrow()), timeout)?;
        results
            .pop()
            .ok_or_else(|| WfError::Usage("join returned no result".into()))
    }

    /// Waits for all `handles` for at most `timeout` (from when this point is first reached):
    /// their results in order, or [`WfError::TimedOut`] when the deadline passes first. The
    /// deadline is journaled, and so is which came first, so every replay agrees. The children
    /// are not stopped by a timeout: join them again (without a deadline, or with another) to
    /// wait for them.
    ///
    /// # Errors
    ///
    /// [`WfError::TimedOut`] when the deadline passed before every child was final; otherwise
    /// as [`WorkflowContext::join_all`].
    pub fn join_all_timeout<R: DeserializeOwned>(
        &self,
        handles: impl AsRef<[ChildHandle<R>]>,
        timeout: Duration,
    ) -> Result<Vec<R>, WfError> {
        let handles = handles.as_ref();
        self.check_owned(handles)?;
        self.recorder().tell_cancellation()?;
        let Some(first) = handles.first() else {
            return Ok(Vec::new());
        };
        let now = self.clock().now_utc();
        let at = self.recorder().timer_after(now, timeout)?;
        let timed_out = || WfError::TimedOut {
            deadline: at,
            waiting_for: format!("{} child invocation(s)", handles.len()),
        };
        let raced = self.recorder().child_result_or_timeout(first.id())?;
        let outcomes = match raced {
            Replay::Recorded(None) => return Err(timed_out()),
            Replay::Recorded(Some(outcome)) => {
                // The children won the race; every result was recorded with the first.
                let mut outcomes = vec![outcome];
                outcomes.extend(self.recorded_outcomes(&handles[1..])?);
                if outcomes.len() < handles.len() {
                    let rest = &handles[outcomes.len()..];
                    match self.look_up_outcomes(rest)? {
                        Ok(more) => outcomes.extend(more),
                        Err(unfinished) => {
                            return Err(self.recorder().suspend(unfinished, None, None));
                        }
                    }
                }
                outcomes
            }
            Replay::Live => match self.look_up_outcomes(handles)? {
                Ok(outcomes) => outcomes,
                Err(_) if self.clock().now() >= at => {
                    self.recorder().record_timer_fired()?;
                    return Err(timed_out());
                }
                Err(unfinished) => {
                    return Err(self.recorder().suspend(unfinished, Some(at), None));
                }
            },
        };
        decode_outcomes(handles, outcomes)
    }

    /// Runs `task` as a child and waits for its result for at most `timeout`:
    /// [`WorkflowContext::start_task`], then [`WorkflowContext::join_timeout`].
    ///
    /// # Errors
    ///
    /// As [`WorkflowContext::start_task`] and [`WorkflowContext::join_all_timeout`].
    pub fn execute_task_timeout<A, R>(
        &self,
        task: &Task<A, R>,
        args: A,
        timeout: Duration,
    ) -> Result<R, WfError>
    where
        A: Serialize + 'static,
        R: DeserializeOwned + 'static,
    {
        let handle = self.start_task(task, args)?;
        self.join_timeout(&handle, timeout)
    }

    /// Waits for an external event named `name` sent to this invocation
    /// (`App::send_event`, `wf send-event`) and returns its payload as a `T` (payloads are
    /// JSON). Events are consumed in arrival order, each once: one sent before this point was
    /// reached is buffered and taken at once; otherwise the body suspends, holding no worker,
    /// until one arrives. The payload is journaled (and the event marked consumed in the same
    /// commit), so every replay returns it again.
    ///
    /// ```
    /// # use wf_runtime::{App, TaskContext, TaskError};
    /// # let app = App::builder().memory().build()?;
    /// let expense = app.task("expense", |ctx: &TaskContext, cents: u64| -> Result<String, TaskError> {
    ///     let approved: bool = ctx.wf().wait_event("approve")?;
    ///     Ok(if approved { format!("paid {cents}") } else { "refused".into() })
    /// })?;
    /// let inv = expense.call(&app, 1200)?;
    /// app.run_until_idle()?; // the body suspends, waiting for the event
    /// app.send_event(inv.id(), "approve", &true)?; // from anywhere: a web hook, `wf send-event`
    /// app.run_until_idle()?;
    /// assert_eq!(inv.result()?, "paid 1200");
    /// # Ok::<(), wf_runtime::WfError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`WfError::Suspended`] until an event arrives; [`WfError::EventPayload`] when its payload
    /// does not decode as `T`; [`WfError::NonDeterminism`] when the journal recorded something
    /// else here; [`WfError::Store`] when the store fails; [`WfError::Cancelled`] once, when the
    /// invocation's cancellation was requested.
    pub fn wait_event<T: DeserializeOwned>(&self, name: &str) -> Result<T, WfError> {
        self.recorder().tell_cancellation()?;
        let recorded = self.recorder().event(name)?;
        let event = match recorded {
            Replay::Recorded(event) => event,
            Replay::Live => match self.take_event(name)? {
                Some(event) => event,
                None => return Err(self.recorder().suspend(Vec::new(), None, Some(name))),
            },
        };
        decode_payload(name, &event)
    }

    /// Waits for an event named `name` for at most `timeout`: its payload, or
    /// [`WfError::TimedOut`] when the deadline passes first (journaled, so replays agree). See
    /// [`WorkflowContext::wait_event`].
    ///
    /// # Errors
    ///
    /// [`WfError::TimedOut`] when no event came in time; otherwise as
    /// [`WorkflowContext::wait_event`].
    pub fn wait_event_timeout<T: DeserializeOwned>(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<T, WfError> {
        self.recorder().tell_cancellation()?;
        let now = self.clock().now_utc();
        let at = self.recorder().timer_after(now, timeout)?;
        let timed_out = || WfError::TimedOut {
            deadline: at,
            waiting_for: format!("event '{name}'"),
        };
        let raced = self.recorder().event_or_timeout(name)?;
        let event = match raced {
            Replay::Recorded(Some(event)) => event,
            Replay::Recorded(None) => return Err(timed_out()),
            Replay::Live => match self.take_event(name)? {
                Some(event) => event,
                None if self.clock().now() >= at => {
                    self.recorder().record_timer_fired()?;
                    return Err(timed_out());
                }
                None => return Err(self.recorder().suspend(Vec::new(), Some(at), Some(name))),
            },
        };
        decode_payload(name, &event)
    }

    /// Past the journal: the oldest unconsumed event named `name` (not consumed earlier in this
    /// execution either), consumed and journaled; `None` when there is none.
    pub(crate) fn take_event(&self, name: &str) -> Result<Option<RecordedEvent>, WfError> {
        self.recorder().go_live()?;
        let inbox = self
            .app()
            .store()
            .events(self.invocation())
            .map_err(|e| self.store_failed(e))?;
        let found = {
            let recorder = self.recorder();
            let taken = recorder.consumed();
            inbox
                .unconsumed()
                .find(|e| e.name == name && !taken.contains(&e.seq))
                .map(|e| RecordedEvent {
                    seq: e.seq,
                    payload: e.payload.clone(),
                })
        };
        found
            .map(|event| self.recorder().consume_event(name, event))
            .transpose()
    }
}

/// An event's payload, decoded from JSON.
pub(crate) fn decode_payload<T: DeserializeOwned>(
    name: &str,
    event: &RecordedEvent,
) -> Result<T, WfError> {
    serde_json::from_slice(&event.payload).map_err(|e| WfError::EventPayload {
        name: name.to_owned(),
        message: e.to_string(),
    })
}
