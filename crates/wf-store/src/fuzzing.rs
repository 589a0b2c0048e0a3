//! Entry points for fuzzing the decoders of stored and received bytes (feature `testing`).
//!
//! Each takes bytes (or a Redis reply) as a hostile peer or a damaged disk could shape them and
//! runs the very code a store runs on them; the promise under test is that every input gives a
//! value or a typed [`crate::StoreError`] / [`CodecError`], never a panic, a hang or an
//! allocation far beyond the input's size. The bounded property-based fuzz in `tests/hostile_input.rs` and the
//! cargo-fuzz targets in `fuzz/` (outside the workspace) both drive these.
//!
//! A log record's checksum does not keep a crafted record out: anyone who can write the file can
//! compute it. [`reseal_log`] recomputes every frame's tag and checksum after a mutation, so the
//! fuzz reaches the decoders behind them.

use wf_core::{CodecError, Failure, JournalEntry, codec};

use crate::model::{InvocationSpec, InvocationState};
use crate::steering::StoredEvent;
use crate::tables::Change;

/// Decodes `bytes` as each type a backend stores with the codec (a log record's changes, an
/// invocation's spec and state, a journal entry, a failure, an event) and returns how many of
/// them it decoded as; the errors are all [`CodecError`]s, never panics.
pub fn decode_stored_value(bytes: &[u8]) -> usize {
    fn ok<T>(r: Result<T, CodecError>) -> usize {
        usize::from(r.is_ok())
    }
    ok(codec::decode::<Vec<Change>>(bytes))
        + ok(codec::decode::<InvocationSpec>(bytes))
        + ok(codec::decode::<InvocationState>(bytes))
        + ok(codec::decode::<JournalEntry>(bytes))
        + ok(codec::decode::<Failure>(bytes))
        + ok(codec::decode::<StoredEvent>(bytes))
}

#[cfg(feature = "file")]
pub use self::file_log::{log_of, replay_log, reseal_log};

#[cfg(feature = "file")]
mod file_log {
    use std::path::Path;

    use crate::error::StoreError;
    use crate::file::format::{self, FRAME_LEN, HEADER_LEN, MAX_PAYLOAD};
    use crate::file::recovery::replay;

    /// Replays the bytes of a file store's log (`wf.log`: header, then records) as opening the
    /// store does, touching no file, and returns how many records it applied. It replays them as
    /// a repair would too (`FileOptions::repair`), and drops that result.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`], [`StoreError::NewerFormat`] or [`StoreError::OlderFormat`], as
    /// opening a store with this log would give.
    pub fn replay_log(bytes: &[u8]) -> Result<u64, StoreError> {
        let path = Path::new("fuzz/wf.log");
        let _ = replay(path, bytes, true);
        replay(path, bytes, false).map(|r| r.records)
    }

    /// A log of this build's format holding `payloads` as its records, framed and checksummed
    /// (a payload is the record's watermark, 8 bytes, then its encoded changes). Payloads longer
    /// than a record may be are left out.
    pub fn log_of(payloads: &[Vec<u8>]) -> Vec<u8> {
        let mut log = format::header().to_vec();
        for p in payloads
            .iter()
            .filter(|p| !p.is_empty() && p.len() <= MAX_PAYLOAD)
        {
            let at = log.len() as u64;
            format::push_record(&mut log, at, p);
        }
        log
    }

    /// Rewrites the tag and checksum of every record whose length field fits in `bytes`,
    /// walking from the header by those lengths, so that a mutated log's records pass as whole
    /// and their payloads reach the decoder.
    pub fn reseal_log(bytes: &mut [u8]) {
        let mut at = HEADER_LEN;
        while let Some(frame) = bytes.get(at..at + FRAME_LEN) {
            let len = [frame[0], frame[1], frame[2], frame[3]];
            let n = u32::from_le_bytes(len) as usize;
            let end = at + FRAME_LEN + n;
            if n == 0 || n > MAX_PAYLOAD || end > bytes.len() {
                return;
            }
            let mut record = Vec::with_capacity(FRAME_LEN + n);
            format::push_record(&mut record, at as u64, &bytes[at + FRAME_LEN..end]);
            bytes[at..end].copy_from_slice(&record);
            at = end;
        }
    }
}

#[cfg(all(feature = "file", unix))]
pub use self::control_frames::{control_frame, control_frame_samples};

#[cfg(all(feature = "file", unix))]
mod control_frames {
    use crate::control::protocol::{Request, Response, read_frame, write_frame};
    use crate::model::{NewInvocation, StatusCounts};

    /// Reads `bytes` as the control socket's owner reads a request and as its client reads a
    /// response (length-prefixed frames, decoded with limits); returns how many of the two
    /// decoded.
    pub fn control_frame(bytes: &[u8]) -> usize {
        usize::from(read_frame::<Request>(&mut &bytes[..]).is_ok())
            + usize::from(read_frame::<Response>(&mut &bytes[..]).is_ok())
    }

    /// Valid frames (a submission of `new`, a read, a response with counts): starting points for
    /// mutations.
    pub fn control_frame_samples(new: &NewInvocation) -> Vec<Vec<u8>> {
        let mut frames = vec![Vec::new(), Vec::new(), Vec::new()];
        let _ = write_frame(
            &mut frames[0],
            &Request::Submit(new.clone(), wf_core::Timestamp(1)),
        );
        let _ = write_frame(&mut frames[1], &Request::Journal(new.id));
        let _ = write_frame(&mut frames[2], &Response::Counts(StatusCounts::default()));
        frames
    }
}

#[cfg(feature = "redis")]
pub use self::redis_fields::{
    parse_redis_journal, parse_redis_record, redis_reply_bytes, redis_spec_field,
};

#[cfg(feature = "redis")]
mod redis_fields {
    use redis::Value;
    use wf_core::{InvocationId, JournalEntry};

    use crate::error::StoreError;
    use crate::model::{InvocationRecord, NewInvocation};
    use crate::redis::fields;

    /// Decodes a reply of the Redis backend's record-reading scripts (15 fields: spec blob,
    /// times, status, counters, lease, result, failure, waiting ids) as the backend does.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] for a reply of the wrong shape, [`StoreError::Codec`] for a blob
    /// that does not decode.
    pub fn parse_redis_record(reply: &Value) -> Result<InvocationRecord, StoreError> {
        fields::parse_record(InvocationId::from_u128(1), reply)
    }

    /// Decodes a journal reply (an array of encoded entries) as the Redis backend does.
    ///
    /// # Errors
    ///
    /// As [`parse_redis_record`].
    pub fn parse_redis_journal(reply: &Value) -> Result<Vec<JournalEntry>, StoreError> {
        fields::parse_journal(reply)
    }

    /// Parses `bytes` as a RESP reply off the wire (with the `redis` driver's parser) and, if it
    /// is one, decodes it as a record and as a journal, as the backend would; returns whether the
    /// bytes parsed as a reply.
    pub fn redis_reply_bytes(bytes: &[u8]) -> bool {
        let Ok(reply) = redis::parse_redis_value(bytes) else {
            return false;
        };
        let _ = parse_redis_record(&reply);
        let _ = parse_redis_journal(&reply);
        true
    }

    /// The spec blob (the first field of a record reply) the backend stores for `new`: a valid
    /// starting point for mutations.
    ///
    /// # Errors
    ///
    /// [`StoreError::Codec`] if `new` does not encode.
    pub fn redis_spec_field(new: &NewInvocation) -> Result<Vec<u8>, StoreError> {
        let mut args = fields::new_invocation_args(new)?;
        Ok(args.swap_remove(4))
    }
}
