//! The driver: one seed, one history. It draws a corpus of workflows and runs it twice on a
//! [`SimFs`]: once without faults (the reference), then with seed-chosen faults (a process
//! death, a power loss, a torn flush, an fsync failing with `EIO` or `ENOSPC`) at seed-chosen
//! file-system operations. After every crash it drops the app and the store, lets the disk keep
//! what the crash kind keeps, reopens, and checks; at the end it checks again and compares the
//! results with the reference.
//!
//! Checked: every acknowledged submission and final outcome survives ([`crate::ledger`]); no
//! body runs again after its final outcome was acknowledged ([`crate::corpus::Watch`]); every
//! journal replays without divergence (`replay_check`); once faults stop, everything reaches a
//! final status; and each workflow's result equals the reference's.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use wf_core::{InvocationId, Status, Timestamp};
use wf_runtime::testing::{freeze_clock, replay_check};
use wf_runtime::{App, WfError};
use wf_store::{FileOptions, FileStore, MemoryStore, StoreError};

use crate::corpus::{self, Program, Tasks, Watch};
use crate::ledger::{Acks, SharedAcks, acks, ledgered};
use crate::purge::Purges;
use crate::redis_sim::{self, RedisReport};
use crate::rng::SimRng;
use crate::simfs::{CrashKind, Fault, SimCounts, SimFs};
use crate::{check, zombie};

/// A fault the driver will inject: `after` operations from when it is armed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedFault {
    /// Operations from arming to firing.
    pub after: u64,
    /// What fires.
    pub fault: Fault,
    /// What the crash that follows keeps.
    pub crash: CrashKind,
}

/// What one seed did, when it passed.
#[derive(Debug, Clone, Default)]
pub struct SeedReport {
    /// The seed.
    pub seed: u64,
    /// Workflows in its corpus.
    pub workflows: usize,
    /// The faulty run's disk counters (faults fired, crashes by kind, bytes lost).
    pub counts: SimCounts,
    /// Body executions in the faulty run.
    pub executions: u64,
    /// The step trace of the faulty run.
    pub trace: Vec<String>,
    /// On Redis (`--redis`): the proxy's fault counters and process deaths.
    pub redis: Option<RedisReport>,
    /// Invocations purged (retention) in the checked run.
    pub purged: u64,
}

/// A seed that failed: what was violated, and the trace that led there.
#[derive(Debug, Clone)]
pub struct SeedFailure {
    /// The seed.
    pub seed: u64,
    /// The violations, first first.
    pub violations: Vec<String>,
    /// The step trace of the run that failed.
    pub trace: Vec<String>,
    /// The options it ran with (part of what the seed's history depends on).
    pub options: SimOptions,
}

impl std::fmt::Display for SeedFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "sim seed {} FAILED:", self.seed)?;
        for v in &self.violations {
            writeln!(f, "  - {v}")?;
        }
        let d = SimOptions::default();
        let mut flags = String::new();
        if self.options.max_faults != d.max_faults {
            flags.push_str(&format!(" --max-faults {}", self.options.max_faults));
        }
        if self.options.max_workflows != d.max_workflows {
            flags.push_str(&format!(" --max-workflows {}", self.options.max_workflows));
        }
        if !self.options.reorder {
            flags.push_str(" --no-reorder");
        }
        if self.options.memory {
            flags.push_str(" --memory");
        }
        if self.options.redis {
            flags.push_str(" --redis");
        }
        if self.options.stress {
            flags.push_str(" --stress");
        }
        if !self.options.pipelined {
            flags.push_str(" --unpipelined");
        }
        write!(
            f,
            "replay this history with its step trace: cargo xtask sim --seed {}{flags} --trace",
            self.seed
        )
    }
}

/// Knobs of a run (the defaults are what CI runs).
#[derive(Debug, Clone, Copy)]
pub struct SimOptions {
    /// At most this many faults per seed.
    pub max_faults: u64,
    /// Workflows per corpus: 1 to this.
    pub max_workflows: u64,
    /// Half the torn crashes are [`CrashKind::Reordered`] (sector holes in the unsynced tail).
    pub reorder: bool,
    /// Runs the checked run on the memory store instead: no disk faults (a memory store does
    /// not survive its process), the zombie still stalls, and the results must equal the file
    /// store's fault-free run.
    pub memory: bool,
    /// Runs the checked run on Redis through a fault-injecting proxy instead (see
    /// [`crate::redis_sim`]): not bit-for-bit repeatable; results must equal the file store's.
    pub redis: bool,
    /// Runs the corpus on Redis with real worker threads of two apps instead (see
    /// [`crate::stress`]): not deterministic; results must equal the file store's.
    pub stress: bool,
    /// Opens the file store with `FileOptions::pipelined_commits` (the store's default, and
    /// this one's; `--unpipelined` turns it off): workers' commits join the next group commit,
    /// and a reordered power loss can leave an unsynced hole that the next open cuts.
    pub pipelined: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            max_faults: 3,
            max_workflows: 4,
            reorder: true,
            memory: false,
            redis: false,
            stress: false,
            pipelined: true,
        }
    }
}

/// Runs one seed: the reference run, then the faulty run, with every check.
///
/// # Errors
/// A [`SeedFailure`] naming every violated invariant.
pub fn run_seed(seed: u64, options: SimOptions) -> Result<SeedReport, SeedFailure> {
    let mut rng = SimRng::new(seed);
    let n = rng.range(1, options.max_workflows) as usize;
    let mut programs = corpus::generate(&mut rng, n);
    corpus::add_cancellations(seed, &mut programs);
    let compact_min = rng.range(256, 16 << 10);
    let reference = Run::new(seed, compact_min, rng.clone(), Vec::new()).execute(&programs);
    if !reference.violations.is_empty() {
        return Err(reference.failure(seed, "reference run", options));
    }
    if let Some(v) = corpus::not_cancelled(&programs, &reference.results).pop() {
        let mut failure = reference.failure(seed, "reference run", options);
        failure.violations.push(format!("reference run: {v}"));
        return Err(failure);
    }
    let ops = reference.fs.ops().max(2);
    let faults = rng.range(1, options.max_faults);
    let plan: Vec<PlannedFault> = (0..faults)
        .map(|_| {
            let after = rng.range(1, ops / faults.max(1) + 1);
            let (fault, crash) = match rng.below(6) {
                0 => (Fault::Die, CrashKind::Process),
                1 => (Fault::Die, CrashKind::PowerLoss),
                2 => (Fault::Die, CrashKind::Torn),
                3 => (Fault::SyncEio, pick_crash(&mut rng)),
                4 => (Fault::SyncEnospc, pick_crash(&mut rng)),
                _ => (Fault::WriteEnospc, pick_crash(&mut rng)),
            };
            let crash = if crash == CrashKind::Torn && options.reorder && rng.chance(50) {
                CrashKind::Reordered
            } else {
                crash
            };
            PlannedFault {
                after,
                fault,
                crash,
            }
        })
        .collect();
    let zombie_round = rng.chance(50).then(|| rng.range(1, 3) as usize);
    if options.stress {
        return crate::stress::seed(seed, &programs, &reference.results, options);
    }
    if options.redis {
        return redis_sim::seed(
            seed,
            &programs,
            &mut rng,
            zombie_round,
            &reference.results,
            options,
        );
    }
    let plan = if options.memory { Vec::new() } else { plan };
    let mut faulty = Run::new(seed, compact_min, rng, plan);
    faulty.zombie_round = zombie_round;
    faulty.memory = options.memory;
    faulty.pipelined = options.pipelined;
    faulty.trace(format!("seed {seed}: {n} workflow(s) {programs:?}"));
    faulty.trace(format!("plan: {:?}", faulty.plan));
    let faulty = faulty.execute(&programs);
    let mut failure = faulty.failure(seed, "faulty run", options);
    if faulty.violations.is_empty() {
        failure.violations.extend(
            corpus::not_cancelled(&programs, &faulty.results)
                .into_iter()
                .map(|v| format!("faulty run: {v}")),
        );
    }
    if faulty.violations.is_empty() && faulty.results != reference.results {
        failure.violations.push(format!(
            "results differ from the fault-free run: {:?} != {:?}",
            faulty.results, reference.results
        ));
    }
    if !failure.violations.is_empty() {
        return Err(failure);
    }
    Ok(SeedReport {
        seed,
        workflows: n,
        counts: faulty.fs.counts(),
        executions: faulty.watch.executions.load(Ordering::SeqCst),
        purged: faulty.purges.removed,
        trace: faulty.log,
        redis: None,
    })
}

fn pick_crash(rng: &mut SimRng) -> CrashKind {
    match rng.below(3) {
        0 => CrashKind::Process,
        1 => CrashKind::PowerLoss,
        _ => CrashKind::Torn,
    }
}

/// The start of a round, the same on every backend: submits the workflows not submitted yet
/// (keyed, so a repeat after a crash finds the first), sends the events that are due, and, when
/// `stall_at` is given (the zombie's round), lets a worker claim something and stall past its
/// lease. Returns the first error and the stalled claim.
pub(crate) fn start_round(
    app: &App,
    tasks: &Tasks,
    programs: &[Program],
    ids: &mut [Option<InvocationId>],
    sent: &mut [usize],
    stall_at: Option<Timestamp>,
) -> (Result<(), WfError>, Option<zombie::Zombie>) {
    for (k, p) in programs.iter().enumerate() {
        if ids[k].is_none() {
            match tasks.flow.call_keyed(app, &format!("w{k}"), p.clone()) {
                Ok(inv) => ids[k] = Some(inv.id()),
                Err(e) => return (Err(e), None),
            }
        }
    }
    if let Err(e) = send_events(app, programs, ids, sent) {
        return (Err(e), None);
    }
    match stall_at.map(|now| zombie::stall(app, now)) {
        None => (Ok(()), None),
        Some(Ok(z)) => (Ok(()), z),
        Some(Err(e)) => (Err(WfError::Store(e)), None),
    }
}

/// Sends each submitted workflow the `go` events it waits for that were not acknowledged yet
/// (idempotent by key, so a send whose answer a crash lost is safe to repeat).
pub(crate) fn send_events(
    app: &App,
    programs: &[Program],
    ids: &[Option<InvocationId>],
    sent: &mut [usize],
) -> Result<(), WfError> {
    for (k, p) in programs.iter().enumerate() {
        let Some(id) = ids[k] else { continue };
        while sent[k] < p.events() {
            let j = sent[k] as u64;
            app.send_event_with_key(id, "go", &format!("e{j}"), &j)?;
            sent[k] += 1;
        }
    }
    Ok(())
}

/// One run of a corpus on a fresh simulated disk.
struct Run {
    fs: SimFs,
    rng: SimRng,
    acks: SharedAcks,
    watch: Arc<Watch>,
    dir: PathBuf,
    compact_min: u64,
    plan: Vec<PlannedFault>,
    next_fault: usize,
    armed: Option<PlannedFault>,
    /// The round in which a worker claims something and stalls past its lease.
    zombie_round: Option<usize>,
    /// The virtual time: the runtime's clock on this thread is frozen at it.
    now: Timestamp,
    /// On the memory store instead of a file store on the simulated disk.
    memory: bool,
    /// The file store's commits are pipelined ([`SimOptions::pipelined`]).
    pipelined: bool,
    /// Retention: purges between rounds, in some seeds.
    purges: Purges,
    violations: Vec<String>,
    log: Vec<String>,
    results: Vec<(Status, Option<Vec<u8>>)>,
}

/// Rounds (run until idle, or crash and reopen) before a run counts as stuck.
pub(crate) const MAX_ROUNDS: usize = 64;

/// The virtual time a run starts at (2030-01-01), and how far it moves each round: past every
/// lease, retry backoff and sleep of the round before, as if the process restarted an hour later.
pub(crate) const START: Timestamp = Timestamp(1_893_456_000_000);
pub(crate) const ROUND: Duration = Duration::from_secs(3600);

impl Run {
    fn new(seed: u64, compact_min: u64, rng: SimRng, plan: Vec<PlannedFault>) -> Self {
        Self {
            fs: SimFs::new(),
            rng,
            acks: SharedAcks::new(std::sync::Mutex::new(Acks::default())),
            watch: Arc::new(Watch::default()),
            dir: PathBuf::from(format!("/sim/{seed}")),
            compact_min,
            plan,
            next_fault: 0,
            armed: None,
            zombie_round: None,
            now: START,
            memory: false,
            pipelined: false,
            purges: Purges::for_seed(seed),
            violations: Vec::new(),
            log: Vec::new(),
            results: Vec::new(),
        }
    }

    fn trace(&mut self, line: String) {
        self.log.push(format!("[op {}] {line}", self.fs.ops()));
    }

    fn violation(&mut self, v: String) {
        self.trace(format!("VIOLATION: {v}"));
        self.violations.push(v);
    }

    fn failure(&self, seed: u64, which: &str, options: SimOptions) -> SeedFailure {
        let mut violations: Vec<String> = self
            .violations
            .iter()
            .map(|v| format!("{which}: {v}"))
            .collect();
        let inside = self
            .watch
            .violations
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        violations.extend(inside.iter().map(|v| format!("{which}: {v}")));
        SeedFailure {
            seed,
            violations,
            trace: self.log.clone(),
            options,
        }
    }

    /// Arms the next planned fault if none is armed.
    fn arm_next(&mut self) {
        if self.armed.is_none()
            && let Some(p) = self.plan.get(self.next_fault).copied()
        {
            self.next_fault += 1;
            let at = self.fs.ops() + p.after;
            self.fs.arm(at, p.fault);
            self.armed = Some(p);
            self.trace(format!(
                "armed {:?} at op {at}, then a {:?} crash",
                p.fault, p.crash
            ));
        }
    }

    /// Crashes the disk as the armed fault's plan says.
    fn crash(&mut self) {
        let kind = self.armed.take().map_or(CrashKind::Process, |p| p.crash);
        self.trace(format!("{:?} fired; {kind:?} crash", self.fs.fired()));
        self.fs.crash(kind, &mut self.rng);
        let c = self.fs.counts();
        self.trace(format!(
            "disk after the crash (so far {} unsynced bytes, {} directory operations lost, {} \
             holes); reopening",
            c.bytes_lost, c.dir_ops_lost, c.holes
        ));
    }

    /// Opens the store and an app on it, crashing and retrying while faults fire.
    fn open(&mut self) -> Option<(App, Tasks)> {
        for _ in 0..MAX_ROUNDS {
            self.arm_next();
            match self.try_open() {
                Ok(opened) => return Some(opened),
                Err(e) if self.fs.fired().is_some() => {
                    self.trace(format!("open failed under a fault: {e}"));
                    self.crash();
                }
                Err(e) => {
                    self.violation(format!("could not open the store: {e}"));
                    return None;
                }
            }
        }
        self.violation(format!("could not open the store in {MAX_ROUNDS} attempts"));
        None
    }

    fn try_open(&mut self) -> Result<(App, Tasks), WfError> {
        let store = if self.memory {
            ledgered(MemoryStore::new(), self.acks.clone())
        } else {
            let options = FileOptions::default()
                .file_system(Arc::new(self.fs.clone()))
                .compact_min_bytes(self.compact_min)
                .pipelined_commits(self.pipelined);
            let store = FileStore::open_with(&self.dir, options).map_err(WfError::Store)?;
            if let Some(cut) = store.torn_tail().filter(|c| c.hole) {
                self.trace(format!(
                    "open cut an unsynced hole at offset {}: {}",
                    cut.offset, cut.reason
                ));
                self.fs.note_hole_cut();
            }
            ledgered(store, self.acks.clone())
        };
        let app = App::builder().app_id("sim").store(store).build()?;
        let tasks = corpus::register(&app, &self.watch, &self.acks)?;
        Ok((app, tasks))
    }

    /// Runs the corpus on this thread with its clock frozen at the virtual time, and thaws it.
    fn execute(mut self, programs: &[Program]) -> Self {
        freeze_clock(Some(self.now));
        self = self.execute_frozen(programs);
        freeze_clock(None);
        self
    }

    fn execute_frozen(mut self, programs: &[Program]) -> Self {
        let mut ids: Vec<Option<InvocationId>> = vec![None; programs.len()];
        let mut sent = vec![0usize; programs.len()];
        let Some(mut opened) = self.open() else {
            return self;
        };
        let mut rounds = 0;
        loop {
            rounds += 1;
            self.now = self.now.saturating_add(ROUND);
            freeze_clock(Some(self.now));
            if rounds > MAX_ROUNDS {
                self.violation(format!("still not idle after {MAX_ROUNDS} rounds"));
                return self;
            }
            let (app, tasks) = &opened;
            let stall_at = (self.zombie_round == Some(rounds)).then_some(self.now);
            let (mut result, zombie) =
                start_round(app, tasks, programs, &mut ids, &mut sent, stall_at);
            if let Some(z) = &zombie {
                self.trace(format!(
                    "a zombie worker claimed {} and stalls",
                    z.invocation()
                ));
            }
            if result.is_ok() {
                result = app.run_until_idle().map(|n| {
                    self.log
                        .push(format!("[op {}] ran {n} execution(s)", self.fs.ops()));
                });
            }
            let mut cancelling = false;
            if result.is_ok() {
                result = corpus::cancel_hanging(app, programs, &ids).map(|done| {
                    cancelling = !done;
                });
            }
            if result.is_ok() {
                let cutoff = self.now.saturating_add(ROUND / 2);
                match self.purges.purge(app, &self.acks, &ids, cutoff) {
                    Ok(found) => found.into_iter().for_each(|v| self.violation(v)),
                    Err(e) => result = Err(WfError::Store(e)),
                }
            }
            self.drain_executions();
            if let (Ok(()), Some(z)) = (&result, &zombie) {
                match zombie::commit_late(app, z, self.now) {
                    None => self.trace("the zombie's late commit was refused".to_owned()),
                    Some(e) if self.fs.fired().is_some() => {
                        self.trace(format!(
                            "the zombie's late commit failed under a fault: {e}"
                        ));
                    }
                    Some(v) => self.violation(v),
                }
                if self.fs.fired().is_none() {
                    continue;
                }
            }
            match (result, self.fs.fired()) {
                (Ok(()), None) if cancelling => {}
                (Ok(()), None) => break,
                (Err(e), None) => {
                    self.violation(format!("the store failed without an injected fault: {e}"));
                    return self;
                }
                (result, Some(_)) => {
                    self.trace(format!("round ended under a fault: {result:?}"));
                    drop(opened);
                    self.crash();
                    let Some(again) = self.open() else {
                        return self;
                    };
                    opened = again;
                    self.check_reopened(&opened.0);
                }
            }
        }
        self.fs.disarm();
        let app = &opened.0;
        self.check_acks(app);
        self.check_replay(app);
        self.check_final(app, &ids);
        self
    }

    /// Moves the bodies' execution notes into the trace.
    fn drain_executions(&mut self) {
        let ran = std::mem::take(&mut *self.watch.trace.lock().unwrap_or_else(|p| p.into_inner()));
        let ops = self.fs.ops();
        self.log
            .extend(ran.into_iter().map(|line| format!("[op {ops}]   {line}")));
    }

    /// The checks after a reopen. The next fault is armed by then and may fire during them
    /// (a read waits for what it saw to be durable, which may write): what a process that died
    /// meanwhile could not read is no violation, and the checks run again after the next
    /// reopen.
    fn check_reopened(&mut self, app: &App) {
        let before = self.violations.len();
        self.check_acks(app);
        self.check_replay(app);
        if self.fs.fired().is_some() && self.violations.len() > before {
            self.violations.truncate(before);
            self.trace(
                "a fault fired during these checks: their findings are the dead process's \
                 failed reads, discarded"
                    .to_owned(),
            );
        }
    }

    /// Every acknowledged submission, outcome, journal entry and data write is in the store.
    fn check_acks(&mut self, app: &App) {
        let found = check::acknowledged(&**app.store(), &self.acks);
        if found.is_empty() {
            let line = {
                let a = acks(&self.acks);
                format!(
                    "acknowledged and present: {} submissions, {} final outcomes, {} journal \
                     entries, {} data writes",
                    a.submitted.len(),
                    a.finals.len(),
                    a.journals.values().map(|j| j.len()).sum::<usize>(),
                    a.data.len()
                )
            };
            self.trace(line);
        }
        for v in found {
            self.violation(v);
        }
    }

    /// Every journal replays without divergence.
    fn check_replay(&mut self, app: &App) {
        self.watch.checking.store(true, Ordering::SeqCst);
        let report = replay_check(app, app.store());
        self.watch.checking.store(false, Ordering::SeqCst);
        match report {
            Ok(r) if r.is_ok() => self.trace(format!("replay check: {} replayed", r.checked.len())),
            Ok(r) => self.violation(format!("{r}")),
            Err(e) => self.violation(format!("replay check failed: {e}")),
        }
    }

    /// Everything is final; collects the workflows' results.
    fn check_final(&mut self, app: &App, ids: &[Option<InvocationId>]) {
        let store = app.store();
        let mut all: Vec<InvocationId> = acks(&self.acks).submitted.keys().copied().collect();
        all.extend(
            ids.iter()
                .flatten()
                .filter(|id| !self.purges.results.contains_key(id)),
        );
        for id in all {
            match store.invocation(id) {
                Ok(r) if r.state.status.is_final() => {}
                Ok(r) => self.violation(format!("{id} is stuck: {:?}", r.state.status)),
                Err(StoreError::InvocationNotFound(_)) => {
                    self.violation(format!("{id} is missing"));
                }
                Err(e) => self.violation(format!("{id} unreadable: {e}")),
            }
        }
        for id in ids {
            let Some(id) = id else {
                self.violation("a workflow was never submitted".to_owned());
                continue;
            };
            match self.purges.result(app, *id) {
                Ok(r) => self.results.push(r),
                Err(e) => self.violation(format!("workflow {id} unreadable: {e}")),
            }
        }
    }
}
