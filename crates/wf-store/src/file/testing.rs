//! A counting file system for tests (feature `testing`): [`CountingFs`] passes every operation
//! on to the operating system and records it, and keeps for every file how many of its bytes
//! were written and how many of them an fsync covered. Tests assert with it that whatever the
//! store acknowledged was synced, and every rename followed by a directory sync.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::fs::{FileId, FileSystem, FsFile, Metadata, OpenHow, OsFileSystem};

/// One operation a [`CountingFs`] saw, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FsEvent {
    /// `len` bytes written at the end of the file opened as `path`.
    Write {
        /// The path the file was opened as.
        path: PathBuf,
        /// Bytes written.
        len: u64,
    },
    /// The file opened as `path` synced: its first `len` bytes are durable.
    Sync {
        /// The path the file was opened as.
        path: PathBuf,
        /// The file's size when it synced.
        len: u64,
    },
    /// The file opened as `path` cut (or extended) to `len` bytes.
    SetLen {
        /// The path the file was opened as.
        path: PathBuf,
        /// Its new size.
        len: u64,
    },
    /// A rename.
    Rename {
        /// The old name.
        from: PathBuf,
        /// The new name.
        to: PathBuf,
    },
    /// A directory synced.
    SyncDir {
        /// The directory.
        dir: PathBuf,
    },
    /// A file removed.
    Remove {
        /// Its path.
        path: PathBuf,
    },
}

/// Totals of what a [`CountingFs`] saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FsCounts {
    /// Writes.
    pub writes: u64,
    /// File syncs.
    pub syncs: u64,
    /// Renames.
    pub renames: u64,
    /// Directory syncs.
    pub dir_syncs: u64,
}

/// A file as the counting layer knows it (by its identity, not its name).
#[derive(Debug, Clone, Copy, Default)]
struct Node {
    /// Bytes written (its size).
    len: u64,
    /// Bytes an fsync covered.
    synced: u64,
}

#[derive(Debug, Default)]
struct State {
    nodes: Vec<Node>,
    names: HashMap<PathBuf, usize>,
    events: Vec<FsEvent>,
    counts: FsCounts,
    /// Renames whose directory was not synced since.
    unsynced_renames: Vec<PathBuf>,
}

/// A [`FileSystem`] that does what the operating system's does and records it (see the module
/// docs). Cheap to clone: clones share their records, so a test keeps one and hands one to
/// [`crate::FileOptions::file_system`].
///
/// ```
/// use std::sync::Arc;
/// use wf_store::file::testing::CountingFs;
/// use wf_store::{FileOptions, FileStore, StoreWork};
/// let dir = tempfile::tempdir().unwrap();
/// let fs = CountingFs::default();
/// let store = FileStore::open_with(dir.path(), FileOptions::default().file_system(Arc::new(fs.clone()))).unwrap();
/// store.bind_app("shop").unwrap();
/// assert_eq!(fs.unsynced_bytes(&dir.path().join("wf.log")), 0);
/// ```
#[derive(Debug, Clone, Default)]
pub struct CountingFs {
    state: Arc<Mutex<State>>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl CountingFs {
    /// A new counting layer over the operating system's file system.
    pub fn new() -> Self {
        Self::default()
    }

    fn node_of(&self, path: &Path) -> Option<Node> {
        let s = lock(&self.state);
        s.names.get(path).map(|&n| s.nodes[n])
    }

    /// Bytes of the file now named `path` that were written but no fsync covered yet (what a
    /// power loss could take); 0 for a file this layer did not open.
    pub fn unsynced_bytes(&self, path: &Path) -> u64 {
        self.node_of(path)
            .map_or(0, |n| n.len - n.synced.min(n.len))
    }

    /// How many leading bytes of the file now named `path` an fsync covered.
    pub fn synced_len(&self, path: &Path) -> u64 {
        self.node_of(path).map_or(0, |n| n.synced)
    }

    /// How many bytes of the file now named `path` were written.
    pub fn written_len(&self, path: &Path) -> u64 {
        self.node_of(path).map_or(0, |n| n.len)
    }

    /// Renames not yet made durable by a sync of their directory.
    pub fn unsynced_renames(&self) -> Vec<PathBuf> {
        lock(&self.state).unsynced_renames.clone()
    }

    /// Totals so far.
    pub fn counts(&self) -> FsCounts {
        lock(&self.state).counts
    }

    /// Every operation so far, in order.
    pub fn events(&self) -> Vec<FsEvent> {
        lock(&self.state).events.clone()
    }
}

/// A file opened through a [`CountingFs`].
#[derive(Debug)]
struct CountingFile {
    inner: Box<dyn FsFile>,
    node: usize,
    path: PathBuf,
    state: Arc<Mutex<State>>,
}

impl FsFile for CountingFile {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.inner.write_all(bytes)?;
        let mut s = lock(&self.state);
        s.nodes[self.node].len += bytes.len() as u64;
        s.counts.writes += 1;
        s.events.push(FsEvent::Write {
            path: self.path.clone(),
            len: bytes.len() as u64,
        });
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        // What was written when the sync started is what it covers for sure: writes through
        // another handle may land while it runs.
        let len = lock(&self.state).nodes[self.node].len;
        self.inner.sync_data()?;
        let mut s = lock(&self.state);
        let node = &mut s.nodes[self.node];
        node.synced = node.synced.max(len.min(node.len));
        s.counts.syncs += 1;
        s.events.push(FsEvent::Sync {
            path: self.path.clone(),
            len,
        });
        Ok(())
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)?;
        let mut s = lock(&self.state);
        let node = &mut s.nodes[self.node];
        node.len = len;
        node.synced = node.synced.min(len);
        s.events.push(FsEvent::SetLen {
            path: self.path.clone(),
            len,
        });
        Ok(())
    }

    fn try_lock(&mut self) -> io::Result<bool> {
        self.inner.try_lock()
    }

    fn unlock(&mut self) -> io::Result<()> {
        self.inner.unlock()
    }

    fn id(&self) -> io::Result<Option<FileId>> {
        self.inner.id()
    }

    fn try_clone(&self) -> io::Result<Option<Box<dyn FsFile>>> {
        Ok(self.inner.try_clone()?.map(|inner| {
            Box::new(CountingFile {
                inner,
                node: self.node,
                path: self.path.clone(),
                state: Arc::clone(&self.state),
            }) as Box<dyn FsFile>
        }))
    }
}

impl FileSystem for CountingFs {
    fn create_dir_all(&self, dir: &Path, mode: u32) -> io::Result<()> {
        OsFileSystem.create_dir_all(dir, mode)
    }

    fn open(&self, path: &Path, how: OpenHow, mode: u32) -> io::Result<Box<dyn FsFile>> {
        let existing = OsFileSystem.metadata(path)?.map_or(0, |m| m.len);
        let inner = OsFileSystem.open(path, how, mode)?;
        let mut s = lock(&self.state);
        let known = s.names.get(path).copied();
        let node = match (how, known) {
            (OpenHow::Append, Some(n)) => n,
            _ => {
                // A file this layer has not seen (what it holds counts as durable), or one just
                // emptied.
                let len = if how == OpenHow::Truncate {
                    0
                } else {
                    existing
                };
                s.nodes.push(Node { len, synced: len });
                let n = s.nodes.len() - 1;
                s.names.insert(path.to_path_buf(), n);
                n
            }
        };
        Ok(Box::new(CountingFile {
            inner,
            node,
            path: path.to_path_buf(),
            state: Arc::clone(&self.state),
        }))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        OsFileSystem.read(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        OsFileSystem.rename(from, to)?;
        let mut s = lock(&self.state);
        if let Some(n) = s.names.remove(from) {
            s.names.insert(to.to_path_buf(), n);
        }
        s.counts.renames += 1;
        s.unsynced_renames.push(to.to_path_buf());
        s.events.push(FsEvent::Rename {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
        });
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        OsFileSystem.remove_file(path)?;
        let mut s = lock(&self.state);
        s.names.remove(path);
        s.events.push(FsEvent::Remove {
            path: path.to_path_buf(),
        });
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        OsFileSystem.sync_dir(dir)?;
        let mut s = lock(&self.state);
        s.unsynced_renames.retain(|p| p.parent() != Some(dir));
        s.counts.dir_syncs += 1;
        s.events.push(FsEvent::SyncDir {
            dir: dir.to_path_buf(),
        });
        Ok(())
    }

    fn metadata(&self, path: &Path) -> io::Result<Option<Metadata>> {
        OsFileSystem.metadata(path)
    }

    fn set_mode(&self, path: &Path, mode: u32) -> io::Result<()> {
        OsFileSystem.set_mode(path, mode)
    }
}
