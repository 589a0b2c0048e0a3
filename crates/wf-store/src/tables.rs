//! The store's state machine, shared by every backend that keeps its state in process memory.
//!
//! [`Tables`] holds invocations, journals, workflow data, the app the store belongs to, and the
//! indexes a worker needs: per task, a ready queue and the delayed invocations by not-before
//! time (so a claim looks only at the queues of the tasks the worker runs, never past other
//! tasks' work), and running invocations by lease expiry (recovery is task-independent). Every
//! operation validates first, then describes what it does as a list of [`Change`]s and applies
//! them through [`Tables::apply`], the one place state changes. The memory backend discards the
//! changes; the file backend appends them to its log and replays them through the same `apply`
//! when it opens, so both backends share one implementation of the contract's rules.
//!
//! Everything here is a function of the changes applied, in order: replaying a log rebuilds
//! the tables exactly, orders included, and so does replaying [`Tables::snapshot`] (what
//! compaction writes). Orders never come from ids or from caller clocks alone: each invocation
//! has a sequence number given by `apply(Created)`, and the ready queues are ordered by a ticket
//! given when an invocation becomes ready, one counter for all tasks, so the order across the
//! queues is the order in which invocations became ready. Nothing outside `apply` touches an
//! index.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wf_core::{
    CallId, Failure, FailureKind, IdHashing, InvocationId, JournalEntry, Status, TaskId, Timestamp,
    WorkerId, WorkflowIdentity, check_write,
};

use crate::error::StoreError;
use crate::model::{
    Checkpoint, Claim, Commit, InvocationRecord, InvocationSpec, InvocationState, Lease, LeaseInfo,
    NewInvocation, Outcome, StatusCounts, Submitted, Suspension, TaskSet, lease_expiry,
};
use crate::steering::{CancelRequest, StoredEvent};

mod steering;

use steering::cancelled_state;

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
    /// (parent, child): a child the parent waits on became final while the parent still waits
    /// on others; the parent no longer waits on it, and its status does not change. (The last
    /// awaited child's completion logs the parent's new state instead.) Logged instead of the
    /// parent's whole new state so that a fan-out of N children logs O(N) bytes, not O(N²).
    ChildFinished(InvocationId, InvocationId),
    /// The store was bound to this app (its first bind). New variants go last: a log written
    /// before a variant existed still decodes.
    App(String),
    /// An event stored for an invocation (as the last of its events).
    Event(InvocationId, StoredEvent),
    /// Events of an invocation (by number) consumed by one of its commits.
    EventsConsumed(InvocationId, Vec<u64>),
    /// The event a suspended invocation waits for (`None`: none). Meaningful while it waits.
    AwaitEvent(InvocationId, Option<String>),
    /// The cancellation request of a running invocation, new or now acknowledged.
    CancelRequest(InvocationId, CancelRequest),
}

/// The failure of an invocation whose executions keep vanishing.
fn worker_lost(state: &InvocationState) -> Failure {
    worker_lost_failure(state.recoveries, state.attempts)
}

/// The failure of an invocation lost `recoveries + 1` times in a row, the last time at attempt
/// `attempts` (shared with backends that keep state elsewhere, such as Redis).
pub(crate) fn worker_lost_failure(recoveries: u32, attempts: u32) -> Failure {
    let lost = recoveries + 1;
    Failure::new(
        FailureKind::WorkerLost,
        format!(
            "the worker running it was lost {lost} time(s) in a row (crashed, killed, or stalled \
             past its lease); it was failed to stop a crash loop. Find why the worker dies (its \
             logs around attempt {attempts}), then call the task again; raise \
             TaskOptions::max_recoveries if the task legitimately outlives workers"
        ),
    )
}

/// What makes two submissions under one id the same call: task, call id, arguments, parent and
/// workflow (not the submission time or options).
type CallKey<'a> = (
    &'a TaskId,
    CallId,
    &'a [u8],
    Option<InvocationId>,
    &'a WorkflowIdentity,
);

fn spec_call(s: &InvocationSpec) -> CallKey<'_> {
    (&s.task, s.call, &s.args, s.parent, &s.identity)
}

fn new_call(n: &NewInvocation) -> CallKey<'_> {
    (&n.task, n.call, &n.args, n.parent, &n.identity)
}

/// A map keyed by invocation id, hashed with the fast [`IdHashing`] (ids are random or derived,
/// never chosen by an adversary).
type IdMap<V> = HashMap<InvocationId, V, IdHashing>;

/// The validated writes of a commit or checkpoint besides the status.
struct Progress {
    journal: Vec<JournalEntry>,
    data: Vec<(String, Vec<u8>)>,
    /// The children to create: new ones only, in submission order.
    fresh: Vec<NewInvocation>,
}

fn invalid(invocation: InvocationId, reason: String) -> StoreError {
    StoreError::InvalidCommit { invocation, reason }
}

/// The one status check of this backend family: the `wf_core` table decides.
fn check(invocation: InvocationId, from: Status, to: Status) -> Result<(), StoreError> {
    from.check_transition(to)
        .map_err(|source| StoreError::Transition { invocation, source })
}

#[cfg_attr(test, derive(Clone))]
struct Slot {
    spec: Arc<InvocationSpec>,
    state: InvocationState,
    /// Creation order: given by `apply(Created)`, so log replay gives the same order.
    seq: u64,
    /// Its key in its task's ready queue while it is there.
    ticket: Option<u64>,
}

/// The claimable invocations of one task.
#[derive(Default)]
#[cfg_attr(test, derive(Clone))]
struct TaskQueue {
    /// Those without a not-before time, by ticket: the order they became ready.
    ready: BTreeMap<u64, InvocationId>,
    /// Those with a not-before time.
    delayed: BTreeSet<(Timestamp, InvocationId)>,
}

/// The events of one invocation and the event it waits for.
#[derive(Default)]
#[cfg_attr(test, derive(Clone))]
struct Inbox {
    events: Vec<StoredEvent>,
    /// The event named by its last suspension (meaningful while it waits).
    awaiting: Option<String>,
}

/// The in-memory state of a store. See the module docs.
#[derive(Default)]
#[cfg_attr(test, derive(Clone))]
pub struct Tables {
    invocations: IdMap<Slot>,
    journals: IdMap<Vec<JournalEntry>>,
    data: IdMap<BTreeMap<String, Vec<u8>>>,
    members: IdMap<Vec<InvocationId>>,
    /// The app the store belongs to, once bound.
    app: Option<String>,
    /// Claimable invocations by task. A task's entry stays once made (empty when it has nothing
    /// claimable): there are as many as distinct task names, and keeping them saves re-making
    /// the entry on every submit of a task whose queue just ran empty.
    queues: HashMap<TaskId, TaskQueue, IdHashing>,
    /// Running invocations by lease expiry, of every task.
    leases: BTreeSet<(Timestamp, InvocationId)>,
    /// Per invocation: the events sent to it and the event it waits for.
    inboxes: HashMap<InvocationId, Inbox>,
    /// Cancellation requests of invocations that were running when their tree was cancelled.
    cancels: HashMap<InvocationId, CancelRequest>,
    /// Each invocation's children in submission order (derived from `Created`): a cancelled
    /// tree is found by following it.
    children: HashMap<InvocationId, Vec<InvocationId>>,
    counts: StatusCounts,
    next_seq: u64,
    next_ticket: u64,
    /// Set by a backend that logs nothing (memory): operations then report only the changes
    /// that say what became claimable or final (`Created`, `State`, `Purged`), without copying
    /// journals and data values into the change list.
    unlogged: bool,
}

impl std::fmt::Debug for Tables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tables")
            .field("app", &self.app)
            .field("invocations", &self.invocations.len())
            .field("counts", &self.counts)
            .finish_non_exhaustive()
    }
}

impl Tables {
    /// Empty tables.
    pub fn new() -> Self {
        Self::default()
    }

    /// These tables, for a backend that logs nothing (memory): operations then leave journal
    /// entries, data writes and other changes that neither queue nor finish an invocation out
    /// of the change list they return (it is only used to wake waiters).
    pub fn unlogged(mut self) -> Self {
        self.unlogged = true;
        self
    }

    // ----- the one mutation path -------------------------------------------------------------

    /// Applies one change. Used for live operations and for replaying a log.
    pub fn apply(&mut self, change: Change) {
        match change {
            Change::Created(spec, state) => {
                let id = spec.id;
                let seq = match self.invocations.remove(&id) {
                    Some(old) => {
                        self.unindex(id, &old.spec.task, &old.state, old.ticket);
                        old.seq
                    }
                    None => {
                        self.members
                            .entry(spec.identity.workflow_id)
                            .or_default()
                            .push(id);
                        if let Some(parent) = spec.parent {
                            self.children.entry(parent).or_default().push(id);
                        }
                        let seq = self.next_seq;
                        self.next_seq += 1;
                        seq
                    }
                };
                self.invocations.insert(
                    id,
                    Slot {
                        spec,
                        state,
                        seq,
                        ticket: None,
                    },
                );
                self.index(id);
            }
            Change::State(id, state) => {
                let Some(slot) = self.invocations.get_mut(&id) else {
                    return;
                };
                let old = std::mem::replace(&mut slot.state, state);
                let ticket = slot.ticket.take();
                let spec = slot.spec.clone();
                self.unindex(id, &spec.task, &old, ticket);
                self.index(id);
            }
            Change::Journal(id, entries) => self.journals.entry(id).or_default().extend(entries),
            Change::Data(workflow, key, value) => {
                self.data.entry(workflow).or_default().insert(key, value);
            }
            Change::Purged(workflow) => {
                for id in self.members.remove(&workflow).unwrap_or_default() {
                    if let Some(slot) = self.invocations.remove(&id) {
                        self.unindex(id, &slot.spec.task, &slot.state, slot.ticket);
                    }
                    self.journals.remove(&id);
                    self.forget_steering(id);
                }
                self.data.remove(&workflow);
            }
            Change::ChildFinished(parent, child) => {
                // `waiting_on` is in no index, and the status stays: nothing to re-index.
                if let Some(slot) = self.invocations.get_mut(&parent) {
                    slot.state.waiting_on.retain(|c| *c != child);
                }
            }
            Change::App(app) => self.app = Some(app),
            Change::Event(id, event) => self.inboxes.entry(id).or_default().events.push(event),
            Change::EventsConsumed(id, seqs) => {
                if let Some(inbox) = self.inboxes.get_mut(&id) {
                    for seq in seqs {
                        if let Some(e) = usize::try_from(seq)
                            .ok()
                            .and_then(|i| inbox.events.get_mut(i))
                        {
                            e.consumed = true;
                        }
                    }
                }
            }
            Change::AwaitEvent(id, name) => self.inboxes.entry(id).or_default().awaiting = name,
            Change::CancelRequest(id, request) => {
                self.cancels.insert(id, request);
            }
        }
    }

    /// Indexes invocation `id` by its (new) state; a ready one joins the back of its task's
    /// queue.
    fn index(&mut self, id: InvocationId) {
        let Some(slot) = self.invocations.get(&id) else {
            return;
        };
        let state = &slot.state;
        let (status, not_before) = (state.status, state.not_before);
        let lease = state.lease.as_ref().map(|l| l.expires_at);
        self.counts.add(status);
        let mut ticket = None;
        // A waiting invocation with a timer is claimable when the timer fires, like a retry.
        let timer = status == Status::Waiting && not_before.is_some();
        if status.is_claimable() || timer {
            let task = &slot.spec.task;
            if !self.queues.contains_key(task) {
                self.queues.insert(task.clone(), TaskQueue::default());
            }
            if let Some(queue) = self.queues.get_mut(task) {
                match not_before {
                    Some(t) => {
                        queue.delayed.insert((t, id));
                    }
                    None => {
                        ticket = Some(self.next_ticket);
                        queue.ready.insert(self.next_ticket, id);
                        self.next_ticket += 1;
                    }
                }
            }
        }
        if let (Status::Running, Some(expires_at)) = (status, lease) {
            self.leases.insert((expires_at, id));
        }
        if let Some(slot) = self.invocations.get_mut(&id) {
            slot.ticket = ticket;
        }
    }

    /// Removes invocation `id` of `task`, in its old `state` and with its old queue `ticket`,
    /// from the indexes. They hold exactly the claimable and running invocations, nothing stale.
    fn unindex(
        &mut self,
        id: InvocationId,
        task: &TaskId,
        state: &InvocationState,
        ticket: Option<u64>,
    ) {
        self.counts.remove(state.status);
        if let Some(queue) = self.queues.get_mut(task) {
            if let Some(ticket) = ticket {
                queue.ready.remove(&ticket);
            }
            if let Some(t) = state.not_before {
                queue.delayed.remove(&(t, id));
            }
        }
        if let Some(lease) = &state.lease {
            self.leases.remove(&(lease.expires_at, id));
        }
    }

    fn emit(&mut self, out: &mut Vec<Change>, change: Change) {
        let wakes = matches!(
            change,
            Change::Created(..) | Change::State(..) | Change::Purged(_)
        );
        if wakes || !self.unlogged {
            out.push(change.clone());
        }
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
    ///
    /// # Errors
    /// [`StoreError::InvocationNotFound`] for an unknown id.
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
    ///
    /// # Errors
    /// [`StoreError::InvocationNotFound`] for an unknown id.
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

    /// The root invocations of all workflows (sub-workflows included), oldest first; roots
    /// created at the same time in submission order.
    pub fn workflow_roots(&self) -> Vec<InvocationRecord> {
        let mut roots: Vec<(&Slot, InvocationRecord)> = self
            .members
            .keys()
            .filter_map(|wf| Some((self.invocations.get(wf)?, self.invocation(*wf).ok()?)))
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
    fn next_claimable(&self, tasks: &TaskSet, now: Timestamp) -> Option<InvocationId> {
        let mut queued: Option<(u64, InvocationId)> = None;
        let mut due: Option<(Timestamp, InvocationId)> = None;
        for queue in self.queues_of(tasks) {
            if let Some((&ticket, &id)) = queue.ready.first_key_value()
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
                let since = self.invocations.get(&q).map(|s| s.state.updated_at);
                Some(if since.is_some_and(|since| t < since) {
                    d
                } else {
                    q
                })
            }
            (q, d) => q.or(d.map(|(_, id)| id)),
        }
    }

    // ----- operations ------------------------------------------------------------------------

    fn check_new(&self, new: &NewInvocation) -> Result<Option<Submitted>, StoreError> {
        match self.invocations.get(&new.id) {
            None => Ok(None),
            Some(slot) => {
                if spec_call(&slot.spec) == new_call(new) {
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
        let (spec, state) = Self::new_slot(new, now)?;
        self.emit(out, Change::Created(Arc::new(spec), state));
        Ok(())
    }

    /// Creates `new` already claimed under `lease` (attempt 1), in one change: it is never
    /// queued, so no other worker can see it claimable.
    fn create_running(
        &mut self,
        out: &mut Vec<Change>,
        new: NewInvocation,
        lease: &Lease,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let (spec, mut state) = Self::new_slot(new, now)?;
        check(spec.id, state.status, Status::Running)?;
        state.status = Status::Running;
        state.attempts = lease.attempt;
        state.lease = Some(LeaseInfo {
            worker: lease.worker.clone(),
            expires_at: lease.expires_at,
        });
        self.emit(out, Change::Created(Arc::new(spec), state));
        Ok(())
    }

    /// The spec and pending state of a new submission.
    fn new_slot(
        new: NewInvocation,
        now: Timestamp,
    ) -> Result<(InvocationSpec, InvocationState), StoreError> {
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
        Ok((spec, state))
    }

    /// Stores and queues a new invocation; idempotent by id.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] for another call under an existing id.
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

    /// Stores and queues several invocations, all or nothing; each is idempotent by id, within
    /// the batch too. Answers in the order given.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] for the first id that is another call (in the store or earlier
    /// in the batch), with nothing submitted.
    pub fn submit_many(
        &mut self,
        out: &mut Vec<Change>,
        batch: Vec<NewInvocation>,
        now: Timestamp,
    ) -> Result<Vec<Submitted>, StoreError> {
        let fresh = self.check_new_batch(batch.iter())?;
        let created = fresh.iter().filter(|f| **f).count();
        self.invocations.reserve(created);
        self.members.reserve(created);
        let answers = fresh
            .iter()
            .map(|f| match f {
                true => Submitted::Created,
                false => Submitted::AlreadyExists,
            })
            .collect();
        for (new, fresh) in batch.into_iter().zip(fresh) {
            if fresh {
                self.create(out, new, now)?;
            }
        }
        Ok(answers)
    }

    /// For each of `batch`, in order, whether it is new: not stored and not an identical repeat
    /// of an earlier one in the batch.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] for the first that is another call under a known id.
    fn check_new_batch<'a>(
        &self,
        batch: impl Iterator<Item = &'a NewInvocation>,
    ) -> Result<Vec<bool>, StoreError> {
        let batch = batch.collect::<Vec<_>>();
        if let [one] = batch[..] {
            return Ok(vec![self.check_new(one)?.is_none()]);
        }
        let mut earlier: IdMap<&NewInvocation> = IdMap::default();
        let mut fresh = Vec::with_capacity(batch.len());
        for new in batch {
            let is_new = match earlier.get(&new.id) {
                Some(first) if new_call(first) == new_call(new) => false,
                Some(_) => return Err(StoreError::Conflict(new.id)),
                None => self.check_new(new)?.is_none(),
            };
            if is_new {
                earlier.insert(new.id, new);
            }
            fresh.push(is_new);
        }
        Ok(fresh)
    }

    /// Binds the tables to app `app_id`: the first bind records it, a later one with the same
    /// id changes nothing, one with another id is [`StoreError::AppMismatch`] naming `store`
    /// (a directory or a URL, for the message).
    ///
    /// # Errors
    /// [`StoreError::AppMismatch`] when another app is recorded.
    pub fn bind_app(
        &mut self,
        out: &mut Vec<Change>,
        store: &str,
        app_id: &str,
    ) -> Result<(), StoreError> {
        match &self.app {
            Some(recorded) if recorded == app_id => Ok(()),
            Some(recorded) => Err(StoreError::AppMismatch {
                store: store.to_owned(),
                recorded: recorded.clone(),
                requested: app_id.to_owned(),
            }),
            None => {
                self.emit(out, Change::App(app_id.to_owned()));
                Ok(())
            }
        }
    }

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
        // Claimed once its timer fired: it no longer waits on anything.
        state.waiting_on.clear();
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
        Ok(Some(Claim {
            lease,
            record,
            journal,
        }))
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
        let mut state = self.slot(id)?.state.clone();
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
        let mut state = slot.state.clone();
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
        let stored = self.journals.get(&id).map_or(0, Vec::len);
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
        let new = self.check_new_batch(children.iter())?;
        let fresh = children
            .into_iter()
            .zip(new)
            .filter_map(|(child, new)| new.then_some(child))
            .collect();
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
                    if !c.state.status.is_final() {
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
    fn wake_parent(&mut self, out: &mut Vec<Change>, child: &InvocationSpec, now: Timestamp) {
        let Some(parent) = child.parent else { return };
        let Some(slot) = self.invocations.get(&parent) else {
            return;
        };
        if slot.state.status != Status::Waiting || !slot.state.waiting_on.contains(&child.id) {
            return;
        }
        let last = slot.state.waiting_on.iter().all(|c| *c == child.id);
        if !last || Status::Waiting.check_transition(Status::Pending).is_err() {
            // Still waiting on others: log only which child finished.
            self.emit(out, Change::ChildFinished(parent, child.id));
            return;
        }
        let mut state = slot.state.clone();
        state.waiting_on.clear();
        state.status = Status::Pending;
        // It no longer waits for its timer either.
        state.not_before = None;
        state.updated_at = now;
        self.set_state(out, parent, state);
    }

    /// Makes every invocation whose lease expired before `now` runnable again, or failed with
    /// [`FailureKind::WorkerLost`] once it has been lost more times in a row than its spec
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
            let mut state = slot.state.clone();
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
        check(id, slot.state.status, Status::Cancelled)?;
        let spec = slot.spec.clone();
        let mut state = cancelled_state(slot.state.clone(), reason);
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
        doomed.sort_by_key(|wf| self.invocations.get(wf).map(|root| root.seq));
        doomed
    }

    /// Removes the finished workflow trees [`Tables::purgeable`] names. Returns how many
    /// workflows (sub-workflows included) were removed.
    pub fn purge_finished(&mut self, out: &mut Vec<Change>, finished_before: Timestamp) -> usize {
        let doomed = self.purgeable(finished_before);
        for wf in &doomed {
            self.emit(out, Change::Purged(*wf));
        }
        doomed.len()
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
        if slot.state.status != Status::Failed {
            return Err(refuse(format!(
                "it is {}, not failed; only a failed invocation can be retried",
                slot.state.status
            )));
        }
        if let Some(caller) = slot.spec.parent
            && let Some(c) = self.invocations.get(&caller)
            && c.state.status.is_final()
        {
            return Err(refuse(format!(
                "its caller {caller} ({}) is {} and took this failure, so nothing would read a \
                 new result; retry the caller, or start the work again",
                c.spec.task, c.state.status
            )));
        }
        check(id, Status::Failed, Status::Pending)?;
        let mut state = slot.state.clone();
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

    /// Every change needed to rebuild these tables from empty (used by log compaction).
    /// The app first; then invocations in creation order (so workflow membership and ties keep
    /// submission order); then the queued ones are queued again in the order they became ready,
    /// across all tasks (a released or woken invocation queues behind ones created after it).
    pub fn snapshot(&self) -> Vec<Change> {
        let mut queued: Vec<(u64, InvocationId)> = self
            .queues
            .values()
            .flat_map(|q| q.ready.iter().map(|(ticket, id)| (*ticket, *id)))
            .collect();
        queued.sort_unstable();
        let mut out =
            Vec::with_capacity(self.invocations.len() * 2 + queued.len() + self.data.len() + 1);
        if let Some(app) = &self.app {
            out.push(Change::App(app.clone()));
        }
        let mut slots: Vec<(&InvocationId, &Slot)> = self.invocations.iter().collect();
        slots.sort_by_key(|(_, slot)| slot.seq);
        for (id, slot) in slots {
            out.push(Change::Created(slot.spec.clone(), slot.state.clone()));
            if let Some(j) = self.journals.get(id) {
                out.push(Change::Journal(*id, j.clone()));
            }
            self.snapshot_steering(*id, &mut out);
        }
        for (_, id) in queued {
            if let Some(slot) = self.invocations.get(&id) {
                out.push(Change::State(id, slot.state.clone()));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::fixtures::{self, at_ms as at, id, tasks};

    /// The tasks these tests use: most use `t`, the per-task order tests `u` too.
    const TASKS: [&str; 2] = ["t", "u"];

    /// Root number `n` of task `t`.
    fn root(n: u128) -> NewInvocation {
        fixtures::root(n, "t", b"")
    }

    /// Child number `n` of `parent`, of task `t`.
    fn child(n: u128, parent: &NewInvocation) -> NewInvocation {
        fixtures::child(n, parent, "t", b"")
    }

    /// Operations on live tables, keeping the log of their changes as a file store would.
    #[derive(Default)]
    struct Logged {
        tables: Tables,
        log: Vec<Change>,
    }

    impl Logged {
        fn submit(&mut self, inv: &NewInvocation, now: Timestamp) {
            self.tables.submit(&mut self.log, inv.clone(), now).unwrap();
        }

        fn claim(&mut self, now: Timestamp) -> Lease {
            claim(&mut self.tables, &mut self.log, &tasks(&TASKS), now)
                .unwrap()
                .lease
        }

        fn commit(&mut self, lease: &Lease, commit: Commit, now: Timestamp) {
            self.tables
                .commit(&mut self.log, lease, commit, now)
                .unwrap();
        }
    }

    fn claim(
        t: &mut Tables,
        out: &mut Vec<Change>,
        tasks: &TaskSet,
        now: Timestamp,
    ) -> Option<Claim> {
        t.claim(
            out,
            &WorkerId::new("w"),
            tasks,
            Duration::from_secs(3600),
            now,
        )
        .unwrap()
    }

    fn replay(changes: Vec<Change>) -> Tables {
        let mut t = Tables::new();
        for change in changes {
            t.apply(change);
        }
        t
    }

    /// Everything a reader sees: roots, each workflow's members in order, every record and
    /// journal, counts.
    type Seen = (
        Vec<InvocationRecord>,
        Vec<Vec<InvocationId>>,
        Vec<(InvocationRecord, Vec<JournalEntry>)>,
        StatusCounts,
    );

    fn seen(t: &Tables) -> Seen {
        let roots = t.workflow_roots();
        let members: Vec<Vec<InvocationId>> = roots
            .iter()
            .map(|r| t.workflow_invocations(r.id()))
            .collect();
        let mut records: Vec<(InvocationRecord, Vec<JournalEntry>)> = members
            .iter()
            .flatten()
            .map(|m| (t.invocation(*m).unwrap(), t.journal(*m).unwrap()))
            .collect();
        records.sort_by_key(|(r, _)| r.id());
        (roots, members, records, t.counts())
    }

    /// The order in which claims by a worker running `tasks` at `now` hand everything out.
    fn claim_order(t: &Tables, tasks: &TaskSet, now: Timestamp) -> Vec<InvocationId> {
        let mut t = t.clone();
        let mut order = Vec::new();
        while let Some(c) = claim(&mut t, &mut Vec::new(), tasks, now) {
            order.push(c.lease.invocation);
        }
        order
    }

    /// Asserts that replaying the log and replaying a snapshot both rebuild what the live
    /// tables show, the app and the claim order included: for a worker running both tasks
    /// and for one running either, so the order within each task's queue and across them is
    /// rebuilt. Returns the claim order of a worker running both.
    fn assert_rebuilt(live: Logged, now: Timestamp) -> Vec<InvocationId> {
        let from_log = replay(live.log.clone());
        let from_snapshot = replay(live.tables.snapshot());
        let expected = seen(&live.tables);
        assert_eq!(seen(&from_log), expected, "log replay");
        assert_eq!(seen(&from_snapshot), expected, "snapshot replay");
        for (t, how) in [
            (&from_log, "log replay"),
            (&from_snapshot, "snapshot replay"),
        ] {
            assert_eq!(t.app_id(), live.tables.app_id(), "the app after {how}");
        }
        for set in [tasks(&TASKS), tasks(&["t"]), tasks(&["u"])] {
            let order = claim_order(&live.tables, &set, now);
            for (t, how) in [
                (&from_log, "log replay"),
                (&from_snapshot, "snapshot replay"),
            ] {
                assert_eq!(
                    claim_order(t, &set, now),
                    order,
                    "claim order of a worker running {set:?} after {how}"
                );
            }
        }
        claim_order(&live.tables, &tasks(&TASKS), now)
    }

    /// Children created by one commit share `created_at`; a snapshot (compaction) must keep
    /// them in submission order, not in id order.
    #[test]
    fn snapshot_keeps_submission_order() {
        let mut live = Logged::default();
        let p = root(1);
        live.submit(&p, at(0));
        let lease = live.claim(at(1));
        // Ids in descending order, so id order is the reverse of submission order.
        let kids = [child(0x30, &p), child(0x20, &p), child(0x10, &p)];
        live.commit(
            &lease,
            Commit {
                children: kids.to_vec(),
                ..Commit::outcome(Outcome::Waiting {
                    on: kids.iter().map(|k| k.id).collect(),
                })
            },
            at(2),
        );
        let submitted = [p.id, id(0x30), id(0x20), id(0x10)];
        assert_eq!(live.tables.workflow_invocations(p.id), submitted);
        assert_eq!(
            replay(live.tables.snapshot()).workflow_invocations(p.id),
            submitted,
            "members after a snapshot replay"
        );
        assert_eq!(
            assert_rebuilt(live, at(10)),
            [id(0x30), id(0x20), id(0x10)],
            "children are claimed in submission order"
        );
    }

    /// The ready queue is not creation order (a released invocation queues again at the back,
    /// a retry joins when its not-before time comes); log and snapshot replay keep its order.
    #[test]
    fn replay_keeps_the_queue_order() {
        let mut live = Logged::default();
        let (a, b, x) = (root(1), root(2), root(3));
        live.submit(&a, at(0));
        live.submit(&b, at(1));
        live.submit(&x, at(2));
        let lease = live.claim(at(3));
        assert_eq!(lease.invocation, a.id);
        live.commit(&lease, Commit::outcome(Outcome::Released), at(4));
        let lease = live.claim(at(5));
        assert_eq!(lease.invocation, b.id);
        live.commit(
            &lease,
            Commit::outcome(Outcome::Retry {
                not_before: at(8),
                error: Failure::new(FailureKind::Task, "flaky"),
            }),
            at(6),
        );
        // X waits since 2 ms, B's retry since 8 ms: X first.
        assert_eq!(live.claim(at(10)).invocation, x.id);
        let c = root(4);
        live.submit(&c, at(11));
        // Queued: A since 4 ms (released), B since 8 ms (retry due), C since 11 ms.
        assert_eq!(assert_rebuilt(live, at(20)), [a.id, b.id, c.id]);
    }

    /// A due retry is ordered among queued invocations by its not-before time, as a function of
    /// the logged state alone: claims do not move it anywhere the log does not record.
    #[test]
    fn log_replay_keeps_the_order_of_due_retries() {
        let mut live = Logged::default();
        let (a, q1, q2) = (root(1), root(2), root(3));
        live.submit(&a, at(0));
        let lease = live.claim(at(0));
        live.commit(
            &lease,
            Commit::outcome(Outcome::Retry {
                not_before: at(5),
                error: Failure::new(FailureKind::Task, "flaky"),
            }),
            at(0),
        );
        live.submit(&q1, at(1));
        live.submit(&q2, at(2));
        // Q1 waits since 1 ms, A's retry since 5 ms.
        assert_eq!(live.claim(at(10)).invocation, q1.id);
        assert_eq!(assert_rebuilt(live, at(20)), [q2.id, a.id]);
    }

    /// Each child's completion logs a constant amount, not the parent's whole remaining
    /// `waiting_on` list (a fan-out of N children would log O(N²) bytes), and replay still
    /// wakes the parent exactly when its last child finishes.
    #[test]
    fn child_completion_logs_constant_size() {
        const N: u128 = 100;
        let mut live = Logged::default();
        let p = root(1);
        live.submit(&p, at(0));
        let lease = live.claim(at(0));
        let kids: Vec<NewInvocation> = (0..N).map(|n| child(1000 + n, &p)).collect();
        live.commit(
            &lease,
            Commit {
                children: kids.clone(),
                ..Commit::outcome(Outcome::Waiting {
                    on: kids.iter().map(|k| k.id).collect(),
                })
            },
            at(1),
        );
        let mut sizes = Vec::new();
        for k in &kids {
            let lease = live.claim(at(2));
            assert_eq!(lease.invocation, k.id);
            let before = live.log.len();
            live.commit(&lease, Commit::outcome(Outcome::Success(Vec::new())), at(3));
            sizes.push(wf_core::codec::encode(&live.log[before..]).unwrap().len());
        }
        let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
        assert!(
            max < &(2 * min),
            "bytes logged per child completion must not grow with the children still awaited: \
             {sizes:?}"
        );
        let parent = live.tables.invocation(p.id).unwrap();
        assert_eq!(
            parent.state.status,
            Status::Pending,
            "the last child wakes it"
        );
        assert!(parent.state.waiting_on.is_empty());
        assert_eq!(parent.state.updated_at, at(3));
        assert_eq!(assert_rebuilt(live, at(10)), [p.id]);
    }

    /// Timers, events (consumed or not, with keys), what a waiting invocation waits for and
    /// cancellation requests (new and acknowledged): log replay and snapshot replay rebuild
    /// them, and the claim order with a due timer.
    #[test]
    fn replay_keeps_timers_events_and_cancellations() {
        use crate::steering::NewEvent;
        let event = |name: &str, key: Option<&str>| NewEvent {
            name: name.to_owned(),
            payload: name.as_bytes().to_vec(),
            key: key.map(str::to_owned),
        };
        let mut live = Logged::default();
        let (a, b, c, d) = (root(1), root(2), root(3), root(4));
        for (n, inv) in [&a, &b, &c, &d].into_iter().enumerate() {
            live.submit(inv, at(n as u64));
        }
        // a sleeps until 50 ms.
        let la = live.claim(at(5));
        assert_eq!(la.invocation, a.id);
        let sleep = Suspension {
            wake_at: Some(at(50)),
            ..Suspension::default()
        };
        live.commit(&la, Commit::outcome(Outcome::Suspended(sleep)), at(6));
        // b consumes one "go" and waits for the next.
        live.tables
            .send_event(&mut live.log, b.id, event("go", Some("k")), at(7))
            .unwrap();
        let lb = live.claim(at(8));
        assert_eq!(lb.invocation, b.id);
        let wait = Suspension {
            event: Some("go".to_owned()),
            ..Suspension::default()
        };
        let consume = Commit {
            journal: fixtures::entries(0, 1),
            consumed: vec![0],
            ..Commit::outcome(Outcome::Suspended(wait))
        };
        live.commit(&lb, consume, at(9));
        live.tables
            .send_event(&mut live.log, b.id, event("other", None), at(10))
            .unwrap();
        // c runs and is asked to stop; d runs, is asked to stop and acknowledges.
        let lc = live.claim(at(11));
        let ld = live.claim(at(11));
        assert_eq!((lc.invocation, ld.invocation), (c.id, d.id));
        for id in [c.id, d.id] {
            live.tables
                .cancel_tree(&mut live.log, id, "stop", at(12))
                .unwrap();
        }
        let told = Commit {
            cancel_acknowledged: true,
            ..Commit::outcome(Outcome::Released)
        };
        live.commit(&ld, told, at(13));

        let ids = [a.id, b.id, c.id, d.id];
        let steering = |t: &Tables| {
            let inboxes: Vec<_> = ids.iter().map(|id| t.events(*id).unwrap()).collect();
            let requests: Vec<_> = ids.iter().map(|id| t.cancels.get(id).cloned()).collect();
            (
                inboxes,
                requests,
                t.cancel_requests(&ids),
                t.next_due(&tasks(&TASKS)),
            )
        };
        let expected = steering(&live.tables);
        assert_eq!(expected.0[1].events.len(), 2);
        assert_eq!(expected.0[1].waiting_for.as_deref(), Some("go"));
        assert_eq!(expected.3, Some(at(50)));
        assert_eq!(steering(&replay(live.log.clone())), expected, "log replay");
        assert_eq!(
            steering(&replay(live.tables.snapshot())),
            expected,
            "snapshot replay"
        );
        // Claimable at 60 ms: d (released at 13 ms) then a (its timer fired at 50 ms).
        assert_eq!(assert_rebuilt(live, at(60)), [d.id, a.id]);
    }

    /// Logs written before a variant existed must still decode: every enum a log holds keeps
    /// its variants' positions (the encoded variant index follows the codec's version byte),
    /// and new variants go last.
    #[test]
    fn logged_enums_keep_their_variant_positions() {
        use wf_core::{ChildOutcome, Op, codec::encode};
        let index = |bytes: Vec<u8>| bytes[1];
        let app = Change::App(String::new());
        assert_eq!(index(encode(&app).unwrap()), 6, "Change::App");
        let awaited = Change::AwaitEvent(InvocationId::from_u128(1), None);
        assert_eq!(index(encode(&awaited).unwrap()), 9, "Change::AwaitEvent");
        assert_eq!(index(encode(&Status::Failed).unwrap()), 6, "Status::Failed");
        assert_eq!(
            index(encode(&Status::Cancelled).unwrap()),
            7,
            "Status::Cancelled"
        );
        let result = Op::ChildResult {
            child: InvocationId::from_u128(1),
            outcome: ChildOutcome::Success(Vec::new()),
        };
        assert_eq!(index(encode(&result).unwrap()), 5, "Op::ChildResult");
        assert_eq!(index(encode(&Op::TimerFired).unwrap()), 7, "Op::TimerFired");
        let told = Op::Cancelled {
            reason: String::new(),
        };
        assert_eq!(index(encode(&told).unwrap()), 10, "Op::Cancelled");
    }

    /// A checkpoint's inline child is created running (never queued), its siblings queued in
    /// order; log and snapshot replay rebuild both, and the leases recovery looks at.
    #[test]
    fn replay_rebuilds_a_checkpoint() {
        let mut live = Logged::default();
        let p = root(1);
        live.submit(&p, at(0));
        let lease = live.claim(at(1));
        let (inline, sibling) = (child(2, &p), child(3, &p));
        let claim = live
            .tables
            .checkpoint(
                &mut live.log,
                &lease,
                Checkpoint {
                    journal: fixtures::entries(0, 1),
                    data: Vec::new(),
                    children: vec![inline.clone(), sibling.clone()],
                },
                inline.id,
                Duration::from_secs(10),
                at(2),
            )
            .unwrap();
        assert_eq!(claim.lease.invocation, inline.id);
        let later = at(2).saturating_add(Duration::from_secs(11));
        for mut t in [replay(live.log.clone()), replay(live.tables.snapshot())] {
            let mut lost = t.recover_expired(&mut Vec::new(), later).unwrap();
            lost.sort();
            assert_eq!(
                lost,
                [p.id, inline.id],
                "both leases are indexed after replay"
            );
        }
        assert_eq!(assert_rebuilt(live, at(3)), [sibling.id]);
    }

    /// Two tasks' queues, each in its own order and interleaved by when their invocations
    /// became ready (submitted, released, retry due), with the app the store was bound to:
    /// log replay and snapshot replay rebuild all of it.
    #[test]
    fn replay_keeps_per_task_queues_and_the_order_across_them() {
        let mut live = Logged::default();
        live.tables.bind_app(&mut live.log, "test", "shop").unwrap();
        let [t1, u1, t2, u2, t3] = [
            fixtures::root(1, "t", b""),
            fixtures::root(2, "u", b""),
            fixtures::root(3, "t", b""),
            fixtures::root(4, "u", b""),
            fixtures::root(5, "t", b""),
        ];
        for (n, inv) in [&t1, &u1, &t2, &u2].into_iter().enumerate() {
            live.submit(inv, at(n as u64));
        }
        // t1 runs and is released (queued again at 11 ms); u1 runs and retries from 12 ms.
        let lease = live.claim(at(10));
        assert_eq!(lease.invocation, t1.id);
        live.commit(&lease, Commit::outcome(Outcome::Released), at(11));
        let lease = live.claim(at(10));
        assert_eq!(lease.invocation, u1.id);
        live.commit(
            &lease,
            Commit::outcome(Outcome::Retry {
                not_before: at(12),
                error: Failure::new(FailureKind::Task, "flaky"),
            }),
            at(11),
        );
        live.submit(&t3, at(13));
        // Ready: t2 (2 ms), u2 (3 ms), t1 (11 ms), u1 (retry, 12 ms), t3 (13 ms).
        assert_eq!(
            assert_rebuilt(live, at(20)),
            [t2.id, u2.id, t1.id, u1.id, t3.id]
        );
    }
}
