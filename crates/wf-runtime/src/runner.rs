//! Who runs an execution, and with what: the worker's id, its clock, and the [`Pool`] whose
//! lease thread renews the leases of running invocations and whose counters count them.
//!
//! A worker pool's threads and `App::run_until_idle` each run claimed invocations through a
//! [`Runner`]. So does an execution that runs one of its children inline (see
//! `WorkflowContext::execute_task`): it runs the child on its own thread with a *nested* runner,
//! one level deeper, so the child's lease is renewed and its execution counted like any other.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use wf_core::{ChildOutcome, IdHashing, InvocationId, Timestamp, WorkerId};
use wf_store::{Claim, Lease, TaskSet};

use crate::app::App;
use crate::clock;
use crate::error::WfError;
use crate::execution::{Ended, Executed, execute, panic_text};
use crate::worker::WorkerStats;

/// How deep children may run inline inside each other on one thread. Deeper children are
/// submitted and run by a worker as usual, so a recursive workflow cannot exhaust the stack.
pub(crate) const MAX_INLINE_DEPTH: u32 = 8;

/// The time source of a runner.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Clock {
    /// The wall clock (workers).
    Wall,
    /// A fixed reading (the virtual clock of `run_until_idle`).
    Fixed(Timestamp),
}

impl Clock {
    pub(crate) fn now(self) -> Timestamp {
        match self {
            Clock::Wall => clock::now(),
            Clock::Fixed(t) => t,
        }
    }
}

/// Counters of executions.
#[derive(Debug, Default)]
struct Stats {
    executed: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
    retried: AtomicU64,
    deferred: AtomicU64,
    suspended: AtomicU64,
    released: AtomicU64,
    lease_lost: AtomicU64,
    errors: AtomicU64,
}

/// What the executions of one worker pool (or one `run_until_idle`) share: the leases to renew,
/// the counters, and the stop flag.
#[derive(Debug, Default)]
pub(crate) struct Pool {
    /// Stop claiming new work (inline children included).
    stop: AtomicBool,
    /// The lease of each running invocation, renewed by the lease thread.
    active: Mutex<HashMap<InvocationId, Lease, IdHashing>>,
    stats: Stats,
}

impl Pool {
    /// Asks the pool's executions to claim nothing new.
    pub(crate) fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// Whether a stop was asked for.
    pub(crate) fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    fn lock_active(&self) -> MutexGuard<'_, HashMap<InvocationId, Lease, IdHashing>> {
        self.active.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Renews `lease` from now on.
    pub(crate) fn track(&self, lease: &Lease) {
        self.lock_active().insert(lease.invocation, lease.clone());
    }

    /// Stops renewing `lease`, unless a later attempt of the same invocation (claimed by another
    /// thread of this pool after this attempt's commit) holds the entry now.
    pub(crate) fn forget(&self, lease: &Lease) {
        let mut active = self.lock_active();
        if active
            .get(&lease.invocation)
            .is_some_and(|held| held.attempt == lease.attempt)
        {
            active.remove(&lease.invocation);
        }
    }

    /// Whether `lease` is still renewed (not lost, not forgotten).
    #[cfg(feature = "tokio")]
    pub(crate) fn holds(&self, lease: &Lease) -> bool {
        self.lock_active()
            .get(&lease.invocation)
            .is_some_and(|held| held.attempt == lease.attempt)
    }

    /// The leases to renew now.
    pub(crate) fn leases(&self) -> Vec<Lease> {
        self.lock_active().values().cloned().collect()
    }

    /// Counts an execution by how it ended.
    pub(crate) fn count(&self, ended: Result<Ended, &WfError>) {
        let s = &self.stats;
        s.executed.fetch_add(1, Ordering::Relaxed);
        let counter = match ended {
            Ok(Ended::Success) => &s.succeeded,
            Ok(Ended::Failed) => &s.failed,
            Ok(Ended::Retry) => &s.retried,
            Ok(Ended::Deferred) => &s.deferred,
            Ok(Ended::Waiting) => &s.suspended,
            Ok(Ended::Released) => &s.released,
            Ok(Ended::LeaseLost) => &s.lease_lost,
            Err(e) => {
                tracing::error!(error = %e, "commit failed; the invocation will be recovered when its lease expires");
                &s.errors
            }
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A snapshot of the counters.
    pub(crate) fn stats(&self) -> WorkerStats {
        let s = &self.stats;
        WorkerStats {
            executed: s.executed.load(Ordering::Relaxed),
            succeeded: s.succeeded.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
            retried: s.retried.load(Ordering::Relaxed),
            deferred: s.deferred.load(Ordering::Relaxed),
            suspended: s.suspended.load(Ordering::Relaxed),
            released: s.released.load(Ordering::Relaxed),
            lease_lost: s.lease_lost.load(Ordering::Relaxed),
            errors: s.errors.load(Ordering::Relaxed),
        }
    }
}

/// Runs claimed invocations on the current thread for one worker. See the module docs.
#[derive(Debug, Clone)]
pub(crate) struct Runner {
    worker: WorkerId,
    clock: Clock,
    pool: Arc<Pool>,
    /// How many inline executions this thread is inside of (0: a claim of the worker loop).
    depth: u32,
}

impl Runner {
    /// A runner for `worker`'s executions at depth 0.
    pub(crate) fn new(worker: WorkerId, clock: Clock, pool: Arc<Pool>) -> Self {
        Self {
            worker,
            clock,
            pool,
            depth: 0,
        }
    }

    /// The pool of the worker this runner runs for.
    #[cfg(feature = "tokio")]
    pub(crate) fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }

    /// The worker executions run for.
    pub(crate) fn worker(&self) -> &WorkerId {
        &self.worker
    }

    /// Now, by this runner's clock.
    pub(crate) fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Whether this runner's executions report their final outcome to a caller (they run inline
    /// for a parent).
    pub(crate) fn is_nested(&self) -> bool {
        self.depth > 0
    }

    /// The runner an execution of this runner runs its children inline with, if it may: not
    /// past [`MAX_INLINE_DEPTH`], and not while the pool stops.
    pub(crate) fn nested(&self) -> Option<Runner> {
        (self.depth < MAX_INLINE_DEPTH && !self.pool.stopping()).then(|| Runner {
            depth: self.depth + 1,
            ..self.clone()
        })
    }

    /// Whether children may still start inline (the pool is not stopping).
    pub(crate) fn may_start(&self) -> bool {
        !self.pool.stopping()
    }

    /// Runs a claimed invocation on this thread, its lease renewed meanwhile, and counts it.
    /// Returns its final outcome when it committed one.
    pub(crate) fn run(&self, app: &App, claim: Claim) -> Option<ChildOutcome> {
        self.run_with(app, claim, None)
            .and_then(|Executed { outcome, .. }| outcome)
    }

    /// [`Runner::run`] for a worker's own claim, whose commit also claims the next invocation of
    /// `tasks` for this worker (one store operation where the store can): returns that claim,
    /// `Some(None)` when the claim found nothing, `None` when no claim was made (the commit
    /// failed, or it had children to cancel first).
    pub(crate) fn run_then_claim(
        &self,
        app: &App,
        claim: Claim,
        tasks: &TaskSet,
    ) -> Option<Option<Claim>> {
        self.run_with(app, claim, Some(tasks))
            .and_then(|Executed { next, .. }| next)
    }

    fn run_with(&self, app: &App, claim: Claim, then_claim: Option<&TaskSet>) -> Option<Executed> {
        let lease = claim.lease.clone();
        self.pool.track(&lease);
        // Bodies run under their own catch_unwind; this one keeps the thread (and the lease
        // bookkeeping) alive if the runtime itself panics.
        let executed = catch_unwind(AssertUnwindSafe(|| execute(app, claim, self, then_claim)))
            .unwrap_or_else(|panic| {
                Err(WfError::Usage(format!(
                    "the runtime panicked while running invocation {} ({}); it will be \
                     recovered when its lease expires. Please report this as a bug",
                    lease.invocation,
                    panic_text(&*panic)
                )))
            });
        self.pool.forget(&lease);
        self.pool.count(executed.as_ref().map(|e| e.ended));
        executed.ok()
    }
}
