//! The owner's side: a Unix socket in the store directory, served by one thread per client
//! connection, each request run on the owner's store.

use std::collections::HashMap;
use std::fs;
use std::io::{BufReader, BufWriter};
use std::net::Shutdown;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::SOCKET_FILE;
use super::protocol::{
    PROTOCOL_VERSION, ReadError, Request, Response, WireError, read_frame, write_frame,
};
use crate::error::StoreError;
use crate::store::Store;

/// Client connections served at once; further ones are closed at once (a client then reports
/// the owner unavailable and may try again).
const MAX_CONNECTIONS: usize = 64;

/// The longest one `WaitFinal` request blocks the owner's thread; clients ask again.
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(2);

/// Serves a store's control socket until dropped.
///
/// Started by the process that owns a file store (the runtime does it when it opens one), so
/// that other processes on the machine can submit, read, send events, cancel and retry through
/// it (see [`super::ControlClient`]). It holds the store weakly: dropping the last `Arc` of the
/// store is not delayed by idle clients.
pub struct ControlServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    connections: Arc<Connections>,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for ControlServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlServer")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Live client connections, so that stopping can close them.
#[derive(Default)]
struct Connections {
    next: AtomicU64,
    open: Mutex<HashMap<u64, UnixStream>>,
}

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, UnixStream>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ControlServer {
    /// Binds `<dir>/control.sock` (replacing a socket file a dead owner left: call this only
    /// while holding the store's lock) with mode 0600, and starts serving `store` on it.
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] when the socket cannot be bound (for example a directory path longer
    /// than a Unix socket path may be, about 100 bytes) or its mode cannot be set.
    pub fn start(dir: &Path, store: Weak<dyn Store>) -> Result<Self, StoreError> {
        let path = dir.join(SOCKET_FILE);
        let io = |source| StoreError::Io {
            path: path.clone(),
            source,
        };
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        let listener = UnixListener::bind(&path).map_err(io)?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).map_err(io)?;
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(Connections::default());
        let accept = {
            let (stop, connections) = (stop.clone(), connections.clone());
            thread::Builder::new()
                .name("wf-control".into())
                .spawn(move || accept_loop(&listener, &stop, &connections, &store))
                .map_err(io)?
        };
        Ok(Self {
            path,
            stop,
            connections,
            accept: Some(accept),
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop with a connection of our own; it sees the flag and returns.
        // If that fails (the socket file was removed under us), the thread is left blocked in
        // `accept` rather than joined: it holds nothing but a weak reference to the store.
        if UnixStream::connect(&self.path).is_ok()
            && let Some(accept) = self.accept.take()
        {
            let _ = accept.join();
        }
        for stream in self.connections.lock().values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        let _ = fs::remove_file(&self.path);
    }
}

fn accept_loop(
    listener: &UnixListener,
    stop: &AtomicBool,
    connections: &Arc<Connections>,
    store: &Weak<dyn Store>,
) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "control socket: accepting a connection failed");
                continue;
            }
        };
        let id = connections.next.fetch_add(1, Ordering::Relaxed);
        {
            let mut open = connections.lock();
            if open.len() >= MAX_CONNECTIONS {
                tracing::warn!(
                    limit = MAX_CONNECTIONS,
                    "control socket: too many clients, closing a new connection"
                );
                continue;
            }
            match stream.try_clone() {
                Ok(clone) => open.insert(id, clone),
                Err(_) => continue,
            };
        }
        let (connections, store) = (connections.clone(), store.clone());
        let spawned = thread::Builder::new()
            .name("wf-control-client".into())
            .spawn(move || {
                serve(stream, &store);
                connections.lock().remove(&id);
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "control socket: cannot start a thread for a client");
        }
    }
}

/// Answers one client's requests until it hangs up or the store is gone.
fn serve(stream: UnixStream, store: &Weak<dyn Store>) {
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    let mut input = BufReader::new(stream);
    let mut output = BufWriter::new(write_half);
    loop {
        let request: Request = match read_frame(&mut input) {
            Ok(r) => r,
            Err(ReadError::Closed) => return,
            Err(ReadError::Broken(why)) => {
                tracing::debug!(%why, "control socket: dropping a client that sent a bad frame");
                return;
            }
        };
        let response = match store.upgrade() {
            Some(store) => answer(store.as_ref(), request),
            None => Response::Failed(WireError::Unavailable(
                "the store's owner is closing it; try again once it (or its next owner) runs"
                    .into(),
            )),
        };
        if write_frame(&mut output, &response).is_err() {
            return;
        }
    }
}

/// Runs one request on the store.
fn answer(store: &dyn Store, request: Request) -> Response {
    let result = match request {
        Request::Hello => Ok(Response::Hello {
            version: PROTOCOL_VERSION,
            pid: std::process::id(),
        }),
        Request::AppId => store.app_id().map(Response::AppId),
        Request::Invocation(id) => store.invocation(id).map(Response::Record),
        Request::Invocations(ids) => store.invocations(&ids).map(Response::Records),
        Request::Journal(id) => store.journal(id).map(Response::Journal),
        Request::GetData(wf, key) => store.get_data(wf, &key).map(Response::Data),
        Request::DataKeys(wf) => store.data_keys(wf).map(Response::Keys),
        Request::WorkflowInvocations(wf) => store.workflow_invocations(wf).map(Response::Ids),
        Request::Workflows => store.workflows().map(Response::Records),
        Request::Counts => store.counts().map(Response::Counts),
        Request::Purgeable(before) => store.purgeable(before).map(Response::Ids),
        Request::WaitFinal(id, ms) => {
            let wait = Duration::from_millis(ms).min(MAX_WAIT);
            store.wait_final(id, wait).map(Response::Final)
        }
        Request::Events(id) => store.events(id).map(Response::Inbox),
        Request::CancelRequests(ids) => store.cancel_requests(&ids).map(Response::CancelRequests),
        Request::BindApp(app) => store.bind_app(&app).map(|()| Response::Done),
        Request::Submit(new, now) => store.submit(new, now).map(Response::Submitted),
        Request::SubmitMany(news, now) => store.submit_many(news, now).map(Response::SubmittedMany),
        Request::SendEvent(to, event, now) => {
            store.send_event(to, event, now).map(Response::EventSent)
        }
        Request::Cancel(id, reason, now) => store.cancel(id, &reason, now).map(|()| Response::Done),
        Request::PurgeFinished(before) => store.purge_finished(before).map(Response::Purged),
        Request::CancelTree(id, reason, now) => store
            .cancel_tree(id, &reason, now)
            .map(Response::CancelReport),
        Request::Retry(id, now) => store.retry(id, now).map(|()| Response::Done),
    };
    result.unwrap_or_else(|e| Response::Failed(WireError::from(&e)))
}
