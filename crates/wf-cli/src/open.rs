//! Opening the store a command names, and its errors as one line for the user: a read-only
//! snapshot (or a Redis store) for the reading commands, the store itself or its owner for the
//! commands that change it.

use std::io::ErrorKind as IoKind;

use wf_runtime::WfError;
use wf_store::{FileStore, RedisStore, Store, StoreError, StoreRead};

use crate::Failure;
use crate::cli::Target;
use crate::commands::Out;

/// What the reading commands read: a read-only snapshot of the file store in a directory (it
/// takes no lock, so workers may run), or a Redis store (opened without creating its namespace
/// or binding it to an app; a namespace that does not exist is an error, not an empty store).
pub(crate) fn open_read(target: &Target, out: &Out) -> Result<Box<dyn StoreRead>, Failure> {
    match target {
        Target::File(dir) => {
            let snapshot = FileStore::snapshot(dir).map_err(|e| store_failure(target, e))?;
            if let Some(cut) = snapshot.torn_tail() {
                out.note(format!(
                    "ignored {} unreadable bytes at the end of the log (from offset {}: {}): a \
                     write in progress, or a torn tail a crash left, which the owning process \
                     cuts when it next opens the store",
                    cut.bytes, cut.offset, cut.reason
                ));
            }
            Ok(Box::new(snapshot))
        }
        Target::Redis(url) => {
            let store = RedisStore::open_read(url).map_err(|e| store_failure(target, e))?;
            if !store
                .namespace_exists()
                .map_err(|e| store_failure(target, e))?
            {
                return Err(Failure::Runtime(format!(
                    "no wf store at {target}: its namespace '{}' holds nothing (point --store or \
                     WF_STORE at the URL your workers use, with the same ns= option)",
                    store.url().namespace
                )));
            }
            Ok(Box::new(store))
        }
    }
}

/// With `--app`, checks that the store belongs to that app. A store no app has opened since
/// stores record their app has nothing to compare with, and is accepted.
pub(crate) fn check_app(
    target: &Target,
    store: &dyn StoreRead,
    app: Option<&str>,
) -> Result<(), Failure> {
    let (Some(requested), Some(recorded)) = (app, read(Some(target), store.app_id())?) else {
        return Ok(());
    };
    if recorded == requested {
        return Ok(());
    }
    Err(store_failure(
        target,
        StoreError::AppMismatch {
            store: target.to_string(),
            recorded,
            requested: requested.to_owned(),
        },
    ))
}

/// A store error as one line for the user.
pub(crate) fn store_failure(target: &Target, e: StoreError) -> Failure {
    match e {
        StoreError::Io { source, .. } if source.kind() == IoKind::NotFound => {
            Failure::Runtime(format!(
                "no wf store at {target}: {source} (point --store or WF_STORE at the directory your workers open)"
            ))
        }
        e => Failure::Runtime(e.to_string()),
    }
}

fn store_error(target: Option<&Target>, e: StoreError) -> Failure {
    match target {
        Some(d) => store_failure(d, e),
        None => Failure::Runtime(e.to_string()),
    }
}

pub(crate) fn read<T>(target: Option<&Target>, r: Result<T, StoreError>) -> Result<T, Failure> {
    r.map_err(|e| store_error(target, e))
}

/// A management call's error as one line for the user.
pub(crate) fn managed<T>(target: Option<&Target>, r: Result<T, WfError>) -> Result<T, Failure> {
    r.map_err(|e| match e {
        WfError::Store(e) => store_error(target, e),
        e => Failure::Runtime(e.to_string()),
    })
}

/// Opens the store for a command that changes it (a retry, a purge, an event, a cancellation).
/// It must exist (opening would create an empty one at a mistyped path; `run` checked with a
/// read). A free file store is opened itself, an owned one reached through its owner's control
/// socket; a Redis store is shared with running workers. It is opened without an app, so it is
/// not bound to one.
pub(crate) fn open_for_changes(target: &Target) -> Result<Box<dyn Store>, Failure> {
    let dir = match target {
        Target::Redis(url) => {
            let store = RedisStore::open_read(url).map_err(|e| store_failure(target, e))?;
            return Ok(Box::new(store));
        }
        Target::File(dir) => dir,
    };
    match FileStore::open(dir) {
        Ok(s) => Ok(Box::new(s)),
        Err(StoreError::StoreLocked { .. }) => through_owner(dir),
        Err(e) => Err(store_failure(target, e)),
    }
}

/// A file store owned by a running process: reached through that process's control socket, so
/// the owner runs the command on its store while its workers go on.
fn through_owner(dir: &std::path::Path) -> Result<Box<dyn Store>, Failure> {
    #[cfg(unix)]
    match wf_store::control::ControlClient::connect(dir) {
        Ok(client) => Ok(Box::new(client)),
        Err(e) => Err(Failure::Runtime(format!(
            "store {} is locked by a process that does not answer on its control socket ({e}): \
             if a wf worker owns it, it is an older version or its socket could not start; \
             stop it, run the command, and start it again (waiting workflows wait durably \
             meanwhile)",
            dir.display()
        ))),
    }
    #[cfg(not(unix))]
    {
        Err(Failure::Runtime(format!(
            "store {} is owned by a running process: stop its workers first, or do this from \
             that process (App::send_event, App::retry, App::cancel_tree)",
            dir.display()
        )))
    }
}
