//! The file backend: the embedded, crash-safe default. A directory holding an append-only,
//! checksummed, fsync'd log of state changes; the state itself lives in memory ([`Tables`], the
//! same state machine as the memory backend) and is rebuilt from the log on open.
//!
//! # Layout
//!
//! ```text
//! <dir>/LOCK            held with an OS file lock by the owning process (see `lock`)
//! <dir>/wf.log          header + records, see `format`
//! <dir>/wf.log.compact  a compaction in progress (removed on open if a crash left it)
//! ```
//!
//! Modules: `format` (framing and checksums), `recovery` (open, replay, cut a torn tail), `log`
//! (appending with group commit, replacing the file on compaction), `lock` (ownership),
//! `fsio` (file-system helpers).
//!
//! # Durability and visibility
//!
//! Each mutating operation runs under the `Tables` mutex: it validates, applies its changes in
//! memory and appends them as **one record** to the log's batch, in that order, so the log's
//! order is the order of the changes. It then releases the mutex and waits until its record is
//! synced ([`FileStore::open_with`] with `sync(false)` skips the fsync, for tests of logic only).
//! Concurrent operations share one `fdatasync` (group commit, see `log`); the mutex is never
//! held during an fsync, except while a compaction replaces the file.
//!
//! A change is therefore visible in memory a moment before it is durable. It never **escapes**
//! before it is durable:
//!
//! - **Reads** (`invocation`, `journal`, `get_data`, `wait_final`, …) note the log position of
//!   the state they saw and wait until it is durable before returning, so a result handed to a
//!   caller, who may show it to the world, cannot be undone by a crash.
//! - **Mutations** that depend on another thread's unsynced change are logged after it; the log
//!   is recovered as a prefix (only the last, unsynced batch can be torn), so when a dependent
//!   operation is acknowledged, what it depended on is durable too. Every operation also waits
//!   for what it saw, so an error such as `Conflict` or `LeaseLost` is never based on a change a
//!   crash then loses.
//! - **Claims and renewals** are written to the OS (one `write`, no fsync) before they are
//!   acknowledged: they survive a crash of the process (`kill -9`), so after a restart the dead
//!   worker's lease is honoured until it expires and the attempt number keeps counting. A power
//!   loss may still forget the last claims: the invocation is then simply run again, which the
//!   at-least-once contract of tasks allows anyway (a crash after a durable claim re-runs it
//!   too). Anything a claimed task produces becomes durable only through its commit, which is
//!   logged after the claim and everything the claim saw. This saves one fsync wait per task (a
//!   worker's loop is claim, commit). A claim's recovery of expired leases can do more than
//!   that: fail an invocation that crash-loops (`WorkerLost`) and so wake its parent. Such a
//!   claim is logged and waited for like any other durable operation (see `lease_only`), so
//!   nobody sees a final state that a power loss could take back.
//! - Commits, submissions, cancellations, expiry recovery and purges are durable before they
//!   return. A clean drop of the store flushes whatever is still unsynced.
//!
//! Only the last batch is ever unsynced, and it is written with one `write`. A power loss that
//! persists that batch's later pages but not its earlier ones (possible on file systems that do
//! not order data writes) leaves a valid record after a bad one, which is reported as
//! [`StoreError::Corrupt`] rather than guessed at; ext4 in its default `data=ordered` mode and
//! `kill -9` (the page cache survives it) do not produce this.
//!
//! After a failed write, fsync or encode, memory may be ahead of the file and the file's durable
//! contents are unknown: the store **fails stop**. Every operation, reads and `wait_final`
//! included, checks the log under the `Tables` lock before it looks at memory and returns
//! [`StoreError::Io`] saying to reopen the store (reopening recovers from the log), so no state
//! that was never logged is handed out; threads blocked in `wait_final` or `wait_for_work` are
//! woken to return that error too.
//!
//! # Compaction and retention
//!
//! When the log grows past [`FileOptions::compact_min_bytes`] and past
//! [`FileOptions::compact_ratio`] times the size of the last compacted log (the live state), the
//! operation that noticed writes [`Tables::snapshot`] to a new file, syncs it, renames it over the
//! log and syncs the directory, holding the `Tables` mutex meanwhile (so compaction pauses the
//! store for about one snapshot write; amortised it costs a constant per appended byte).
//! [`StoreAdmin::purge_finished`] works in batches of [`crate::tables::PURGE_BATCH`] workflows,
//! releasing the lock between them, then compacts at once. Retention is on by default
//! ([`DEFAULT_RETENTION`], 24 hours; [`FileOptions::keep_everything`] turns it off): finished
//! workflow trees older than it (by the operations' clock) are purged as operations go, each
//! operation looking at one batch, so memory and the log stay bounded under steady load.

mod format;
mod fsio;
mod lock;
mod log;
mod recovery;
mod snapshot;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use wf_core::{ChildOutcome, InvocationId, JournalEntry, Op, Status, Timestamp, WorkerId};

use crate::error::StoreError;
use crate::limits;
use crate::memory::{Signal, signal, system_now, wait_until};
use crate::model::{
    Checkpoint, Claim, Commit, InvocationRecord, Lease, NewInvocation, Outcome, StatusCounts,
    Submitted, TaskSet,
};
use crate::steering::{CancelReport, EventInbox, EventSent, NewEvent};
use crate::store::{StoreAdmin, StoreRead, StoreWork};
use crate::tables::{Change, PURGE_BATCH, Tables};

use self::fsio::io_err;
use self::log::Log;
pub use self::snapshot::FileSnapshot;

/// The log file's name inside the store directory.
const LOG_FILE: &str = "wf.log";
/// A compaction's temporary file.
const COMPACT_FILE: &str = "wf.log.compact";

/// How long a file store keeps a finished workflow tree by default: 24 hours (see
/// [`FileOptions::retention`]).
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// Settings of a [`FileStore`]. Start from `FileOptions::default()`.
///
/// ```
/// use std::time::Duration;
/// use wf_store::FileOptions;
/// let options = FileOptions::default().retention(Duration::from_secs(7 * 24 * 3600));
/// assert!(options.is_synced());
/// ```
#[derive(Debug, Clone)]
pub struct FileOptions {
    sync: bool,
    retention: Option<Duration>,
    compact_min_bytes: u64,
    compact_ratio: u64,
}

impl Default for FileOptions {
    fn default() -> Self {
        Self {
            sync: true,
            retention: Some(DEFAULT_RETENTION),
            compact_min_bytes: 8 << 20,
            compact_ratio: 2,
        }
    }
}

impl FileOptions {
    /// Whether to fsync before acknowledging (default `true`). `false` still writes every record
    /// to the file before acknowledging it (so a killed process loses nothing), but a power loss
    /// or OS crash may lose recent acknowledged changes: for tests of logic only.
    #[must_use]
    pub fn sync(mut self, sync: bool) -> Self {
        self.sync = sync;
        self
    }

    /// Whether this configuration fsyncs before acknowledging.
    pub fn is_synced(&self) -> bool {
        self.sync
    }

    /// Purge workflow trees that finished longer than `retention` ago (judged by the clock the
    /// operations pass in), as operations go, a batch per operation; their space is reclaimed
    /// by the next compaction. Default: [`DEFAULT_RETENTION`] (24 hours), so a long-running
    /// worker's memory and log stay bounded; [`FileOptions::keep_everything`] turns it off.
    #[must_use]
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = Some(retention);
        self
    }

    /// Keep every finished workflow until [`StoreAdmin::purge_finished`] removes it (no
    /// retention). Memory then grows with finished work (a few hundred bytes per finished
    /// invocation, plus its journal and data) for as long as the store is open.
    #[must_use]
    pub fn keep_everything(mut self) -> Self {
        self.retention = None;
        self
    }

    /// The retention in force (`None`: everything is kept).
    pub fn retention_period(&self) -> Option<Duration> {
        self.retention
    }

    /// Never compact a log smaller than this (default 8 MiB).
    #[must_use]
    pub fn compact_min_bytes(mut self, bytes: u64) -> Self {
        self.compact_min_bytes = bytes;
        self
    }

    /// Compact when the log is this many times the size of the last compacted log (default 2;
    /// values below 2 are raised to 2 so compaction's cost stays amortised).
    #[must_use]
    pub fn compact_ratio(mut self, ratio: u64) -> Self {
        self.compact_ratio = ratio.max(2);
        self
    }
}

/// Counters of a [`FileStore`], for tests, benchmarks and monitoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileStats {
    /// Records appended since open (one per mutating operation that changed something).
    pub records: u64,
    /// Batches written (each followed by one fsync when syncing); `records / flushes` is the
    /// group-commit factor.
    pub flushes: u64,
    /// Compactions since open.
    pub compactions: u64,
    /// The log's current size in bytes, including records not yet written.
    pub log_bytes: u64,
}

/// The embedded, crash-safe store: a directory owned by one process. See the module docs for
/// the format, the durability guarantees and compaction.
///
/// ```
/// use wf_store::{FileStore, StoreRead};
/// let dir = tempfile::tempdir().unwrap();
/// let store = FileStore::open(dir.path()).unwrap();
/// assert_eq!(store.counts().unwrap().total(), 0);
/// ```
pub struct FileStore {
    dir: PathBuf,
    options: FileOptions,
    tables: Mutex<Tables>,
    /// Signalled when something may have become claimable.
    work: Signal,
    /// Signalled when an invocation became final.
    finished: Signal,
    log: Log,
    /// The log's size right after the last compaction: the live state's size.
    live_bytes: AtomicU64,
    /// The operation clock (ms) at which retention next starts a pass over the workflows.
    next_retention: AtomicU64,
    /// The workflows the current retention pass has still to look at (taken from the back).
    retention_backlog: Mutex<Vec<InvocationId>>,
    /// How many times a waiter was about to block, for tests that must fail the log while a
    /// thread is blocked.
    #[cfg(test)]
    blocking: AtomicU64,
    _lock: lock::DirLock,
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore")
            .field("dir", &self.dir)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl FileStore {
    /// Opens (creating if needed) the store in directory `dir` with default options.
    ///
    /// # Errors
    /// As [`FileStore::open_with`].
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(dir, FileOptions::default())
    }

    /// Opens (creating if needed) the store in directory `dir`.
    ///
    /// Takes the directory's lock ([`StoreError::StoreLocked`] if another process or another
    /// open store holds it), replays the log, cuts a torn tail left by a crash (with a warning)
    /// and fails with [`StoreError::Corrupt`] on damage before the tail,
    /// [`StoreError::NewerFormat`] on a log written by a newer `wf`, or
    /// [`StoreError::OlderFormat`] on one written in an older, pre-release format. A path that
    /// exists but is not a directory is [`StoreError::NotADirectory`].
    ///
    /// # Errors
    /// Those above, and [`StoreError::Io`] when the directory or log cannot be read or written.
    pub fn open_with(dir: impl AsRef<Path>, options: FileOptions) -> Result<Self, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        if dir.exists() && !dir.is_dir() {
            return Err(StoreError::NotADirectory { path: dir });
        }
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let lock = lock::lock_dir(&dir)?;
        let path = dir.join(LOG_FILE);
        let tmp = dir.join(COMPACT_FILE);
        let opened = recovery::open_log(&dir, &path, &tmp, options.sync)?;
        tracing::debug!(
            path = %path.display(),
            records = opened.records,
            bytes = opened.size,
            "opened file store"
        );
        let log = Log::new(&dir, &path, &tmp, options.sync, opened.file, opened.size);
        Ok(Self {
            dir,
            options,
            tables: Mutex::new(opened.tables),
            work: Signal::default(),
            finished: Signal::default(),
            log,
            live_bytes: AtomicU64::new(0),
            next_retention: AtomicU64::new(0),
            retention_backlog: Mutex::new(Vec::new()),
            #[cfg(test)]
            blocking: AtomicU64::new(0),
            _lock: lock,
        })
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Counters since open.
    pub fn stats(&self) -> FileStats {
        let c = &self.log.counters;
        FileStats {
            records: c.records.load(Ordering::Relaxed),
            flushes: c.flushes.load(Ordering::Relaxed),
            compactions: c.compactions.load(Ordering::Relaxed),
            log_bytes: self.log.size(),
        }
    }

    /// Makes everything appended so far durable, claims and renewals included (other
    /// operations are durable when they return).
    ///
    /// # Errors
    /// [`StoreError::Io`] when a write or fsync fails (the store then fails stop).
    pub fn flush(&self) -> Result<(), StoreError> {
        let flushed = self.log.flush_all();
        self.stop_on_failure(flushed)
    }

    /// Rewrites the log as a snapshot of the live state now.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the new log cannot be written, synced or renamed into place.
    pub fn compact(&self) -> Result<(), StoreError> {
        let tables = self.lock_checked()?;
        let compacted = self.log.compact(&tables.snapshot());
        self.wake_if_stopped(&tables);
        drop(tables);
        self.live_bytes.store(compacted?, Ordering::Relaxed);
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        // Operations validate before they apply, so a panic while holding the lock cannot leave
        // `Tables` half-changed: a poisoned lock is still usable.
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the `Tables` lock, failing if the log failed. Under the lock, the check sees every
    /// failure that left memory ahead of the log (an encode failure stops the log before the
    /// operation that hit it releases the lock; a failed flush fails whoever waits for the
    /// records it lost), so nothing read after it is state that was never logged.
    fn lock_checked(&self) -> Result<MutexGuard<'_, Tables>, StoreError> {
        let tables = self.lock();
        self.log.check()?;
        Ok(tables)
    }

    /// After the log may have failed, with the `Tables` lock held: wakes every thread blocked in
    /// `wait_final` or `wait_for_work`, so they return the failure instead of waiting it out.
    /// (They check the log under the lock, so waking them while it is held loses no wake-up.)
    fn wake_if_stopped(&self, _tables: &Tables) {
        if self.log.is_stopped() {
            self.finished.notify_all();
            self.work.notify_all();
        }
    }

    /// Called by `wait_final` and `wait_for_work` when they are about to block (the `Tables`
    /// lock held): counts for tests.
    fn about_to_block(&self) {
        #[cfg(test)]
        self.blocking.fetch_add(1, Ordering::Relaxed);
    }

    /// Passes on the result of waiting for the log; if that failed the log, first wakes the
    /// blocked waiters (see [`Self::wake_if_stopped`]). Call without the `Tables` lock.
    fn stop_on_failure<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if result.is_err() && self.log.is_stopped() {
            self.wake_if_stopped(&self.lock());
        }
        result
    }

    /// Runs a mutating operation, logs its changes as one record, does housekeeping and, unless
    /// `must_sync` is false (claims and renewals) and every change is [`lease_only`], waits until
    /// everything it saw is durable.
    fn mutate<T>(
        &self,
        must_sync: bool,
        now: Timestamp,
        op: impl FnOnce(&mut Tables, &mut Vec<Change>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut tables = self.lock_checked()?;
        let mut changes = Vec::new();
        tables.begin_undo();
        let result = op(&mut tables, &mut changes);
        // The record is measured, not the request: one too large to log is undone and refused
        // alone, so memory never runs ahead of the log and the store goes on serving.
        if let Err(refused) = check_record(&changes) {
            if tables.roll_back() {
                return Err(refused);
            }
            self.log.fail(
                std::io::ErrorKind::InvalidData,
                format!("an oversized record could not be undone: {refused}"),
            );
            self.wake_if_stopped(&tables);
            return Err(refused);
        }
        tables.keep_changes();
        // A claim that failed a crash-looping invocation (and maybe woke its parent) made
        // something final: that must be durable before anyone sees it, so it is logged as wanted
        // and waited for, sharing the next group commit like any other durable operation.
        let must_sync = must_sync || !changes.iter().all(lease_only);
        let appended = match changes.is_empty() {
            true => None,
            false => match self.log.append(&changes, must_sync) {
                Ok(seq) => Some(seq),
                Err(e) => {
                    // The changes are in memory but not in the log: the log stopped.
                    self.wake_if_stopped(&tables);
                    return Err(e);
                }
            },
        };
        let seen = self.log.wanted();
        let purged = self.housekeeping(&mut tables, now);
        self.wake_if_stopped(&tables);
        drop(tables);
        signal(&changes, &self.work, &self.finished);
        if !purged.is_empty() {
            // Waiters on purged invocations must wake to learn they are gone.
            signal(&purged, &self.work, &self.finished);
        }
        let waited = if must_sync {
            self.log.wait_durable(seen)
        } else if let Some(seq) = appended {
            // A claim or renewal: handed to the OS before it is acknowledged, so a killed
            // process's leases (and attempt numbers) are still there when the store reopens.
            self.log.wait_written(seq)
        } else {
            Ok(())
        };
        self.stop_on_failure(waited)?;
        result
    }

    /// Runs a read and waits until the state it saw is durable.
    fn read<T>(&self, op: impl FnOnce(&Tables) -> T) -> Result<T, StoreError> {
        let tables = self.lock_checked()?;
        let value = op(&tables);
        let seen = self.log.wanted();
        drop(tables);
        self.stop_on_failure(self.log.wait_durable(seen))?;
        Ok(value)
    }

    /// Retention and compaction, with the `Tables` lock held; returns the retention purge's
    /// changes, for the caller to signal once the lock is released. Failures here do not fail the
    /// operation that triggered them: they are logged, and a broken log fails the next one.
    fn housekeeping(&self, tables: &mut Tables, now: Timestamp) -> Vec<Change> {
        let mut purged = Vec::new();
        if let Some(retention) = self.options.retention {
            // A pass over every workflow starts when due, and each operation takes the next
            // batch of it: no operation pays for more than one batch.
            let mut backlog = self
                .retention_backlog
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if backlog.is_empty() && now.0 >= self.next_retention.load(Ordering::Relaxed) {
                let every =
                    (retention / 4).clamp(Duration::from_millis(10), Duration::from_secs(60));
                self.next_retention
                    .store(now.saturating_add(every).0, Ordering::Relaxed);
                *backlog = tables.purge_candidates();
            }
            let keep = backlog.len().saturating_sub(PURGE_BATCH);
            let batch = backlog.split_off(keep);
            drop(backlog);
            let cutoff = Timestamp(now.0.saturating_sub(retention.as_millis() as u64));
            let n = tables.purge_trees(&mut purged, &batch, cutoff);
            if n > 0 {
                tracing::debug!(workflows = n, "retention purged finished workflows");
                if let Err(e) = self.log.append(&purged, true) {
                    tracing::error!(error = %e, "could not log a retention purge");
                    return purged;
                }
            }
        }
        let size = self.log.size();
        let live = self.live_bytes.load(Ordering::Relaxed);
        if size > self.options.compact_min_bytes
            && size > live.saturating_mul(self.options.compact_ratio)
        {
            self.compact_locked(tables);
        }
        purged
    }

    fn compact_locked(&self, tables: &Tables) {
        match self.log.compact(&tables.snapshot()) {
            Ok(size) => {
                tracing::debug!(bytes = size, "compacted the store log");
                self.live_bytes.store(size, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "compacting the store log failed; it keeps growing until the next attempt"
                );
                // Do not retry on every operation: wait until the log doubles again.
                self.live_bytes.store(self.log.size(), Ordering::Relaxed);
            }
        }
    }
}

impl Drop for FileStore {
    fn drop(&mut self) {
        if let Err(e) = self.log.flush_all() {
            tracing::warn!(error = %e, "could not flush the store log on close");
        }
    }
}

/// Whether a change only takes, extends or drops a lease: a claim's or renewal's new state
/// (running), or an expired lease's invocation queued again (pending). Only such changes may be
/// seen and acknowledged before they are durable; a crash that loses them loses a lease or an
/// attempt number, never an outcome. Anything else (a final state, a parent woken by it) is not.
/// A parent is only ever woken by a final child, so a change list with a parent made pending
/// always holds a final state too.
fn lease_only(change: &Change) -> bool {
    matches!(change, Change::State(_, s) if matches!(s.status, Status::Running | Status::Pending))
}

/// Refuses a request or record of `bytes` over [`limits::MAX_RECORD_BYTES`]. Requests are
/// estimated first (see `commit_bytes`), cheaply, before anything is done; the record an
/// operation writes is then measured exactly ([`check_record`]).
fn check_size(what: &str, bytes: usize) -> Result<(), StoreError> {
    let limit = limits::MAX_RECORD_BYTES;
    if bytes > limit {
        tracing::debug!(what, bytes, "refusing an oversized request");
        return Err(StoreError::TooLarge {
            what: what.to_owned(),
            size: bytes,
            limit,
        });
    }
    Ok(())
}

/// Refuses the record of `changes` when its encoding is over [`limits::MAX_RECORD_BYTES`] (or
/// cannot be encoded): measured exactly, whatever the request looked like.
fn check_record(changes: &[Change]) -> Result<(), StoreError> {
    if changes.is_empty() {
        return Ok(());
    }
    let bytes = wf_core::codec::encoded_len(changes)?;
    check_size("the record of this operation", bytes)
}

fn invocation_bytes(new: &NewInvocation) -> usize {
    new.args.len() + new.task.as_str().len() + 256
}

fn journal_bytes(entry: &JournalEntry) -> usize {
    64 + match &entry.op {
        Op::DataGet { key, value } => key.len() + value.as_ref().map_or(0, Vec::len),
        Op::ChildResult {
            outcome: ChildOutcome::Success(v),
            ..
        } => v.len(),
        Op::ChildResult {
            outcome: ChildOutcome::Failed(f),
            ..
        } => f.message.len(),
        Op::Event { name, payload, .. } => name.len() + payload.len(),
        Op::Patch { id } => id.len(),
        Op::Cancelled { reason } => reason.len(),
        _ => 64,
    }
}

fn commit_bytes(commit: &Commit) -> usize {
    let outcome = match &commit.outcome {
        Outcome::Success(r) => r.len(),
        Outcome::Failed(f)
        | Outcome::Retry { error: f, .. }
        | Outcome::Deferred { error: f, .. } => f.message.len(),
        Outcome::Waiting { on } => on.len() * 16,
        Outcome::Suspended(s) => {
            s.children.len() * 16 + s.event.as_ref().map_or(0, String::len) + 16
        }
        Outcome::Released => 0,
    };
    outcome
        + parts_bytes(&commit.journal, &commit.data, &commit.children)
        + commit.consumed.len() * 8
}

fn progress_bytes(checkpoint: &Checkpoint) -> usize {
    parts_bytes(&checkpoint.journal, &checkpoint.data, &checkpoint.children) + 256
}

fn parts_bytes(
    journal: &[JournalEntry],
    data: &[(String, Vec<u8>)],
    children: &[NewInvocation],
) -> usize {
    journal.iter().map(journal_bytes).sum::<usize>()
        + data
            .iter()
            .map(|(k, v)| k.len() + v.len() + 32)
            .sum::<usize>()
        + children.iter().map(invocation_bytes).sum::<usize>()
}

fn event_bytes(event: &NewEvent) -> usize {
    event.name.len() + event.payload.len() + event.key.as_ref().map_or(0, String::len) + 64
}

impl StoreRead for FileStore {
    fn backend(&self) -> &'static str {
        "file"
    }

    fn app_id(&self) -> Result<Option<String>, StoreError> {
        self.read(|t| t.app_id().map(str::to_owned))
    }

    fn invocation(&self, id: InvocationId) -> Result<InvocationRecord, StoreError> {
        self.read(|t| t.invocation(id))?
    }

    fn invocations(&self, ids: &[InvocationId]) -> Result<Vec<InvocationRecord>, StoreError> {
        self.read(|t| ids.iter().map(|id| t.invocation(*id)).collect())?
    }

    fn journal(&self, id: InvocationId) -> Result<Vec<JournalEntry>, StoreError> {
        self.read(|t| t.journal(id))?
    }

    fn get_data(&self, workflow: InvocationId, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(|t| t.get_data(workflow, key))
    }

    fn data_keys(&self, workflow: InvocationId) -> Result<Vec<String>, StoreError> {
        self.read(|t| t.data_keys(workflow))
    }

    fn workflow_invocations(
        &self,
        workflow: InvocationId,
    ) -> Result<Vec<InvocationId>, StoreError> {
        self.read(|t| t.workflow_invocations(workflow))
    }

    fn workflows(&self) -> Result<Vec<InvocationRecord>, StoreError> {
        self.read(Tables::workflow_roots)
    }

    fn purgeable(&self, finished_before: Timestamp) -> Result<Vec<InvocationId>, StoreError> {
        self.read(|t| t.purgeable(finished_before))
    }

    fn counts(&self) -> Result<StatusCounts, StoreError> {
        self.read(Tables::counts)
    }

    fn wait_final(
        &self,
        id: InvocationId,
        timeout: Duration,
    ) -> Result<Option<InvocationRecord>, StoreError> {
        // Unknown when called or purged while waiting: `InvocationNotFound` either way.
        let found = wait_until(
            self.lock_checked()?,
            &self.finished,
            timeout,
            |t| {
                if let Err(stopped) = self.log.check() {
                    return Some(Err(stopped));
                }
                match t.invocation(id) {
                    // Final, or gone (purged by retention): either way the wait is over once the
                    // state that says so is durable.
                    Ok(r) if r.state.status.is_final() => Some(Ok((Ok(r), self.log.wanted()))),
                    Err(gone) => Some(Ok((Err(gone), self.log.wanted()))),
                    Ok(_) => {
                        self.about_to_block();
                        None
                    }
                }
            },
            |_| None,
        );
        match found {
            Some(Ok((record, seen))) => {
                self.stop_on_failure(self.log.wait_durable(seen))?;
                record.map(Some)
            }
            Some(Err(stopped)) => Err(stopped),
            None => Ok(None),
        }
    }

    fn events(&self, id: InvocationId) -> Result<EventInbox, StoreError> {
        self.read(|t| t.events(id))?
    }

    fn cancel_requests(
        &self,
        ids: &[InvocationId],
    ) -> Result<Vec<(InvocationId, String)>, StoreError> {
        self.read(|t| t.cancel_requests(ids))
    }
}

impl StoreWork for FileStore {
    fn bind_app(&self, app_id: &str) -> Result<(), StoreError> {
        check_size("an app id", app_id.len())?;
        let store = self.dir.display().to_string();
        self.mutate(true, system_now(), |t, out| t.bind_app(out, &store, app_id))
    }

    fn submit(&self, invocation: NewInvocation, now: Timestamp) -> Result<Submitted, StoreError> {
        check_size("a submission", invocation_bytes(&invocation))?;
        self.mutate(true, now, |t, out| t.submit(out, invocation, now))
    }

    fn submit_many(
        &self,
        invocations: Vec<NewInvocation>,
        now: Timestamp,
    ) -> Result<Vec<Submitted>, StoreError> {
        check_size(
            "a batch of submissions",
            invocations.iter().map(invocation_bytes).sum(),
        )?;
        self.mutate(true, now, |t, out| t.submit_many(out, invocations, now))
    }

    fn claim(
        &self,
        worker: &WorkerId,
        tasks: &TaskSet,
        lease_for: Duration,
        now: Timestamp,
    ) -> Result<Option<Claim>, StoreError> {
        self.mutate(false, now, |t, out| {
            t.claim(out, worker, tasks, lease_for, now)
        })
    }

    fn next_due(&self, tasks: &TaskSet) -> Result<Option<Timestamp>, StoreError> {
        Ok(self.lock_checked()?.next_due(tasks))
    }

    fn wait_for_work(&self, tasks: &TaskSet, timeout: Duration) -> Result<bool, StoreError> {
        // `memory::wait_for_claimable`, but a failed log also ends the wait.
        let work = wait_until(
            self.lock_checked()?,
            &self.work,
            timeout,
            |t| {
                let ready = self.log.is_stopped() || t.has_claimable(tasks, system_now());
                if !ready {
                    self.about_to_block();
                }
                ready.then_some(())
            },
            |t| t.next_due(tasks),
        );
        self.log.check()?;
        Ok(work.is_some())
    }

    fn renew(
        &self,
        lease: &Lease,
        lease_for: Duration,
        now: Timestamp,
    ) -> Result<Lease, StoreError> {
        self.mutate(false, now, |t, out| t.renew(out, lease, lease_for, now))
    }

    fn commit(&self, lease: &Lease, commit: Commit, now: Timestamp) -> Result<(), StoreError> {
        check_size("a commit", commit_bytes(&commit))?;
        self.mutate(true, now, |t, out| t.commit(out, lease, commit, now))
    }

    fn checkpoint(
        &self,
        lease: &Lease,
        checkpoint: Checkpoint,
        run: InvocationId,
        lease_for: Duration,
        now: Timestamp,
    ) -> Result<Option<Claim>, StoreError> {
        check_size("a checkpoint", progress_bytes(&checkpoint))?;
        // Durable before the child runs: the journal and data that led to it must survive
        // anything its body does.
        self.mutate(true, now, |t, out| {
            t.checkpoint(out, lease, checkpoint, run, lease_for, now)
        })
        .map(Some)
    }

    fn recover_expired(&self, now: Timestamp) -> Result<Vec<InvocationId>, StoreError> {
        self.mutate(true, now, |t, out| t.recover_expired(out, now))
    }

    fn send_event(
        &self,
        to: InvocationId,
        event: NewEvent,
        now: Timestamp,
    ) -> Result<EventSent, StoreError> {
        check_size("an event", event_bytes(&event))?;
        self.mutate(true, now, |t, out| t.send_event(out, to, event, now))
    }
}

impl StoreAdmin for FileStore {
    fn cancel_tree(
        &self,
        id: InvocationId,
        reason: &str,
        now: Timestamp,
    ) -> Result<CancelReport, StoreError> {
        check_size("a cancellation", reason.len())?;
        self.mutate(true, now, |t, out| t.cancel_tree(out, id, reason, now))
    }

    fn cancel(&self, id: InvocationId, reason: &str, now: Timestamp) -> Result<(), StoreError> {
        check_size("a cancellation", reason.len())?;
        self.mutate(true, now, |t, out| t.cancel(out, id, reason, now))
    }

    fn retry(&self, id: InvocationId, now: Timestamp) -> Result<(), StoreError> {
        self.mutate(true, now, |t, out| t.retry(out, id, now))
    }

    fn purge_finished(&self, finished_before: Timestamp) -> Result<usize, StoreError> {
        // In batches of trees, each logged as one record with the lock held only for that
        // batch: a purge of many workflows never stalls the workers for long.
        let candidates = self.lock_checked()?.purge_candidates();
        let mut removed = 0;
        for batch in candidates.chunks(PURGE_BATCH) {
            let mut tables = self.lock_checked()?;
            let mut changes = Vec::new();
            let n = tables.purge_trees(&mut changes, batch, finished_before);
            if n == 0 {
                continue;
            }
            if let Err(e) = self.log.append(&changes, true) {
                self.wake_if_stopped(&tables);
                return Err(e);
            }
            removed += n;
            drop(tables);
            signal(&changes, &self.work, &self.finished);
        }
        let tables = self.lock_checked()?;
        let seen = self.log.wanted();
        if removed > 0 {
            // Reclaim the space now; a failed compaction leaves the purge in the log, still
            // durable once the wait below returns.
            self.compact_locked(&tables);
        }
        self.wake_if_stopped(&tables);
        drop(tables);
        self.stop_on_failure(self.log.wait_durable(seen))?;
        Ok(removed)
    }
}
