//! The on-disk layout of the log: a file header, then framed, checksummed records.
//!
//! ```text
//! header:  magic "wf-log\0\n" (8 bytes) | format version u32 LE
//! record:  len u32 LE | crc32 u32 LE | payload (len bytes)
//! ```
//!
//! The CRC covers the four length bytes and the payload, so a damaged length is caught as surely
//! as a damaged payload. The payload is `wf_core::codec::encode(&Vec<Change>)`: one operation's
//! changes, so an operation is in the log entirely or not at all. This module only frames bytes;
//! deciding what a bad record means (torn tail or corruption) is [`super::recovery`]'s job.

use wf_core::codec::MAX_DECODE_BYTES;

/// The first eight bytes of every log file.
pub(crate) const MAGIC: [u8; 8] = *b"wf-log\0\n";

/// The log format this build writes and the only one it reads. Version 1 (before
/// `InvocationSpec::max_recoveries`, `InvocationState::recoveries`, `Failure::non_determinism`
/// and later enum variants) is a pre-release format whose records would misdecode: it is refused.
pub(crate) const FORMAT_VERSION: u32 = 2;

/// Size of the file header.
pub(crate) const HEADER_LEN: usize = MAGIC.len() + 4;

/// Size of a record's frame (length and checksum) before its payload.
pub(crate) const FRAME_LEN: usize = 8;

/// The largest payload a record may carry (the codec refuses larger values anyway).
pub(crate) const MAX_PAYLOAD: usize = MAX_DECODE_BYTES;

/// The header of a log file written by this build.
pub(crate) fn header() -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..MAGIC.len()].copy_from_slice(&MAGIC);
    h[MAGIC.len()..].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h
}

/// What a file's first bytes say.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Header {
    /// A log this build reads.
    Ok,
    /// A log written by a newer format.
    Newer(u32),
    /// A log written by an older format this build does not read.
    Older(u32),
    /// Not a log file (too short, wrong magic, or version 0).
    Invalid(&'static str),
}

/// Reads a file header.
pub(crate) fn read_header(bytes: &[u8]) -> Header {
    let Some((magic, rest)) = bytes.split_first_chunk::<8>() else {
        return Header::Invalid("file is shorter than the log header");
    };
    if *magic != MAGIC {
        return Header::Invalid("bad magic bytes: this is not a wf log file");
    }
    let Some(version) = rest.first_chunk::<4>() else {
        return Header::Invalid("file is shorter than the log header");
    };
    match u32::from_le_bytes(*version) {
        0 => Header::Invalid("format version 0 was never written"),
        FORMAT_VERSION => Header::Ok,
        v if v > FORMAT_VERSION => Header::Newer(v),
        v => Header::Older(v),
    }
}

fn checksum(len: [u8; 4], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&len);
    h.update(payload);
    h.finalize()
}

/// Appends one framed record to `out`. The caller guarantees `payload.len() <= MAX_PAYLOAD`.
pub(crate) fn push_record(out: &mut Vec<u8>, payload: &[u8]) {
    let len = u32::try_from(payload.len())
        .unwrap_or(u32::MAX)
        .to_le_bytes();
    out.reserve(FRAME_LEN + payload.len());
    out.extend_from_slice(&len);
    out.extend_from_slice(&checksum(len, payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Reading one record at an offset.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame<'a> {
    /// A whole record whose checksum matches; the next record starts at `next`.
    Valid {
        /// The payload.
        payload: &'a [u8],
        /// Offset of the next record.
        next: usize,
    },
    /// No bytes left: a clean end.
    End,
    /// A record that is cut short or fails its checksum.
    Bad(&'static str),
}

/// Reads the record starting at `at` in `bytes`.
pub(crate) fn read_frame(bytes: &[u8], at: usize) -> Frame<'_> {
    let Some(rest) = bytes.get(at..) else {
        return Frame::Bad("offset past the end of the file");
    };
    if rest.is_empty() {
        return Frame::End;
    }
    let Some((len, rest)) = rest.split_first_chunk::<4>() else {
        return Frame::Bad("record frame is cut short (torn write)");
    };
    let Some((crc, rest)) = rest.split_first_chunk::<4>() else {
        return Frame::Bad("record frame is cut short (torn write)");
    };
    let n = u32::from_le_bytes(*len) as usize;
    if n == 0 || n > MAX_PAYLOAD {
        return Frame::Bad("record length is zero or impossibly large");
    }
    let Some(payload) = rest.get(..n) else {
        return Frame::Bad("record payload is cut short (torn write)");
    };
    if checksum(*len, payload) != u32::from_le_bytes(*crc) {
        return Frame::Bad("record checksum does not match its contents");
    }
    Frame::Valid {
        payload,
        next: at + FRAME_LEN + n,
    }
}

/// Whether any checksum-valid record starts after `bad` (a record already found bad): that makes
/// the damage corruption in the middle of the log rather than a torn tail. The record that would
/// follow the bad one if only its payload were damaged is tried first, then every later offset.
pub(crate) fn valid_record_after(bytes: &[u8], bad: usize) -> Option<usize> {
    let natural = bytes
        .get(bad..bad + 4)
        .and_then(|b| b.first_chunk::<4>())
        .map(|len| bad + FRAME_LEN + u32::from_le_bytes(*len) as usize);
    if let Some(at) = natural.filter(|at| *at < bytes.len())
        && matches!(read_frame(bytes, at), Frame::Valid { .. })
    {
        return Some(at);
    }
    (bad + 1..bytes.len().saturating_sub(FRAME_LEN))
        .find(|at| matches!(read_frame(bytes, *at), Frame::Valid { .. }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_damage_is_seen() {
        let mut log = header().to_vec();
        push_record(&mut log, b"first");
        push_record(&mut log, b"second");
        assert_eq!(read_header(&log), Header::Ok);
        let Frame::Valid { payload, next } = read_frame(&log, HEADER_LEN) else {
            panic!("first record unreadable");
        };
        assert_eq!(payload, b"first");
        let Frame::Valid { payload, next: end } = read_frame(&log, next) else {
            panic!("second record unreadable");
        };
        assert_eq!(payload, b"second");
        assert_eq!(read_frame(&log, end), Frame::End);
        for cut in next + 1..end {
            assert!(matches!(read_frame(&log[..cut], next), Frame::Bad(_)));
        }
        let mut flipped = log.clone();
        flipped[HEADER_LEN + FRAME_LEN] ^= 1;
        assert!(matches!(read_frame(&flipped, HEADER_LEN), Frame::Bad(_)));
        assert_eq!(valid_record_after(&flipped, HEADER_LEN), Some(next));
        assert_eq!(valid_record_after(&log[..end - 1], next), None);
    }

    #[test]
    fn zeros_never_look_like_a_record() {
        let zeros = [0u8; 64];
        assert!(matches!(read_frame(&zeros, 0), Frame::Bad(_)));
        assert_eq!(valid_record_after(&zeros, 0), None);
    }

    #[test]
    fn headers_are_judged() {
        let mut h = header();
        h[MAGIC.len()..].copy_from_slice(&7u32.to_le_bytes());
        assert_eq!(read_header(&h), Header::Newer(7));
        h[MAGIC.len()..].copy_from_slice(&1u32.to_le_bytes());
        assert_eq!(read_header(&h), Header::Older(1));
        assert!(matches!(read_header(b"wf-l"), Header::Invalid(_)));
        assert!(matches!(
            read_header(b"not a log at all"),
            Header::Invalid(_)
        ));
    }
}
