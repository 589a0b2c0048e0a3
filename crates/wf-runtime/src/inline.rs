//! Running a child inline: `execute_task` of a child this worker's app registers runs the child
//! on the caller's thread instead of suspending the caller, so a workflow of n sequential
//! children costs n child executions, not n replays of itself (O(n), not O(n²)).
//!
//! The steps, and why each is safe:
//!
//! 1. **Checkpoint** (`StoreWork::checkpoint`, one atomic, durable store operation): the
//!    caller's journal, data writes and children buffered so far are persisted, and the child is
//!    created already claimed by this worker. Durable before visible: nothing the child does can
//!    run ahead of the journal entries that led to it. The caller keeps running under its lease
//!    (extended); its recorder drops what was persisted.
//! 2. **Run the child** with a nested [`Runner`] on this thread: its own execution, lease
//!    (renewed by the pool's lease thread), retries and commit, exactly as if a worker had
//!    claimed it.
//! 3. **Record its outcome** in the caller's journal (committed with the caller's next
//!    checkpoint or commit), and the body goes on.
//!
//! When the child does not end final (it suspends on its own children, fails retryably, is
//! deferred, loses its lease) the caller suspends on it as usual: it is stored already, so the
//! caller's commit just waits on it. A crash anywhere is recovered by the ordinary rules: before
//! the checkpoint nothing happened; after it, both leases expire, the caller replays into the
//! stored `ChildStart` (child ids are deterministic) and waits on the child or reads its final
//! outcome, and the child runs again (at least once, as every task).
//!
//! Nothing runs inline when the app turns it off (`AppBuilder::inline_children(false)`), when
//! the store does not support checkpoints, when the store refuses the checkpoint (nothing was
//! written: the caller suspends and its commit meets the same problem), past
//! [`crate::runner::MAX_INLINE_DEPTH`] nested children, or while the worker stops.
//!
//! A checkpoint whose outcome is unknown (the connection failed after the request was sent, the
//! store stayed unreachable through its retries, an fsync failed) may have been applied: the
//! journal entries and children it carried may be stored, and the child may be claimed by this
//! worker. The caller then must not commit them again as new (the store would refuse entries at
//! positions it holds, and the invocation would be failed for a lost reply), nor run the child:
//! the execution stops as after a failed store read ([`Recorder::checkpoint_unknown`]) and
//! commits no progress, only a deferral. Whichever way the checkpoint went, the next execution
//! replays what the store holds; a child the checkpoint created is recovered when the lease
//! the checkpoint gave it expires, and runs once.

use std::cell::RefCell;

use wf_core::{ChildOutcome, InvocationId, TaskId};
use wf_store::{Lease, StoreError};

use crate::app::App;
use crate::error::WfError;
use crate::recorder::Recorder;
use crate::runner::Runner;

/// What an execution needs to run its children inline.
#[derive(Debug)]
pub(crate) struct Inline {
    /// The executing invocation's lease: the checkpoint is fenced by it.
    lease: Option<Lease>,
    /// The runner children run with (one level deeper), unless too deep already.
    runner: Option<Runner>,
}

impl Inline {
    /// For an execution that runs nothing inline (a replay check).
    pub(crate) fn none() -> Self {
        Self {
            lease: None,
            runner: None,
        }
    }

    /// For an execution under `lease` run by `runner`, of an app that runs children inline
    /// when `enabled`.
    pub(crate) fn new(lease: Lease, runner: &Runner, enabled: bool) -> Self {
        Self {
            lease: Some(lease),
            runner: runner.nested().filter(|_| enabled),
        }
    }

    /// Runs `child` (of `task`), started by this execution and not submitted yet, inline.
    /// Returns its final outcome, for the caller to record; `None` when it did not run inline
    /// or did not end final: the caller then suspends on it. See the module docs.
    ///
    /// # Errors
    /// The checkpoint's outcome is unknown: the execution is stopped (it commits no progress)
    /// and this is the error its body unwinds with.
    pub(crate) fn run(
        &self,
        app: &App,
        recorder: &RefCell<Recorder>,
        child: InvocationId,
        task: &TaskId,
    ) -> Result<Option<ChildOutcome>, WfError> {
        let Some(runner) = self.runner.as_ref().filter(|r| r.may_start()) else {
            return Ok(None);
        };
        let (Some(lease), Some(registered)) = (self.lease.as_ref(), app.registered(task)) else {
            return Ok(None);
        };
        // An async child is not driven to its end on an async worker's thread: it would block
        // the runtime its timers need. The caller suspends; a worker claims the child.
        #[cfg(feature = "tokio")]
        if registered.is_async() && crate::asynch::on_async_thread() {
            return Ok(None);
        }
        #[cfg(not(feature = "tokio"))]
        let _ = registered;
        let Some(progress) = recorder.borrow_mut().progress().ok().flatten() else {
            return Ok(None);
        };
        let checkpoint =
            app.store()
                .checkpoint(lease, progress, child, app.lease_duration(), runner.now());
        let claim = match checkpoint {
            Ok(Some(claim)) => claim,
            Ok(None) => return Ok(None),
            Err(e) if nothing_written(&e) => {
                tracing::debug!(error = %e, %child, "cannot run a child inline; suspending on it");
                return Ok(None);
            }
            Err(e) => {
                tracing::warn!(error = %e, %child, "a checkpoint's outcome is unknown; committing no progress, the invocation runs again from what the store holds");
                return Err(recorder.borrow_mut().checkpoint_unknown(&e));
            }
        };
        recorder.borrow_mut().checkpointed();
        tracing::debug!(%child, worker = %runner.worker(), "running a child inline");
        Ok(runner.run(app, claim))
    }
}

/// Whether a failed checkpoint certainly wrote nothing: the store answered and refused it
/// (fenced by the lease, or a refusal that the same request would meet again). Any other
/// failure (I/O, an unreachable store, a failed fsync) leaves its outcome unknown.
pub(crate) fn nothing_written(e: &StoreError) -> bool {
    e.is_refusal()
        || matches!(
            e,
            StoreError::LeaseLost { .. } | StoreError::InvocationNotFound(_)
        )
}
