//! The records of steering: external events sent to invocations, and cancellation requests.
//!
//! Events are addressed to one invocation (a workflow is addressed by its root's id), stored
//! durably in arrival order and consumed, each once, by the commit that journals them
//! ([`crate::Commit::consumed`]). A cancellation of a workflow tree cancels its pending and
//! waiting members at once and records a [`CancelRequest`] for each running one, which ends
//! cancelled at its next commit. See `docs/backends.md` ("Contract operations") for the rules
//! every backend follows.

use serde::{Deserialize, Serialize};
use wf_core::{InvocationId, Status, Timestamp};

/// An event to send to an invocation ([`crate::StoreWork::send_event`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEvent {
    /// Its name: a body waits for events by name.
    pub name: String,
    /// Its payload, opaque to the store (the runtime sends JSON).
    pub payload: Vec<u8>,
    /// An idempotency key, unique among the events sent to the same invocation: sending the
    /// same key again stores nothing new.
    pub key: Option<String>,
}

/// An event as stored with the invocation it was sent to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// Its number among the events sent to this invocation: arrival order, from 0.
    pub seq: u64,
    /// Its name.
    pub name: String,
    /// Its payload.
    pub payload: Vec<u8>,
    /// Its idempotency key, if it was sent with one.
    pub key: Option<String>,
    /// When it arrived.
    pub sent_at: Timestamp,
    /// Whether a commit consumed it (journaled it as the value of a `wait_event`).
    pub consumed: bool,
}

/// What [`crate::StoreWork::send_event`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventSent {
    /// The event was stored as number `seq`.
    Stored {
        /// Its number among the events of the invocation.
        seq: u64,
    },
    /// An event with the same key (and the same name and payload) was stored before as number
    /// `seq`; nothing changed.
    AlreadyStored {
        /// The number of the event stored before.
        seq: u64,
    },
}

impl EventSent {
    /// The event's number among the events sent to the invocation.
    pub fn seq(self) -> u64 {
        match self {
            EventSent::Stored { seq } | EventSent::AlreadyStored { seq } => seq,
        }
    }
}

/// The events sent to one invocation ([`crate::StoreRead::events`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventInbox {
    /// Every event sent to it, consumed or not, in arrival order.
    pub events: Vec<StoredEvent>,
    /// The name of the event it waits for, while it is waiting for one.
    pub waiting_for: Option<String>,
}

impl EventInbox {
    /// The events no commit consumed yet, in arrival order.
    pub fn unconsumed(&self) -> impl Iterator<Item = &StoredEvent> + '_ {
        self.events.iter().filter(|e| !e.consumed)
    }
}

/// The cancellation request of an invocation that was running when its tree was cancelled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelRequest {
    /// Why.
    pub reason: String,
    /// Whether its body was told (an execution committed with
    /// [`crate::Commit::cancel_acknowledged`]): it may then run compensating steps, suspending
    /// and waking as usual, until it ends, cancelled.
    pub acknowledged: bool,
}

/// What [`crate::StoreAdmin::cancel_tree`] did. Cancelling is harmless to repeat: a second
/// request finds the members already cancelled or stopping and changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelReport {
    /// The invocation asked for.
    pub invocation: InvocationId,
    /// Its status when the request came. A final status means nothing was done.
    pub status_before: Status,
    /// Members cancelled now (they were pending, waiting or retrying), the invocation itself
    /// first, parents before their children.
    pub cancelled: Vec<InvocationId>,
    /// Running members asked to stop by this request: each ends cancelled with its next commit,
    /// after its compensating steps if its body handles `WfError::Cancelled`.
    pub stopping: Vec<InvocationId>,
    /// Members asked to stop by an earlier request and not ended yet.
    pub already_stopping: Vec<InvocationId>,
}

impl CancelReport {
    /// Whether the invocation was already final (success, failed or cancelled): nothing changed.
    pub fn was_final(&self) -> bool {
        self.status_before.is_final()
    }

    /// Whether this request changed anything.
    pub fn changed_anything(&self) -> bool {
        !self.cancelled.is_empty() || !self.stopping.is_empty()
    }
}

impl std::fmt::Display for CancelReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.was_final() {
            return write!(
                f,
                "invocation {} was already final ({}): nothing to cancel",
                self.invocation, self.status_before
            );
        }
        write!(
            f,
            "cancelled {} invocation(s) of the tree of {}; {} running asked to stop",
            self.cancelled.len(),
            self.invocation,
            self.stopping.len()
        )?;
        if !self.already_stopping.is_empty() {
            write!(
                f,
                "; {} still stopping from an earlier request",
                self.already_stopping.len()
            )?;
        }
        Ok(())
    }
}
