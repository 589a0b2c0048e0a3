//! Undoing an operation of [`Tables`]: while recording, every change an operation emits first
//! notes what it replaces, so that [`Tables::roll_back`] can restore the tables exactly as they
//! were, queue places included. A durable backend records around an operation whose record it
//! must measure before logging it (the file store refuses an oversized record alone, instead of
//! leaving memory ahead of its log).

use wf_core::InvocationId;

use super::{Change, Slot, Tables};
use crate::steering::CancelRequest;

/// What one change replaced, enough to put it back.
#[cfg_attr(test, derive(Clone))]
pub(super) enum Undo {
    /// A new invocation: remove it (and its place in its workflow and under its parent), and
    /// give its sequence number back.
    Created { id: InvocationId, next_seq: u64 },
    /// An invocation created again over a stored one (never done live): the stored one.
    Replaced(InvocationId, Box<Slot>),
    /// An invocation's state and queue place before a change.
    State(InvocationId, Box<Slot>),
    /// An invocation's journal length (`None`: it had none).
    Journal(InvocationId, Option<usize>),
    /// A workflow's data value before a write (`None`: the workflow had no data at all).
    Data(InvocationId, String, Option<Option<Vec<u8>>>),
    /// A parent's awaited children before one finished.
    Waiting(InvocationId, Vec<InvocationId>),
    /// The app before a bind.
    App(Option<String>),
    /// An event was stored: drop it (and the inbox when it was made for it).
    Event(InvocationId, bool),
    /// Events of an invocation marked consumed that were not before.
    Consumed(InvocationId, Vec<usize>),
    /// The awaited event before a change (`None`: no inbox).
    Await(InvocationId, Option<Option<String>>),
    /// The cancellation request before a change.
    Cancel(InvocationId, Option<CancelRequest>),
    /// A change this module cannot undo (a purge: never part of an operation that records).
    Lost,
}

impl Tables {
    /// Starts recording what the following operations change, for [`Self::roll_back`].
    pub fn begin_undo(&mut self) {
        self.undo = Some(Vec::new());
    }

    /// Stops recording and forgets what was recorded: the changes stand.
    pub fn keep_changes(&mut self) {
        self.undo = None;
    }

    /// Stops recording and undoes every change recorded since [`Self::begin_undo`], newest
    /// first. Returns false, with the tables in an unknown state, when one of them could not be
    /// undone (a purge); the caller must then treat its state as lost (the file store stops).
    pub fn roll_back(&mut self) -> bool {
        let steps = self.undo.take().unwrap_or_default();
        let mut whole = true;
        for step in steps.into_iter().rev() {
            whole &= self.undo_one(step);
        }
        whole
    }

    /// Notes what `change`, about to be applied, replaces.
    pub(super) fn record_undo(&mut self, change: &Change) {
        let step = match change {
            Change::Created(spec, _) => match self.invocations.get(&spec.id) {
                Some(old) => Undo::Replaced(spec.id, old.clone()),
                None => Undo::Created {
                    id: spec.id,
                    next_seq: self.next_seq,
                },
            },
            Change::State(id, _) => match self.invocations.get(id) {
                Some(old) => Undo::State(*id, old.clone()),
                None => return,
            },
            Change::Journal(id, _) => {
                Undo::Journal(*id, self.journals.get(id).map(super::journal::Journal::len))
            }
            Change::Data(wf, key, _) => Undo::Data(
                *wf,
                key.clone(),
                self.data.get(wf).map(|d| d.get(key).cloned()),
            ),
            Change::ChildFinished(parent, _) => match self.invocations.get(parent) {
                Some(slot) => Undo::Waiting(*parent, slot.state().waiting_on.clone()),
                None => return,
            },
            Change::App(_) => Undo::App(self.app.clone()),
            Change::Event(id, _) => Undo::Event(*id, !self.inboxes.contains_key(id)),
            Change::EventsConsumed(id, seqs) => {
                let Some(inbox) = self.inboxes.get(id) else {
                    return;
                };
                let fresh = seqs
                    .iter()
                    .filter_map(|s| usize::try_from(*s).ok())
                    .filter(|i| inbox.events.get(*i).is_some_and(|e| !e.consumed))
                    .collect();
                Undo::Consumed(*id, fresh)
            }
            Change::AwaitEvent(id, _) => {
                Undo::Await(*id, self.inboxes.get(id).map(|i| i.awaiting.clone()))
            }
            Change::CancelRequest(id, _) => Undo::Cancel(*id, self.cancels.get(id).cloned()),
            Change::Purged(_) => Undo::Lost,
        };
        if let Some(steps) = self.undo.as_mut() {
            steps.push(step);
        }
    }

    /// Undoes one recorded change; false when it cannot be.
    fn undo_one(&mut self, step: Undo) -> bool {
        match step {
            Undo::Created { id, next_seq } => {
                if let Some(slot) = self.invocations.remove(&id) {
                    self.unindex(id, &slot.spec.task, slot.keys(), slot.ticket());
                    let wf = slot.spec.identity.workflow_id;
                    self.remove_member(wf, id);
                    if let Some(parent) = slot.spec.parent {
                        pop_member(&mut self.children, parent, id);
                    }
                }
                self.next_seq = next_seq;
            }
            Undo::Replaced(id, old) | Undo::State(id, old) => {
                if let Some(now) = self.invocations.remove(&id) {
                    self.unindex(id, &now.spec.task, now.keys(), now.ticket());
                }
                let ticket = old.ticket();
                self.invocations.insert(id, old);
                self.index_at(id, ticket);
            }
            Undo::Journal(id, len) => match len {
                Some(len) => {
                    if let Some(j) = self.journals.get_mut(&id) {
                        j.truncate(len);
                    }
                }
                None => {
                    self.journals.remove(&id);
                }
            },
            Undo::Data(wf, key, before) => match before {
                None => {
                    self.data.remove(&wf);
                }
                Some(value) => {
                    let map = self.data.entry(wf).or_default();
                    match value {
                        Some(v) => map.insert(key, v),
                        None => map.remove(&key),
                    };
                }
            },
            Undo::Waiting(parent, waiting) => {
                if let Some(state) = self
                    .invocations
                    .get_mut(&parent)
                    .and_then(|slot| slot.live_mut())
                {
                    state.waiting_on = waiting;
                }
            }
            Undo::App(app) => self.app = app,
            Undo::Event(id, made) => {
                if made {
                    self.inboxes.remove(&id);
                } else if let Some(inbox) = self.inboxes.get_mut(&id) {
                    inbox.events.pop();
                }
            }
            Undo::Consumed(id, fresh) => {
                if let Some(inbox) = self.inboxes.get_mut(&id) {
                    for i in fresh {
                        if let Some(e) = inbox.events.get_mut(i) {
                            e.consumed = false;
                        }
                    }
                }
            }
            Undo::Await(id, before) => match before {
                None => {
                    self.inboxes.remove(&id);
                }
                Some(awaiting) => self.inboxes.entry(id).or_default().awaiting = awaiting,
            },
            Undo::Cancel(id, before) => match before {
                None => {
                    self.cancels.remove(&id);
                }
                Some(request) => {
                    self.cancels.insert(id, request);
                }
            },
            Undo::Lost => return false,
        }
        true
    }
}

/// Removes `id`, the last one added, from `of`'s list in `lists` (and the list once empty).
fn pop_member<S: std::hash::BuildHasher>(
    lists: &mut std::collections::HashMap<InvocationId, Vec<InvocationId>, S>,
    of: InvocationId,
    id: InvocationId,
) {
    if let Some(list) = lists.get_mut(&of) {
        if list.last() == Some(&id) {
            list.pop();
        } else {
            list.retain(|m| *m != id);
        }
        if list.is_empty() {
            lists.remove(&of);
        }
    }
}
