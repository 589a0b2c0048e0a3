//! Exclusive ownership of a store directory by one process.
//!
//! The owner holds an OS file lock (`File::try_lock`, `flock` on Unix) on `LOCK` for as long as
//! the store is open. The OS drops the lock when the owning process dies, however it dies, so a
//! lock left by a crashed process never blocks; the file itself staying behind means nothing.
//! The lock is per open file, so a second store in the same process is refused too.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::Path;

use super::fsio::io_err;
use crate::error::StoreError;

/// The lock file's name inside the store directory.
pub(crate) const LOCK_FILE: &str = "LOCK";

/// Takes the directory's lock or reports who holds it. The returned file holds the lock.
pub(crate) fn lock_dir(dir: &Path) -> Result<File, StoreError> {
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
    Ok(file)
}
