//! The file system under the file store: every open, write, fsync, rename, directory fsync and
//! truncation the store does goes through a [`FileSystem`], so that tests can count what it
//! does (and, later, simulate losing what was written but never synced).
//!
//! The store uses [`OsFileSystem`] (the operating system's file system through `std::fs`) unless
//! [`crate::FileOptions::file_system`] gives another one. Other implementations are for tests:
//! [`crate::file::testing::CountingFs`] (feature `testing`) records every operation.

use std::fmt::Debug;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::path::Path;

/// Identifies a file (its inode) independently of its name: two handles or paths with the same
/// identity are the same file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId {
    /// The device.
    pub device: u64,
    /// The inode (or the file system's equivalent).
    pub inode: u64,
}

/// What [`FileSystem::metadata`] reports about a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metadata {
    /// Whether it is a directory.
    pub is_dir: bool,
    /// Its size in bytes.
    pub len: u64,
    /// Its Unix permission bits (`0o777` mask), where the platform has them.
    pub mode: Option<u32>,
    /// Its identity, where the platform reports one.
    pub id: Option<FileId>,
}

/// How [`FileSystem::open`] opens a file: always for writing (appending at the end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenHow {
    /// An existing file, or a new empty one if missing; writes go to the end.
    Append,
    /// A new empty file, replacing any file of that name's contents.
    Truncate,
}

/// An open file of the store.
pub trait FsFile: Send + Debug {
    /// Writes all of `bytes` at the end of the file.
    ///
    /// # Errors
    /// The operating system's error.
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()>;

    /// Makes the file's contents durable (`fdatasync`).
    ///
    /// # Errors
    /// The operating system's error.
    fn sync_data(&mut self) -> io::Result<()>;

    /// Cuts (or extends) the file to `len` bytes; later writes still go to the end.
    ///
    /// # Errors
    /// The operating system's error.
    fn set_len(&mut self, len: u64) -> io::Result<()>;

    /// Takes an exclusive advisory lock on the file without waiting (`flock` on Unix): `false`
    /// if another open file holds it. The lock ends when the file is closed (or its process
    /// dies) or [`FsFile::unlock`] is called.
    ///
    /// # Errors
    /// The operating system's error, other than the lock being held.
    fn try_lock(&mut self) -> io::Result<bool>;

    /// Releases the lock [`FsFile::try_lock`] took.
    ///
    /// # Errors
    /// The operating system's error.
    fn unlock(&mut self) -> io::Result<()>;

    /// The file's identity (`None` where the platform reports none).
    ///
    /// # Errors
    /// The operating system's error.
    fn id(&self) -> io::Result<Option<FileId>>;

    /// A second handle on the same open file (`dup`), whose [`FsFile::sync_data`] makes the same
    /// file durable: the store syncs through it while other threads append through this one.
    /// `None` (the default) where there is none; the store then syncs through its only handle.
    /// The second handle is never locked or unlocked.
    ///
    /// # Errors
    /// The operating system's error.
    fn try_clone(&self) -> io::Result<Option<Box<dyn FsFile>>> {
        Ok(None)
    }
}

/// The file-system operations the file store uses. Implementations must be usable from many
/// threads at once.
pub trait FileSystem: Send + Sync + Debug {
    /// Creates directory `dir` and any missing parents; directories it creates get permission
    /// bits `mode` (less the process's umask). An existing directory is left as it is.
    ///
    /// # Errors
    /// The operating system's error.
    fn create_dir_all(&self, dir: &Path, mode: u32) -> io::Result<()>;

    /// Opens `path` for writing as `how` says; a file it creates gets permission bits `mode`
    /// (less the umask).
    ///
    /// # Errors
    /// The operating system's error.
    fn open(&self, path: &Path, how: OpenHow, mode: u32) -> io::Result<Box<dyn FsFile>>;

    /// Reads a whole file.
    ///
    /// # Errors
    /// The operating system's error (`NotFound` for a missing file).
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;

    /// Renames `from` to `to`, replacing `to` (atomically on POSIX file systems). Durable only
    /// once the directory is synced ([`FileSystem::sync_dir`]).
    ///
    /// # Errors
    /// The operating system's error.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Removes a file.
    ///
    /// # Errors
    /// The operating system's error.
    fn remove_file(&self, path: &Path) -> io::Result<()>;

    /// Makes a directory's entries (new files, renames, removals) durable.
    ///
    /// # Errors
    /// The operating system's error.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;

    /// What is at `path`, or `None` if nothing is.
    ///
    /// # Errors
    /// The operating system's error, other than `NotFound`.
    fn metadata(&self, path: &Path) -> io::Result<Option<Metadata>>;

    /// Sets the permission bits of `path` (a no-op where the platform has none).
    ///
    /// # Errors
    /// The operating system's error.
    fn set_mode(&self, path: &Path, mode: u32) -> io::Result<()>;

    /// The process id the store notes in its `LOCK` file as the owner's (for messages and
    /// operators only): this process's. A simulated file system gives a fixed one, so that what
    /// the store writes (and a crash loses) does not depend on how many digits the simulating
    /// process's id has.
    fn process_id(&self) -> u32 {
        std::process::id()
    }
}

/// The operating system's file system, through `std::fs`: what the file store uses unless told
/// otherwise.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsFileSystem;

/// A file of [`OsFileSystem`]. A lock it took is released when it is dropped, explicitly,
/// before the file closes: a `flock` belongs to the open file description, which a process
/// forked by any thread shares until it execs, so closing alone could leave the lock held for a
/// moment (and a store reopened at once would find itself locked).
#[derive(Debug)]
pub struct OsFile {
    file: File,
    locked: bool,
}

impl OsFile {
    /// Wraps a file opened by other means (a test points the log at `/dev/full` this way).
    pub fn new(file: File) -> Self {
        Self {
            file,
            locked: false,
        }
    }
}

impl Drop for OsFile {
    fn drop(&mut self) {
        if self.locked {
            // Nothing to report to: closing releases the lock anyway once no fork holds it.
            let _ = self.file.unlock();
        }
    }
}

impl FsFile for OsFile {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    fn try_lock(&mut self) -> io::Result<bool> {
        match self.file.try_lock() {
            Ok(()) => {
                self.locked = true;
                Ok(true)
            }
            Err(TryLockError::WouldBlock) => Ok(false),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }

    fn unlock(&mut self) -> io::Result<()> {
        self.locked = false;
        self.file.unlock()
    }

    fn id(&self) -> io::Result<Option<FileId>> {
        self.file.metadata().map(|m| file_id(&m))
    }

    fn try_clone(&self) -> io::Result<Option<Box<dyn FsFile>>> {
        Ok(Some(Box::new(OsFile::new(self.file.try_clone()?))))
    }
}

#[cfg(unix)]
fn file_id(m: &fs::Metadata) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt;
    Some(FileId {
        device: m.dev(),
        inode: m.ino(),
    })
}

#[cfg(not(unix))]
fn file_id(_: &fs::Metadata) -> Option<FileId> {
    None
}

#[cfg(unix)]
fn mode_of(m: &fs::Metadata) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    Some(m.permissions().mode() & 0o777)
}

#[cfg(not(unix))]
fn mode_of(_: &fs::Metadata) -> Option<u32> {
    None
}

impl FileSystem for OsFileSystem {
    fn create_dir_all(&self, dir: &Path, mode: u32) -> io::Result<()> {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, mode);
        #[cfg(not(unix))]
        let _ = mode;
        builder.create(dir)
    }

    fn open(&self, path: &Path, how: OpenHow, mode: u32) -> io::Result<Box<dyn FsFile>> {
        let mut options = OpenOptions::new();
        match how {
            OpenHow::Append => options.append(true).create(true),
            OpenHow::Truncate => options.write(true).create(true).truncate(true),
        };
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
        #[cfg(not(unix))]
        let _ = mode;
        Ok(Box::new(OsFile::new(options.open(path)?)))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir).and_then(|d| d.sync_all())
    }

    fn metadata(&self, path: &Path) -> io::Result<Option<Metadata>> {
        match fs::metadata(path) {
            Ok(m) => Ok(Some(Metadata {
                is_dir: m.is_dir(),
                len: m.len(),
                mode: mode_of(&m),
                id: file_id(&m),
            })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn set_mode(&self, path: &Path, mode: u32) -> io::Result<()> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(path, fs::Permissions::from_mode(mode))
        }
        #[cfg(not(unix))]
        {
            let _ = (path, mode);
            Ok(())
        }
    }
}
