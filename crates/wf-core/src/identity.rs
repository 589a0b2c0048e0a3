//! Workflow identity: which workflow an invocation belongs to, and how that is derived.

use serde::{Deserialize, Serialize};

use crate::ids::{InvocationId, TaskId};

/// Which workflow an invocation belongs to.
///
/// A workflow is named after its root invocation: `workflow_id` *is* the root's invocation id,
/// `workflow_type` the root's task. A sub-workflow also names the workflow it was started from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WorkflowIdentity {
    /// The workflow's id: its root invocation's id.
    pub workflow_id: InvocationId,
    /// The task of the workflow's root invocation.
    pub workflow_type: TaskId,
    /// For a sub-workflow, the workflow of the invocation that started it.
    pub parent_workflow_id: Option<InvocationId>,
}

impl WorkflowIdentity {
    /// A new top-level workflow whose root is `root`, an invocation of `task`.
    pub fn new_workflow(root: InvocationId, task: TaskId) -> Self {
        Self {
            workflow_id: root,
            workflow_type: task,
            parent_workflow_id: None,
        }
    }

    /// A new sub-workflow rooted at `root`, started from inside workflow `parent`.
    pub fn new_subworkflow(root: InvocationId, task: TaskId, parent: &WorkflowIdentity) -> Self {
        Self {
            workflow_id: root,
            workflow_type: task,
            parent_workflow_id: Some(parent.workflow_id),
        }
    }

    /// True exactly when this workflow was started from inside another workflow.
    pub fn is_subworkflow(&self) -> bool {
        self.parent_workflow_id.is_some()
    }

    /// True when `invocation` is this workflow's root (its owner).
    pub fn is_root(&self, invocation: InvocationId) -> bool {
        self.workflow_id == invocation
    }

    /// The identity of a new invocation `id` of `task`.
    ///
    /// - no caller: it starts a new workflow and is its root;
    /// - a caller, and the task does not force a new workflow: it joins the caller's workflow;
    /// - a caller, and the task forces a new workflow: it roots a sub-workflow of the caller's.
    pub fn derive(
        id: InvocationId,
        task: &TaskId,
        force_new_workflow: bool,
        caller: Option<&WorkflowIdentity>,
    ) -> Self {
        match caller {
            None => Self::new_workflow(id, task.clone()),
            Some(parent) if force_new_workflow => Self::new_subworkflow(id, task.clone(), parent),
            Some(parent) => parent.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derive_covers_root_member_and_subworkflow() {
        let root = InvocationId::from_u128(1);
        let top = WorkflowIdentity::derive(root, &TaskId::new("order"), false, None);
        assert_eq!(top.workflow_id, root);
        assert!(top.is_root(root));
        assert!(!top.is_subworkflow());

        let child = InvocationId::from_u128(2);
        let member = WorkflowIdentity::derive(child, &TaskId::new("charge"), false, Some(&top));
        assert_eq!(member, top);
        assert!(!member.is_root(child));

        // force_new_workflow without a caller is just a new workflow.
        let forced_top = WorkflowIdentity::derive(child, &TaskId::new("ship"), true, None);
        assert!(!forced_top.is_subworkflow());

        let sub = WorkflowIdentity::derive(child, &TaskId::new("ship"), true, Some(&member));
        assert_eq!(sub.workflow_id, child);
        assert_eq!(sub.workflow_type, TaskId::new("ship"));
        assert_eq!(sub.parent_workflow_id, Some(root));
        assert!(sub.is_subworkflow());
    }
}
