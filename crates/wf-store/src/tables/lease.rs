//! Leases of [`Tables`]: claiming, fencing and renewing them, and recovering expired ones.

use std::time::Duration;

use wf_core::{InvocationId, Status, Timestamp, WorkerId};

use super::{Change, Slot, Tables, cancelled_state, check, worker_lost};
use crate::error::StoreError;
use crate::model::{Claim, InvocationRecord, Lease, LeaseInfo, TaskSet, lease_expiry};

impl Tables {
    /// Claims for `worker` the oldest runnable invocation of one of `tasks`, recovering expired
    /// leases (of any task) first.
    ///
    /// # Errors
    /// A refused status transition while recovering (a bug: the tables are inconsistent).
    pub fn claim(
        &mut self,
        out: &mut Vec<Change>,
        worker: &WorkerId,
        tasks: &TaskSet,
        lease_for: Duration,
        now: Timestamp,
    ) -> Result<Option<Claim>, StoreError> {
        self.recover_expired(out, now)?;
        let Some(id) = self.next_claimable(tasks, now) else {
            return Ok(None);
        };
        let slot = self.slot(id)?;
        let spec = slot.spec.clone();
        let from = slot.status;
        check(id, from, Status::Running)?;
        let expires_at = lease_expiry(now, lease_for);
        let mut state = slot.state().into_owned();
        state.status = Status::Running;
        state.attempts += 1;
        state.lease = Some(LeaseInfo {
            worker: worker.clone(),
            expires_at,
        });
        state.not_before = None;
        // Claimed once its timer fired: it no longer waits on anything.
        state.waiting_on.clear();
        state.updated_at = now;
        let lease = Lease {
            invocation: id,
            worker: worker.clone(),
            attempt: state.attempts,
            expires_at,
        };
        // The record of the state set here, without looking it up again.
        let record = InvocationRecord {
            spec,
            state: state.clone(),
        };
        self.set_state(out, id, state);
        let journal = self
            .journals
            .get(&id)
            .map(|j| j.to_vec())
            .unwrap_or_default();
        Ok(Some(Claim {
            lease,
            record,
            journal,
        }))
    }

    pub(super) fn fence(&self, lease: &Lease, now: Timestamp) -> Result<&Slot, StoreError> {
        let slot = self.slot(lease.invocation)?;
        let lost = |reason: String| StoreError::LeaseLost {
            invocation: lease.invocation,
            reason,
        };
        let state = slot.state();
        if state.status != Status::Running {
            return Err(lost(format!("the invocation is {} now", state.status)));
        }
        if state.attempts != lease.attempt {
            return Err(lost(format!(
                "attempt {} holds it now, this lease was for attempt {}",
                state.attempts, lease.attempt
            )));
        }
        match &state.lease {
            Some(info) if info.worker == lease.worker && info.expires_at >= now => Ok(slot),
            Some(info) if info.worker != lease.worker => {
                Err(lost(format!("worker {} holds it now", info.worker)))
            }
            _ => Err(lost("the lease expired".to_owned())),
        }
    }

    /// Extends a lease that is still valid.
    ///
    /// # Errors
    /// [`StoreError::LeaseLost`] when the lease is no longer held.
    pub fn renew(
        &mut self,
        out: &mut Vec<Change>,
        lease: &Lease,
        lease_for: Duration,
        now: Timestamp,
    ) -> Result<Lease, StoreError> {
        let slot = self.fence(lease, now)?;
        let expires_at = lease_expiry(now, lease_for);
        let mut state = slot.state().into_owned();
        state.lease = Some(LeaseInfo {
            worker: lease.worker.clone(),
            expires_at,
        });
        self.set_state(out, lease.invocation, state);
        Ok(Lease {
            expires_at,
            ..lease.clone()
        })
    }

    /// Makes every invocation whose lease expired before `now` runnable again, or failed with
    /// [`wf_core::FailureKind::WorkerLost`] once it has been lost more times in a row than its spec
    /// allows. Returns the ids of all of them.
    ///
    /// # Errors
    /// A refused status transition (a bug: the tables are inconsistent).
    pub fn recover_expired(
        &mut self,
        out: &mut Vec<Change>,
        now: Timestamp,
    ) -> Result<Vec<InvocationId>, StoreError> {
        let mut recovered = Vec::new();
        while let Some(&(t, id)) = self.leases.first() {
            if t >= now {
                break;
            }
            let Some(slot) = self.invocations.get(&id) else {
                self.leases.pop_first();
                continue;
            };
            let spec = slot.spec.clone();
            let mut state = slot.state().into_owned();
            state.lease = None;
            state.updated_at = now;
            let crash_loop = state.recoveries >= spec.max_recoveries;
            let cancel = self.cancels.get(&id).cloned();
            if let Some(request) = cancel.filter(|r| !r.acknowledged || crash_loop) {
                // Cancelled while it ran and its worker is gone: a body never told ends here;
                // one told keeps compensating (recovered below) unless it crash-loops.
                check(id, state.status, Status::Cancelled)?;
                state = cancelled_state(state, &request.reason);
                self.set_state(out, id, state);
                self.wake_parent(out, &spec, now);
                recovered.push(id);
                continue;
            }
            if crash_loop {
                check(id, state.status, Status::Failed)?;
                state.status = Status::Failed;
                state.error = Some(worker_lost(&state));
            } else {
                check(id, state.status, Status::Pending)?;
                state.status = Status::Pending;
                state.recoveries += 1;
            }
            self.set_state(out, id, state);
            if crash_loop {
                self.wake_parent(out, &spec, now);
            }
            recovered.push(id);
        }
        Ok(recovered)
    }
}
