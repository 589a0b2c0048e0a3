//! Workers: thread pools that claim invocations, run them and keep their leases alive.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use wf_core::{InvocationId, WorkerId};
use wf_store::{Claim, Lease, StoreError};

use crate::app::App;
use crate::clock;
use crate::error::WfError;
use crate::execution::execute;
use crate::ids::worker_name;
use crate::runner::{Clock, Pool, Runner};

/// The default number of bodies an async worker thread runs at once.
#[cfg(feature = "tokio")]
const DEFAULT_CONCURRENCY: usize = 64;

/// The default bound on parked bodies per async worker thread.
#[cfg(feature = "tokio")]
const DEFAULT_MAX_PARKED: usize = 1024;

/// How long an idle worker thread blocks waiting for work before it checks for a stop request.
const IDLE_WAIT: Duration = Duration::from_millis(200);

/// Configures a worker pool: `app.worker().threads(4).start()?`.
#[derive(Debug)]
pub struct WorkerBuilder {
    app: App,
    threads: usize,
    name: Option<String>,
    renew_leases: bool,
    /// Async threads (feature `tokio`): bodies per thread and the bound on parked ones.
    #[cfg(feature = "tokio")]
    bodies: Option<crate::asynch::worker::AsyncSettings>,
}

impl WorkerBuilder {
    pub(crate) fn new(app: App) -> Self {
        let threads = app.config().worker_threads;
        Self {
            app,
            threads,
            name: None,
            renew_leases: true,
            #[cfg(feature = "tokio")]
            bodies: None,
        }
    }

    /// Makes an async worker (feature `tokio`): each of its threads runs a current-thread tokio
    /// runtime and up to `n` bodies at once (at least 1), async bodies as tasks of the runtime
    /// and sync ones on its blocking threads. An async body waiting on children that are not
    /// final stays parked in memory and resumes when their commits land, instead of being
    /// suspended and replayed; parked bodies do not count against `n`. Pair it with
    /// [`WorkerBuilder::threads`] (default here: as the app says) for more runtimes.
    #[cfg(feature = "tokio")]
    pub fn concurrency(mut self, n: usize) -> Self {
        let max_parked = self.bodies.map_or(DEFAULT_MAX_PARKED, |b| b.max_parked);
        self.bodies = Some(crate::asynch::worker::AsyncSettings {
            concurrency: n.max(1),
            max_parked,
        });
        self
    }

    /// The bound on parked async bodies per thread of an async worker (default 1024): a body
    /// that would park past it is suspended instead, and replayed from its journal when its
    /// children are final. 0 parks nothing (every wait suspends, as in a sync body). Makes the
    /// worker async, with a concurrency of 64 unless [`WorkerBuilder::concurrency`] says.
    #[cfg(feature = "tokio")]
    pub fn max_parked(mut self, n: usize) -> Self {
        let concurrency = self.bodies.map_or(DEFAULT_CONCURRENCY, |b| b.concurrency);
        self.bodies = Some(crate::asynch::worker::AsyncSettings {
            concurrency,
            max_parked: n,
        });
        self
    }

    /// How many invocations run at once (one thread each). At least 1.
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n.max(1);
        self
    }

    /// The worker's name in leases and logs (default `w<pid>-<n>`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Whether running invocations' leases are renewed (default yes). Turning it off simulates a
    /// stalled worker (its leases expire while bodies still run): for failover tests only.
    pub fn renew_leases(mut self, yes: bool) -> Self {
        self.renew_leases = yes;
        self
    }

    /// Starts the pool in the background of this process and returns its handle.
    ///
    /// # Errors
    ///
    /// [`WfError::Config`] when a thread cannot be spawned; [`WfError::Usage`] from inside a
    /// task body (a body runs again on every replay: each run would start another pool);
    /// [`WfError::Store`] with [`wf_store::StoreError::NotOwner`] when this process reaches a
    /// file store owned by another process (workers run in the owner).
    pub fn start(self) -> Result<Worker, WfError> {
        if let Some(invocation) = self.app.body_in_progress() {
            return Err(WfError::Usage(format!(
                "a worker pool was started from inside the body of invocation {invocation}; \
                 start workers in a process's main or a test, not in task bodies (a body runs \
                 again on every replay)"
            )));
        }
        // A process that reaches its file store through the owner's control socket cannot run
        // workers: refuse here, with the owner named, rather than from a background thread.
        #[cfg(all(feature = "file", unix))]
        if self.app.store().backend() == wf_store::control::BACKEND {
            self.app.store().next_due(&wf_store::TaskSet::default())?;
        }
        let id = WorkerId::new(self.name.unwrap_or_else(worker_name));
        let pool = Arc::new(Pool::default());
        let shared = Arc::new(Shared {
            app: self.app,
            runner: Runner::new(id.clone(), Clock::Wall, pool.clone()),
            id,
            pool,
            stop_renewing: AtomicBool::new(false),
            wake: (Mutex::new(()), Condvar::new()),
        });
        let mut threads = Vec::with_capacity(self.threads);
        for i in 0..self.threads {
            let s = shared.clone();
            #[cfg(feature = "tokio")]
            let bodies = self.bodies;
            let t = std::thread::Builder::new()
                .name(format!("wf-{}-{i}", shared.id))
                .spawn(move || {
                    #[cfg(feature = "tokio")]
                    if let Some(settings) = bodies {
                        return crate::asynch::worker::work_thread(&s, settings);
                    }
                    s.work_loop()
                })
                .map_err(|source| WfError::Spawn {
                    what: "worker thread",
                    source,
                })?;
            threads.push(t);
        }
        let renewer = if self.renew_leases {
            let s = shared.clone();
            let t = std::thread::Builder::new()
                .name(format!("wf-{}-leases", shared.id))
                .spawn(move || s.renew_loop())
                .map_err(|source| WfError::Spawn {
                    what: "lease renewal thread",
                    source,
                })?;
            Some(t)
        } else {
            None
        };
        tracing::info!(worker = %shared.id, threads = self.threads, backend = shared.app.store().backend(), "worker started");
        Ok(Worker {
            shared,
            threads,
            renewer,
        })
    }

    /// Starts the pool and blocks the calling thread while it runs: the body of a worker
    /// process's `main`. Returns only if the pool stops (it does not stop by itself).
    ///
    /// # Errors
    ///
    /// As [`WorkerBuilder::start`].
    pub fn run(self) -> Result<(), WfError> {
        let mut worker = self.start()?;
        worker.shutdown_after_threads_end();
        Ok(())
    }
}

/// A snapshot of a worker's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerStats {
    /// Executions run.
    pub executed: u64,
    /// Executions that finished with a result.
    pub succeeded: u64,
    /// Executions that failed for good.
    pub failed: u64,
    /// Executions that failed and were scheduled for a retry.
    pub retried: u64,
    /// Executions deferred because a store read failed while the body ran.
    pub deferred: u64,
    /// Executions that suspended on children.
    pub suspended: u64,
    /// Executions handed back unfinished.
    pub released: u64,
    /// Executions whose commit was refused because the lease was lost.
    pub lease_lost: u64,
    /// Executions whose commit failed for another reason (a store error); the invocation is
    /// recovered when its lease expires.
    pub errors: u64,
}

pub(crate) struct Shared {
    pub(crate) app: App,
    pub(crate) id: WorkerId,
    /// Leases to renew, counters, the stop flag.
    pub(crate) pool: Arc<Pool>,
    /// Runs what the threads claim.
    pub(crate) runner: Runner,
    /// Stop renewing leases: set only once every work thread has ended, so bodies still running
    /// during a graceful stop keep their leases until they commit.
    stop_renewing: AtomicBool,
    wake: (Mutex<()>, Condvar),
}

impl Shared {
    fn work_loop(&self) {
        let store = self.app.store();
        let lease_for = self.app.lease_duration();
        // What the last commit claimed (`Some(None)`: it claimed and found nothing). A claimed
        // invocation runs even when a stop was asked meanwhile: it is leased to this worker.
        let mut next: Option<Option<Claim>> = None;
        loop {
            let found = match next.take() {
                Some(Some(claim)) => Some(claim),
                _ if self.pool.stopping() => break,
                Some(None) => None,
                // Read each time: tasks registered after the worker started are claimed too.
                None => {
                    match store.claim(&self.id, &self.app.task_set(), lease_for, clock::now()) {
                        Ok(found) => found,
                        Err(e) => {
                            self.pause_after(&e);
                            continue;
                        }
                    }
                }
            };
            let Some(claim) = found else {
                if let Err(e) = store.wait_for_work(&self.app.task_set(), IDLE_WAIT) {
                    self.pause_after(&e);
                }
                continue;
            };
            // The commit claims the next invocation in the same store operation, unless stopping.
            next = if self.pool.stopping() {
                self.runner.run(&self.app, claim);
                None
            } else {
                self.runner
                    .run_then_claim(&self.app, claim, &self.app.task_set())
            };
        }
    }

    /// After a store error: log it and wait a little (or until stopped) before trying again.
    fn pause_after(&self, e: &StoreError) {
        tracing::error!(error = %e, worker = %self.id, "store error; retrying in 1s");
        self.sleep_unless(|| self.pool.stopping(), Duration::from_secs(1));
    }

    /// Sleeps for `d`, or until `done` says so (and the wake condition is notified).
    fn sleep_unless(&self, done: impl Fn() -> bool, d: Duration) {
        let (lock, cond) = &self.wake;
        let guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        if !done() {
            let _ = cond.wait_timeout(guard, d);
        }
    }

    /// Renews every running invocation's lease at a third of the lease time, and passes on the
    /// cancellation requests of the invocations it renews to their bodies.
    fn renew_loop(&self) {
        let lease_for = self.app.lease_duration();
        let period = lease_for / 3;
        while !self.stop_renewing.load(Ordering::Acquire) {
            self.sleep_unless(|| self.stop_renewing.load(Ordering::Acquire), period);
            let leases = self.pool.leases();
            self.pass_on_cancellations(&leases);
            for lease in leases {
                match self.app.store().renew(&lease, lease_for, clock::now()) {
                    Ok(_) => {}
                    Err(StoreError::LeaseLost { reason, .. }) => {
                        tracing::warn!(invocation = %lease.invocation, %reason, "lease lost while running");
                        self.pool.forget(&lease);
                    }
                    Err(e) => {
                        tracing::error!(invocation = %lease.invocation, error = %e, "lease renewal failed")
                    }
                }
            }
        }
    }
}

impl Shared {
    /// Asks the store which of the invocations under `leases` were asked to stop (their
    /// workflow tree was cancelled, maybe by another process) and raises their bodies' flags.
    fn pass_on_cancellations(&self, leases: &[Lease]) {
        if leases.is_empty() {
            return;
        }
        let ids: Vec<InvocationId> = leases.iter().map(|l| l.invocation).collect();
        match self.app.store().cancel_requests(&ids) {
            Ok(requests) => {
                for (invocation, reason) in requests {
                    self.app.running().raise(invocation, &reason);
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not read cancellation requests"),
        }
    }
}

/// A running worker pool. [`Worker::stop`] (or dropping it) stops it gracefully: no new claims,
/// running bodies finish and commit.
#[must_use = "dropping the Worker stops it at once: keep it in a variable (`let worker = ...`) and call `stop()` when done"]
pub struct Worker {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    renewer: Option<JoinHandle<()>>,
}

impl Worker {
    /// The worker's id, as it appears in leases.
    pub fn id(&self) -> &WorkerId {
        &self.shared.id
    }

    /// The worker's counters so far. Children run inline by a workflow count as executions too.
    pub fn stats(&self) -> WorkerStats {
        self.shared.pool.stats()
    }

    /// Asks the pool to stop without waiting: no claim starts after this returns; running
    /// bodies go on and commit. Safe to call from a signal-handling thread; follow with
    /// [`Worker::stop`] to wait for the threads.
    pub fn request_stop(&self) {
        self.shared.pool.request_stop();
        // Parked async bodies see the stop and suspend.
        self.shared.app.ring();
        let (lock, cond) = &self.shared.wake;
        let _g = lock.lock().unwrap_or_else(|p| p.into_inner());
        cond.notify_all();
    }

    /// Stops claiming, lets running bodies finish and commit, and joins the threads.
    pub fn stop(mut self) -> WorkerStats {
        self.shutdown();
        self.stats()
    }

    fn shutdown(&mut self) {
        self.request_stop();
        self.shutdown_after_threads_end();
    }

    /// Joins the work threads (they end after a stop request), then stops the lease thread:
    /// bodies still running keep their leases renewed until they have committed.
    fn shutdown_after_threads_end(&mut self) {
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                tracing::error!(worker = %self.shared.id, "a worker thread panicked outside a task body");
            }
        }
        if let Some(renewer) = self.renewer.take() {
            self.shared.stop_renewing.store(true, Ordering::Release);
            {
                let (lock, cond) = &self.shared.wake;
                let _g = lock.lock().unwrap_or_else(|p| p.into_inner());
                cond.notify_all();
            }
            if renewer.join().is_err() {
                tracing::error!(worker = %self.shared.id, "the lease thread panicked");
            }
        }
        tracing::info!(worker = %self.shared.id, "worker stopped");
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if !self.threads.is_empty() || self.renewer.is_some() {
            self.shutdown();
        }
    }
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("id", &self.shared.id)
            .field("stats", &self.stats())
            .finish()
    }
}

impl App {
    /// Configures a worker pool for this app: `app.worker().threads(4).start()?`.
    pub fn worker(&self) -> WorkerBuilder {
        WorkerBuilder::new(self.clone())
    }

    /// Runs queued work on the calling thread until nothing is left to run, and returns how many
    /// executions ran. Meant for unit tests of workflows: deterministic (one thread, FIFO) and
    /// fast — retry backoffs and other not-before times are skipped, not waited for: the clock
    /// is virtual, and when nothing is runnable but something becomes runnable later, it jumps
    /// there instead of waiting.
    ///
    /// Do not use it while workers of the same store run: it treats the store as its own.
    ///
    /// # Errors
    ///
    /// [`WfError::Usage`] from inside a task body; [`WfError::Store`] when the store fails.
    pub fn run_until_idle(&self) -> Result<usize, WfError> {
        if let Some(invocation) = self.body_in_progress() {
            return Err(WfError::Usage(format!(
                "run_until_idle was called from inside the body of invocation {invocation}; it \
                 runs other invocations inline and belongs in tests, outside task bodies"
            )));
        }
        let store = self.store();
        let worker = WorkerId::new(format!("{}-inline", worker_name()));
        let lease_for = self.lease_duration();
        let tasks = self.task_set();
        // Counts the children that executions run inline; no lease thread: the clock is virtual.
        let pool = Arc::new(Pool::default());
        let mut virtual_now = clock::now();
        let mut executed = 0;
        loop {
            let now = virtual_now.max(clock::now());
            match store.claim(&worker, &tasks, lease_for, now)? {
                Some(claim) => {
                    let runner = Runner::new(worker.clone(), Clock::Fixed(now), pool.clone());
                    execute(self, claim, &runner, None)?;
                    executed += 1;
                }
                None => match store.next_due(&tasks)? {
                    Some(t) if t > now => virtual_now = t,
                    _ => return Ok(executed + pool.stats().executed as usize),
                },
            }
        }
    }
}
