//! The storage contract: the operations the runtime needs, each atomic.

use std::time::Duration;

use wf_core::{InvocationId, JournalEntry, Timestamp, WorkerId};

use crate::error::StoreError;
use crate::model::{
    Claim, Commit, InvocationRecord, Lease, NewInvocation, StatusCounts, Submitted,
};

/// A durable home for invocations, journals and workflow data.
///
/// Every backend implements this trait and passes the conformance suite
/// (`wf_store::conformance`, feature `testing`). All methods are synchronous and atomic; `now` is
/// the caller's wall clock, so leases and not-before times are judged against one time source per
/// call. Blocking waits are event-driven: they return as soon as the awaited thing happens.
pub trait Store: Send + Sync + 'static {
    /// A short name for logs and tools: `"memory"`, `"file"`, `"redis"`.
    fn backend(&self) -> &'static str;

    /// Stores and queues an invocation. Idempotent by id: an identical resubmission changes
    /// nothing; a different call under the same id is [`StoreError::Conflict`].
    fn submit(&self, invocation: NewInvocation, now: Timestamp) -> Result<Submitted, StoreError>;

    /// Claims the oldest runnable invocation (pending, or retry/delayed whose not-before time has
    /// passed) for `worker`, with a lease until `now + lease_for`. Its status becomes running and
    /// its attempt number grows by one. Invocations whose leases expired are recovered first.
    fn claim(
        &self,
        worker: &WorkerId,
        lease_for: Duration,
        now: Timestamp,
    ) -> Result<Option<Claim>, StoreError>;

    /// The earliest time at which something becomes claimable by the clock alone (a retry's or a
    /// delayed invocation's not-before time, or a lease expiry), if any. Lets a single-threaded
    /// test driver skip ahead instead of waiting.
    fn next_due(&self) -> Result<Option<Timestamp>, StoreError>;

    /// Blocks until a claim may succeed or `timeout` passes; returns whether work may be there.
    fn wait_for_work(&self, timeout: Duration) -> Result<bool, StoreError>;

    /// Extends a lease that is still held. [`StoreError::LeaseLost`] if it is not.
    fn renew(
        &self,
        lease: &Lease,
        lease_for: Duration,
        now: Timestamp,
    ) -> Result<Lease, StoreError>;

    /// Persists one execution atomically: journal entries, data writes, child submissions and the
    /// new status, all or nothing. Refused with [`StoreError::LeaseLost`] (nothing written) when the
    /// lease expired or another attempt holds the invocation. A final status wakes a parent
    /// waiting on it once all of that parent's awaited children are final.
    fn commit(&self, lease: &Lease, commit: Commit, now: Timestamp) -> Result<(), StoreError>;

    /// Makes invocations whose lease expired before `now` runnable again; returns them. Each
    /// expired lease is recovered exactly once, however many callers race.
    fn recover_expired(&self, now: Timestamp) -> Result<Vec<InvocationId>, StoreError>;

    /// Fails a non-final invocation (operator action). Final ones give [`StoreError::Transition`].
    fn cancel(&self, id: InvocationId, reason: &str, now: Timestamp) -> Result<(), StoreError>;

    /// An invocation's record.
    fn invocation(&self, id: InvocationId) -> Result<InvocationRecord, StoreError>;

    /// Several invocations' records in one round trip, in the order asked.
    fn invocations(&self, ids: &[InvocationId]) -> Result<Vec<InvocationRecord>, StoreError> {
        ids.iter().map(|id| self.invocation(*id)).collect()
    }

    /// An invocation's journal.
    fn journal(&self, id: InvocationId) -> Result<Vec<JournalEntry>, StoreError>;

    /// One value from a workflow's data.
    fn get_data(&self, workflow: InvocationId, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// A workflow's data keys, sorted.
    fn data_keys(&self, workflow: InvocationId) -> Result<Vec<String>, StoreError>;

    /// A workflow's invocations, in submission order.
    fn workflow_invocations(&self, workflow: InvocationId)
    -> Result<Vec<InvocationId>, StoreError>;

    /// The root invocation of every stored workflow, oldest first.
    fn workflows(&self) -> Result<Vec<InvocationRecord>, StoreError>;

    /// Invocation counts by status.
    fn counts(&self) -> Result<StatusCounts, StoreError>;

    /// Blocks until invocation `id` is final (returns its record) or `timeout` passes (`None`).
    /// [`StoreError::InvocationNotFound`] when `id` does not exist when called, or disappears
    /// (is purged) while waiting: the wait ends then, it does not run out its timeout.
    fn wait_final(
        &self,
        id: InvocationId,
        timeout: Duration,
    ) -> Result<Option<InvocationRecord>, StoreError>;

    /// Removes finished workflow trees: a workflow and the sub-workflows started from it,
    /// recursively, go together once every invocation in them is final, the last of them since
    /// before `finished_before`. Returns how many workflows (sub-workflows included) it removed.
    /// Durable backends also reclaim the space.
    fn purge_finished(&self, finished_before: Timestamp) -> Result<usize, StoreError>;
}
