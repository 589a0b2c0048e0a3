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
}
