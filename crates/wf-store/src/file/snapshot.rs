//! Read-only snapshots of a file store that another process may own.
//!
//! A live worker process holds the store directory's lock, so an inspector cannot
//! [`FileStore::open`] it. [`FileStore::snapshot`] instead reads `wf.log` as it is on disk at that
//! moment, without the lock and without writing anything, and replays it into a
//! [`FileSnapshot`], which implements only [`StoreRead`]. A record that the owner is still appending (cut short, or not yet complete)
//! is simply where the snapshot ends: it was never acknowledged, so the snapshot still shows
//! every change the owner acknowledged before the read began.
//!
//! It shows nothing a power loss could take back: the owner writes records before they are
//! synced (claims, pipelined commits, a batch whose fsync is running), so the snapshot applies
//! only the records in the part of the log the owner has published as synced (see `watermark`);
//! it reads and checks the rest all the same. Everything the owner acknowledged as durable is in
//! that part.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use wf_core::{InvocationId, JournalEntry, Timestamp};

use super::fs::{FileId, FileSystem, OsFileSystem};
use super::fsio::io_err;
use super::recovery::{TornTail, known_durable, replay_before};
use super::watermark;
use super::{FileStore, LOG_FILE};
use crate::error::StoreError;
use crate::model::{InvocationRecord, StatusCounts};
use crate::steering::EventInbox;
use crate::store::StoreRead;
use crate::tables::Tables;

/// How many times a read that looks corrupt is retried: a compaction may have replaced the log
/// while it was being read, or the owner may have been writing a batch.
const READ_ATTEMPTS: usize = 3;

impl FileStore {
    /// A read-only, point-in-time copy of the store in `dir`: a [`FileSnapshot`], which offers
    /// the reads ([`StoreRead`]) and nothing else.
    ///
    /// Takes no lock and modifies nothing, so it works while another process owns the store
    /// (a running worker). Changes made to the copy are not written back. It shows only what the
    /// owner has synced (what a power loss cannot take back; see the module docs). A torn or
    /// partial last record (an append in progress) ends the snapshot; damage before the end is
    /// [`StoreError::Corrupt`], a log of a newer format [`StoreError::NewerFormat`], one of an
    /// older format [`StoreError::OlderFormat`], and a directory without a store log
    /// [`StoreError::Io`] with kind `NotFound`.
    ///
    /// ```
    /// use wf_store::{FileStore, StoreRead, StoreWork};
    /// let dir = tempfile::tempdir().unwrap();
    /// let owner = FileStore::open(dir.path()).unwrap(); // holds the lock
    /// owner.bind_app("shop").unwrap();
    /// let copy = FileStore::snapshot(dir.path()).unwrap();
    /// assert_eq!(copy.counts().unwrap().total(), 0);
    /// assert_eq!(copy.app_id().unwrap().as_deref(), Some("shop"));
    /// # drop(owner);
    /// ```
    ///
    /// # Errors
    /// As listed above.
    pub fn snapshot(dir: impl AsRef<Path>) -> Result<FileSnapshot, StoreError> {
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
            let Some((bytes, synced)) = synced_prefix(&path)? else {
                // A compaction replaced the log while it was read.
                attempt += 1;
                if attempt > READ_ATTEMPTS {
                    return Err(StoreError::Io {
                        path: path.clone(),
                        source: io::Error::new(
                            io::ErrorKind::Interrupted,
                            "the store log was replaced (compacted) during every attempt to read it; try again",
                        ),
                    });
                }
                continue;
            };
            match replay_before(&path, &bytes, false, synced) {
                Ok(replayed) => {
                    if let Some(cut) = &replayed.cut {
                        tracing::debug!(
                            path = %path.display(),
                            offset = cut.offset,
                            reason = %cut.reason,
                            "snapshot ends before an incomplete last record"
                        );
                    }
                    return Ok(FileSnapshot {
                        dir: dir.to_path_buf(),
                        tables: replayed.tables,
                        torn_tail: replayed.cut,
                    });
                }
                Err(StoreError::Corrupt { .. }) if attempt < READ_ATTEMPTS => attempt += 1,
                Err(e) => return Err(e),
            }
        }
    }
}

/// The log's identity, if the file system reports one.
fn log_id(path: &Path) -> Result<Option<FileId>, StoreError> {
    Ok(OsFileSystem
        .metadata(path)
        .map_err(io_err(path))?
        .and_then(|m| m.id))
}

/// Reads the log `path` and says how much of it is known synced (see `watermark`): the size its
/// owner published for this very file; without such an entry, what the log's own records prove
/// durable (their highest watermark), never more; the whole log only where the file system
/// reports no identity or the log is format 2 (no watermarks). `None` when the log was replaced
/// while it was read.
fn synced_prefix(path: &Path) -> Result<Option<(Vec<u8>, usize)>, StoreError> {
    let before = log_id(path)?;
    let bytes = OsFileSystem.read(path).map_err(io_err(path))?;
    let published = match before {
        Some(id) => Some(watermark::published(&OsFileSystem, path, id)?),
        None => None,
    };
    if log_id(path)? != before {
        return Ok(None);
    }
    let keep = match published {
        // No identity: nothing is published (as before format 3).
        None => bytes.len(),
        Some(Some(synced)) => usize::try_from(synced).map_or(bytes.len(), |s| s.min(bytes.len())),
        Some(None) => known_durable(&bytes).unwrap_or(bytes.len()),
    };
    if keep < bytes.len() {
        tracing::debug!(
            path = %path.display(),
            synced = keep,
            unsynced = bytes.len() - keep,
            published = published.flatten().is_some(),
            "the snapshot leaves out the end of the log not known synced"
        );
    }
    Ok(Some((bytes, keep)))
}

fn not_found(path: &Path, what: &str) -> StoreError {
    StoreError::Io {
        path: path.to_path_buf(),
        source: io::Error::new(io::ErrorKind::NotFound, what.to_owned()),
    }
}

/// A read-only, point-in-time copy of a file store, made by [`FileStore::snapshot`]: the reads
/// of the storage contract ([`StoreRead`]) and nothing else, so a tool holding one cannot change
/// the store. It never changes either: [`StoreRead::wait_final`] answers at once.
pub struct FileSnapshot {
    dir: PathBuf,
    tables: Tables,
    torn_tail: Option<TornTail>,
}

impl std::fmt::Debug for FileSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSnapshot")
            .field("dir", &self.dir)
            .field("tables", &self.tables)
            .field("torn_tail", &self.torn_tail)
            .finish()
    }
}

impl FileSnapshot {
    /// The directory of the store it copies.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The unreadable end of the log this snapshot ignored, if any: a record being appended
    /// while it was read, or a torn tail a crash left that the owner cuts when it next opens
    /// the store. Within what one interrupted write leaves (more is [`StoreError::Corrupt`]).
    pub fn torn_tail(&self) -> Option<&TornTail> {
        self.torn_tail.as_ref()
    }
}

impl StoreRead for FileSnapshot {
    fn backend(&self) -> &'static str {
        "file"
    }

    fn app_id(&self) -> Result<Option<String>, StoreError> {
        Ok(self.tables.app_id().map(str::to_owned))
    }

    fn invocation(&self, id: InvocationId) -> Result<InvocationRecord, StoreError> {
        self.tables.invocation(id)
    }

    fn journal(&self, id: InvocationId) -> Result<Vec<JournalEntry>, StoreError> {
        self.tables.journal(id)
    }

    fn get_data(&self, workflow: InvocationId, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.tables.get_data(workflow, key))
    }

    fn data_keys(&self, workflow: InvocationId) -> Result<Vec<String>, StoreError> {
        Ok(self.tables.data_keys(workflow))
    }

    fn workflow_invocations(
        &self,
        workflow: InvocationId,
    ) -> Result<Vec<InvocationId>, StoreError> {
        Ok(self.tables.workflow_invocations(workflow))
    }

    fn workflows(&self) -> Result<Vec<InvocationRecord>, StoreError> {
        Ok(self.tables.workflow_roots())
    }

    fn counts(&self) -> Result<StatusCounts, StoreError> {
        Ok(self.tables.counts())
    }

    fn purgeable(&self, finished_before: Timestamp) -> Result<Vec<InvocationId>, StoreError> {
        Ok(self.tables.purgeable(finished_before))
    }

    /// A snapshot never changes: the record if it is final, `None` at once if it is not (no
    /// waiting for the timeout), [`StoreError::InvocationNotFound`] if it is not in the copy.
    fn wait_final(
        &self,
        id: InvocationId,
        _timeout: Duration,
    ) -> Result<Option<InvocationRecord>, StoreError> {
        let record = self.tables.invocation(id)?;
        Ok(record.state.status.is_final().then_some(record))
    }

    fn events(&self, id: InvocationId) -> Result<EventInbox, StoreError> {
        self.tables.events(id)
    }

    fn cancel_requests(
        &self,
        ids: &[InvocationId],
    ) -> Result<Vec<(InvocationId, String)>, StoreError> {
        Ok(self.tables.cancel_requests(ids))
    }
}
