//! Retention of [`Tables`]: which finished workflow trees may go, and purging them.

use std::collections::{HashMap, HashSet};

use wf_core::{InvocationId, Timestamp};

use super::{Change, Tables};

impl Tables {
    /// When workflow `wf` finished: the time its last invocation became final (the newest
    /// `updated_at` of its root and members), or `None` while any of them is not final or its
    /// root is missing.
    fn finished_at(&self, wf: InvocationId, members: &[InvocationId]) -> Option<Timestamp> {
        self.invocations.get(&wf)?;
        members
            .iter()
            .try_fold(Timestamp(0), |newest, m| match self.invocations.get(m) {
                None => Some(newest),
                Some(s) if s.status.is_final() => Some(newest.max(s.updated_at)),
                Some(_) => None,
            })
    }

    /// The top of the workflow tree `wf` belongs to: the workflow reached by following roots'
    /// callers up (a sub-workflow's root is called by an invocation of its parent workflow)
    /// while the caller is still stored.
    fn tree_top(&self, wf: InvocationId) -> InvocationId {
        let mut top = wf;
        // A chain is never longer than the number of workflows; the bound only guards against
        // a malformed cycle.
        for _ in 0..self.invocations.len() {
            let Some(caller) = self.invocations.get(&top).and_then(|r| r.spec.parent) else {
                break;
            };
            let Some(caller) = self.invocations.get(&caller) else {
                break;
            };
            let up = caller.spec.identity.workflow_id;
            if up == top {
                break;
            }
            top = up;
        }
        top
    }

    /// The finished workflow trees to purge at `finished_before`, as the workflows in them in
    /// creation order. A tree is a workflow together with the sub-workflows started from it,
    /// recursively (a sub-workflow whose caller is gone is the top of its own tree). It goes as
    /// a whole, once every invocation in it is final and the last of them became final before
    /// `finished_before`: a finished sub-workflow stays while its caller, which still has to
    /// read its result, or anything else in the tree runs, and a workflow's history stays
    /// complete while any of it is kept.
    pub fn purgeable(&self, finished_before: Timestamp) -> Vec<InvocationId> {
        // Per tree top: its workflows, and when the tree finished (`None`: it has not).
        let mut trees: HashMap<InvocationId, (Vec<InvocationId>, Option<Timestamp>)> =
            HashMap::new();
        for wf in self.workflows() {
            let finished = self.finished_at(wf, self.members_of(wf));
            let tree = trees
                .entry(self.tree_top(wf))
                .or_insert((Vec::new(), Some(Timestamp(0))));
            tree.0.push(wf);
            tree.1 = tree.1.zip(finished).map(|(a, b)| a.max(b));
        }
        let mut doomed: Vec<InvocationId> = trees
            .into_values()
            .filter(|(_, finished)| finished.is_some_and(|t| t < finished_before))
            .flat_map(|(wfs, _)| wfs)
            .collect();
        doomed.sort_by_key(|wf| self.invocations.get(wf).map(|root| root.seq));
        doomed
    }

    /// Removes the finished workflow trees [`Tables::purgeable`] names, all at once. Returns how
    /// many workflows (sub-workflows included) were removed. A store that others use meanwhile
    /// purges in batches instead ([`Tables::purge_candidates`], [`Tables::purge_trees`]).
    pub fn purge_finished(&mut self, out: &mut Vec<Change>, finished_before: Timestamp) -> usize {
        let candidates = self.purge_candidates();
        self.purge_trees(out, &candidates, finished_before)
    }

    /// The candidates a purge goes through, [`PURGE_BATCH`] at a time, releasing the store's
    /// lock between batches: every stored invocation (a workflow's id is its root's) and every
    /// workflow with members, in no particular order. Made by copying the maps' keys, without
    /// looking at any invocation, so it is quick however large the store (a few ms for 100,000).
    pub fn purge_candidates(&self) -> Vec<InvocationId> {
        let mut ids = Vec::with_capacity(self.invocations.len() + self.members.len());
        ids.extend(self.invocations.keys().copied());
        ids.extend(self.members.keys().copied());
        ids
    }

    /// Of `candidates` (any ids: those that are not workflows are skipped), the workflows that
    /// top a tree (see [`Tables::purgeable`]) whose every invocation is final, the last of them
    /// before `finished_before`: removes each such tree whole. A candidate gone meanwhile, or inside another's tree, is skipped (its top decides).
    /// Returns how many workflows were removed. The work is bounded by the candidates' trees,
    /// not by the size of the store.
    pub fn purge_trees(
        &mut self,
        out: &mut Vec<Change>,
        candidates: &[InvocationId],
        finished_before: Timestamp,
    ) -> usize {
        let mut removed = 0;
        for &wf in candidates {
            if !self.is_workflow(wf) || self.tree_top(wf) != wf {
                continue;
            }
            let Some((tree, finished)) = self.finished_tree(wf) else {
                continue;
            };
            if finished < finished_before {
                removed += tree.len();
                for w in tree {
                    self.emit(out, Change::Purged(w));
                }
            }
        }
        removed
    }

    /// The workflows of the tree topped by `top` (it first, then the sub-workflows started from
    /// it, recursively) and when the last of their invocations became final; `None` while any
    /// of them is not final.
    fn finished_tree(&self, top: InvocationId) -> Option<(Vec<InvocationId>, Timestamp)> {
        let mut tree = vec![top];
        let mut seen: HashSet<InvocationId> = HashSet::from([top]);
        let mut finished = Timestamp(0);
        let mut next = 0;
        while let Some(&wf) = tree.get(next) {
            next += 1;
            let members = self.members_of(wf);
            finished = finished.max(self.finished_at(wf, members)?);
            for member in members {
                for child in self.children.get(member).into_iter().flatten() {
                    // A child rooting a workflow of its own is a sub-workflow of this tree.
                    let sub = self
                        .invocations
                        .get(child)
                        .map(|c| c.spec.identity.workflow_id)
                        .filter(|sub| sub == child && *sub != wf);
                    if let Some(sub) = sub
                        && self.is_workflow(sub)
                        && seen.insert(sub)
                    {
                        tree.push(sub);
                    }
                }
            }
        }
        Some((tree, finished))
    }
}

/// How many candidates ([`Tables::purge_candidates`]) one purge step looks at while it holds a
/// store's lock: enough to keep the per-step cost small next to the lock's other work, small
/// enough that a step holds the lock for a few milliseconds (a tree is removed whole, so one
/// with a great many invocations takes its step longer).
pub const PURGE_BATCH: usize = 256;
