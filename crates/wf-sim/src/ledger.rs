//! What the store acknowledged: a [`Store`] wrapper that passes every call on and, for every
//! call that returned `Ok`, notes what must now survive any crash (submitted invocations, final
//! outcomes). The notes live in the driver's memory, outside the simulated disk, and outlive
//! the store they were taken from.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use wf_core::{InvocationId, JournalEntry, Timestamp, WorkerId};
use wf_store::{
    CancelReport, Checkpoint, Claim, Commit, EventInbox, EventSent, InvocationRecord, Lease,
    NewEvent, NewInvocation, Outcome, StatusCounts, Store, StoreAdmin, StoreError, StoreRead,
    StoreWork, Submitted, TaskSet,
};

/// A final outcome the store acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Final {
    /// Succeeded with these result bytes.
    Success(Vec<u8>),
    /// Failed.
    Failed,
    /// Ended cancelled (a failure of kind `Cancelled`: a body told of its cancellation).
    Cancelled,
}

/// The acknowledgements, shared between the driver and the stores it opens.
#[derive(Debug, Default)]
pub struct Acks {
    /// Invocations whose submission (alone, or as a child in a commit or checkpoint) was
    /// acknowledged.
    pub submitted: BTreeMap<InvocationId, ()>,
    /// Invocations whose final outcome was acknowledged.
    pub finals: BTreeMap<InvocationId, Final>,
    /// Journal entries acknowledged (in a commit or checkpoint), by invocation and position.
    pub journals: BTreeMap<InvocationId, BTreeMap<u32, JournalEntry>>,
    /// Workflow data writes acknowledged, by the writing (root) invocation and key.
    pub data: BTreeMap<(InvocationId, String), Vec<u8>>,
    /// Commits acknowledged.
    pub commits: u64,
}

/// A shared handle on [`Acks`].
pub type SharedAcks = Arc<Mutex<Acks>>;

/// Locks the acknowledgements.
pub fn acks(shared: &SharedAcks) -> MutexGuard<'_, Acks> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

/// The worker name the store sees. The runtime names its inline worker after the process id and
/// a process-wide counter, whose digits would make the log's records (and so where a torn crash
/// cuts) depend on the process and on the seeds run before; the simulation has one inline
/// worker per app, so it is given one fixed name. Other names (the zombie's) pass unchanged.
fn canonical(worker: &WorkerId) -> WorkerId {
    if worker.as_str().ends_with("-inline") {
        WorkerId::new("sim-inline-worker")
    } else {
        worker.clone()
    }
}

/// Told of every failed work call (`submit`, `claim`, `commit`, `checkpoint`, `send_event`,
/// `next_due`, `recover_expired`), by name, with its error: the Redis driver heals a proxy's
/// outage once a call gave up under it.
pub type FailureHook = Arc<dyn Fn(&'static str, &StoreError) + Send + Sync>;

/// A store that notes what it acknowledged in an [`Acks`].
pub struct Ledger<S> {
    inner: S,
    acks: SharedAcks,
    hook: Option<FailureHook>,
    cancels_race: bool,
}

impl<S: std::fmt::Debug> std::fmt::Debug for Ledger<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("inner", &self.inner)
            .field("hook", &self.hook.is_some())
            .finish_non_exhaustive()
    }
}

impl<S> Ledger<S> {
    /// Wraps `inner`, noting its acknowledgements in `acks`.
    pub fn new(inner: S, acks: SharedAcks) -> Self {
        Self {
            inner,
            acks,
            hook: None,
            cancels_race: false,
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// For runs where a cancellation may be requested while an execution runs (real worker
    /// threads): a commit the store answers `Ok` then may have written nothing (the request
    /// wins over what the execution did, by contract), so after each commit that did not
    /// acknowledge a cancellation the ledger reads the invocation, and notes only its
    /// cancellation when it ended cancelled.
    pub fn cancels_race(mut self) -> Self {
        self.cancels_race = true;
        self
    }

    /// Tells `hook` of every failed work call.
    pub fn with_hook(mut self, hook: FailureHook) -> Self {
        self.hook = Some(hook);
        self
    }

    /// Passes `r` on, telling the hook when it failed.
    fn seen<T>(&self, call: &'static str, r: Result<T, StoreError>) -> Result<T, StoreError> {
        if let (Err(e), Some(hook)) = (&r, &self.hook) {
            hook(call, e);
        }
        r
    }

    fn note_parts(
        &self,
        id: InvocationId,
        journal: Vec<JournalEntry>,
        data: Vec<(String, Vec<u8>)>,
    ) {
        let mut a = acks(&self.acks);
        let entries = a.journals.entry(id).or_default();
        for e in journal {
            entries.insert(e.seq, e);
        }
        for (key, bytes) in data {
            a.data.insert((id, key), bytes);
        }
    }

    /// Notes what handing out `record` (a claim, a read, a `wait_final`) tells its receiver:
    /// the invocation exists and, when final, its outcome. Both must now survive any crash
    /// (durable before visible), whether a plain or a pipelined commit made them.
    fn note_seen(&self, record: &InvocationRecord) {
        let mut a = acks(&self.acks);
        a.submitted.insert(record.id(), ());
        let f = match record.state.status {
            wf_core::Status::Success => record.state.result.clone().map(Final::Success),
            wf_core::Status::Failed => Some(Final::Failed),
            _ => None,
        };
        if let Some(f) = f {
            a.finals.insert(record.id(), f);
        }
    }

    fn note_children(&self, children: &[InvocationId]) {
        let mut a = acks(&self.acks);
        for id in children {
            a.submitted.insert(*id, ());
        }
    }
}

impl<S: Store> StoreRead for Ledger<S> {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    fn app_id(&self) -> Result<Option<String>, StoreError> {
        self.inner.app_id()
    }
    fn invocation(&self, id: InvocationId) -> Result<InvocationRecord, StoreError> {
        // Not noted: the checks read through this wrapper with the notes locked.
        self.inner.invocation(id)
    }
    fn journal(&self, id: InvocationId) -> Result<Vec<JournalEntry>, StoreError> {
        self.inner.journal(id)
    }
    fn get_data(&self, workflow: InvocationId, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get_data(workflow, key)
    }
    fn data_keys(&self, workflow: InvocationId) -> Result<Vec<String>, StoreError> {
        self.inner.data_keys(workflow)
    }
    fn workflow_invocations(
        &self,
        workflow: InvocationId,
    ) -> Result<Vec<InvocationId>, StoreError> {
        self.inner.workflow_invocations(workflow)
    }
    fn workflows(&self) -> Result<Vec<InvocationRecord>, StoreError> {
        self.inner.workflows()
    }
    fn counts(&self) -> Result<StatusCounts, StoreError> {
        self.inner.counts()
    }
    fn purgeable(&self, finished_before: Timestamp) -> Result<Vec<InvocationId>, StoreError> {
        self.inner.purgeable(finished_before)
    }
    fn wait_final(
        &self,
        id: InvocationId,
        timeout: Duration,
    ) -> Result<Option<InvocationRecord>, StoreError> {
        let r = self.seen("wait_final", self.inner.wait_final(id, timeout))?;
        if let Some(r) = &r {
            self.note_seen(r);
        }
        Ok(r)
    }
    fn events(&self, id: InvocationId) -> Result<EventInbox, StoreError> {
        self.inner.events(id)
    }
    fn cancel_requests(
        &self,
        ids: &[InvocationId],
    ) -> Result<Vec<(InvocationId, String)>, StoreError> {
        self.inner.cancel_requests(ids)
    }
}

impl<S: Store> StoreWork for Ledger<S> {
    fn bind_app(&self, app_id: &str) -> Result<(), StoreError> {
        self.inner.bind_app(app_id)
    }
    fn submit(&self, invocation: NewInvocation, now: Timestamp) -> Result<Submitted, StoreError> {
        let id = invocation.id;
        let out = self.seen("submit", self.inner.submit(invocation, now))?;
        self.note_children(&[id]);
        Ok(out)
    }
    fn submit_many(
        &self,
        invocations: Vec<NewInvocation>,
        now: Timestamp,
    ) -> Result<Vec<Submitted>, StoreError> {
        let ids: Vec<InvocationId> = invocations.iter().map(|i| i.id).collect();
        let out = self.inner.submit_many(invocations, now)?;
        self.note_children(&ids);
        Ok(out)
    }
    fn claim(
        &self,
        worker: &WorkerId,
        tasks: &TaskSet,
        lease_for: Duration,
        now: Timestamp,
    ) -> Result<Option<Claim>, StoreError> {
        let c = self.seen(
            "claim",
            self.inner.claim(&canonical(worker), tasks, lease_for, now),
        )?;
        if let Some(c) = &c {
            self.note_seen(&c.record);
            self.note_parts(c.lease.invocation, c.journal.clone(), Vec::new());
        }
        Ok(c)
    }
    fn next_due(&self, tasks: &TaskSet) -> Result<Option<Timestamp>, StoreError> {
        self.seen("next_due", self.inner.next_due(tasks))
    }
    fn wait_for_work(&self, tasks: &TaskSet, timeout: Duration) -> Result<bool, StoreError> {
        self.inner.wait_for_work(tasks, timeout)
    }
    fn renew(
        &self,
        lease: &Lease,
        lease_for: Duration,
        now: Timestamp,
    ) -> Result<Lease, StoreError> {
        self.inner.renew(lease, lease_for, now)
    }
    fn commit(&self, lease: &Lease, commit: Commit, now: Timestamp) -> Result<(), StoreError> {
        let children: Vec<InvocationId> = commit.children.iter().map(|c| c.id).collect();
        let (journal, data) = (commit.journal.clone(), commit.data.clone());
        let outcome = match &commit.outcome {
            Outcome::Success(bytes) => Some(Final::Success(bytes.clone())),
            Outcome::Failed(f) if f.kind == wf_core::FailureKind::Cancelled => {
                Some(Final::Cancelled)
            }
            Outcome::Failed(_) => Some(Final::Failed),
            _ => None,
        };
        let told = commit.cancel_acknowledged;
        self.seen("commit", self.inner.commit(lease, commit, now))?;
        if self.cancels_race && !told {
            match self.inner.invocation(lease.invocation) {
                Ok(r) if r.state.status == wf_core::Status::Cancelled => {
                    let mut a = acks(&self.acks);
                    a.commits += 1;
                    a.finals.insert(lease.invocation, Final::Cancelled);
                    return Ok(());
                }
                Ok(_) => {}
                // Unknown: note nothing more than what certainly holds.
                Err(_) => return Ok(()),
            }
        }
        self.note_children(&children);
        self.note_parts(lease.invocation, journal, data);
        let mut a = acks(&self.acks);
        a.commits += 1;
        if let Some(f) = outcome {
            a.finals.insert(lease.invocation, f);
        }
        Ok(())
    }
    fn commit_pipelined(
        &self,
        lease: &Lease,
        commit: Commit,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        // Acknowledges nothing that must survive: what it did is noted when it is handed out.
        self.seen(
            "commit_pipelined",
            self.inner.commit_pipelined(lease, commit, now),
        )?;
        acks(&self.acks).commits += 1;
        Ok(())
    }
    fn checkpoint(
        &self,
        lease: &Lease,
        checkpoint: Checkpoint,
        run: InvocationId,
        lease_for: Duration,
        now: Timestamp,
    ) -> Result<Option<Claim>, StoreError> {
        let children: Vec<InvocationId> = checkpoint.children.iter().map(|c| c.id).collect();
        let (journal, data) = (checkpoint.journal.clone(), checkpoint.data.clone());
        let out = self.seen(
            "checkpoint",
            self.inner
                .checkpoint(lease, checkpoint, run, lease_for, now),
        )?;
        self.note_children(&children);
        self.note_parts(lease.invocation, journal, data);
        Ok(out)
    }
    fn recover_expired(&self, now: Timestamp) -> Result<Vec<InvocationId>, StoreError> {
        self.seen("recover_expired", self.inner.recover_expired(now))
    }
    fn send_event(
        &self,
        to: InvocationId,
        event: NewEvent,
        now: Timestamp,
    ) -> Result<EventSent, StoreError> {
        self.seen("send_event", self.inner.send_event(to, event, now))
    }
}

impl<S: Store> StoreAdmin for Ledger<S> {
    fn cancel(&self, id: InvocationId, reason: &str, now: Timestamp) -> Result<(), StoreError> {
        self.inner.cancel(id, reason, now)
    }
    fn purge_finished(&self, finished_before: Timestamp) -> Result<usize, StoreError> {
        self.inner.purge_finished(finished_before)
    }
    fn cancel_tree(
        &self,
        id: InvocationId,
        reason: &str,
        now: Timestamp,
    ) -> Result<CancelReport, StoreError> {
        self.inner.cancel_tree(id, reason, now)
    }
    fn retry(&self, id: InvocationId, now: Timestamp) -> Result<(), StoreError> {
        self.inner.retry(id, now)
    }
}

/// Wraps `store` in a [`Ledger`] as the `Arc<dyn Store>` an app takes.
pub fn ledgered<S: Store>(store: S, acks: SharedAcks) -> Arc<dyn Store> {
    Arc::new(Ledger::new(store, acks))
}
