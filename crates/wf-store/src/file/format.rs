//! The on-disk layout of the log: a file header, then framed, checksummed records.
//!
//! ```text
//! header:  magic "wf-log\0\n" (8 bytes) | format version u32 LE
//! record:  len u32 LE | tag u32 LE | crc32 u32 LE | payload (len bytes)
//! payload: synced u64 LE | changes            (format 3; format 2: changes only)
//! ```
//!
//! The CRC covers the four length bytes and the payload, so a damaged length is caught as surely
//! as a damaged payload. The changes are `wf_core::codec::encode(&Vec<Change>)`: one operation's
//! changes, so an operation is in the log entirely or not at all. This module only frames bytes;
//! deciding what a bad record means (torn tail, unsynced hole or corruption) is
//! [`super::recovery`]'s job.
//!
//! **Format 3** starts every payload with the record's **watermark** (`synced`): the byte offset
//! of the log known durable (fsync'd) when the record was appended, or [`DURABLE_WITH_FILE`] for
//! the records of a compacted log (synced whole before it became the log). It lets recovery tell
//! the hole a power loss can leave in the unsynced end of the log (a later unsynced write kept,
//! an earlier one lost: every record after the hole was appended before the hole was synced, so
//! none of them was acknowledged as durable) from damage (some record after it was appended once
//! the damaged bytes were known durable). A format 2 log (no watermark) is still read; the store
//! rewrites it as format 3 when it opens it (see `recovery`).
//!
//! The **tag** ([`frame_tag`]) is a 32-bit hash of the record's byte offset in the file and its
//! length. It marks where records start. Telling a torn tail from damage means looking for a
//! valid record anywhere after a bad one ([`valid_record_after`]); without the tag every offset
//! with a plausible length had to be checksummed over that length, which made a long garbage
//! tail cost time roughly cubic in its size. With it, an offset that is not a record start is
//! turned away after hashing eight bytes, except once in 2^32, so the search costs time in
//! proportion to the tail. Because it is keyed by the offset, a record moved elsewhere (or bytes
//! in a stored value that imitate a frame) do not pass for a record start either.

use wf_core::codec::MAX_DECODE_BYTES;

/// The first eight bytes of every log file.
pub(crate) const MAGIC: [u8; 8] = *b"wf-log\0\n";

/// The log format this build writes. It reads this one and [`OLDEST_READ`]. Version 1 (before
/// `InvocationSpec::max_recoveries`, `InvocationState::recoveries`, `Failure::non_determinism`
/// and later enum variants) is a pre-release format whose records would misdecode: it is refused.
pub(crate) const FORMAT_VERSION: u32 = 3;

/// The oldest log format this build reads: format 2, records without a watermark.
pub(crate) const OLDEST_READ: u32 = 2;

/// Size of a format 3 record's watermark, at the start of its payload.
pub(crate) const WATERMARK_LEN: usize = 8;

/// The watermark of a compacted log's records: the file was synced whole before it replaced the
/// log, so every byte before any of them is durable.
pub(crate) const DURABLE_WITH_FILE: u64 = u64::MAX;

/// Size of the file header.
pub(crate) const HEADER_LEN: usize = MAGIC.len() + 4;

/// Size of a record's frame (length, tag and checksum) before its payload.
pub(crate) const FRAME_LEN: usize = 12;

/// The largest payload a record may carry (the codec refuses larger values anyway).
pub(crate) const MAX_PAYLOAD: usize = MAX_DECODE_BYTES + WATERMARK_LEN;

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
    /// A log this build reads, of this format version.
    Ok(u32),
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
        v @ OLDEST_READ..=FORMAT_VERSION => Header::Ok(v),
        v if v > FORMAT_VERSION => Header::Newer(v),
        v => Header::Older(v),
    }
}

/// Mixes 64 bits (the SplitMix64 finaliser: a bijection whose every output bit depends on every
/// input bit).
const fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The tag of a record that starts at byte `at` of the file and carries `len` payload bytes:
/// the high half of `mix(mix(at ^ "wf-frame") ^ len)`. Part of the format: never change it
/// without changing [`FORMAT_VERSION`].
pub(crate) const fn frame_tag(at: u64, len: u32) -> u32 {
    const KEY: u64 = u64::from_le_bytes(*b"wf-frame");
    (mix(mix(at ^ KEY) ^ len as u64) >> 32) as u32
}

#[cfg(test)]
thread_local! {
    /// Payload bytes checksummed by this thread, for tests of how much work reading costs.
    static CHECKSUMMED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn checksum(len: [u8; 4], parts: &[&[u8]]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&len);
    for part in parts {
        #[cfg(test)]
        CHECKSUMMED.with(|c| c.set(c.get() + part.len()));
        h.update(part);
    }
    h.finalize()
}

/// Appends one framed record whose payload is `parts` one after the other to `out`, for the
/// file offset `at` where it will start. The caller guarantees the payload is no larger than
/// [`MAX_PAYLOAD`].
fn push_parts(out: &mut Vec<u8>, at: u64, parts: &[&[u8]]) {
    let size: usize = parts.iter().map(|p| p.len()).sum();
    let n = u32::try_from(size).unwrap_or(u32::MAX);
    let len = n.to_le_bytes();
    out.reserve(FRAME_LEN + size);
    out.extend_from_slice(&len);
    out.extend_from_slice(&frame_tag(at, n).to_le_bytes());
    out.extend_from_slice(&checksum(len, parts).to_le_bytes());
    for part in parts {
        out.extend_from_slice(part);
    }
}

/// Appends one framed record with any `payload` to `out` (for tests and fuzzing; the store
/// writes [`push_changes`]).
pub(crate) fn push_record(out: &mut Vec<u8>, at: u64, payload: &[u8]) {
    push_parts(out, at, &[payload]);
}

/// Appends one format 3 record to `out`: watermark `synced` (see the module docs), then the
/// encoded `changes`, for the file offset `at` where it will start.
pub(crate) fn push_changes(out: &mut Vec<u8>, at: u64, synced: u64, changes: &[u8]) {
    push_parts(out, at, &[&synced.to_le_bytes(), changes]);
}

/// A record's payload read as format `version` writes it: its watermark (none in format 2) and
/// its encoded changes; `None` if a format 3 payload is too short to hold a watermark.
pub(crate) fn body(version: u32, payload: &[u8]) -> Option<(Option<u64>, &[u8])> {
    if version < 3 {
        return Some((None, payload));
    }
    let (mark, changes) = payload.split_first_chunk::<WATERMARK_LEN>()?;
    Some((Some(u64::from_le_bytes(*mark)), changes))
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

/// A record's frame read at offset `at`: its length and checksum, if the frame is whole, its
/// length is possible and its tag matches `at`.
fn frame_at(bytes: &[u8], at: usize) -> Result<(usize, [u8; 4], u32), &'static str> {
    let Some(frame) = bytes.get(at..).and_then(|b| b.first_chunk::<FRAME_LEN>()) else {
        return Err("record frame is cut short (torn write)");
    };
    let [l0, l1, l2, l3, t0, t1, t2, t3, c0, c1, c2, c3] = *frame;
    let len = [l0, l1, l2, l3];
    let n = u32::from_le_bytes(len);
    if n == 0 || n as usize > MAX_PAYLOAD {
        return Err("record length is zero or impossibly large");
    }
    if u32::from_le_bytes([t0, t1, t2, t3]) != frame_tag(at as u64, n) {
        return Err("record frame does not match its position (damaged, or no record starts here)");
    }
    Ok((n as usize, len, u32::from_le_bytes([c0, c1, c2, c3])))
}

/// Reads the record starting at `at` in `bytes`.
pub(crate) fn read_frame(bytes: &[u8], at: usize) -> Frame<'_> {
    match bytes.get(at..) {
        None => return Frame::Bad("offset past the end of the file"),
        Some([]) => return Frame::End,
        Some(_) => {}
    }
    let (n, len, crc) = match frame_at(bytes, at) {
        Ok(frame) => frame,
        Err(reason) => return Frame::Bad(reason),
    };
    let start = at + FRAME_LEN;
    let Some(payload) = bytes.get(start..start + n) else {
        return Frame::Bad("record payload is cut short (torn write)");
    };
    if checksum(len, &[payload]) != crc {
        return Frame::Bad("record checksum does not match its contents");
    }
    Frame::Valid {
        payload,
        next: start + n,
    }
}

/// The most bytes the writer leaves unsynced or in one `write` (see `log`): when appending a
/// record would take the unsynced bytes past it, the writer syncs first, so a crash or power
/// loss can only ever damage this many bytes at the end of the log, or one record larger than
/// this on its own. Recovery cuts a torn tail only within that bound (see `recovery`).
pub(crate) const UNSYNCED_LIMIT: usize = 512 << 10;

/// The payload length the frame at `at` claims, if the frame is whole and its tag matches `at`
/// (so it was written there as a record's start).
pub(crate) fn claimed_len(bytes: &[u8], at: usize) -> Option<usize> {
    frame_at(bytes, at).ok().map(|(n, _, _)| n)
}

/// The size of the framed record that starts at `at` in `batch`, bytes this build framed
/// itself (see [`push_record`]); `None` past the end.
pub(crate) fn framed_len(batch: &[u8], at: usize) -> Option<usize> {
    let len = batch.get(at..)?.first_chunk::<4>()?;
    Some(FRAME_LEN + u32::from_le_bytes(*len) as usize)
}

/// Extra payload bytes [`valid_record_after`] may checksum beyond twice the tail's size.
const SCAN_SLACK: usize = 1 << 20;

/// What follows a bad record.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum After {
    /// A checksum-valid record starts at this offset: the damage is not a torn tail.
    Valid(usize),
    /// No valid record starts anywhere after it.
    Nothing,
    /// More frames with matching tags but bad payloads than the search checksums (see
    /// [`valid_record_after`]): a valid record cannot be ruled out.
    Undecided,
}

/// Whether any checksum-valid record starts after `bad` (a record already found bad): that makes
/// the damage corruption in the middle of the log rather than a torn tail.
///
/// Every offset is tried, but only one whose frame fits in the file and whose tag matches it
/// (see the module docs) has its payload checksummed, so the search costs time in proportion to
/// `bytes.len() - bad`. Frames with matching tags but bad payloads are the headers of records
/// torn along with the tail (their payloads together are no longer than the tail) or one in 2^32
/// offsets by chance; in all they may cost at most twice the tail's size plus a megabyte of
/// checksumming. Beyond that (only bytes crafted to look like frames at their exact offsets get
/// there) the answer is [`After::Undecided`], never a guess.
pub(crate) fn valid_record_after(bytes: &[u8], bad: usize) -> After {
    let tail = bytes.len().saturating_sub(bad);
    let mut budget = tail.saturating_mul(2).saturating_add(SCAN_SLACK);
    for at in bad + 1..bytes.len() {
        let Ok((n, _, _)) = frame_at(bytes, at) else {
            continue;
        };
        if n > bytes.len() - at - FRAME_LEN {
            continue;
        }
        let Some(left) = budget.checked_sub(n) else {
            return After::Undecided;
        };
        budget = left;
        if matches!(read_frame(bytes, at), Frame::Valid { .. }) {
            return After::Valid(at);
        }
    }
    After::Nothing
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Appends a record at the end of `log`.
    fn push(log: &mut Vec<u8>, payload: &[u8]) {
        let at = log.len() as u64;
        push_record(log, at, payload);
    }

    /// `len` bytes of noise (xorshift).
    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    fn checksummed(f: impl FnOnce()) -> usize {
        CHECKSUMMED.with(|c| c.set(0));
        f();
        CHECKSUMMED.with(std::cell::Cell::get)
    }

    #[test]
    fn frames_round_trip_and_damage_is_seen() {
        let mut log = header().to_vec();
        push(&mut log, b"first");
        push(&mut log, b"second");
        assert_eq!(read_header(&log), Header::Ok(FORMAT_VERSION));
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
        // A flipped bit in the length, the tag, the checksum or the payload.
        for byte in [0, 4, 8, FRAME_LEN] {
            let mut flipped = log.clone();
            flipped[HEADER_LEN + byte] ^= 1;
            assert!(
                matches!(read_frame(&flipped, HEADER_LEN), Frame::Bad(_)),
                "byte {byte}"
            );
            assert_eq!(
                valid_record_after(&flipped, HEADER_LEN),
                After::Valid(next),
                "byte {byte}"
            );
        }
        assert_eq!(valid_record_after(&log[..end - 1], next), After::Nothing);
    }

    #[test]
    fn a_format_3_payload_starts_with_its_watermark() {
        let mut log = header().to_vec();
        let at = log.len() as u64;
        push_changes(&mut log, at, 1234, b"changes");
        let Frame::Valid { payload, .. } = read_frame(&log, HEADER_LEN) else {
            panic!("record unreadable");
        };
        assert_eq!(body(3, payload), Some((Some(1234), &b"changes"[..])));
        // Format 2 read the whole payload as changes; a format 3 payload too short for a
        // watermark is no record of this format.
        assert_eq!(body(2, b"changes"), Some((None, &b"changes"[..])));
        assert_eq!(body(3, b"short"), None);
    }

    #[test]
    fn a_record_is_valid_only_where_it_was_written() {
        let mut log = header().to_vec();
        push(&mut log, b"first");
        let mut record = Vec::new();
        push_record(&mut record, log.len() as u64, b"second");
        // The same bytes one byte later: length and checksum fine, tag wrong.
        log.push(0);
        let at = log.len();
        log.extend_from_slice(&record);
        assert!(matches!(read_frame(&log, at), Frame::Bad(_)));
        assert_eq!(valid_record_after(&log, at - 1), After::Nothing);
    }

    #[test]
    fn zeros_never_look_like_a_record() {
        let zeros = [0u8; 64];
        assert!(matches!(read_frame(&zeros, 0), Frame::Bad(_)));
        assert_eq!(valid_record_after(&zeros, 0), After::Nothing);
    }

    #[test]
    fn headers_are_judged() {
        let mut h = header();
        h[MAGIC.len()..].copy_from_slice(&7u32.to_le_bytes());
        assert_eq!(read_header(&h), Header::Newer(7));
        h[MAGIC.len()..].copy_from_slice(&2u32.to_le_bytes());
        assert_eq!(read_header(&h), Header::Ok(2));
        h[MAGIC.len()..].copy_from_slice(&1u32.to_le_bytes());
        assert_eq!(read_header(&h), Header::Older(1));
        assert!(matches!(read_header(b"wf-l"), Header::Invalid(_)));
        assert!(matches!(
            read_header(b"not a log at all"),
            Header::Invalid(_)
        ));
    }

    #[test]
    fn ruling_out_records_in_a_noisy_tail_costs_work_in_proportion_to_its_size() {
        let mut log = header().to_vec();
        push(&mut log, b"first");
        let torn = log.len();
        push(&mut log, &[7u8; 100]);
        log.truncate(log.len() - 10);
        log.extend(noise(1 << 20, 0x9e37_79b9));
        let tail = log.len() - torn;
        let work = checksummed(|| assert_eq!(valid_record_after(&log, torn), After::Nothing));
        assert!(
            work <= 2 * tail,
            "checksummed {work} bytes to rule out a record in a {tail}-byte tail"
        );
    }

    #[test]
    fn a_valid_record_hidden_in_noise_is_found() {
        let mut log = header().to_vec();
        push(&mut log, b"first");
        let bad = log.len();
        log.extend(noise(300_000, 7));
        let hidden = log.len();
        push(&mut log, b"acknowledged");
        log.extend(noise(300_000, 8));
        assert_eq!(valid_record_after(&log, bad), After::Valid(hidden));
    }

    #[test]
    fn frames_crafted_at_their_offsets_cannot_make_the_search_unbounded() {
        // Headers with matching tags every 16 bytes, each claiming the rest of the file, none
        // with a valid checksum: checking them all would cost the square of the tail.
        let mut log = header().to_vec();
        push(&mut log, b"first");
        let bad = log.len();
        let end = bad + (256 << 10);
        log.resize(end, 0xaa);
        for at in (bad + 1..end - 64).step_by(16) {
            let n = u32::try_from(end - at - FRAME_LEN).unwrap();
            log[at..at + 4].copy_from_slice(&n.to_le_bytes());
            log[at + 4..at + 8].copy_from_slice(&frame_tag(at as u64, n).to_le_bytes());
        }
        let tail = end - bad;
        let work = checksummed(|| assert_eq!(valid_record_after(&log, bad), After::Undecided));
        assert!(work <= 2 * tail + SCAN_SLACK, "checksummed {work} bytes");
    }
}
