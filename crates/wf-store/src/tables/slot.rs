//! One stored invocation. A final invocation's state never changes again (but for an operator's
//! retry), and most of a store's invocations are final, so it is kept compact: a few dozen
//! bytes instead of the ~150 of an `InvocationState` with its empty lease, error and list slots
//! (its counters and result bytes when it has no error, as most have; encoded with the codec
//! otherwise).
//! It is unpacked when read. Status, last update and queue keys stay at hand, so indexing,
//! retention and status checks never unpack.

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
    /// Final without an error (a success, most of them): [`Packed`], no codec either way.
    Packed(Packed),
    /// Final otherwise: encoded with the codec (a state that cannot be encoded stays live).
    Done(Box<[u8]>),
}

/// A final state with nothing in it but its counters and result (no lease, timer, error or
/// awaited child; status and last update are the slot's). The result's bytes are moved in from
/// the commit and copied out when read: no codec (its serde walk was a sixth of a memory-store
/// task's instructions) and no second allocation (packing the counters and a copy of the
/// result into one was a malloc, a copy and two frees per commit, under the store's lock).
/// No larger than that packing: the slot still fits the same allocator size class.
#[derive(Clone)]
struct Packed {
    /// The result's bytes (none allocated when there is no result).
    result: Box<[u8]>,
    /// `attempts`, `retries`, `recoveries`.
    counters: [u32; 3],
    /// Whether there is a result (it may be empty).
    has_result: bool,
}

impl Packed {
    /// Whether `state` has nothing but counters and a result (and a status and a last update).
    fn fits(state: &InvocationState) -> bool {
        state.lease.is_none()
            && state.not_before.is_none()
            && state.error.is_none()
            && state.waiting_on.is_empty()
    }

    /// Packs `state`'s counters and result (see [`Self::fits`]), moving the result in.
    fn pack(state: InvocationState) -> Self {
        let InvocationState {
            attempts,
            retries,
            recoveries,
            result,
            ..
        } = state;
        Self {
            has_result: result.is_some(),
            result: result.unwrap_or_default().into_boxed_slice(),
            counters: [attempts, retries, recoveries],
        }
    }

    /// The state, with the slot's `status` and `updated_at`.
    fn unpack(&self, status: Status, updated_at: Timestamp) -> InvocationState {
        let [attempts, retries, recoveries] = self.counters;
        InvocationState {
            status,
            attempts,
            retries,
            recoveries,
            lease: None,
            not_before: None,
            result: self.has_result.then(|| self.result.to_vec()),
            error: None,
            waiting_on: Vec::new(),
            updated_at,
        }
    }
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
    if !state.status.is_final() {
        return Stored::Live(Box::new(state));
    }
    if Packed::fits(&state) {
        return Stored::Packed(Packed::pack(state));
    }
    match codec::encode(&state) {
        Ok(bytes) => Stored::Done(bytes.into_boxed_slice()),
        Err(_) => Stored::Live(Box::new(state)),
    }
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
            Stored::Packed(packed) => Cow::Owned(packed.unpack(self.status, self.updated_at)),
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
            Stored::Packed(_) | Stored::Done(_) => None,
        }
    }

    /// Its places in the indexes (a final state has none but its status).
    pub(super) fn keys(&self) -> IndexKeys {
        match &self.stored {
            Stored::Live(state) => IndexKeys::of(state),
            Stored::Packed(_) | Stored::Done(_) => IndexKeys {
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
        match &mut self.stored {
            // A live state changing into another live one: in place, no allocation.
            Stored::Live(live) if !state.status.is_final() => **live = state,
            stored => *stored = store(state),
        }
        old
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn final_state(result: Option<Vec<u8>>, error: Option<Failure>) -> InvocationState {
        InvocationState {
            status: if error.is_some() {
                Status::Failed
            } else {
                Status::Success
            },
            attempts: 3,
            retries: 70_000,
            recoveries: u32::MAX,
            lease: None,
            not_before: None,
            result,
            error,
            waiting_on: Vec::new(),
            updated_at: Timestamp(1_234_567),
        }
    }

    fn round_trip(state: &InvocationState) -> InvocationState {
        let mut slot = Slot::new(
            Arc::new(InvocationSpec {
                id: wf_core::InvocationId::from_u128(1),
                task: wf_core::TaskId::new("t"),
                call: wf_core::CallId::of(&wf_core::TaskId::new("t"), b""),
                args: Vec::new(),
                identity: wf_core::WorkflowIdentity::new_workflow(
                    wf_core::InvocationId::from_u128(1),
                    wf_core::TaskId::new("t"),
                ),
                parent: None,
                created_at: Timestamp(0),
                max_recoveries: 3,
            }),
            final_state(None, None),
            0,
        );
        slot.replace_state(state.clone());
        slot.state().into_owned()
    }

    #[test]
    fn final_states_read_back_exactly_packed_or_encoded() {
        for state in [
            final_state(Some(b"\x01result".to_vec()), None),
            final_state(Some(Vec::new()), None),
            final_state(None, None),
            final_state(None, Some(Failure::new(FailureKind::Internal, "boom"))),
        ] {
            assert_eq!(round_trip(&state), state);
        }
        assert!(matches!(
            store(final_state(Some(Vec::new()), None)),
            Stored::Packed(_)
        ));
        assert!(matches!(
            store(final_state(
                None,
                Some(Failure::new(FailureKind::Internal, "e"))
            )),
            Stored::Done(_)
        ));
    }
}
