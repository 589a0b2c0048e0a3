//! Reads of [`Tables`]: records, journals, data, workflows, counts, and what a worker can claim.

use wf_core::{InvocationId, JournalEntry, Status, Timestamp};

use super::{Slot, Tables, TaskQueue};
use crate::error::StoreError;
use crate::model::{InvocationRecord, StatusCounts, TaskSet};

impl Tables {
    // ----- reads ---------------------------------------------------------------------------

    pub(super) fn slot(&self, id: InvocationId) -> Result<&Slot, StoreError> {
        self.invocations
            .get(&id)
            .map(|slot| &**slot)
            .ok_or(StoreError::InvocationNotFound(id))
    }

    /// An invocation's record.
    ///
    /// # Errors
    /// [`StoreError::InvocationNotFound`] for an unknown id.
    pub fn invocation(&self, id: InvocationId) -> Result<InvocationRecord, StoreError> {
        let slot = self.slot(id)?;
        Ok(InvocationRecord {
            spec: slot.spec.clone(),
            state: slot.state().into_owned(),
        })
    }

    /// The status of an invocation, if it exists.
    pub fn status(&self, id: InvocationId) -> Option<Status> {
        self.invocations.get(&id).map(|s| s.status)
    }

    /// An invocation's journal.
    ///
    /// # Errors
    /// [`StoreError::InvocationNotFound`] for an unknown id.
    pub fn journal(&self, id: InvocationId) -> Result<Vec<JournalEntry>, StoreError> {
        self.slot(id)?;
        Ok(self
            .journals
            .get(&id)
            .map(|j| j.to_vec())
            .unwrap_or_default())
    }

    /// One value of a workflow's data.
    pub fn get_data(&self, workflow: InvocationId, key: &str) -> Option<Vec<u8>> {
        self.data.get(&workflow).and_then(|d| d.get(key)).cloned()
    }

    /// The keys of a workflow's data, sorted.
    pub fn data_keys(&self, workflow: InvocationId) -> Vec<String> {
        self.data
            .get(&workflow)
            .map(|d| d.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The invocations of a workflow, in submission order.
    pub fn workflow_invocations(&self, workflow: InvocationId) -> Vec<InvocationId> {
        self.members_of(workflow).to_vec()
    }

    /// The root invocations of all workflows (sub-workflows included), oldest first; roots
    /// created at the same time in submission order.
    pub fn workflow_roots(&self) -> Vec<InvocationRecord> {
        let mut roots: Vec<(&Slot, InvocationRecord)> = self
            .workflows()
            .filter_map(|wf| Some((&**self.invocations.get(&wf)?, self.invocation(wf).ok()?)))
            .collect();
        roots.sort_by_key(|(slot, _)| (slot.spec.created_at, slot.seq));
        roots.into_iter().map(|(_, r)| r).collect()
    }

    /// Counts by status.
    pub fn counts(&self) -> StatusCounts {
        self.counts
    }

    /// The app the store belongs to, once bound.
    pub fn app_id(&self) -> Option<&str> {
        self.app.as_deref()
    }

    /// The queues of the tasks in `tasks` that have ever had claimable invocations.
    fn queues_of<'a>(&'a self, tasks: &'a TaskSet) -> impl Iterator<Item = &'a TaskQueue> + 'a {
        tasks.iter().filter_map(|task| self.queues.get(task))
    }

    /// Whether a claim by a worker running `tasks` at `now` would find something: a ready or
    /// due invocation of one of its tasks, or an expired lease to recover (of any task).
    pub fn has_claimable(&self, tasks: &TaskSet, now: Timestamp) -> bool {
        self.leases.first().is_some_and(|(t, _)| *t < now)
            || self
                .queues_of(tasks)
                .any(|q| !q.ready.is_empty() || q.delayed.first().is_some_and(|(t, _)| *t <= now))
    }

    /// The next time something becomes claimable by a worker running `tasks` by the clock
    /// alone (a not-before time of one of its tasks, or a lease expiry of any task), so a
    /// blocked worker knows how long it may sleep.
    pub fn next_due(&self, tasks: &TaskSet) -> Option<Timestamp> {
        let delayed = self
            .queues_of(tasks)
            .filter_map(|q| q.delayed.first().map(|(t, _)| *t))
            .min();
        let lease = self
            .leases
            .first()
            .map(|(t, _)| Timestamp(t.0.saturating_add(1)));
        match (delayed, lease) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The invocation a claim by a worker running `tasks` at `now` takes: the one of its tasks
    /// runnable longest. A queued invocation is runnable since it became ready (its
    /// `updated_at`: submitted, released, woken, recovered), a delayed one since its not-before
    /// time; the queue wins ties. Only the queues' fronts and the earliest due delayed
    /// invocations can be the oldest, so this looks at two entries per task of the worker.
    pub(super) fn next_claimable(&self, tasks: &TaskSet, now: Timestamp) -> Option<InvocationId> {
        let mut queued: Option<(u64, InvocationId)> = None;
        let mut due: Option<(Timestamp, InvocationId)> = None;
        for queue in self.queues_of(tasks) {
            if let Some((ticket, id)) = queue.ready.first()
                && queued.is_none_or(|(first, _)| ticket < first)
            {
                queued = Some((ticket, id));
            }
            if let Some(&(t, id)) = queue.delayed.first()
                && t <= now
                && due.is_none_or(|first| (t, id) < first)
            {
                due = Some((t, id));
            }
        }
        match (queued.map(|(_, id)| id), due) {
            (Some(q), Some((t, d))) => {
                let since = self.invocations.get(&q).map(|s| s.updated_at);
                Some(if since.is_some_and(|since| t < since) {
                    d
                } else {
                    q
                })
            }
            (q, d) => q.or(d.map(|(_, id)| id)),
        }
    }
}
