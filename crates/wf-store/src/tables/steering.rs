//! The steering part of the store's state machine: events sent to invocations, and the
//! cancellation of workflow trees. Same rules as the rest of [`Tables`]: validate first, then
//! describe every change as a [`Change`] applied through `Tables::apply`.

use wf_core::{Failure, FailureKind, InvocationId, Status, Timestamp};

use super::{Change, Tables, check};
use crate::error::StoreError;
use crate::limits::{bounded_failure, bounded_text};
use crate::model::InvocationState;
use crate::steering::{CancelReport, CancelRequest, EventInbox, EventSent, NewEvent, StoredEvent};

/// `state` ended as cancelled for `reason` (the caller sets `updated_at`).
pub(super) fn cancelled_state(mut state: InvocationState, reason: &str) -> InvocationState {
    state.status = Status::Cancelled;
    state.lease = None;
    state.not_before = None;
    state.waiting_on.clear();
    state.result = None;
    state.error = Some(bounded_failure(Failure::new(
        FailureKind::Cancelled,
        reason,
    )));
    state
}

impl Tables {
    // ----- reads ---------------------------------------------------------------------------

    /// The events sent to invocation `id` and the event it waits for, if it waits for one.
    ///
    /// # Errors
    /// [`StoreError::InvocationNotFound`] for an unknown id.
    pub fn events(&self, id: InvocationId) -> Result<EventInbox, StoreError> {
        let slot = self.slot(id)?;
        let Some(inbox) = self.inboxes.get(&id) else {
            return Ok(EventInbox::default());
        };
        let waiting = slot.status == Status::Waiting;
        Ok(EventInbox {
            events: inbox.events.clone(),
            waiting_for: inbox.awaiting.clone().filter(|_| waiting),
        })
    }

    /// Of `ids`, the invocations not final whose cancellation was requested, with the reason.
    pub fn cancel_requests(&self, ids: &[InvocationId]) -> Vec<(InvocationId, String)> {
        ids.iter()
            .filter(|id| self.status(**id).is_some_and(|s| !s.is_final()))
            .filter_map(|id| Some((*id, self.cancels.get(id)?.reason.clone())))
            .collect()
    }

    /// The event invocation `id` named in its last suspension.
    pub(super) fn awaiting(&self, id: InvocationId) -> Option<&str> {
        self.inboxes.get(&id)?.awaiting.as_deref()
    }

    /// Whether an event named `name` was sent to `id` and is not consumed (nor among the
    /// `consuming` ones, consumed by the commit under way).
    pub(super) fn has_unconsumed(&self, id: InvocationId, name: &str, consuming: &[u64]) -> bool {
        self.inboxes.get(&id).is_some_and(|inbox| {
            inbox
                .events
                .iter()
                .any(|e| !e.consumed && e.name == name && !consuming.contains(&e.seq))
        })
    }

    // ----- operations ----------------------------------------------------------------------

    /// Stores an event for `to` and wakes it if it waits for one of this name; idempotent by
    /// key.
    ///
    /// # Errors
    /// [`StoreError::InvocationNotFound`], [`StoreError::AlreadyFinished`],
    /// [`StoreError::EventConflict`], with nothing changed.
    pub fn send_event(
        &mut self,
        out: &mut Vec<Change>,
        to: InvocationId,
        event: NewEvent,
        now: Timestamp,
    ) -> Result<EventSent, StoreError> {
        let slot = self.slot(to)?;
        let status = slot.status;
        let inbox = self.inboxes.get(&to);
        if let Some(key) = &event.key
            && let Some(before) = inbox.and_then(|i| {
                i.events
                    .iter()
                    .find(|e| e.key.as_deref() == Some(key.as_str()))
            })
        {
            if before.name == event.name && before.payload == event.payload {
                return Ok(EventSent::AlreadyStored { seq: before.seq });
            }
            return Err(StoreError::EventConflict {
                invocation: to,
                key: key.clone(),
            });
        }
        if status.is_final() {
            return Err(StoreError::AlreadyFinished {
                invocation: to,
                status,
            });
        }
        let seq = inbox.map_or(0, |i| i.events.len() as u64);
        let wakes = status == Status::Waiting && self.awaiting(to) == Some(event.name.as_str());
        if wakes {
            check(to, Status::Waiting, Status::Pending)?;
        }
        let stored = StoredEvent {
            seq,
            name: event.name,
            payload: event.payload,
            key: event.key,
            sent_at: now,
            consumed: false,
        };
        self.emit(out, Change::Event(to, stored));
        if wakes && let Some(slot) = self.invocations.get(&to) {
            let mut state = slot.state().into_owned();
            state.status = Status::Pending;
            state.waiting_on.clear();
            state.not_before = None;
            state.updated_at = now;
            self.set_state(out, to, state);
        }
        Ok(EventSent::Stored { seq })
    }

    /// Checks that invocation `id` may consume the events `seqs`: each sent to it, not consumed
    /// yet, and named once.
    ///
    /// # Errors
    /// [`StoreError::InvalidCommit`] naming the first event that may not be consumed.
    pub(super) fn check_consumed(&self, id: InvocationId, seqs: &[u64]) -> Result<(), StoreError> {
        let invalid = |reason: String| StoreError::InvalidCommit {
            invocation: id,
            reason,
        };
        for (i, seq) in seqs.iter().enumerate() {
            if seqs[..i].contains(seq) {
                return Err(invalid(format!("consumes event #{seq} twice")));
            }
            let event = self
                .inboxes
                .get(&id)
                .and_then(|inbox| inbox.events.get(usize::try_from(*seq).ok()?));
            match event {
                None => {
                    return Err(invalid(format!(
                        "consumes event #{seq}, which was never sent to it"
                    )));
                }
                Some(e) if e.consumed => {
                    return Err(invalid(format!(
                        "consumes event #{seq} (\"{}\"), which an earlier commit consumed",
                        e.name
                    )));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Cancels invocation `id` and everything it started, recursively. See
    /// `StoreAdmin::cancel_tree`.
    ///
    /// # Errors
    /// [`StoreError::InvocationNotFound`] for an unknown id.
    pub fn cancel_tree(
        &mut self,
        out: &mut Vec<Change>,
        id: InvocationId,
        reason: &str,
        now: Timestamp,
    ) -> Result<CancelReport, StoreError> {
        let status_before = self.slot(id)?.status;
        let mut report = CancelReport {
            invocation: id,
            status_before,
            cancelled: Vec::new(),
            stopping: Vec::new(),
            already_stopping: Vec::new(),
        };
        if status_before.is_final() {
            return Ok(report);
        }
        // The tree, parents before their children; the subtree of a member asked to stop
        // before is left to it (its compensating steps run there).
        let mut tree = std::collections::VecDeque::from([id]);
        while let Some(member) = tree.pop_front() {
            let Some(slot) = self.invocations.get(&member) else {
                continue;
            };
            let status = slot.status;
            if self.cancels.contains_key(&member) && !status.is_final() {
                report.already_stopping.push(member);
                continue;
            }
            if let Some(kids) = self.children.get(&member) {
                tree.extend(kids.iter().copied());
            }
            if status.is_final() {
                continue;
            }
            if status == Status::Running {
                let request = CancelRequest {
                    reason: bounded_text(reason.to_owned()),
                    acknowledged: false,
                };
                self.emit(out, Change::CancelRequest(member, request));
                report.stopping.push(member);
                continue;
            }
            self.cancel(out, member, reason, now)?;
            report.cancelled.push(member);
        }
        Ok(report)
    }

    /// Marks the cancellation request of `id` acknowledged (its body was told), once.
    pub(super) fn acknowledge_cancel(&mut self, out: &mut Vec<Change>, id: InvocationId) {
        if let Some(request) = self.cancels.get(&id)
            && !request.acknowledged
        {
            let request = CancelRequest {
                acknowledged: true,
                ..request.clone()
            };
            self.emit(out, Change::CancelRequest(id, request));
        }
    }

    // ----- log support -----------------------------------------------------------------------

    /// Drops what steering kept for a purged invocation.
    pub(super) fn forget_steering(&mut self, id: InvocationId) {
        self.inboxes.remove(&id);
        self.cancels.remove(&id);
        self.children.remove(&id);
    }

    /// The changes that rebuild what steering keeps for invocation `id` (for snapshots).
    pub(super) fn snapshot_steering(&self, id: InvocationId, out: &mut Vec<Change>) {
        if let Some(inbox) = self.inboxes.get(&id) {
            out.extend(inbox.events.iter().map(|e| Change::Event(id, e.clone())));
            if inbox.awaiting.is_some() {
                out.push(Change::AwaitEvent(id, inbox.awaiting.clone()));
            }
        }
        if let Some(request) = self.cancels.get(&id) {
            out.push(Change::CancelRequest(id, request.clone()));
        }
    }
}
