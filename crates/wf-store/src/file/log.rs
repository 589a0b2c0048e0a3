//! The append side of the log, with group commit.
//!
//! Records are appended to an in-memory batch (under the caller's `Tables` lock, so the log's
//! order is the order in which changes were applied) and numbered by a sequence. A caller that
//! needs record `n` durable calls [`Log::wait_durable`]: if no flush is running it becomes the
//! **leader**, takes the whole batch, writes it with one `write` and one `fdatasync`, and
//! publishes the new durable sequence; callers arriving meanwhile wait on a condition variable
//! and are released together by that flush or lead the next one with everything that piled up.
//! So N concurrent commits share one fsync, and no dedicated thread needs stopping. A flush
//! never starts before the previous one finished.
//!
//! Claims and renewals only need their record written to the OS ([`Log::wait_written`]): such a
//! flush writes without syncing, so unsynced bytes can pile up across several of them. Writing
//! and syncing are separate steps: once a leader has written its batch it syncs through a second
//! handle on the file ([`FsFile::try_clone`]), and meanwhile another caller may lead a write (not
//! a sync) of what was appended since, so a claim never waits for an fsync it does not need. (A
//! file system without second handles syncs through the only one, and writes wait.) The writer
//! bounds the unsynced bytes: it writes a batch in runs of whole records of at most
//! `format::UNSYNCED_LIMIT` bytes (a larger record alone), and syncs first whenever a run would
//! take the unsynced bytes past that limit. So a crash or power loss can damage at most that many
//! bytes at the end of the log, or one larger record, which is what recovery cuts as a torn tail.
//!
//! An owner with nothing else to do would leave the batch (pipelined commits) and written-only
//! records unsynced until its next operation: the store's idle-sync thread
//! ([`Log::run_idle_sync`]) syncs them once the oldest has waited the configured delay, timed
//! from `Queue::unsynced_since`.
//!
//! Every record carries the log's **watermark** at the time it was appended (how far the file
//! was known durable, see `format`), and every completed sync publishes it to other processes
//! (`watermark`).
//!
//! After a failed write or fsync the log's durable contents are unknown (and the in-memory state
//! is ahead of it), so the log **fails closed**: every later operation gets an error that says
//! to reopen the store, which recovers from what the file holds.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::format::{self, UNSYNCED_LIMIT};
use super::fs::FsFile;
use super::fsio::Disk;
use super::watermark::Publisher;
use crate::error::StoreError;
use crate::tables::Change;

mod compaction;

pub(crate) use self::compaction::compacted_len;

/// What the log remembers of the failure that stopped it.
#[derive(Clone)]
struct Failure {
    kind: io::ErrorKind,
    message: String,
}

struct Queue {
    /// Framed records not yet handed to a flush.
    batch: Vec<u8>,
    /// Sequence number of the last appended record.
    appended: u64,
    /// Sequence number of the last record handed to the OS (survives a process crash).
    written: u64,
    /// Sequence number of the last record known durable (survives power loss).
    durable: u64,
    /// A leader is writing the batch (or a compaction is replacing the file).
    writing: bool,
    /// A leader is syncing what it wrote (or a compaction is replacing the file).
    syncing: bool,
    /// Set once a write, fsync or encode failed.
    failed: Option<Failure>,
    /// The log's size in bytes, batch included.
    size: u64,
    /// When the oldest record not known durable was appended (or, if a sync left some behind,
    /// when that sync started): `None` when every record is durable. The idle syncer's clock.
    unsynced_since: Option<Instant>,
    /// The idle syncer is parked until something is appended (see [`Log::idle`]).
    idle_parked: bool,
    /// The store is closing: the idle syncer ends.
    closing: bool,
}

/// Counters for tests and benchmarks.
#[derive(Default)]
pub(crate) struct Counters {
    pub records: AtomicU64,
    pub flushes: AtomicU64,
    pub compactions: AtomicU64,
}

/// The open, locked log file.
struct LogFile {
    file: Box<dyn FsFile>,
    /// A second handle on the same file, to sync while others write; `None` where the file
    /// system has none, or while a sync uses it.
    syncer: Option<Box<dyn FsFile>>,
    /// The file's size when it was opened (or replaced by a compaction): where `written` counts
    /// from.
    base: u64,
    /// Bytes written to this file since it was opened (or replaced by a compaction).
    written: u64,
    /// Of those, how many a sync is known to cover.
    synced: u64,
    /// A sync of this file failed. Both handles share one open file description (`dup`), and
    /// the OS reports a writeback error to one fsync on it only: a sync through the second
    /// handle that ran meanwhile may return success over lost pages, so it checks this.
    sync_failed: bool,
    /// Tells other processes how far the file is synced.
    publisher: Publisher,
}

impl LogFile {
    /// `file`, durable through its size `base`.
    fn new(file: Box<dyn FsFile>, base: u64, publisher: Publisher) -> Self {
        // Without a second handle every sync goes through the only one: correct, only slower.
        let syncer = file.try_clone().ok().flatten();
        Self {
            file,
            syncer,
            base,
            written: 0,
            synced: 0,
            sync_failed: false,
            publisher,
        }
    }

    fn unsynced(&self) -> u64 {
        self.written - self.synced.min(self.written)
    }

    /// Notes that a sync covered the first `upto` bytes written, and publishes it (see
    /// `watermark`); returns the log's offset known durable.
    fn synced_through(&mut self, upto: u64) -> u64 {
        self.synced = self.synced.max(upto);
        let at = self.base + self.synced;
        let everything = self.synced >= self.written;
        self.publisher.publish(at, everything);
        at
    }
}

/// The append-only log file and its group-commit queue.
pub(crate) struct Log {
    disk: Disk,
    path: std::path::PathBuf,
    sync: bool,
    queue: Mutex<Queue>,
    flushed: Condvar,
    /// Wakes the idle syncer (see [`Log::run_idle_sync`]): something was appended while it was
    /// parked, or the store is closing.
    idle: Condvar,
    file: Mutex<LogFile>,
    /// Mirrors `Queue::durable` for a lock-free fast path.
    durable: AtomicU64,
    /// The log's offset known durable: every record appended carries it (see `format`).
    synced_to: AtomicU64,
    /// The last record that readers must not observe before it is durable (everything but
    /// claims and renewals; see the module docs of `file`).
    wanted: AtomicU64,
    /// Set (after `Queue::failed`) once the log failed, so every operation can check for a
    /// failure without taking the queue's lock.
    stopped: AtomicBool,
    pub counters: Counters,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section here leaves its data consistent, so a poisoned lock stays usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Log {
    /// Wraps a locked log file opened for appending at its clean end, all of it durable (as
    /// `recovery` leaves it), and publishes that (see `watermark`).
    ///
    /// # Errors
    /// [`StoreError::Io`] when the watermark file cannot be written.
    pub(crate) fn new(disk: &Disk, file: Box<dyn FsFile>, size: u64) -> Result<Self, StoreError> {
        let publisher = Publisher::start(disk, file.id().ok().flatten(), size)?;
        Ok(Self {
            disk: disk.clone(),
            path: disk.log.clone(),
            sync: disk.sync,
            queue: Mutex::new(Queue {
                batch: Vec::new(),
                appended: 0,
                written: 0,
                durable: 0,
                writing: false,
                syncing: false,
                failed: None,
                size,
                unsynced_since: None,
                idle_parked: false,
                closing: false,
            }),
            flushed: Condvar::new(),
            idle: Condvar::new(),
            file: Mutex::new(LogFile::new(file, size, publisher)),
            durable: AtomicU64::new(0),
            synced_to: AtomicU64::new(size),
            wanted: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
            counters: Counters::default(),
        })
    }

    fn failure_error(&self, f: &Failure) -> StoreError {
        StoreError::Io {
            path: self.path.clone(),
            source: io::Error::new(
                f.kind,
                format!(
                    "the store stopped after a failed write: {}; nothing after it was acknowledged, reopen the store to recover from its log",
                    f.message
                ),
            ),
        }
    }

    /// Fails if an earlier write, fsync or encode failed. Called with the `Tables` lock held, it
    /// sees every failure that left a change in memory without its record (see `stop`).
    pub(crate) fn check(&self) -> Result<(), StoreError> {
        if !self.stopped.load(Ordering::Acquire) {
            return Ok(());
        }
        match &lock(&self.queue).failed {
            Some(f) => Err(self.failure_error(f)),
            None => Ok(()),
        }
    }

    /// Whether the log failed (see [`Log::check`]).
    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Records the first failure; the log takes no record after it.
    fn stop(&self, q: &mut Queue, failure: Failure) {
        q.failed.get_or_insert(failure);
        self.stopped.store(true, Ordering::Release);
    }

    /// Stops the log after the in-memory state moved ahead of what can be logged.
    pub(crate) fn fail(&self, kind: io::ErrorKind, message: String) {
        let mut q = lock(&self.queue);
        self.stop(&mut q, Failure { kind, message });
        self.flushed.notify_all();
    }

    /// Appends one record holding `changes`; returns its sequence number. `must_sync` marks it
    /// as one readers must not see before it is durable. Call with the `Tables` lock held.
    pub(crate) fn append(&self, changes: &[Change], must_sync: bool) -> Result<u64, StoreError> {
        let payload = match wf_core::codec::encode(changes) {
            Ok(p) => p,
            Err(e) => {
                // The changes are applied in memory already: memory and log now disagree.
                self.fail(
                    io::ErrorKind::InvalidData,
                    format!("a record could not be encoded: {e}"),
                );
                return Err(e.into());
            }
        };
        let mut q = lock(&self.queue);
        if let Some(f) = &q.failed {
            return Err(self.failure_error(f));
        }
        let before = q.batch.len();
        let at = q.size;
        let synced = self.synced_to.load(Ordering::Acquire);
        format::push_changes(&mut q.batch, at, synced, &payload);
        q.size += (q.batch.len() - before) as u64;
        q.appended += 1;
        let seq = q.appended;
        if q.unsynced_since.is_none() {
            q.unsynced_since = Some(Instant::now());
            if q.idle_parked {
                q.idle_parked = false;
                self.idle.notify_one();
            }
        }
        if must_sync {
            self.wanted.store(seq, Ordering::Release);
        }
        self.counters.records.fetch_add(1, Ordering::Relaxed);
        Ok(seq)
    }

    /// The last record readers must not observe before it is durable.
    pub(crate) fn wanted(&self) -> u64 {
        self.wanted.load(Ordering::Acquire)
    }

    /// The last record known durable.
    pub(crate) fn durable(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    /// The log's size in bytes, unflushed records included.
    pub(crate) fn size(&self) -> u64 {
        lock(&self.queue).size
    }

    /// Blocks until record `seq` (and so every record before it) is durable, leading a flush
    /// when none is running.
    pub(crate) fn wait_durable(&self, seq: u64) -> Result<(), StoreError> {
        if self.durable.load(Ordering::Acquire) >= seq {
            return Ok(());
        }
        self.wait_for(seq, true)
    }

    /// Blocks until record `seq` is written to the OS: it then survives a crash of this process
    /// (`kill -9`), though not a power loss. Costs a `write`, no fsync.
    pub(crate) fn wait_written(&self, seq: u64) -> Result<(), StoreError> {
        self.wait_for(seq, false)
    }

    /// The group-commit loop: wait for a running write (and, for `durable`, a running sync), or
    /// lead one that writes the whole batch and then, when `durable` is asked for and the store
    /// syncs, syncs it. A leader's sync runs without blocking writes (see the module docs).
    fn wait_for(&self, seq: u64, durable: bool) -> Result<(), StoreError> {
        let mut q = lock(&self.queue);
        loop {
            if (if durable { q.durable } else { q.written }) >= seq {
                return Ok(());
            }
            if let Some(f) = &q.failed {
                return Err(self.failure_error(f));
            }
            if q.writing || (durable && q.syncing) {
                q = self.flushed.wait(q).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            q.writing = true;
            let started = Instant::now();
            let mut batch = std::mem::take(&mut q.batch);
            let target = q.appended;
            let sync = durable && self.sync && target > q.durable;
            q.syncing |= sync;
            drop(q);
            let mut done = self.write_batch(&batch);
            q = lock(&self.queue);
            q.writing = false;
            if q.batch.is_empty() {
                // Keep the allocation for the next batch.
                batch.clear();
                q.batch = batch;
            }
            if done.is_ok() {
                q.written = q.written.max(target);
                if sync {
                    // Written: others may write what piles up while this leader syncs.
                    self.flushed.notify_all();
                    drop(q);
                    done = self.sync_file();
                    q = lock(&self.queue);
                }
            }
            if sync {
                q.syncing = false;
            }
            match done {
                Ok(()) if durable => {
                    q.durable = q.durable.max(target);
                    self.durable.store(q.durable, Ordering::Release);
                    // What was appended meanwhile waits from when this flush took the batch.
                    q.unsynced_since = (q.appended > q.durable).then_some(started);
                }
                Ok(()) => {}
                Err(e) => {
                    let failure = Failure {
                        kind: e.kind(),
                        message: format!("writing {}: {e}", self.path.display()),
                    };
                    self.stop(&mut q, failure);
                }
            }
            self.flushed.notify_all();
        }
    }

    /// The idle syncer's loop (see `FileOptions::idle_sync`), run on a thread of its own until
    /// [`Log::close`]: parked while every record is durable; once a record has waited `delay`
    /// unsynced, makes everything appended so far durable, joining a sync under way or leading
    /// one. Returns the error of a flush that failed (the log then stopped), `Ok` on close.
    pub(crate) fn run_idle_sync(&self, delay: Duration) -> Result<(), StoreError> {
        let mut q = lock(&self.queue);
        loop {
            if q.closing {
                return Ok(());
            }
            if let Some(f) = &q.failed {
                return Err(self.failure_error(f));
            }
            let Some(since) = q.unsynced_since else {
                q.idle_parked = true;
                q = self.idle.wait(q).unwrap_or_else(|p| p.into_inner());
                q.idle_parked = false;
                continue;
            };
            let waited = since.elapsed();
            if waited < delay {
                // Woken early only to close; a sync meanwhile is seen when this wait ends.
                q = self
                    .idle
                    .wait_timeout(q, delay - waited)
                    .map(|(g, _)| g)
                    .unwrap_or_else(|p| p.into_inner().0);
                continue;
            }
            let target = q.appended;
            drop(q);
            self.wait_durable(target)?;
            q = lock(&self.queue);
        }
    }

    /// Ends [`Log::run_idle_sync`].
    pub(crate) fn close(&self) {
        let mut q = lock(&self.queue);
        q.closing = true;
        self.idle.notify_all();
    }

    /// Makes everything appended so far durable.
    pub(crate) fn flush_all(&self) -> Result<(), StoreError> {
        let seq = lock(&self.queue).appended;
        self.wait_durable(seq)
    }

    /// Writes a batch: runs of whole records of at most [`UNSYNCED_LIMIT`] bytes (a larger record
    /// alone), syncing first (when the store syncs) whenever a run would take the unsynced bytes
    /// past the limit: see the module docs.
    fn write_batch(&self, batch: &[u8]) -> io::Result<()> {
        let mut f = lock(&self.file);
        let mut at = 0;
        while at < batch.len() {
            let mut end = at + format::framed_len(batch, at).unwrap_or(batch.len() - at);
            while let Some(n) = format::framed_len(batch, end) {
                if end + n - at > UNSYNCED_LIMIT {
                    break;
                }
                end += n;
            }
            let run = batch.get(at..end).unwrap_or(&batch[at..]);
            let unsynced = f.unsynced();
            if self.sync && unsynced > 0 && unsynced + run.len() as u64 > UNSYNCED_LIMIT as u64 {
                if let Err(e) = f.file.sync_data() {
                    f.sync_failed = true;
                    return Err(e);
                }
                let upto = f.written;
                self.synced(&mut f, upto);
            }
            f.file.write_all(run)?;
            f.written += run.len() as u64;
            at += run.len();
        }
        if !self.sync {
            // Nothing is ever synced: what is written is as durable as it gets (a killed
            // process loses none of it): readers are told so, and records carry it.
            let upto = f.written;
            let at = f.synced_through(upto);
            self.synced_to.fetch_max(at, Ordering::AcqRel);
        }
        Ok(())
    }

    /// Notes a completed sync of the first `upto` bytes written to `f` (see
    /// [`LogFile::synced_through`]): later records carry it.
    fn synced(&self, f: &mut LogFile, upto: u64) {
        let at = f.synced_through(upto);
        self.synced_to.fetch_max(at, Ordering::AcqRel);
        self.counters.flushes.fetch_add(1, Ordering::Relaxed);
    }

    /// Syncs everything written so far: through the second handle without holding the file's
    /// lock (writes go on meanwhile), or through the only handle with it held.
    fn sync_file(&self) -> io::Result<()> {
        let (syncer, upto) = {
            let mut f = lock(&self.file);
            match f.syncer.take() {
                Some(s) => (s, f.written),
                None => {
                    if let Err(e) = f.file.sync_data() {
                        f.sync_failed = true;
                        return Err(e);
                    }
                    let upto = f.written;
                    self.synced(&mut f, upto);
                    return Ok(());
                }
            }
        };
        let mut syncer = syncer;
        let synced = syncer.sync_data();
        let mut f = lock(&self.file);
        // A compaction waits for syncs to end, so the file is still the one this handle is on.
        f.syncer = Some(syncer);
        if let Err(e) = synced {
            f.sync_failed = true;
            return Err(e);
        }
        if f.sync_failed {
            // Another fsync on the same open file failed while (or before) this one ran: the
            // error was reported to it, not here, and may concern the pages this sync covers.
            return Err(io::Error::other(
                "an fsync of the log through another handle failed; what this sync covers may be lost",
            ));
        }
        self.synced(&mut f, upto);
        Ok(())
    }

    /// Makes later writes go to `file` instead of the log: a test points it at `/dev/full` to
    /// get real `ENOSPC` failures without mocking the file system.
    #[cfg(test)]
    pub(crate) fn redirect_writes(&self, file: Box<dyn FsFile>) {
        let mut f = lock(&self.file);
        f.syncer = file.try_clone().ok().flatten();
        f.file = file;
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        // Unlock before the file closes (see `lock` for why); errors cannot be reported here
        // and closing releases the lock anyway once no forked child holds it.
        let _ = lock(&self.file).file.unlock();
    }
}
