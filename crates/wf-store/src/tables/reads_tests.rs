//! Unit tests of [`Tables`]' reads for workers: whether a claim would find something, and
//! which invocation it takes.

use wf_core::Timestamp;

use super::Tables;
use super::tests::{TASKS, claim, root};
use crate::conformance::fixtures::{at_ms as at, tasks};
use crate::model::NewInvocation;

/// `has_claimable` says whether a claim at the same instant finds something: a lease is not
/// expired at its expiry instant (a claim recovers it one millisecond later), and a delayed
/// invocation is due at its not-before time.
#[test]
fn has_claimable_agrees_with_a_claim_at_the_boundaries() {
    let set = tasks(&TASKS);
    let mut t = Tables::new();
    let mut out = Vec::new();
    t.submit(&mut out, root(1), at(0)).unwrap();
    let expiry = claim(&mut t, &mut out, &set, at(0))
        .unwrap()
        .lease
        .expires_at;
    t.submit(
        &mut out,
        NewInvocation {
            not_before: Some(at(100)),
            ..root(2)
        },
        at(0),
    )
    .unwrap();
    for (now, claimable, what) in [
        (at(99), false, "before the delayed one is due"),
        (at(100), true, "the delayed one is due"),
    ] {
        assert_eq!(t.has_claimable(&set, now), claimable, "{what}");
        let found = claim(&mut t.clone(), &mut Vec::new(), &set, now).is_some();
        assert_eq!(found, claimable, "a claim {what}");
    }
    // The delayed one taken, only the lease is left.
    claim(&mut t, &mut out, &set, at(100)).unwrap();
    for (now, claimable, what) in [
        (expiry, false, "at the lease's expiry instant"),
        (Timestamp(expiry.0 + 1), true, "a millisecond after it"),
    ] {
        assert_eq!(t.has_claimable(&set, now), claimable, "{what}");
        let found = claim(&mut t.clone(), &mut Vec::new(), &set, now).is_some();
        assert_eq!(found, claimable, "a claim {what}");
    }
}
