//! The driver on Redis (`--redis`): the same corpus as the file store's seed, run against a
//! real `redis-server` (`appendonly yes`, `appendfsync always`) through a [`Proxy`] that
//! injects seed-chosen network and server faults, checked with the same invariants.
//!
//! Faults, each at a seed-chosen request counted from when it is armed: a cut connection, a
//! lost reply (the request applied, its reply dropped), an outage (every connection refused
//! for a while, or until a store call gave up: then the call's outcome is unknown), a lost
//! reply followed by an outage, a server restart (SIGKILL after applying a request, then the
//! same port and directory), and a process death (the proxy refuses the process for good; the
//! driver drops its app and opens a new one, as a restarted process would). Between rounds the
//! virtual clock moves an hour, past every lease.
//!
//! Checked: every acknowledged submission, final outcome, journal entry and data write is in
//! Redis after every reopen and at the end; no body runs after its final outcome was
//! acknowledged; stale commits (the zombie's) are refused; every journal replays; everything
//! ends final within 64 rounds; and the results equal the file store's fault-free
//! run of the same seed.
//!
//! Not bit-for-bit repeatable: the store retries on wall-clock backoff, so how many requests a
//! fault's aftermath takes (and where the next fault lands) can vary. The seed fixes the corpus
//! and the fault plan; a failing seed's command replays that plan.
//!
//! Redis's durability is wf's durability on Redis: without `appendfsync always` (or `WAIT`ed
//! replicas), a restart loses writes Redis acknowledged (see `tests/redis_restart.rs`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use wf_core::{InvocationId, Status, Timestamp};
use wf_runtime::testing::freeze_clock;
use wf_runtime::{App, WfError};
use wf_store::redis::testing::{RedisServer, ServerOptions, redis_server_binary, unique_namespace};
use wf_store::{RedisStore, StoreError};

use crate::corpus::{self, Program, Tasks, Watch};
use crate::driver::{MAX_ROUNDS, ROUND, START, start_round};
use crate::driver::{SeedFailure, SeedReport, SimOptions};
use crate::ledger::{Acks, Ledger, SharedAcks};
use crate::proxy::{Proxy, ProxyCounts, ProxyFault};
use crate::purge::Purges;
use crate::rng::SimRng;
use crate::simfs::SimCounts;
use crate::{check, zombie};

/// The lease of the driver's app: short, so a call that meets an outage gives up soon (after
/// the store's retry budget).
const LEASE: Duration = Duration::from_millis(500);

/// How long the driver waits for a restarted server before its checks.
const READY: Duration = Duration::from_secs(60);

/// A planned fault: `after` requests from when it is armed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisFault {
    /// Requests from arming to firing.
    pub after: u64,
    /// What fires; `None` is a process death.
    pub fault: Option<ProxyFault>,
}

/// What a Redis run did.
#[derive(Debug, Clone, Default)]
pub struct RedisReport {
    /// The proxy's counters over the run.
    pub proxy: ProxyCounts,
    /// Process deaths (apps dropped and opened again).
    pub deaths: u64,
    /// Faults planned but not reached (the run ended first).
    pub unfired: u64,
}

/// The process's server and proxy, started at the first seed (a server per seed would cost
/// more than the seed) and stopped by [`stop`]. Each seed has a namespace of its own.
static SHARED: Mutex<Option<Arc<Proxy>>> = Mutex::new(None);

fn shared_slot() -> MutexGuard<'static, Option<Arc<Proxy>>> {
    SHARED.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn shared() -> Result<Arc<Proxy>, String> {
    let mut slot = shared_slot();
    if let Some(p) = &*slot {
        return Ok(p.clone());
    }
    if redis_server_binary().is_none() {
        return Err("--redis needs redis-server on PATH (or WF_REDIS_SERVER)".to_owned());
    }
    let options = ServerOptions {
        aof_always: true,
        ..ServerOptions::default()
    };
    let server = RedisServer::start_with(&options)?;
    let proxy = Arc::new(Proxy::start(Arc::new(Mutex::new(server)))?);
    *slot = Some(proxy.clone());
    Ok(proxy)
}

/// Stops the server and proxy the Redis runs share (and removes the server's directory). The
/// next Redis run starts new ones.
pub fn stop() {
    let proxy = shared_slot().take();
    drop(proxy);
}

/// Draws the fault plan.
pub fn plan(rng: &mut SimRng, max_faults: u64) -> Vec<RedisFault> {
    let n = rng.range(1, max_faults);
    (0..n)
        .map(|_| {
            let after = rng.range(1, 40);
            let fault = match rng.below(8) {
                0 | 1 => Some(ProxyFault::Cut),
                2 | 3 => Some(ProxyFault::LostReply),
                4 => Some(ProxyFault::Outage(rng.range(1, 8))),
                5 => Some(ProxyFault::LostReplyThenOutage(if rng.chance(50) {
                    0
                } else {
                    rng.range(1, 8)
                })),
                6 => Some(ProxyFault::Restart),
                _ => None,
            };
            RedisFault { after, fault }
        })
        .collect()
}

/// One faulty run of `programs` on Redis: its violations (none when it passed), trace,
/// counters and results.
pub fn run(
    seed: u64,
    programs: &[Program],
    plan: Vec<RedisFault>,
    zombie_round: Option<usize>,
) -> RedisRun {
    let mut r = RedisRun::new(seed, plan);
    let proxy = match shared() {
        Ok(p) => p,
        Err(e) => {
            r.violation(e);
            return r;
        }
    };
    proxy.disarm();
    let before = proxy.counts();
    r.zombie_round = zombie_round;
    r.trace(format!("plan: {:?}", r.plan));
    freeze_clock(Some(r.now));
    r.results = r.execute(&proxy, programs);
    freeze_clock(None);
    proxy.disarm();
    if let Err(e) = proxy.wait_ready(READY).and_then(|()| proxy.flush_all()) {
        r.violation(format!("the harness could not empty redis-server: {e}"));
    }
    let after = proxy.counts();
    r.report.proxy = ProxyCounts {
        requests: after.requests - before.requests,
        cuts: after.cuts - before.cuts,
        lost_replies: after.lost_replies - before.lost_replies,
        outages: after.outages - before.outages,
        refused: after.refused - before.refused,
        restarts: after.restarts - before.restarts,
    };
    let inside = r
        .watch
        .violations
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    r.violations.extend(inside);
    r
}

/// The state of one Redis run.
#[derive(Debug)]
pub struct RedisRun {
    /// The plan.
    pub plan: Vec<RedisFault>,
    next: usize,
    /// The fault armed, not fired yet, with the proxy's counters when it was armed.
    armed: Option<(RedisFault, ProxyCounts)>,
    acks: SharedAcks,
    /// The bodies' executions.
    pub watch: Arc<Watch>,
    ns: String,
    now: Timestamp,
    zombie_round: Option<usize>,
    /// Set while a process death is on: the failure hook does not heal the outage.
    dying: Arc<AtomicBool>,
    /// What was violated.
    pub violations: Vec<String>,
    /// The trace.
    pub log: Vec<String>,
    /// The counters.
    pub report: RedisReport,
    /// Retention: purges between rounds, in some seeds.
    pub purges: Purges,
    /// Each workflow's final status and result, in corpus order.
    pub results: Vec<(Status, Option<Vec<u8>>)>,
}

impl RedisRun {
    fn new(seed: u64, plan: Vec<RedisFault>) -> Self {
        Self {
            plan,
            next: 0,
            armed: None,
            acks: SharedAcks::new(Mutex::new(Acks::default())),
            watch: Arc::new(Watch::default()),
            ns: unique_namespace(&format!("sim{seed}")),
            now: START,
            zombie_round: None,
            dying: Arc::new(AtomicBool::new(false)),
            violations: Vec::new(),
            log: Vec::new(),
            report: RedisReport::default(),
            results: Vec::new(),
            purges: Purges::for_seed(seed),
        }
    }

    fn trace(&mut self, line: String) {
        self.log.push(line);
    }

    fn violation(&mut self, v: String) {
        self.trace(format!("VIOLATION: {v}"));
        self.violations.push(v);
    }

    /// Arms the next planned fault once the one before fired (its counter moved).
    fn arm_next(&mut self, proxy: &Proxy) {
        if let Some((f, at)) = self.armed {
            let c = proxy.counts();
            let fired = c.cuts + c.lost_replies + c.outages + c.restarts
                > at.cuts + at.lost_replies + at.outages + at.restarts;
            if !fired {
                return;
            }
            self.trace(format!("fired: {f:?}"));
            self.armed = None;
        }
        let Some(f) = self.plan.get(self.next).copied() else {
            return;
        };
        self.next += 1;
        let counts = proxy.counts();
        let fault = f.fault.unwrap_or(ProxyFault::Outage(0));
        if f.fault.is_none() {
            self.dying.store(true, Ordering::SeqCst);
        }
        proxy.arm_at(counts.requests + f.after, fault);
        self.armed = Some((f, counts));
        self.trace(format!(
            "armed {f:?} at request {}",
            counts.requests + f.after
        ));
    }

    fn open(&mut self, proxy: &Arc<Proxy>) -> Option<(App, Tasks)> {
        for _ in 0..MAX_ROUNDS {
            match self.try_open(proxy) {
                Ok(opened) => return Some(opened),
                Err(e) => {
                    self.trace(format!("open failed: {e}"));
                    self.recover_process(proxy);
                }
            }
        }
        self.violation(format!("could not open the store in {MAX_ROUNDS} attempts"));
        None
    }

    fn try_open(&mut self, proxy: &Arc<Proxy>) -> Result<(App, Tasks), WfError> {
        let store = RedisStore::open(&proxy.url(&format!("ns={}", self.ns)))?;
        let dying = self.dying.clone();
        let proxy = proxy.clone();
        let hook = Arc::new(move |_: &'static str, _: &StoreError| {
            if !dying.load(Ordering::SeqCst) {
                proxy.heal();
            }
        });
        let store = Ledger::new(store, self.acks.clone()).with_hook(hook);
        let app = App::builder()
            .app_id("sim")
            .store(Arc::new(store))
            .lease_duration(LEASE)
            .build()?;
        let tasks = corpus::register(&app, &self.watch, &self.acks)?;
        Ok((app, tasks))
    }

    /// Whether the planned process death happened: its outage is on (the failure hook does
    /// not heal it).
    fn died(&self, proxy: &Proxy) -> bool {
        self.dying.load(Ordering::SeqCst) && proxy.is_down()
    }

    /// A process that died is gone: the next one finds Redis reachable.
    fn recover_process(&mut self, proxy: &Proxy) {
        if self.died(proxy) {
            self.dying.store(false, Ordering::SeqCst);
            self.report.deaths += 1;
            self.trace("the process died; a new one starts".to_owned());
        }
        proxy.heal();
    }

    fn execute(
        &mut self,
        proxy: &Arc<Proxy>,
        programs: &[Program],
    ) -> Vec<(Status, Option<Vec<u8>>)> {
        let mut ids: Vec<Option<InvocationId>> = vec![None; programs.len()];
        let mut sent = vec![0usize; programs.len()];
        let Some(mut opened) = self.open(proxy) else {
            return Vec::new();
        };
        self.arm_next(proxy);
        let mut rounds = 0;
        loop {
            rounds += 1;
            self.now = self.now.saturating_add(ROUND);
            freeze_clock(Some(self.now));
            if rounds > MAX_ROUNDS {
                self.violation(format!("still not idle after {MAX_ROUNDS} rounds"));
                return Vec::new();
            }
            let start = proxy.counts();
            let (app, tasks) = &opened;
            let stall_at = (self.zombie_round == Some(rounds)).then_some(self.now);
            let (mut result, stalled) =
                start_round(app, tasks, programs, &mut ids, &mut sent, stall_at);
            if result.is_ok() {
                result = app
                    .run_until_idle()
                    .map(|n| self.log.push(format!("ran {n} execution(s)")));
            }
            let mut cancelling = false;
            if result.is_ok() {
                result = corpus::cancel_hanging(app, programs, &ids).map(|done| cancelling = !done);
            }
            if result.is_ok() {
                let cutoff = self.now.saturating_add(ROUND / 2);
                match self.purges.purge(app, &self.acks, &ids, cutoff) {
                    Ok(found) => found.into_iter().for_each(|v| self.violation(v)),
                    Err(e) => result = Err(WfError::Store(e)),
                }
            }
            self.drain();
            if let (Ok(()), Some(z)) = (&result, &stalled) {
                match zombie::commit_late(app, z, self.now) {
                    None => self.trace(format!(
                        "the zombie's late commit on {} was refused",
                        z.invocation()
                    )),
                    Some(e) if faulted(start, proxy.counts()) => {
                        self.trace(format!(
                            "the zombie's late commit failed under a fault: {e}"
                        ));
                    }
                    Some(v) => self.violation(v),
                }
            }
            if let Some(e) = proxy.restart_failed() {
                self.violation(format!("the harness could not restart redis-server: {e}"));
                return Vec::new();
            }
            let fired = faulted(start, proxy.counts());
            match (result, fired) {
                (Ok(()), false) if stalled.is_none() && !cancelling => break,
                (Ok(()), _) => {}
                (Err(e), false) => {
                    self.violation(format!("the store failed without an injected fault: {e}"));
                    return Vec::new();
                }
                (Err(e), true) => {
                    self.trace(format!("round ended under a fault: {e}"));
                    if self.died(proxy) {
                        drop(opened);
                        self.recover_process(proxy);
                        let Some(again) = self.open(proxy) else {
                            return Vec::new();
                        };
                        opened = again;
                    }
                    self.check_reopened(proxy, &opened.0);
                }
            }
            // Armed after the checks, so that they run on a sound connection.
            self.arm_next(proxy);
        }
        proxy.disarm();
        self.dying.store(false, Ordering::SeqCst);
        if let Some((f, _)) = self.armed.take() {
            self.trace(format!("not reached: {f:?}"));
            self.report.unfired += 1;
        }
        self.report.unfired += (self.plan.len() - self.next) as u64;
        let app = &opened.0;
        if let Err(e) = proxy.wait_ready(READY) {
            self.violation(e);
        }
        self.check_acks(app);
        self.check_replay(app);
        self.check_final(app, &ids)
    }

    fn drain(&mut self) {
        let ran = std::mem::take(&mut *self.watch.trace.lock().unwrap_or_else(|p| p.into_inner()));
        self.log.extend(ran.into_iter().map(|l| format!("  {l}")));
    }

    /// The acknowledgements are there after a fault. A fault that fires during these reads
    /// makes their findings the failed reads of a broken connection: discarded (the checks run
    /// again at the end).
    fn check_reopened(&mut self, proxy: &Proxy, app: &App) {
        if let Err(e) = proxy.wait_ready(READY) {
            self.violation(e);
        }
        let (before, start) = (self.violations.len(), proxy.counts());
        self.check_acks(app);
        if self.violations.len() > before && faulted(start, proxy.counts()) {
            self.violations.truncate(before);
            self.trace(
                "a fault fired during these checks: their findings are discarded".to_owned(),
            );
        }
    }

    fn check_acks(&mut self, app: &App) {
        for v in check::acknowledged(&**app.store(), &self.acks) {
            self.violation(v);
        }
    }

    /// Every journal replays without divergence.
    fn check_replay(&mut self, app: &App) {
        match check::replays(app, &self.watch) {
            Ok(n) => self.trace(format!("replay check: {n} replayed")),
            Err(v) => self.violation(v),
        }
    }

    /// Everything is final; returns the workflows' results.
    fn check_final(
        &mut self,
        app: &App,
        ids: &[Option<InvocationId>],
    ) -> Vec<(Status, Option<Vec<u8>>)> {
        let ended = check::ended(app, &self.acks, &self.purges, ids);
        ended.violations.into_iter().for_each(|v| self.violation(v));
        ended.results
    }
}

/// Whether a fault fired between two readings of the proxy's counters.
fn faulted(a: ProxyCounts, b: ProxyCounts) -> bool {
    b.cuts + b.lost_replies + b.outages + b.restarts + b.refused
        > a.cuts + a.lost_replies + a.outages + a.restarts + a.refused
}

/// The checked run on Redis: the seed's corpus and a fault plan drawn after the file store's.
pub(crate) fn seed(
    seed: u64,
    programs: &[Program],
    rng: &mut SimRng,
    zombie_round: Option<usize>,
    reference: &[(Status, Option<Vec<u8>>)],
    options: SimOptions,
) -> Result<SeedReport, SeedFailure> {
    let plan = plan(rng, options.max_faults);
    let header = format!("seed {seed}: {} workflow(s) {programs:?}", programs.len());
    let fail = |r: RedisRun, extra: Option<String>| {
        let mut trace = vec![header.clone()];
        trace.extend(r.log);
        SeedFailure {
            seed,
            violations: r
                .violations
                .into_iter()
                .chain(extra)
                .map(|v| format!("redis run: {v}"))
                .collect(),
            trace,
            options,
        }
    };
    let r = run(seed, programs, plan, zombie_round);
    if !r.violations.is_empty() {
        return Err(fail(r, None));
    }
    if r.results != reference {
        let v = format!(
            "results differ from the fault-free run: {:?} != {reference:?}",
            r.results
        );
        return Err(fail(r, Some(v)));
    }
    Ok(SeedReport {
        seed,
        workflows: programs.len(),
        counts: SimCounts::default(),
        executions: r.watch.executions.load(Ordering::SeqCst),
        purged: r.purges.removed,
        trace: std::iter::once(header).chain(r.log).collect(),
        redis: Some(r.report),
    })
}
