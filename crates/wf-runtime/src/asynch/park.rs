//! Parking: a body on an async worker that waits on children that are not final stays in
//! memory, its lease renewed by the worker, and resumes when their commits land, instead of
//! suspending and being replayed from its journal.
//!
//! The steps of a parked join, after the recorded outcomes (as in a sync join):
//! 1. children this execution started and has not submitted yet are submitted by a checkpoint
//!    (the inline path's store operation), which also claims one of them for this worker: it
//!    runs beside the body, as a task of the same thread;
//! 2. the children's records are read; all final, their outcomes are recorded and returned;
//! 3. otherwise the body parks until a commit of this process rings the app's bell (or
//!    [`RECHECK`] passes, for commits of other processes), then reads again.
//!
//! It suspends instead, exactly as a sync body would (and is replayed later), when the thread's
//! bound on parked bodies is reached, the worker stops, its lease was lost, or nothing can be
//! checkpointed (the store cannot, or the children are of tasks this app does not register).

use std::cell::Cell;
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use tokio::sync::Notify;
use wf_core::{ChildOutcome, RecordedEvent, Replay, Timestamp};
use wf_store::Lease;

use super::worker::spawn_claim;
use crate::app::App;
use crate::error::WfError;
use crate::handle::ChildHandle;
use crate::runner::Runner;
use crate::workflow::{WorkflowContext, decode_outcomes};

/// How long a parked body waits for the bell before it reads its children again (a child
/// committed by another process rings no bell here).
pub(crate) const RECHECK: Duration = Duration::from_millis(250);

/// The longest a body parks on a durable timer or an event; a longer wait suspends it (it is
/// replayed when the timer fires or the event arrives), so a day's sleep holds no memory or
/// lease.
pub(crate) const PARK_HORIZON: Duration = Duration::from_secs(60);

/// The bodies of one async worker thread: how many run, how many of them are parked, and the
/// bounds.
#[derive(Debug)]
pub(crate) struct Slots {
    running: Cell<usize>,
    parked: Cell<usize>,
    concurrency: usize,
    max_parked: usize,
    /// Rung when a slot frees (a body ends or parks).
    pub(crate) freed: Notify,
}

impl Slots {
    pub(crate) fn new(concurrency: usize, max_parked: usize) -> Self {
        Self {
            running: Cell::new(0),
            parked: Cell::new(0),
            concurrency: concurrency.max(1),
            max_parked,
            freed: Notify::new(),
        }
    }

    /// Whether as many bodies run (not parked) as the thread takes.
    pub(crate) fn busy(&self) -> bool {
        self.running.get().saturating_sub(self.parked.get()) >= self.concurrency
    }

    /// How many bodies run or are parked.
    pub(crate) fn running(&self) -> usize {
        self.running.get()
    }

    /// Counts a body as running until the guard drops.
    pub(crate) fn start(self: &Rc<Self>) -> SlotGuard {
        self.running.set(self.running.get() + 1);
        SlotGuard {
            slots: self.clone(),
            parked: false,
        }
    }

    fn park(self: &Rc<Self>) -> SlotGuard {
        self.parked.set(self.parked.get() + 1);
        self.freed.notify_one();
        SlotGuard {
            slots: self.clone(),
            parked: true,
        }
    }
}

/// A body counted as running (or parked) until dropped.
#[derive(Debug)]
pub(crate) struct SlotGuard {
    slots: Rc<Slots>,
    parked: bool,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let counter = match self.parked {
            true => &self.slots.parked,
            false => &self.slots.running,
        };
        counter.set(counter.get().saturating_sub(1));
        if !self.parked {
            self.slots.freed.notify_one();
        }
    }
}

/// What an execution on an async worker parks with.
#[derive(Clone)]
pub(crate) struct Parking {
    app: App,
    lease: Lease,
    runner: Runner,
    slots: Rc<Slots>,
}

impl fmt::Debug for Parking {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Parking")
            .field("invocation", &self.lease.invocation)
            .finish_non_exhaustive()
    }
}

impl Parking {
    pub(crate) fn new(app: App, lease: Lease, runner: Runner, slots: Rc<Slots>) -> Self {
        Self {
            app,
            lease,
            runner,
            slots,
        }
    }

    /// Why the body must suspend rather than park, if it must. A cancelled body suspends: the
    /// store ends it cancelled, as a waiting sync body.
    fn must_suspend(&self, wf: &WorkflowContext) -> Option<&'static str> {
        if wf.recorder().cancel_requested() {
            Some("its cancellation was requested")
        } else if self.runner.pool().stopping() {
            Some("the worker stops")
        } else if !self.runner.pool().holds(&self.lease) {
            Some("its lease was lost")
        } else if self.slots.parked.get() >= self.slots.max_parked {
            Some("the bound on parked bodies is reached")
        } else {
            None
        }
    }

    /// After a durable timer set for `at`: returns once it fired (recorded), parked meanwhile
    /// when it fires within [`PARK_HORIZON`]; otherwise suspends until it fires.
    pub(crate) async fn wait_timer(
        &self,
        wf: &WorkflowContext,
        at: Timestamp,
    ) -> Result<(), WfError> {
        if let Replay::Recorded(()) = wf.recorder().timer_fired()? {
            return Ok(());
        }
        wf.recorder().go_live()?;
        let watch = Abandon { wf, armed: true };
        let waited = self.park_on_timer(wf, at).await;
        watch.disarm();
        waited
    }

    async fn park_on_timer(&self, wf: &WorkflowContext, at: Timestamp) -> Result<(), WfError> {
        loop {
            let now = wf.clock().now();
            if now >= at {
                return wf.recorder().record_timer_fired();
            }
            let left = Duration::from_millis(at.0 - now.0);
            let why = self
                .must_suspend(wf)
                .or((left > PARK_HORIZON).then_some("the timer is far off"));
            if let Some(why) = why {
                tracing::debug!(why, "suspending a body on its timer instead of parking it");
                return Err(wf.recorder().suspend(Vec::new(), Some(at), None));
            }
            let _parked = self.slots.park();
            tokio::time::sleep(left.min(RECHECK)).await;
        }
    }

    /// Past the journal, an event named `name`: taken at once when it is there, else parked
    /// until it arrives, for at most [`PARK_HORIZON`]; then suspended until it arrives.
    pub(crate) async fn wait_event(
        &self,
        wf: &WorkflowContext,
        name: &str,
    ) -> Result<RecordedEvent, WfError> {
        let watch = Abandon { wf, armed: true };
        let waited = self.park_on_event(wf, name).await;
        watch.disarm();
        waited
    }

    async fn park_on_event(
        &self,
        wf: &WorkflowContext,
        name: &str,
    ) -> Result<RecordedEvent, WfError> {
        let bell = self.app.bell();
        let since = std::time::Instant::now();
        loop {
            let rung = bell.notified();
            let mut rung = std::pin::pin!(rung);
            rung.as_mut().enable();
            if let Some(event) = wf.take_event(name)? {
                return Ok(event);
            }
            let why = self
                .must_suspend(wf)
                .or((since.elapsed() > PARK_HORIZON).then_some("the event is long in coming"));
            if let Some(why) = why {
                tracing::debug!(why, "suspending a body on its event instead of parking it");
                return Err(wf.recorder().suspend(Vec::new(), None, Some(name)));
            }
            let _parked = self.slots.park();
            let _ = tokio::time::timeout(RECHECK, rung).await;
        }
    }

    /// Join step 3 of a parked join: see the module docs.
    async fn observe<R>(
        &self,
        wf: &WorkflowContext,
        rest: &[ChildHandle<R>],
    ) -> Result<Vec<ChildOutcome>, WfError> {
        wf.recorder().go_live()?;
        let unsubmitted = rest.iter().any(|h| wf.recorder().submits(h.id()));
        if unsubmitted && !self.submit(wf, rest)? {
            // As a sync body: run the child inline, or suspend.
            return wf.observe_outcomes(rest);
        }
        let bell = self.app.bell();
        loop {
            let rung = bell.notified();
            let mut rung = std::pin::pin!(rung);
            rung.as_mut().enable();
            let unfinished = match wf.look_up_outcomes(rest)? {
                Ok(outcomes) => return Ok(outcomes),
                Err(unfinished) => unfinished,
            };
            if let Some(why) = self.must_suspend(wf) {
                tracing::debug!(why, "suspending a body instead of parking it");
                return Err(wf.recorder().suspend(unfinished, None, None));
            }
            let _parked = self.slots.park();
            let _ = tokio::time::timeout(RECHECK, rung).await;
        }
    }

    /// Submits the children this execution started by a checkpoint, running the one it claims
    /// beside the body. False when nothing was checkpointed.
    fn submit<R>(&self, wf: &WorkflowContext, rest: &[ChildHandle<R>]) -> Result<bool, WfError> {
        let run = rest
            .iter()
            .find(|h| wf.recorder().submits(h.id()) && self.app.registered(h.task()).is_some());
        let Some(run) = run else {
            return Ok(false);
        };
        let Some(progress) = wf.recorder().progress()? else {
            return Ok(false);
        };
        let checkpoint = self.app.store().checkpoint(
            &self.lease,
            progress,
            run.id(),
            self.app.lease_duration(),
            self.runner.now(),
        );
        match checkpoint {
            Ok(Some(claim)) => {
                wf.recorder().checkpointed();
                spawn_claim(&self.app, claim, self.runner.clone(), &self.slots);
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(e) if crate::inline::nothing_written(&e) => {
                tracing::debug!(error = %e, child = %run.id(), "cannot checkpoint; suspending on the children");
                Ok(false)
            }
            // It may have been applied: commit no progress (see `crate::inline`).
            Err(e) => {
                tracing::warn!(error = %e, child = %run.id(), "a checkpoint's outcome is unknown; committing no progress, the invocation runs again from what the store holds");
                Err(wf.recorder().checkpoint_unknown(&e))
            }
        }
    }
}

/// `join_all` of an async body: parked when `parking` allows, else the sync join.
pub(crate) async fn join_all<R: DeserializeOwned>(
    wf: &WorkflowContext,
    parking: Option<&Parking>,
    handles: &[ChildHandle<R>],
) -> Result<Vec<R>, WfError> {
    let Some(parking) = parking else {
        return wf.join_all(handles);
    };
    wf.check_owned(handles)?;
    wf.recorder().tell_cancellation()?;
    let mut outcomes = wf.recorded_outcomes(handles)?;
    if outcomes.len() < handles.len() {
        let rest = &handles[outcomes.len()..];
        let watch = Abandon { wf, armed: true };
        let observed = parking.observe(wf, rest).await;
        watch.disarm();
        outcomes.extend(observed?);
    }
    decode_outcomes(handles, outcomes)
}

/// Marks the execution diverged when a parked join is dropped before it ended.
struct Abandon<'a> {
    wf: &'a WorkflowContext,
    armed: bool,
}

impl Abandon<'_> {
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.wf
                .abandoned("a workflow wait (a join, a timer or an event)");
        }
    }
}
