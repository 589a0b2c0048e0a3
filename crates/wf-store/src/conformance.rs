//! The conformance suite every backend must pass unchanged (feature `testing`).
//!
//! A backend's test file instantiates it with one line:
//!
//! ```text
//! wf_store::conformance_tests!(|| wf_store::conformance::Subject::new(wf_store::MemoryStore::new()));
//! ```
//!
//! Each test gets a fresh, empty store from the factory. A [`Subject`] may carry a guard (for
//! example a temporary directory) that lives as long as the store.

use std::any::Any;
use std::sync::Arc;

use wf_core::{CallId, InvocationId, TaskId, Timestamp, WorkflowIdentity};

use crate::model::{NewInvocation, Submitted};
use crate::store::Store;

/// A store under test, and whatever must outlive it.
pub struct Subject {
    /// The store.
    pub store: Arc<dyn Store>,
    _guard: Box<dyn Any + Send>,
}

impl Subject {
    /// A store with nothing else to keep alive.
    pub fn new(store: impl Store) -> Self {
        Self {
            store: Arc::new(store),
            _guard: Box::new(()),
        }
    }

    /// A store with a guard (a temporary directory, a server handle) that must outlive it.
    pub fn with_guard(store: impl Store, guard: impl Any + Send) -> Self {
        Self {
            store: Arc::new(store),
            _guard: Box::new(guard),
        }
    }
}

/// A root invocation of task `task` with argument bytes `args`.
pub fn root(n: u128, task: &str, args: &[u8]) -> NewInvocation {
    let id = InvocationId::from_u128(n);
    let task = TaskId::new(task);
    NewInvocation {
        id,
        call: CallId::of(&task, args),
        identity: WorkflowIdentity::new_workflow(id, task.clone()),
        task,
        args: args.to_vec(),
        parent: None,
        not_before: None,
    }
}

/// A fixed clock reading for tests: 2026-01-01T00:00:00Z.
pub const T0: Timestamp = Timestamp(1_767_225_600_000);

/// Submitting the same invocation twice stores one.
pub fn submit_is_idempotent(s: Subject) {
    let inv = root(1, "t", b"a");
    assert_eq!(s.store.submit(inv.clone(), T0).unwrap(), Submitted::Created);
    assert_eq!(s.store.submit(inv, T0).unwrap(), Submitted::AlreadyExists);
    assert_eq!(s.store.counts().unwrap().total(), 1);
}

/// Instantiates every conformance test for a backend. The argument is a factory expression
/// (a closure or fn) returning a fresh [`Subject`].
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@tests $make; submit_is_idempotent);
    };
    (@tests $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let make: &dyn Fn() -> $crate::conformance::Subject = &$make;
                $crate::conformance::$name(make());
            }
        )*
    };
}
