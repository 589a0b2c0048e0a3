//! Child handles and the execution that owns them.
//!
//! A handle belongs to the execution that created it: joining it anywhere else is a typed error.
//! Another invocation (another workflow, a parent or child workflow) joining it would read a
//! result that is not its own; an *earlier* execution's handle describes a run whose buffered
//! state is gone.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};

use wf_core::{InvocationId, TaskId};

use crate::error::WfError;

/// Numbers executions in this process, so a handle knows which one made it.
static NEXT_EXECUTION: AtomicU64 = AtomicU64::new(0);

/// One execution of one invocation's body: the owner of the handles it creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Execution {
    invocation: InvocationId,
    serial: u64,
}

impl Execution {
    /// A new execution of `invocation`, distinct from every other in this process.
    pub(crate) fn begin(invocation: InvocationId) -> Self {
        Self {
            invocation,
            serial: NEXT_EXECUTION.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// The invocation being executed.
    pub(crate) fn invocation(&self) -> InvocationId {
        self.invocation
    }

    /// A handle on `child` of `task`, owned by this execution.
    pub(crate) fn handle<R>(&self, child: InvocationId, task: TaskId) -> ChildHandle<R> {
        ChildHandle {
            child,
            task,
            owner: *self,
            _result: PhantomData,
        }
    }

    /// Refuses a handle this execution did not create.
    pub(crate) fn check_owns<R>(&self, handle: &ChildHandle<R>) -> Result<(), WfError> {
        let owner = handle.owner;
        if owner.invocation != self.invocation {
            return Err(WfError::ForeignHandle {
                child: handle.child,
                created_by: owner.invocation,
                joined_by: self.invocation,
            });
        }
        if owner.serial != self.serial {
            return Err(WfError::StaleHandle {
                child: handle.child,
                invocation: self.invocation,
            });
        }
        Ok(())
    }
}

/// A started child: join it with [`crate::WorkflowContext::join`] or
/// [`crate::WorkflowContext::join_all`], in the same execution of the same body that started it.
///
/// A handle is not `Clone`: there is one per start, so a `join_all` cannot name a child twice
/// (join the same handle again with another `join` instead: each join records the result
/// again).
///
/// ```compile_fail
/// fn twice(h: wf_runtime::ChildHandle<u32>) -> [wf_runtime::ChildHandle<u32>; 2] {
///     [h.clone(), h]
/// }
/// ```
#[derive(Debug)]
pub struct ChildHandle<R> {
    child: InvocationId,
    task: TaskId,
    owner: Execution,
    _result: PhantomData<fn() -> R>,
}

impl<R> ChildHandle<R> {
    /// The child's invocation id.
    pub fn id(&self) -> InvocationId {
        self.child
    }

    /// The child's task.
    pub fn task(&self) -> &TaskId {
        &self.task
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handle_is_owned_by_its_execution_only() {
        let a = InvocationId::from_u128(1);
        let b = InvocationId::from_u128(2);
        let child = InvocationId::from_u128(3);
        let first = Execution::begin(a);
        let handle: ChildHandle<u8> = first.handle(child, TaskId::new("t"));
        assert!(first.check_owns(&handle).is_ok());
        match Execution::begin(b).check_owns(&handle) {
            Err(WfError::ForeignHandle {
                child: c,
                created_by,
                joined_by,
            }) => assert_eq!((c, created_by, joined_by), (child, a, b)),
            other => panic!("{other:?}"),
        }
        match Execution::begin(a).check_owns(&handle) {
            Err(WfError::StaleHandle {
                child: c,
                invocation,
            }) => {
                assert_eq!((c, invocation), (child, a))
            }
            other => panic!("{other:?}"),
        }
    }
}
