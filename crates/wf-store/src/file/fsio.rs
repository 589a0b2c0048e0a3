//! The store directory on its [`FileSystem`]: error wrapping, permissions, directory fsync and
//! atomic file replacement.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::fs::{FileSystem, FsFile, OpenHow};
use crate::error::StoreError;

/// Wraps an I/O error with the path it happened on.
pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A store directory: where its files are, the file system they are on, and how they are made.
#[derive(Debug, Clone)]
pub(crate) struct Disk {
    pub fs: Arc<dyn FileSystem>,
    pub dir: PathBuf,
    /// The log, `wf.log`.
    pub log: PathBuf,
    /// A compaction's temporary file.
    pub tmp: PathBuf,
    /// Whether to fsync (see `FileOptions::sync`).
    pub sync: bool,
    /// Permission bits of files when created.
    pub file_mode: u32,
}

/// Adapts an [`FsFile`] to [`Write`].
struct Writer<'a>(&'a mut dyn FsFile);

impl Write for Writer<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Disk {
    /// Makes the directory's entries (a rename, a new file) durable, when syncing.
    pub(crate) fn sync_dir(&self) -> Result<(), StoreError> {
        if self.sync {
            self.fs.sync_dir(&self.dir).map_err(io_err(&self.dir))?;
        }
        Ok(())
    }

    /// Writes the temporary file with `write` and makes it durable (when syncing). Returns it,
    /// open for appending at its end, and its size. On failure it is removed (best effort).
    pub(crate) fn write_tmp(
        &self,
        write: impl FnOnce(&mut dyn Write) -> Result<(), StoreError>,
    ) -> Result<(Box<dyn FsFile>, u64), StoreError> {
        let tmp = &self.tmp;
        let mut file = self
            .fs
            .open(tmp, OpenHow::Truncate, self.file_mode)
            .map_err(io_err(tmp))?;
        let written = (|| {
            let mut counted = Counted {
                inner: BufWriter::with_capacity(1 << 20, Writer(&mut *file)),
                bytes: 0,
            };
            write(&mut counted)?;
            let bytes = counted.bytes;
            counted
                .inner
                .into_inner()
                .map_err(|e| io_err(tmp)(e.into_error()))?;
            Ok(bytes)
        })()
        .and_then(|bytes| {
            if self.sync {
                file.sync_data().map_err(io_err(tmp))?;
            }
            Ok(bytes)
        });
        match written {
            Ok(bytes) => Ok((file, bytes)),
            Err(e) => {
                drop(file);
                // Best effort: the next open removes a stale temporary file anyway.
                let _ = self.fs.remove_file(tmp);
                Err(e)
            }
        }
    }
}

/// Counts the bytes written through it.
struct Counted<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Paths of the store whose permission bits allow more than `allowed_dir` / `allowed_file`
/// (the directory and the log), with their bits.
pub(crate) fn too_open(disk: &Disk, allowed_dir: u32, allowed_file: u32) -> Vec<(PathBuf, u32)> {
    let mut out = Vec::new();
    for (path, allowed) in [(&disk.dir, allowed_dir), (&disk.log, allowed_file)] {
        if let Ok(Some(m)) = disk.fs.metadata(path)
            && let Some(mode) = m.mode
            && mode & !allowed != 0
        {
            out.push((path.clone(), mode));
        }
    }
    out
}
