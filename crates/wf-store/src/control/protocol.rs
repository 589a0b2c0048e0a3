//! The control socket's wire format: one request, one response, each a frame of a `u32`
//! little-endian length and a [`wf_core::codec`] payload (size-limited on decode).

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};
use wf_core::{InvocationId, JournalEntry, Status, Timestamp, codec};

use crate::error::StoreError;
use crate::model::{InvocationRecord, NewInvocation, StatusCounts, Submitted};
use crate::steering::{CancelReport, EventInbox, EventSent, NewEvent};

/// The protocol version a `Hello` carries; a client refuses an owner that speaks another.
pub(crate) const PROTOCOL_VERSION: u32 = 1;

/// The largest frame either side reads: a request or response is refused beyond it, before
/// anything is allocated for it.
const MAX_FRAME: usize = codec::MAX_DECODE_BYTES;

/// One store operation, as a client asks the owner to run it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Request {
    Hello,
    AppId,
    Invocation(InvocationId),
    Invocations(Vec<InvocationId>),
    Journal(InvocationId),
    GetData(InvocationId, String),
    DataKeys(InvocationId),
    WorkflowInvocations(InvocationId),
    Workflows,
    Counts,
    Purgeable(Timestamp),
    /// Waits at most the given milliseconds (the client asks again for longer waits).
    WaitFinal(InvocationId, u64),
    Events(InvocationId),
    CancelRequests(Vec<InvocationId>),
    BindApp(String),
    Submit(NewInvocation, Timestamp),
    SubmitMany(Vec<NewInvocation>, Timestamp),
    SendEvent(InvocationId, NewEvent, Timestamp),
    Cancel(InvocationId, String, Timestamp),
    PurgeFinished(Timestamp),
    CancelTree(InvocationId, String, Timestamp),
    Retry(InvocationId, Timestamp),
}

/// The owner's answer to one [`Request`].
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Response {
    Hello { version: u32, pid: u32 },
    AppId(Option<String>),
    Record(InvocationRecord),
    Records(Vec<InvocationRecord>),
    Journal(Vec<JournalEntry>),
    Data(Option<Vec<u8>>),
    Keys(Vec<String>),
    Ids(Vec<InvocationId>),
    Counts(StatusCounts),
    Final(Option<InvocationRecord>),
    Inbox(EventInbox),
    CancelRequests(Vec<(InvocationId, String)>),
    Done,
    Submitted(Submitted),
    SubmittedMany(Vec<Submitted>),
    EventSent(EventSent),
    Purged(usize),
    CancelReport(CancelReport),
    Failed(WireError),
}

/// A [`StoreError`] as it crosses the socket: the variants a caller matches keep their shape;
/// the rest keep their message.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum WireError {
    NotFound(InvocationId),
    LeaseLost(InvocationId, String),
    InvalidCommit(InvocationId, String),
    NotRetryable(InvocationId, String),
    Conflict(InvocationId),
    Unavailable(String),
    AppMismatch {
        store: String,
        recorded: String,
        requested: String,
    },
    TooLarge {
        what: String,
        size: usize,
        limit: usize,
    },
    AlreadyFinished(InvocationId, Status),
    EventConflict(InvocationId, String),
    /// Any other error, by its message.
    Other(String),
}

impl From<&StoreError> for WireError {
    fn from(e: &StoreError) -> Self {
        match e {
            StoreError::InvocationNotFound(id) => WireError::NotFound(*id),
            StoreError::LeaseLost { invocation, reason } => {
                WireError::LeaseLost(*invocation, reason.clone())
            }
            StoreError::InvalidCommit { invocation, reason } => {
                WireError::InvalidCommit(*invocation, reason.clone())
            }
            StoreError::NotRetryable { invocation, reason } => {
                WireError::NotRetryable(*invocation, reason.clone())
            }
            StoreError::Conflict(id) => WireError::Conflict(*id),
            StoreError::Unavailable(m) => WireError::Unavailable(m.clone()),
            StoreError::AppMismatch {
                store,
                recorded,
                requested,
            } => WireError::AppMismatch {
                store: store.clone(),
                recorded: recorded.clone(),
                requested: requested.clone(),
            },
            StoreError::TooLarge { what, size, limit } => WireError::TooLarge {
                what: what.clone(),
                size: *size,
                limit: *limit,
            },
            StoreError::AlreadyFinished { invocation, status } => {
                WireError::AlreadyFinished(*invocation, *status)
            }
            StoreError::EventConflict { invocation, key } => {
                WireError::EventConflict(*invocation, key.clone())
            }
            other => WireError::Other(other.to_string()),
        }
    }
}

impl WireError {
    /// The error as the client reports it; `store` names the store for messages.
    pub(crate) fn into_store_error(self, store: &str) -> StoreError {
        match self {
            WireError::NotFound(id) => StoreError::InvocationNotFound(id),
            WireError::LeaseLost(invocation, reason) => {
                StoreError::LeaseLost { invocation, reason }
            }
            WireError::InvalidCommit(invocation, reason) => {
                StoreError::InvalidCommit { invocation, reason }
            }
            WireError::NotRetryable(invocation, reason) => {
                StoreError::NotRetryable { invocation, reason }
            }
            WireError::Conflict(id) => StoreError::Conflict(id),
            WireError::Unavailable(m) => StoreError::Unavailable(m),
            WireError::AppMismatch {
                store,
                recorded,
                requested,
            } => StoreError::AppMismatch {
                store,
                recorded,
                requested,
            },
            WireError::TooLarge { what, size, limit } => StoreError::TooLarge { what, size, limit },
            WireError::AlreadyFinished(invocation, status) => {
                StoreError::AlreadyFinished { invocation, status }
            }
            WireError::EventConflict(invocation, key) => {
                StoreError::EventConflict { invocation, key }
            }
            WireError::Other(message) => StoreError::Backend {
                store: store.to_owned(),
                message,
            },
        }
    }
}

/// What reading a frame found.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The other side closed the connection before a frame began.
    Closed,
    /// The connection failed mid-frame, or the bytes are not a frame of this protocol.
    Broken(String),
}

/// Writes `value` as one frame.
pub(crate) fn write_frame<T: Serialize>(out: &mut impl Write, value: &T) -> Result<(), String> {
    let payload = codec::encode(value).map_err(|e| e.to_string())?;
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|len| *len as usize <= MAX_FRAME)
        .ok_or_else(|| format!("a frame of {} bytes is over the limit", payload.len()))?;
    let mut frame = Vec::with_capacity(4 + payload.len());
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(&payload);
    out.write_all(&frame)
        .and_then(|()| out.flush())
        .map_err(|e| e.to_string())
}

/// Reads one frame and decodes it; a length over the limit is refused before any allocation.
pub(crate) fn read_frame<T: serde::de::DeserializeOwned>(
    input: &mut impl Read,
) -> Result<T, ReadError> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(ReadError::Closed),
        Err(e) => return Err(ReadError::Broken(e.to_string())),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(ReadError::Broken(format!(
            "a frame announces {len} bytes, over the limit of {MAX_FRAME}"
        )));
    }
    let mut payload = vec![0u8; len];
    input
        .read_exact(&mut payload)
        .map_err(|e| ReadError::Broken(format!("the frame is cut short: {e}")))?;
    codec::decode(&payload).map_err(|e| ReadError::Broken(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_round_trips_and_a_huge_length_is_refused_without_allocating() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &Request::Counts).unwrap();
        let back: Request = read_frame(&mut buf.as_slice()).unwrap();
        assert!(matches!(back, Request::Counts));

        let mut huge = u32::MAX.to_le_bytes().to_vec();
        huge.extend_from_slice(&[0; 16]);
        match read_frame::<Request>(&mut huge.as_slice()) {
            Err(ReadError::Broken(m)) => assert!(m.contains("over the limit"), "{m}"),
            other => panic!("expected a refused frame, got {other:?}"),
        }
        assert!(matches!(
            read_frame::<Request>(&mut [].as_slice()),
            Err(ReadError::Closed)
        ));
        let cut = &buf[..buf.len() - 1];
        assert!(matches!(
            read_frame::<Request>(&mut &cut[..]),
            Err(ReadError::Broken(_))
        ));
    }

    #[test]
    fn matchable_errors_keep_their_shape_across_the_socket() {
        let id = InvocationId::from_u128(7);
        let e = StoreError::Conflict(id);
        let wire = WireError::from(&e);
        let mut buf = Vec::new();
        write_frame(&mut buf, &Response::Failed(wire)).unwrap();
        let Ok(Response::Failed(wire)) = read_frame(&mut buf.as_slice()) else {
            panic!("not a failure")
        };
        assert!(matches!(wire.into_store_error("s"), StoreError::Conflict(x) if x == id));
        let other = WireError::from(&StoreError::Unsupported {
            backend: "x",
            operation: "y",
        });
        assert!(matches!(
            other.into_store_error("s"),
            StoreError::Backend { message, .. } if message.contains("does not support y")
        ));
    }
}
