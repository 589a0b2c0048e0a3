//! A stalled worker: it claims an invocation straight from the store with a short lease, stalls
//! past it while the app's own worker recovers and finishes the invocation, then tries to
//! commit late. The store must refuse (lease fencing); accepting is a violation.

use std::time::Duration;

use wf_core::{Timestamp, WorkerId};
use wf_runtime::App;
use wf_store::{Commit, Lease, Outcome, StoreError, TaskSet};

/// The corpus's task names (what a zombie may claim).
const TASKS: [&str; 6] = ["leaf", "flaky", "fail", "boom", "sub", "flow"];

/// How long the zombie's lease lasts.
const LEASE: Duration = Duration::from_secs(1);

/// A claim whose holder stalled.
#[derive(Debug, Clone)]
pub struct Zombie {
    lease: Lease,
}

impl Zombie {
    /// The invocation it holds.
    pub fn invocation(&self) -> wf_core::InvocationId {
        self.lease.invocation
    }
}

/// Claims something runnable as a worker that will stall, if anything is runnable.
///
/// # Errors
/// The store's.
pub fn stall(app: &App, now: Timestamp) -> Result<Option<Zombie>, StoreError> {
    let tasks = TaskSet::new(TASKS);
    let claim = app
        .store()
        .claim(&WorkerId::new("zombie"), &tasks, LEASE, now)?;
    Ok(claim.map(|c| Zombie { lease: c.lease }))
}

/// The zombie wakes after its lease expired and commits a made-up result. `Some(what)` if the
/// store accepted it (a violation) or failed otherwise than refusing the lease (a violation
/// unless a fault fired).
pub fn commit_late(app: &App, zombie: &Zombie, now: Timestamp) -> Option<String> {
    let late = now
        .max(zombie.lease.expires_at)
        .saturating_add(Duration::from_secs(1));
    let commit = Commit {
        journal: Vec::new(),
        data: Vec::new(),
        children: Vec::new(),
        outcome: Outcome::Success(b"666".to_vec()),
        consumed: Vec::new(),
        cancel_acknowledged: false,
    };
    match app.store().commit(&zombie.lease, commit, late) {
        Ok(()) => Some(format!(
            "a stale commit was accepted: invocation {} committed by a worker whose lease \
             (attempt {}) had expired",
            zombie.lease.invocation, zombie.lease.attempt
        )),
        // Refused: the lease is lost, or the invocation finished and was purged since.
        Err(StoreError::LeaseLost { .. } | StoreError::InvocationNotFound(_)) => None,
        Err(e) => Some(format!(
            "a stale commit failed with {e} instead of a lost lease"
        )),
    }
}
