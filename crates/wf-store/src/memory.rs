//! The memory backend: in-process, exact, fast; for tests and single-process use.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use wf_core::{InvocationId, JournalEntry, Timestamp, WorkerId};

use crate::error::StoreError;
use crate::model::{
    Checkpoint, Claim, Commit, InvocationRecord, Lease, NewInvocation, StatusCounts, Submitted,
    TaskSet,
};
use crate::steering::{CancelReport, EventInbox, EventSent, NewEvent};
use crate::store::{StoreAdmin, StoreRead, StoreWork};
use crate::tables::{Change, PURGE_BATCH, Tables, Wakes};

/// A store that lives in this process's memory and dies with it.
///
/// ```
/// use wf_store::{MemoryStore, StoreRead};
/// let store = MemoryStore::new();
/// assert_eq!(store.counts().unwrap().total(), 0);
/// ```
#[derive(Debug)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
    /// Signalled when something may have become claimable.
    work: Signal,
    /// Signalled when an invocation became final.
    finished: Signal,
}

/// A condition variable over the `Tables` lock that knows whether anyone waits on it, so a
/// change nobody waits for costs no wake-up system call (most commits, under load).
///
/// No wake-up is lost: a waiter counts itself while it holds the lock, before `wait` releases
/// it; a notifier changes the state under the lock and reads the count after releasing it, so
/// it sees every waiter that checked the state before the change.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    cond: Condvar,
    waiting: AtomicUsize,
    /// Counts notifications, so a thread spinning before it sleeps ([`spin_then_wait`]) sees one
    /// without the lock and without a wake-up system call.
    epoch: AtomicU64,
    /// How many more waits sleep at once, without spinning: set after a spin that waited in
    /// vain (the awaited thread needed longer than [`SPIN_WINDOW`], so spinning only burnt a
    /// core the others could use), counted down by each wait.
    skip_spins: AtomicU32,
}

impl Signal {
    /// Waits up to `d` for a notification, releasing `guard` meanwhile.
    pub(crate) fn wait_timeout<'a>(
        &self,
        guard: MutexGuard<'a, Tables>,
        d: Duration,
    ) -> MutexGuard<'a, Tables> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let guard = self
            .cond
            .wait_timeout(guard, d)
            .map(|(g, _)| g)
            .unwrap_or_else(|p| p.into_inner().0);
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        guard
    }

    /// Wakes one waiter, if any.
    pub(crate) fn notify_one(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.cond.notify_one();
        }
    }

    /// Wakes every waiter, if any.
    pub(crate) fn notify_all(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.cond.notify_all();
        }
    }
}

impl Signal {
    /// Spins until a notification after `seen` (an [`Self::epoch`] reading), for at most
    /// `window`; says whether one came. Yields the core between checks, so a spinning thread
    /// never keeps a runnable one off a busy machine's cores.
    fn spin_for(&self, seen: u64, window: Duration) -> bool {
        let start = Instant::now();
        loop {
            for _ in 0..SPIN_CHECKS {
                if self.epoch.load(Ordering::SeqCst) != seen {
                    return true;
                }
                std::hint::spin_loop();
            }
            if start.elapsed() >= window {
                return false;
            }
            std::thread::yield_now();
        }
    }

    /// Whether a wait should spin first: not for a while after a spin that waited in vain.
    fn should_spin(&self) -> bool {
        self.skip_spins
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_err()
    }

    /// The count of notifications so far.
    fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }
}

/// How long a memory-store wait spins before it sleeps. A hand-off between two threads (a
/// submit to an idle worker, a commit to a caller waiting for its result) takes a few
/// microseconds when both run; waking a sleeping thread costs a system call on one side and,
/// on an idle machine, tens of microseconds for its CPU to wake. Each wait spins at most once,
/// so a worker idle for long spins this long once per `wait_for_work` call, not continuously.
const SPIN_WINDOW: Duration = Duration::from_micros(50);

/// How many waits on a signal sleep at once after a spin on it waited in vain (then one spins
/// again, to see whether hand-offs got quick). Where results come slower than the window (a
/// caller awaiting one of many workflows in flight, a worker idle for long), spinning stops
/// after one miss instead of costing a core on every wait.
const SKIP_AFTER_MISS: u32 = 16;

/// Notification checks between looks at the clock while spinning.
const SPIN_CHECKS: u32 = 64;

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::from_tables(Tables::new())
    }

    /// A store holding `tables` (for example state rebuilt from a file store's log).
    pub fn from_tables(tables: Tables) -> Self {
        Self {
            tables: Mutex::new(tables.unlogged()),
            work: Signal::default(),
            finished: Signal::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        lock(&self.tables)
    }

    /// Runs a mutating operation and signals waiters according to what it changed.
    fn mutate<T>(
        &self,
        op: impl FnOnce(&mut Tables, &mut Vec<Change>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut changes = Vec::new();
        let (result, mut wakes) = {
            let mut tables = self.lock();
            let result = op(&mut tables, &mut changes);
            (result, tables.take_wakes())
        };
        // Unlogged tables count whom their changes wake; anything put in the list directly
        // wakes too.
        for change in &changes {
            wakes.note(change);
        }
        wake(wakes, &self.work, &self.finished);
        result
    }
}

/// Wakes workers when work appeared, and callers waiting for a result when something finished
/// or was purged (a waiter on a purged invocation must learn it is gone).
pub(crate) fn signal(changes: &[Change], work: &Signal, finished: &Signal) {
    let mut wakes = Wakes::default();
    for change in changes {
        wakes.note(change);
    }
    wake(wakes, work, finished);
}

/// Wakes whom [`Wakes`] says.
fn wake(wakes: Wakes, work: &Signal, finished: &Signal) {
    match wakes.new_work {
        0 => {}
        1 => work.notify_one(),
        _ => work.notify_all(),
    }
    if wakes.any_final {
        finished.notify_all();
    }
}

pub(crate) fn system_now() -> Timestamp {
    Timestamp::from_system_time(SystemTime::now())
}

/// How long one wait lasts when a wait has no deadline; the condition is checked after each.
const FOREVER_SLICE: Duration = Duration::from_secs(3600);

/// Waits on `cond` until `ready` says yes or `timeout` passes; shared by the in-process backends.
pub(crate) fn wait_until<'a, T>(
    mut guard: MutexGuard<'a, Tables>,
    cond: &Signal,
    timeout: Duration,
    mut ready: impl FnMut(&Tables) -> Option<T>,
    mut wake_by: impl FnMut(&Tables) -> Option<Timestamp>,
) -> Option<T> {
    // A timeout too long to add to the clock (`Duration::MAX`: "forever") has no deadline.
    let deadline = Instant::now().checked_add(timeout);
    loop {
        if let Some(v) = ready(&guard) {
            return Some(v);
        }
        let now = Instant::now();
        let mut wait = match deadline {
            Some(deadline) if now >= deadline => return None,
            Some(deadline) => deadline - now,
            None => FOREVER_SLICE,
        };
        if let Some(due) = wake_by(&guard) {
            wait = wait.min(system_now().until(due).max(Duration::from_millis(1)));
        }
        guard = cond.wait_timeout(guard, wait);
    }
}

/// [`wait_until`] for the memory store: first spins up to [`SPIN_WINDOW`] for a notification,
/// without the lock (only when the wait is longer than that, and not just after a spin on this
/// signal waited in vain: [`SKIP_AFTER_MISS`]), then checks and sleeps as [`wait_until`] does
/// for what is left of `timeout`.
fn spin_then_wait<T>(
    tables: &Mutex<Tables>,
    cond: &Signal,
    timeout: Duration,
    mut ready: impl FnMut(&Tables) -> Option<T>,
    wake_by: impl FnMut(&Tables) -> Option<Timestamp>,
) -> Option<T> {
    let start = Instant::now();
    let guard = lock(tables);
    if timeout > SPIN_WINDOW && cond.should_spin() {
        if let Some(v) = ready(&guard) {
            return Some(v);
        }
        // Read under the lock: a change after this reading notifies after it is made.
        let seen = cond.epoch();
        drop(guard);
        if !cond.spin_for(seen, SPIN_WINDOW) {
            cond.skip_spins.store(SKIP_AFTER_MISS, Ordering::Relaxed);
        }
        return wait_until(
            lock(tables),
            cond,
            timeout.saturating_sub(start.elapsed()),
            ready,
            wake_by,
        );
    }
    wait_until(guard, cond, timeout, ready, wake_by)
}

/// Locks the tables. A panic while holding the lock cannot leave `Tables` half-changed in a way
/// later calls trip over (operations validate before they apply), so a poisoned lock is still
/// usable.
fn lock(tables: &Mutex<Tables>) -> MutexGuard<'_, Tables> {
    tables.lock().unwrap_or_else(|p| p.into_inner())
}

/// `wait_for_work` of the in-process backends: blocks until a claim by a worker running `tasks`
/// at the current time could succeed, waking early for the next not-before time of one of its
/// tasks or lease expiry. Work of other tasks neither ends the wait nor wakes it early.
pub(crate) fn wait_for_claimable(
    tables: &Mutex<Tables>,
    work: &Signal,
    tasks: &TaskSet,
    timeout: Duration,
) -> bool {
    spin_then_wait(
        tables,
        work,
        timeout,
        |t| t.has_claimable(tasks, system_now()).then_some(()),
        |t| t.next_due(tasks),
    )
    .is_some()
}

impl StoreRead for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    fn app_id(&self) -> Result<Option<String>, StoreError> {
        Ok(self.lock().app_id().map(str::to_owned))
    }

    fn invocation(&self, id: InvocationId) -> Result<InvocationRecord, StoreError> {
        self.lock().invocation(id)
    }

    fn invocations(&self, ids: &[InvocationId]) -> Result<Vec<InvocationRecord>, StoreError> {
        let t = self.lock();
        ids.iter().map(|id| t.invocation(*id)).collect()
    }

    fn journal(&self, id: InvocationId) -> Result<Vec<JournalEntry>, StoreError> {
        self.lock().journal(id)
    }

    fn get_data(&self, workflow: InvocationId, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock().get_data(workflow, key))
    }

    fn data_keys(&self, workflow: InvocationId) -> Result<Vec<String>, StoreError> {
        Ok(self.lock().data_keys(workflow))
    }

    fn workflow_invocations(
        &self,
        workflow: InvocationId,
    ) -> Result<Vec<InvocationId>, StoreError> {
        Ok(self.lock().workflow_invocations(workflow))
    }

    fn workflows(&self) -> Result<Vec<InvocationRecord>, StoreError> {
        Ok(self.lock().workflow_roots())
    }

    fn purgeable(&self, finished_before: Timestamp) -> Result<Vec<InvocationId>, StoreError> {
        Ok(self.lock().purgeable(finished_before))
    }

    fn counts(&self) -> Result<StatusCounts, StoreError> {
        Ok(self.lock().counts())
    }

    fn wait_final(
        &self,
        id: InvocationId,
        timeout: Duration,
    ) -> Result<Option<InvocationRecord>, StoreError> {
        // Ends with the final record, or with `InvocationNotFound` once the invocation does not
        // exist (never submitted, or purged while we wait: purges signal `finished` too).
        spin_then_wait(
            &self.tables,
            &self.finished,
            timeout,
            // The status first: a record is built only to be returned.
            |t| match t.status(id) {
                Some(status) if !status.is_final() => None,
                _ => Some(t.invocation(id)),
            },
            |_| None,
        )
        .transpose()
    }

    fn events(&self, id: InvocationId) -> Result<EventInbox, StoreError> {
        self.lock().events(id)
    }

    fn cancel_requests(
        &self,
        ids: &[InvocationId],
    ) -> Result<Vec<(InvocationId, String)>, StoreError> {
        Ok(self.lock().cancel_requests(ids))
    }
}

impl StoreWork for MemoryStore {
    fn bind_app(&self, app_id: &str) -> Result<(), StoreError> {
        self.mutate(|t, out| t.bind_app(out, "(in memory)", app_id))
    }

    fn submit(&self, invocation: NewInvocation, now: Timestamp) -> Result<Submitted, StoreError> {
        self.mutate(|t, out| t.submit(out, invocation, now))
    }

    fn submit_many(
        &self,
        invocations: Vec<NewInvocation>,
        now: Timestamp,
    ) -> Result<Vec<Submitted>, StoreError> {
        self.mutate(|t, out| t.submit_many(out, invocations, now))
    }

    fn claim(
        &self,
        worker: &WorkerId,
        tasks: &TaskSet,
        lease_for: Duration,
        now: Timestamp,
    ) -> Result<Option<Claim>, StoreError> {
        self.mutate(|t, out| t.claim(out, worker, tasks, lease_for, now))
    }

    fn next_due(&self, tasks: &TaskSet) -> Result<Option<Timestamp>, StoreError> {
        Ok(self.lock().next_due(tasks))
    }

    fn wait_for_work(&self, tasks: &TaskSet, timeout: Duration) -> Result<bool, StoreError> {
        Ok(wait_for_claimable(&self.tables, &self.work, tasks, timeout))
    }

    fn renew(
        &self,
        lease: &Lease,
        lease_for: Duration,
        now: Timestamp,
    ) -> Result<Lease, StoreError> {
        self.mutate(|t, out| t.renew(out, lease, lease_for, now))
    }

    fn commit(&self, lease: &Lease, commit: Commit, now: Timestamp) -> Result<(), StoreError> {
        self.mutate(|t, out| t.commit(out, lease, commit, now))
    }

    /// One store operation: the commit and the claim under one hold of the lock.
    fn commit_then_claim(
        &self,
        lease: &Lease,
        commit: Commit,
        tasks: &TaskSet,
        lease_for: Duration,
        now: Timestamp,
    ) -> Result<Result<Option<Claim>, StoreError>, StoreError> {
        self.mutate(|t, out| {
            t.commit(out, lease, commit, now)?;
            Ok(t.claim(out, &lease.worker, tasks, lease_for, now))
        })
    }

    fn checkpoint(
        &self,
        lease: &Lease,
        checkpoint: Checkpoint,
        run: InvocationId,
        lease_for: Duration,
        now: Timestamp,
    ) -> Result<Option<Claim>, StoreError> {
        self.mutate(|t, out| t.checkpoint(out, lease, checkpoint, run, lease_for, now))
            .map(Some)
    }

    fn recover_expired(&self, now: Timestamp) -> Result<Vec<InvocationId>, StoreError> {
        self.mutate(|t, out| t.recover_expired(out, now))
    }

    fn send_event(
        &self,
        to: InvocationId,
        event: NewEvent,
        now: Timestamp,
    ) -> Result<EventSent, StoreError> {
        self.mutate(|t, out| t.send_event(out, to, event, now))
    }
}

impl StoreAdmin for MemoryStore {
    fn cancel(&self, id: InvocationId, reason: &str, now: Timestamp) -> Result<(), StoreError> {
        self.mutate(|t, out| t.cancel(out, id, reason, now))
    }

    fn retry(&self, id: InvocationId, now: Timestamp) -> Result<(), StoreError> {
        self.mutate(|t, out| t.retry(out, id, now))
    }

    fn purge_finished(&self, finished_before: Timestamp) -> Result<usize, StoreError> {
        // In batches, releasing the lock between them: a purge of many workflows never stalls
        // the workers for long.
        let candidates = self.lock().purge_candidates();
        let mut removed = 0;
        for batch in candidates.chunks(PURGE_BATCH) {
            removed += self.mutate(|t, out| Ok(t.purge_trees(out, batch, finished_before)))?;
        }
        Ok(removed)
    }

    fn cancel_tree(
        &self,
        id: InvocationId,
        reason: &str,
        now: Timestamp,
    ) -> Result<CancelReport, StoreError> {
        self.mutate(|t, out| t.cancel_tree(out, id, reason, now))
    }
}
