//! The management API: list, read, count and purge workflows, from [`App`] or over any store
//! with an [`Inspector`].

mod inspector;
mod query;
mod view;

use std::time::Duration;

use wf_core::{InvocationId, Timestamp};
use wf_store::StatusCounts;

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
        Ok(self.store().purge_finished(cutoff(older_than))?)
    }
}

/// The `finished_before` bound for "finished at least `older_than` ago": one millisecond past
/// `now - older_than`, so that `Duration::ZERO` takes everything finished up to now.
fn cutoff(older_than: Duration) -> Timestamp {
    let ms = u64::try_from(older_than.as_millis()).unwrap_or(u64::MAX);
    Timestamp(clock::now().0.saturating_sub(ms).saturating_add(1))
}
