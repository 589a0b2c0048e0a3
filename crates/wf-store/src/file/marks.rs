//! Which log record last changed each invocation, so that an operation handing out one
//! invocation waits for that record to be durable, not for every record appended before it.
//!
//! The file store's rule is *durable before visible*: what an operation hands out never rests on
//! a record a crash or power loss could take back. Reads in general wait for the last record that
//! must be durable ([`super::log::Log::wanted`]). A claim and `wait_final` hand out one
//! invocation (its record and journal), whose state is the work of the records that named it, so
//! they wait for the last of those (a record is durable only with everything before it, so its
//! causes are durable with it). That lets a worker claim its next invocation while the commit of
//! its last one, pipelined ([`crate::StoreWork::commit_pipelined`]), still waits for its fsync.
//!
//! Only records that must be durable before they are seen are noted (everything but claims and
//! renewals). Entries already durable are dropped from time to time: an invocation without an
//! entry has nothing unsynced.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use wf_core::{IdHashing, InvocationId};

use crate::tables::Change;

/// Below this many entries the marks are never pruned.
const PRUNE_FLOOR: usize = 4096;

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Marks {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    last: HashMap<InvocationId, u64, IdHashing>,
    /// Prune when `last` grows to this many entries.
    prune_at: usize,
}

impl Default for Marks {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Inner {
                last: HashMap::default(),
                prune_at: PRUNE_FLOOR,
            }),
        }
    }
}

impl Marks {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes that record `seq` changed every invocation `changes` name; `durable` is the last
    /// record known durable (entries up to it may be dropped). Call with the `Tables` lock held,
    /// right after appending the record.
    pub(crate) fn note(&self, changes: &[Change], seq: u64, durable: u64) {
        let mut inner = self.lock();
        for change in changes {
            let (a, b) = named(change);
            for id in a.into_iter().chain(b) {
                inner.last.insert(id, seq);
            }
        }
        if inner.last.len() >= inner.prune_at {
            inner.last.retain(|_, s| *s > durable);
            inner.prune_at = (inner.last.len() * 2).max(PRUNE_FLOOR);
        }
    }

    /// The last record that changed `id` and may not be durable yet (0: none).
    pub(crate) fn of(&self, id: InvocationId) -> u64 {
        self.lock().last.get(&id).copied().unwrap_or(0)
    }
}

/// The invocations a change names.
fn named(change: &Change) -> (Option<InvocationId>, Option<InvocationId>) {
    match change {
        Change::Created(spec, _) => (Some(spec.id), None),
        Change::ChildFinished(parent, child) => (Some(*parent), Some(*child)),
        Change::State(id, _)
        | Change::Journal(id, _)
        | Change::Data(id, _, _)
        | Change::Purged(id)
        | Change::Event(id, _)
        | Change::EventsConsumed(id, _)
        | Change::AwaitEvent(id, _)
        | Change::CancelRequest(id, _) => (Some(*id), None),
        Change::App(_) => (None, None),
    }
}
