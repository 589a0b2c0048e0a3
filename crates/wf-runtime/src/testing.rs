//! Replay checks for CI: would the workflows recorded in production replay under the code you
//! are about to deploy?
//!
//! [`replay_check`] replays recorded invocations — from a store (a file store's
//! `FileStore::snapshot`, the app's own store) or from a file written by `wf export` — against
//! the bodies registered in an app, without running children or writing anything, and reports
//! every invocation that would diverge, with the journal position and the two operations.
//!
//! Replaying runs the body's own code: only what it asks of the workflow context is answered
//! from the journal. So it replays only **orchestrators** — by default the tasks whose recorded
//! journals start children — or the tasks you name. Do not name leaf tasks with side effects: a
//! leaf's body *is* its side effect (charging a card, sending a mail), and replaying it would do
//! it again; its journal is usually empty anyway, so there is nothing to check.
//!
//! ```
//! use wf_runtime::testing::replay_check;
//! use wf_runtime::{App, TaskContext, TaskError};
//!
//! let app = App::builder().memory().build()?;
//! let leaf = app.task("leaf", |_: &TaskContext, n: u32| -> Result<u32, TaskError> { Ok(n) })?;
//! let flow = app.task("flow", move |ctx: &TaskContext, (): ()| -> Result<u32, TaskError> {
//!     Ok(ctx.wf().execute_task(&leaf, 1)?)
//! })?;
//! flow.call(&app, ())?;
//! app.run_until_idle()?;
//!
//! let report = replay_check(&app, app.store())?; // in CI: an export from production
//! assert!(report.is_ok(), "{report}");
//! assert_eq!(report.checked.len(), 1); // `flow` (it starts children); `leaf` is not replayed
//! # Ok::<(), wf_runtime::WfError>(())
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use wf_core::{InvocationId, NonDeterminism, OpKind, TaskId, Timestamp};
use wf_store::{ExportedInvocation, Store, StoreRead, WorkflowExport};

use crate::app::App;
use crate::clock::{self, ExecClock};
use crate::error::WfError;
use crate::execution::run_body;
use crate::inline::Inline;
use crate::recorder::{Recorder, Verdict};
use crate::registry::BodyError;

/// Where the recorded workflows come from.
#[derive(Clone, Copy)]
pub enum ReplaySource<'a> {
    /// Every workflow of a store.
    Store(&'a dyn StoreRead),
    /// The workflows of an export (`wf export`, [`read_export`]).
    Export(&'a WorkflowExport),
}

impl fmt::Debug for ReplaySource<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplaySource::Store(store) => f.debug_tuple("Store").field(&store.backend()).finish(),
            ReplaySource::Export(export) => f
                .debug_tuple("Export")
                .field(&export.invocations.len())
                .finish(),
        }
    }
}

impl<'a> From<&'a WorkflowExport> for ReplaySource<'a> {
    fn from(export: &'a WorkflowExport) -> Self {
        ReplaySource::Export(export)
    }
}

impl<'a> From<&'a dyn StoreRead> for ReplaySource<'a> {
    fn from(store: &'a dyn StoreRead) -> Self {
        ReplaySource::Store(store)
    }
}

impl<'a> From<&'a Arc<dyn Store>> for ReplaySource<'a> {
    fn from(store: &'a Arc<dyn Store>) -> Self {
        ReplaySource::Store(&**store)
    }
}

/// An invocation whose replay diverges from its journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    /// Its workflow.
    pub workflow: InvocationId,
    /// Its task.
    pub task: TaskId,
    /// Where it diverges (the invocation, the journal position, what the journal recorded and
    /// what the code asks for now).
    pub error: NonDeterminism,
}

/// An invocation that could not be replayed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The invocation.
    pub invocation: InvocationId,
    /// Its task.
    pub task: TaskId,
    /// What is wrong (its arguments no longer decode, its task is not registered).
    pub reason: String,
}

/// What a replay check found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// The invocations replayed.
    pub checked: Vec<InvocationId>,
    /// Those that diverge.
    pub divergences: Vec<Divergence>,
    /// Those of the selected tasks that could not be replayed.
    pub problems: Vec<Problem>,
}

impl ReplayReport {
    /// Whether every replayed invocation replays without divergence, and none could not be.
    pub fn is_ok(&self) -> bool {
        self.divergences.is_empty() && self.problems.is_empty()
    }
}

impl fmt::Display for ReplayReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "replay check: {} invocation(s) replayed, {} diverge, {} could not be replayed",
            self.checked.len(),
            self.divergences.len(),
            self.problems.len()
        )?;
        for d in &self.divergences {
            write!(
                f,
                "\n- workflow {}, invocation {} (task '{}'): at journal position {} the journal \
                 recorded {}, but the code now asks for {}",
                d.workflow,
                d.error.invocation,
                d.task,
                d.error.position,
                d.error.recorded,
                d.error.requested
            )?;
        }
        for p in &self.problems {
            write!(
                f,
                "\n- invocation {} (task '{}'): {}",
                p.invocation, p.task, p.reason
            )?;
        }
        Ok(())
    }
}

/// Replays the recorded workflows of `source` against `app`'s code and reports what would
/// diverge. Replays the tasks whose recorded journals start children (orchestrators); see
/// [`ReplayCheck::tasks`] to name them. Nothing is run live and nothing is written: children
/// are answered from the journal, and a replay stops where the journal ends.
///
/// # Errors
///
/// [`WfError::Store`] when reading the store fails.
pub fn replay_check<'a>(
    app: &App,
    source: impl Into<ReplaySource<'a>>,
) -> Result<ReplayReport, WfError> {
    ReplayCheck::new(app).run(source)
}

/// Reads a file written by `wf export`.
///
/// # Errors
///
/// [`WfError::BadExport`] when it cannot be read, is not an export, or has another format.
pub fn read_export(path: impl AsRef<Path>) -> Result<WorkflowExport, WfError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path)
        .map_err(|e| WfError::BadExport(format!("cannot read {}: {e}", path.display())))?;
    parse_export(&text).map_err(|e| match e {
        WfError::BadExport(why) => WfError::BadExport(format!("{}: {why}", path.display())),
        other => other,
    })
}

/// Parses the JSON of a `wf export`.
///
/// # Errors
///
/// [`WfError::BadExport`] when it is not an export, or has another format.
pub fn parse_export(json: &str) -> Result<WorkflowExport, WfError> {
    let export: WorkflowExport = serde_json::from_str(json).map_err(|e| {
        WfError::BadExport(format!("not a wf export ({e}); write one with `wf export`"))
    })?;
    if export.format != wf_store::EXPORT_FORMAT {
        return Err(WfError::BadExport(format!(
            "export format {} is not the format this build reads ({})",
            export.format,
            wf_store::EXPORT_FORMAT
        )));
    }
    Ok(export)
}

/// A replay check with options: `ReplayCheck::new(&app).tasks(["order"]).run(&export)`.
#[derive(Debug)]
pub struct ReplayCheck<'a> {
    app: &'a App,
    tasks: Option<BTreeSet<TaskId>>,
    unfinished_only: bool,
}

impl<'a> ReplayCheck<'a> {
    /// A check of `app`'s code, replaying orchestrators (tasks whose journals start children).
    pub fn new(app: &'a App) -> Self {
        Self {
            app,
            tasks: None,
            unfinished_only: false,
        }
    }

    /// Replays only invocations that were not final when recorded: those that will replay
    /// under the new code. (By default every recorded invocation is replayed, finished ones
    /// too, as regression cases; a finished invocation never replays in production, so when
    /// a planned change legitimately breaks old finished journals — the second and third
    /// stages of a patch — check what is in flight.)
    #[must_use]
    pub fn unfinished_only(mut self) -> Self {
        self.unfinished_only = true;
        self
    }

    /// Replays the invocations of these tasks only (never name leaf tasks with side effects:
    /// their bodies would run again).
    #[must_use]
    pub fn tasks<T: Into<TaskId>>(mut self, tasks: impl IntoIterator<Item = T>) -> Self {
        self.tasks = Some(tasks.into_iter().map(Into::into).collect());
        self
    }

    /// Runs the check on `source`.
    ///
    /// # Errors
    ///
    /// [`WfError::Store`] when reading the store fails.
    pub fn run<'s>(&self, source: impl Into<ReplaySource<'s>>) -> Result<ReplayReport, WfError> {
        let export = match source.into() {
            ReplaySource::Store(store) => WorkflowExport::all(store)?,
            ReplaySource::Export(export) => export.clone(),
        };
        let selected = self.tasks.clone().unwrap_or_else(|| orchestrators(&export));
        let mut report = ReplayReport::default();
        for inv in export
            .invocations
            .iter()
            .filter(|i| selected.contains(&i.spec.task))
            .filter(|i| !(self.unfinished_only && i.status.is_final()))
        {
            self.replay(inv, &mut report);
        }
        Ok(report)
    }

    /// Replays one invocation into `report`.
    fn replay(&self, inv: &ExportedInvocation, report: &mut ReplayReport) {
        let spec = Arc::new(inv.spec.clone());
        let Some(task) = self.app.registered(&spec.task) else {
            report.problems.push(Problem {
                invocation: spec.id,
                task: spec.task.clone(),
                reason: "its task is not registered in this app (renamed or removed?): its \
                         in-flight invocations would wait for a worker forever"
                    .to_owned(),
            });
            return;
        };
        let recorder = Recorder::new(spec.id, inv.journal.clone()).check_only();
        let clock = ExecClock::new(clock::now());
        let (result, sealed) = run_body(self.app, &task, &spec, 1, recorder, clock, Inline::none());
        report.checked.push(spec.id);
        if let Ok(Err(BodyError::Args(e))) = &result {
            report.problems.push(Problem {
                invocation: spec.id,
                task: spec.task.clone(),
                reason: format!(
                    "its recorded arguments do not decode as the task's argument type ({e})"
                ),
            });
        }
        if let Verdict::Diverged(error) = sealed.verdict {
            report.divergences.push(Divergence {
                workflow: spec.identity.workflow_id,
                task: spec.task.clone(),
                error,
            });
        }
    }
}

/// The tasks whose invocations in `export` start children.
fn orchestrators(export: &WorkflowExport) -> BTreeSet<TaskId> {
    export
        .invocations
        .iter()
        .filter(|i| i.journal.iter().any(|e| e.op.kind() == OpKind::ChildStart))
        .map(|i| i.spec.task.clone())
        .collect()
}

/// Freezes the runtime's clock **on the calling thread** at `at` (`None` thaws it): every time
/// the runtime reads on this thread — submission and claim times, `utc_now()`, the start of
/// [`App::run_until_idle`]'s virtual clock — is then `at`, so a single-threaded test (a
/// deterministic simulation) sees the same times on every run. Other threads, worker pools
/// included, keep the wall clock. Call it again to move the frozen clock.
///
/// ```
/// use wf_runtime::testing::freeze_clock;
/// use wf_runtime::{App, TaskContext, TaskError};
/// use wf_core::Timestamp;
///
/// freeze_clock(Some(Timestamp(1_900_000_000_000)));
/// let app = App::builder().memory().build()?;
/// let now = app.task("now", |ctx: &TaskContext, (): ()| -> Result<i64, TaskError> {
///     Ok(ctx.wf().utc_now().unix_timestamp())
/// })?;
/// let inv = now.call(&app, ())?;
/// app.run_until_idle()?;
/// assert_eq!(inv.result()?, 1_900_000_000);
/// freeze_clock(None);
/// # Ok::<(), wf_runtime::WfError>(())
/// ```
pub fn freeze_clock(at: Option<Timestamp>) {
    clock::freeze(at);
}
