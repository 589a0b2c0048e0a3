//! Opening the log: create it if missing, replay it into fresh [`Tables`], cut a torn tail.
//!
//! The rule for a bad record (cut short or failing its checksum) at offset `X`:
//!
//! - if no checksum-valid record starts anywhere after `X`, it is a **torn tail** (the process
//!   or the machine died while appending): the file is truncated to `X`, the truncation is made
//!   durable, and a `tracing` warning says how many bytes were cut. Nothing acknowledged is lost:
//!   a record is acknowledged only after it and everything before it were synced, and the
//!   flusher never writes past an unsynced batch, so only the last batch can be torn;
//! - if a valid record follows, the damage is in the **middle** of the log, where records were
//!   acknowledged: [`StoreError::Corrupt`] names the file and `X`. Nothing is guessed or skipped.
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

use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::path::Path;

use wf_core::CodecError;

use super::format::{self, After, FORMAT_VERSION, Frame, HEADER_LEN, Header};
use super::fsio::{io_err, rename_durably, sync_dir, write_file};
use crate::error::StoreError;
use crate::tables::{Change, Tables};

/// The result of opening a log.
pub(crate) struct Opened {
    /// State rebuilt from the log.
    pub tables: Tables,
    /// The log, open for appending at its (clean) end.
    pub file: File,
    /// The log's size in bytes after any cut.
    pub size: u64,
    /// How many records were replayed.
    pub records: u64,
}

/// Opens (creating if missing) the log at `path`, replays it and cuts a torn tail.
pub(crate) fn open_log(
    dir: &Path,
    path: &Path,
    tmp: &Path,
    sync: bool,
) -> Result<Opened, StoreError> {
    if tmp.exists() {
        // A compaction that died before its rename: the log itself is intact.
        fs::remove_file(tmp).map_err(io_err(tmp))?;
    }
    if !path.exists() {
        write_file(tmp, sync, |out: &mut dyn std::io::Write| {
            out.write_all(&format::header()).map_err(io_err(tmp))
        })?;
        rename_durably(dir, tmp, path, sync)?;
    }
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(io_err(path))?;
    let replayed = replay(path, &bytes)?;
    if let Some((offset, reason)) = &replayed.cut {
        tracing::warn!(
            path = %path.display(),
            offset,
            cut_bytes = bytes.len() as u64 - offset,
            reason = %reason,
            "cutting a torn tail off the store log (an append interrupted by a crash; it was never acknowledged)"
        );
        let f = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(io_err(path))?;
        f.set_len(*offset).map_err(io_err(path))?;
        if sync {
            f.sync_all().map_err(io_err(path))?;
            sync_dir(dir)?;
        }
    }
    let size = replayed
        .cut
        .as_ref()
        .map_or(bytes.len() as u64, |(o, _)| *o);
    let file = OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(io_err(path))?;
    Ok(Opened {
        tables: replayed.tables,
        file,
        size,
        records: replayed.records,
    })
}

/// A replayed log.
pub(crate) struct Replayed {
    /// The state.
    pub tables: Tables,
    /// Records applied.
    pub records: u64,
    /// Where a torn tail starts and why it is bad, if there is one.
    pub cut: Option<(u64, String)>,
}

/// Replays log bytes into fresh tables. Pure: touches no file.
pub(crate) fn replay(path: &Path, bytes: &[u8]) -> Result<Replayed, StoreError> {
    let corrupt = |offset: usize, reason: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        offset: offset as u64,
        reason,
    };
    match format::read_header(bytes) {
        Header::Ok => {}
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
    }
    let mut tables = Tables::new();
    let mut records = 0u64;
    let mut at = HEADER_LEN;
    let bad = loop {
        match format::read_frame(bytes, at) {
            Frame::End => break None,
            Frame::Bad(reason) => break Some(reason.to_owned()),
            Frame::Valid { payload, next } => {
                match wf_core::codec::decode::<Vec<Change>>(payload) {
                    Ok(changes) => {
                        for change in changes {
                            tables.apply(change);
                        }
                        records += 1;
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
        Some(reason) => match format::valid_record_after(bytes, at) {
            After::Valid(next) => {
                return Err(corrupt(
                    at,
                    format!("{reason}, yet a valid record follows at offset {next}"),
                ));
            }
            After::Undecided => {
                return Err(corrupt(
                    at,
                    format!(
                        "{reason}, and the {} bytes after it hold too many record-like frames to rule out a valid record among them",
                        bytes.len() - at
                    ),
                ));
            }
            After::Nothing => Some((at as u64, reason)),
        },
    };
    Ok(Replayed {
        tables,
        records,
        cut,
    })
}
