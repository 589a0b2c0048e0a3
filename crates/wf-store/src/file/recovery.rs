//! Opening the log: write the header of a new one, replay it into fresh [`Tables`], cut a torn
//! tail.
//!
//! The rule for a bad record (cut short or failing its checksum) at offset `X`:
//!
//! - the last owner's entry in `wf.synced` (see `watermark`) for this very log file (same
//!   identity) says how far it was synced. If valid records follow `X` and that size is past `X`,
//!   the record was durable: it is damage ([`StoreError::Corrupt`], below), never an unsynced
//!   hole, even when the records after it carry older watermarks (nothing was appended after the
//!   sync that covered it: an idle store). `wf.synced` is not fsync'd, so after a power loss it
//!   may be stale or gone (it never says more than was synced); then the watermarks decide alone.
//!   (A damaged last record with nothing valid after it is judged as below, as it always was: a
//!   torn tail if small.) A bad record at or past the published size cannot hold
//!   anything acknowledged as durable; if its frame reads as zeros (a page a power loss left
//!   unwritten), the largest record the writer writes alone bounds it (instead of
//!   `format::UNSYNCED_LIMIT`); noise there is still bounded by `format::UNSYNCED_LIMIT`;
//! - if no checksum-valid record starts anywhere after `X` and the bytes from `X` to the end are
//!   no more than one interrupted write can leave (the writer never has more than
//!   `format::UNSYNCED_LIMIT` bytes unsynced, or one larger record alone, whose intact frame
//!   says its size), it is a **torn tail** (the process or the machine died while appending):
//!   the file is truncated to `X`, the truncation is made durable, and a `tracing` warning says
//!   how many bytes were cut ([`crate::FileStore::torn_tail`] too). Nothing acknowledged is
//!   lost: a record is acknowledged only once everything before it is synced (claims and
//!   renewals: written), so only the unsynced end can be torn;
//! - if valid records follow but every one of them was appended before `X` was known durable
//!   (its watermark, see `format`, is at most `X`) and the bytes from `X` to the end are no more
//!   than the writer ever leaves unsynced, it is an **unsynced hole**: a power loss kept later
//!   unsynced writes and lost an earlier one (a disk or file system that does not write data in
//!   order). No record from `X` on was acknowledged as durable (an fsync that covered any of them
//!   covered `X` too, and `X` would be intact), so it is cut like a torn tail, with a warning
//!   that says so. Claims and renewals among them (acknowledged once written) are undone as a
//!   power loss may undo them anyway;
//! - otherwise (a valid record follows that was appended once `X` was durable: damage in the
//!   **middle** of the log, where records were acknowledged; a format 2 log, whose records carry
//!   no watermark; or more unreadable bytes than a torn write leaves) it is
//!   [`StoreError::Corrupt`] naming the file, `X` and the byte counts. Nothing is guessed or
//!   skipped. An explicit repair ([`crate::FileOptions::repair`], `wf repair`) cuts everything
//!   from `X`, after saving the cut bytes to `wf.log.cut-X` next to the log.
//!
//! The search for a valid record after `X` costs time in proportion to the rest of the file (a
//! frame's tag says where records start, see `format`). Only bytes crafted to carry frames that
//! match their exact offsets could make it give up before an answer; that is reported as
//! [`StoreError::Corrupt`] too, never cut.
//!
//! A record whose checksum matches but whose payload does not decode is **never** cut: a torn
//! write cannot produce a matching checksum, so the record is whole and this build cannot read it
//! (it was written by another build of `wf`). That is [`StoreError::Corrupt`] naming the file and
//! the record's offset, and the file is left as it is.
//!
//! A file written by a newer format gives [`StoreError::NewerFormat`], one of an older
//! (pre-release) format [`StoreError::OlderFormat`]; opening never panics.

use std::path::{Path, PathBuf};

use wf_core::CodecError;

use super::format::{self, After, FORMAT_VERSION, FRAME_LEN, Frame, HEADER_LEN, Header};

/// The most separate unreadable stretches among the valid records after an unsynced hole (a
/// disk that wrote the unsynced end out of order may leave several); more is judged damage.
const MAX_HOLES: usize = 256;
use super::fs::{FsFile, OpenHow};
use super::fsio::{Disk, io_err};
use super::watermark;
use crate::error::StoreError;
use crate::tables::{Change, Tables};

/// Bytes cut off the end of a log when it was opened (or ignored by a read-only snapshot).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TornTail {
    /// Where the cut starts: the log's size afterwards.
    pub offset: u64,
    /// How many bytes were cut (or ignored).
    pub bytes: u64,
    /// Why the first of them could not be read.
    pub reason: String,
    /// `true` when valid records followed the unreadable one, all appended before it was synced:
    /// an unsynced hole a power loss left (see the module docs of `recovery`), cut because none
    /// of them was acknowledged as durable.
    pub hole: bool,
    /// `true` when they were more than an interrupted write leaves, cut only because a repair
    /// was asked for ([`crate::FileOptions::repair`]): acknowledged changes may be among them.
    pub repaired: bool,
    /// Where a repair saved the cut bytes before cutting them.
    pub saved_to: Option<PathBuf>,
}

/// The result of opening a log.
pub(crate) struct Opened {
    /// State rebuilt from the log.
    pub tables: Tables,
    /// The log, open for appending at its (clean) end.
    pub file: Box<dyn FsFile>,
    /// The log's size in bytes after any cut.
    pub size: u64,
    /// How many records were replayed.
    pub records: u64,
    /// What was cut, if anything.
    pub cut: Option<TornTail>,
    /// The log's format version (an older one is rewritten by the caller).
    pub version: u32,
}

/// Replays the locked log `file`, writing its header first if it is new, and cuts a torn tail
/// (or, with `repair`, any unreadable tail).
pub(crate) fn open_log(
    disk: &Disk,
    mut file: Box<dyn FsFile>,
    repair: bool,
) -> Result<Opened, StoreError> {
    let path = &disk.log;
    if disk
        .fs
        .metadata(&disk.tmp)
        .map_err(io_err(&disk.tmp))?
        .is_some()
    {
        // A compaction that died before its rename: the log itself is intact.
        disk.fs.remove_file(&disk.tmp).map_err(io_err(&disk.tmp))?;
    }
    let bytes = disk.fs.read(path).map_err(io_err(path))?;
    if bytes.len() < HEADER_LEN && format::header().starts_with(&bytes) {
        // A new store (or one whose creation was interrupted before its header was whole).
        file.set_len(0).map_err(io_err(path))?;
        file.write_all(&format::header()).map_err(io_err(path))?;
        if disk.sync {
            file.sync_data().map_err(io_err(path))?;
        }
        disk.sync_dir()?;
        return Ok(Opened {
            tables: Tables::new(),
            file,
            size: HEADER_LEN as u64,
            records: 0,
            cut: None,
            version: FORMAT_VERSION,
        });
    }
    // How far the last owner published the log as synced (see `watermark`): a bad record before
    // that was durable, so it is damage, never a torn tail or an unsynced hole.
    let published = match file.id().ok().flatten() {
        Some(id) => watermark::published(disk.fs.as_ref(), path, id)?,
        None => None,
    };
    let mut replayed = replay_with(path, &bytes, repair, usize::MAX, published)?;
    let mut size = bytes.len() as u64;
    if let Some(cut) = &mut replayed.cut {
        if cut.repaired {
            let saved = disk.dir.join(format!("wf.log.cut-{}", cut.offset));
            save(
                disk,
                &saved,
                bytes.get(cut.offset as usize..).unwrap_or_default(),
            )?;
            cut.saved_to = Some(saved);
        }
        tracing::warn!(
            path = %path.display(),
            offset = cut.offset,
            cut_bytes = cut.bytes,
            reason = %cut.reason,
            saved_to = ?cut.saved_to,
            "{}",
            if cut.repaired {
                "repair: cutting an unreadable tail off the store log"
            } else if cut.hole {
                "cutting an unsynced hole and what follows off the store log (a power loss kept later unsynced writes and lost an earlier one; none of it was acknowledged as durable)"
            } else {
                "cutting a torn tail off the store log (an append interrupted by a crash; it was never acknowledged)"
            }
        );
        file.set_len(cut.offset).map_err(io_err(path))?;
        if disk.sync {
            file.sync_data().map_err(io_err(path))?;
        }
        size = cut.offset;
    } else if disk.sync {
        // A process killed with `kill -9` leaves records it wrote but never synced (claims,
        // pipelined commits) in the page cache, where this replay just read them: sync them
        // before anything replayed is handed out (durable before visible).
        file.sync_data().map_err(io_err(path))?;
    }
    Ok(Opened {
        tables: replayed.tables,
        file,
        size,
        records: replayed.records,
        cut: replayed.cut,
        version: replayed.version,
    })
}

/// Writes `bytes` to a new file `path` durably.
fn save(disk: &Disk, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut f = disk
        .fs
        .open(path, OpenHow::Truncate, disk.file_mode)
        .map_err(io_err(path))?;
    f.write_all(bytes).map_err(io_err(path))?;
    if disk.sync {
        f.sync_data().map_err(io_err(path))?;
    }
    disk.sync_dir()
}

/// A replayed log.
pub(crate) struct Replayed {
    /// The state.
    pub tables: Tables,
    /// Records applied.
    pub records: u64,
    /// The torn tail (or, when repairing, unreadable tail) to cut, if there is one.
    pub cut: Option<TornTail>,
    /// The log's format version.
    pub version: u32,
}

/// Replays log bytes into fresh tables. Pure: touches no file.
pub(crate) fn replay(path: &Path, bytes: &[u8], repair: bool) -> Result<Replayed, StoreError> {
    replay_before(path, bytes, repair, usize::MAX)
}

/// [`replay`], applying only the records that start before offset `apply_before`; the rest are
/// read and judged all the same (damage among them is still an error), not applied.
pub(crate) fn replay_before(
    path: &Path,
    bytes: &[u8],
    repair: bool,
    apply_before: usize,
) -> Result<Replayed, StoreError> {
    replay_with(path, bytes, repair, apply_before, None)
}

/// [`replay_before`], knowing that the log was published as synced through `published` (see
/// `watermark`), which decides what a bad record is (see the module docs).
fn replay_with(
    path: &Path,
    bytes: &[u8],
    repair: bool,
    apply_before: usize,
    published: Option<u64>,
) -> Result<Replayed, StoreError> {
    let corrupt = |offset: usize, reason: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        offset: offset as u64,
        reason,
    };
    if bytes.len() < HEADER_LEN && format::header().starts_with(bytes) {
        // A store whose owner is writing its first header: empty.
        return Ok(Replayed {
            tables: Tables::new(),
            records: 0,
            cut: None,
            version: FORMAT_VERSION,
        });
    }
    let version = match format::read_header(bytes) {
        Header::Ok(version) => version,
        Header::Newer(found) => {
            return Err(StoreError::NewerFormat {
                path: path.to_path_buf(),
                found,
                supported: FORMAT_VERSION,
            });
        }
        Header::Older(found) => {
            return Err(StoreError::OlderFormat {
                path: path.to_path_buf(),
                found,
                supported: FORMAT_VERSION,
            });
        }
        Header::Invalid(reason) => return Err(corrupt(0, reason.to_owned())),
    };
    let mut tables = Tables::new();
    let mut records = 0u64;
    let mut at = HEADER_LEN;
    let bad = loop {
        match format::read_frame(bytes, at) {
            Frame::End => break None,
            Frame::Bad(reason) => break Some(reason.to_owned()),
            Frame::Valid { payload, next } => {
                let Some((_, changes)) = format::body(version, payload) else {
                    return Err(corrupt(
                        at,
                        "the record is intact (its checksum matches) but too short to hold its watermark; \
                         it was not written by this format of wf"
                            .to_owned(),
                    ));
                };
                match wf_core::codec::decode::<Vec<Change>>(changes) {
                    Ok(changes) => {
                        if at < apply_before {
                            for change in changes {
                                tables.apply(change);
                            }
                            records += 1;
                        }
                        at = next;
                    }
                    Err(CodecError::NewerVersion { found, supported }) => {
                        return Err(StoreError::NewerFormat {
                            path: path.to_path_buf(),
                            found: found.into(),
                            supported: supported.into(),
                        });
                    }
                    Err(e) => {
                        // Only a whole record matches its checksum, so this is no torn tail:
                        // cutting it would throw away an acknowledged change.
                        return Err(corrupt(
                            at,
                            format!(
                                "the record is intact (its checksum matches) but this build cannot decode it ({e}); \
                                 it was probably written by a newer or different build of wf: open the store \
                                 with that build or upgrade wf"
                            ),
                        ));
                    }
                }
            }
        }
    };
    let cut = match bad {
        None => None,
        Some(reason) => Some(
            judge_tail(bytes, at, &reason, version, repair, published)
                .map_err(|r| corrupt(at, r))?,
        ),
    };
    Ok(Replayed {
        tables,
        records,
        cut,
        version,
    })
}

/// Decides what the unreadable bytes from `at` (a bad record) to the end are: a torn tail to cut
/// silently, or damage, which is an error (the reason) unless `repair` is asked for.
fn judge_tail(
    bytes: &[u8],
    at: usize,
    reason: &str,
    version: u32,
    repair: bool,
    published: Option<u64>,
) -> Result<TornTail, String> {
    let tail = bytes.len() - at;
    // One interrupted write leaves at most this much (see `format::UNSYNCED_LIMIT`); a record
    // larger than the limit is written alone, and its intact frame says how large it is. Without
    // the frame, a bad record at or past the published synced size may still be the largest
    // record the writer writes alone (after syncing everything before it), if the frame reads
    // as a page the disk never wrote (zeros), not as noise.
    let unwritten_frame = bytes
        .get(at..at + FRAME_LEN)
        .is_some_and(|f| f.iter().all(|&b| b == 0));
    let largest = match published {
        Some(synced) if synced <= at as u64 && unwritten_frame => FRAME_LEN + format::MAX_PAYLOAD,
        _ => format::UNSYNCED_LIMIT,
    };
    let torn_max = format::claimed_len(bytes, at)
        .map_or(largest, |n| FRAME_LEN + n)
        .max(format::UNSYNCED_LIMIT);
    let mut hole = None;
    let damage = match format::valid_record_after(bytes, at) {
        After::Valid(next) if published.is_some_and(|synced| synced > at as u64) => Some(format!(
            "{reason}, yet a valid record follows at offset {next} and its owner published the log as synced \
             through offset {} (wf.synced), past the damaged one, which was therefore durable: this is not an unsynced hole",
            published.unwrap_or_default()
        )),
        After::Valid(next) => match unsynced_hole(bytes, at, next, version) {
            Ok(records) => {
                hole = Some(format!(
                    "{reason}; the {records} valid records after it were all appended before it was synced \
                     (an unsynced hole a power loss left: none of them was acknowledged as durable)"
                ));
                None
            }
            Err(why) => Some(format!(
                "{reason}, yet a valid record follows at offset {next}{why}"
            )),
        },
        After::Undecided => Some(format!(
            "{reason}, and the {tail} bytes after it hold too many record-like frames to rule out a valid record among them"
        )),
        After::Nothing if tail > torn_max => Some(format!(
            "{reason}, and the {tail} bytes from there to the end are more than one interrupted write leaves (at most {torn_max})"
        )),
        After::Nothing => None,
    };
    match damage {
        None => Ok(TornTail {
            offset: at as u64,
            bytes: tail as u64,
            hole: hole.is_some(),
            reason: hole.unwrap_or_else(|| reason.to_owned()),
            repaired: false,
            saved_to: None,
        }),
        Some(damage) if repair => Ok(TornTail {
            offset: at as u64,
            bytes: tail as u64,
            reason: damage,
            hole: false,
            repaired: true,
            saved_to: None,
        }),
        Some(damage) => Err(format!(
            "{damage}; {tail} of the file's {} bytes are affected. To keep the {at} bytes before them and cut the rest \
             (acknowledged changes among them are lost; the cut bytes are saved next to the log), run \
             `wf --store <dir> repair` or open the store with FileOptions::repair(true)",
            bytes.len()
        )),
    }
}

/// Whether the bad record at `at`, followed by a valid one at `first`, is an unsynced hole (see
/// the module docs): every valid record from `first` to the end carries a watermark no later
/// than `at`, and the bytes from `at` to the end fit in what the writer leaves unsynced. Returns
/// how many valid records follow, or why it is not a hole (to append to the damage's reason).
fn unsynced_hole(bytes: &[u8], at: usize, first: usize, version: u32) -> Result<usize, String> {
    if version < 3 {
        return Err(
            " (this format 2 log's records carry no watermark to tell an unsynced hole from damage)"
                .to_owned(),
        );
    }
    let tail = bytes.len() - at;
    if tail > format::UNSYNCED_LIMIT {
        return Err(format!(
            ", and the {tail} bytes from there to the end are more than the log ever leaves unsynced (at most {})",
            format::UNSYNCED_LIMIT
        ));
    }
    let (mut next, mut records, mut gaps) = (first, 0, 1);
    loop {
        match format::read_frame(bytes, next) {
            Frame::Valid {
                payload,
                next: after,
            } => {
                match format::body(version, payload) {
                    Some((Some(synced), _)) if synced <= at as u64 => {}
                    Some((Some(synced), _)) => {
                        return Err(format!(
                            "; the record at offset {next} was appended once the log was synced through offset {synced}, \
                             past the damaged one, which was therefore durable: this is not an unsynced hole"
                        ));
                    }
                    _ => {
                        return Err(format!(
                            "; the record at offset {next} is too short to hold its watermark"
                        ));
                    }
                }
                records += 1;
                next = after;
            }
            Frame::End => return Ok(records),
            Frame::Bad(_) => match format::valid_record_after(bytes, next) {
                After::Nothing => return Ok(records),
                After::Valid(found) if gaps < MAX_HOLES => {
                    gaps += 1;
                    next = found;
                }
                After::Valid(_) => {
                    return Err(format!(
                        "; more than {MAX_HOLES} unreadable stretches follow it, more than an unsynced hole leaves"
                    ));
                }
                After::Undecided => {
                    return Err(format!(
                        "; the bytes after offset {next} hold too many record-like frames to rule out a valid record among them"
                    ));
                }
            },
        }
    }
}

/// How much of the log `bytes` its own records prove durable: the highest watermark they carry
/// (a compacted log's records, durable with the file, through their end), at least the header.
/// `None` for a log whose records carry no watermark (format 2) or whose header is unreadable.
/// What a reader shows when nothing is published about the log (see `watermark`).
pub(crate) fn known_durable(bytes: &[u8]) -> Option<usize> {
    let Header::Ok(version) = format::read_header(bytes) else {
        return None;
    };
    if version < 3 {
        return None;
    }
    let (mut at, mut durable) = (HEADER_LEN, HEADER_LEN as u64);
    while let Frame::Valid { payload, next } = format::read_frame(bytes, at) {
        match format::body(version, payload) {
            Some((Some(format::DURABLE_WITH_FILE), _)) => durable = durable.max(next as u64),
            Some((Some(synced), _)) => durable = durable.max(synced),
            _ => break,
        }
        at = next;
    }
    Some(usize::try_from(durable).map_or(bytes.len(), |d| d.min(bytes.len())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log of records with these watermarks (`None`: the record is damaged in its payload),
    /// each holding no changes; returns it and where each record starts.
    fn log(marks: &[Option<u64>]) -> (Vec<u8>, Vec<usize>) {
        let empty = wf_core::codec::encode(&Vec::<Change>::new()).unwrap_or_default();
        let mut bytes = format::header().to_vec();
        let mut starts = Vec::new();
        for mark in marks {
            let at = bytes.len();
            starts.push(at);
            format::push_changes(&mut bytes, at as u64, mark.unwrap_or(0), &empty);
            if mark.is_none() {
                // The watermark's bytes zeroed: a sector the disk never wrote.
                bytes[at + FRAME_LEN..at + FRAME_LEN + 8].fill(0xee);
            }
        }
        (bytes, starts)
    }

    #[test]
    fn an_unsynced_hole_may_span_several_unreadable_stretches() {
        let h = HEADER_LEN as u64;
        let (bytes, starts) = log(&[Some(h), None, Some(h), None, Some(h)]);
        let replayed = replay(Path::new("wf.log"), &bytes, false).unwrap();
        let cut = replayed.cut.unwrap();
        assert_eq!((cut.offset, cut.hole), (starts[1] as u64, true));
        assert!(cut.reason.contains("the 2 valid records"), "{}", cut.reason);
        assert_eq!(replayed.records, 1);
    }

    #[test]
    fn a_record_appended_once_the_damage_was_synced_makes_it_corruption() {
        let h = HEADER_LEN as u64;
        let (_, starts) = log(&[Some(h), None, Some(h), None, Some(h)]);
        // The last record was appended once the log was synced past the first damage.
        let past = starts[2] as u64;
        let (bytes, _) = log(&[Some(h), None, Some(h), None, Some(past)]);
        match replay(Path::new("wf.log"), &bytes, false) {
            Err(StoreError::Corrupt { offset, reason, .. }) => {
                assert_eq!(offset, starts[1] as u64);
                assert!(reason.contains("not an unsynced hole"), "{reason}");
            }
            other => panic!("expected Corrupt, got {:?}", other.map(|r| r.cut)),
        }
    }

    #[test]
    fn a_hole_the_published_synced_size_covers_is_corruption_one_past_it_is_cut() {
        let h = HEADER_LEN as u64;
        let (bytes, starts) = log(&[Some(h), None, Some(h), None, Some(h)]);
        let hole = starts[1];
        // Published synced through the damaged record's start: nothing from it on was synced.
        let replayed = replay_with(
            Path::new("wf.log"),
            &bytes,
            false,
            usize::MAX,
            Some(hole as u64),
        )
        .unwrap();
        assert_eq!(
            replayed.cut.map(|c| (c.offset, c.hole)),
            Some((hole as u64, true))
        );
        // Published synced past its start: it was durable, whatever the watermarks after it say.
        match replay_with(
            Path::new("wf.log"),
            &bytes,
            false,
            usize::MAX,
            Some(hole as u64 + 1),
        ) {
            Err(StoreError::Corrupt { offset, reason, .. }) => {
                assert_eq!(offset, hole as u64);
                assert!(reason.contains("wf.synced"), "{reason}");
            }
            other => panic!("expected Corrupt, got {:?}", other.map(|r| r.cut)),
        }
    }

    #[test]
    fn a_large_frameless_tail_past_the_published_size_is_cut_only_if_its_frame_is_zeros() {
        let h = HEADER_LEN as u64;
        let (mut bytes, _) = log(&[Some(h)]);
        let end = bytes.len();
        let tail = format::UNSYNCED_LIMIT + 4096;
        bytes.resize(end + tail, 0x5a);
        bytes[end..end + 4096].fill(0);
        let judge = |bytes: &[u8], published: Option<u64>| {
            replay_with(Path::new("wf.log"), bytes, false, usize::MAX, published).map(|r| r.cut)
        };
        // A lost first page past the published size: a torn large record, cut.
        let cut = judge(&bytes, Some(end as u64)).unwrap().unwrap();
        assert_eq!((cut.offset, cut.bytes), (end as u64, tail as u64));
        // Nothing published, or published past it: more than one write leaves, refused.
        assert!(judge(&bytes, None).is_err());
        assert!(judge(&bytes, Some(end as u64 + 1)).is_err());
        // Noise (not an unwritten page) past the published size: refused too.
        bytes[end..end + 4096].fill(0x5a);
        assert!(judge(&bytes, Some(end as u64)).is_err());
    }
}
