//! The backends a workload runs on, and how to build a fresh app on each.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use wf_runtime::App;
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

    /// Why this backend's workloads cannot run in this build, if they cannot.
    pub(crate) fn unavailable(self) -> Option<&'static str> {
        match self {
            Backend::Memory | Backend::File => None,
            Backend::Redis => Some(
                "the Redis backend is not part of this build of wf yet (feature `redis`); its \
                 floors are measured above, its workloads start once it lands",
            ),
        }
    }
}

/// Where a workload's store lives: memory, or a directory for the file store.
#[derive(Debug, Clone)]
pub(crate) struct StoreAt {
    pub(crate) backend: Backend,
    pub(crate) dir: Option<PathBuf>,
}

impl StoreAt {
    /// The store of `backend` under `dir` (a fresh directory for the file store).
    pub(crate) fn new(backend: Backend, dir: &Path) -> Self {
        Self {
            backend,
            dir: (backend == Backend::File).then(|| dir.to_path_buf()),
        }
    }

    /// Opens the store (fsync on for the file store, as in production).
    pub(crate) fn open(&self) -> Result<Arc<dyn Store>, String> {
        match (self.backend, &self.dir) {
            (Backend::Memory, _) => Ok(Arc::new(wf_store::MemoryStore::new())),
            (Backend::File, Some(dir)) => FileStore::open_with(dir, FileOptions::default())
                .map(|s| Arc::new(s) as Arc<dyn Store>)
                .map_err(|e| format!("cannot open a file store in {}: {e}", dir.display())),
            (backend, _) => Err(format!(
                "{}: {}",
                backend.name(),
                backend.unavailable().unwrap_or("no store directory")
            )),
        }
    }

    /// A fresh app on this store with the given lease, running children inline or not.
    pub(crate) fn app(&self, lease: Duration, inline: bool) -> Result<App, String> {
        app_on(self.open()?, lease, inline)
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
