//! The storage contract, split by caller: what readers need ([`StoreRead`]), what workers and
//! submitting callers need ([`StoreWork`]), what operators need ([`StoreAdmin`]). A full store
//! ([`Store`]) is all three; a read-only view (the file store's `FileStore::snapshot`, which the
//! inspector uses) is only a [`StoreRead`].
//!
//! Every backend passes the conformance suite (`wf_store::conformance`, feature `testing`);
//! each method's documentation names the tests that pin it, as `topic::test`. All methods are
//! synchronous and atomic; `now` is the caller's wall clock, so leases and not-before times are
//! judged against one time source per call. Blocking waits are event-driven: they return as
//! soon as the awaited thing happens.

use std::time::Duration;

use wf_core::{InvocationId, JournalEntry, Timestamp, WorkerId};

use crate::error::StoreError;
use crate::model::{
    Checkpoint, Claim, Commit, InvocationRecord, InvocationSpec, Lease, NewInvocation,
    StatusCounts, Submitted, TaskSet,
};
use crate::steering::{CancelReport, EventInbox, EventSent, NewEvent};

/// Reads: what the inspector, monitors and `Invocation::result` need.
pub trait StoreRead: Send + Sync + 'static {
    /// A short name for logs and tools: `"memory"`, `"file"`, `"redis"`.
    fn backend(&self) -> &'static str;

    /// The id of the app this store belongs to, once one was bound ([`StoreWork::bind_app`]);
    /// `None` for a store no app has opened yet.
    ///
    /// # Errors
    /// A failed store ([`StoreError::Io`], [`StoreError::Unavailable`]).
    ///
    /// Pinned by `app::first_bind_records_the_app`, `app::other_app_is_refused_naming_both`.
    fn app_id(&self) -> Result<Option<String>, StoreError>;

    /// An invocation's record.
    ///
    /// # Errors
    /// [`StoreError::InvocationNotFound`] for an id never submitted or purged.
    ///
    /// Pinned by `submit::submit_is_idempotent`, `reads::unknown_ids_are_not_found` and the
    /// state every other test reads back.
    fn invocation(&self, id: InvocationId) -> Result<InvocationRecord, StoreError>;

    /// Several invocations' records in one round trip, in the order asked.
    ///
    /// # Errors
    /// [`StoreError::InvocationNotFound`] naming the first unknown id.
    ///
    /// Pinned by `reads::invocations_in_order_asked`, `reads::unknown_ids_are_not_found`.
    fn invocations(&self, ids: &[InvocationId]) -> Result<Vec<InvocationRecord>, StoreError> {
        ids.iter().map(|id| self.invocation(*id)).collect()
    }

    /// An invocation's journal.
    ///
    /// # Errors
    /// [`StoreError::InvocationNotFound`] for an unknown id.
    ///
    /// Pinned by `claim::claim_returns_journal`, `commit::commit_journal_must_be_contiguous`.
    fn journal(&self, id: InvocationId) -> Result<Vec<JournalEntry>, StoreError>;

    /// One value from a workflow's data (`None` for an unknown key or workflow).
    ///
    /// # Errors
    /// A failed store.
    ///
    /// Pinned by `data::data_writes_by_root`, `values::large_values_round_trip`.
    fn get_data(&self, workflow: InvocationId, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// A workflow's data keys, sorted.
    ///
    /// # Errors
    /// A failed store.
    ///
    /// Pinned by `data::data_writes_by_root`.
    fn data_keys(&self, workflow: InvocationId) -> Result<Vec<String>, StoreError>;

    /// A workflow's invocations, in submission order.
    ///
    /// # Errors
    /// A failed store.
    ///
    /// Pinned by `reads::workflow_membership`.
    fn workflow_invocations(&self, workflow: InvocationId)
    -> Result<Vec<InvocationId>, StoreError>;

    /// The root invocation of every stored workflow, oldest first.
    ///
    /// # Errors
    /// A failed store.
    ///
    /// Pinned by `reads::workflow_membership`, `retention::purge_finished_removes_only_old_finished`.
    fn workflows(&self) -> Result<Vec<InvocationRecord>, StoreError>;

    /// Invocation counts by status.
    ///
    /// # Errors
    /// A failed store.
    ///
    /// Pinned by `reads::counts_by_status`.
    fn counts(&self) -> Result<StatusCounts, StoreError>;

    /// The workflows [`StoreAdmin::purge_finished`] would remove with the same
    /// `finished_before`, now: every workflow of each finished tree, sub-workflows included, in
    /// the order they were created. Removes nothing: a purge's dry run, which works on a
    /// read-only view too (a snapshot of a live store). A later purge removes what is finished
    /// by then, which may be more.
    ///
    /// # Errors
    /// A failed store.
    ///
    /// Pinned by `admin::purgeable_lists_what_purge_would_remove_and_removes_nothing`.
    fn purgeable(&self, finished_before: Timestamp) -> Result<Vec<InvocationId>, StoreError>;

    /// Blocks until invocation `id` is final (returns its record) or `timeout` passes (`None`).
    ///
    /// # Errors
    /// [`StoreError::InvocationNotFound`] when `id` does not exist when called, or disappears
    /// (is purged) while waiting: the wait ends then, it does not run out its timeout.
    ///
    /// Pinned by `waits::wait_final_wakes_on_commit`, `waits::wait_final_wakes_on_cancel`,
    /// `waits::wait_final_times_out`, `waits::wait_final_ends_when_purged`.
    fn wait_final(
        &self,
        id: InvocationId,
        timeout: Duration,
    ) -> Result<Option<InvocationRecord>, StoreError>;

    /// The events sent to invocation `id`, consumed or not, in arrival order, and the name of the
    /// event it waits for while it waits for one.
    ///
    /// # Errors
    /// [`StoreError::InvocationNotFound`] for an unknown id.
    ///
    /// Pinned by `events::events_are_buffered_in_arrival_order`,
    /// `events::consumption_is_atomic_with_the_commit`, `events::waiting_for_is_readable`.
    fn events(&self, id: InvocationId) -> Result<EventInbox, StoreError>;

    /// Of the invocations `ids`, those not final whose cancellation was requested while they ran
    /// ([`StoreAdmin::cancel_tree`]), each with the reason; unknown ids are left out. Workers ask
    /// it for the invocations they run (with their lease renewals), so a running body learns of
    /// its cancellation.
    ///
    /// # Errors
    /// A failed store.
    ///
    /// Pinned by `cancel_tree::cancel_tree_cancels_a_fan_out`,
    /// `cancel_tree::a_stopping_member_ends_cancelled_at_its_commit`.
    fn cancel_requests(
        &self,
        ids: &[InvocationId],
    ) -> Result<Vec<(InvocationId, String)>, StoreError>;
}

/// What workers, and callers submitting work, need.
pub trait StoreWork: StoreRead {
    /// Binds the store to the app `app_id`: the first bind records it durably, a later bind
    /// with the same id changes nothing. `App::build` calls it once.
    ///
    /// # Errors
    /// [`StoreError::AppMismatch`] naming both ids when the store belongs to another app
    /// (nothing changes).
    ///
    /// Pinned by `app::first_bind_records_the_app`, `app::same_app_binds_again`,
    /// `app::other_app_is_refused_naming_both`.
    fn bind_app(&self, app_id: &str) -> Result<(), StoreError>;

    /// Stores and queues an invocation. Idempotent by id: an identical resubmission changes
    /// nothing.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] for a different call under an existing id;
    /// [`StoreError::TooLarge`] for a submission over the store's limits (its record, or a task
    /// name over [`crate::limits::MAX_TASK_NAME_BYTES`]).
    ///
    /// Pinned by `submit::submit_is_idempotent`, `submit::submit_conflict_is_refused`,
    /// `submit::long_task_names_are_refused`.
    fn submit(&self, invocation: NewInvocation, now: Timestamp) -> Result<Submitted, StoreError>;

    /// Stores and queues several invocations in **one** operation (one log record and one fsync
    /// on the file store, one script call on Redis), all or nothing. Each is idempotent by id as
    /// in [`StoreWork::submit`], within the batch too (an identical repeat is `AlreadyExists`);
    /// the answers come in the order given. `Task::call_many` uses it.
    ///
    /// The default checks the whole batch against the store first (one read), then submits one
    /// by one: all or nothing unless another caller submits a conflicting id in between, and
    /// not one round trip. Memory and file override it with one atomic operation; a backend
    /// should (Redis: one script call).
    ///
    /// # Errors
    /// [`StoreError::Conflict`] naming the first id that is another call, in the store or earlier
    /// in the batch; [`StoreError::TooLarge`] for a batch over the store's record limit or a
    /// task name over [`crate::limits::MAX_TASK_NAME_BYTES`]. Either way nothing is submitted.
    ///
    /// Pinned by `submit::submit_many_is_one_atomic_batch`,
    /// `submit::submit_many_conflict_submits_nothing`.
    fn submit_many(
        &self,
        invocations: Vec<NewInvocation>,
        now: Timestamp,
    ) -> Result<Vec<Submitted>, StoreError> {
        for new in &invocations {
            crate::limits::check_task_name(&new.task)?;
        }
        let ids: Vec<InvocationId> = invocations.iter().map(|i| i.id).collect();
        let stored: Vec<Option<InvocationRecord>> = ids
            .iter()
            .map(|id| match self.invocation(*id) {
                Ok(r) => Ok(Some(r)),
                Err(StoreError::InvocationNotFound(_)) => Ok(None),
                Err(e) => Err(e),
            })
            .collect::<Result<_, _>>()?;
        for (i, new) in invocations.iter().enumerate() {
            let same = |s: &InvocationSpec| {
                (&s.task, s.call, &s.args, s.parent, &s.identity)
                    == (&new.task, new.call, &new.args, new.parent, &new.identity)
            };
            let earlier = invocations[..i].iter().find(|e| e.id == new.id);
            let conflict = match (&stored[i], earlier) {
                (Some(r), _) => !same(&r.spec),
                (None, Some(e)) => {
                    (&e.task, e.call, &e.args, e.parent, &e.identity)
                        != (&new.task, new.call, &new.args, new.parent, &new.identity)
                }
                (None, None) => false,
            };
            if conflict {
                return Err(StoreError::Conflict(new.id));
            }
        }
        invocations
            .into_iter()
            .map(|invocation| self.submit(invocation, now))
            .collect()
    }

    /// Claims, for `worker`, the runnable invocation of one of `tasks` that has been runnable
    /// longest (pending, or retrying/delayed with its not-before time passed), with a lease
    /// until `now + lease_for`. Its status becomes running and its attempt number grows by one.
    /// Invocations whose leases expired are recovered first (of any task). Invocations of tasks
    /// outside `tasks` are never handed out, and stay as they are.
    ///
    /// # Errors
    /// A failed store.
    ///
    /// Pinned by `claim::claim_is_fifo_and_leases`, `claim::claim_returns_journal`,
    /// `claim::concurrent_claims_never_duplicate`, `claim::submitted_not_before_is_honoured`,
    /// `tasks::claim_hands_out_only_tasks_in_the_set`, `tasks::claim_is_fifo_across_tasks`,
    /// `recovery::claim_recovers_expired`.
    fn claim(
        &self,
        worker: &WorkerId,
        tasks: &TaskSet,
        lease_for: Duration,
        now: Timestamp,
    ) -> Result<Option<Claim>, StoreError>;

    /// The earliest time at which something becomes claimable by `tasks` by the clock alone (a
    /// retry's or a delayed invocation's not-before time, or a lease expiry), if any. Lets a
    /// single-threaded test driver skip ahead instead of waiting.
    ///
    /// # Errors
    /// A failed store.
    ///
    /// Pinned by `claim::next_due_reports_earliest_clock_event`,
    /// `tasks::idle_worker_ignores_other_tasks_work`.
    fn next_due(&self, tasks: &TaskSet) -> Result<Option<Timestamp>, StoreError>;

    /// Blocks until a claim by `tasks` may succeed or `timeout` passes; returns whether work
    /// may be there. Work of other tasks does not end the wait, so an idle worker never spins.
    ///
    /// # Errors
    /// A failed store.
    ///
    /// Pinned by `waits::wait_for_work_wakes_on_submit`,
    /// `waits::wait_for_work_times_out_when_idle`, `tasks::idle_worker_ignores_other_tasks_work`.
    fn wait_for_work(&self, tasks: &TaskSet, timeout: Duration) -> Result<bool, StoreError>;

    /// Extends a lease that is still held.
    ///
    /// # Errors
    /// [`StoreError::LeaseLost`] if it is not.
    ///
    /// Pinned by `leases::renew_extends_lease`, `leases::lease_expiry_boundary`,
    /// `leases::stale_lease_expired_cannot_commit`, `leases::stale_attempt_cannot_commit`.
    fn renew(
        &self,
        lease: &Lease,
        lease_for: Duration,
        now: Timestamp,
    ) -> Result<Lease, StoreError>;

    /// Persists one execution atomically: journal entries, data writes, child submissions and the
    /// new status, all or nothing. A final status wakes a parent waiting on it once all of that
    /// parent's awaited children are final.
    ///
    /// # Errors
    /// [`StoreError::LeaseLost`] (nothing written) when the lease expired or another attempt
    /// holds the invocation; [`StoreError::InvalidCommit`], [`StoreError::Access`],
    /// [`StoreError::Conflict`] (also for two children under one id that are different calls),
    /// [`StoreError::TooLarge`] for a commit the store refuses (nothing written).
    ///
    /// Pinned by the `commit`, `waiting`, `data` and `leases` topics.
    fn commit(&self, lease: &Lease, commit: Commit, now: Timestamp) -> Result<(), StoreError>;

    /// [`StoreWork::commit`] for a caller that acts on nothing the commit leads to (a worker
    /// pool's thread, which goes on to its next claim): the store may return before the commit
    /// is durable. Its outcome is still handed out to no one before it is durable (a
    /// `wait_final`, a read, a parent it wakes, a claim of a child it submits all wait for it),
    /// so *durable before visible* holds; what changes is that a crash or power loss before it
    /// is durable takes the commit back, as if the worker had died before committing: the
    /// invocation is recovered when its lease expires and runs again (tasks run at least once).
    /// An error is returned only once what it rests on is durable, as from `commit`. Do not use
    /// it where the caller acts on the outcome (an inline child's caller records it).
    ///
    /// The default is [`StoreWork::commit`]. The file store overrides it: the commit joins the
    /// next group commit, which its waiters (or the worker's next idle wait) lead, so a worker's
    /// commits no longer cost it an fsync each.
    ///
    /// # Errors
    /// As [`StoreWork::commit`].
    ///
    /// Pinned by `commit::pipelined_commit_is_a_commit`.
    fn commit_pipelined(
        &self,
        lease: &Lease,
        commit: Commit,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.commit(lease, commit, now)
    }

    /// [`StoreWork::commit_pipelined`], then [`StoreWork::claim`] for the lease's worker: what a
    /// worker pool's thread does between two executions, which a backend may do in one
    /// operation (Redis: one script call, one round trip, on a one-shard namespace). The claim is
    /// the one `claim(&lease.worker, tasks, lease_for, now)` would make right after the commit
    /// (expired leases recovered first, the runnable invocation of `tasks` waiting longest).
    ///
    /// The default is exactly those two calls.
    ///
    /// # Errors
    /// The outer error is the commit's, as from [`StoreWork::commit`]: nothing was committed and
    /// nothing claimed. `Ok(Err(_))`: the commit is in, the claim failed (claim again later).
    ///
    /// Pinned by `commit::commit_then_claim_commits_then_claims_the_next`,
    /// `commit::commit_then_claim_refused_claims_nothing`.
    fn commit_then_claim(
        &self,
        lease: &Lease,
        commit: Commit,
        tasks: &TaskSet,
        lease_for: Duration,
        now: Timestamp,
    ) -> Result<Result<Option<Claim>, StoreError>, StoreError> {
        self.commit_pipelined(lease, commit, now)?;
        Ok(self.claim(&lease.worker, tasks, lease_for, now))
    }

    /// Persists a running execution's progress without ending it, and claims `run`, one of the
    /// children it submits, for the lease's worker: one atomic step, the inline path of
    /// `execute_task` (the runtime then runs the child on the caller's thread).
    ///
    /// Fenced and validated like [`StoreWork::commit`]: the journal continues the stored
    /// sequence, only a workflow root writes data, children name the committer as parent.
    /// `run` must be a child that is new in this checkpoint and has no not-before time.
    /// Afterwards the invocation is still running under the same lease (same worker and
    /// attempt), extended to `now + lease_for`, with its lost-execution count reset (a
    /// checkpoint is progress, like a commit); the other new children are pending; `run` is
    /// running as attempt 1 under a lease of the same worker until `now + lease_for`, and its
    /// claim (lease, record, empty journal) is returned. Durable when it returns, like a
    /// commit: the child runs only once what led to it is durable. The one exception is a
    /// [`Checkpoint::replayable`] checkpoint (only child starts and child results, nothing drawn
    /// since the last durable point): a store may return before it is durable (the file store
    /// with pipelined commits does, when every child result it carries is the outcome the store
    /// keeps for that child, and once its record would survive the caller's process dying),
    /// because a crash that takes it back leaves the caller to replay into the same child under
    /// the same id. It is still handed to no one else before
    /// it is durable (a read, a claim of another new child, an error all wait for it), and it is
    /// durable once any later durable operation returns: the child's own commit, which its
    /// caller waits for before it acts on the outcome.
    ///
    /// `Ok(None)` means the backend does not support checkpoints (the default): the caller then
    /// suspends on the child as usual. Memory, file and Redis support them.
    ///
    /// # Errors
    /// As [`StoreWork::commit`], with nothing written: [`StoreError::LeaseLost`],
    /// [`StoreError::InvalidCommit`] (also when `run` is not a child new in this checkpoint),
    /// [`StoreError::Access`], [`StoreError::Conflict`], [`StoreError::TooLarge`].
    ///
    /// Pinned by the `checkpoint` topic.
    fn checkpoint(
        &self,
        lease: &Lease,
        checkpoint: Checkpoint,
        run: InvocationId,
        lease_for: Duration,
        now: Timestamp,
    ) -> Result<Option<Claim>, StoreError> {
        let _ = (lease, checkpoint, run, lease_for, now);
        Ok(None)
    }

    /// Makes invocations whose lease expired before `now` runnable again, whatever their task;
    /// returns them. Each expired lease is recovered exactly once, however many callers race.
    ///
    /// # Errors
    /// A failed store.
    ///
    /// Pinned by `recovery::recover_expired_exactly_once`,
    /// `recovery::crash_loop_fails_after_max_recoveries`, `recovery::commit_resets_recovery_count`.
    fn recover_expired(&self, now: Timestamp) -> Result<Vec<InvocationId>, StoreError>;

    /// Stores an event for invocation `to`, durably, as its next in arrival order; wakes `to`
    /// if it waits for an event of this name. Idempotent by key: an event whose key was sent to
    /// `to` before, with the same name and payload, stores nothing and answers
    /// [`EventSent::AlreadyStored`] (even once `to` is final).
    ///
    /// # Errors
    /// [`StoreError::InvocationNotFound`] for an unknown invocation;
    /// [`StoreError::AlreadyFinished`] for a final one; [`StoreError::EventConflict`] for a key
    /// sent before with another name or payload; [`StoreError::TooLarge`] for an event over the
    /// store's limits. Nothing changes on an error.
    ///
    /// Pinned by the `events` topic.
    fn send_event(
        &self,
        to: InvocationId,
        event: NewEvent,
        now: Timestamp,
    ) -> Result<EventSent, StoreError>;
}

/// What operators need.
pub trait StoreAdmin: StoreRead {
    /// Cancels one non-final invocation at once, whatever it is doing (operator action, "force"):
    /// it becomes cancelled (a running one's worker then finds its lease lost) and wakes a
    /// waiting parent. Its children are left alone; [`StoreAdmin::cancel_tree`] is the graceful
    /// cancellation of a whole tree.
    ///
    /// # Errors
    /// [`StoreError::Transition`] for a final one; [`StoreError::InvocationNotFound`].
    ///
    /// Pinned by `cancel::cancel_of_final_is_refused`, `cancel::cancel_non_final`,
    /// `leases::cancelled_running_cannot_commit`.
    fn cancel(&self, id: InvocationId, reason: &str, now: Timestamp) -> Result<(), StoreError>;

    /// Removes finished workflow trees: a workflow and the sub-workflows started from it,
    /// recursively, go together once every invocation in them is final, the last of them since
    /// before `finished_before`. Returns how many workflows (sub-workflows included) it removed.
    /// Durable backends also reclaim the space.
    ///
    /// # Errors
    /// A failed store.
    ///
    /// Pinned by the `retention` topic and `waits::wait_final_ends_when_purged`.
    fn purge_finished(&self, finished_before: Timestamp) -> Result<usize, StoreError>;

    /// Cancels invocation `id` and everything it started, recursively (its children, theirs,
    /// and the sub-workflows they started): for a workflow's root, the whole workflow tree.
    /// Members that are pending, waiting or retrying become cancelled at once (waking a waiting
    /// parent outside the tree); running members are asked to stop ([`StoreRead::cancel_requests`])
    /// and end cancelled with their next commit (see [`Commit::cancel_acknowledged`]) or, if
    /// their worker is lost, their recovery. Final members stay as they are. Repeating it, or
    /// cancelling a final invocation, changes nothing and says so in the report.
    ///
    /// # Errors
    /// [`StoreError::InvocationNotFound`] for an unknown id; [`StoreError::TooLarge`] for an
    /// oversized reason.
    ///
    /// Pinned by the `cancel_tree` topic.
    fn cancel_tree(
        &self,
        id: InvocationId,
        reason: &str,
        now: Timestamp,
    ) -> Result<CancelReport, StoreError>;
    /// Retries a failed invocation (operator action): it becomes pending at once, a new
    /// attempt that replays its journal. Its journal, its workflow's data and the children it
    /// started stay; its last error stays visible until the next attempt ends; its retry and
    /// recovery counts start again from zero (the task's budgets apply anew); its attempt
    /// count goes on. Wakes a worker waiting for work. Durable before it returns.
    ///
    /// A child's new outcome reaches its caller only if the caller has not taken the failure
    /// yet (it still waits, or was woken and has not run): a caller that recorded the failure
    /// keeps what it recorded.
    ///
    /// # Errors
    /// [`StoreError::NotRetryable`] when the invocation is not failed, or its caller is final
    /// (nothing would read the new result); [`StoreError::InvocationNotFound`].
    ///
    /// Pinned by `admin::retry_requeues_a_failed_invocation_keeping_its_journal`,
    /// `admin::retry_refuses_what_is_not_failed`,
    /// `admin::retry_refuses_a_child_whose_caller_finished`,
    /// `admin::retried_child_is_awaited_by_its_waiting_caller`,
    /// `waits::wait_for_work_wakes_on_retry`.
    fn retry(&self, id: InvocationId, now: Timestamp) -> Result<(), StoreError>;
}

/// A full store: what an `App` holds. Implemented for every type that implements
/// [`StoreWork`] and [`StoreAdmin`].
pub trait Store: StoreWork + StoreAdmin {}

impl<T: StoreWork + StoreAdmin> Store for T {}
