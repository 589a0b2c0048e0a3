//! The storage contract's operations on the file store ([`StoreWork`], [`StoreAdmin`]): each
//! sizes its request, then runs as a mutation (`FileStore::mutate`) that waits for what it must
//! (see the module docs of `file`).

use std::time::Duration;

use wf_core::{InvocationId, Timestamp, WorkerId};

use super::FileStore;
use super::sizes::{check_size, commit_bytes, event_bytes, invocation_bytes, progress_bytes};
use crate::error::StoreError;
use crate::memory::{signal, system_now, wait_until};
use crate::model::{Checkpoint, Claim, Commit, Lease, NewInvocation, Submitted, TaskSet};
use crate::steering::{CancelReport, EventSent, NewEvent};
use crate::store::{StoreAdmin, StoreWork};
use crate::tables::PURGE_BATCH;

impl StoreWork for FileStore {
    fn bind_app(&self, app_id: &str) -> Result<(), StoreError> {
        check_size("an app id", app_id.len())?;
        let store = self.dir.display().to_string();
        self.mutate(true, system_now(), |t, out| t.bind_app(out, &store, app_id))
    }

    fn submit(&self, invocation: NewInvocation, now: Timestamp) -> Result<Submitted, StoreError> {
        check_size("a submission", invocation_bytes(&invocation))?;
        self.mutate(true, now, |t, out| t.submit(out, invocation, now))
    }

    fn submit_many(
        &self,
        invocations: Vec<NewInvocation>,
        now: Timestamp,
    ) -> Result<Vec<Submitted>, StoreError> {
        check_size(
            "a batch of submissions",
            invocations.iter().map(invocation_bytes).sum(),
        )?;
        self.mutate(true, now, |t, out| t.submit_many(out, invocations, now))
    }

    fn claim(
        &self,
        worker: &WorkerId,
        tasks: &TaskSet,
        lease_for: Duration,
        now: Timestamp,
    ) -> Result<Option<Claim>, StoreError> {
        let mut staged = self.stage(false, now, |t, out| {
            t.claim(out, worker, tasks, lease_for, now)
        })?;
        if !staged.synced {
            // It hands out one invocation: what made that invocation what it is must be durable
            // (see `marks`), not every record before the claim. (A claim that made something
            // final waits for everything, like any durable operation.)
            staged.seen = match &staged.result {
                Ok(Some(claim)) => self.marks.of(claim.lease.invocation),
                _ => 0,
            };
        }
        self.settle(staged)
    }

    fn next_due(&self, tasks: &TaskSet) -> Result<Option<Timestamp>, StoreError> {
        Ok(self.lock_checked()?.next_due(tasks))
    }

    fn wait_for_work(&self, tasks: &TaskSet, timeout: Duration) -> Result<bool, StoreError> {
        // A worker about to idle first makes durable what it (or anyone) committed pipelined,
        // so such a commit never waits on the next operation for its fsync.
        self.stop_on_failure(self.log.wait_durable(self.log.wanted()))?;
        // `memory::wait_for_claimable`, but a failed log also ends the wait.
        let work = wait_until(
            self.lock_checked()?,
            &self.work,
            timeout,
            |t| {
                let ready = self.log.is_stopped() || t.has_claimable(tasks, system_now());
                if !ready {
                    self.about_to_block();
                }
                ready.then_some(())
            },
            |t| t.next_due(tasks),
        );
        self.log.check()?;
        Ok(work.is_some())
    }

    fn renew(
        &self,
        lease: &Lease,
        lease_for: Duration,
        now: Timestamp,
    ) -> Result<Lease, StoreError> {
        self.mutate(false, now, |t, out| t.renew(out, lease, lease_for, now))
    }

    fn commit(&self, lease: &Lease, commit: Commit, now: Timestamp) -> Result<(), StoreError> {
        check_size("a commit", commit_bytes(&commit))?;
        self.mutate(true, now, |t, out| t.commit(out, lease, commit, now))
    }

    fn commit_pipelined(
        &self,
        lease: &Lease,
        commit: Commit,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        if !self.options.pipelined {
            return StoreWork::commit(self, lease, commit, now);
        }
        check_size("a commit", commit_bytes(&commit))?;
        let staged = self.stage(true, now, |t, out| t.commit(out, lease, commit, now))?;
        match staged.result {
            // In the batch: the next flush makes it durable, and whoever it is visible to (a
            // waiter, a parent's claim, a read) waits for that flush (see `marks`).
            Ok(()) => Ok(()),
            // An error rests on what the commit saw: handed out once that is durable.
            Err(_) => self.settle(staged),
        }
    }

    fn checkpoint(
        &self,
        lease: &Lease,
        checkpoint: Checkpoint,
        run: InvocationId,
        lease_for: Duration,
        now: Timestamp,
    ) -> Result<Option<Claim>, StoreError> {
        check_size("a checkpoint", progress_bytes(&checkpoint))?;
        let replayable = self.options.pipelined && checkpoint.replayable();
        // Checked against the tables the checkpoint applies to, under the same lock.
        let pipelined = std::cell::Cell::new(false);
        let op = |t: &mut crate::tables::Tables, out: &mut Vec<_>| {
            pipelined.set(replayable && results_kept(t, &checkpoint.journal));
            t.checkpoint(out, lease, checkpoint, run, lease_for, now)
        };
        if !replayable {
            return self.mutate(true, now, op).map(Some);
        }
        let staged = self.stage(true, now, op)?;
        if !pipelined.get() {
            // Durable before the child runs: the journal and data that led to it must survive
            // anything its body does.
            return self.settle(staged).map(Some);
        }
        // Only what a replay reproduces (see `Checkpoint::replayable`), every child result a
        // copy of the outcome the store keeps: the child may run before the record is durable.
        // It joins the batch as a record readers wait for (so nobody else is handed what it
        // did before it is durable), and the child's commit, which the caller waits for before
        // it acts on the outcome, makes it durable with itself.
        match staged.result {
            Ok(claim) => {
                // Written to the OS first, as a claim is: a body that kills its process leaves
                // the child and its claim in the log, so its `max_recoveries` bounds the loop.
                if let Some(seq) = staged.record {
                    self.stop_on_failure(self.log.wait_written(seq))?;
                }
                Ok(Some(claim))
            }
            // An error rests on what the checkpoint saw: handed out once that is durable.
            Err(_) => self.settle(staged).map(Some),
        }
    }

    fn recover_expired(&self, now: Timestamp) -> Result<Vec<InvocationId>, StoreError> {
        self.mutate(true, now, |t, out| t.recover_expired(out, now))
    }

    fn send_event(
        &self,
        to: InvocationId,
        event: NewEvent,
        now: Timestamp,
    ) -> Result<EventSent, StoreError> {
        check_size("an event", event_bytes(&event))?;
        self.mutate(true, now, |t, out| t.send_event(out, to, event, now))
    }
}

impl StoreAdmin for FileStore {
    fn cancel_tree(
        &self,
        id: InvocationId,
        reason: &str,
        now: Timestamp,
    ) -> Result<CancelReport, StoreError> {
        check_size("a cancellation", reason.len())?;
        self.mutate(true, now, |t, out| t.cancel_tree(out, id, reason, now))
    }

    fn cancel(&self, id: InvocationId, reason: &str, now: Timestamp) -> Result<(), StoreError> {
        check_size("a cancellation", reason.len())?;
        self.mutate(true, now, |t, out| t.cancel(out, id, reason, now))
    }

    fn retry(&self, id: InvocationId, now: Timestamp) -> Result<(), StoreError> {
        self.mutate(true, now, |t, out| t.retry(out, id, now))
    }

    fn purge_finished(&self, finished_before: Timestamp) -> Result<usize, StoreError> {
        // In batches of trees, each logged as one record with the lock held only for that
        // batch: a purge of many workflows never stalls the workers for long.
        let candidates = self.lock_checked()?.purge_candidates();
        let mut removed = 0;
        for batch in candidates.chunks(PURGE_BATCH) {
            let mut tables = self.lock_checked()?;
            let mut changes = Vec::new();
            let n = tables.purge_trees(&mut changes, batch, finished_before);
            if n == 0 {
                continue;
            }
            if let Err(e) = self.log.append(&changes, true) {
                self.wake_if_stopped(&tables);
                return Err(e);
            }
            removed += n;
            drop(tables);
            signal(&changes, &self.work, &self.finished);
        }
        let tables = self.lock_checked()?;
        let seen = self.log.wanted();
        if removed > 0 {
            // Reclaim the space now; a failed compaction leaves the purge in the log, still
            // durable once the wait below returns.
            self.compact_locked(&tables);
        }
        self.wake_if_stopped(&tables);
        drop(tables);
        self.stop_on_failure(self.log.wait_durable(seen))?;
        Ok(removed)
    }
}

/// Whether every child result in `journal` is a copy of the final outcome the store keeps for
/// that child. A result the store did not keep (a cancellation requested while the child ran
/// won over the success its commit carried, or an operator retried the child since) is not
/// reproduced by a replay: the checkpoint that carries it must be durable before the child it
/// starts runs, as any checkpoint that records a value drawn since the last durable point.
fn results_kept(tables: &crate::tables::Tables, journal: &[wf_core::JournalEntry]) -> bool {
    journal.iter().all(|e| match &e.op {
        wf_core::Op::ChildResult { child, outcome } => match tables.invocation(*child) {
            Ok(r) => match outcome {
                wf_core::ChildOutcome::Success(v) => {
                    r.state.status == wf_core::Status::Success
                        && r.state.result.as_deref() == Some(v.as_slice())
                }
                wf_core::ChildOutcome::Failed(f) => {
                    r.status().is_final() && r.state.error.as_ref() == Some(f)
                }
            },
            Err(_) => false,
        },
        _ => true,
    })
}
