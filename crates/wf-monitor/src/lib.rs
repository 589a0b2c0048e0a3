//! The web monitor of wf stores: workflows as trees and timelines in a browser.
//!
//! [`router`] serves, over any store the `wf` inspector reads (a file store directory, owned by
//! a running process or not, or a Redis store), server-rendered pages: the workflows (filtered,
//! paginated, counted by status), one workflow as a tree and an SVG timeline that updates while
//! it runs, one invocation with its journal, data and error; and the management actions
//! (retry, cancel, purge with a dry run), each behind a confirmation. Reads go through
//! [`wf_runtime::Inspector`], actions through [`wf_runtime::Admin`] and the store's
//! `cancel_tree`; a file store owned by a running process is read from a lock-free snapshot
//! and changed through its owner's control socket, as the `wf` commands do.
//!
//! `wf serve --store <dir|redis-url>` runs it. Bound to 127.0.0.1 it needs no token; with a
//! token ([`MonitorConfig::token`]) every request must carry it.
//!
//! ```no_run
//! # async fn serve() -> Result<(), wf_monitor::MonitorError> {
//! use wf_monitor::{MonitorConfig, StoreSource};
//!
//! let config = MonitorConfig::new(StoreSource::File("wf-data/orders/store".into()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! wf_monitor::serve(listener, config).await?;
//! # Ok(()) }
//! ```

mod actions;
mod auth;
mod error;
mod html;
pub mod journal;
mod pages;
mod routes;
mod source;
mod timeline;
pub mod value;

use std::net::IpAddr;
use std::path::PathBuf;

pub use axum::Router;
pub use error::MonitorError;
pub use html::url_value;
pub use routes::router;

/// Where the monitor reads from: a file store directory or a Redis URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSource {
    /// A file store directory (owned by a running process or not).
    File(PathBuf),
    /// A Redis store URL (`redis://` or `rediss://`, with its `ns=` option).
    Redis(String),
}

/// How the monitor runs: its store and its access token.
#[derive(Clone)]
pub struct MonitorConfig {
    pub(crate) source: StoreSource,
    pub(crate) token: Option<String>,
    pub(crate) loopback_only: bool,
}

impl std::fmt::Debug for MonitorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MonitorConfig")
            .field("source", &self.source)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("loopback_only", &self.loopback_only)
            .finish()
    }
}

impl MonitorConfig {
    /// A monitor of `source`, without a token, answering loopback host names only.
    pub fn new(source: StoreSource) -> Self {
        Self {
            source,
            token: None,
            loopback_only: true,
        }
    }

    /// Requires `token` on every request: as `Authorization: Bearer <token>`, or once as
    /// `?token=<token>` in a browser (which then keeps it in a cookie). An empty token is no
    /// token.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        let token = token.into();
        self.token = (!token.is_empty()).then_some(token);
        self
    }

    /// Whether requests must name a loopback host (`127.0.0.1`, `localhost`, `[::1]`) in their
    /// `Host` header: on by default, so a web page cannot reach a token-less monitor through a
    /// name it resolves to 127.0.0.1 (DNS rebinding). Turned off for a monitor bound to another
    /// address ([`MonitorConfig::for_bind`] does it).
    pub fn loopback_only(mut self, on: bool) -> Self {
        self.loopback_only = on;
        self
    }

    /// Sets [`MonitorConfig::loopback_only`] from the address the monitor listens on.
    pub fn for_bind(self, ip: IpAddr) -> Self {
        self.loopback_only(ip.is_loopback())
    }
}

/// Serves the monitor on `listener` until the process ends.
///
/// # Errors
///
/// [`MonitorError::Store`] when the store cannot be opened (a missing directory, a Redis
/// namespace that holds nothing); [`MonitorError::Io`] when serving fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: MonitorConfig,
) -> Result<(), MonitorError> {
    serve_router(listener, router(config)?).await
}

/// Serves a [`router`] already built (its store checked) on `listener` until the process ends.
///
/// # Errors
///
/// [`MonitorError::Io`] when serving fails.
pub async fn serve_router(
    listener: tokio::net::TcpListener,
    router: Router,
) -> Result<(), MonitorError> {
    axum::serve(listener, router).await?;
    Ok(())
}
