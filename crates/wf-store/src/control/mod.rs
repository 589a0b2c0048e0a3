//! Reaching a file store from processes other than its owner, through a control socket.
//!
//! A file store has exactly one owning process: the one holding its directory's lock, whose
//! workers run its invocations. Operators and services often need more: a web handler that
//! starts an order, a CLI that approves it with an event, an admin who cancels a tree or
//! retries a failure — in other processes, while the workers run. So the owner serves
//! `<dir>/control.sock` (a Unix socket, mode 0600 in the store's private directory:
//! reachable only by the user that can open the store anyway) with [`ControlServer`], and any
//! other process talks to it with [`ControlClient`], a [`crate::Store`] whose operations the
//! owner runs on its own store: submissions, reads, waiting for results, events, cancellation,
//! retries and purges behave and fail exactly as they do in the owner. Running workers is the
//! one thing a client cannot do ([`crate::StoreError::NotOwner`]).
//!
//! The runtime does both sides itself: an `App` that opens a file store serves its socket, and
//! an `App` that finds the store locked by a live owner becomes its client. The wire format
//! (module `protocol`) is one length-prefixed, size-limited frame per request and per response.
//!
//! Unix only. For workers in several processes or on several machines, use the Redis backend.

mod client;
mod protocol;
mod server;

pub use self::client::ControlClient;
pub use self::server::ControlServer;

/// The socket's file name inside the store directory.
pub const SOCKET_FILE: &str = "control.sock";

/// What [`crate::StoreRead::backend`] says for a [`ControlClient`].
pub const BACKEND: &str = "file (through its owning process)";
