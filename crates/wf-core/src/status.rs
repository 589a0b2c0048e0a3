//! Invocation status and the one declarative transition table.
//!
//! Every backend calls [`Status::check_transition`] before it changes a status; none keeps its own
//! idea of which moves are legal.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where an invocation is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Status {
    /// Known to the store, not yet queued.
    Registered,
    /// Queued: a worker may claim it (once its not-before time, if any, has passed).
    Pending,
    /// Claimed by a worker holding a lease.
    Running,
    /// Suspended until what it waits for happens: the children it waits on are final, its timer
    /// fires (a sleep or a wait's deadline), or an event it waits for arrives.
    Waiting,
    /// Failed an attempt; runnable again at its not-before time.
    Retry,
    /// Finished with a result. Final.
    Success,
    /// Finished with an error. Final (an operator may retry it: `StoreAdmin::retry`).
    Failed,
    /// Cancelled (its workflow tree was cancelled, or an operator cancelled it). Final. Added
    /// after the others so stores written before it existed still decode.
    Cancelled,
}

impl Status {
    /// Every status, in table order.
    pub const ALL: [Status; 8] = [
        Status::Registered,
        Status::Pending,
        Status::Running,
        Status::Waiting,
        Status::Retry,
        Status::Success,
        Status::Failed,
        Status::Cancelled,
    ];

    /// Success, failed or cancelled: no execution will change it again. (An operator may retry a
    /// failed invocation, the one move out of a final status: failed → pending.)
    pub const fn is_final(self) -> bool {
        matches!(self, Status::Success | Status::Failed | Status::Cancelled)
    }

    /// Pending or retry: a worker may claim it once its not-before time has passed.
    pub const fn is_claimable(self) -> bool {
        matches!(self, Status::Pending | Status::Retry)
    }

    /// Lower-case name, as shown by tools.
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Registered => "registered",
            Status::Pending => "pending",
            Status::Running => "running",
            Status::Waiting => "waiting",
            Status::Retry => "retry",
            Status::Success => "success",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
        }
    }

    /// Looks up the table: is `self -> to` legal, and why would it happen?
    pub fn transition(self, to: Status) -> Option<&'static Transition> {
        TRANSITIONS.iter().find(|t| t.from == self && t.to == to)
    }

    /// The single check every backend calls before changing a status.
    ///
    /// # Errors
    ///
    /// [`TransitionError`] when the table has no move from `self` to `to`.
    pub fn check_transition(self, to: Status) -> Result<(), TransitionError> {
        match self.transition(to) {
            Some(_) => Ok(()),
            None => Err(TransitionError { from: self, to }),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One legal move, with the event that causes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// From this status.
    pub from: Status,
    /// To this status.
    pub to: Status,
    /// What causes it.
    pub because: &'static str,
}

const fn t(from: Status, to: Status, because: &'static str) -> Transition {
    Transition { from, to, because }
}

/// The transition table. A move not listed here is refused by every backend.
pub const TRANSITIONS: &[Transition] = &[
    t(
        Status::Registered,
        Status::Pending,
        "submitted: queued for a worker",
    ),
    t(
        Status::Registered,
        Status::Cancelled,
        "cancelled before it was queued",
    ),
    t(
        Status::Pending,
        Status::Running,
        "claimed by a worker under a lease",
    ),
    t(Status::Pending, Status::Cancelled, "cancelled while queued"),
    t(
        Status::Running,
        Status::Success,
        "the body returned a result",
    ),
    t(
        Status::Running,
        Status::Failed,
        "the body failed and no retry is left, or its worker was lost too many times in a row",
    ),
    t(
        Status::Running,
        Status::Retry,
        "the body failed and will be retried after a backoff",
    ),
    t(
        Status::Running,
        Status::Waiting,
        "the body suspended: on unfinished children, a timer or an event",
    ),
    t(
        Status::Running,
        Status::Pending,
        "recovery: the worker's lease expired (it vanished or stalled)",
    ),
    t(
        Status::Running,
        Status::Cancelled,
        "its cancellation was requested while it ran: its next commit (or its recovery) ends it, \
         or an operator force-cancelled it",
    ),
    t(
        Status::Waiting,
        Status::Pending,
        "what it waits for happened: every awaited child is final, or an awaited event arrived",
    ),
    t(
        Status::Waiting,
        Status::Running,
        "claimed once its timer fired (a sleep, or the deadline of a wait)",
    ),
    t(
        Status::Waiting,
        Status::Cancelled,
        "cancelled while waiting",
    ),
    t(
        Status::Retry,
        Status::Running,
        "claimed again once its not-before time passed",
    ),
    t(
        Status::Retry,
        Status::Cancelled,
        "cancelled while waiting to retry",
    ),
    t(
        Status::Failed,
        Status::Pending,
        "retried by an operator: a new attempt that replays its journal",
    ),
];

/// A status change that the table does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "illegal status transition {from} -> {to}: see wf_core::status::TRANSITIONS for the legal moves"
)]
pub struct TransitionError {
    /// Current status.
    pub from: Status,
    /// Refused target status.
    pub to: Status,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_transition_is_allowed_and_every_other_pair_refused() {
        let mut allowed = 0;
        for from in Status::ALL {
            for to in Status::ALL {
                let listed = TRANSITIONS.iter().any(|t| t.from == from && t.to == to);
                assert_eq!(from.check_transition(to).is_ok(), listed, "{from} -> {to}");
                if listed {
                    allowed += 1;
                } else {
                    assert_eq!(from.check_transition(to), Err(TransitionError { from, to }));
                }
            }
        }
        assert_eq!(allowed, TRANSITIONS.len(), "table has no duplicates");
    }

    #[test]
    fn final_statuses_have_no_way_out_but_an_operators_retry() {
        for from in [Status::Success, Status::Failed, Status::Cancelled] {
            assert!(from.is_final());
            for to in Status::ALL {
                let retry = from == Status::Failed && to == Status::Pending;
                assert_eq!(from.check_transition(to).is_ok(), retry, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn the_life_of_an_invocation_is_legal() {
        // submit, claim, suspend, wake, claim, fail, retry, recover, claim, sleep, timer fires,
        // succeed
        let path = [
            Status::Registered,
            Status::Pending,
            Status::Running,
            Status::Waiting,
            Status::Pending,
            Status::Running,
            Status::Retry,
            Status::Running,
            Status::Pending,
            Status::Running,
            Status::Waiting,
            Status::Running,
            Status::Success,
        ];
        for w in path.windows(2) {
            assert!(w[0].check_transition(w[1]).is_ok(), "{} -> {}", w[0], w[1]);
        }
    }

    #[test]
    fn every_unfinished_status_can_be_cancelled_and_only_cancellation_reaches_cancelled() {
        for from in Status::ALL {
            let allowed = from.check_transition(Status::Cancelled).is_ok();
            assert_eq!(allowed, !from.is_final(), "{from} -> cancelled");
        }
        for t in TRANSITIONS.iter().filter(|t| t.to == Status::Cancelled) {
            assert!(t.because.contains("cancel"), "{t:?}");
        }
    }
}
