//! The async worker's threads: each runs a current-thread tokio runtime and a `LocalSet`, claims
//! invocations while fewer than its concurrency run (parked bodies do not count), and runs
//! async bodies as local tasks (their futures need not be `Send`) and sync bodies on the
//! runtime's blocking threads.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;
use wf_store::{Claim, Lease, StoreError};

use super::body::run_body_async;
use super::park::{Parking, Slots};
use crate::app::App;
use crate::clock;
use crate::error::WfError;
use crate::execution::{Executed, conclude, prepare};
use crate::runner::{Pool, Runner};
use crate::worker::Shared;

/// How long an idle thread waits for work before it checks for a stop request.
const IDLE_WAIT: Duration = Duration::from_millis(200);

thread_local! {
    static ASYNC_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Whether this thread is an async worker thread (where a sync operation must not drive an
/// async body to its end: it would block the runtime its timers need).
pub(crate) fn on_async_thread() -> bool {
    ASYNC_THREAD.with(Cell::get)
}

/// How an async worker's threads run bodies.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AsyncSettings {
    pub(crate) concurrency: usize,
    pub(crate) max_parked: usize,
}

/// The body of one async worker thread.
pub(crate) fn work_thread(shared: &Shared, settings: AsyncSettings) {
    ASYNC_THREAD.with(|t| t.set(true));
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, worker = %shared.id, "could not build the worker thread's tokio runtime; the thread ends");
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, claim_loop(shared, settings));
}

/// Claims and runs invocations until the worker stops, then waits for the bodies running.
async fn claim_loop(shared: &Shared, settings: AsyncSettings) {
    let slots = Rc::new(Slots::new(settings.concurrency, settings.max_parked));
    let app = &shared.app;
    let store = app.store().clone();
    while !shared.pool.stopping() {
        if slots.busy() {
            let _ = tokio::time::timeout(IDLE_WAIT, slots.freed.notified()).await;
            continue;
        }
        let tasks = app.task_set();
        match store.claim(&shared.id, &tasks, app.lease_duration(), clock::now()) {
            Ok(Some(claim)) => spawn_claim(app, claim, shared.runner.clone(), &slots),
            Ok(None) => {
                let store = store.clone();
                let waited =
                    tokio::task::spawn_blocking(move || store.wait_for_work(&tasks, IDLE_WAIT))
                        .await;
                match waited {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => pause_after(shared, &e).await,
                    Err(e) => {
                        tracing::error!(error = %e, "the wait for work ended abnormally");
                        tokio::time::sleep(IDLE_WAIT).await;
                    }
                }
            }
            Err(e) => pause_after(shared, &e).await,
        }
    }
    while slots.running() > 0 {
        let _ = tokio::time::timeout(IDLE_WAIT, slots.freed.notified()).await;
    }
}

async fn pause_after(shared: &Shared, e: &StoreError) {
    tracing::error!(error = %e, worker = %shared.id, "store error; retrying in 1s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Runs a claimed invocation as a task of this thread: an async body awaited here, a sync one on
/// a blocking thread. It counts as running in `slots` until it committed.
pub(crate) fn spawn_claim(app: &App, claim: Claim, runner: Runner, slots: &Rc<Slots>) {
    let slot = slots.start();
    let app = app.clone();
    let slots = slots.clone();
    tokio::task::spawn_local(async move {
        let _slot = slot;
        let is_async = app
            .registered(&claim.record.spec.task)
            .is_some_and(|t| t.is_async());
        if !is_async {
            let ran = tokio::task::spawn_blocking(move || {
                runner.run(&app, claim);
            })
            .await;
            if let Err(e) = ran {
                tracing::error!(error = %e, "a sync body's thread ended abnormally");
            }
            return;
        }
        let tracked = Tracked::new(runner.pool(), claim.lease.clone());
        let parking = Parking::new(app.clone(), claim.lease.clone(), runner.clone(), slots);
        let executed = execute_async(&app, claim, &runner, parking).await;
        drop(tracked);
        runner.pool().count(executed.as_ref().map(|e| e.ended));
    });
}

/// A lease the worker renews until dropped (even if the runtime panics mid-execution).
struct Tracked<'a> {
    pool: &'a Arc<Pool>,
    lease: Lease,
}

impl<'a> Tracked<'a> {
    fn new(pool: &'a Arc<Pool>, lease: Lease) -> Self {
        pool.track(&lease);
        Self { pool, lease }
    }
}

impl Drop for Tracked<'_> {
    fn drop(&mut self) {
        self.pool.forget(&self.lease);
    }
}

/// One execution of an async body on the async worker: prepare, await the body, commit.
async fn execute_async(
    app: &App,
    claim: Claim,
    runner: &Runner,
    parking: Parking,
) -> Result<Executed, WfError> {
    let mut prepared = prepare(app, claim, runner);
    let (spec, attempt) = (prepared.record.spec.clone(), prepared.lease.attempt);
    let span = prepared.span.clone();
    let ran = match prepared.body.as_mut() {
        Some(b) => {
            let (recorder, inline) = (b.recorder(), b.inline(runner));
            let run = run_body_async(
                app,
                &b.task,
                &spec,
                attempt,
                recorder,
                b.clock,
                inline,
                Some(parking),
            );
            Some(run.instrument(span).await)
        }
        None => None,
    };
    conclude(app, prepared, ran, runner, None)
}
