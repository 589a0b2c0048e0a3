//! The store's state machine, shared by every backend that keeps its state in process memory.
//!
//! [`Tables`] holds invocations, journals, workflow data and the indexes a worker needs (a ready
//! queue, delayed invocations by not-before time, running invocations by lease expiry). Every
//! operation validates first, then describes what it does as a list of [`Change`]s and applies
//! them through [`Tables::apply`], the one place state changes. The memory backend discards the
//! changes; the file backend appends them to its log and replays them through the same `apply`
//! when it opens, so both backends share one implementation of the contract's rules.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wf_core::{
    Failure, FailureKind, InvocationId, JournalEntry, Status, Timestamp, WorkerId, check_write,
};

use crate::error::StoreError;
use crate::model::{
    Claim, Commit, InvocationRecord, InvocationSpec, InvocationState, Lease, LeaseInfo,
    NewInvocation, Outcome, StatusCounts, Submitted, lease_expiry,
};

/// One state change, the unit a durable backend logs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Change {
    /// A new invocation.
    Created(Arc<InvocationSpec>, InvocationState),
    /// An invocation's new state.
    State(InvocationId, InvocationState),
    /// Entries appended to an invocation's journal.
    Journal(InvocationId, Vec<JournalEntry>),
    /// A workflow data write: (workflow, key, value).
    Data(InvocationId, String, Vec<u8>),
    /// A finished workflow removed by retention.
    Purged(InvocationId),
}

/// The failure of an invocation whose executions keep vanishing.
fn worker_lost(state: &InvocationState) -> Failure {
    let lost = state.recoveries + 1;
    Failure::new(
        FailureKind::WorkerLost,
        format!(
            "the worker running it was lost {lost} time(s) in a row (crashed, killed, or stalled \
             past its lease); it was failed to stop a crash loop. Find why the worker dies (its \
             logs around attempt {}), then call the task again; raise \
             TaskOptions::max_recoveries if the task legitimately outlives workers",
            state.attempts
        ),
    )
}

/// The one status check of this backend family: the `wf_core` table decides.
fn check(invocation: InvocationId, from: Status, to: Status) -> Result<(), StoreError> {
    from.check_transition(to)
        .map_err(|source| StoreError::Transition { invocation, source })
}

struct Slot {
    spec: Arc<InvocationSpec>,
    state: InvocationState,
}

/// The in-memory state of a store. See the module docs.
#[derive(Default)]
pub struct Tables {
    invocations: HashMap<InvocationId, Slot>,
    journals: HashMap<InvocationId, Vec<JournalEntry>>,
    data: HashMap<InvocationId, BTreeMap<String, Vec<u8>>>,
    members: HashMap<InvocationId, Vec<InvocationId>>,
    ready: VecDeque<InvocationId>,
    delayed: BTreeSet<(Timestamp, InvocationId)>,
    leases: BTreeSet<(Timestamp, InvocationId)>,
    counts: StatusCounts,
}

impl Tables {
    /// Empty tables.
    pub fn new() -> Self {
        Self::default()
    }

    // ----- the one mutation path -------------------------------------------------------------

    /// Applies one change. Used for live operations and for replaying a log.
    pub fn apply(&mut self, change: Change) {
        match change {
            Change::Created(spec, state) => {
                let id = spec.id;
                if let Some(old) = self.invocations.remove(&id) {
                    self.unindex(id, &old.state);
                } else {
                    self.members
                        .entry(spec.identity.workflow_id)
                        .or_default()
                        .push(id);
                }
                self.index(id, &state);
                self.invocations.insert(id, Slot { spec, state });
            }
            Change::State(id, state) => {
                let Some(slot) = self.invocations.get_mut(&id) else {
                    return;
                };
                let old = std::mem::replace(&mut slot.state, state.clone());
                self.unindex(id, &old);
                self.index(id, &state);
            }
            Change::Journal(id, entries) => self.journals.entry(id).or_default().extend(entries),
            Change::Data(workflow, key, value) => {
                self.data.entry(workflow).or_default().insert(key, value);
            }
            Change::Purged(workflow) => {
                for id in self.members.remove(&workflow).unwrap_or_default() {
                    if let Some(slot) = self.invocations.remove(&id) {
                        self.unindex(id, &slot.state);
                    }
                    self.journals.remove(&id);
                }
                self.data.remove(&workflow);
            }
        }
    }

    fn index(&mut self, id: InvocationId, state: &InvocationState) {
        self.counts.add(state.status);
        if state.status.is_claimable() {
            match state.not_before {
                Some(t) => {
                    self.delayed.insert((t, id));
                }
                None => self.ready.push_back(id),
            }
        }
        if let (Status::Running, Some(lease)) = (state.status, &state.lease) {
            self.leases.insert((lease.expires_at, id));
        }
    }

    fn unindex(&mut self, id: InvocationId, state: &InvocationState) {
        self.counts.remove(state.status);
        if let Some(t) = state.not_before {
            self.delayed.remove(&(t, id));
        }
        if let Some(lease) = &state.lease {
            self.leases.remove(&(lease.expires_at, id));
        }
        // The ready queue is cleaned lazily: `claim` skips ids that are no longer claimable.
    }

    fn emit(&mut self, out: &mut Vec<Change>, change: Change) {
        out.push(change.clone());
        self.apply(change);
    }

    fn set_state(&mut self, out: &mut Vec<Change>, id: InvocationId, state: InvocationState) {
        self.emit(out, Change::State(id, state));
    }

    // ----- reads ---------------------------------------------------------------------------

    fn slot(&self, id: InvocationId) -> Result<&Slot, StoreError> {
        self.invocations
            .get(&id)
            .ok_or(StoreError::InvocationNotFound(id))
    }

    /// An invocation's record.
    pub fn invocation(&self, id: InvocationId) -> Result<InvocationRecord, StoreError> {
        let slot = self.slot(id)?;
        Ok(InvocationRecord {
            spec: slot.spec.clone(),
            state: slot.state.clone(),
        })
    }

    /// The status of an invocation, if it exists.
    pub fn status(&self, id: InvocationId) -> Option<Status> {
        self.invocations.get(&id).map(|s| s.state.status)
    }

    /// An invocation's journal.
    pub fn journal(&self, id: InvocationId) -> Result<Vec<JournalEntry>, StoreError> {
        self.slot(id)?;
        Ok(self.journals.get(&id).cloned().unwrap_or_default())
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
        self.members.get(&workflow).cloned().unwrap_or_default()
    }

    /// The root invocations of all workflows (sub-workflows included).
    pub fn workflow_roots(&self) -> Vec<InvocationRecord> {
        let mut roots: Vec<InvocationRecord> = self
            .members
            .keys()
            .filter_map(|wf| self.invocation(*wf).ok())
            .collect();
        roots.sort_by_key(|r| (r.spec.created_at, r.spec.id));
        roots
    }

    /// Counts by status.
    pub fn counts(&self) -> StatusCounts {
        self.counts
    }

    /// Whether a claim at `now` would find something (a ready, due or recoverable invocation).
    pub fn has_claimable(&self, now: Timestamp) -> bool {
        self.ready.iter().any(|id| self.is_claimable_now(*id, now))
            || self.delayed.first().is_some_and(|(t, _)| *t <= now)
            || self.leases.first().is_some_and(|(t, _)| *t < now)
    }

    /// The next time something becomes claimable by the clock alone (a not-before time or a
    /// lease expiry), so a blocked worker knows how long it may sleep.
    pub fn next_due(&self) -> Option<Timestamp> {
        let delayed = self.delayed.first().map(|(t, _)| *t);
        let lease = self
            .leases
            .first()
            .map(|(t, _)| Timestamp(t.0.saturating_add(1)));
        match (delayed, lease) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn is_claimable_now(&self, id: InvocationId, now: Timestamp) -> bool {
        self.invocations.get(&id).is_some_and(|s| {
            s.state.status.is_claimable() && s.state.not_before.is_none_or(|t| t <= now)
        })
    }

    // ----- operations ------------------------------------------------------------------------

    fn check_new(&self, new: &NewInvocation) -> Result<Option<Submitted>, StoreError> {
        match self.invocations.get(&new.id) {
            None => Ok(None),
            Some(slot) => {
                let s = &slot.spec;
                if s.task == new.task
                    && s.call == new.call
                    && s.args == new.args
                    && s.parent == new.parent
                    && s.identity == new.identity
                {
                    Ok(Some(Submitted::AlreadyExists))
                } else {
                    Err(StoreError::Conflict(new.id))
                }
            }
        }
    }

    fn create(
        &mut self,
        out: &mut Vec<Change>,
        new: NewInvocation,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        check(new.id, Status::Registered, Status::Pending)?;
        let spec = InvocationSpec {
            id: new.id,
            task: new.task,
            call: new.call,
            args: new.args,
            identity: new.identity,
            parent: new.parent,
            created_at: now,
            max_recoveries: new.max_recoveries,
        };
        let state = InvocationState {
            status: Status::Pending,
            attempts: 0,
            retries: 0,
            recoveries: 0,
            lease: None,
            not_before: new.not_before,
            result: None,
            error: None,
            waiting_on: Vec::new(),
            updated_at: now,
        };
        self.emit(out, Change::Created(Arc::new(spec), state));
        Ok(())
    }

    /// Stores and queues a new invocation; idempotent by id.
    pub fn submit(
        &mut self,
        out: &mut Vec<Change>,
        new: NewInvocation,
        now: Timestamp,
    ) -> Result<Submitted, StoreError> {
        if let Some(done) = self.check_new(&new)? {
            return Ok(done);
        }
        self.create(out, new, now)?;
        Ok(Submitted::Created)
    }

    /// Claims the oldest runnable invocation for `worker`, recovering expired leases first.
    pub fn claim(
        &mut self,
        out: &mut Vec<Change>,
        worker: &WorkerId,
        lease_for: Duration,
        now: Timestamp,
    ) -> Result<Option<Claim>, StoreError> {
        self.recover_expired(out, now)?;
        while let Some(&(t, id)) = self.delayed.first() {
            if t > now {
                break;
            }
            self.delayed.pop_first();
            self.ready.push_back(id);
        }
        while let Some(id) = self.ready.pop_front() {
            if !self.is_claimable_now(id, now) {
                continue;
            }
            let slot = self.slot(id)?;
            let from = slot.state.status;
            check(id, from, Status::Running)?;
            let expires_at = lease_expiry(now, lease_for);
            let mut state = slot.state.clone();
            state.status = Status::Running;
            state.attempts += 1;
            state.lease = Some(LeaseInfo {
                worker: worker.clone(),
                expires_at,
            });
            state.not_before = None;
            state.updated_at = now;
            let lease = Lease {
                invocation: id,
                worker: worker.clone(),
                attempt: state.attempts,
                expires_at,
            };
            self.set_state(out, id, state);
            let record = self.invocation(id)?;
            let journal = self.journals.get(&id).cloned().unwrap_or_default();
            return Ok(Some(Claim {
                lease,
                record,
                journal,
            }));
        }
        Ok(None)
    }

    fn fence(&self, lease: &Lease, now: Timestamp) -> Result<&Slot, StoreError> {
        let slot = self.slot(lease.invocation)?;
        let lost = |reason: String| StoreError::LeaseLost {
            invocation: lease.invocation,
            reason,
        };
        let state = &slot.state;
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
    pub fn renew(
        &mut self,
        out: &mut Vec<Change>,
        lease: &Lease,
        lease_for: Duration,
        now: Timestamp,
    ) -> Result<Lease, StoreError> {
        let slot = self.fence(lease, now)?;
        let expires_at = lease_expiry(now, lease_for);
        let mut state = slot.state.clone();
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

    /// Commits an execution atomically: validates everything, then writes everything.
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
        let invalid = |reason: String| StoreError::InvalidCommit {
            invocation: id,
            reason,
        };

        // Journal entries continue the stored sequence.
        let stored = self.journals.get(&id).map_or(0, Vec::len);
        for (i, entry) in commit.journal.iter().enumerate() {
            if entry.seq as usize != stored + i {
                return Err(invalid(format!(
                    "journal entry has sequence {}, expected {}",
                    entry.seq,
                    stored + i
                )));
            }
        }
        // Only the workflow's root writes its data.
        if !commit.data.is_empty() {
            check_write(id, &spec.identity, spec.identity.workflow_id)?;
        }
        // Children are this invocation's, and new or identical resubmissions.
        let mut fresh = Vec::with_capacity(commit.children.len());
        for child in commit.children {
            if child.parent != Some(id) {
                return Err(invalid(format!(
                    "child {} does not name {id} as its parent",
                    child.id
                )));
            }
            if self.check_new(&child)?.is_none() {
                fresh.push(child);
            }
        }
        // The new state.
        let mut state = slot.state.clone();
        state.lease = None;
        state.recoveries = 0;
        state.updated_at = now;
        let mut wakes_parent = false;
        let waiting = matches!(commit.outcome, Outcome::Waiting { .. });
        match commit.outcome {
            Outcome::Success(result) => {
                state.status = Status::Success;
                state.result = Some(result);
                state.error = None;
                wakes_parent = true;
            }
            Outcome::Failed(error) => {
                state.status = Status::Failed;
                state.error = Some(error);
                wakes_parent = true;
            }
            Outcome::Retry { not_before, error } => {
                state.status = Status::Retry;
                state.retries += 1;
                state.not_before = Some(not_before);
                state.error = Some(error);
            }
            Outcome::Released => state.status = Status::Pending,
            Outcome::Deferred { not_before, error } => {
                state.status = Status::Pending;
                state.not_before = Some(not_before);
                state.error = Some(error);
            }
            Outcome::Waiting { on } => {
                let mut unfinished = Vec::new();
                for child in on {
                    let is_new = fresh.iter().any(|c| c.id == child);
                    match self.invocations.get(&child) {
                        _ if is_new => unfinished.push(child),
                        Some(c) if c.spec.parent == Some(id) => {
                            if !c.state.status.is_final() {
                                unfinished.push(child);
                            }
                        }
                        _ => {
                            return Err(invalid(format!(
                                "waits on {child}, which is not its child"
                            )));
                        }
                    }
                }
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
        }
        if !waiting {
            check(id, Status::Running, state.status)?;
        }

        // Everything is valid: write.
        if !commit.journal.is_empty() {
            self.emit(out, Change::Journal(id, commit.journal));
        }
        for (key, value) in commit.data {
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

    /// A final child may make its waiting parent runnable.
    fn wake_parent(&mut self, out: &mut Vec<Change>, child: &InvocationSpec, now: Timestamp) {
        let Some(parent) = child.parent else { return };
        let Some(slot) = self.invocations.get(&parent) else {
            return;
        };
        if slot.state.status != Status::Waiting || !slot.state.waiting_on.contains(&child.id) {
            return;
        }
        let mut state = slot.state.clone();
        state.waiting_on.retain(|c| *c != child.id);
        if state.waiting_on.is_empty() && Status::Waiting.check_transition(Status::Pending).is_ok()
        {
            state.status = Status::Pending;
            state.updated_at = now;
        }
        self.set_state(out, parent, state);
    }

    /// Makes every invocation whose lease expired before `now` runnable again, or failed with
    /// [`FailureKind::WorkerLost`] once it has been lost more times in a row than its spec
    /// allows. Returns the ids of all of them.
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
            let mut state = slot.state.clone();
            state.lease = None;
            state.updated_at = now;
            let crash_loop = state.recoveries >= spec.max_recoveries;
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

    /// Fails a non-final invocation on an operator's word.
    pub fn cancel(
        &mut self,
        out: &mut Vec<Change>,
        id: InvocationId,
        reason: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let slot = self.slot(id)?;
        check(id, slot.state.status, Status::Failed)?;
        let spec = slot.spec.clone();
        let mut state = slot.state.clone();
        state.status = Status::Failed;
        state.lease = None;
        state.not_before = None;
        state.waiting_on.clear();
        state.error = Some(Failure::new(FailureKind::Cancelled, reason));
        state.updated_at = now;
        self.set_state(out, id, state);
        self.wake_parent(out, &spec, now);
        Ok(())
    }

    /// When workflow `wf` finished: the time its last invocation became final (the newest
    /// `updated_at` of its root and members), or `None` while any of them is not final or its
    /// root is missing.
    fn finished_at(&self, wf: InvocationId, members: &[InvocationId]) -> Option<Timestamp> {
        self.invocations.get(&wf)?;
        members
            .iter()
            .try_fold(Timestamp(0), |newest, m| match self.invocations.get(m) {
                None => Some(newest),
                Some(s) if s.state.status.is_final() => Some(newest.max(s.state.updated_at)),
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
        for _ in 0..self.members.len() {
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

    /// Removes finished workflow trees. A tree is a workflow together with the sub-workflows
    /// started from it, recursively (a sub-workflow whose caller is gone is the top of its own
    /// tree). It is purged as a whole, once every invocation in it is final and the last of
    /// them became final before `finished_before`: a finished sub-workflow stays while its
    /// caller, which still has to read its result, or anything else in the tree runs, and a
    /// workflow's history stays complete while any of it is kept. Returns how many workflows
    /// (sub-workflows included) were removed.
    pub fn purge_finished(&mut self, out: &mut Vec<Change>, finished_before: Timestamp) -> usize {
        // Per tree top: its workflows, and when the tree finished (`None`: it has not).
        let mut trees: HashMap<InvocationId, (Vec<InvocationId>, Option<Timestamp>)> =
            HashMap::new();
        for (wf, members) in &self.members {
            let finished = self.finished_at(*wf, members);
            let tree = trees
                .entry(self.tree_top(*wf))
                .or_insert((Vec::new(), Some(Timestamp(0))));
            tree.0.push(*wf);
            tree.1 = tree.1.zip(finished).map(|(a, b)| a.max(b));
        }
        let mut doomed: Vec<InvocationId> = trees
            .into_values()
            .filter(|(_, finished)| finished.is_some_and(|t| t < finished_before))
            .flat_map(|(wfs, _)| wfs)
            .collect();
        doomed.sort_by_key(|wf| {
            self.invocations
                .get(wf)
                .map(|root| (root.spec.created_at, *wf))
        });
        for wf in &doomed {
            self.emit(out, Change::Purged(*wf));
        }
        doomed.len()
    }

    /// Every change needed to rebuild these tables from empty (used by log compaction).
    pub fn snapshot(&self) -> Vec<Change> {
        let mut out = Vec::with_capacity(self.invocations.len() * 2 + self.data.len());
        let mut ids: Vec<&InvocationId> = self.invocations.keys().collect();
        ids.sort_by_key(|id| (self.invocations[*id].spec.created_at, **id));
        for id in ids {
            let slot = &self.invocations[id];
            out.push(Change::Created(slot.spec.clone(), slot.state.clone()));
            if let Some(j) = self.journals.get(id) {
                out.push(Change::Journal(*id, j.clone()));
            }
        }
        for (wf, kv) in &self.data {
            for (k, v) in kv {
                out.push(Change::Data(*wf, k.clone(), v.clone()));
            }
        }
        out
    }
}
