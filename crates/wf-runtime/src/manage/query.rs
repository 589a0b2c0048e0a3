//! Listing workflows: which to show ([`WorkflowQuery`]) and what is shown ([`WorkflowSummary`]).

use std::time::Duration;

use wf_core::{InvocationId, Status, TaskId, Timestamp};
use wf_store::InvocationRecord;

/// Which workflows [`crate::App::workflows`] lists: filters by the root's status, the workflow's
/// type (its root task) and its age, and a limit. The list is newest first.
///
/// ```
/// use std::time::Duration;
/// use wf_core::Status;
/// use wf_runtime::WorkflowQuery;
///
/// // The 20 newest failed `order` workflows started more than an hour ago.
/// let q = WorkflowQuery::new()
///     .status(Status::Failed)
///     .task("order")
///     .older_than(Duration::from_secs(3600))
///     .limit(20);
/// # let _ = q;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkflowQuery {
    pub(crate) status: Option<Status>,
    pub(crate) task: Option<TaskId>,
    pub(crate) older_than: Option<Duration>,
    pub(crate) newer_than: Option<Duration>,
    pub(crate) limit: Option<usize>,
    pub(crate) top_level: bool,
}

impl WorkflowQuery {
    /// Every workflow, sub-workflows included, without a limit.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only workflows whose root has this status.
    pub fn status(mut self, status: Status) -> Self {
        self.status = Some(status);
        self
    }

    /// Only workflows of this type (the task of their root).
    pub fn task(mut self, name: impl Into<String>) -> Self {
        self.task = Some(TaskId::new(name));
        self
    }

    /// Only workflows started at least this long ago.
    pub fn older_than(mut self, age: Duration) -> Self {
        self.older_than = Some(age);
        self
    }

    /// Only workflows started less than this long ago.
    pub fn newer_than(mut self, age: Duration) -> Self {
        self.newer_than = Some(age);
        self
    }

    /// At most this many, the newest first.
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }

    /// Leave out sub-workflows (workflows started from inside another workflow).
    pub fn top_level(mut self) -> Self {
        self.top_level = true;
        self
    }

    pub(crate) fn matches(&self, root: &InvocationRecord, now: Timestamp) -> bool {
        let age = root.spec.created_at.until(now);
        self.status.is_none_or(|s| root.status() == s)
            && self
                .task
                .as_ref()
                .is_none_or(|t| root.spec.identity.workflow_type == *t)
            && self.older_than.is_none_or(|d| age >= d)
            && self.newer_than.is_none_or(|d| age < d)
            && (!self.top_level || !root.spec.identity.is_subworkflow())
    }
}

/// One workflow in a list: its root's identity, status and times, and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkflowSummary {
    /// The workflow's id (its root invocation's id).
    pub id: InvocationId,
    /// Its type: the root's task.
    pub workflow_type: TaskId,
    /// The root's status.
    pub status: Status,
    /// For a sub-workflow, the workflow it was started from.
    pub parent_workflow: Option<InvocationId>,
    /// When the root was submitted.
    pub created_at: Timestamp,
    /// When the root's status last changed.
    pub updated_at: Timestamp,
    /// How many invocations the workflow has (its root included, its sub-workflows not).
    pub invocations: usize,
}

impl WorkflowSummary {
    pub(crate) fn new(root: &InvocationRecord, invocations: usize) -> Self {
        Self {
            id: root.id(),
            workflow_type: root.spec.identity.workflow_type.clone(),
            status: root.status(),
            parent_workflow: root.spec.identity.parent_workflow_id,
            created_at: root.spec.created_at,
            updated_at: root.state.updated_at,
            invocations,
        }
    }
}

/// What [`crate::App::workflows`] found: the workflows shown and how many matched in all.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkflowList {
    /// The matching workflows, newest first, at most the query's limit.
    pub workflows: Vec<WorkflowSummary>,
    /// How many workflows matched before the limit.
    pub matched: usize,
}
