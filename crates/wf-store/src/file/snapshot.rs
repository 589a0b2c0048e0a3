//! Read-only snapshots of a file store that another process may own.
//!
//! A live worker process holds the store directory's lock, so an inspector cannot
//! [`FileStore::open`] it. [`FileStore::snapshot`] instead reads `wf.log` as it is on disk at that
//! moment, without the lock and without writing anything, and replays it into a
//! [`MemoryStore`]. A record that the owner is still appending (cut short, or not yet complete)
//! is simply where the snapshot ends: it was never acknowledged, so the snapshot still shows
//! every change the owner acknowledged before the read began.

use std::io;
use std::path::Path;

use super::fsio::io_err;
use super::recovery::replay;
use super::{FileStore, LOG_FILE};
use crate::error::StoreError;
use crate::memory::MemoryStore;

/// How many times a read that looks corrupt is retried: a compaction may have replaced the log
/// while it was being read, or the owner may have been writing a batch.
const READ_ATTEMPTS: usize = 3;

impl FileStore {
    /// A read-only, point-in-time copy of the store in `dir`, as a [`MemoryStore`].
    ///
    /// Takes no lock and modifies nothing, so it works while another process owns the store
    /// (a running worker). Changes made to the copy are not written back. A torn or partial last
    /// record (an append in progress) ends the snapshot; damage before the end is
    /// [`StoreError::Corrupt`], a log of a newer format [`StoreError::NewerFormat`], one of an
    /// older format [`StoreError::OlderFormat`], and a directory without a store log
    /// [`StoreError::Io`] with kind `NotFound`.
    ///
    /// ```
    /// use wf_store::{FileStore, Store};
    /// let dir = tempfile::tempdir().unwrap();
    /// let owner = FileStore::open(dir.path()).unwrap(); // holds the lock
    /// let copy = FileStore::snapshot(dir.path()).unwrap();
    /// assert_eq!(copy.counts().unwrap().total(), 0);
    /// # drop(owner);
    /// ```
    pub fn snapshot(dir: impl AsRef<Path>) -> Result<MemoryStore, StoreError> {
        let dir = dir.as_ref();
        let path = dir.join(LOG_FILE);
        if dir.exists() && !dir.is_dir() {
            return Err(StoreError::NotADirectory {
                path: dir.to_path_buf(),
            });
        }
        if !dir.is_dir() {
            return Err(not_found(dir, "the directory does not exist"));
        }
        if !path.is_file() {
            return Err(not_found(&path, "the directory has no store log (wf.log)"));
        }
        let mut attempt = 1;
        loop {
            let bytes = std::fs::read(&path).map_err(io_err(&path))?;
            match replay(&path, &bytes) {
                Ok(replayed) => {
                    if let Some((offset, reason)) = &replayed.cut {
                        tracing::debug!(
                            path = %path.display(),
                            offset,
                            reason = %reason,
                            "snapshot ends before an incomplete last record"
                        );
                    }
                    return Ok(MemoryStore::from_tables(replayed.tables));
                }
                Err(StoreError::Corrupt { .. }) if attempt < READ_ATTEMPTS => attempt += 1,
                Err(e) => return Err(e),
            }
        }
    }
}

fn not_found(path: &Path, what: &str) -> StoreError {
    StoreError::Io {
        path: path.to_path_buf(),
        source: io::Error::new(io::ErrorKind::NotFound, what.to_owned()),
    }
}
