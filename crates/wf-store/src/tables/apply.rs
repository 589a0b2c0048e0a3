//! The one mutation path of [`Tables`]: every change, live or replayed from a log, goes
//! through `Tables::apply`, which keeps the indexes in step with the invocations.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use wf_core::{IdHashing, InvocationId, Status, TaskId, Timestamp};

use super::slot::IndexKeys;
use super::{Change, IdMap, Slot, Tables, TaskQueue};
use crate::model::{InvocationSpec, InvocationState, StatusCounts};

impl Tables {
    /// Applies one change. Used for live operations and for replaying a log.
    pub fn apply(&mut self, change: Change) {
        match change {
            Change::Created(mut spec, state) => {
                if let Some(unshared) = Arc::get_mut(&mut spec) {
                    // Replayed from a log: every decoded spec has task names of its own.
                    self.intern(unshared);
                }
                let id = spec.id;
                let seq = match self.invocations.remove(&id) {
                    Some(old) => {
                        self.unindex(id, &old.spec.task, old.keys(), old.ticket());
                        old.seq
                    }
                    None => {
                        self.add_member(spec.identity.workflow_id, id);
                        if let Some(parent) = spec.parent {
                            self.children.entry(parent).or_default().push(id);
                        }
                        let seq = self.next_seq;
                        self.next_seq += 1;
                        seq
                    }
                };
                // Indexed before it is stored: one map operation for the slot.
                let mut slot = Box::new(Slot::new(spec, state, seq));
                let ticket = self.indexes().add(id, &slot.spec.task, slot.keys(), None);
                slot.set_ticket(ticket);
                self.invocations.insert(id, slot);
            }
            Change::State(id, state) => {
                let (invocations, mut indexes) = self.split();
                let Some(slot) = invocations.get_mut(&id) else {
                    return;
                };
                let old = slot.replace_state(state);
                let ticket = slot.take_ticket();
                indexes.remove(id, &slot.spec.task, old, ticket);
                let ticket = indexes.add(id, &slot.spec.task, slot.keys(), None);
                slot.set_ticket(ticket);
            }
            // Moved in, never copied (see `journal::Journal`).
            Change::Journal(id, entries) => self.journals.entry(id).or_default().append(entries),
            Change::Data(workflow, key, value) => {
                self.data.entry(workflow).or_default().insert(key, value);
            }
            Change::Purged(workflow) => {
                let members = self.take_members(workflow);
                for &id in members.as_slice() {
                    if let Some(slot) = self.invocations.remove(&id) {
                        self.unindex(id, &slot.spec.task, slot.keys(), slot.ticket());
                    }
                    self.journals.remove(&id);
                    self.forget_steering(id);
                }
                self.data.remove(&workflow);
            }
            Change::ChildFinished(parent, child) => {
                // `waiting_on` is in no index, and the status stays: nothing to re-index.
                if let Some(state) = self
                    .invocations
                    .get_mut(&parent)
                    .and_then(|slot| slot.live_mut())
                {
                    state.waiting_on.retain(|c| *c != child);
                }
            }
            Change::App(app) => self.app = Some(app),
            Change::Event(id, event) => self.inboxes.entry(id).or_default().events.push(event),
            Change::EventsConsumed(id, seqs) => {
                if let Some(inbox) = self.inboxes.get_mut(&id) {
                    for seq in seqs {
                        if let Some(e) = usize::try_from(seq)
                            .ok()
                            .and_then(|i| inbox.events.get_mut(i))
                        {
                            e.consumed = true;
                        }
                    }
                }
            }
            Change::AwaitEvent(id, name) => self.inboxes.entry(id).or_default().awaiting = name,
            Change::CancelRequest(id, request) => {
                self.cancels.insert(id, request);
            }
        }
    }

    /// Makes `spec`'s task names share the stored copy of each name (the key of that task's
    /// queue, made now if needed): one copy per task, not two per invocation.
    pub(super) fn intern(&mut self, spec: &mut InvocationSpec) {
        self.intern_name(&mut spec.task);
        self.intern_name(&mut spec.identity.workflow_type);
    }

    fn intern_name(&mut self, name: &mut TaskId) {
        // The same allocation as the stored copy: interned already (task entries stay once
        // made, so the copy is still the stored one).
        if let Some(last) = &self.last_interned
            && std::ptr::eq(last.as_str(), name.as_str())
        {
            return;
        }
        match self.queues.get_key_value(name) {
            Some((stored, _)) => *name = stored.clone(),
            None => {
                self.queues.insert(name.clone(), TaskQueue::default());
            }
        }
        self.last_interned = Some(name.clone());
    }

    /// The invocations and, apart from them, the indexes over them: a slot can be re-indexed
    /// while it is borrowed, without looking it up again.
    fn split(&mut self) -> (&mut IdMap<Box<Slot>>, Indexes<'_>) {
        let Self {
            invocations,
            queues,
            leases,
            counts,
            next_ticket,
            ..
        } = self;
        (
            invocations,
            Indexes {
                queues,
                leases,
                counts,
                next_ticket,
            },
        )
    }

    fn indexes(&mut self) -> Indexes<'_> {
        self.split().1
    }

    /// Indexes stored invocation `id` by its state; a ready one takes queue place `at` when
    /// given (an undone change puts it back where it was), else the back of its task's queue.
    pub(super) fn index_at(&mut self, id: InvocationId, at: Option<u64>) {
        let (invocations, mut indexes) = self.split();
        if let Some(slot) = invocations.get_mut(&id) {
            let ticket = indexes.add(id, &slot.spec.task, slot.keys(), at);
            slot.set_ticket(ticket);
        }
    }

    /// Removes invocation `id` of `task`, in its old `state` and with its old queue `ticket`,
    /// from the indexes. They hold exactly the claimable and running invocations, nothing stale.
    pub(super) fn unindex(
        &mut self,
        id: InvocationId,
        task: &TaskId,
        keys: IndexKeys,
        ticket: Option<u64>,
    ) {
        self.indexes().remove(id, task, keys, ticket);
    }

    pub(super) fn emit(&mut self, out: &mut Vec<Change>, change: Change) {
        if self.unlogged {
            // Nothing is logged: note whom it wakes instead of copying it into the list.
            self.wakes.note(&change);
        } else {
            out.push(change.clone());
        }
        if self.undo.is_some() {
            self.record_undo(&change);
        }
        self.apply(change);
    }

    pub(super) fn set_state(
        &mut self,
        out: &mut Vec<Change>,
        id: InvocationId,
        state: InvocationState,
    ) {
        self.emit(out, Change::State(id, state));
    }
}

/// The indexes of [`Tables`] over its invocations (see [`Tables::split`]).
struct Indexes<'a> {
    queues: &'a mut HashMap<TaskId, TaskQueue, IdHashing>,
    leases: &'a mut BTreeSet<(Timestamp, InvocationId)>,
    counts: &'a mut StatusCounts,
    next_ticket: &'a mut u64,
}

impl Indexes<'_> {
    /// Indexes invocation `id` of `task` by its state's `keys`; a ready one takes queue place
    /// `at` when given, else the back of its task's queue. Returns its queue place, if queued.
    fn add(
        &mut self,
        id: InvocationId,
        task: &TaskId,
        keys: IndexKeys,
        at: Option<u64>,
    ) -> Option<u64> {
        let IndexKeys {
            status,
            not_before,
            lease,
        } = keys;
        self.counts.add(status);
        let mut ticket = None;
        // A waiting invocation with a timer is claimable when the timer fires, like a retry.
        let timer = status == Status::Waiting && not_before.is_some();
        if status.is_claimable() || timer {
            // The queue exists (made when the task's name was interned): one lookup.
            let queue = match self.queues.get_mut(task) {
                Some(queue) => queue,
                None => self.queues.entry(task.clone()).or_default(),
            };
            match not_before {
                Some(t) => {
                    queue.delayed.insert((t, id));
                }
                None => {
                    let t = at.unwrap_or_else(|| {
                        *self.next_ticket += 1;
                        *self.next_ticket - 1
                    });
                    ticket = Some(t);
                    queue.ready.insert(t, id);
                }
            }
        }
        if let (Status::Running, Some(expires_at)) = (status, lease) {
            self.leases.insert((expires_at, id));
        }
        ticket
    }

    /// Removes invocation `id` of `task`, in its old state (`keys`) and with its old queue
    /// `ticket`, from the indexes.
    fn remove(&mut self, id: InvocationId, task: &TaskId, keys: IndexKeys, ticket: Option<u64>) {
        self.counts.remove(keys.status);
        // Most states are in no queue (running, final): no lookup of the task's name then.
        if (ticket.is_some() || keys.not_before.is_some())
            && let Some(queue) = self.queues.get_mut(task)
        {
            if let Some(ticket) = ticket {
                queue.ready.remove(ticket);
            }
            if let Some(t) = keys.not_before {
                queue.delayed.remove(&(t, id));
            }
        }
        if let Some(expires_at) = keys.lease {
            self.leases.remove(&(expires_at, id));
        }
    }
}
