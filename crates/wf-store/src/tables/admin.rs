//! An operator's actions on one invocation of [`Tables`]: cancel it, retry a failed one.

use wf_core::{InvocationId, Status, Timestamp};

use super::{Change, Tables, cancelled_state, check};
use crate::error::StoreError;

impl Tables {
    /// Cancels a non-final invocation at once on an operator's word (see also
    /// [`Tables::cancel_tree`]).
    ///
    /// # Errors
    /// [`StoreError::InvocationNotFound`]; [`StoreError::Transition`] for a final invocation.
    pub fn cancel(
        &mut self,
        out: &mut Vec<Change>,
        id: InvocationId,
        reason: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let slot = self.slot(id)?;
        check(id, slot.status, Status::Cancelled)?;
        let spec = slot.spec.clone();
        let mut state = cancelled_state(slot.state().into_owned(), reason);
        state.updated_at = now;
        self.set_state(out, id, state);
        self.wake_parent(out, &spec, now);
        Ok(())
    }

    /// Makes a failed invocation pending again on an operator's word: a new attempt that
    /// replays its journal, with its retry and recovery counts back at zero and its last
    /// error kept until that attempt ends.
    ///
    /// # Errors
    /// [`StoreError::InvocationNotFound`]; [`StoreError::NotRetryable`] when it is not failed
    /// or its caller is final.
    pub fn retry(
        &mut self,
        out: &mut Vec<Change>,
        id: InvocationId,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let slot = self.slot(id)?;
        let refuse = |reason: String| StoreError::NotRetryable {
            invocation: id,
            reason,
        };
        if slot.status != Status::Failed {
            return Err(refuse(format!(
                "it is {}, not failed; only a failed invocation can be retried",
                slot.status
            )));
        }
        if let Some(caller) = slot.spec.parent
            && let Some(c) = self.invocations.get(&caller)
            && c.status.is_final()
        {
            return Err(refuse(format!(
                "its caller {caller} ({}) is {} and took this failure, so nothing would read a \
                 new result; retry the caller, or start the work again",
                c.spec.task, c.status
            )));
        }
        check(id, Status::Failed, Status::Pending)?;
        let mut state = slot.state().into_owned();
        state.status = Status::Pending;
        state.retries = 0;
        state.recoveries = 0;
        state.lease = None;
        state.not_before = None;
        state.result = None;
        state.waiting_on.clear();
        state.updated_at = now;
        self.set_state(out, id, state);
        Ok(())
    }
}
