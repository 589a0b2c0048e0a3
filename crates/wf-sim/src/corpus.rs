//! The generated corpus: workflows as data ([`Program`]s of [`Step`]s, drawn from a seed) and
//! the tasks that run them, registered through the public runtime API.
//!
//! A program's result depends only on its steps (children's results, data read back), never on
//! its random draws, so a faulty run must end with the results of the fault-free run. Every body
//! execution is noted in the driver's memory ([`Watch`]), outside the simulated disk: a body
//! running again after its final outcome was acknowledged is a violation.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wf_core::Status;
use wf_runtime::{App, Task, TaskContext, TaskError, TaskOptions, WfError};

use crate::ledger::{SharedAcks, acks};
use crate::rng::SimRng;

/// One step of a generated workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Step {
    /// Runs the leaf child with this argument and waits for it.
    Leaf(u64),
    /// Starts one leaf child per argument, then joins them all.
    FanOut(Vec<u64>),
    /// A child that fails its first `fails` attempts, retried that many times.
    Flaky(u64, u32),
    /// A child that always fails; the parent catches the failure.
    Fail(u64),
    /// A child that panics; the parent catches the failure.
    Panic(u64),
    /// A sub-workflow (a workflow of its own) running these steps.
    Sub(Vec<Step>),
    /// Writes workflow data and reads it back.
    Data(u64),
    /// Draws `random`, `uuid` and `utc_now` (their values never reach the result).
    Draws,
    /// Sleeps this many milliseconds (a durable timer).
    Sleep(u64),
    /// Waits for the next `go` event (top level only: the driver sends one per such step).
    Event,
    /// Waits for an event nobody sends (last step of a top-level workflow only): the driver
    /// cancels the workflow's tree once it is idle, and it must end cancelled.
    Hang,
}

/// A generated workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Program {
    /// Its steps, in order.
    pub steps: Vec<Step>,
}

impl Program {
    /// How many `go` events it waits for.
    pub fn events(&self) -> usize {
        self.steps.iter().filter(|s| **s == Step::Event).count()
    }

    /// Whether it hangs at its end until the driver cancels it.
    pub fn hangs(&self) -> bool {
        self.steps.last() == Some(&Step::Hang)
    }
}

/// Makes one program of a tenth of the corpora hang at its end, to be cancelled. Drawn from
/// a stream of its own, so that corpora without a hanging program are what they were before
/// cancellation joined the corpus (and so are their histories).
pub fn add_cancellations(seed: u64, programs: &mut [Program]) {
    let mut rng = SimRng::new(seed ^ 0x00ca_9ce1_1ed0);
    if rng.chance(10) && !programs.is_empty() {
        let k = rng.below(programs.len() as u64) as usize;
        programs[k].steps.push(Step::Hang);
    }
}

/// Cancels the tree of every submitted hanging program not final yet. `Ok(true)` when all of
/// them are final (cancelled) now; `Ok(false)` when some still run (a running member ends
/// cancelled at its next commit or recovery: another round).
///
/// # Errors
/// The store's.
pub fn cancel_hanging(
    app: &App,
    programs: &[Program],
    ids: &[Option<wf_core::InvocationId>],
) -> Result<bool, WfError> {
    let mut all_final = true;
    for (p, id) in programs.iter().zip(ids) {
        let (true, Some(id)) = (p.hangs(), id) else {
            continue;
        };
        match app.store().invocation(*id) {
            Ok(r) if !r.state.status.is_final() => {}
            // Final, or final and purged since.
            Ok(_) | Err(wf_store::StoreError::InvocationNotFound(_)) => continue,
            Err(e) => return Err(e.into()),
        }
        app.cancel_because(*id, "sim: cancelled while hanging")?;
        all_final &= app.store().invocation(*id)?.state.status.is_final();
    }
    Ok(all_final)
}

/// A hanging program's workflow that did not end cancelled (every other status is a
/// violation for it).
pub fn not_cancelled(programs: &[Program], results: &[(Status, Option<Vec<u8>>)]) -> Vec<String> {
    programs
        .iter()
        .zip(results)
        .enumerate()
        .filter(|(_, (p, (status, _)))| p.hangs() && *status != Status::Cancelled)
        .map(|(k, (_, (status, _)))| {
            format!("workflow w{k} was cancelled but ended {status:?}, not Cancelled")
        })
        .collect()
}

/// Draws `n` programs from `rng`.
pub fn generate(rng: &mut SimRng, n: usize) -> Vec<Program> {
    (0..n)
        .map(|_| Program {
            steps: steps(rng, true),
        })
        .collect()
}

fn steps(rng: &mut SimRng, nest: bool) -> Vec<Step> {
    let len = rng.range(1, if nest { 5 } else { 3 });
    (0..len)
        .map(|_| {
            let x = rng.below(1000);
            match rng.below(if nest { 10 } else { 8 }) {
                0 => Step::Leaf(x),
                1 => Step::FanOut((0..rng.range(2, 4)).map(|i| x + i).collect()),
                2 => Step::Flaky(x, rng.range(1, 2) as u32),
                3 => Step::Fail(x),
                4 => Step::Panic(x),
                5 => Step::Data(x),
                6 => Step::Draws,
                7 => Step::Sleep(rng.range(1, 5000)),
                8 => Step::Sub(steps(rng, false)),
                _ => Step::Event,
            }
        })
        .collect()
}

/// The driver's watch on body executions, in its memory (outside the simulated disk).
#[derive(Debug, Default)]
pub struct Watch {
    /// Body executions so far.
    pub executions: AtomicU64,
    /// While set, executions are replays of a replay check, not real ones.
    pub checking: AtomicBool,
    /// Violations seen from inside bodies.
    pub violations: Mutex<Vec<String>>,
    /// Body executions not yet moved into the driver's trace.
    pub trace: Mutex<Vec<String>>,
}

impl Watch {
    fn note(&self, ctx: &TaskContext, shared: &SharedAcks, task: &str) {
        if self.checking.load(Ordering::SeqCst) {
            return;
        }
        self.executions.fetch_add(1, Ordering::SeqCst);
        let id = ctx.invocation_id();
        self.trace
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(format!("run {task} attempt {} ({id})", ctx.attempt()));
        if acks(shared).finals.contains_key(&id) {
            self.violations
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(format!(
                    "invocation {id} (task {task}) executed again after its final outcome was \
                     acknowledged"
                ));
        }
    }
}

/// The corpus's tasks, registered on one app.
#[derive(Debug, Clone)]
pub struct Tasks {
    /// The top-level workflow.
    pub flow: Task<Program, u64>,
}

/// A leaf's result for `x`.
fn leaf_value(x: u64) -> u64 {
    x.wrapping_mul(7).wrapping_add(1)
}

fn fold(acc: u64, v: u64) -> u64 {
    acc.wrapping_mul(31).wrapping_add(v)
}

fn opts(name: &str) -> TaskOptions {
    TaskOptions::new(name)
        .max_recoveries(1000)
        .retry_backoff(Duration::from_millis(10))
}

/// Registers the corpus's tasks on `app`.
///
/// # Errors
/// The app's registration errors.
pub fn register(app: &App, watch: &Arc<Watch>, acks: &SharedAcks) -> Result<Tasks, WfError> {
    let (w, a) = (watch.clone(), acks.clone());
    let leaf = app.task_with(opts("leaf"), move |ctx: &TaskContext, x: u64| {
        w.note(ctx, &a, "leaf");
        Ok::<u64, TaskError>(leaf_value(x))
    })?;
    let (w, a) = (watch.clone(), acks.clone());
    let flaky = app.task_with(
        opts("flaky").max_retries(3),
        move |ctx: &TaskContext, (x, fails): (u64, u32)| {
            w.note(ctx, &a, "flaky");
            if ctx.attempt() <= fails {
                return Err(TaskError::new(format!(
                    "flaky {x}: attempt {}",
                    ctx.attempt()
                )));
            }
            Ok::<u64, TaskError>(leaf_value(x))
        },
    )?;
    let (w, a) = (watch.clone(), acks.clone());
    let fail = app.task_with(opts("fail"), move |ctx: &TaskContext, x: u64| {
        w.note(ctx, &a, "fail");
        Err::<u64, TaskError>(TaskError::new(format!("fail {x}")))
    })?;
    let (w, a) = (watch.clone(), acks.clone());
    let boom = app.task_with(
        opts("boom"),
        move |ctx: &TaskContext, x: u64| -> Result<u64, TaskError> {
            w.note(ctx, &a, "boom");
            panic!("simulated panic {x}")
        },
    )?;
    let leaves = Leaves {
        leaf,
        flaky,
        fail,
        boom,
    };
    let (w, a, l) = (watch.clone(), acks.clone(), leaves.clone());
    let sub = app.task_with(
        opts("sub").force_new_workflow(true),
        move |ctx: &TaskContext, steps: Vec<Step>| {
            w.note(ctx, &a, "sub");
            run_steps(ctx, &l, None, &steps)
        },
    )?;
    let (w, a) = (watch.clone(), acks.clone());
    let flow = app.task_with(opts("flow"), move |ctx: &TaskContext, p: Program| {
        w.note(ctx, &a, "flow");
        run_steps(ctx, &leaves, Some(&sub), &p.steps)
    })?;
    Ok(Tasks { flow })
}

#[derive(Debug, Clone)]
struct Leaves {
    leaf: Task<u64, u64>,
    flaky: Task<(u64, u32), u64>,
    fail: Task<u64, u64>,
    boom: Task<u64, u64>,
}

/// Runs `steps` in a workflow body and folds their values into its result.
fn run_steps(
    ctx: &TaskContext,
    l: &Leaves,
    sub: Option<&Task<Vec<Step>, u64>>,
    steps: &[Step],
) -> Result<u64, TaskError> {
    let wf = ctx.wf();
    let mut acc = 17u64;
    for (i, step) in steps.iter().enumerate() {
        let v = match step {
            Step::Leaf(x) => wf.execute_task(&l.leaf, *x)?,
            Step::FanOut(xs) => {
                let handles = xs
                    .iter()
                    .map(|x| wf.start_task(&l.leaf, *x))
                    .collect::<Result<Vec<_>, _>>()?;
                wf.join_all(handles)?
                    .into_iter()
                    .fold(0u64, |s, r: u64| s.wrapping_add(r))
            }
            Step::Flaky(x, fails) => wf.execute_task(&l.flaky, (*x, *fails))?,
            Step::Fail(x) => caught(wf.execute_task(&l.fail, *x))?,
            Step::Panic(x) => caught(wf.execute_task(&l.boom, *x))?,
            Step::Sub(inner) => match sub {
                Some(sub) => wf.execute_task(sub, inner.clone())?,
                None => 0,
            },
            Step::Data(x) => {
                let key = format!("k{i}");
                wf.set_data(&key, x)?;
                wf.get_data::<u64>(&key)?.unwrap_or(u64::MAX)
            }
            Step::Draws => {
                let (_r, _u, _t) = (wf.random(), wf.uuid(), wf.utc_now());
                1
            }
            Step::Sleep(ms) => {
                wf.sleep(Duration::from_millis(*ms))?;
                2
            }
            Step::Event => wf.wait_event::<u64>("go")?.wrapping_add(100),
            Step::Hang => wf.wait_event::<u64>("never")?,
        };
        acc = fold(acc, v);
    }
    Ok(acc)
}

/// A child's failure, caught by its parent as a marker value; suspensions and other runtime
/// signals pass through.
fn caught(r: Result<u64, WfError>) -> Result<u64, WfError> {
    match r {
        Ok(v) => Ok(v),
        Err(WfError::ChildFailed { .. }) => Ok(999),
        Err(e) => Err(e),
    }
}
