//! Small file-system helpers: error wrapping, directory fsync, atomic file replacement.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::Path;

use crate::error::StoreError;

/// Wraps an I/O error with the path it happened on.
pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Makes a directory's entries (a rename, a new file) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Writes a file under the temporary name `tmp` with `write` and makes it durable (when `sync`).
/// Returns its size. On failure the temporary file is removed (best effort).
pub(crate) fn write_file(
    tmp: &Path,
    sync: bool,
    write: impl FnOnce(&mut dyn Write) -> Result<(), StoreError>,
) -> Result<u64, StoreError> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(tmp)
        .map_err(io_err(tmp))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let written = write(&mut out).and_then(|()| {
        let file = out.into_inner().map_err(|e| io_err(tmp)(e.into_error()))?;
        if sync {
            file.sync_all().map_err(io_err(tmp))?;
        }
        file.metadata().map(|m| m.len()).map_err(io_err(tmp))
    });
    if written.is_err() {
        // Best effort: the next open removes a stale temporary file anyway.
        let _ = fs::remove_file(tmp);
    }
    written
}

/// Renames a complete, durable `tmp` over `target` and makes the rename durable (when `sync`).
///
/// A crash at any point leaves either the old `target` or the complete new one, never a mix.
pub(crate) fn rename_durably(
    dir: &Path,
    tmp: &Path,
    target: &Path,
    sync: bool,
) -> Result<(), StoreError> {
    fs::rename(tmp, target).map_err(io_err(target))?;
    if sync {
        sync_dir(dir)?;
    }
    Ok(())
}
