//! Which invocation's body the current thread is running, so that calls which would escape the
//! journal (a top-level `Task::call`, `App::run_until_idle`) can be refused from inside a body.

use std::cell::Cell;

use wf_core::InvocationId;

thread_local! {
    static RUNNING: Cell<Option<InvocationId>> = const { Cell::new(None) };
}

/// Marks the current thread as running `invocation`'s body until dropped.
#[derive(Debug)]
pub(crate) struct BodyScope {
    previous: Option<InvocationId>,
}

impl BodyScope {
    pub(crate) fn enter(invocation: InvocationId) -> Self {
        Self {
            previous: RUNNING.with(|r| r.replace(Some(invocation))),
        }
    }
}

impl Drop for BodyScope {
    fn drop(&mut self) {
        RUNNING.with(|r| r.set(self.previous));
    }
}

/// The invocation whose body the current thread is running, if any.
pub(crate) fn running_body() -> Option<InvocationId> {
    RUNNING.with(Cell::get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_nest_and_restore() {
        assert_eq!(running_body(), None);
        let a = InvocationId::from_u128(1);
        let b = InvocationId::from_u128(2);
        {
            let _outer = BodyScope::enter(a);
            assert_eq!(running_body(), Some(a));
            {
                let _inner = BodyScope::enter(b);
                assert_eq!(running_body(), Some(b));
            }
            assert_eq!(running_body(), Some(a));
        }
        assert_eq!(running_body(), None);
    }
}
