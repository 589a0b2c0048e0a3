//! Errors every backend reports, as variants a caller can match.

use std::path::PathBuf;

use wf_core::{CodecError, InvocationId, Status, TransitionError, WorkflowAccessError};

/// A storage operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No invocation with this id is stored.
    #[error(
        "invocation {0} not found: it was never submitted to this store, or was purged by retention"
    )]
    InvocationNotFound(InvocationId),
    /// The worker's lease is gone: it expired or another worker took the invocation over.
    #[error(
        "lease on invocation {invocation} lost ({reason}); nothing was written, the invocation belongs to whoever holds it now"
    )]
    LeaseLost {
        /// The invocation.
        invocation: InvocationId,
        /// Why the lease is no longer valid.
        reason: String,
    },
    /// The status change is not in `wf_core::status::TRANSITIONS`.
    #[error("invocation {invocation}: {source}")]
    Transition {
        /// The invocation.
        invocation: InvocationId,
        /// The refused move.
        #[source]
        source: TransitionError,
    },
    /// A commit wrote data it may not write.
    #[error(transparent)]
    Access(#[from] WorkflowAccessError),
    /// A commit that does not make sense (for example waiting on an invocation that is not a child).
    #[error("invalid commit for invocation {invocation}: {reason}")]
    InvalidCommit {
        /// The committing invocation.
        invocation: InvocationId,
        /// What is wrong.
        reason: String,
    },
    /// An operator's retry was refused: the invocation is not failed, or its caller is final.
    #[error("invocation {invocation} cannot be retried: {reason}")]
    NotRetryable {
        /// The invocation.
        invocation: InvocationId,
        /// Why, and what to do instead.
        reason: String,
    },
    /// A submission reused an id for a different call.
    #[error(
        "invocation {0} already exists with a different task, arguments or parent; ids must be unique per call"
    )]
    Conflict(InvocationId),
    /// A value could not be encoded or decoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// An I/O error on a store file.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The store's files are corrupt in a way that cannot be repaired by cutting a torn tail.
    #[error(
        "store file {path} is corrupt at byte offset {offset}: {reason}; restore it from a backup or move it away"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where the damage starts.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The path given as a store directory is a file (or something else that is not a directory).
    #[error(
        "store path {path} is not a directory: give the directory the store lives in (it is created if missing), not a file in it"
    )]
    NotADirectory {
        /// The path given.
        path: PathBuf,
    },
    /// Another process owns the store directory.
    #[error(
        "store {path} is locked by another process{}; a file store has one owning process: run the workers in that process, or, for workers in several processes or on several machines, point all of them at one Redis: build wf with the `redis` feature and use App::builder().redis(\"redis://host:6379/\") or WF_STORE=redis://host:6379/ (see docs/backends.md, \"Redis\")",
        owner_text(*.pid)
    )]
    StoreLocked {
        /// The store directory.
        path: PathBuf,
        /// The owning process's id, when its `LOCK` file names one.
        pid: Option<u32>,
    },
    /// The store was written by a newer `wf`.
    #[error(
        "store {path} has format version {found}, this build reads up to {supported}: upgrade wf to open it"
    )]
    NewerFormat {
        /// The store file.
        path: PathBuf,
        /// Version found.
        found: u32,
        /// Highest version this build reads.
        supported: u32,
    },
    /// The store was written by an older, pre-release `wf` whose format this build cannot read.
    #[error(
        "store {path} has format version {found}, an older pre-release format this build (format {supported}) cannot read: finish or purge its in-flight workflows with the build that wrote it, or start a new store directory"
    )]
    OlderFormat {
        /// The store file.
        path: PathBuf,
        /// Version found.
        found: u32,
        /// The only version this build reads.
        supported: u32,
    },
    /// The backend cannot be reached (network, server down).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store belongs to another app (see `StoreWork::bind_app`): a configuration error,
    /// neither transient nor a refusal of one request.
    #[error(
        "store {store} belongs to app '{recorded}', not '{requested}': open it with app id '{recorded}', or give app '{requested}' its own store"
    )]
    AppMismatch {
        /// The store: a directory or a URL.
        store: String,
        /// The app id the store recorded when it was first bound.
        recorded: String,
        /// The app id that asked to bind it.
        requested: String,
    },
    /// One request is over the store's size limits ([`crate::limits`]); it is refused alone,
    /// before anything is applied, and the store goes on.
    #[error(
        "{what} is {size} bytes, over the store's limit of {limit} bytes; nothing was written: store large blobs elsewhere and pass a reference"
    )]
    TooLarge {
        /// What was too large (a submission, a commit, …).
        what: String,
        /// Its size in bytes, as the store measured it.
        size: usize,
        /// The limit it is over.
        limit: usize,
    },
    /// An event was sent to an invocation that is already final: nothing waits for it any more.
    #[error(
        "invocation {invocation} is already final ({status}): it takes no more events; send events to invocations that are still running or waiting (a workflow is addressed by its root's id)"
    )]
    AlreadyFinished {
        /// The invocation.
        invocation: InvocationId,
        /// Its final status.
        status: Status,
    },
    /// The backend does not implement this operation yet (a backend written before the
    /// operation joined the contract): nothing changed.
    #[error(
        "the {backend} store does not support {operation} yet; use the memory or file store for \
         workflows that need it"
    )]
    Unsupported {
        /// The backend.
        backend: &'static str,
        /// What it cannot do.
        operation: &'static str,
    },
    /// An event reused the idempotency key of another event of the same invocation with another
    /// name or payload.
    #[error(
        "an event with key '{key}' was already sent to invocation {invocation} with another name or payload; keys must identify one event: use a new key for a new event"
    )]
    EventConflict {
        /// The invocation.
        invocation: InvocationId,
        /// The key.
        key: String,
    },
    /// This process reaches a file store through the control socket of the process that owns
    /// it ([`crate::control::ControlClient`]) and asked for something only the owner does: run
    /// workers (claim, renew, commit).
    #[error(
        "store {path} is owned by process {pid}; this process reaches it through the owner's control socket for submissions, results, events, cancellation and retries, but cannot run workers on it: run the workers in the owning process, or, for workers in several processes, point all of them at one Redis (see docs/backends.md, \"Redis\")"
    )]
    NotOwner {
        /// The store directory.
        path: PathBuf,
        /// The owning process.
        pid: u32,
    },
    /// A server-side store refused the operation for a reason that waiting will not fix: a
    /// wrong password or missing permission, a misconfigured server, a namespace holding data
    /// this version did not write. (Lost connections and busy servers are
    /// [`StoreError::Unavailable`].)
    #[error("store {store}: {message}")]
    Backend {
        /// The store (a URL, its password hidden).
        store: String,
        /// What is wrong and what to do.
        message: String,
    },
}

impl StoreError {
    /// Whether the error may go away by itself (an I/O failure, a lost connection), so that the
    /// same operation can succeed later. A backend with errors of its own kind classifies them
    /// here, next to their definition.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Io { .. } | StoreError::Unavailable(_))
    }

    /// Whether the store refused a request for a reason that repeating the same request would
    /// meet again (a value too large, an invalid commit, a refused transition, an id conflict).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            StoreError::Codec(_)
                | StoreError::TooLarge { .. }
                | StoreError::InvalidCommit { .. }
                | StoreError::Access(_)
                | StoreError::Conflict(_)
                | StoreError::Transition { .. }
                | StoreError::AlreadyFinished { .. }
                | StoreError::EventConflict { .. }
                | StoreError::Unsupported { .. }
                | StoreError::NotRetryable { .. }
        )
    }
}

/// " (pid N)" when the owner's process id is known.
fn owner_text(pid: Option<u32>) -> String {
    pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::StoreError;

    #[test]
    fn too_large_is_a_refusal_that_says_what_and_how_much() {
        let e = StoreError::TooLarge {
            what: "a commit".to_owned(),
            size: 300 << 20,
            limit: crate::limits::MAX_RECORD_BYTES,
        };
        assert!(e.is_refusal() && !e.is_transient());
        let message = e.to_string();
        assert!(
            message.starts_with("a commit is 314572800 bytes") && message.contains("reference"),
            "{message}"
        );
    }
}
