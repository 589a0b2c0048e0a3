//! Operator actions over any store: one implementation behind [`crate::App`]'s management
//! methods and the `wf` inspector's writing commands.

use std::fmt;
use std::time::Duration;

use wf_core::{InvocationId, Timestamp};
use wf_store::StoreAdmin;

use crate::error::WfError;

/// Changes what a store holds, for operators: retrying failed invocations, purging finished
/// workflows. (What a purge would remove is a read: [`crate::Inspector::purgeable`].) [`crate::App`]'s
/// management methods use it on the app's store; tools use it on a store they opened
/// themselves, without an app (so without binding the store to an app id).
#[derive(Clone, Copy)]
pub struct Admin<'s> {
    store: &'s dyn StoreAdmin,
}

impl fmt::Debug for Admin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admin")
            .field("backend", &self.store.backend())
            .finish()
    }
}

impl<'s> Admin<'s> {
    /// Acts on `store`.
    pub fn new(store: &'s dyn StoreAdmin) -> Self {
        Self { store }
    }

    /// Removes workflows that finished at least `older_than` before `now` (a workflow goes
    /// together with the sub-workflows started from it, once every invocation in them is
    /// final). Returns how many workflows (sub-workflows included) were removed.
    ///
    /// # Errors
    ///
    /// [`WfError::Store`] when the store fails.
    pub fn purge_finished(&self, older_than: Duration, now: Timestamp) -> Result<usize, WfError> {
        Ok(self.store.purge_finished(cutoff(older_than, now))?)
    }

    /// Retries the failed invocation `id` at `now`: it becomes pending, and its next attempt
    /// replays its journal (see [`crate::App::retry`]).
    ///
    /// # Errors
    ///
    /// [`WfError::Store`] with [`wf_store::StoreError::NotRetryable`] when it is not failed or
    /// its caller is final, or [`wf_store::StoreError::InvocationNotFound`].
    pub fn retry(&self, id: InvocationId, now: Timestamp) -> Result<(), WfError> {
        Ok(self.store.retry(id, now)?)
    }
}

/// The `finished_before` bound for "finished at least `older_than` before `now`": one
/// millisecond past `now - older_than`, so that `Duration::ZERO` takes everything finished up
/// to now.
pub(crate) fn cutoff(older_than: Duration, now: Timestamp) -> Timestamp {
    let ms = u64::try_from(older_than.as_millis()).unwrap_or(u64::MAX);
    Timestamp(now.0.saturating_sub(ms).saturating_add(1))
}
