//! The records a store keeps and the requests it takes.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use std::time::Duration;

use wf_core::{
    CallId, Failure, InvocationId, JournalEntry, Status, TaskId, Timestamp, WorkerId,
    WorkflowIdentity,
};

/// The immutable part of an invocation: what was called, by whom, in which workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvocationSpec {
    /// The invocation's id.
    pub id: InvocationId,
    /// The task called.
    pub task: TaskId,
    /// Hash of task and arguments.
    pub call: CallId,
    /// The encoded arguments.
    pub args: Vec<u8>,
    /// The workflow it belongs to.
    pub identity: WorkflowIdentity,
    /// The invocation that called it, if any.
    pub parent: Option<InvocationId>,
    /// When it was submitted.
    pub created_at: Timestamp,
    /// How many lost executions in a row are recovered before it fails (see
    /// [`InvocationState::recoveries`]).
    pub max_recoveries: u32,
}

/// The changing part of an invocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvocationState {
    /// Current status.
    pub status: Status,
    /// How many times a worker claimed it (the current attempt's number while running). Every
    /// execution counts: first runs, retries, recoveries and replays after a wake-up.
    pub attempts: u32,
    /// How many executions ended in a retry (the retry budget spent so far).
    pub retries: u32,
    /// How many executions in a row were lost (their lease expired: the worker crashed, was
    /// killed or stalled) since the last commit. Once it reaches the spec's `max_recoveries`, the
    /// next lost execution fails the invocation with `FailureKind::WorkerLost` instead of
    /// queueing it again, so a task that kills its worker cannot do so forever.
    pub recoveries: u32,
    /// The lease while running.
    pub lease: Option<LeaseInfo>,
    /// Not runnable before this time (retry backoff, delayed start). While waiting: when its
    /// timer fires (a sleep, or a wait's deadline), if it has one; it is claimable then.
    pub not_before: Option<Timestamp>,
    /// The encoded result, once successful.
    pub result: Option<Vec<u8>>,
    /// The error: the final one once failed, the last attempt's while retrying.
    pub error: Option<Failure>,
    /// Children it is suspended on while waiting.
    pub waiting_on: Vec<InvocationId>,
    /// When the status last changed.
    pub updated_at: Timestamp,
}

/// Who holds a running invocation, and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseInfo {
    /// The worker holding it.
    pub worker: WorkerId,
    /// The lease is void after this time.
    pub expires_at: Timestamp,
}

/// An invocation as read back: its spec and its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvocationRecord {
    /// What was called.
    pub spec: Arc<InvocationSpec>,
    /// Where it is.
    pub state: InvocationState,
}

impl InvocationRecord {
    /// The invocation's id.
    pub fn id(&self) -> InvocationId {
        self.spec.id
    }

    /// Its status.
    pub fn status(&self) -> Status {
        self.state.status
    }

    /// True when it is the root of its workflow.
    pub fn is_root(&self) -> bool {
        self.spec.identity.is_root(self.spec.id)
    }
}

/// A request to store a new invocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewInvocation {
    /// Its id (submission is idempotent by id).
    pub id: InvocationId,
    /// The task.
    pub task: TaskId,
    /// Hash of task and arguments.
    pub call: CallId,
    /// Encoded arguments.
    pub args: Vec<u8>,
    /// Its workflow.
    pub identity: WorkflowIdentity,
    /// The calling invocation, if any.
    pub parent: Option<InvocationId>,
    /// Not runnable before this time.
    pub not_before: Option<Timestamp>,
    /// Lost executions in a row recovered before it fails; [`DEFAULT_MAX_RECOVERIES`] unless
    /// the task says otherwise.
    pub max_recoveries: u32,
}

/// How many lost executions in a row an invocation survives by default: a worker restart or
/// two mid-task is normal operations; the fourth loss in a row is a crash loop.
pub const DEFAULT_MAX_RECOVERIES: u32 = 3;

/// What [`crate::StoreWork::submit`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Submitted {
    /// The invocation was stored and queued.
    Created,
    /// An identical invocation with this id already existed; nothing changed.
    AlreadyExists,
}

/// The right to run and commit one attempt of an invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The invocation.
    pub invocation: InvocationId,
    /// The holder.
    pub worker: WorkerId,
    /// The attempt this lease is for; a later claim has a higher one (the fencing token).
    pub attempt: u32,
    /// Void after this time unless renewed.
    pub expires_at: Timestamp,
}

/// A claimed invocation, with everything needed to run it (one round trip).
#[derive(Debug, Clone)]
pub struct Claim {
    /// The lease to renew and commit with.
    pub lease: Lease,
    /// The invocation.
    pub record: InvocationRecord,
    /// Its journal so far.
    pub journal: Vec<JournalEntry>,
}

/// Everything one execution produced, persisted atomically.
#[derive(Debug, Clone, PartialEq)]
pub struct Commit {
    /// New journal entries, continuing the stored journal's sequence.
    pub journal: Vec<JournalEntry>,
    /// Writes to the invocation's workflow data (only a workflow root may write).
    pub data: Vec<(String, Vec<u8>)>,
    /// Children to submit (idempotent by id).
    pub children: Vec<NewInvocation>,
    /// The new status.
    pub outcome: Outcome,
    /// Events sent to this invocation that this execution consumed (journaled as the values of
    /// its `wait_event`s), by number: marked consumed in the same atomic step. An event
    /// consumed before, or unknown, makes the commit invalid.
    pub consumed: Vec<u64>,
    /// Whether the body was told of its cancellation request (its journal holds the
    /// cancellation): a non-final outcome then keeps it alive to run compensating steps. When a
    /// cancellation was requested and this is false, the commit writes nothing but the
    /// cancellation: the invocation ends cancelled.
    pub cancel_acknowledged: bool,
}

/// Progress of a running execution, persisted without ending it: what
/// [`crate::StoreWork::checkpoint`] writes before one of the children runs inline. The same
/// parts as a [`Commit`], without an outcome: the invocation stays running under its lease.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Checkpoint {
    /// New journal entries, continuing the stored journal's sequence.
    pub journal: Vec<JournalEntry>,
    /// Writes to the invocation's workflow data (only a workflow root may write).
    pub data: Vec<(String, Vec<u8>)>,
    /// Children to submit (idempotent by id); one of them is claimed at once for the caller.
    pub children: Vec<NewInvocation>,
}

impl Checkpoint {
    /// Whether a replay of the invocation reproduces everything this checkpoint carries from
    /// what the store held durably before it: its journal holds only child starts (a child's
    /// id, task and call follow from the journal before them, the body being deterministic) and
    /// child results (copies of final outcomes, which are handed to the caller only once durable),
    /// it writes no workflow data, and no child carries a not-before time. A checkpoint that
    /// records a value drawn since the last durable point (`random()`, `uuid()`, `utc_now()`, a
    /// timer, a data read, an event, a patch marker, a cancellation) is not replayable: a crash
    /// that took it back could lead a replay to a different child.
    ///
    /// A store may let such a checkpoint's child run before the checkpoint is durable (see
    /// [`crate::StoreWork::checkpoint`]): if a crash takes it back, the caller's next execution
    /// replays into the same child, under the same id, which runs again, as any task may.
    pub fn replayable(&self) -> bool {
        self.data.is_empty()
            && self.children.iter().all(|c| c.not_before.is_none())
            && self.journal.iter().all(|e| {
                matches!(
                    e.op,
                    wf_core::Op::ChildStart { .. } | wf_core::Op::ChildResult { .. }
                )
            })
    }
}

impl Commit {
    /// A commit of just an outcome.
    pub fn outcome(outcome: Outcome) -> Self {
        Self {
            journal: Vec::new(),
            data: Vec::new(),
            children: Vec::new(),
            outcome,
            consumed: Vec::new(),
            cancel_acknowledged: false,
        }
    }
}

/// How an execution ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Finished with this encoded result.
    Success(Vec<u8>),
    /// Finished with this error.
    Failed(Failure),
    /// Failed this attempt; runnable again at `not_before`.
    Retry {
        /// When to retry.
        not_before: Timestamp,
        /// This attempt's error.
        error: Failure,
    },
    /// Suspended until every listed child (its own children) is final.
    Waiting {
        /// The children.
        on: Vec<InvocationId>,
    },
    /// Handed back unfinished (graceful stop): runnable again at once.
    Released,
    /// Could not finish for a reason outside the task (a store read failed mid-body): pending
    /// again at `not_before`, without spending the retry budget.
    Deferred {
        /// When to run it again.
        not_before: Timestamp,
        /// What went wrong, kept as the invocation's last error.
        error: Failure,
    },
    /// Suspended until any part of the [`Suspension`] happens: its children are all final, its
    /// timer fires, or the event it waits for arrives. (`Waiting { on }` is the suspension on
    /// children alone.)
    Suspended(Suspension),
}

/// What a suspended invocation waits for; any one part wakes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Suspension {
    /// Its own children: it wakes once every one is final (none: not waiting on children).
    pub children: Vec<InvocationId>,
    /// When its timer fires (a sleep, or a wait's deadline): it is claimable then.
    pub wake_at: Option<Timestamp>,
    /// The name of an event it waits for: one arriving wakes it (one already there and not
    /// consumed makes it pending at once).
    pub event: Option<String>,
}

/// Invocation counts by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCounts {
    counts: [u64; Status::ALL.len()],
}

impl StatusCounts {
    fn index(status: Status) -> usize {
        Status::ALL.iter().position(|s| *s == status).unwrap_or(0)
    }

    /// The count for one status.
    pub fn get(&self, status: Status) -> u64 {
        self.counts[Self::index(status)]
    }

    /// All invocations.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Each status with its count.
    pub fn iter(&self) -> impl Iterator<Item = (Status, u64)> + '_ {
        Status::ALL.iter().map(|s| (*s, self.get(*s)))
    }

    pub(crate) fn add(&mut self, status: Status) {
        self.counts[Self::index(status)] += 1;
    }

    pub(crate) fn remove(&mut self, status: Status) {
        let c = &mut self.counts[Self::index(status)];
        *c = c.saturating_sub(1);
    }

    /// Adds `n` to a status's count (a backend that keeps counts elsewhere sums them here).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn add_n(&mut self, status: Status, n: u64) {
        self.counts[Self::index(status)] += n;
    }
}

/// The tasks a worker can run: a claim hands out only invocations of these tasks
/// ([`crate::StoreWork::claim`]), so work no worker here can run stays pending for a worker that
/// can. Immutable and cheap to clone (shared, sorted, without duplicates).
///
/// ```
/// use wf_core::TaskId;
/// use wf_store::TaskSet;
/// let tasks = TaskSet::new(["email.send", "order.ship", "email.send"]);
/// assert_eq!(tasks.len(), 2);
/// assert!(tasks.contains(&TaskId::new("order.ship")));
/// assert!(!tasks.contains(&TaskId::new("order.cancel")));
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct TaskSet(Arc<[TaskId]>);

impl TaskSet {
    /// The set of these tasks (duplicates count once).
    pub fn new<T: Into<TaskId>>(tasks: impl IntoIterator<Item = T>) -> Self {
        let mut tasks: Vec<TaskId> = tasks.into_iter().map(Into::into).collect();
        tasks.sort();
        tasks.dedup();
        Self(tasks.into())
    }

    /// Whether `task` is in the set.
    pub fn contains(&self, task: &TaskId) -> bool {
        self.0.binary_search(task).is_ok()
    }

    /// The tasks, in name order.
    pub fn iter(&self) -> std::slice::Iter<'_, TaskId> {
        self.0.iter()
    }

    /// How many tasks.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty (a worker with no tasks claims nothing).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for TaskSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set()
            .entries(self.0.iter().map(TaskId::as_str))
            .finish()
    }
}

impl<T: Into<TaskId>> FromIterator<T> for TaskSet {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        Self::new(iter)
    }
}

impl<'a> IntoIterator for &'a TaskSet {
    type Item = &'a TaskId;
    type IntoIter = std::slice::Iter<'a, TaskId>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Lease length helper: a lease granted at `now` for `d`.
pub fn lease_expiry(now: Timestamp, d: Duration) -> Timestamp {
    now.saturating_add(d)
}
