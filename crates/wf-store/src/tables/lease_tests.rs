//! Unit tests of [`Tables`] fencing: a refused lease says why it was refused, so the worker's
//! log tells an expired lease from one another worker holds.

use std::time::Duration;

use wf_core::WorkerId;

use super::Tables;
use super::tests::{TASKS, claim, root};
use crate::conformance::fixtures::{at_ms as at, tasks};
use crate::error::StoreError;
use crate::model::Lease;

/// The reason of the `LeaseLost` that fencing `lease` at `now` returns.
fn refusal(t: &Tables, lease: &Lease, now: wf_core::Timestamp) -> String {
    match t.fence(lease, now) {
        Err(StoreError::LeaseLost { reason, .. }) => reason,
        Err(other) => panic!("expected LeaseLost, got {other:?}"),
        Ok(_) => panic!("expected LeaseLost, the lease was accepted"),
    }
}

#[test]
fn a_refused_lease_says_whether_it_expired_or_another_worker_holds_it() {
    let mut t = Tables::default();
    let mut out = Vec::new();
    let inv = root(1);
    t.submit(&mut out, inv, at(0)).unwrap();
    let lease = claim(&mut t, &mut out, &tasks(&TASKS), at(0))
        .unwrap()
        .lease;
    assert!(
        t.fence(&lease, at(1)).is_ok(),
        "the holder's lease is valid"
    );

    let expired = refusal(
        &t,
        &lease,
        lease.expires_at.saturating_add(Duration::from_millis(1)),
    );
    assert_eq!(expired, "the lease expired");

    // Same attempt, another worker's name: only the worker differs.
    let forged = Lease {
        worker: WorkerId::new("intruder"),
        ..lease.clone()
    };
    let held = refusal(&t, &forged, at(1));
    assert_eq!(held, "worker w holds it now");
}
