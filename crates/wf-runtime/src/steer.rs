//! Steering workflows from outside: sending events to invocations and cancelling workflow
//! trees.

use serde::Serialize;
use wf_core::InvocationId;
use wf_store::{CancelReport, EventSent, NewEvent};

use crate::app::App;
use crate::clock;
use crate::error::WfError;

/// The reason recorded by [`App::cancel`].
const DEFAULT_REASON: &str = "cancelled by App::cancel";

impl App {
    /// Sends the event `name` with `payload` (encoded as JSON) to invocation `to` — a workflow
    /// is addressed by its id, the id of its root. It is stored durably and consumed by the
    /// first `wf.wait_event(name)` of that invocation that has not consumed an event yet: events
    /// of one name are consumed in the order they arrived, each once. An event sent before the
    /// body waits for it is kept until it does; one sent while it waits wakes it.
    ///
    /// Without a key, every call stores another event; see [`App::send_event_with_key`] to
    /// make a send safe to repeat.
    ///
    /// ```
    /// # use wf_runtime::{App, TaskContext, TaskError};
    /// # let app = App::builder().memory().build()?;
    /// # let flow = app.task("flow", |ctx: &TaskContext, (): ()| -> Result<String, TaskError> {
    /// #     Ok(ctx.wf().wait_event::<String>("note")?)
    /// # })?;
    /// let inv = flow.call(&app, ())?;
    /// app.send_event(inv.id(), "note", "sent before the body waits: kept")?;
    /// app.run_until_idle()?;
    /// assert_eq!(inv.result()?, "sent before the body waits: kept");
    /// # Ok::<(), wf_runtime::WfError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// `WfError::Store(StoreError::InvocationNotFound)` for an unknown invocation;
    /// `WfError::Store(StoreError::AlreadyFinished)` for a final one (naming its status);
    /// [`WfError::EventPayload`] when the payload cannot be encoded as JSON; [`WfError::Usage`]
    /// for an empty name; [`WfError::Store`] when the store fails or refuses it (too large).
    pub fn send_event<T: Serialize + ?Sized>(
        &self,
        to: InvocationId,
        name: &str,
        payload: &T,
    ) -> Result<EventSent, WfError> {
        self.send(to, name, None, payload)
    }

    /// Like [`App::send_event`], idempotent by `key`: sending the same key (with the same name
    /// and payload) to the same invocation again stores nothing and answers
    /// [`EventSent::AlreadyStored`] — even once the invocation has finished — so a sender may
    /// retry after a crash or a timeout without delivering twice.
    ///
    /// # Errors
    ///
    /// As [`App::send_event`]; `WfError::Store(StoreError::EventConflict)` when the key was
    /// sent before with another name or payload.
    pub fn send_event_with_key<T: Serialize + ?Sized>(
        &self,
        to: InvocationId,
        name: &str,
        key: &str,
        payload: &T,
    ) -> Result<EventSent, WfError> {
        self.send(to, name, Some(key), payload)
    }

    fn send<T: Serialize + ?Sized>(
        &self,
        to: InvocationId,
        name: &str,
        key: Option<&str>,
        payload: &T,
    ) -> Result<EventSent, WfError> {
        if name.is_empty() {
            return Err(WfError::Usage(
                "an event needs a name: the body waits for it with wf.wait_event(name)".into(),
            ));
        }
        // Through a JSON value, so a payload has one byte form whoever encodes it (object keys
        // sorted): the same event sent with a key by this app and by `wf send-event` is the same.
        let payload = serde_json::to_value(payload)
            .and_then(|v| serde_json::to_vec(&v))
            .map_err(|e| WfError::EventPayload {
                name: name.to_owned(),
                message: e.to_string(),
            })?;
        let event = NewEvent {
            name: name.to_owned(),
            payload,
            key: key.map(str::to_owned),
        };
        let sent = self.store().send_event(to, event, clock::now())?;
        // A body of this process parked on the event reads its inbox again.
        self.ring();
        Ok(sent)
    }

    /// Cancels invocation `id` and everything it started, recursively (children, theirs, and
    /// the sub-workflows they started): for a workflow's id, the whole workflow tree.
    ///
    /// Members waiting or queued are cancelled at once. A running member's body gets
    /// [`WfError::Cancelled`] from its next journaled workflow operation (it learns of the
    /// request within a third of the lease time, or at once in this process); the operations
    /// after it work as usual, so it may run compensating steps, and whatever it returns, it
    /// ends cancelled. The result of a cancelled invocation is [`WfError::Cancelled`].
    ///
    /// Harmless to repeat, and on a finished invocation: the [`CancelReport`] says what
    /// happened (how many members were cancelled and asked to stop, or that it was already
    /// final).
    ///
    /// ```
    /// # use wf_runtime::{App, TaskContext, TaskError, WfError};
    /// # let app = App::builder().memory().build()?;
    /// # let flow = app.task("flow", |ctx: &TaskContext, (): ()| -> Result<(), TaskError> {
    /// #     Ok(ctx.wf().wait_event::<()>("never")?)
    /// # })?;
    /// let inv = flow.call(&app, ())?;
    /// app.run_until_idle()?; // waiting for an event
    /// let report = app.cancel(inv.id())?;
    /// assert_eq!(report.cancelled, vec![inv.id()]);
    /// assert!(matches!(inv.result(), Err(WfError::Cancelled { .. })));
    /// assert!(app.cancel(inv.id())?.was_final()); // again: nothing to do
    /// # Ok::<(), wf_runtime::WfError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// `WfError::Store(StoreError::InvocationNotFound)` for an unknown id; [`WfError::Store`]
    /// when the store fails.
    pub fn cancel(&self, id: InvocationId) -> Result<CancelReport, WfError> {
        self.cancel_because(id, DEFAULT_REASON)
    }

    /// [`App::cancel`] with a reason, kept in every cancelled member's error.
    ///
    /// # Errors
    ///
    /// As [`App::cancel`].
    pub fn cancel_because(&self, id: InvocationId, reason: &str) -> Result<CancelReport, WfError> {
        let report = self.store().cancel_tree(id, reason, clock::now())?;
        for member in &report.stopping {
            // Running here: told at once rather than at the next lease renewal.
            self.running().raise(*member, reason);
        }
        tracing::info!(invocation = %id, %report, "cancel requested");
        // Parked async bodies of this process see the cancellation (and finished members).
        self.ring();
        Ok(report)
    }
}
