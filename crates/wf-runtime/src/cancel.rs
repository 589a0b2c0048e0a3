//! How a running body learns that its cancellation was requested.
//!
//! Each execution holds a [`CancelFlag`], registered in its app's [`Running`] registry while the
//! body runs. The flag is raised by `App::cancel` for members it asks to stop in this process,
//! and by the worker's lease thread, which asks the store for cancellation requests of the
//! invocations it renews (`StoreRead::cancel_requests`), so a request made by any process
//! reaches the body. The recorder only reads the flag (no I/O in the deterministic operations):
//! the first journaled operation past the recorded journal after it is raised records the
//! cancellation and returns `WfError::Cancelled`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use wf_core::{IdHashing, InvocationId};

/// A cancellation request, raised once with its reason.
#[derive(Debug, Clone, Default)]
pub(crate) struct CancelFlag(Arc<OnceLock<String>>);

impl CancelFlag {
    /// Raises the flag (the first reason wins).
    pub(crate) fn raise(&self, reason: &str) {
        let _ = self.0.set(reason.to_owned());
    }

    /// The reason, once raised.
    pub(crate) fn reason(&self) -> Option<&str> {
        self.0.get().map(String::as_str)
    }
}

/// The flags of the executions running in this process, by invocation.
#[derive(Debug, Default)]
pub(crate) struct Running {
    /// Hashed with the fast id hasher: every execution registers and unregisters here.
    flags: Mutex<HashMap<InvocationId, Flags, IdHashing>>,
}

/// The flags of one invocation's executions here: one but for the moments when a lost
/// execution is still unwinding while another attempt runs (no list allocated for the one).
#[derive(Debug)]
enum Flags {
    One(CancelFlag),
    Many(Vec<CancelFlag>),
}

impl Flags {
    fn as_slice(&self) -> &[CancelFlag] {
        match self {
            Flags::One(flag) => std::slice::from_ref(flag),
            Flags::Many(flags) => flags,
        }
    }
}

impl Running {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<InvocationId, Flags, IdHashing>> {
        self.flags.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers an execution of `invocation`: its flag, until the guard is dropped.
    pub(crate) fn register(self: &Arc<Self>, invocation: InvocationId) -> Registered {
        let flag = CancelFlag::default();
        let mut flags = self.lock();
        match flags.get_mut(&invocation) {
            None => {
                flags.insert(invocation, Flags::One(flag.clone()));
            }
            Some(Flags::One(first)) => {
                let first = first.clone();
                flags.insert(invocation, Flags::Many(vec![first, flag.clone()]));
            }
            Some(Flags::Many(list)) => list.push(flag.clone()),
        }
        drop(flags);
        Registered {
            running: self.clone(),
            invocation,
            flag,
        }
    }

    /// Raises the flag of every execution of `invocation` running here.
    pub(crate) fn raise(&self, invocation: InvocationId, reason: &str) {
        if let Some(flags) = self.lock().get(&invocation) {
            for f in flags.as_slice() {
                f.raise(reason);
            }
        }
    }
}

/// An execution's registration in [`Running`]; unregisters when dropped.
#[derive(Debug)]
pub(crate) struct Registered {
    running: Arc<Running>,
    invocation: InvocationId,
    flag: CancelFlag,
}

impl Registered {
    /// The execution's flag.
    pub(crate) fn flag(&self) -> CancelFlag {
        self.flag.clone()
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mine = |f: &CancelFlag| Arc::ptr_eq(&f.0, &self.flag.0);
        let mut flags = self.running.lock();
        let empty = match flags.get_mut(&self.invocation) {
            Some(Flags::One(flag)) => mine(flag),
            Some(Flags::Many(list)) => {
                list.retain(|f| !mine(f));
                list.is_empty()
            }
            None => false,
        };
        if empty {
            flags.remove(&self.invocation);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raised_flag_reaches_every_running_execution_and_registrations_clean_up() {
        let running = Arc::new(Running::default());
        let id = InvocationId::from_u128(1);
        let a = running.register(id);
        let b = running.register(id);
        let other = running.register(InvocationId::from_u128(2));
        running.raise(id, "stop");
        assert_eq!(a.flag().reason(), Some("stop"));
        assert_eq!(b.flag().reason(), Some("stop"));
        assert_eq!(other.flag().reason(), None);
        running.raise(id, "second reason");
        assert_eq!(a.flag().reason(), Some("stop"), "the first reason wins");
        drop((a, b));
        assert!(!running.lock().contains_key(&id));
        drop(other);
        assert!(running.lock().is_empty());
    }

    #[test]
    fn an_execution_that_ends_first_leaves_the_other_registered() {
        let running = Arc::new(Running::default());
        let id = InvocationId::from_u128(1);
        let a = running.register(id);
        let b = running.register(id);
        drop(a);
        running.raise(id, "stop");
        assert_eq!(b.flag().reason(), Some("stop"));
        drop(b);
        assert!(running.lock().is_empty());
        // Alone again: registered, raised and removed as the only one.
        let c = running.register(id);
        running.raise(id, "again");
        assert_eq!(c.flag().reason(), Some("again"));
        drop(c);
        assert!(running.lock().is_empty());
    }
}
