//! Workflow bodies written as data, for the replay tests: a body is a list of [`Step`]s (one
//! workflow-context operation each) and an [`End`], and an [`Evolving`] task runs an *old*
//! program until it first reaches its end, then a *changed* one, as if its code were redeployed
//! while invocations of it were in flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use wf::prelude::*;

/// One operation of the workflow context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// `wf.random()`.
    Random,
    /// `wf.uuid()`.
    Uuid,
    /// `wf.utc_now()`.
    Time,
    /// `wf.get_data("k")`.
    Data,
    /// `wf.get_data("other")`: a read of another key.
    DataOtherKey,
    /// `wf.start_task(&leaf, 1)`: a child start.
    Start,
    /// `wf.start_task(&leaf, 2)`: the same task with other arguments (another call id).
    StartOtherArgs,
    /// `wf.start_task(&other, 1)`: another task.
    StartOtherTask,
    /// `wf.join(&h0)`: the result of the child every program starts first.
    Join,
}

impl Step {
    /// One step of every journal entry kind.
    pub const KINDS: [Step; 6] = [
        Step::Random,
        Step::Uuid,
        Step::Time,
        Step::Data,
        Step::Start,
        Step::Join,
    ];

    /// How the journal (and a `NonDeterminism`) names this operation: a prefix of the text.
    pub fn shows_as(self) -> &'static str {
        match self {
            Step::Random => "random()",
            Step::Uuid => "uuid()",
            Step::Time => "utc_now()",
            Step::Data => "get_data(\"k\")",
            Step::DataOtherKey => "get_data(\"other\")",
            Step::Start | Step::StartOtherArgs => "child start of task 'leaf'",
            Step::StartOtherTask => "child start of task 'other'",
            Step::Join => "child result of",
        }
    }
}

/// How a program's body ends once its steps are done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// `Ok(0)`.
    Return,
    /// `Err(TaskError::new("planned failure"))`.
    Fail,
    /// `panic!("planned panic")`.
    Panic,
}

impl End {
    /// The words a stop-short `NonDeterminism` uses for this ending.
    pub fn described_as(self) -> &'static str {
        match self {
            End::Return => "returned",
            End::Fail => "failed",
            End::Panic => "panicked",
        }
    }
}

/// The children programs start: `leaf` (doubles its argument) and `other`.
#[derive(Clone)]
pub struct Children {
    pub leaf: Task<u32, u32>,
    pub other: Task<u32, u32>,
}

impl Children {
    pub fn register(app: &App) -> Self {
        let leaf = app
            .task(
                "leaf",
                |_: &TaskContext, n: u32| -> Result<u32, TaskError> { Ok(n * 2) },
            )
            .unwrap();
        let other = app
            .task(
                "other",
                |_: &TaskContext, n: u32| -> Result<u32, TaskError> { Ok(n + 100) },
            )
            .unwrap();
        Self { leaf, other }
    }
}

/// Runs a program's steps. Every program first starts `leaf(0)` (journal position 0) so that
/// [`Step::Join`] has a child to wait for; its steps begin at position 1.
pub fn perform(wf: &WorkflowContext, children: &Children, steps: &[Step]) -> Result<(), WfError> {
    let h0 = wf.start_task(&children.leaf, 0)?;
    for step in steps {
        match step {
            Step::Random => {
                wf.random();
            }
            Step::Uuid => {
                wf.uuid();
            }
            Step::Time => {
                wf.utc_now();
            }
            Step::Data => {
                wf.get_data::<u32>("k")?;
            }
            Step::DataOtherKey => {
                wf.get_data::<u32>("other")?;
            }
            Step::Start => {
                wf.start_task(&children.leaf, 1)?;
            }
            Step::StartOtherArgs => {
                wf.start_task(&children.leaf, 2)?;
            }
            Step::StartOtherTask => {
                wf.start_task(&children.other, 1)?;
            }
            Step::Join => {
                wf.join(&h0)?;
            }
        }
    }
    Ok(())
}

/// A program: steps, then an end.
#[derive(Clone, Debug)]
pub struct Program {
    pub steps: Vec<Step>,
    pub end: End,
}

impl Program {
    pub fn new(steps: &[Step], end: End) -> Self {
        Self {
            steps: steps.to_vec(),
            end,
        }
    }
}

/// A task whose body runs `old` until an execution of it reaches its end, and `changed` after.
pub struct Evolving {
    pub task: Task<(), u32>,
    /// How many executions ran (old and changed).
    pub executions: Arc<AtomicU32>,
}

impl Evolving {
    /// Registers `name` with one retry (`Backoff::none()`), so that an old program ending in
    /// [`End::Fail`] or [`End::Panic`] is replayed by the changed one.
    pub fn register(app: &App, name: &str, old: Program, changed: Program) -> Self {
        let children = Children::register(app);
        let executions = Arc::new(AtomicU32::new(0));
        let switched = Arc::new(AtomicBool::new(false));
        let (runs, flag) = (executions.clone(), switched.clone());
        let task = app
            .task_with(
                TaskOptions::new(name)
                    .max_retries(1)
                    .retry_backoff(Backoff::none()),
                move |ctx: &TaskContext, (): ()| -> Result<u32, TaskError> {
                    runs.fetch_add(1, Ordering::SeqCst);
                    let is_changed = flag.load(Ordering::SeqCst);
                    let program = if is_changed { &changed } else { &old };
                    perform(ctx.wf(), &children, &program.steps)?;
                    flag.store(true, Ordering::SeqCst);
                    match program.end {
                        End::Return => Ok(0),
                        End::Fail => Err(TaskError::new("planned failure")),
                        End::Panic => panic!("planned panic"),
                    }
                },
            )
            .unwrap();
        Self { task, executions }
    }
}

/// Runs `task` on `app` inline until idle and returns how its invocation ended.
pub fn run_to_end(app: &App, task: &Task<(), u32>) -> (InvocationId, Result<u32, WfError>) {
    let inv = task.call(app, ()).unwrap();
    app.run_until_idle().unwrap();
    (inv.id(), inv.result_timeout(super::PATIENCE))
}

/// Asserts `result` is a `NonDeterminism` of `invocation` at `position` whose recorded side
/// starts with `recorded` and whose requested side contains `requested`.
#[track_caller]
pub fn assert_diverged<R: std::fmt::Debug>(
    context: &str,
    invocation: InvocationId,
    result: Result<R, WfError>,
    position: u32,
    recorded: &str,
    requested: &str,
) {
    match result {
        Err(WfError::NonDeterminism(nd)) => {
            assert_eq!(nd.invocation, invocation, "{context}: {nd}");
            assert_eq!(nd.position, position, "{context}: {nd}");
            assert!(
                nd.recorded.starts_with(recorded),
                "{context}: recorded side {:?} should start with {recorded:?}",
                nd.recorded
            );
            assert!(
                nd.requested.contains(requested),
                "{context}: requested side {:?} should contain {requested:?}",
                nd.requested
            );
        }
        other => panic!("{context}: expected NonDeterminism at {position}, got {other:?}"),
    }
}
