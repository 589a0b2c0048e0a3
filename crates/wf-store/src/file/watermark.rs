//! The **synced watermark**: how far the log is known durable (fsync'd), published for readers
//! in other processes.
//!
//! The owner writes the log's records to the OS before they are durable (claims, renewals and
//! pipelined commits are written without an fsync, and a leader's batch is in the file while its
//! fsync runs). A process that reads the file meanwhile ([`crate::FileStore::snapshot`], behind
//! `wf show`) sees those records, which a power loss could still take back. So after every sync
//! the owner appends the log's identity and its synced size to `wf.synced` next to the log, and a
//! reader replays only the synced prefix of the log it read (see `snapshot`).
//!
//! ```text
//! wf.synced: entries of 32 bytes: device u64 LE | inode u64 LE | synced u64 LE | check u64 LE
//! ```
//!
//! The check is a keyed hash of the other three, so an entry being appended (half written) or
//! left half written by a crash is skipped. Nothing here is fsync'd: it only tells other
//! processes what the owner knows, and an entry is written only after the sync it reports
//! returned, so an entry never claims more than is durable; a lost (stale) entry only ever shows
//! less. The rules:
//!
//! - **readers look only at entries for the log they read**: the last whole, intact entry whose
//!   identity is the log's ([`entry_for`]), wherever it is in the file; entries for another log
//!   (the one a compaction replaced) and misaligned or damaged bytes are ignored;
//! - **no entry for the log** (the file is missing or empty, a restart of it failed or is under
//!   way, a write of it failed, a power loss took it back): a reader shows only what the log
//!   itself proves durable, the highest watermark its records carry (see `format`; a compacted
//!   log's records are durable with the file), never the whole log. Only a format 2 log (no
//!   watermarks; its owner rewrites it at open) or a file system that reports no identity
//!   (nothing is published) is shown whole, as before format 3. (A copy of the store directory
//!   has a new identity, so it too shows only that until an owner opens it once);
//! - the owner starts the file afresh (emptied, then one entry) only when the whole log is
//!   durable: at open (after recovery synced the log), after a compaction and, past a size
//!   bound, right after a sync that covered everything written. Whether or not the new entry
//!   makes it, the rules above keep a reader from showing more than is synced;
//! - a compaction appends the new log's entry (its identity, synced whole) **before** renaming
//!   it over the old log, so a reader of the new log finds it at once;
//! - after a failed write (the publisher is **broken**: entries may be misaligned) the owner
//!   appends nothing until a restart succeeds: readers keep the last good entry (less);
//! - recovery uses the entry too (see `recovery`): a bad record followed by valid ones that
//!   starts before the published synced size of the same log was durable, so it is damage
//!   ([`StoreError::Corrupt`]), never cut as an unsynced hole; one at or past it cannot hold
//!   anything acknowledged as durable (a large record there whose frame reads as zeros is cut as
//!   a torn tail).
//!
//! Where the file system reports no file identity, nothing is published and a reader shows the
//! whole log (as before format 3).

use std::path::{Path, PathBuf};

use super::fs::{FileId, FileSystem, FsFile, OpenHow};
use super::fsio::{Disk, io_err};
use crate::error::StoreError;

/// The watermark file's name inside the store directory.
pub(crate) const SYNCED_FILE: &str = "wf.synced";

/// Size of one entry.
const ENTRY_LEN: usize = 32;

/// Past this size the file is started afresh at the next sync that covers everything written.
const RESTART_AT: u64 = 64 << 10;

/// A keyed hash of an entry's fields (SplitMix64 steps), so a torn entry is not taken for one.
fn check(id: FileId, synced: u64) -> u64 {
    const KEY: u64 = u64::from_le_bytes(*b"wf-sync\0");
    let mix = |mut x: u64| {
        x ^= x >> 30;
        x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x ^= x >> 27;
        x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    };
    mix(mix(mix(KEY ^ id.device) ^ id.inode) ^ synced)
}

fn entry(id: FileId, synced: u64) -> [u8; ENTRY_LEN] {
    let mut e = [0u8; ENTRY_LEN];
    e[..8].copy_from_slice(&id.device.to_le_bytes());
    e[8..16].copy_from_slice(&id.inode.to_le_bytes());
    e[16..24].copy_from_slice(&synced.to_le_bytes());
    e[24..].copy_from_slice(&check(id, synced).to_le_bytes());
    e
}

/// The synced size in the last whole, intact entry of a watermark file's bytes that is about
/// the log `log`; `None` when there is none (see the module docs for what a reader does then).
pub(crate) fn entry_for(bytes: &[u8], log: FileId) -> Option<u64> {
    bytes.chunks_exact(ENTRY_LEN).rev().find_map(|e| {
        let word = |i: usize| {
            e.get(i * 8..i * 8 + 8)
                .and_then(|b| b.first_chunk::<8>())
                .map(|b| u64::from_le_bytes(*b))
        };
        let (device, inode, synced, sum) = (word(0)?, word(1)?, word(2)?, word(3)?);
        let id = FileId { device, inode };
        (id == log && check(id, synced) == sum).then_some(synced)
    })
}

/// The synced size published for the log `log` (identity `id`) in the watermark file next to
/// it: `None` when the file is missing or holds no entry for it.
///
/// # Errors
/// [`StoreError::Io`] when the file exists but cannot be read.
pub(crate) fn published(
    fs: &dyn FileSystem,
    log: &Path,
    id: FileId,
) -> Result<Option<u64>, StoreError> {
    let path = path_next_to(log);
    match fs.read(&path) {
        Ok(bytes) => Ok(entry_for(&bytes, id)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(&path)(e)),
    }
}

/// The path of the watermark file of the store whose log is `log`.
pub(crate) fn path_next_to(log: &Path) -> PathBuf {
    log.with_file_name(SYNCED_FILE)
}

/// The owner's side: appends entries as syncs complete. See the module docs.
pub(crate) struct Publisher {
    path: PathBuf,
    file: Box<dyn FsFile>,
    /// The log the entries are about; `None` where the file system reports no identity.
    log: Option<FileId>,
    size: u64,
    /// A write failed: entries may be misaligned until the file is started afresh.
    broken: bool,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("path", &self.path)
            .field("log", &self.log)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl Publisher {
    /// Creates (or empties) `wf.synced` for the log `log`, durable through `synced`. Call when
    /// the whole log is durable, before anything is written to it.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the file cannot be created or written.
    pub(crate) fn start(disk: &Disk, log: Option<FileId>, synced: u64) -> Result<Self, StoreError> {
        let path = path_next_to(&disk.log);
        let file = disk
            .fs
            .open(&path, OpenHow::Truncate, disk.file_mode)
            .map_err(io_err(&path))?;
        let mut publisher = Self {
            path,
            file,
            log,
            size: 0,
            broken: false,
        };
        if let Some(id) = log {
            let e = entry(id, synced);
            publisher
                .file
                .write_all(&e)
                .map_err(io_err(&publisher.path))?;
            publisher.size = ENTRY_LEN as u64;
        }
        Ok(publisher)
    }

    /// Appends an entry for another log file `log` (a compaction's new log, not yet renamed
    /// into place), durable through `synced`; entries about the current log stay in force.
    pub(crate) fn announce(&mut self, log: Option<FileId>, synced: u64) {
        let current = std::mem::replace(&mut self.log, log);
        self.write(synced, false);
        self.log = current;
    }

    /// Starts the file afresh for a new log file (after a compaction), durable through
    /// `synced`, the whole of it.
    pub(crate) fn restart(&mut self, log: Option<FileId>, synced: u64) {
        self.log = log;
        self.write(synced, true);
    }

    /// Publishes that the log is durable through `synced`; `everything` says that is all that
    /// was written to it (so the file may be started afresh).
    pub(crate) fn publish(&mut self, synced: u64, everything: bool) {
        self.write(
            synced,
            everything && (self.broken || self.size >= RESTART_AT),
        );
    }

    fn write(&mut self, synced: u64, afresh: bool) {
        let Some(id) = self.log else {
            return;
        };
        let result = (|| {
            if afresh {
                self.file.set_len(0)?;
                self.size = 0;
                self.broken = false;
            } else if self.broken {
                // Misaligned entries would hide this one; the last good one stays in force.
                return Ok(());
            }
            self.file.write_all(&entry(id, synced))?;
            self.size += ENTRY_LEN as u64;
            Ok::<(), std::io::Error>(())
        })();
        if let Err(e) = result {
            if !self.broken {
                tracing::warn!(
                    path = %self.path.display(),
                    error = %e,
                    "could not publish how far the store log is synced; read-only snapshots \
                     (wf show) show the store as of the last published point until it succeeds"
                );
            }
            self.broken = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_whole_intact_entry_for_the_log_counts() {
        let a = FileId {
            device: 1,
            inode: 2,
        };
        let b = FileId {
            device: 1,
            inode: 3,
        };
        let mut bytes = Vec::new();
        assert_eq!(entry_for(&bytes, a), None);
        bytes.extend_from_slice(&entry(a, 100));
        bytes.extend_from_slice(&entry(a, 250));
        assert_eq!(entry_for(&bytes, a), Some(250));
        // An entry for another log (a compaction's new one) does not hide this log's.
        bytes.extend_from_slice(&entry(b, 40));
        assert_eq!(entry_for(&bytes, a), Some(250));
        assert_eq!(entry_for(&bytes, b), Some(40));
        // Half of the next entry: still the last whole one.
        bytes.extend_from_slice(&entry(a, 400)[..20]);
        assert_eq!(entry_for(&bytes, a), Some(250));
        // A damaged entry is skipped.
        let mut damaged = entry(a, 400);
        damaged[17] ^= 1;
        let mut bytes = entry(a, 100).to_vec();
        bytes.extend_from_slice(&damaged);
        assert_eq!(entry_for(&bytes, a), Some(100));
        // Nothing for the log: none, whatever else is there.
        assert_eq!(entry_for(&entry(b, 100), a), None);
        assert_eq!(entry_for(&[0u8; 64], a), None);
    }
}
