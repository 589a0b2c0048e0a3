//! The snapshot of [`Tables`] that log compaction writes.

use wf_core::InvocationId;

use super::{Change, Slot, Tables};

impl Tables {
    /// Every change needed to rebuild these tables from empty (used by log compaction).
    /// The app first; then invocations in creation order (so workflow membership and ties keep
    /// submission order); then the queued ones are queued again in the order they became ready,
    /// across all tasks (a released or woken invocation queues behind ones created after it).
    pub fn snapshot(&self) -> Vec<Change> {
        let mut queued: Vec<(u64, InvocationId)> =
            self.queues.values().flat_map(|q| q.ready.iter()).collect();
        queued.sort_unstable();
        let mut out =
            Vec::with_capacity(self.invocations.len() * 2 + queued.len() + self.data.len() + 1);
        if let Some(app) = &self.app {
            out.push(Change::App(app.clone()));
        }
        let mut slots: Vec<(&InvocationId, &Slot)> =
            self.invocations.iter().map(|(id, s)| (id, &**s)).collect();
        slots.sort_by_key(|(_, slot)| slot.seq);
        for (id, slot) in slots {
            out.push(Change::Created(
                slot.spec.clone(),
                slot.state().into_owned(),
            ));
            if let Some(j) = self.journals.get(id) {
                out.push(Change::Journal(*id, j.to_vec()));
            }
            self.snapshot_steering(*id, &mut out);
        }
        for (_, id) in queued {
            if let Some(slot) = self.invocations.get(&id) {
                out.push(Change::State(id, slot.state().into_owned()));
            }
        }
        for (wf, kv) in &self.data {
            for (k, v) in kv {
                out.push(Change::Data(*wf, k.clone(), v.clone()));
            }
        }
        out
    }
}
