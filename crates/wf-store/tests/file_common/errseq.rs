//! A file system on the real one that models Linux's fsync error reporting for a second handle
//! made by `dup` (what [`FsFile::try_clone`] is on the OS): both share one open file
//! description, and a writeback error is reported to the *first* fsync on that description to
//! look, not to every concurrent one. The log's first handle fails its next fsync when armed
//! (that fsync consumed the error), and a sync through the second handle blocks, when armed,
//! until released, then succeeds as the kernel's would (the error is already reported).
//! Armed with `fail_clone_sync`, a sync through the second handle fails once instead (what
//! the idle syncer, which syncs through that handle, sees on a writeback error).

use std::io;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use wf_store::file::fs::{FileId, FileSystem, FsFile, Metadata, OpenHow, OsFileSystem};

#[derive(Debug, Default)]
pub(crate) struct Knobs {
    pub(crate) fail_first_handle_sync: bool,
    pub(crate) block_clone_sync: bool,
    pub(crate) clone_sync_waiting: bool,
    pub(crate) fail_clone_sync: bool,
    pub(crate) clone_sync_failed: bool,
}

#[derive(Debug, Default, Clone)]
pub(crate) struct ErrseqFs {
    pub(crate) knobs: Arc<(Mutex<Knobs>, Condvar)>,
}

impl ErrseqFs {
    pub(crate) fn set(&self, f: impl FnOnce(&mut Knobs)) {
        f(&mut self.knobs.0.lock().unwrap());
        self.knobs.1.notify_all();
    }

    pub(crate) fn wait_until(&self, what: &str, cond: impl Fn(&Knobs) -> bool) {
        let (m, cv) = &*self.knobs;
        let (g, t) = cv
            .wait_timeout_while(m.lock().unwrap(), Duration::from_secs(30), |k| !cond(k))
            .unwrap();
        drop(g);
        assert!(!t.timed_out(), "gave up waiting for {what}");
    }
}

#[derive(Debug)]
struct ErrseqFile {
    inner: Box<dyn FsFile>,
    clone: bool,
    fs: ErrseqFs,
}

impl FsFile for ErrseqFile {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.inner.write_all(bytes)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        let (m, cv) = &*self.fs.knobs;
        let mut k = m.lock().unwrap();
        if self.clone && k.block_clone_sync {
            k.clone_sync_waiting = true;
            cv.notify_all();
            let (g, t) = cv
                .wait_timeout_while(k, Duration::from_secs(30), |k| k.block_clone_sync)
                .unwrap();
            assert!(!t.timed_out(), "the blocked sync was never released");
            k = g;
        }
        if self.clone && k.fail_clone_sync {
            k.fail_clone_sync = false;
            k.clone_sync_failed = true;
            cv.notify_all();
            return Err(io::Error::other(
                "simulated EIO on fsync (writeback failed)",
            ));
        }
        if !self.clone && k.fail_first_handle_sync {
            k.fail_first_handle_sync = false;
            return Err(io::Error::other(
                "simulated EIO on fsync (writeback failed)",
            ));
        }
        drop(k);
        self.inner.sync_data()
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
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
            Box::new(ErrseqFile {
                inner,
                clone: true,
                fs: self.fs.clone(),
            }) as Box<dyn FsFile>
        }))
    }
}

impl FileSystem for ErrseqFs {
    fn create_dir_all(&self, dir: &Path, mode: u32) -> io::Result<()> {
        OsFileSystem.create_dir_all(dir, mode)
    }

    fn open(&self, path: &Path, how: OpenHow, mode: u32) -> io::Result<Box<dyn FsFile>> {
        Ok(Box::new(ErrseqFile {
            inner: OsFileSystem.open(path, how, mode)?,
            clone: false,
            fs: self.clone(),
        }))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        OsFileSystem.read(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        OsFileSystem.rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        OsFileSystem.remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        OsFileSystem.sync_dir(dir)
    }

    fn metadata(&self, path: &Path) -> io::Result<Option<Metadata>> {
        OsFileSystem.metadata(path)
    }

    fn set_mode(&self, path: &Path, mode: u32) -> io::Result<()> {
        OsFileSystem.set_mode(path, mode)
    }
}
