//! Commits and checkpoints of [`Tables`]: an execution's outcome and progress, validated
//! first, then written; a final child wakes its waiting parent.

use std::time::Duration;

use wf_core::{InvocationId, JournalEntry, Status, Timestamp, check_write};

use super::{Change, Progress, Tables, cancelled_state, check, invalid};
use crate::error::StoreError;
use crate::limits::bounded_failure;
use crate::model::{
    Checkpoint, Claim, Commit, InvocationSpec, Lease, LeaseInfo, NewInvocation, Outcome,
    Suspension, lease_expiry,
};

impl Tables {
    /// Commits an execution atomically: validates everything, then writes everything.
    ///
    /// # Errors
    /// [`StoreError::LeaseLost`], [`StoreError::InvalidCommit`], [`StoreError::Access`],
    /// [`StoreError::Conflict`] or [`StoreError::Transition`], with nothing changed.
    pub fn commit(
        &mut self,
        out: &mut Vec<Change>,
        lease: &Lease,
        commit: Commit,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let id = lease.invocation;
        let slot = self.fence(lease, now)?;
        let spec = slot.spec.clone();
        // The state the new one starts from (nothing below changes it before it is replaced).
        let mut state = slot.state().into_owned();
        let invalid = |reason: String| invalid(id, reason);
        // Cancelled while it ran, and the body was not told: the request wins over whatever
        // the execution did, and nothing of it is written.
        if let Some(request) = self.cancels.get(&id)
            && !commit.cancel_acknowledged
        {
            let reason = request.reason.clone();
            return self.cancel(out, id, &reason, now);
        }
        self.check_consumed(id, &commit.consumed)?;
        // Journal, data and children are validated as a checkpoint's are.
        let Progress {
            journal,
            data,
            fresh,
        } = self.check_progress(&spec, commit.journal, commit.data, commit.children)?;
        // The new state.
        state.lease = None;
        state.recoveries = 0;
        state.updated_at = now;
        let mut wakes_parent = false;
        let mut awaiting = None;
        let waiting = matches!(
            commit.outcome,
            Outcome::Waiting { .. } | Outcome::Suspended(_)
        );
        match commit.outcome {
            Outcome::Success(result) => {
                state.status = Status::Success;
                state.result = Some(result);
                state.error = None;
                wakes_parent = true;
            }
            Outcome::Failed(error) => {
                state.status = Status::Failed;
                state.error = Some(bounded_failure(error));
                wakes_parent = true;
            }
            Outcome::Retry { not_before, error } => {
                state.status = Status::Retry;
                state.retries += 1;
                state.not_before = Some(not_before);
                state.error = Some(bounded_failure(error));
            }
            Outcome::Released => state.status = Status::Pending,
            Outcome::Deferred { not_before, error } => {
                state.status = Status::Pending;
                state.not_before = Some(not_before);
                state.error = Some(bounded_failure(error));
            }
            Outcome::Waiting { on } => {
                let unfinished = self.unfinished_children(id, on, &fresh)?;
                check(id, Status::Running, Status::Waiting)?;
                if unfinished.is_empty() {
                    // Every child finished before the commit: runnable again at once.
                    check(id, Status::Waiting, Status::Pending)?;
                    state.status = Status::Pending;
                } else {
                    state.status = Status::Waiting;
                    state.waiting_on = unfinished;
                }
            }
            Outcome::Suspended(Suspension {
                children,
                wake_at,
                event,
            }) => {
                let on_children = !children.is_empty();
                if !on_children && wake_at.is_none() && event.is_none() {
                    return Err(invalid(
                        "suspends on nothing: no child, no timer and no event".to_owned(),
                    ));
                }
                let unfinished = self.unfinished_children(id, children, &fresh)?;
                check(id, Status::Running, Status::Waiting)?;
                let event_here = event
                    .as_deref()
                    .is_some_and(|name| self.has_unconsumed(id, name, &commit.consumed));
                if (on_children && unfinished.is_empty()) || event_here {
                    // What it waits for already happened: runnable again at once.
                    check(id, Status::Waiting, Status::Pending)?;
                    state.status = Status::Pending;
                } else {
                    state.status = Status::Waiting;
                    state.waiting_on = unfinished;
                    state.not_before = wake_at;
                    awaiting = event;
                }
            }
        }
        // A cancellation the body was told of: it may suspend and wake to run compensating
        // steps, but when it ends (or would retry), it ends cancelled.
        let cancel_reason = self.cancels.get(&id).map(|r| r.reason.clone());
        if let Some(reason) = &cancel_reason
            && (state.status.is_final() || state.status == Status::Retry)
        {
            state = cancelled_state(state, reason);
            wakes_parent = true;
        }
        if !waiting || state.status == Status::Cancelled {
            check(id, Status::Running, state.status)?;
        }

        // Everything is valid: write.
        if !journal.is_empty() {
            self.emit(out, Change::Journal(id, journal));
        }
        if !commit.consumed.is_empty() {
            self.emit(out, Change::EventsConsumed(id, commit.consumed));
        }
        if self.awaiting(id) != awaiting.as_deref() {
            self.emit(out, Change::AwaitEvent(id, awaiting));
        }
        if cancel_reason.is_some() {
            self.acknowledge_cancel(out, id);
        }
        for (key, value) in data {
            self.emit(out, Change::Data(spec.identity.workflow_id, key, value));
        }
        for child in fresh {
            self.create(out, child, now)?;
        }
        self.set_state(out, id, state);
        if wakes_parent {
            self.wake_parent(out, &spec, now);
        }
        Ok(())
    }

    /// Persists a running execution's progress and claims `run`, a child new in it, for the
    /// lease's worker; the invocation stays running, its lease extended. See
    /// [`crate::StoreWork::checkpoint`].
    ///
    /// # Errors
    /// As [`Tables::commit`], with nothing changed; [`StoreError::InvalidCommit`] also when
    /// `run` is not a child new in this checkpoint or has a not-before time.
    pub fn checkpoint(
        &mut self,
        out: &mut Vec<Change>,
        lease: &Lease,
        checkpoint: Checkpoint,
        run: InvocationId,
        lease_for: Duration,
        now: Timestamp,
    ) -> Result<Claim, StoreError> {
        let id = lease.invocation;
        let slot = self.fence(lease, now)?;
        let spec = slot.spec.clone();
        let mut state = slot.state().into_owned();
        let Checkpoint {
            journal,
            data,
            children,
        } = checkpoint;
        if self.cancels.contains_key(&id) {
            // The cancellation decides what this execution commits: no child runs meanwhile.
            return Err(invalid(
                id,
                "a cancellation was requested: it commits instead of running a child".to_owned(),
            ));
        }
        let progress = self.check_progress(&spec, journal, data, children)?;
        match progress.fresh.iter().find(|c| c.id == run) {
            None => {
                return Err(invalid(
                    id,
                    format!("runs {run} inline, which is not a child new in this checkpoint"),
                ));
            }
            Some(child) if child.not_before.is_some() => {
                return Err(invalid(
                    id,
                    format!("runs {run} inline, which is delayed by a not-before time"),
                ));
            }
            Some(_) => check(run, Status::Pending, Status::Running)?,
        }
        let expires_at = lease_expiry(now, lease_for);
        let child_lease = Lease {
            invocation: run,
            worker: lease.worker.clone(),
            attempt: 1,
            expires_at,
        };
        // Everything is valid: write.
        self.write_progress(out, &spec, progress, Some(&child_lease), now)?;
        state.lease = Some(LeaseInfo {
            worker: lease.worker.clone(),
            expires_at,
        });
        state.recoveries = 0;
        self.set_state(out, id, state);
        Ok(Claim {
            lease: child_lease,
            record: self.invocation(run)?,
            journal: Vec::new(),
        })
    }

    /// Validates what a commit or checkpoint of invocation `spec` writes besides its status: the
    /// journal continues the stored sequence, only the workflow's root writes data, children are
    /// its own and new or identical resubmissions (those are dropped).
    fn check_progress(
        &self,
        spec: &InvocationSpec,
        journal: Vec<JournalEntry>,
        data: Vec<(String, Vec<u8>)>,
        children: Vec<NewInvocation>,
    ) -> Result<Progress, StoreError> {
        let id = spec.id;
        // Most commits of plain tasks carry no journal and no children: no lookups for them.
        let stored = match journal.is_empty() {
            true => 0,
            false => self.journals.get(&id).map_or(0, |j| j.len()),
        };
        for (i, entry) in journal.iter().enumerate() {
            if entry.seq as usize != stored + i {
                return Err(invalid(
                    id,
                    format!(
                        "journal entry has sequence {}, expected {}",
                        entry.seq,
                        stored + i
                    ),
                ));
            }
        }
        if !data.is_empty() {
            check_write(id, &spec.identity, spec.identity.workflow_id)?;
        }
        if let Some(child) = children.iter().find(|c| c.parent != Some(id)) {
            return Err(invalid(
                id,
                format!("child {} does not name {id} as its parent", child.id),
            ));
        }
        let fresh = match children.is_empty() {
            true => children,
            false => {
                let new = self.check_new_batch(children.iter())?;
                children
                    .into_iter()
                    .zip(new)
                    .filter_map(|(child, new)| new.then_some(child))
                    .collect()
            }
        };
        Ok(Progress {
            journal,
            data,
            fresh,
        })
    }

    /// Writes validated progress of invocation `spec`: journal, data, new children in order
    /// (the one `running` names created running under that lease, the others pending).
    fn write_progress(
        &mut self,
        out: &mut Vec<Change>,
        spec: &InvocationSpec,
        progress: Progress,
        running: Option<&Lease>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let Progress {
            journal,
            data,
            fresh,
        } = progress;
        if !journal.is_empty() {
            self.emit(out, Change::Journal(spec.id, journal));
        }
        for (key, value) in data {
            self.emit(out, Change::Data(spec.identity.workflow_id, key, value));
        }
        for child in fresh {
            match running {
                Some(lease) if lease.invocation == child.id => {
                    self.create_running(out, child, lease, now)?;
                }
                _ => self.create(out, child, now)?,
            }
        }
        Ok(())
    }

    /// Of the children `on` that invocation `id` waits on, those not final yet (a child
    /// submitted by this commit, in `fresh`, is not even stored yet).
    ///
    /// # Errors
    /// [`StoreError::InvalidCommit`] for an invocation that is not its child.
    fn unfinished_children(
        &self,
        id: InvocationId,
        on: Vec<InvocationId>,
        fresh: &[NewInvocation],
    ) -> Result<Vec<InvocationId>, StoreError> {
        let mut unfinished = Vec::new();
        for child in on {
            let is_new = fresh.iter().any(|c| c.id == child);
            match self.invocations.get(&child) {
                _ if is_new => unfinished.push(child),
                Some(c) if c.spec.parent == Some(id) => {
                    if !c.status.is_final() {
                        unfinished.push(child);
                    }
                }
                _ => {
                    return Err(StoreError::InvalidCommit {
                        invocation: id,
                        reason: format!("waits on {child}, which is not its child"),
                    });
                }
            }
        }
        Ok(unfinished)
    }

    /// A final child may make its waiting parent runnable.
    pub(super) fn wake_parent(
        &mut self,
        out: &mut Vec<Change>,
        child: &InvocationSpec,
        now: Timestamp,
    ) {
        let Some(parent) = child.parent else { return };
        let Some(slot) = self.invocations.get(&parent) else {
            return;
        };
        if slot.status != Status::Waiting || !slot.state().waiting_on.contains(&child.id) {
            return;
        }
        let last = slot.state().waiting_on.iter().all(|c| *c == child.id);
        if !last || Status::Waiting.check_transition(Status::Pending).is_err() {
            // Still waiting on others: log only which child finished.
            self.emit(out, Change::ChildFinished(parent, child.id));
            return;
        }
        let mut state = slot.state().into_owned();
        state.waiting_on.clear();
        state.status = Status::Pending;
        // It no longer waits for its timer either.
        state.not_before = None;
        state.updated_at = now;
        self.set_state(out, parent, state);
    }
}
