//! One run of a corpus on a fresh simulated disk (or the memory store): rounds of submitting,
//! running until idle, cancelling, purging and the zombie's late commit; the armed fault, the
//! crash and the reopen it leads to; and the checks after every reopen and at the end.

use std::path::PathBuf;
use std::sync::Arc;

use wf_core::{InvocationId, Status, Timestamp};
use wf_runtime::testing::freeze_clock;
use wf_runtime::{App, WfError};
use wf_store::{FileOptions, FileStore, MemoryStore};

use crate::corpus::{self, Program, Tasks, Watch};
use crate::driver::{MAX_ROUNDS, PlannedFault, ROUND, START, SeedFailure, SimOptions, start_round};
use crate::ledger::{Acks, Ledger, SharedAcks, acks, ledgered};
use crate::purge::Purges;
use crate::rng::SimRng;
use crate::simfs::{CrashKind, SimFs};
use crate::{check, zombie};

/// An open app on the run's store, its tasks and, on the file store, the store itself (to sync
/// where the owner idles).
type Opened = (App, Tasks, Option<Arc<Ledger<FileStore>>>);

/// One run of a corpus on a fresh simulated disk.
pub(super) struct Run {
    pub(super) fs: SimFs,
    rng: SimRng,
    acks: SharedAcks,
    pub(super) watch: Arc<Watch>,
    dir: PathBuf,
    compact_min: u64,
    pub(super) plan: Vec<PlannedFault>,
    next_fault: usize,
    armed: Option<PlannedFault>,
    /// The round in which a worker claims something and stalls past its lease.
    pub(super) zombie_round: Option<usize>,
    /// The virtual time: the runtime's clock on this thread is frozen at it.
    now: Timestamp,
    /// On the memory store instead of a file store on the simulated disk.
    pub(super) memory: bool,
    /// The file store's commits are pipelined ([`SimOptions::pipelined`]).
    pub(super) pipelined: bool,
    /// Retention: purges between rounds, in some seeds.
    pub(super) purges: Purges,
    pub(super) violations: Vec<String>,
    pub(super) log: Vec<String>,
    pub(super) results: Vec<(Status, Option<Vec<u8>>)>,
}

impl Run {
    pub(super) fn new(seed: u64, compact_min: u64, rng: SimRng, plan: Vec<PlannedFault>) -> Self {
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

    pub(super) fn trace(&mut self, line: String) {
        self.log.push(format!("[op {}] {line}", self.fs.ops()));
    }

    fn violation(&mut self, v: String) {
        self.trace(format!("VIOLATION: {v}"));
        self.violations.push(v);
    }

    pub(super) fn failure(&self, seed: u64, which: &str, options: SimOptions) -> SeedFailure {
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
    fn open(&mut self) -> Option<Opened> {
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

    fn try_open(&mut self) -> Result<Opened, WfError> {
        let mut file = None;
        let store = if self.memory {
            ledgered(MemoryStore::new(), self.acks.clone())
        } else {
            // No idle-sync thread: its real-time delay would make the disk history depend on
            // the machine's speed. The driver syncs where the owner idles instead (see
            // `execute_frozen`), as the thread would once its delay passed.
            let options = FileOptions::default()
                .file_system(Arc::new(self.fs.clone()))
                .compact_min_bytes(self.compact_min)
                .pipelined_commits(self.pipelined)
                .idle_sync(None);
            let store = FileStore::open_with(&self.dir, options).map_err(WfError::Store)?;
            if let Some(cut) = store.torn_tail().filter(|c| c.hole) {
                self.trace(format!(
                    "open cut an unsynced hole at offset {}: {}",
                    cut.offset, cut.reason
                ));
                self.fs.note_hole_cut();
            }
            let ledger = Arc::new(Ledger::new(store, self.acks.clone()));
            file = Some(Arc::clone(&ledger));
            ledger
        };
        let app = App::builder().app_id("sim").store(store).build()?;
        let tasks = corpus::register(&app, &self.watch, &self.acks)?;
        Ok((app, tasks, file))
    }

    /// Runs the corpus on this thread with its clock frozen at the virtual time, and thaws it.
    pub(super) fn execute(mut self, programs: &[Program]) -> Self {
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
            let (app, tasks, file) = &opened;
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
            if let (Ok(()), Some(file)) = (&result, file) {
                // The owner idles: the idle sync's delay passes (`FileOptions::idle_sync`).
                result = file.inner().flush().map_err(WfError::Store);
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
        let foreign = self.fs.foreign_ops();
        if foreign > 0 {
            self.violation(format!(
                "{foreign} file-system operations came from another thread than the driver's: \
                 the history depends on that thread's timing, so the seed does not name it"
            ));
        }
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
        match check::replays(app, &self.watch) {
            Ok(n) => self.trace(format!("replay check: {n} replayed")),
            Err(v) => self.violation(v),
        }
    }

    /// Everything is final; collects the workflows' results.
    fn check_final(&mut self, app: &App, ids: &[Option<InvocationId>]) {
        let ended = check::ended(app, &self.acks, &self.purges, ids);
        ended.violations.into_iter().for_each(|v| self.violation(v));
        self.results = ended.results;
    }
}
