//! The file backend: the embedded, crash-safe default. A directory holding an append-only,
//! checksummed, fsync'd log of state changes; the state itself lives in memory ([`Tables`], the
//! same state machine as the memory backend) and is rebuilt from the log on open.
//!
//! # Layout
//!
//! ```text
//! <dir>/wf.log          header + records, see `format`; held with an OS file lock by the
//!                       owning process (see `lock`)
//! <dir>/LOCK            the owner's process id, for messages (locked too, see `lock`)
//! <dir>/wf.log.compact  a compaction in progress (removed on open if a crash left it)
//! <dir>/wf.log.cut-N    bytes an explicit repair cut off at offset N (see `recovery`)
//! <dir>/wf.synced       how far the log is known durable, for readers in other processes
//!                       (see `watermark`)
//! ```
//!
//! The directory is created `0700` and its files `0600` ([`FileOptions::group_access`]: `0750`
//! and `0640`), compactions included; opening a store whose directory or log allow more logs a
//! warning naming the `chmod` that fixes it.
//!
//! Modules: `format` (framing and checksums), `recovery` (open, replay, cut a torn tail), `log`
//! (appending with group commit, replacing the file on compaction), `lock` (ownership), `fs`
//! (the [`fs::FileSystem`] every file operation goes through), `fsio` (helpers on it),
//! `options`, `reads`, `snapshot` (read-only copies for inspectors), `watermark` (how far the
//! log is synced, published for them), `marks` (which record last changed an invocation),
//! `work` (the storage contract's operations), `testing` (feature `testing`: a counting file
//! system).
//!
//! # Durability and visibility
//!
//! Each mutating operation runs under the `Tables` mutex: it validates, applies its changes in
//! memory and appends them as **one record** to the log's batch, in that order, so the log's
//! order is the order of the changes. It then releases the mutex and waits (see below).
//! Concurrent operations share one `fdatasync` (group commit, see `log`); the mutex is never
//! held during an fsync, except while a compaction replaces the file. ([`FileOptions::sync`]
//! `false` skips every fsync, for tests of logic only: then nothing below survives a power
//! loss, only a crash of the process.)
//!
//! A change is therefore visible in memory a moment before it is durable. It never **escapes**
//! before it is durable: every operation that hands out state (reads, `wait_final`, claims and
//! every mutation) notes the log position of the last change it saw that is not lease-only and
//! waits until that is synced before it returns (sharing the group commit), so nothing a caller
//! is handed (a result, a record, a claimed child, an error such as `Conflict` or `LeaseLost`)
//! rests on a change a crash or power loss could take back. Claims and `wait_final`, which hand
//! out one invocation, note the last change *of that invocation* instead (see `marks`): its
//! causes come before it in the log, so they are durable with it. (`next_due` and
//! `wait_for_work` hand out nothing but a hint of when to claim.) Exactly what is durable when an
//! operation returns:
//!
//! - **Submissions, commits, checkpoints, events, cancellations, retries, expiry recovery and
//!   purges**: their own record and everything before it are synced.
//! - **Pipelined commits** ([`StoreWork::commit_pipelined`], a worker pool's commits) with
//!   [`FileOptions::pipelined_commits`] on (the default; off, they are plain commits) that
//!   succeed: nothing; their record joins the batch, and the next flush, led by whoever waits
//!   for what it changed (or by the worker's next `wait_for_work`, which makes everything
//!   durable before it idles, or, in an owner with nothing else to do, by the idle sync at most
//!   [`FileOptions::idle_sync`] after it was appended), syncs it. Until then a crash takes the commit back as if the
//!   worker had died before committing: the invocation is still running under a lease that
//!   expires, and runs again. A refused one returns once what it saw is synced.
//! - **Claims and renewals** whose changes only take or extend a lease (see `lease_only`):
//!   a claim, every record that changed the invocation it hands out; a renewal, everything before
//!   it but other claims' and renewals' records, which may be unsynced too;
//!   their own record is written to the OS (one
//!   `write`, no fsync), so it survives `kill -9` (after a restart the dead worker's lease is
//!   honoured until it expires, and the attempt number keeps counting), but **a power loss can
//!   undo it**: the invocation is then pending again with its previous attempt count and runs
//!   again, which the at-least-once contract of tasks allows anyway. A power loss can undo
//!   nothing else that was acknowledged: whatever a claimed task produces becomes durable only
//!   through its commit, which is logged after the claim and synced with it. A claim whose
//!   recovery of expired leases did more (failed a crash-looping invocation, woke its parent)
//!   is synced like a commit.
//! - A clean drop of the store, and [`FileStore::flush`], sync everything.
//!
//! **Idle sync.** Whatever is left unsynced (pipelined commits, claims, renewals) is synced by
//! the store's idle-sync thread once it has waited [`FileOptions::idle_sync`] (default
//! [`DEFAULT_IDLE_SYNC`], 50 ms) with nothing else syncing it (`log`'s `run_idle_sync`), so a
//! snapshot in another process, which shows only what is synced, never lags an idle owner by
//! more than about that plus one fsync. The thread is parked while everything is durable, is
//! woken by the first append after that, ends when the store is dropped (which joins it before
//! its closing flush), and if its flush fails, wakes the blocked waiters to the failure as an
//! operation would.
//!
//! So the unsynced part of the log is the records appended since the last fsync: the batch being
//! flushed and any claims and renewals written without an fsync. The writer keeps it under
//! `format::UNSYNCED_LIMIT` bytes (512 KiB; a single larger record alone) by syncing first when
//! a write would pass it, and recovery cuts a damaged end silently only within that bound (a
//! torn tail); more is [`StoreError::Corrupt`] until an explicit repair
//! ([`FileOptions::repair`], `wf repair`). A power loss that persists later pages of the
//! unsynced part but not earlier ones (file systems that do not order data writes can) leaves a
//! valid record after a bad one: an **unsynced hole**, which recovery tells from damage by the
//! watermark every record carries (how far the log was synced when it was appended, see
//! `format`) and cuts like a torn tail; damage that a later record proves was durable is still
//! `Corrupt`. A read-only snapshot in another process shows only what the owner published as
//! synced (`watermark`), so it shows nothing a power loss could take back either.
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
//! [`FileOptions::compact_ratio`] times the size of the last compacted log (the live state; on
//! open, the size a compaction would give, measured by encoding the state once, so a restart
//! does not rewrite a compact log on its first change), the
//! operation that noticed writes [`Tables::snapshot`] to a new file, syncs it, renames it over the
//! log and syncs the directory, holding the `Tables` mutex meanwhile (so compaction pauses the
//! store for about one snapshot write; amortised it costs a constant per appended byte).
//! [`StoreAdmin::purge_finished`] works in batches of [`crate::tables::PURGE_BATCH`] workflows,
//! releasing the lock between them, then compacts at once. Retention is on by default
//! ([`DEFAULT_RETENTION`], 24 hours; [`FileOptions::keep_everything`] turns it off): finished
//! workflow trees older than it (by the operations' clock) are purged as operations go, each
//! operation looking at one batch, so memory and the log stay bounded under steady load.

pub(crate) mod format;
pub mod fs;
mod fsio;
mod lock;
mod log;
mod marks;
mod options;
mod reads;
pub(crate) mod recovery;
mod sizes;
mod snapshot;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
#[cfg(test)]
mod tests;
mod watermark;
mod work;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use wf_core::{InvocationId, Status, Timestamp};

use crate::error::StoreError;
use crate::memory::{Signal, signal};
#[cfg(doc)]
use crate::store::{StoreAdmin, StoreWork};
use crate::tables::{Change, PURGE_BATCH, Tables};

use self::fsio::{Disk, io_err};
use self::log::Log;
use self::marks::Marks;
pub use self::options::{DEFAULT_IDLE_SYNC, DEFAULT_RETENTION, FileOptions, FileStats};
pub use self::recovery::TornTail;
use self::sizes::check_record;
pub use self::snapshot::FileSnapshot;

/// The log file's name inside the store directory.
const LOG_FILE: &str = "wf.log";
/// A compaction's temporary file.
const COMPACT_FILE: &str = "wf.log.compact";

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
    tables: Arc<Mutex<Tables>>,
    /// Signalled when something may have become claimable.
    work: Arc<Signal>,
    /// Signalled when an invocation became final.
    finished: Arc<Signal>,
    log: Arc<Log>,
    /// The idle syncer's thread (see [`FileOptions::idle_sync`]), ended and joined on drop.
    idle_sync: Option<std::thread::JoinHandle<()>>,
    /// The last record that changed each invocation, for operations that hand out one.
    marks: Marks,
    /// The log's size right after the last compaction: the live state's size.
    live_bytes: AtomicU64,
    /// The operation clock (ms) at which retention next starts a pass over the workflows.
    next_retention: AtomicU64,
    /// The workflows the current retention pass has still to look at (taken from the back).
    retention_backlog: Mutex<Vec<InvocationId>>,
    /// What opening cut off the log's end, if anything.
    torn_tail: Option<TornTail>,
    /// `LOCK`, held locked (see `lock`).
    _owner: Mutex<Box<dyn fs::FsFile>>,
    /// How many times a waiter was about to block, for tests that must fail the log while a
    /// thread is blocked.
    #[cfg(test)]
    blocking: AtomicU64,
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
    /// Creates a missing directory `0700` and files `0600` (see [`FileOptions::group_access`])
    /// and warns when an existing store allows more. Takes the store's lock
    /// ([`StoreError::StoreLocked`], naming the owner's pid, if another process or another open
    /// store holds it), replays the log, and cuts a torn tail left by a crash, or an unsynced
    /// hole a power loss left ([`TornTail::hole`]), with a warning ([`FileStore::torn_tail`]
    /// says what was cut). Rewrites a log of the previous format (2) in this one. Fails with
    /// [`StoreError::Corrupt`] on damage neither explains (in the middle of the log, or more
    /// bytes at its end than the writer leaves unsynced; [`FileOptions::repair`] cuts those on
    /// request), [`StoreError::NewerFormat`] on a log written by a newer `wf`, or
    /// [`StoreError::OlderFormat`] on one written in an older, pre-release format. A path that
    /// exists but is not a directory is [`StoreError::NotADirectory`].
    ///
    /// # Errors
    /// Those above, and [`StoreError::Io`] when the directory or log cannot be read or written.
    pub fn open_with(dir: impl AsRef<Path>, options: FileOptions) -> Result<Self, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        let (dir_mode, file_mode) = options.modes();
        let disk = Disk {
            fs: Arc::clone(&options.fs),
            log: dir.join(LOG_FILE),
            tmp: dir.join(COMPACT_FILE),
            dir,
            sync: options.sync,
            file_mode,
        };
        let dir = &disk.dir;
        match disk.fs.metadata(dir).map_err(io_err(dir))? {
            Some(m) if !m.is_dir => return Err(StoreError::NotADirectory { path: dir.clone() }),
            Some(_) => {}
            None => disk.fs.create_dir_all(dir, dir_mode).map_err(io_err(dir))?,
        }
        // Nothing in the directory is touched before the lock is held.
        let owned = lock::lock_store(&disk)?;
        let opened = recovery::open_log(&disk, owned.log, options.repair)?;
        for (path, mode) in fsio::too_open(&disk, dir_mode, file_mode) {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{mode:o}"),
                "the store's files are readable by other users (mode {mode:o}): run `chmod {} {}` \
                 (or FileOptions::group_access(true) if the owner's group must read it)",
                if path == disk.log { "600" } else { "700" },
                path.display()
            );
        }
        tracing::debug!(
            path = %disk.log.display(),
            records = opened.records,
            bytes = opened.size,
            "opened file store"
        );
        // The live state's real size, so the first change after a restart does not rewrite a
        // log that is compact already (and a bloated one is compacted as it should be).
        let mut live = log::compacted_len(&opened.tables.snapshot(), &disk.log)?;
        let log = Log::new(&disk, opened.file, opened.size)?;
        if opened.version < format::FORMAT_VERSION {
            // An older format's records carry no watermark (see `format`): rewrite the log in
            // this one before appending to it, so recovery can tell an unsynced hole from damage.
            live = log.compact(&opened.tables.snapshot())?;
            tracing::info!(
                path = %disk.log.display(),
                from = opened.version,
                to = format::FORMAT_VERSION,
                "rewrote the store log in the current format"
            );
        }
        let mut store = Self {
            dir: disk.dir.clone(),
            options,
            tables: Arc::new(Mutex::new(opened.tables)),
            work: Arc::default(),
            finished: Arc::default(),
            log: Arc::new(log),
            idle_sync: None,
            marks: Marks::default(),
            live_bytes: AtomicU64::new(live),
            next_retention: AtomicU64::new(0),
            retention_backlog: Mutex::new(Vec::new()),
            torn_tail: opened.cut,
            _owner: Mutex::new(owned.owner),
            #[cfg(test)]
            blocking: AtomicU64::new(0),
        };
        if let Some(delay) = store.options.idle_sync {
            store.idle_sync = Some(store.start_idle_sync(delay)?);
        }
        Ok(store)
    }

    /// Starts the idle syncer (see [`FileOptions::idle_sync`]): a thread that syncs what stayed
    /// unsynced for `delay` and, if that fails, wakes the blocked waiters as an operation would.
    fn start_idle_sync(&self, delay: Duration) -> Result<std::thread::JoinHandle<()>, StoreError> {
        let log = Arc::clone(&self.log);
        let tables = Arc::clone(&self.tables);
        let (work, finished) = (Arc::clone(&self.work), Arc::clone(&self.finished));
        std::thread::Builder::new()
            .name("wf-idle-sync".to_owned())
            .spawn(move || {
                if let Err(e) = log.run_idle_sync(delay) {
                    tracing::error!(error = %e, "the store's idle sync failed; the store stopped");
                    // As `wake_if_stopped`: under the lock, so no waiter misses it.
                    let _tables = tables.lock().unwrap_or_else(|p| p.into_inner());
                    finished.notify_all();
                    work.notify_all();
                }
            })
            .map_err(io_err(&self.dir))
    }

    /// Opens the store in `dir` with [`FileOptions::repair`] and closes it again: cuts a damaged
    /// end of its log that opening refuses with [`StoreError::Corrupt`], saving the cut bytes
    /// next to the log. Returns what was cut (`None` if the log was whole).
    ///
    /// # Errors
    /// As [`FileStore::open_with`]; damage a repair cannot mend (a whole record this build
    /// cannot decode, a bad header) is still [`StoreError::Corrupt`].
    pub fn repair(dir: impl AsRef<Path>) -> Result<Option<TornTail>, StoreError> {
        let store = Self::open_with(dir, FileOptions::default().repair(true))?;
        Ok(store.torn_tail.clone())
    }

    /// What opening cut off the end of the log: a torn tail (an append a crash interrupted,
    /// never acknowledged) or, with [`FileOptions::repair`], damage. `None` if the log was whole.
    pub fn torn_tail(&self) -> Option<&TornTail> {
        self.torn_tail.as_ref()
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

    /// Runs a mutating operation, logs its changes as one record, does housekeeping and waits
    /// until everything it saw is durable, and its own record too unless `must_sync` is false
    /// (claims and renewals) and every change is [`lease_only`]: such a record need only be
    /// written (see the module docs).
    fn mutate<T>(
        &self,
        must_sync: bool,
        now: Timestamp,
        op: impl FnOnce(&mut Tables, &mut Vec<Change>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let staged = self.stage(must_sync, now, op)?;
        self.settle(staged)
    }

    /// The first half of [`Self::mutate`]: applies and logs the operation, without waiting.
    fn stage<T>(
        &self,
        must_sync: bool,
        now: Timestamp,
        op: impl FnOnce(&mut Tables, &mut Vec<Change>) -> Result<T, StoreError>,
    ) -> Result<Staged<T>, StoreError> {
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
                Ok(seq) => {
                    if must_sync {
                        self.marks.note(&changes, seq, self.log.durable());
                    }
                    Some(seq)
                }
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
        Ok(Staged {
            result,
            seen,
            own: appended.filter(|_| !must_sync),
            synced: must_sync && appended.is_some(),
        })
    }

    /// The second half of [`Self::mutate`]: waits until what the operation saw is durable (and
    /// its own record written), then hands out its result.
    fn settle<T>(&self, staged: Staged<T>) -> Result<T, StoreError> {
        // Everything the operation saw, its own record included unless it is lease-only: a
        // claim may return a child whose parent's commit is not yet synced, and must not hand
        // it out before it is (durable before visible).
        let mut waited = self.log.wait_durable(staged.seen);
        if let (Ok(()), Some(seq)) = (&waited, staged.own) {
            // A claim or renewal: handed to the OS before it is acknowledged, so a killed
            // process's leases (and attempt numbers) are still there when the store reopens.
            waited = self.log.wait_written(seq);
        }
        self.stop_on_failure(waited)?;
        staged.result
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

/// A mutation applied and logged, not yet waited for (see [`FileStore::stage`]).
struct Staged<T> {
    result: Result<T, StoreError>,
    /// The last record it saw that must be durable before it returns.
    seen: u64,
    /// Its own record, when that need only be written (lease-only).
    own: Option<u64>,
    /// Whether its own record must be durable before it returns.
    synced: bool,
}

impl Drop for FileStore {
    fn drop(&mut self) {
        if let Some(syncer) = self.idle_sync.take() {
            self.log.close();
            if syncer.join().is_err() {
                tracing::warn!("the store's idle sync thread panicked");
            }
        }
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
