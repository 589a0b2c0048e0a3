//! A simulated file system under the file store ([`wf_store::file::fs::FileSystem`]).
//!
//! It keeps apart, for every file, the bytes the process sees (`live`) and the bytes a power
//! loss would leave (`durable`, set by `sync_data`); and for the directory, the names the
//! process sees and the names that are durable (set by `sync_dir`), with the directory
//! operations (create, rename, remove) made since in order. Nothing touches the real disk.
//!
//! Faults, armed by the driver at an operation number ([`SimFs::arm`]):
//! - [`Fault::Die`]: the process dies at that operation: it and every later operation fail, so
//!   nothing done after reaches the disk; [`SimFs::crash`] then decides what survives.
//! - [`Fault::SyncEio`] / [`Fault::SyncEnospc`]: the first `sync_data` at or after that
//!   operation fails; the file's unsynced bytes are then in doubt (Linux may drop them), so the
//!   next crash keeps a seed-chosen part of them whatever its kind.
//! - [`Fault::WriteEnospc`]: the first `write_all` at or after that operation writes half its
//!   bytes and fails (a disk that filled up mid-write).
//!
//! At a crash ([`SimFs::crash`]), what survives depends on its [`CrashKind`]: a process crash
//! keeps everything written (the page cache survives); a power loss keeps only synced bytes and
//! synced directory entries; a torn crash keeps the synced bytes plus a seed-chosen prefix of
//! each file's unsynced bytes (cutting anywhere, inside a record too) and a seed-chosen prefix
//! of the unsynced directory operations (so a rename not yet synced has either outcome).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use wf_store::file::fs::{FileId, FileSystem, FsFile, Metadata, OpenHow};

use crate::rng::SimRng;

/// A fault the driver arms at an operation number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The process dies: this and every later operation fail until [`SimFs::crash`].
    Die,
    /// The next `sync_data` fails with an I/O error (`EIO`).
    SyncEio,
    /// The next `sync_data` fails with "no space left on device" (`ENOSPC`).
    SyncEnospc,
    /// The next `write_all` writes the first half of its bytes, then fails with `ENOSPC`.
    WriteEnospc,
}

/// What a crash keeps of what was not synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashKind {
    /// The process died, the machine did not: everything written survives.
    Process,
    /// The machine lost power: only synced bytes and synced directory entries survive.
    PowerLoss,
    /// The machine lost power mid-flush: synced state plus a seed-chosen prefix of the rest.
    Torn,
    /// Like `Torn`, but the disk wrote the kept unsynced bytes out of order: one or two 512-byte
    /// sectors inside them were never written and read as zeros, with written bytes after them
    /// (what a torn multi-sector write, or delayed allocation on some file systems, can leave).
    Reordered,
}

/// The sector size of [`CrashKind::Reordered`] holes.
const PAGE: usize = 512;

/// One file (an inode).
#[derive(Debug, Clone, Default)]
struct Node {
    live: Vec<u8>,
    durable: Vec<u8>,
    /// A sync of it failed since its last good sync: its unsynced bytes are in doubt.
    doubtful: bool,
}

/// A directory operation not yet made durable by a directory sync.
#[derive(Debug, Clone)]
enum DirOp {
    Create(PathBuf, usize),
    Rename(PathBuf, PathBuf),
    Remove(PathBuf),
}

impl DirOp {
    fn apply(&self, names: &mut BTreeMap<PathBuf, usize>) {
        match self {
            DirOp::Create(path, node) => {
                names.insert(path.clone(), *node);
            }
            DirOp::Rename(from, to) => {
                if let Some(node) = names.remove(from) {
                    names.insert(to.clone(), node);
                }
            }
            DirOp::Remove(path) => {
                names.remove(path);
            }
        }
    }

    fn in_dir(&self, dir: &Path) -> bool {
        let p = match self {
            DirOp::Create(p, _) | DirOp::Rename(_, p) | DirOp::Remove(p) => p,
        };
        p.parent() == Some(dir)
    }
}

/// Totals of what the file system did and suffered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimCounts {
    /// Operations (each counts one, whatever it is).
    pub ops: u64,
    /// `sync_data` calls that succeeded.
    pub syncs: u64,
    /// Renames (a compaction replacing the log is one).
    pub renames: u64,
    /// Syncs failed with `EIO`.
    pub sync_eio: u64,
    /// Syncs failed with `ENOSPC`.
    pub sync_enospc: u64,
    /// Writes cut short by `ENOSPC`.
    pub write_enospc: u64,
    /// Process deaths.
    pub deaths: u64,
    /// Crashes by kind: process, power loss, torn, reordered.
    pub crashes: [u64; 4],
    /// Unsynced bytes a crash dropped.
    pub bytes_lost: u64,
    /// Unsynced directory operations a crash dropped.
    pub dir_ops_lost: u64,
    /// Holes a reordered crash left.
    pub holes: u64,
    /// Opens of the store that cut an unsynced hole (valid records after a bad one, none
    /// acknowledged as durable), noted by the driver.
    pub holes_cut: u64,
}

#[derive(Debug, Default)]
struct State {
    nodes: Vec<Node>,
    names: BTreeMap<PathBuf, usize>,
    durable_names: BTreeMap<PathBuf, usize>,
    pending: Vec<DirOp>,
    dirs: BTreeSet<PathBuf>,
    /// Locks held: node -> handle.
    locks: HashMap<usize, u64>,
    /// Bumped by every crash: handles of an earlier generation are dead.
    generation: u64,
    next_handle: u64,
    armed: Option<(u64, Fault)>,
    dead: bool,
    /// The fault that fired since the last crash, if any.
    fired: Option<Fault>,
    counts: SimCounts,
    /// The thread of the first operation: the driver's. A history is repeatable only while
    /// every operation comes from it, in its order.
    driver: Option<std::thread::ThreadId>,
    /// Operations from any other thread (a store's background thread, whose timing would make
    /// the history depend on the machine's load).
    foreign: u64,
}

impl State {
    /// Counts one operation and fires a `Die` that is due. Fails if the process is dead.
    fn op(&mut self, generation: u64) -> io::Result<()> {
        if self.dead || generation != self.generation {
            return Err(dead());
        }
        self.counts.ops += 1;
        let here = std::thread::current().id();
        if *self.driver.get_or_insert(here) != here {
            self.foreign += 1;
        }
        if let Some((at, Fault::Die)) = self.armed
            && self.counts.ops >= at
        {
            self.armed = None;
            self.dead = true;
            self.fired = Some(Fault::Die);
            self.counts.deaths += 1;
            return Err(dead());
        }
        Ok(())
    }

    /// Whether a write fault is due (consumed if so).
    fn write_fault(&mut self) -> bool {
        match self.armed {
            Some((at, Fault::WriteEnospc)) if self.counts.ops >= at => {
                self.armed = None;
                self.fired = Some(Fault::WriteEnospc);
                self.counts.write_enospc += 1;
                true
            }
            _ => false,
        }
    }

    /// A sync fault that is due, consumed.
    fn sync_fault(&mut self) -> Option<Fault> {
        match self.armed {
            Some((at, f @ (Fault::SyncEio | Fault::SyncEnospc))) if self.counts.ops >= at => {
                self.armed = None;
                self.fired = Some(f);
                Some(f)
            }
            _ => None,
        }
    }
}

fn dead() -> io::Error {
    io::Error::other("simulated: the process is dead")
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("simulated: no file {}", path.display()),
    )
}

/// The simulated file system. Clones share one disk: the driver keeps one and hands clones to
/// each store it opens.
#[derive(Debug, Clone, Default)]
pub struct SimFs {
    state: Arc<Mutex<State>>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl SimFs {
    /// An empty disk.
    pub fn new() -> Self {
        Self::default()
    }

    /// Arms `fault` to fire at operation number `at` (counted from the disk's creation);
    /// replaces a fault armed before that did not fire.
    pub fn arm(&self, at: u64, fault: Fault) {
        lock(&self.state).armed = Some((at, fault));
    }

    /// Disarms the armed fault, if any.
    pub fn disarm(&self) {
        lock(&self.state).armed = None;
    }

    /// The fault that fired since the last crash, if any.
    pub fn fired(&self) -> Option<Fault> {
        lock(&self.state).fired
    }

    /// Operations so far.
    pub fn ops(&self) -> u64 {
        lock(&self.state).counts.ops
    }

    /// Operations that came from another thread than the first operation's (the driver's):
    /// a repeatable history has none.
    pub fn foreign_ops(&self) -> u64 {
        lock(&self.state).foreign
    }

    /// Totals so far.
    pub fn counts(&self) -> SimCounts {
        lock(&self.state).counts
    }

    /// Crashes: the process's handles die, and of what was not synced the disk keeps what
    /// `kind` (and, for torn crashes and doubtful files, `rng`) says. The disk is then usable
    /// by a new process.
    pub fn crash(&self, kind: CrashKind, rng: &mut SimRng) {
        let mut s = lock(&self.state);
        let s = &mut *s;
        s.counts.crashes[kind as usize] += 1;
        // Directory entries.
        let keep_ops = match kind {
            CrashKind::Process => s.pending.len(),
            CrashKind::PowerLoss => 0,
            CrashKind::Torn | CrashKind::Reordered => {
                rng.below(s.pending.len() as u64 + 1) as usize
            }
        };
        s.counts.dir_ops_lost += (s.pending.len() - keep_ops) as u64;
        for op in s.pending.drain(..keep_ops) {
            op.apply(&mut s.durable_names);
        }
        s.pending.clear();
        s.names = s.durable_names.clone();
        // File contents.
        for node in &mut s.nodes {
            let torn = matches!(kind, CrashKind::Torn | CrashKind::Reordered) || node.doubtful;
            let kept = if kind == CrashKind::Process && !node.doubtful {
                node.live.clone()
            } else if !torn {
                node.durable.clone()
            } else if node.live.starts_with(&node.durable) {
                let extra = node.live.len() - node.durable.len();
                let cut = node.durable.len() + rng.below(extra as u64 + 1) as usize;
                let mut kept = node.live[..cut].to_vec();
                if kind == CrashKind::Reordered && hole(&mut kept, node.durable.len(), rng) {
                    s.counts.holes += 1;
                }
                kept
            } else if rng.chance(50) {
                node.live.clone()
            } else {
                node.durable.clone()
            };
            s.counts.bytes_lost += node.live.len().saturating_sub(kept.len()) as u64;
            node.durable = kept.clone();
            node.live = kept;
            node.doubtful = false;
        }
        s.locks.clear();
        s.generation += 1;
        s.dead = false;
        s.fired = None;
        s.armed = None;
    }

    /// Notes that opening the store cut an unsynced hole.
    pub fn note_hole_cut(&self) {
        lock(&self.state).counts.holes_cut += 1;
    }

    /// The bytes of the file named `path` as the process sees them (for tests).
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        let s = lock(&self.state);
        s.names.get(path).map(|&n| s.nodes[n].live.clone())
    }

    /// How many bytes of the file named `path` are not synced (for tests).
    pub fn unsynced_bytes(&self, path: &Path) -> u64 {
        let s = lock(&self.state);
        s.names.get(path).map_or(0, |&n| {
            let node = &s.nodes[n];
            node.live.len().saturating_sub(node.durable.len()) as u64
        })
    }
}

/// Zeroes one or two sectors of `bytes` that start at or after `from` (sector-aligned) and end before its end, if there is room. Whether it did.
fn hole(bytes: &mut [u8], from: usize, rng: &mut SimRng) -> bool {
    let first = from.div_ceil(PAGE);
    let pages = bytes.len() / PAGE;
    // A hole must leave written bytes after it.
    if pages <= first {
        return false;
    }
    let start = (first + rng.below((pages - first) as u64) as usize) * PAGE;
    let end = (start + PAGE * rng.range(1, 2) as usize).min(bytes.len() - 1);
    if start < end {
        bytes[start..end].fill(0);
        return true;
    }
    false
}

/// A file open on a [`SimFs`].
#[derive(Debug)]
struct SimFile {
    state: Arc<Mutex<State>>,
    node: usize,
    handle: u64,
    generation: u64,
}

impl FsFile for SimFile {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut s = lock(&self.state);
        s.op(self.generation)?;
        if s.write_fault() {
            s.nodes[self.node]
                .live
                .extend_from_slice(&bytes[..bytes.len() / 2]);
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "simulated ENOSPC on write",
            ));
        }
        s.nodes[self.node].live.extend_from_slice(bytes);
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        let mut s = lock(&self.state);
        s.op(self.generation)?;
        match s.sync_fault() {
            Some(Fault::SyncEio) => {
                s.counts.sync_eio += 1;
                s.nodes[self.node].doubtful = true;
                Err(io::Error::other("simulated EIO on fsync"))
            }
            Some(_) => {
                s.counts.sync_enospc += 1;
                s.nodes[self.node].doubtful = true;
                Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    "simulated ENOSPC on fsync",
                ))
            }
            None => {
                s.counts.syncs += 1;
                let node = &mut s.nodes[self.node];
                node.durable = node.live.clone();
                node.doubtful = false;
                Ok(())
            }
        }
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        let mut s = lock(&self.state);
        s.op(self.generation)?;
        let len = usize::try_from(len).map_err(io::Error::other)?;
        s.nodes[self.node].live.resize(len, 0);
        Ok(())
    }

    fn try_lock(&mut self) -> io::Result<bool> {
        let mut s = lock(&self.state);
        s.op(self.generation)?;
        match s.locks.get(&self.node) {
            Some(&h) if h != self.handle => Ok(false),
            _ => {
                s.locks.insert(self.node, self.handle);
                Ok(true)
            }
        }
    }

    fn unlock(&mut self) -> io::Result<()> {
        let mut s = lock(&self.state);
        if s.generation == self.generation && s.locks.get(&self.node) == Some(&self.handle) {
            s.locks.remove(&self.node);
        }
        Ok(())
    }

    fn id(&self) -> io::Result<Option<FileId>> {
        Ok(Some(file_id(self.node)))
    }

    /// A `dup`: the same file, handle and process, so the store's sync through its second handle
    /// (the path the OS file system takes) is what the simulation exercises.
    fn try_clone(&self) -> io::Result<Option<Box<dyn FsFile>>> {
        Ok(Some(Box::new(SimFile {
            state: Arc::clone(&self.state),
            node: self.node,
            handle: self.handle,
            generation: self.generation,
        })))
    }
}

impl Drop for SimFile {
    fn drop(&mut self) {
        let _ = self.unlock();
    }
}

fn file_id(node: usize) -> FileId {
    FileId {
        device: 1,
        inode: node as u64,
    }
}

impl FileSystem for SimFs {
    /// A fixed id: the store notes it in `LOCK` at every open, unsynced, and a crash loses it;
    /// the real process id's digits made the bytes lost (and the draws that cut a torn tail)
    /// depend on the process (a run with 4-digit pids lost a byte less per crash than runs
    /// with 5-digit ones). Five digits, as the histories the named seeds were found in had.
    fn process_id(&self) -> u32 {
        42_424
    }

    fn create_dir_all(&self, dir: &Path, _mode: u32) -> io::Result<()> {
        let mut s = lock(&self.state);
        let generation = s.generation;
        s.op(generation)?;
        for d in dir.ancestors() {
            s.dirs.insert(d.to_path_buf());
        }
        Ok(())
    }

    fn open(&self, path: &Path, how: OpenHow, _mode: u32) -> io::Result<Box<dyn FsFile>> {
        let mut s = lock(&self.state);
        let generation = s.generation;
        s.op(generation)?;
        let node = match s.names.get(path).copied() {
            Some(n) => {
                if how == OpenHow::Truncate {
                    s.nodes[n].live.clear();
                }
                n
            }
            None => {
                s.nodes.push(Node::default());
                let n = s.nodes.len() - 1;
                s.names.insert(path.to_path_buf(), n);
                s.pending.push(DirOp::Create(path.to_path_buf(), n));
                n
            }
        };
        s.next_handle += 1;
        Ok(Box::new(SimFile {
            state: Arc::clone(&self.state),
            node,
            handle: s.next_handle,
            generation,
        }))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut s = lock(&self.state);
        let generation = s.generation;
        s.op(generation)?;
        let n = *s.names.get(path).ok_or_else(|| not_found(path))?;
        Ok(s.nodes[n].live.clone())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = lock(&self.state);
        let generation = s.generation;
        s.op(generation)?;
        let n = s.names.remove(from).ok_or_else(|| not_found(from))?;
        s.counts.renames += 1;
        s.names.insert(to.to_path_buf(), n);
        s.pending
            .push(DirOp::Rename(from.to_path_buf(), to.to_path_buf()));
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut s = lock(&self.state);
        let generation = s.generation;
        s.op(generation)?;
        s.names.remove(path).ok_or_else(|| not_found(path))?;
        s.pending.push(DirOp::Remove(path.to_path_buf()));
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut s = lock(&self.state);
        let generation = s.generation;
        s.op(generation)?;
        let s = &mut *s;
        let (now, later): (Vec<DirOp>, Vec<DirOp>) =
            s.pending.drain(..).partition(|op| op.in_dir(dir));
        for op in &now {
            op.apply(&mut s.durable_names);
        }
        s.pending = later;
        Ok(())
    }

    fn metadata(&self, path: &Path) -> io::Result<Option<Metadata>> {
        let mut s = lock(&self.state);
        let generation = s.generation;
        s.op(generation)?;
        if s.dirs.contains(path) {
            return Ok(Some(Metadata {
                is_dir: true,
                len: 0,
                mode: Some(0o700),
                id: None,
            }));
        }
        Ok(s.names.get(path).map(|&n| Metadata {
            is_dir: false,
            len: s.nodes[n].live.len() as u64,
            mode: Some(0o600),
            id: Some(file_id(n)),
        }))
    }

    fn set_mode(&self, _path: &Path, _mode: u32) -> io::Result<()> {
        let mut s = lock(&self.state);
        let generation = s.generation;
        s.op(generation)?;
        Ok(())
    }
}
