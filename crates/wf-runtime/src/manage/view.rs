//! Reading one invocation ([`InvocationView`]) or one workflow tree ([`WorkflowTree`]), with
//! arguments and results decoded as the type the caller names.

use std::collections::{BTreeSet, HashMap};

use serde::de::DeserializeOwned;
use wf_core::{Failure, InvocationId, Status, TaskId, Timestamp, WorkflowIdentity, decode};
use wf_store::InvocationRecord;

use crate::error::WfError;

/// One invocation as stored: what was called, where it is, and its arguments and result
/// decoded as the types you name.
///
/// ```
/// use wf_runtime::{App, TaskContext, TaskError};
///
/// let app = App::builder().memory().build()?;
/// let len = app.task("len", |_: &TaskContext, s: String| -> Result<usize, TaskError> { Ok(s.len()) })?;
/// let inv = len.call(&app, "four".to_string())?;
/// app.run_until_idle()?;
///
/// let view = app.invocation(inv.id())?;
/// assert_eq!(view.task().as_str(), "len");
/// assert_eq!(view.args::<String>()?, "four");
/// assert_eq!(view.result::<usize>()?, Some(4));
/// # Ok::<(), wf_runtime::WfError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvocationView {
    record: InvocationRecord,
}

impl InvocationView {
    pub(crate) fn new(record: InvocationRecord) -> Self {
        Self { record }
    }

    /// The invocation's id.
    pub fn id(&self) -> InvocationId {
        self.record.id()
    }

    /// The task called.
    pub fn task(&self) -> &TaskId {
        &self.record.spec.task
    }

    /// Its status.
    pub fn status(&self) -> Status {
        self.record.status()
    }

    /// Its workflow.
    pub fn identity(&self) -> &WorkflowIdentity {
        &self.record.spec.identity
    }

    /// The invocation that called it; `None` for a call from outside any task.
    pub fn parent(&self) -> Option<InvocationId> {
        self.record.spec.parent
    }

    /// True when it is the root of its workflow (of a sub-workflow, too).
    pub fn is_root(&self) -> bool {
        self.record.is_root()
    }

    /// How many times a worker claimed it (every execution counts: retries, recoveries and
    /// replays after a wake-up).
    pub fn attempts(&self) -> u32 {
        self.record.state.attempts
    }

    /// How many executions ended in a retry.
    pub fn retries(&self) -> u32 {
        self.record.state.retries
    }

    /// When it was submitted.
    pub fn created_at(&self) -> Timestamp {
        self.record.spec.created_at
    }

    /// When its status last changed.
    pub fn updated_at(&self) -> Timestamp {
        self.record.state.updated_at
    }

    /// Its error: the final one once failed, the last attempt's while retrying.
    pub fn error(&self) -> Option<&Failure> {
        self.record.state.error.as_ref()
    }

    /// Its arguments, decoded as `A` (the task's argument type).
    ///
    /// # Errors
    ///
    /// [`WfError::Codec`] when the stored arguments do not decode as `A`.
    pub fn args<A: DeserializeOwned>(&self) -> Result<A, WfError> {
        Ok(decode(&self.record.spec.args)?)
    }

    /// Its result decoded as `R` (the task's result type) once it succeeded; `None` before, or
    /// when it failed.
    ///
    /// # Errors
    ///
    /// [`WfError::Codec`] when the stored result does not decode as `R`.
    pub fn result<R: DeserializeOwned>(&self) -> Result<Option<R>, WfError> {
        match &self.record.state.result {
            Some(bytes) => Ok(Some(decode(bytes)?)),
            None => Ok(None),
        }
    }

    /// Everything stored about it, for tools: encoded arguments and result, lease, not-before
    /// time, the children it waits on.
    pub fn record(&self) -> &InvocationRecord {
        &self.record
    }
}

/// One invocation in a [`WorkflowTree`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TreeNode {
    /// The invocation.
    pub invocation: InvocationView,
    /// How far below the tree's root: 0 for the root, 1 for what the root called, …
    pub depth: usize,
    /// True for the root of a sub-workflow started from inside the tree.
    pub subworkflow_root: bool,
}

/// A workflow and the sub-workflows started from it, as a tree of invocations: each under the
/// invocation that called it, depth first, callees in the order they were submitted.
///
/// ```
/// use wf_runtime::{App, TaskContext, TaskError};
///
/// let app = App::builder().memory().build()?;
/// let leaf = app.task("leaf", |_: &TaskContext, n: u32| -> Result<u32, TaskError> { Ok(n) })?;
/// let top = app.task("top", move |ctx: &TaskContext, (): ()| -> Result<u32, TaskError> {
///     Ok(ctx.wf().execute_task(&leaf, 1)? + ctx.wf().execute_task(&leaf, 2)?)
/// })?;
/// let inv = top.call(&app, ())?;
/// app.run_until_idle()?;
///
/// let tree = app.workflow(inv.id())?;
/// let shape: Vec<(usize, &str)> =
///     tree.nodes().iter().map(|n| (n.depth, n.invocation.task().as_str())).collect();
/// assert_eq!(shape, [(0, "top"), (1, "leaf"), (1, "leaf")]);
/// assert_eq!(tree.nodes()[2].invocation.args::<u32>()?, 2);
/// # Ok::<(), wf_runtime::WfError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowTree {
    nodes: Vec<TreeNode>,
}

impl WorkflowTree {
    /// Arranges the invocations of one workflow tree (in submission order) under their callers.
    /// `top` is the workflow the tree is about; an invocation whose caller is not among
    /// `members` starts a branch of its own after the root's.
    pub(crate) fn build(top: InvocationId, members: Vec<InvocationRecord>) -> Self {
        let known: BTreeSet<InvocationId> = members.iter().map(InvocationRecord::id).collect();
        let mut children: HashMap<Option<InvocationId>, Vec<InvocationRecord>> = HashMap::new();
        for r in members {
            let parent = r.spec.parent.filter(|p| known.contains(p) && r.id() != top);
            children.entry(parent).or_default().push(r);
        }
        let mut tops = children.remove(&None).unwrap_or_default();
        // The workflow's root first; orphans keep their order.
        tops.sort_by_key(|r| r.id() != top);
        // Depth first without recursion: a long chain of calls cannot exhaust the stack.
        let mut nodes = Vec::new();
        let mut stack: Vec<(InvocationRecord, usize)> =
            tops.into_iter().rev().map(|r| (r, 0)).collect();
        while let Some((record, depth)) = stack.pop() {
            let kids = children.remove(&Some(record.id())).unwrap_or_default();
            stack.extend(kids.into_iter().rev().map(|k| (k, depth + 1)));
            let subworkflow_root = record.is_root() && record.id() != top;
            nodes.push(TreeNode {
                invocation: InvocationView::new(record),
                depth,
                subworkflow_root,
            });
        }
        Self { nodes }
    }

    /// The workflow's root.
    pub fn root(&self) -> Option<&InvocationView> {
        self.nodes.first().map(|n| &n.invocation)
    }

    /// Every invocation, depth first.
    pub fn nodes(&self) -> &[TreeNode] {
        &self.nodes
    }

    /// The invocation with this id, if it is in the tree.
    pub fn get(&self, id: InvocationId) -> Option<&InvocationView> {
        self.nodes
            .iter()
            .map(|n| &n.invocation)
            .find(|v| v.id() == id)
    }

    /// How many invocations the tree has.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when it has none (the workflow was purged while it was read).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}
