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

use serde::{Deserialize, Serialize};
use wf_core::{
    CallId, Failure, FailureKind, IdHashing, InvocationId, JournalEntry, Status, TaskId, Timestamp,
    WorkflowIdentity,
};

use crate::error::StoreError;
use crate::model::{InvocationSpec, InvocationState, NewInvocation, StatusCounts};
use crate::steering::{CancelRequest, StoredEvent};

mod steering;

use slot::Slot;
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

/// The claimable invocations of one task.
#[derive(Default)]
#[cfg_attr(test, derive(Clone))]
struct TaskQueue {
    /// Those without a not-before time, by ticket: the order they became ready.
    ready: ready::ReadyQueue,
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
    /// Boxed: the map's entries stay small (a slot is ~180 bytes, and a hash map keeps
    /// spare entries), so a finished invocation costs less memory.
    invocations: IdMap<Box<Slot>>,
    journals: IdMap<journal::Journal>,
    data: IdMap<BTreeMap<String, Vec<u8>>>,
    members: IdMap<members::Members>,
    /// The app the store belongs to, once bound.
    app: Option<String>,
    /// Claimable invocations by task. A task's entry stays once made (empty when it has nothing
    /// claimable): there are as many as distinct task names, and keeping them saves re-making
    /// the entry on every submit of a task whose queue just ran empty.
    queues: HashMap<TaskId, TaskQueue, IdHashing>,
    /// Running invocations by lease expiry, of every task.
    leases: BTreeSet<(Timestamp, InvocationId)>,
    /// Per invocation: the events sent to it and the event it waits for.
    inboxes: IdMap<Inbox>,
    /// Cancellation requests of invocations that were running when their tree was cancelled.
    cancels: IdMap<CancelRequest>,
    /// Each invocation's children in submission order (derived from `Created`): a cancelled
    /// tree is found by following it.
    children: IdMap<Vec<InvocationId>>,
    counts: StatusCounts,
    next_seq: u64,
    next_ticket: u64,
    /// Set by a backend that logs nothing (memory): operations then leave the change list
    /// empty and only count whom their changes wake ([`Tables::take_wakes`]), copying nothing.
    unlogged: bool,
    /// The stored copy of the task name interned last: a name that is this very copy (the
    /// same allocation; a burst's specs all share their task's name) needs no lookup.
    last_interned: Option<TaskId>,
    /// Unlogged: what the changes since the last [`Tables::take_wakes`] woke, instead of a
    /// copy of each change in the change list.
    wakes: Wakes,
    /// While an operation is recorded for undoing: what its changes replaced, oldest first.
    undo: Option<Vec<undo::Undo>>,
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

    /// These tables, for a backend that logs nothing (memory): operations then leave the change
    /// list empty and count whom their changes wake instead (`Tables::take_wakes`).
    pub fn unlogged(mut self) -> Self {
        self.unlogged = true;
        self
    }

    /// Unlogged tables: whom the changes since the last call wake (they are not in the change
    /// list), and starts counting again.
    pub(crate) fn take_wakes(&mut self) -> Wakes {
        std::mem::take(&mut self.wakes)
    }
}

/// Whom changes wake: how many of them made something claimable, and whether any made
/// something final (or purged it: a waiter on a purged invocation must learn it is gone).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Wakes {
    pub(crate) new_work: usize,
    pub(crate) any_final: bool,
}

impl Wakes {
    /// Counts what `change` wakes.
    pub(crate) fn note(&mut self, change: &Change) {
        let state = match change {
            Change::Created(_, s) | Change::State(_, s) => s,
            Change::Purged(_) => {
                self.any_final = true;
                return;
            }
            _ => return,
        };
        // A timer of a waiting invocation makes it claimable later: waiters re-read `next_due`.
        let timer = state.status == wf_core::Status::Waiting && state.not_before.is_some();
        self.new_work += usize::from(state.status.is_claimable() || timer);
        self.any_final |= state.status.is_final();
    }
}

mod admin;
mod apply;
mod commit;
mod journal;
mod lease;
#[cfg(test)]
mod lease_tests;
mod members;
mod reads;
#[cfg(test)]
mod reads_tests;
mod ready;
mod retention;
pub use retention::PURGE_BATCH;
#[cfg(test)]
mod bounds_tests;
mod slot;
mod snapshot;
mod submit;
#[cfg(test)]
mod tests;
mod undo;
#[cfg(test)]
mod wakes_tests;
