//! Exported workflows: the invocations of some workflow trees with their journals, as
//! `wf export` writes them (JSON) and `wf::testing::replay_check` replays them against new
//! code. Plain serde data: any serde format reads and writes it.

use serde::{Deserialize, Serialize};
use wf_core::{InvocationId, JournalEntry, Status};

use crate::error::StoreError;
use crate::model::InvocationSpec;
use crate::store::StoreRead;

/// The version of [`WorkflowExport`] this build writes and reads.
pub const EXPORT_FORMAT: u32 = 1;

/// Some workflow trees of a store: every invocation with its spec, status and journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowExport {
    /// The export format ([`EXPORT_FORMAT`]).
    pub format: u32,
    /// The app of the store it was exported from, if the store recorded one.
    pub app: Option<String>,
    /// The invocations: each workflow's in submission order, sub-workflows after the workflow
    /// that started them, trees in the order asked.
    pub invocations: Vec<ExportedInvocation>,
}

/// One exported invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedInvocation {
    /// What was called, in which workflow.
    pub spec: InvocationSpec,
    /// Its status when exported.
    pub status: Status,
    /// Its journal when exported.
    pub journal: Vec<JournalEntry>,
}

impl WorkflowExport {
    /// An empty export of app `app`.
    pub fn new(app: Option<String>) -> Self {
        Self {
            format: EXPORT_FORMAT,
            app,
            invocations: Vec::new(),
        }
    }

    /// The trees of `workflows` in `store`: each workflow (given by its id, or the id of any of
    /// its invocations) with its invocations and, recursively, the sub-workflows they started.
    ///
    /// # Errors
    /// [`StoreError::InvocationNotFound`] for an unknown id; a failed store.
    pub fn from_store(
        store: &dyn StoreRead,
        workflows: &[InvocationId],
    ) -> Result<Self, StoreError> {
        let mut export = Self::new(store.app_id()?);
        let roots = store.workflows()?;
        let mut done = std::collections::HashSet::new();
        for id in workflows {
            let mut pending = vec![store.invocation(*id)?.spec.identity.workflow_id];
            while let Some(wf) = pending.pop() {
                if !done.insert(wf) {
                    continue;
                }
                let members = store.workflow_invocations(wf)?;
                for record in store.invocations(&members)? {
                    export.invocations.push(ExportedInvocation {
                        journal: store.journal(record.id())?,
                        status: record.status(),
                        spec: (*record.spec).clone(),
                    });
                }
                // Sub-workflows started from this one, oldest last on the stack: first out.
                let subs = roots
                    .iter()
                    .filter(|r| r.spec.identity.parent_workflow_id == Some(wf))
                    .map(|r| r.id());
                pending.extend(subs.collect::<Vec<_>>().into_iter().rev());
            }
        }
        Ok(export)
    }

    /// Every workflow of `store`.
    ///
    /// # Errors
    /// A failed store.
    pub fn all(store: &dyn StoreRead) -> Result<Self, StoreError> {
        let tops: Vec<InvocationId> = store
            .workflows()?
            .iter()
            .filter(|r| r.spec.identity.parent_workflow_id.is_none())
            .map(|r| r.id())
            .collect();
        Self::from_store(store, &tops)
    }

    /// The workflows it holds, in order (sub-workflows included).
    pub fn workflows(&self) -> Vec<InvocationId> {
        let mut seen = Vec::new();
        for inv in &self.invocations {
            let wf = inv.spec.identity.workflow_id;
            if !seen.contains(&wf) {
                seen.push(wf);
            }
        }
        seen
    }
}
