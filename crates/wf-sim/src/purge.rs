//! Retention in the simulation: in some seeds (drawn from a stream of their own, so the other
//! seeds' histories are unchanged) the driver purges every finished workflow at the end of each
//! round that ran without a fault, and checks what the purge removed: never an invocation that
//! was not final, never one whose parent was not final (unless the parent went too). What it
//! removed is forgotten by the ledger (no longer owed) and the workflows' results are kept for
//! the final comparison.

use std::collections::{BTreeMap, BTreeSet};

use wf_core::{InvocationId, Status, Timestamp};
use wf_runtime::App;
use wf_store::StoreError;

use crate::ledger::{SharedAcks, acks};
use crate::rng::SimRng;

/// A workflow's final status and result.
pub type Ended = (Status, Option<Vec<u8>>);

/// An invocation as read before a purge: how it ended (so far), and its parent.
type Seen = (Ended, Option<InvocationId>);

/// What the purges of a run did.
#[derive(Debug, Default)]
pub struct Purges {
    /// Whether this run purges.
    pub on: bool,
    /// Results of the purged invocations, read just before the purge.
    pub results: BTreeMap<InvocationId, Ended>,
    /// Invocations removed so far.
    pub removed: u64,
}

impl Purges {
    /// For `seed`: a sixth of the seeds purge.
    pub fn for_seed(seed: u64) -> Self {
        Self {
            on: SimRng::new(seed ^ 0x0905_6e00_d1ce).chance(16),
            ..Self::default()
        }
    }

    /// Purges what finished before `cutoff` and checks what went. `ids` are the corpus's
    /// workflows (read too, even if the ledger never saw them acknowledged). Returns the
    /// violations.
    ///
    /// # Errors
    /// The store's (a fault).
    pub fn purge(
        &mut self,
        app: &App,
        shared: &SharedAcks,
        ids: &[Option<InvocationId>],
        cutoff: Timestamp,
    ) -> Result<Vec<String>, StoreError> {
        if !self.on {
            return Ok(Vec::new());
        }
        let store = app.store();
        // Everything the ledger owes (a child's outcome may be acknowledged while the commit
        // that submitted it was not) and the corpus's workflows.
        let mut known: Vec<InvocationId> = {
            let a = acks(shared);
            let owed = a
                .submitted
                .keys()
                .chain(a.finals.keys())
                .chain(a.journals.keys());
            owed.chain(a.data.keys().map(|(w, _)| w)).copied().collect()
        };
        known.extend(
            ids.iter()
                .flatten()
                .filter(|id| !self.results.contains_key(id)),
        );
        known.sort_unstable();
        known.dedup();
        let mut before = BTreeMap::new();
        let mut workflow = BTreeMap::new();
        for id in known {
            match store.invocation(id) {
                Ok(r) => {
                    let result = (r.state.status, r.state.result.clone());
                    before.insert(id, (result, r.spec.parent));
                    workflow.insert(id, r.spec.identity.workflow_id);
                }
                Err(StoreError::InvocationNotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        // What this purge may remove: a failed purge (or a failed read after it) leaves that
        // in doubt, and it is no longer owed.
        let roots: BTreeSet<InvocationId> = store.purgeable(cutoff)?.into_iter().collect();
        let candidates: Vec<InvocationId> = before
            .iter()
            .filter(|(id, ((status, _), _))| status.is_final() && roots.contains(&workflow[*id]))
            .map(|(id, _)| *id)
            .collect();
        let in_doubt = |this: &mut Self, e: StoreError| {
            this.forget(shared, &before, &candidates);
            Err(e)
        };
        if let Err(e) = store.purge_finished(cutoff) {
            return in_doubt(self, e);
        }
        let mut gone = Vec::new();
        for id in before.keys() {
            match store.invocation(*id) {
                Ok(_) => {}
                Err(StoreError::InvocationNotFound(_)) => gone.push(*id),
                Err(e) => return in_doubt(self, e),
            }
        }
        let mut violations = Vec::new();
        for id in &gone {
            let ((status, _), parent) = &before[id];
            if !status.is_final() {
                violations.push(format!("the purge removed {id}, which was {status:?}"));
            }
            if let Some(p) = parent
                && let Some(((pstatus, _), _)) = before.get(p)
                && !pstatus.is_final()
                && !gone.contains(p)
            {
                violations.push(format!(
                    "the purge removed {id}, whose parent {p} was {pstatus:?} and stays"
                ));
            }
        }
        self.forget(shared, &before, &gone);
        self.removed += gone.len() as u64;
        Ok(violations)
    }

    /// The ledger no longer owes `ids` (purged, or maybe purged); their results, as read
    /// before the purge, are kept.
    fn forget(
        &mut self,
        shared: &SharedAcks,
        before: &BTreeMap<InvocationId, Seen>,
        ids: &[InvocationId],
    ) {
        let mut a = acks(shared);
        for id in ids {
            self.results.insert(*id, before[id].0.clone());
            a.submitted.remove(id);
            a.finals.remove(id);
            a.journals.remove(id);
            a.data.retain(|(w, _), _| w != id);
        }
    }

    /// The result of workflow `id`: read from the store, or kept from before its purge.
    ///
    /// # Errors
    /// The store's.
    pub fn result(&self, app: &App, id: InvocationId) -> Result<Ended, StoreError> {
        match self.results.get(&id) {
            Some(r) => Ok(r.clone()),
            None => {
                let r = app.store().invocation(id)?;
                Ok((r.state.status, r.state.result.clone()))
            }
        }
    }
}
