//! Access rules for workflow data: only the root writes, every member reads.

use crate::identity::WorkflowIdentity;
use crate::ids::InvocationId;

/// An invocation tried to touch a workflow's data without the right to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invocation {invocation} may not {action} data of workflow {workflow}: only its root invocation \
     {owner} {rule}; pass the value to the root as a child result, or write it from the root"
)]
pub struct WorkflowAccessError {
    /// The workflow whose data was touched.
    pub workflow: InvocationId,
    /// The invocation that tried.
    pub invocation: InvocationId,
    /// The workflow's owner (its root invocation).
    pub owner: InvocationId,
    /// What was attempted: `"write"` or `"read"`.
    pub action: &'static str,
    /// The rule that applies, in words.
    pub rule: &'static str,
}

/// May `invocation`, a member of `own` (its own workflow identity), write `workflow`'s data?
///
/// Only the workflow's root may: `invocation == workflow` and it belongs to that workflow.
///
/// # Errors
///
/// [`WorkflowAccessError`] (naming the workflow, the invocation and the owner) for any other
/// invocation.
pub fn check_write(
    invocation: InvocationId,
    own: &WorkflowIdentity,
    workflow: InvocationId,
) -> Result<(), WorkflowAccessError> {
    if own.workflow_id == workflow && own.is_root(invocation) {
        Ok(())
    } else {
        Err(WorkflowAccessError {
            workflow,
            invocation,
            owner: workflow,
            action: "write",
            rule: "may write it",
        })
    }
}

/// May `invocation`, a member of `own`, read `workflow`'s data? Any member of the workflow may.
///
/// # Errors
///
/// [`WorkflowAccessError`] for an invocation of another workflow.
pub fn check_read(
    invocation: InvocationId,
    own: &WorkflowIdentity,
    workflow: InvocationId,
) -> Result<(), WorkflowAccessError> {
    if own.workflow_id == workflow {
        Ok(())
    } else {
        Err(WorkflowAccessError {
            workflow,
            invocation,
            owner: workflow,
            action: "read",
            rule: "and the invocations of its workflow may read it",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::TaskId;

    /// The access matrix: root, member, sub-workflow root and sub-workflow member, each against
    /// the top workflow and the sub-workflow.
    #[test]
    fn access_matrix() {
        let root = InvocationId::from_u128(1);
        let member = InvocationId::from_u128(2);
        let sub_root = InvocationId::from_u128(3);
        let sub_member = InvocationId::from_u128(4);
        let top = WorkflowIdentity::derive(root, &TaskId::new("a"), false, None);
        let member_id = WorkflowIdentity::derive(member, &TaskId::new("b"), false, Some(&top));
        let sub = WorkflowIdentity::derive(sub_root, &TaskId::new("c"), true, Some(&top));
        let sub_member_id =
            WorkflowIdentity::derive(sub_member, &TaskId::new("d"), false, Some(&sub));

        // (who, own identity, workflow, may write, may read)
        let cases = [
            (root, &top, root, true, true),
            (root, &top, sub_root, false, false),
            (member, &member_id, root, false, true),
            (member, &member_id, sub_root, false, false),
            (sub_root, &sub, sub_root, true, true),
            (sub_root, &sub, root, false, false),
            (sub_member, &sub_member_id, sub_root, false, true),
            (sub_member, &sub_member_id, root, false, false),
        ];
        for (who, own, wf, write, read) in cases {
            assert_eq!(
                check_write(who, own, wf).is_ok(),
                write,
                "write {who:?} -> {wf:?}"
            );
            assert_eq!(
                check_read(who, own, wf).is_ok(),
                read,
                "read {who:?} -> {wf:?}"
            );
        }

        let err = check_write(member, &member_id, root).unwrap_err();
        assert_eq!(
            (err.workflow, err.invocation, err.owner),
            (root, member, root)
        );
        let msg = err.to_string();
        assert!(
            msg.contains(&root.to_string()) && msg.contains(&member.to_string()),
            "{msg}"
        );
    }
}
