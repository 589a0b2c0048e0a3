//! One stored invocation. A final invocation's state never changes again (but for an operator's
//! retry), and most of a store's invocations are final, so it is kept encoded: a few dozen
//! bytes instead of the ~150 of an `InvocationState` with its empty lease, error and list slots.
//! It is decoded when read. Status, last update and queue keys stay at hand, so indexing,
//! retention and status checks never decode.

use std::borrow::Cow;
use std::sync::Arc;

use wf_core::{Failure, FailureKind, Status, Timestamp, codec};

use crate::model::{InvocationSpec, InvocationState};

/// The ticket of a slot that is in no ready queue.
const NO_TICKET: u64 = u64::MAX;

/// An invocation's state as stored.
#[derive(Clone)]
enum Stored {
    /// Not final: as it is.
    Live(Box<InvocationState>),
    /// Final: encoded with the codec (a state that cannot be encoded stays live).
    Done(Box<[u8]>),
}

/// One stored invocation: its spec, its state, and its places in the indexes.
#[derive(Clone)]
pub(super) struct Slot {
    pub(super) spec: Arc<InvocationSpec>,
    stored: Stored,
    /// The state's status, at hand.
    pub(super) status: Status,
    /// The state's last update, at hand (retention reads it for every final invocation).
    pub(super) updated_at: Timestamp,
    /// Creation order: given by `apply(Created)`, so log replay gives the same order.
    pub(super) seq: u64,
    /// Its key in its task's ready queue while it is there ([`NO_TICKET`]: it is not; kept
    /// without an `Option`'s 8 more bytes).
    ticket: u64,
}

/// What places a state takes in the indexes: status, not-before time, lease expiry.
#[derive(Clone, Copy)]
pub(super) struct IndexKeys {
    pub(super) status: Status,
    pub(super) not_before: Option<Timestamp>,
    pub(super) lease: Option<Timestamp>,
}

impl IndexKeys {
    pub(super) fn of(state: &InvocationState) -> Self {
        Self {
            status: state.status,
            not_before: state.not_before,
            lease: state.lease.as_ref().map(|l| l.expires_at),
        }
    }
}

fn store(state: InvocationState) -> Stored {
    if state.status.is_final()
        && let Ok(bytes) = codec::encode(&state)
    {
        return Stored::Done(bytes.into_boxed_slice());
    }
    Stored::Live(Box::new(state))
}

impl Slot {
    /// A slot for a new invocation (not queued yet).
    pub(super) fn new(spec: Arc<InvocationSpec>, state: InvocationState, seq: u64) -> Self {
        Self {
            spec,
            status: state.status,
            updated_at: state.updated_at,
            stored: store(state),
            seq,
            ticket: NO_TICKET,
        }
    }

    /// Its key in its task's ready queue while it is there.
    pub(super) fn ticket(&self) -> Option<u64> {
        (self.ticket != NO_TICKET).then_some(self.ticket)
    }

    /// Takes its ready-queue key out.
    pub(super) fn take_ticket(&mut self) -> Option<u64> {
        let ticket = self.ticket();
        self.ticket = NO_TICKET;
        ticket
    }

    /// Sets its ready-queue key (tickets are counted from 0, never reaching [`NO_TICKET`]).
    pub(super) fn set_ticket(&mut self, ticket: Option<u64>) {
        self.ticket = ticket.unwrap_or(NO_TICKET);
    }

    /// Its state (decoded when final).
    pub(super) fn state(&self) -> Cow<'_, InvocationState> {
        match &self.stored {
            Stored::Live(state) => Cow::Borrowed(state),
            Stored::Done(bytes) => Cow::Owned(codec::decode(bytes).unwrap_or_else(|e| {
                // Bytes this process encoded a moment ago: cannot happen; say so if it does.
                let mut state = InvocationState {
                    status: self.status,
                    attempts: 0,
                    retries: 0,
                    recoveries: 0,
                    lease: None,
                    not_before: None,
                    result: None,
                    error: None,
                    waiting_on: Vec::new(),
                    updated_at: self.updated_at,
                };
                state.error = Some(Failure::new(
                    FailureKind::Internal,
                    format!("the store could not decode this invocation's state: {e}"),
                ));
                state
            })),
        }
    }

    /// Its state, to change in place, when it is not final.
    pub(super) fn live_mut(&mut self) -> Option<&mut InvocationState> {
        match &mut self.stored {
            Stored::Live(state) => Some(state),
            Stored::Done(_) => None,
        }
    }

    /// Its places in the indexes (a final state has none but its status).
    pub(super) fn keys(&self) -> IndexKeys {
        match &self.stored {
            Stored::Live(state) => IndexKeys::of(state),
            Stored::Done(_) => IndexKeys {
                status: self.status,
                not_before: None,
                lease: None,
            },
        }
    }

    /// Replaces its state; returns the old one's index keys.
    pub(super) fn replace_state(&mut self, state: InvocationState) -> IndexKeys {
        let old = self.keys();
        self.status = state.status;
        self.updated_at = state.updated_at;
        self.stored = store(state);
        old
    }
}
