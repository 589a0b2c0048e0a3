//! The backends a workload runs on, and how to build a fresh app on each.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use wf_runtime::App;
use wf_store::file::FileStats;
use wf_store::{FileOptions, FileStore, Store};

/// A backend of the bench.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Memory,
    File,
    Redis,
}

impl Backend {
    /// Every backend, in table order.
    pub(crate) const ALL: [Backend; 3] = [Backend::Memory, Backend::File, Backend::Redis];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::File => "file",
            Backend::Redis => "redis",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Vec<Backend>> {
        match s {
            "all" => Some(Self::ALL.to_vec()),
            _ => Self::ALL
                .into_iter()
                .find(|b| b.name() == s)
                .map(|b| vec![b]),
        }
    }

    /// Why this backend's workloads cannot run in this run, if they cannot.
    pub(crate) fn unavailable(self, redis: Option<&str>) -> Option<&'static str> {
        match (self, redis) {
            (Backend::Redis, None) => Some("no redis-server on PATH and no --redis URL"),
            _ => None,
        }
    }
}

/// Where a workload's store lives: memory, a directory for the file store, a Redis URL with its
/// own namespace.
#[derive(Debug, Clone)]
pub(crate) struct StoreAt {
    pub(crate) backend: Backend,
    pub(crate) dir: Option<PathBuf>,
    /// The Redis store's URL, namespace included.
    pub(crate) redis: Option<String>,
}

impl StoreAt {
    /// A fresh store of `backend`: under `dir` for the file store, in a new namespace of the
    /// server at `redis` for Redis.
    pub(crate) fn new(backend: Backend, dir: &Path, redis: Option<&str>) -> Self {
        let redis = match (backend, redis) {
            (Backend::Redis, Some(base)) => {
                let sep = if base.contains('?') { '&' } else { '?' };
                Some(format!(
                    "{base}{sep}ns={}",
                    wf_store::redis::testing::unique_namespace("bench")
                ))
            }
            _ => None,
        };
        Self::at(backend, dir, redis)
    }

    /// The store of `backend` at exactly `dir` or the Redis URL `redis` (a child process opening
    /// its parent's store).
    pub(crate) fn at(backend: Backend, dir: &Path, redis: Option<String>) -> Self {
        Self {
            backend,
            dir: (backend == Backend::File).then(|| dir.to_path_buf()),
            redis,
        }
    }

    /// Opens the store (fsync on for the file store, as in production).
    pub(crate) fn open(&self) -> Result<Arc<dyn Store>, String> {
        match (self.backend, &self.dir, &self.redis) {
            (Backend::Memory, _, _) => Ok(Arc::new(wf_store::MemoryStore::new())),
            (Backend::File, Some(dir), _) => FileStore::open_with(dir, file_options())
                .map(|s| Arc::new(s) as Arc<dyn Store>)
                .map_err(|e| format!("cannot open a file store in {}: {e}", dir.display())),
            (Backend::Redis, _, Some(url)) => wf_store::redis::RedisStore::open(url)
                .map(|s| Arc::new(s) as Arc<dyn Store>)
                .map_err(|e| format!("cannot open a Redis store at {url}: {e}")),
            (backend, _, _) => Err(format!("{}: no store location", backend.name())),
        }
    }

    /// A fresh app on this store with the given lease, running children inline or not.
    pub(crate) fn app(&self, lease: Duration, inline: bool) -> Result<App, String> {
        app_on(self.open()?, lease, inline)
    }

    /// As [`StoreAt::app`], with a counter of the fsyncs the file store issues (none on the other
    /// backends): the deterministic cost figure beside a workload's rate.
    pub(crate) fn app_counting(
        &self,
        lease: Duration,
        inline: bool,
    ) -> Result<(App, Fsyncs), String> {
        match (self.backend, &self.dir) {
            (Backend::File, Some(dir)) => {
                let store = FileStore::open_with(dir, file_options())
                    .map(Arc::new)
                    .map_err(|e| format!("cannot open a file store in {}: {e}", dir.display()))?;
                let app = app_on(store.clone() as Arc<dyn Store>, lease, inline)?;
                Ok((app, Fsyncs(Some(store))))
            }
            _ => Ok((self.app(lease, inline)?, Fsyncs(None))),
        }
    }
}

/// Counts a file store's fsyncs (`FileStats::flushes`); empty on the other backends.
#[derive(Debug, Clone)]
pub(crate) struct Fsyncs(Option<Arc<FileStore>>);

impl Fsyncs {
    /// The fsyncs so far, on a file store.
    pub(crate) fn now(&self) -> Option<u64> {
        self.0.as_ref().map(|s| s.stats().flushes)
    }

    /// The store's counters so far, on a file store: a reading for [`Fsyncs::per`].
    pub(crate) fn stats(&self) -> Option<FileStats> {
        self.0.as_ref().map(|s| s.stats())
    }

    /// The fsyncs, records and log bytes since `before` (a reading of [`Fsyncs::stats`]), per
    /// `n` units of work, as a note for a row's details (empty off the file store). The bytes
    /// are left out when a compaction ran meanwhile (it shrinks the log).
    pub(crate) fn per(&self, before: Option<FileStats>, n: u64, unit: &str) -> String {
        match (before, self.stats()) {
            (Some(b), Some(a)) => {
                let n = n.max(1) as f64;
                let fsyncs = a.flushes - b.flushes;
                let records = a.records - b.records;
                let bytes = if a.compactions == b.compactions {
                    format!(
                        ", {:.0} bytes",
                        a.log_bytes.saturating_sub(b.log_bytes) as f64 / n
                    )
                } else {
                    String::new()
                };
                format!(
                    "; {fsyncs} fsyncs, {:.3} per {unit}; {:.1} records{bytes} per {unit}, {:.1} records per fsync",
                    fsyncs as f64 / n,
                    records as f64 / n,
                    records as f64 / fsyncs.max(1) as f64
                )
            }
            _ => String::new(),
        }
    }
}

/// An app of the bench on `store`, with the given lease, running children inline or not.
pub(crate) fn app_on(store: Arc<dyn Store>, lease: Duration, inline: bool) -> Result<App, String> {
    let backend = store.backend();
    App::builder()
        .app_id("wf-bench")
        .store(store)
        .lease_duration(lease)
        .inline_children(inline)
        .build()
        .map_err(|e| format!("cannot build an app on {backend}: {e}"))
}

/// The file store's options for a bench run: production defaults (pipelined commits on), without
/// them (`FileOptions::pipelined_commits(false)`) when `WF_BENCH_PIPELINED=0` is set.
fn file_options() -> FileOptions {
    let pipelined = std::env::var("WF_BENCH_PIPELINED").map_or(true, |v| v != "0");
    FileOptions::default().pipelined_commits(pipelined)
}
