//! The client's side: a [`Store`] whose operations run in the process that owns the file store.

use std::io::{BufReader, BufWriter};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use wf_core::{InvocationId, JournalEntry, Timestamp, WorkerId};

use super::protocol::{PROTOCOL_VERSION, ReadError, Request, Response, read_frame, write_frame};
use super::server::MAX_WAIT;
use super::{BACKEND, SOCKET_FILE};
use crate::error::StoreError;
use crate::model::{
    Claim, Commit, InvocationRecord, Lease, NewInvocation, StatusCounts, Submitted, TaskSet,
};
use crate::steering::{CancelReport, EventInbox, EventSent, NewEvent};
use crate::store::{StoreAdmin, StoreRead, StoreWork};

/// One open connection to the owner.
struct Connection {
    input: BufReader<UnixStream>,
    output: BufWriter<UnixStream>,
}

/// A file store reached through the control socket of the process that owns it.
///
/// A file store has one owning process (it holds the directory's lock). Any other process on
/// the machine that opens the same directory through the runtime gets one of these instead:
/// it submits, reads, waits for results, sends events, cancels, retries and purges, each
/// operation run by the owner on its store, with the same answers and errors. It does not run
/// workers: claiming work is refused with [`StoreError::NotOwner`].
///
/// ```no_run
/// use wf_store::{StoreRead, control::ControlClient};
///
/// let store = ControlClient::connect("./wf-data".as_ref())?;
/// println!("{} workflows", store.workflows()?.len());
/// # Ok::<(), wf_store::StoreError>(())
/// ```
pub struct ControlClient {
    dir: PathBuf,
    socket: PathBuf,
    owner_pid: u32,
    idle: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for ControlClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlClient")
            .field("dir", &self.dir)
            .field("owner_pid", &self.owner_pid)
            .finish_non_exhaustive()
    }
}

impl ControlClient {
    /// Connects to the process that owns the file store in `dir`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when no process serves the store's control socket (the
    /// owner does not run the control socket, has exited, or the directory is not a store), or
    /// it speaks another protocol version.
    pub fn connect(dir: &Path) -> Result<Self, StoreError> {
        let client = Self {
            dir: dir.to_path_buf(),
            socket: dir.join(SOCKET_FILE),
            owner_pid: 0,
            idle: Mutex::new(Vec::new()),
        };
        match client.call(Request::Hello)? {
            Response::Hello { version, pid } if version == PROTOCOL_VERSION => Ok(Self {
                owner_pid: pid,
                ..client
            }),
            Response::Hello { version, .. } => Err(StoreError::Unavailable(format!(
                "the process that owns store {} speaks control protocol {version}, this build \
                 speaks {PROTOCOL_VERSION}: run the same wf version in both",
                dir.display()
            ))),
            other => Err(client.unexpected(&other)),
        }
    }

    /// The process id of the store's owner.
    pub fn owner_pid(&self) -> u32 {
        self.owner_pid
    }

    fn open(&self) -> Result<Connection, StoreError> {
        let stream = UnixStream::connect(&self.socket).map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot reach the process that owns store {} through {} ({e}): is it still \
                 running? (a file store is reachable from other processes only while its owner \
                 runs)",
                self.dir.display(),
                self.socket.display()
            ))
        })?;
        let write_half = stream
            .try_clone()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(Connection {
            input: BufReader::new(stream),
            output: BufWriter::new(write_half),
        })
    }

    /// Sends one request and reads its response, on an idle connection or a new one. A failed
    /// connection is dropped, never reused.
    fn call(&self, request: Request) -> Result<Response, StoreError> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let lost = |why: String| {
            StoreError::Unavailable(format!(
                "lost the connection to the process that owns store {} ({why}); an operation \
                 in flight may or may not have been applied: read the state back before \
                 repeating it",
                self.dir.display()
            ))
        };
        // A request that could not be written never reached the owner: on an idle connection
        // (the owner may have closed it since) it is sent again on a new one.
        let reused = idle.and_then(|mut c| write_frame(&mut c.output, &request).ok().map(|()| c));
        let mut conn = match reused {
            Some(c) => c,
            None => {
                let mut c = self.open()?;
                write_frame(&mut c.output, &request).map_err(lost)?;
                c
            }
        };
        let response = match read_frame(&mut conn.input) {
            Ok(r) => r,
            Err(ReadError::Closed) => return Err(lost("the owner closed it".into())),
            Err(ReadError::Broken(why)) => return Err(lost(why)),
        };
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(conn);
        match response {
            Response::Failed(e) => Err(e.into_store_error(&self.dir.display().to_string())),
            r => Ok(r),
        }
    }

    fn unexpected(&self, response: &Response) -> StoreError {
        StoreError::Backend {
            store: self.dir.display().to_string(),
            message: format!(
                "the store's owner answered with an unexpected {response:?}: run the same wf \
                 version in both processes"
            ),
        }
    }

    fn not_owner(&self) -> StoreError {
        StoreError::NotOwner {
            path: self.dir.clone(),
            pid: self.owner_pid,
        }
    }
}

/// Calls and takes the expected response variant apart.
macro_rules! ask {
    ($self:ident, $request:expr, $variant:ident($x:ident) => $value:expr) => {
        match $self.call($request)? {
            Response::$variant($x) => Ok($value),
            other => Err($self.unexpected(&other)),
        }
    };
    ($self:ident, $request:expr, $variant:ident) => {
        match $self.call($request)? {
            Response::$variant => Ok(()),
            other => Err($self.unexpected(&other)),
        }
    };
}

impl StoreRead for ControlClient {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn app_id(&self) -> Result<Option<String>, StoreError> {
        ask!(self, Request::AppId, AppId(x) => x)
    }

    fn invocation(&self, id: InvocationId) -> Result<InvocationRecord, StoreError> {
        ask!(self, Request::Invocation(id), Record(x) => x)
    }

    fn invocations(&self, ids: &[InvocationId]) -> Result<Vec<InvocationRecord>, StoreError> {
        ask!(self, Request::Invocations(ids.to_vec()), Records(x) => x)
    }

    fn journal(&self, id: InvocationId) -> Result<Vec<JournalEntry>, StoreError> {
        ask!(self, Request::Journal(id), Journal(x) => x)
    }

    fn get_data(&self, workflow: InvocationId, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        ask!(self, Request::GetData(workflow, key.to_owned()), Data(x) => x)
    }

    fn data_keys(&self, workflow: InvocationId) -> Result<Vec<String>, StoreError> {
        ask!(self, Request::DataKeys(workflow), Keys(x) => x)
    }

    fn workflow_invocations(
        &self,
        workflow: InvocationId,
    ) -> Result<Vec<InvocationId>, StoreError> {
        ask!(self, Request::WorkflowInvocations(workflow), Ids(x) => x)
    }

    fn workflows(&self) -> Result<Vec<InvocationRecord>, StoreError> {
        ask!(self, Request::Workflows, Records(x) => x)
    }

    fn counts(&self) -> Result<StatusCounts, StoreError> {
        ask!(self, Request::Counts, Counts(x) => x)
    }

    fn purgeable(&self, finished_before: Timestamp) -> Result<Vec<InvocationId>, StoreError> {
        ask!(self, Request::Purgeable(finished_before), Ids(x) => x)
    }

    fn wait_final(
        &self,
        id: InvocationId,
        timeout: Duration,
    ) -> Result<Option<InvocationRecord>, StoreError> {
        // In slices, so that no owner thread blocks long for one client.
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let left = deadline.map_or(MAX_WAIT, |d| d.saturating_duration_since(Instant::now()));
            let slice = left.min(MAX_WAIT);
            let ms = u64::try_from(slice.as_millis()).unwrap_or(u64::MAX);
            let found = ask!(self, Request::WaitFinal(id, ms), Final(x) => x)?;
            if found.is_some() || left <= MAX_WAIT {
                return Ok(found);
            }
        }
    }

    fn events(&self, id: InvocationId) -> Result<EventInbox, StoreError> {
        ask!(self, Request::Events(id), Inbox(x) => x)
    }

    fn cancel_requests(
        &self,
        ids: &[InvocationId],
    ) -> Result<Vec<(InvocationId, String)>, StoreError> {
        ask!(self, Request::CancelRequests(ids.to_vec()), CancelRequests(x) => x)
    }
}

impl StoreWork for ControlClient {
    fn bind_app(&self, app_id: &str) -> Result<(), StoreError> {
        ask!(self, Request::BindApp(app_id.to_owned()), Done)
    }

    fn submit(&self, invocation: NewInvocation, now: Timestamp) -> Result<Submitted, StoreError> {
        ask!(self, Request::Submit(invocation, now), Submitted(x) => x)
    }

    fn submit_many(
        &self,
        invocations: Vec<NewInvocation>,
        now: Timestamp,
    ) -> Result<Vec<Submitted>, StoreError> {
        ask!(self, Request::SubmitMany(invocations, now), SubmittedMany(x) => x)
    }

    fn claim(
        &self,
        _worker: &WorkerId,
        _tasks: &TaskSet,
        _lease_for: Duration,
        _now: Timestamp,
    ) -> Result<Option<Claim>, StoreError> {
        Err(self.not_owner())
    }

    fn next_due(&self, _tasks: &TaskSet) -> Result<Option<Timestamp>, StoreError> {
        Err(self.not_owner())
    }

    fn wait_for_work(&self, _tasks: &TaskSet, _timeout: Duration) -> Result<bool, StoreError> {
        Err(self.not_owner())
    }

    fn renew(
        &self,
        _lease: &Lease,
        _lease_for: Duration,
        _now: Timestamp,
    ) -> Result<Lease, StoreError> {
        Err(self.not_owner())
    }

    fn commit(&self, _lease: &Lease, _commit: Commit, _now: Timestamp) -> Result<(), StoreError> {
        Err(self.not_owner())
    }

    fn recover_expired(&self, _now: Timestamp) -> Result<Vec<InvocationId>, StoreError> {
        Err(self.not_owner())
    }

    fn send_event(
        &self,
        to: InvocationId,
        event: NewEvent,
        now: Timestamp,
    ) -> Result<EventSent, StoreError> {
        ask!(self, Request::SendEvent(to, event, now), EventSent(x) => x)
    }
}

impl StoreAdmin for ControlClient {
    fn cancel(&self, id: InvocationId, reason: &str, now: Timestamp) -> Result<(), StoreError> {
        ask!(self, Request::Cancel(id, reason.to_owned(), now), Done)
    }

    fn purge_finished(&self, finished_before: Timestamp) -> Result<usize, StoreError> {
        ask!(self, Request::PurgeFinished(finished_before), Purged(x) => x)
    }

    fn cancel_tree(
        &self,
        id: InvocationId,
        reason: &str,
        now: Timestamp,
    ) -> Result<CancelReport, StoreError> {
        ask!(self, Request::CancelTree(id, reason.to_owned(), now), CancelReport(x) => x)
    }

    fn retry(&self, id: InvocationId, now: Timestamp) -> Result<(), StoreError> {
        ask!(self, Request::Retry(id, now), Done)
    }
}
