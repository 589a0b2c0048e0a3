//! A store that forwards every call to a real store (memory or file) and lets a test step in
//! at a few points: refuse a data read or a commit, or act after a commit or a claim. The tests
//! use it to make the real stores behave like a flaky network store or a slow disk, at exact
//! moments instead of by chance.

use std::sync::Arc;
use std::time::Duration;

use wf::InvocationId;
use wf::core::{JournalEntry, Timestamp, WorkerId};
use wf::store::{
    CancelReport, Claim, Commit, EventInbox, EventSent, InvocationRecord, Lease, NewEvent,
    NewInvocation, StatusCounts, Store, StoreAdmin, StoreError, StoreRead, StoreWork, Submitted,
    TaskSet,
};

/// Where a test steps in. Every method's default does nothing.
pub trait Hooks: Send + Sync + 'static {
    /// Before a data read: `Some(error)` fails it.
    fn before_get_data(&self) -> Option<StoreError> {
        None
    }
    /// Before an events read: `Some(error)` fails it.
    fn before_events(&self) -> Option<StoreError> {
        None
    }
    /// Before a commit: `Some(error)` refuses it (nothing is written).
    fn before_commit(&self, _lease: &Lease, _commit: &Commit) -> Option<StoreError> {
        None
    }
    /// After a commit was written, before it returns to the worker.
    fn after_commit(&self, _lease: &Lease, _commit: &Commit) {}
    /// After a claim returned an invocation.
    fn after_claim(&self, _claim: &Claim) {}
}

/// The forwarding store.
pub struct Hooked<H> {
    pub inner: Arc<dyn Store>,
    pub hooks: H,
}

impl<H: Hooks> StoreRead for Hooked<H> {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    fn app_id(&self) -> Result<Option<String>, StoreError> {
        self.inner.app_id()
    }
    fn purgeable(&self, finished_before: Timestamp) -> Result<Vec<InvocationId>, StoreError> {
        self.inner.purgeable(finished_before)
    }
    fn invocation(&self, id: InvocationId) -> Result<InvocationRecord, StoreError> {
        self.inner.invocation(id)
    }
    fn journal(&self, id: InvocationId) -> Result<Vec<JournalEntry>, StoreError> {
        self.inner.journal(id)
    }
    fn get_data(&self, workflow: InvocationId, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(e) = self.hooks.before_get_data() {
            return Err(e);
        }
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
    fn wait_final(
        &self,
        id: InvocationId,
        timeout: Duration,
    ) -> Result<Option<InvocationRecord>, StoreError> {
        self.inner.wait_final(id, timeout)
    }
    fn events(&self, id: InvocationId) -> Result<EventInbox, StoreError> {
        if let Some(e) = self.hooks.before_events() {
            return Err(e);
        }
        self.inner.events(id)
    }
    fn cancel_requests(
        &self,
        ids: &[InvocationId],
    ) -> Result<Vec<(InvocationId, String)>, StoreError> {
        self.inner.cancel_requests(ids)
    }
}

impl<H: Hooks> StoreWork for Hooked<H> {
    fn bind_app(&self, app_id: &str) -> Result<(), StoreError> {
        self.inner.bind_app(app_id)
    }
    fn submit(&self, invocation: NewInvocation, now: Timestamp) -> Result<Submitted, StoreError> {
        self.inner.submit(invocation, now)
    }
    fn claim(
        &self,
        worker: &WorkerId,
        tasks: &TaskSet,
        lease_for: Duration,
        now: Timestamp,
    ) -> Result<Option<Claim>, StoreError> {
        let claim = self.inner.claim(worker, tasks, lease_for, now)?;
        if let Some(c) = &claim {
            self.hooks.after_claim(c);
        }
        Ok(claim)
    }
    fn next_due(&self, tasks: &TaskSet) -> Result<Option<Timestamp>, StoreError> {
        self.inner.next_due(tasks)
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
        if let Some(e) = self.hooks.before_commit(lease, &commit) {
            return Err(e);
        }
        let seen = commit.clone();
        self.inner.commit(lease, commit, now)?;
        self.hooks.after_commit(lease, &seen);
        Ok(())
    }
    fn recover_expired(&self, now: Timestamp) -> Result<Vec<InvocationId>, StoreError> {
        self.inner.recover_expired(now)
    }
    fn send_event(
        &self,
        to: InvocationId,
        event: NewEvent,
        now: Timestamp,
    ) -> Result<EventSent, StoreError> {
        self.inner.send_event(to, event, now)
    }
}

impl<H: Hooks> StoreAdmin for Hooked<H> {
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

/// One app per real backend whose store is wrapped with the hooks `make` builds (one set per
/// backend). The `TestApp` keeps the backend (and its directory) alive; the `Arc` lets the test
/// look at the hooks' state.
pub fn hooked_apps<H: Hooks>(
    make: impl Fn() -> H,
    configure: impl Fn(wf::AppBuilder) -> wf::AppBuilder,
) -> Vec<(super::TestApp, Arc<Hooked<H>>, wf::App)> {
    super::apps(|b| b)
        .into_iter()
        .map(|t| {
            let store = Arc::new(Hooked {
                inner: t.app.store().clone(),
                hooks: make(),
            });
            let app = configure(wf::App::builder().app_id("test").store(store.clone()))
                .build()
                .unwrap();
            (t, store, app)
        })
        .collect()
}
