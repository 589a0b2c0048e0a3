//! The settings and counters of a [`FileStore`].

use std::sync::Arc;
use std::time::Duration;

#[cfg(doc)]
use super::FileStore;
#[cfg(doc)]
use super::fs;
use super::fs::{FileSystem, OsFileSystem};
#[cfg(doc)]
use super::testing;
#[cfg(doc)]
use crate::{StoreAdmin, StoreError};

/// How long a file store keeps a finished workflow tree by default: 24 hours (see
/// [`FileOptions::retention`]).
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// How long a record may stay unsynced in an owner that has nothing else to do, by default:
/// 50 ms (see [`FileOptions::idle_sync`]).
pub const DEFAULT_IDLE_SYNC: Duration = Duration::from_millis(50);

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
    pub(super) sync: bool,
    pub(super) retention: Option<Duration>,
    pub(super) compact_min_bytes: u64,
    pub(super) compact_ratio: u64,
    group_access: bool,
    pub(super) repair: bool,
    pub(super) pipelined: bool,
    pub(super) idle_sync: Option<Duration>,
    pub(super) fs: Arc<dyn FileSystem>,
}

impl Default for FileOptions {
    fn default() -> Self {
        Self {
            sync: true,
            retention: Some(DEFAULT_RETENTION),
            compact_min_bytes: 8 << 20,
            compact_ratio: 2,
            group_access: false,
            repair: false,
            pipelined: true,
            idle_sync: Some(DEFAULT_IDLE_SYNC),
            fs: Arc::new(OsFileSystem),
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

    /// Lets the store's group read it (default `false`: private). A store creates its directory
    /// (and any missing parents) with permission bits `0700` and its files `0600` (less the
    /// umask), compactions included,
    /// and warns on open when the directory or log allow more; with group access, `0750` and
    /// `0640`, for deployments where an inspector runs as another user of the owner's group.
    #[must_use]
    pub fn group_access(mut self, group: bool) -> Self {
        self.group_access = group;
        self
    }

    /// Lets a worker's commit join the next group commit instead of waiting for its own fsync
    /// (default `true`; `false`: every commit is durable before the worker goes on).
    ///
    /// With `true`, [`crate::StoreWork::commit_pipelined`] (a worker pool's commits) returns once
    /// the commit is applied and queued; nobody is handed its outcome (a waiter, a parent's
    /// claim, a read, a read-only snapshot from another process) before the fsync that covers it,
    /// and a crash before that fsync takes the commit back as if the worker had died mid-body
    /// (the task runs again once its lease expires). A burst of trivial tasks then costs a few
    /// thousandths of an fsync per task instead of about one (docs/performance.md). Commits a
    /// caller acts on (children run inline, [`crate::StoreWork::commit`]) are durable when they
    /// return either way.
    ///
    /// A power loss on a disk that writes unsynced data out of order can keep a later pipelined
    /// record and lose an earlier one; every record carries how far the log was synced when it
    /// was appended, so the next open tells that hole (cut like a torn tail, see
    /// [`crate::TornTail::hole`]) from damage ([`StoreError::Corrupt`]). Turn it off where a
    /// finished task must never run again after a power loss, even one nobody saw finish.
    #[must_use]
    pub fn pipelined_commits(mut self, pipelined: bool) -> Self {
        self.pipelined = pipelined;
        self
    }

    /// The longest a record stays unsynced when nothing else syncs it (default
    /// [`DEFAULT_IDLE_SYNC`], 50 ms; `None`: only operations sync).
    ///
    /// Pipelined commits (see [`FileOptions::pipelined_commits`]), claims and renewals return
    /// before their fsync; normally the next operation that waits for durability (a submit, a
    /// read, a worker about to idle) syncs them. An owner with nothing else to do (after
    /// `App::run_until_idle` returns, between a test's steps) would leave them unsynced, and a
    /// read-only snapshot in another process (`wf show`, the web monitor,
    /// [`FileStore::snapshot`]) shows only what the owner has synced. So the store keeps one
    /// background thread, parked while everything is synced and stopped when the store is
    /// dropped: once a record has waited `delay` unsynced (measured from when it was appended,
    /// or from the start of the last sync that did not cover it), it syncs everything appended
    /// so far, or waits for the sync under way and then does. Another process's snapshot
    /// therefore shows every acknowledged change at most about `delay` plus one fsync after it
    /// was made. A busy owner syncs sooner anyway, so this costs at most one extra fsync per
    /// `delay`. `Some(Duration::ZERO)` syncs as soon as the thread sees something unsynced.
    ///
    /// `None` starts no thread: tests that count fsyncs or need records left unsynced, and the
    /// deterministic simulator, whose single thread stands in for the delay itself
    /// ([`FileStore::flush`] where the owner idles).
    #[must_use]
    pub fn idle_sync(mut self, delay: Option<Duration>) -> Self {
        self.idle_sync = delay;
        self
    }

    /// The idle sync delay in force (see [`FileOptions::idle_sync`]).
    pub fn idle_sync_delay(&self) -> Option<Duration> {
        self.idle_sync
    }

    /// Repairs a damaged log on open (default `false`). Normally only a torn tail (what one
    /// interrupted write can leave) is cut, and anything more is [`StoreError::Corrupt`]. With
    /// `repair`, everything from the first unreadable record to the end is cut instead, after
    /// being saved to `wf.log.cut-<offset>` next to the log; acknowledged changes among it are
    /// lost from the store. [`FileStore::torn_tail`] reports what was cut. For an operator who
    /// read the `Corrupt` error (the `wf repair` command does this), never as a default.
    #[must_use]
    pub fn repair(mut self, repair: bool) -> Self {
        self.repair = repair;
        self
    }

    /// The file system the store works through (default: the operating system's,
    /// [`fs::OsFileSystem`]). For tests: [`testing::CountingFs`] (feature `testing`) records
    /// every write, fsync and rename, so a test can check what is durable when.
    #[must_use]
    pub fn file_system(mut self, fs: Arc<dyn FileSystem>) -> Self {
        self.fs = fs;
        self
    }

    /// Permission bits of the store's directory and files.
    pub(super) fn modes(&self) -> (u32, u32) {
        if self.group_access {
            (0o750, 0o640)
        } else {
            (0o700, 0o600)
        }
    }
}

/// Counters of a [`FileStore`], for tests, benchmarks and monitoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileStats {
    /// Records appended since open (one per mutating operation that changed something).
    pub records: u64,
    /// Fsyncs of the log: one per durable batch, plus one whenever claims and renewals written
    /// without one have piled up to the unsynced limit (see the module docs); `records /
    /// flushes` is the group-commit factor.
    pub flushes: u64,
    /// Compactions since open.
    pub compactions: u64,
    /// The log's current size in bytes, including records not yet written.
    pub log_bytes: u64,
}
