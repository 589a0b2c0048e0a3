//! Management reads over any store: one implementation behind [`crate::App`]'s management
//! methods and the `wf` inspector.

use std::collections::{BTreeSet, VecDeque};
use std::fmt;
use std::time::Duration;

use wf_core::{InvocationId, Timestamp};
use wf_store::{InvocationRecord, StatusCounts, StoreRead};

use super::admin::cutoff;
use super::query::{WorkflowList, WorkflowQuery, WorkflowSummary};
use super::view::{InvocationView, WorkflowTree};
use crate::error::WfError;

/// Reads what a store holds, for operators: workflow lists, invocations, workflow trees and
/// counts. [`crate::App`]'s management methods use it on the app's store; tools use it on any
/// store, such as a read-only snapshot of a file store another process owns.
#[derive(Clone, Copy)]
pub struct Inspector<'s> {
    store: &'s dyn StoreRead,
}

impl fmt::Debug for Inspector<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inspector")
            .field("backend", &self.store.backend())
            .finish()
    }
}

impl<'s> Inspector<'s> {
    /// Reads `store`.
    pub fn new(store: &'s dyn StoreRead) -> Self {
        Self { store }
    }

    /// The workflows `query` selects, newest first, judged against `now`.
    ///
    /// # Errors
    ///
    /// [`WfError::Store`] when the store cannot be read.
    pub fn workflows(
        &self,
        query: &WorkflowQuery,
        now: Timestamp,
    ) -> Result<WorkflowList, WfError> {
        let mut roots = self.store.workflows()?;
        roots.reverse();
        roots.retain(|r| query.matches(r, now));
        let matched = roots.len();
        if let Some(limit) = query.limit {
            roots.truncate(limit);
        }
        let workflows = roots
            .iter()
            .map(|root| self.summary(root))
            .collect::<Result<_, _>>()?;
        Ok(WorkflowList { workflows, matched })
    }

    /// The summary of the workflow `root` is the root of.
    pub(crate) fn summary(&self, root: &InvocationRecord) -> Result<WorkflowSummary, WfError> {
        let members = self.store.workflow_invocations(root.id())?.len();
        Ok(WorkflowSummary::new(root, members))
    }

    /// One invocation.
    ///
    /// # Errors
    ///
    /// [`WfError::Store`] with [`wf_store::StoreError::InvocationNotFound`] for an unknown id.
    pub fn invocation(&self, id: InvocationId) -> Result<InvocationView, WfError> {
        Ok(InvocationView::new(self.store.invocation(id)?))
    }

    /// The tree of the workflow `id` belongs to (`id` may be its root or any invocation in
    /// it): every invocation of the workflow and of the sub-workflows started from it.
    ///
    /// # Errors
    ///
    /// [`WfError::Store`] with [`wf_store::StoreError::InvocationNotFound`] for an unknown id.
    pub fn workflow(&self, id: InvocationId) -> Result<WorkflowTree, WfError> {
        let top = self.store.invocation(id)?.spec.identity.workflow_id;
        let roots = self.store.workflows()?;
        let mut members: Vec<InvocationRecord> = Vec::new();
        let mut seen = BTreeSet::new();
        // Breadth first, sub-workflows in the order they were created.
        let mut pending = VecDeque::from([top]);
        while let Some(w) = pending.pop_front() {
            if !seen.insert(w) {
                continue;
            }
            let ids = self.store.workflow_invocations(w)?;
            members.extend(self.store.invocations(&ids)?);
            pending.extend(
                roots
                    .iter()
                    .filter(|r| r.spec.identity.parent_workflow_id == Some(w))
                    .map(InvocationRecord::id),
            );
        }
        // Submission order within a workflow, creation time across them (a stable sort).
        members.sort_by_key(|r| r.spec.created_at);
        Ok(WorkflowTree::build(top, members))
    }

    /// What a purge of workflows finished at least `older_than` before `now` would remove
    /// (see [`crate::App::purge_finished_dry_run`]), removing nothing.
    ///
    /// # Errors
    ///
    /// [`WfError::Store`] when the store cannot be read.
    pub fn purgeable(
        &self,
        older_than: Duration,
        now: Timestamp,
    ) -> Result<Vec<WorkflowSummary>, WfError> {
        let ids = self.store.purgeable(cutoff(older_than, now))?;
        self.store
            .invocations(&ids)?
            .iter()
            .map(|root| self.summary(root))
            .collect()
    }

    /// Invocation counts by status.
    ///
    /// # Errors
    ///
    /// [`WfError::Store`] when the store cannot be read.
    pub fn counts(&self) -> Result<StatusCounts, WfError> {
        Ok(self.store.counts()?)
    }
}
