//! Exclusive ownership of a store directory by one process.
//!
//! The owner holds an OS file lock (`File::try_lock`, `flock` on Unix) on `LOCK` for as long as
//! the store is open. The OS drops the lock when the owning process dies, however it dies, so a
//! lock left by a crashed process never blocks; the file itself staying behind means nothing.
//! The lock is per open file, so a second store in the same process is refused too.
//!
//! Closing the store unlocks explicitly before the file is closed. A `flock` belongs to the open
//! file description, which a child process forked by any thread of ours shares until it execs;
//! closing our descriptor alone would leave the lock held by that child for a moment, and a store
//! reopened at once in this process would find it locked.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::Path;

use super::fsio::io_err;
use crate::error::StoreError;

/// The lock file's name inside the store directory.
pub(crate) const LOCK_FILE: &str = "LOCK";

/// A held directory lock, released when dropped.
pub(crate) struct DirLock(File);

impl Drop for DirLock {
    fn drop(&mut self) {
        // Errors cannot be reported from here; closing the file releases the lock anyway once
        // no forked child holds it.
        let _ = self.0.unlock();
    }
}

/// Takes the directory's lock or reports who holds it.
pub(crate) fn lock_dir(dir: &Path) -> Result<DirLock, StoreError> {
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_err(&path))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return Err(StoreError::StoreLocked {
                path: dir.to_path_buf(),
            });
        }
        Err(TryLockError::Error(e)) => return Err(io_err(&path)(e)),
    }
    // For a curious operator only: which process owns the store.
    file.set_len(0)
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .map_err(io_err(&path))?;
    Ok(DirLock(file))
}
