//! Exclusive ownership of a store directory by one process.
//!
//! The owner holds an OS file lock ([`FsFile::try_lock`], `flock` on Unix) on **the log file
//! itself** for as long as the store is open, so the lock cannot be sidestepped by deleting or
//! replacing another file: whoever could write the log must hold the lock on the very file it
//! writes. A compaction locks the new log before it renames it into place (see `log`). A second
//! opener checks, after locking, that the file it locked is still the one named `wf.log` (a
//! compaction may have replaced it between its open and its lock) and tries again if not.
//!
//! The OS drops the lock when the owning process dies, however it dies, so a crashed owner never
//! blocks. The lock is per open file, so a second store in the same process is refused too.
//! `LOCK` holds the owner's process id, for error messages and curious operators. It is locked
//! too (first), so that an owner running an older `wf`, which locked only `LOCK`, and this one
//! exclude each other; deleting it changes nothing, since the log's lock is what counts.
//!
//! Closing the store unlocks explicitly before the file is closed. A `flock` belongs to the open
//! file description, which a child process forked by any thread of ours shares until it execs;
//! closing our descriptor alone would leave the lock held by that child for a moment, and a store
//! reopened at once in this process would find it locked.

use super::fs::{FsFile, OpenHow};
use super::fsio::{Disk, io_err};
use crate::error::StoreError;

/// The owner-information file's name inside the store directory.
pub(crate) const LOCK_FILE: &str = "LOCK";

/// How many times a lock is retried when a compaction replaced the log under the opener.
const ATTEMPTS: usize = 8;

/// The locked files of an owned store.
pub(crate) struct Owned {
    /// The log, open for appending and locked.
    pub log: Box<dyn FsFile>,
    /// `LOCK`, locked, holding this process's id.
    pub owner: Box<dyn FsFile>,
}

/// Locks `LOCK` and the log (creating them if missing), or reports who holds them.
pub(crate) fn lock_store(disk: &Disk) -> Result<Owned, StoreError> {
    let path = disk.dir.join(LOCK_FILE);
    let mut owner = disk
        .fs
        .open(&path, OpenHow::Append, disk.file_mode)
        .map_err(io_err(&path))?;
    if !owner.try_lock().map_err(io_err(&path))? {
        return Err(StoreError::StoreLocked {
            path: disk.dir.clone(),
            pid: owner_pid(disk),
        });
    }
    let log = lock_log(disk)?;
    // For messages and operators only: a failure to note it is no reason to refuse the store.
    let noted = owner
        .set_len(0)
        .and_then(|()| owner.write_all(format!("{}\n", disk.fs.process_id()).as_bytes()));
    if let Err(e) = noted {
        tracing::debug!(path = %path.display(), error = %e, "could not note the store's owner");
    }
    Ok(Owned { log, owner })
}

/// Opens the log (creating it empty if missing) and locks it, or reports who holds it.
fn lock_log(disk: &Disk) -> Result<Box<dyn FsFile>, StoreError> {
    let path = &disk.log;
    for _ in 0..ATTEMPTS {
        let mut file = disk
            .fs
            .open(path, OpenHow::Append, disk.file_mode)
            .map_err(io_err(path))?;
        if !file.try_lock().map_err(io_err(path))? {
            return Err(StoreError::StoreLocked {
                path: disk.dir.clone(),
                pid: owner_pid(disk),
            });
        }
        let locked = file.id().map_err(io_err(path))?;
        let named = disk.fs.metadata(path).map_err(io_err(path))?;
        if locked.is_none() || named.and_then(|m| m.id) == locked {
            return Ok(file);
        }
        // The owner replaced the log (a compaction) between our open and our lock: the file we
        // locked is the old one. Its lock says nothing; try the new one.
        let _ = file.unlock();
    }
    Err(StoreError::StoreLocked {
        path: disk.dir.clone(),
        pid: owner_pid(disk),
    })
}

/// The process id `LOCK` names, if it names one.
fn owner_pid(disk: &Disk) -> Option<u32> {
    let bytes = disk.fs.read(&disk.dir.join(LOCK_FILE)).ok()?;
    std::str::from_utf8(&bytes).ok()?.trim().parse().ok()
}
