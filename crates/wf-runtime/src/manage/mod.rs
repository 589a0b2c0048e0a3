//! The management API: list, read, count and purge workflows, from [`App`], or over any store
//! with an [`Inspector`] (reads) and an [`Admin`] (changes).

mod admin;
mod inspector;
mod query;
mod view;

use std::time::Duration;

use wf_core::InvocationId;
use wf_store::StatusCounts;

pub use admin::Admin;
pub use inspector::Inspector;
pub use query::{WorkflowList, WorkflowQuery, WorkflowSummary};
pub use view::{InvocationView, TreeNode, WorkflowTree};

use crate::app::App;
use crate::clock;
use crate::error::WfError;

/// Operations: what an operator or an admin endpoint needs, without touching the store.
impl App {
    /// Reads this app's store with an [`Inspector`].
    pub fn inspector(&self) -> Inspector<'_> {
        Inspector::new(self.store().as_ref())
    }

    /// Acts on this app's store with an [`Admin`].
    pub fn admin(&self) -> Admin<'_> {
        Admin::new(self.store().as_ref())
    }

    /// The workflows `query` selects, newest first.
    ///
    /// ```
    /// use wf_runtime::{App, TaskContext, TaskError, WorkflowQuery};
    ///
    /// let app = App::builder().memory().build()?;
    /// let job = app.task("job", |_: &TaskContext, n: u32| -> Result<u32, TaskError> { Ok(n) })?;
    /// for n in 0..3 {
    ///     job.call(&app, n)?;
    /// }
    /// let list = app.workflows(&WorkflowQuery::new().task("job").limit(2))?;
    /// assert_eq!((list.workflows.len(), list.matched), (2, 3));
    /// # Ok::<(), wf_runtime::WfError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`WfError::Store`] when the store cannot be read.
    pub fn workflows(&self, query: &WorkflowQuery) -> Result<WorkflowList, WfError> {
        self.inspector().workflows(query, clock::now())
    }

    /// One invocation, with typed access to its arguments and result ([`InvocationView`]).
    ///
    /// # Errors
    ///
    /// [`WfError::Store`] with [`wf_store::StoreError::InvocationNotFound`] for an unknown id.
    pub fn invocation(&self, id: InvocationId) -> Result<InvocationView, WfError> {
        self.inspector().invocation(id)
    }

    /// The tree of the workflow `id` belongs to, sub-workflows included ([`WorkflowTree`]).
    ///
    /// # Errors
    ///
    /// [`WfError::Store`] with [`wf_store::StoreError::InvocationNotFound`] for an unknown id.
    pub fn workflow(&self, id: InvocationId) -> Result<WorkflowTree, WfError> {
        self.inspector().workflow(id)
    }

    /// Invocation counts by status, over every workflow.
    ///
    /// # Errors
    ///
    /// [`WfError::Store`] when the store cannot be read.
    pub fn counts(&self) -> Result<StatusCounts, WfError> {
        self.inspector().counts()
    }

    /// Removes workflows that finished at least `older_than` ago: a workflow goes together with
    /// the sub-workflows started from it, once every invocation in them is final. Returns how
    /// many workflows (sub-workflows included) were removed.
    ///
    /// # Errors
    ///
    /// [`WfError::Store`] when the store fails.
    pub fn purge_finished(&self, older_than: Duration) -> Result<usize, WfError> {
        self.admin().purge_finished(older_than, clock::now())
    }

    /// The dry run of [`App::purge_finished`]: the workflows it would remove now, oldest first
    /// (sub-workflows listed with the workflow they belong to), removing nothing. A purge run
    /// later removes what has finished by then.
    ///
    /// # Errors
    ///
    /// [`WfError::Store`] when the store fails.
    pub fn purge_finished_dry_run(
        &self,
        older_than: Duration,
    ) -> Result<Vec<WorkflowSummary>, WfError> {
        self.inspector().purgeable(older_than, clock::now())
    }

    /// Retries a failed invocation: a new attempt that replays its journal, so what it recorded
    /// before it failed (values drawn, children finished) is not done again, and the work from
    /// the failed step on runs again — after you fixed what made it fail (a deploy, an outside
    /// service back up). It becomes pending at once with the task's retry budget anew; its
    /// last error stays visible until the new attempt ends. Wait for it with
    /// [`crate::Invocation::attach`] and `result()`.
    ///
    /// A workflow that failed because a child failed replays that recorded failure: retry
    /// the child while its caller still waits, or start the work again. A child whose caller
    /// has finished is refused (nothing would read its new result).
    ///
    /// ```
    /// use wf_runtime::{App, TaskContext, TaskError, WfError};
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    ///
    /// let app = App::builder().memory().build()?;
    /// let service_up = Arc::new(AtomicBool::new(false));
    /// let up = service_up.clone();
    /// let charge = app.task("charge", move |_: &TaskContext, cents: u64| -> Result<u64, TaskError> {
    ///     match up.load(Ordering::SeqCst) {
    ///         true => Ok(cents),
    ///         false => Err(TaskError::new("payment service unavailable")),
    ///     }
    /// })?;
    /// let inv = charge.call(&app, 1250)?;
    /// app.run_until_idle()?;
    /// assert!(matches!(inv.result(), Err(WfError::Failed { .. })));
    ///
    /// service_up.store(true, Ordering::SeqCst); // the outage is over
    /// app.retry(inv.id())?;
    /// app.run_until_idle()?;
    /// assert_eq!(inv.result()?, 1250);
    /// # Ok::<(), WfError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`WfError::Store`] with [`wf_store::StoreError::NotRetryable`] when the invocation is
    /// not failed or its caller is final, or [`wf_store::StoreError::InvocationNotFound`].
    pub fn retry(&self, id: InvocationId) -> Result<(), WfError> {
        self.admin().retry(id, clock::now())
    }
}
