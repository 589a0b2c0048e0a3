//! Opening the store, as the `wf` commands do: reads from a lock-free snapshot of a file store
//! (taken per request, so workers may run) or from Redis; actions on a free file store opened
//! for the action only, on an owned one through its owner's control socket, on Redis directly.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use wf_store::{FileSnapshot, FileStore, RedisStore, Store, StoreAdmin, StoreError, StoreRead};

use crate::StoreSource;
use crate::error::MonitorError;

/// The store the monitor serves.
pub(crate) enum Backend {
    /// The directory, and the last snapshot with the log's stamp when it was taken.
    File(PathBuf, Mutex<Option<(Stamp, Arc<FileSnapshot>)>>),
    /// The URL: a connection is opened per request (the monitor serves a few people).
    Redis(String),
}

impl Backend {
    /// Checks that the store exists (opening a mistyped directory would create an empty one)
    /// and connects to Redis once.
    pub(crate) fn open(source: &StoreSource) -> Result<Self, MonitorError> {
        match source {
            StoreSource::File(dir) => {
                FileStore::snapshot(dir).map_err(|e| missing(dir, e))?;
                Ok(Backend::File(dir.clone(), Mutex::new(None)))
            }
            StoreSource::Redis(url) => {
                let store = RedisStore::open_read(url)?;
                if !store.namespace_exists()? {
                    return Err(MonitorError::BadRequest(format!(
                        "no wf store at {url}: its namespace '{}' holds nothing (give the URL \
                         your workers use, with the same ns= option)",
                        store.url().namespace
                    )));
                }
                Ok(Backend::Redis(url.clone()))
            }
        }
    }

    /// What the pages read: a snapshot of a file store (the last one again while the log is
    /// unchanged, so a page polling an idle store costs no log read), or the Redis store.
    pub(crate) fn read(&self) -> Result<Arc<dyn StoreRead>, MonitorError> {
        let (dir, cache) = match self {
            Backend::File(dir, cache) => (dir, cache),
            Backend::Redis(url) => return Ok(Arc::new(RedisStore::open_read(url)?)),
        };
        let stamp = Stamp::of(dir);
        if let (Some(now), Ok(cached)) = (&stamp, cache.lock())
            && let Some((then, snapshot)) = cached.as_ref()
            && then == now
        {
            return Ok(Arc::clone(snapshot) as Arc<dyn StoreRead>);
        }
        let snapshot = Arc::new(FileStore::snapshot(dir).map_err(|e| missing(dir, e))?);
        if let (Some(stamp), Ok(mut cached)) = (stamp, cache.lock()) {
            *cached = Some((stamp, Arc::clone(&snapshot)));
        }
        Ok(snapshot)
    }

    /// What the actions change: the file store itself when no process owns it (held for the
    /// action only), its owner through the control socket otherwise, or the Redis store.
    pub(crate) fn admin(&self) -> Result<Box<dyn StoreAdmin>, MonitorError> {
        let dir = match self {
            Backend::Redis(url) => return Ok(Box::new(RedisStore::open_read(url)?)),
            Backend::File(dir, _) => dir,
        };
        match FileStore::open(dir) {
            Ok(s) => Ok(Box::new(s)),
            Err(StoreError::StoreLocked { .. }) => through_owner(dir),
            Err(e) => Err(e.into()),
        }
    }

    /// A line for the page header: where the store is.
    pub(crate) fn describe(&self) -> String {
        match self {
            Backend::File(dir, _) => format!("file store {}", dir.display()),
            Backend::Redis(url) => match RedisStore::open_read(url) {
                Ok(store) => format!("Redis store {}", store.url()),
                Err(_) => "Redis store".to_owned(),
            },
        }
    }
}

/// What tells that the store's log changed: its length, modification time and (on Unix) inode,
/// read before the snapshot, so a change during the read makes the next stamp differ. The file
/// store appends to its log and replaces it by renaming (a compaction), so an unchanged stamp
/// means unchanged contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

impl Stamp {
    /// The stamp of the log in `dir` (`wf.log`, the file `FileStore::snapshot` reads), if it can
    /// be read.
    fn of(dir: &Path) -> Option<Self> {
        let meta = std::fs::metadata(dir.join("wf.log")).ok()?;
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&meta);
        #[cfg(not(unix))]
        let inode = 0;
        Some(Self {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode,
        })
    }
}

#[cfg(unix)]
fn through_owner(dir: &Path) -> Result<Box<dyn StoreAdmin>, MonitorError> {
    match wf_store::control::ControlClient::connect(dir) {
        Ok(client) => Ok(Box::new(client) as Box<dyn Store>),
        Err(e) => Err(MonitorError::Internal(format!(
            "store {} is locked by a process that does not answer on its control socket ({e}): \
             stop it, act, and start it again",
            dir.display()
        ))),
    }
}

#[cfg(not(unix))]
fn through_owner(dir: &Path) -> Result<Box<dyn StoreAdmin>, MonitorError> {
    Err(MonitorError::Internal(format!(
        "store {} is owned by a running process: act from that process (App::retry, \
         App::cancel_tree)",
        dir.display()
    )))
}

fn missing(dir: &Path, e: StoreError) -> MonitorError {
    match e {
        StoreError::Io { source, .. } if source.kind() == ErrorKind::NotFound => {
            MonitorError::BadRequest(format!(
                "no wf store at {}: {source} (give the directory your workers open)",
                dir.display()
            ))
        }
        e => e.into(),
    }
}
