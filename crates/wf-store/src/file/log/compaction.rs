//! Compaction: replacing the log with a new file holding a snapshot of the live state, and the
//! size that file would have.

use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::Ordering;

use super::{Failure, Log, lock};
use crate::error::StoreError;
use crate::file::format;
use crate::file::fs::FsFile;
use crate::file::fsio::io_err;
use crate::tables::Change;

/// How a compaction ended.
enum Compacted {
    /// The new file replaced the log; its size.
    Done(u64),
    /// The new file could not be written; the old log is intact and up to date.
    KeptOld(StoreError),
    /// The log's state is unknown: the store must stop.
    Broken(StoreError),
}

impl Log {
    /// Replaces the log with a compacted one holding `snapshot` (the state after every record
    /// appended so far). Call with the `Tables` lock held, so nothing is appended meanwhile.
    ///
    /// The new file is written under a temporary name, synced, renamed over the log and the
    /// directory synced: a crash leaves the old log or the new one, whole. Records waiting in
    /// the batch are covered by the snapshot, so they become durable with it. If writing the new
    /// file fails, the old log is kept (and the batch flushed to it) and the error returned; a
    /// failure after the rename stops the log.
    pub(crate) fn compact(&self, snapshot: &[Change]) -> Result<u64, StoreError> {
        let mut q = lock(&self.queue);
        while q.writing || q.syncing {
            q = self.flushed.wait(q).unwrap_or_else(|p| p.into_inner());
        }
        if let Some(f) = &q.failed {
            return Err(self.failure_error(f));
        }
        q.writing = true;
        q.syncing = true;
        let batch = std::mem::take(&mut q.batch);
        let target = q.appended;
        drop(q);

        let tmp = &self.disk.tmp;
        let written = self.disk.write_tmp(|out| {
            out.write_all(&format::header()).map_err(io_err(tmp))?;
            write_snapshot(out, snapshot, format::HEADER_LEN as u64, tmp)
        });
        let outcome = match written {
            Ok((file, size)) => match self.switch_to(file, size) {
                Ok(()) => Compacted::Done(size),
                Err(e) => Compacted::Broken(e),
            },
            // The old log is intact: put the batch where it would have gone.
            Err(e) => match self
                .write_batch(&batch)
                .and_then(|()| if self.sync { self.sync_file() } else { Ok(()) })
            {
                Ok(()) => Compacted::KeptOld(e),
                Err(io) => Compacted::Broken(io_err(&self.path)(io)),
            },
        };

        let mut q = lock(&self.queue);
        q.writing = false;
        q.syncing = false;
        let result = match outcome {
            Compacted::Done(size) => {
                q.written = target;
                q.durable = target;
                q.unsynced_since = None;
                q.size = size + q.batch.len() as u64;
                self.durable.store(target, Ordering::Release);
                self.counters.compactions.fetch_add(1, Ordering::Relaxed);
                Ok(size)
            }
            Compacted::KeptOld(e) => {
                q.written = target;
                q.durable = target;
                q.unsynced_since = None;
                self.durable.store(target, Ordering::Release);
                Err(e)
            }
            Compacted::Broken(e) => {
                let failure = Failure {
                    kind: io::ErrorKind::Other,
                    message: e.to_string(),
                };
                self.stop(&mut q, failure);
                Err(e)
            }
        };
        self.flushed.notify_all();
        result
    }

    /// Makes the complete, durable compacted file the log: locks it (so the store's lock moves
    /// with the log, see `lock`), renames it over the log, writes to it from now on and makes
    /// the rename durable.
    fn switch_to(&self, mut file: Box<dyn FsFile>, size: u64) -> Result<(), StoreError> {
        let tmp = &self.disk.tmp;
        if !file.try_lock().map_err(io_err(tmp))? {
            return Err(io_err(tmp)(io::Error::other(
                "another process locked the compacted log before it replaced the store's log",
            )));
        }
        // Synced whole: durable through its end, which readers of the new log find published
        // as soon as it is in place (see `watermark`).
        let id = file.id().ok().flatten();
        lock(&self.file).publisher.announce(id, size);
        self.disk
            .fs
            .rename(tmp, &self.path)
            .map_err(io_err(&self.path))?;
        {
            let mut f = lock(&self.file);
            let _ = f.file.unlock();
            f.syncer = file.try_clone().ok().flatten();
            f.file = file;
            f.base = size;
            f.written = 0;
            f.synced = 0;
            f.sync_failed = false;
            f.publisher.restart(id, size);
            self.synced_to.store(size, Ordering::Release);
        }
        self.disk.sync_dir()
    }
}

/// The size a compaction writing `snapshot` now would give the log: the live state's size.
/// Costs one encoding of the state (no I/O).
pub(crate) fn compacted_len(snapshot: &[Change], path: &Path) -> Result<u64, StoreError> {
    let mut sink = LenCounter(format::HEADER_LEN as u64);
    write_snapshot(&mut sink, snapshot, format::HEADER_LEN as u64, path)?;
    Ok(sink.0)
}

/// Counts what is written to it.
struct LenCounter(u64);

impl Write for LenCounter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes a snapshot as records of at most a few hundred changes each (halving a group that is
/// too large for one record), the first starting at file offset `at`. The snapshot is made
/// durable as a whole by the rename, so it does not need to be one record.
fn write_snapshot(
    out: &mut dyn Write,
    changes: &[Change],
    mut at: u64,
    path: &Path,
) -> Result<(), StoreError> {
    const GROUP: usize = 512;
    let mut frame = Vec::new();
    let mut pending: Vec<&[Change]> = changes.chunks(GROUP).rev().collect();
    while let Some(group) = pending.pop() {
        match wf_core::codec::encode(group) {
            Ok(payload) => {
                frame.clear();
                format::push_changes(&mut frame, at, format::DURABLE_WITH_FILE, &payload);
                out.write_all(&frame).map_err(io_err(path))?;
                at += frame.len() as u64;
            }
            Err(wf_core::CodecError::TooLarge { .. }) if group.len() > 1 => {
                let (a, b) = group.split_at(group.len() / 2);
                pending.push(b);
                pending.push(a);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
