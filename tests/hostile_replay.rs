//! Issue 10 attacked as a hostile user would, with the public API only (`wf::prelude::*`): every
//! spelling of the eight defects, the non-determinism value, handles, calls from bodies, retries,
//! partial deploys, app ids, loops without progress and panics or hangs across the API. Every
//! case runs on memory and file through [`on_each_backend`]; nothing waits without a bound.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use common::hooked::{Hooks, hooked_apps};
use common::program::{Children, assert_diverged};
use common::{Count, Gate, PATIENCE, apps, journal_kinds};
use wf::core::OpKind;
use wf::prelude::*;
use wf::store::StoreError;

/// The most executions any case here may take: each needs at most a handful, so a livelock
/// shows as a count far above it.
const FEW: usize = 8;

/// How many times a body spins on an error before the test gives up on it (so a body the
/// runtime fails to stop shows as a wrong result instead of hanging the test).
const SPIN_LIMIT: u32 = 200_000;

/// Runs `case` on a fresh app of every backend (memory, file), telling it which one it runs on.
fn on_each_backend(case: impl Fn(&str, &App)) {
    on_each_backend_with(|b| b, case);
}

/// [`on_each_backend`] with a builder adjustment (a lease, ...).
fn on_each_backend_with(
    configure: impl Fn(wf::AppBuilder) -> wf::AppBuilder,
    case: impl Fn(&str, &App),
) {
    for t in apps(configure) {
        case(t.backend, &t.app);
    }
}

/// Options of a task retried at once, `n` times.
fn retried(name: &str, n: u32) -> TaskOptions {
    TaskOptions::new(name)
        .max_retries(n)
        .retry_backoff(Backoff::none())
}

/// Registers the task `options` names, taking `()`: `body` gets the context and which
/// execution of the task this is (1 for the first). Returns the task and its execution count.
fn counted<R>(
    app: &App,
    options: TaskOptions,
    body: impl Fn(&TaskContext, usize) -> Result<R, TaskError> + Send + Sync + 'static,
) -> (Task<(), R>, Count)
where
    R: serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    let runs = Count::default();
    let r = runs.clone();
    let task = app
        .task_with(options, move |ctx: &TaskContext, (): ()| body(ctx, r.hit()))
        .unwrap();
    (task, runs)
}

/// Calls `task` from outside, runs everything inline and returns the invocation and its end.
fn settle<R: serde::de::DeserializeOwned + fmt::Debug + 'static>(
    app: &App,
    task: &Task<(), R>,
) -> (Invocation<R>, Result<R, WfError>) {
    let inv = task.call(app, ()).unwrap();
    app.run_until_idle().unwrap();
    let result = inv.result_timeout(PATIENCE);
    (inv, result)
}

// ---------------------------------------------------------------------------------------------
// 1. A replay that stops short.
// ---------------------------------------------------------------------------------------------

/// Fan-out without a join: the old code started two children and suspended on both; the
/// changed code starts only the first and returns.
#[test]
fn stop_short_after_a_fan_out() {
    on_each_backend(|backend, app| {
        let c = Children::register(app);
        let (flow, runs) = counted(app, TaskOptions::new("flow"), move |ctx, n| {
            let wf = ctx.wf();
            let a = wf.start_task(&c.leaf, 1)?;
            if n > 1 {
                return Ok(0); // changed: the second start and the join were removed
            }
            let b = wf.start_task(&c.leaf, 2)?;
            Ok(wf.join_all([a, b])?.iter().sum::<u32>())
        });
        let (inv, result) = settle(app, &flow);
        assert_diverged(
            backend,
            inv.id(),
            result,
            1,
            "child start of task 'leaf'",
            "nothing more (the body returned",
        );
        assert_eq!(runs.get(), 2, "{backend}");
    });
}

/// The same after a fan-out whose execution failed (and is retried) instead of suspending.
#[test]
fn stop_short_after_a_fan_out_that_failed() {
    on_each_backend(|backend, app| {
        let c = Children::register(app);
        let (flow, _) = counted(
            app,
            retried("flow", 3),
            move |ctx, _| -> Result<u32, TaskError> {
                let wf = ctx.wf();
                wf.start_task(&c.leaf, 1)?;
                if ctx.attempt() > 1 {
                    return Ok(0);
                }
                wf.start_task(&c.leaf, 2)?;
                Err(TaskError::new("the first attempt fails"))
            },
        );
        let (inv, result) = settle(app, &flow);
        assert_diverged(
            backend,
            inv.id(),
            result,
            1,
            "child start of task 'leaf'",
            "(the body returned",
        );
        assert_eq!(
            inv.record().unwrap().state.retries,
            1,
            "{backend}: a divergence is final"
        );
    });
}

/// What the old code records before it fails (and is retried), for
/// [`stop_short_whatever_the_last_recorded_entry_is`].
#[derive(Clone, Copy, Debug)]
enum Recorded {
    /// `start leaf(1)`.
    ChildStart,
    /// `start leaf(1)`, `join` (suspends once), so the last entry is the child's result.
    ChildResult,
    /// `get_data("k")`.
    DataGet,
}

/// The last recorded entry is a child start, a child result or a data read; the retry asks for
/// one entry less and returns: non-determinism at that entry.
#[test]
fn stop_short_whatever_the_last_recorded_entry_is() {
    for (recorded, position, shows_as) in [
        (Recorded::ChildStart, 0, "child start of task 'leaf'"),
        (Recorded::ChildResult, 1, "child result of"),
        (Recorded::DataGet, 0, "get_data(\"k\")"),
    ] {
        on_each_backend(|backend, app| {
            let context = format!("{backend}: {recorded:?}");
            let c = Children::register(app);
            let (flow, _) = counted(
                app,
                retried("flow", 3),
                move |ctx, _| -> Result<u32, TaskError> {
                    let wf = ctx.wf();
                    let first_attempt = ctx.before_first_failure();
                    match recorded {
                        Recorded::ChildStart if first_attempt => {
                            wf.start_task(&c.leaf, 1)?;
                        }
                        Recorded::ChildResult => {
                            let h = wf.start_task(&c.leaf, 1)?;
                            if first_attempt {
                                wf.join(&h)?;
                            }
                        }
                        Recorded::DataGet if first_attempt => {
                            wf.get_data::<u32>("k")?;
                        }
                        _ => {}
                    }
                    if first_attempt {
                        return Err(TaskError::new("fails once"));
                    }
                    Ok(0)
                },
            );
            let (inv, result) = settle(app, &flow);
            assert_diverged(
                &context,
                inv.id(),
                result,
                position,
                shows_as,
                "(the body returned",
            );
        });
    }
}

/// Whether this execution comes before the invocation's first failure: its record says how
/// many retries were committed. (An unrecorded read: fine in a test that wants to change the
/// code exactly there, wrong in a real body.)
trait BeforeFirstFailure {
    fn before_first_failure(&self) -> bool;
}

impl BeforeFirstFailure for TaskContext {
    fn before_first_failure(&self) -> bool {
        let inv = Invocation::<u32>::attach(self.app(), self.invocation_id());
        inv.record().unwrap().state.retries == 0
    }
}

/// A recovered execution (its worker stalled past the lease; another thread of the pool ran it)
/// that stops short is non-determinism like any other; the stalled execution's late commit is
/// refused.
#[test]
fn stop_short_on_a_recovered_execution() {
    on_each_backend_with(
        |b| b.lease_duration(Duration::from_millis(1000)),
        |backend, app| {
            let c = Children::register(app);
            let (stalled, released) = (Gate::default(), Gate::default());
            let (s, rel) = (stalled.clone(), released.clone());
            let (flow, runs) = counted(app, TaskOptions::new("flow"), move |ctx, n| {
                let wf = ctx.wf();
                wf.random();
                if n >= 3 {
                    return Ok(0); // the recovered execution runs changed code
                }
                wf.uuid();
                if n == 2 {
                    s.open();
                    rel.wait(); // stalls past its lease
                }
                Ok(wf.execute_task(&c.leaf, 1)?)
            });
            let worker = app.worker().threads(2).renew_leases(false).start().unwrap();
            let inv = flow.call(app, ()).unwrap();
            let result = inv.result_timeout(PATIENCE);
            released.open();
            let stats = worker.stop();
            assert!(stalled.is_open(), "{backend}");
            assert_diverged(backend, inv.id(), result, 1, "uuid()", "(the body returned");
            assert_eq!(
                stats.lease_lost, 1,
                "{backend}: the stalled commit is refused"
            );
            assert_eq!(runs.get(), 3, "{backend}");
        },
    );
}

/// A body that diverges and then fails (or panics) is non-determinism, not a retryable error.
#[test]
fn a_changed_prefix_then_an_error_or_a_panic_is_non_determinism_and_final() {
    for panics in [false, true] {
        on_each_backend(|backend, app| {
            let context = format!("{backend}: panics {panics}");
            let (flow, _) = counted(
                app,
                retried("flow", 3),
                move |ctx, _| -> Result<u32, TaskError> {
                    let wf = ctx.wf();
                    if ctx.attempt() == 1 {
                        wf.random();
                    } else {
                        wf.uuid(); // changed: another operation at position 0
                    }
                    if panics && ctx.attempt() > 1 {
                        panic!("panics after the changed prefix");
                    }
                    Err(TaskError::new("fails after the prefix"))
                },
            );
            let (inv, result) = settle(app, &flow);
            assert_diverged(&context, inv.id(), result, 0, "random()", "uuid()");
            assert_eq!(inv.record().unwrap().state.retries, 1, "{context}");
        });
    }
}

/// A body that panics in the middle of its replay stops short: the failure is non-determinism
/// at the first entry it skipped, and it says what the panic said.
#[test]
fn a_panic_mid_replay_is_non_determinism_that_keeps_the_panic_text() {
    on_each_backend(|backend, app| {
        let c = Children::register(app);
        let (flow, _) = counted(app, TaskOptions::new("flow"), move |ctx, n| {
            let wf = ctx.wf();
            wf.random();
            if n > 1 {
                panic!("index out of bounds in the replay");
            }
            wf.uuid();
            Ok(wf.execute_task(&c.leaf, 1)?)
        });
        let (inv, result) = settle(app, &flow);
        assert_diverged(
            backend,
            inv.id(),
            result,
            1,
            "uuid()",
            "panicked: index out of bounds in the replay",
        );
    });
}

/// The root of a sub-workflow that stops short fails with non-determinism; its parent sees a
/// child failure carrying it (no hang), and a `?` on it fails the parent as a child failure.
#[test]
fn a_sub_workflow_root_that_stops_short_fails_its_parent_with_a_child_failure() {
    on_each_backend(|backend, app| {
        let sub = app
            .task_with(
                retried("sub", 1).force_new_workflow(true),
                |ctx: &TaskContext, (): ()| -> Result<u32, TaskError> {
                    if ctx.attempt() > 1 {
                        return Ok(7);
                    }
                    ctx.wf().random();
                    Err(TaskError::new("fails once"))
                },
            )
            .unwrap();
        let s = sub.clone();
        let looks = app
            .task(
                "looks",
                move |ctx: &TaskContext, (): ()| -> Result<Option<Failure>, TaskError> {
                    match ctx.wf().execute_task(&s, ()) {
                        Ok(_) => Ok(None),
                        Err(WfError::ChildFailed { failure, .. }) => Ok(Some(failure)),
                        Err(e) => Err(e.into()),
                    }
                },
            )
            .unwrap();
        let propagates = app
            .task(
                "propagates",
                move |ctx: &TaskContext, (): ()| -> Result<u32, TaskError> {
                    Ok(ctx.wf().execute_task(&sub, ())?)
                },
            )
            .unwrap();
        let (_, seen) = settle(app, &looks);
        let failure = seen.unwrap().expect("the sub-workflow failed");
        assert_eq!(failure.kind, FailureKind::NonDeterminism, "{backend}");
        let nd = failure.non_determinism.expect("the value travels with it");
        assert_eq!(nd.position, 0, "{backend}: {nd}");
        assert!(nd.recorded.starts_with("random()"), "{backend}: {nd}");
        assert!(nd.requested.contains("returned"), "{backend}: {nd}");
        let (_, result) = settle(app, &propagates);
        match result {
            Err(WfError::Failed { failure, .. }) => {
                assert_eq!(failure.kind, FailureKind::Child, "{backend}: {failure}");
                assert!(
                    failure.non_determinism.is_none(),
                    "{backend}: the parent did not diverge"
                );
                assert!(
                    failure.message.contains("non-determinism"),
                    "{backend}: {failure}"
                );
            }
            other => panic!("{backend}: {other:?}"),
        }
    });
}

/// `execute_task` of a child whose result was recorded, replaced by another child: reported at
/// the child's start; the other child never runs and the recorded one ran once.
#[test]
fn a_recorded_child_replaced_by_another_is_non_determinism_at_its_start() {
    on_each_backend(|backend, app| {
        let c = Children::register(app);
        let (flow, _) = counted(app, retried("flow", 1), move |ctx, _| {
            let wf = ctx.wf();
            if ctx.attempt() == 1 {
                wf.execute_task(&c.leaf, 1)?;
                return Err(TaskError::new("fails after the child"));
            }
            Ok(wf.execute_task(&c.other, 1)?)
        });
        let (inv, result) = settle(app, &flow);
        assert_diverged(
            backend,
            inv.id(),
            result,
            0,
            "child start of task 'leaf'",
            "child start of task 'other'",
        );
        let store = app.store();
        let children: Vec<(String, u32)> = store
            .workflow_invocations(inv.id())
            .unwrap()
            .into_iter()
            .filter(|id| *id != inv.id())
            .map(|id| {
                let r = store.invocation(id).unwrap();
                (r.spec.task.as_str().to_owned(), r.state.attempts)
            })
            .collect();
        assert_eq!(
            children,
            [("leaf".to_owned(), 1)],
            "{backend}: the recorded child ran once; the other was never submitted"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// 3, 4. Handles.
// ---------------------------------------------------------------------------------------------

/// Joining the same handle twice answers twice, consistently on replay: two recorded results.
#[test]
fn joining_the_same_handle_twice_returns_its_result_twice() {
    on_each_backend(|backend, app| {
        let c = Children::register(app);
        let (flow, runs) = counted(app, TaskOptions::new("flow"), move |ctx, _| {
            let wf = ctx.wf();
            let h = wf.start_task(&c.leaf, 3)?;
            let a = wf.join(&h)?;
            let b = wf.join(h)?;
            Ok(a + b)
        });
        let (inv, result) = settle(app, &flow);
        assert_eq!(result.unwrap(), 12, "{backend}");
        assert_eq!(runs.get(), 2, "{backend}");
        assert_eq!(
            journal_kinds(app, inv.id()),
            [OpKind::ChildStart, OpKind::ChildResult, OpKind::ChildResult],
            "{backend}"
        );
    });
}

/// `join_all` of nothing is an empty result that records nothing and does not suspend.
#[test]
fn join_all_of_nothing_is_empty_and_records_nothing() {
    on_each_backend(|backend, app| {
        let (flow, runs) = counted(app, TaskOptions::new("flow"), |ctx, _| {
            let none: Vec<ChildHandle<u32>> = Vec::new();
            let by_ref = ctx.wf().join_all(&none)?;
            let by_value = ctx.wf().join_all(none)?;
            Ok(by_ref.len() + by_value.len())
        });
        let (inv, result) = settle(app, &flow);
        assert_eq!(result.unwrap(), 0, "{backend}");
        assert_eq!(runs.get(), 1, "{backend}");
        assert!(journal_kinds(app, inv.id()).is_empty(), "{backend}");
    });
}

/// A handle sent to another thread and joined by another workflow running at the same time is
/// refused, naming both invocations.
#[test]
fn a_handle_joined_by_a_concurrently_running_workflow_is_refused() {
    on_each_backend(|backend, app| {
        let c = Children::register(app);
        let (tx, rx) = mpsc::channel::<ChildHandle<u32>>();
        let tx = Mutex::new(tx);
        let rx = Mutex::new(rx);
        let answered = Gate::default();
        let a_done = answered.clone();
        let a = app
            .task(
                "a",
                move |ctx: &TaskContext, (): ()| -> Result<u32, TaskError> {
                    let h = ctx.wf().start_task(&c.leaf, 1)?;
                    tx.lock().unwrap().send(h).unwrap();
                    a_done.wait(); // a still runs while b joins its handle
                    Ok(0)
                },
            )
            .unwrap();
        let b = app
            .task(
                "b",
                move |ctx: &TaskContext, (): ()| -> Result<(String, String, String), TaskError> {
                    let h = rx.lock().unwrap().recv_timeout(PATIENCE).unwrap();
                    let seen = match ctx.wf().join(h) {
                        Err(WfError::ForeignHandle {
                            child,
                            created_by,
                            joined_by,
                        }) => (
                            child.to_string(),
                            created_by.to_string(),
                            joined_by.to_string(),
                        ),
                        other => (format!("{other:?}"), String::new(), String::new()),
                    };
                    answered.open();
                    Ok(seen)
                },
            )
            .unwrap();
        let worker = app.worker().threads(2).start().unwrap();
        let inv_a = a.call(app, ()).unwrap();
        let inv_b = b.call(app, ()).unwrap();
        let (_, created_by, joined_by) = inv_b.result_timeout(PATIENCE).unwrap();
        assert_eq!(inv_a.result_timeout(PATIENCE).unwrap(), 0, "{backend}");
        worker.stop();
        assert_eq!(created_by, inv_a.id().to_string(), "{backend}");
        assert_eq!(joined_by, inv_b.id().to_string(), "{backend}");
    });
}

static KEPT: Mutex<Option<ChildHandle<u32>>> = Mutex::new(None);

thread_local! {
    static KEPT_HERE: RefCell<Option<ChildHandle<u32>>> = const { RefCell::new(None) };
}

/// Where a handle is kept between executions.
#[derive(Clone, Copy, Debug)]
enum Keep {
    Static,
    ThreadLocal,
}

impl Keep {
    fn put(self, h: ChildHandle<u32>) {
        match self {
            Keep::Static => *KEPT.lock().unwrap() = Some(h),
            Keep::ThreadLocal => KEPT_HERE.with(|k| *k.borrow_mut() = Some(h)),
        }
    }
    fn take(self) -> Option<ChildHandle<u32>> {
        match self {
            Keep::Static => KEPT.lock().unwrap().take(),
            Keep::ThreadLocal => KEPT_HERE.with(|k| k.borrow_mut().take()),
        }
    }
}

/// A handle kept in a `static` or a `thread_local` by the first attempt and joined by the retry
/// of the same invocation is stale: after replaying its start, the join is refused with
/// `StaleHandle`; joined before the replay (and propagated), the invocation stops short and
/// its non-determinism says why the body failed.
#[test]
fn a_handle_kept_in_a_static_or_thread_local_is_stale_in_the_retry() {
    for keep in [Keep::Static, Keep::ThreadLocal] {
        for replays_first in [true, false] {
            on_each_backend(|backend, app| {
                let context = format!("{backend}: {keep:?}, replays first {replays_first}");
                let c = Children::register(app);
                let (flow, _) = counted(
                    app,
                    retried("flow", 1),
                    move |ctx, _| -> Result<String, TaskError> {
                        let wf = ctx.wf();
                        if ctx.attempt() == 1 {
                            keep.put(wf.start_task(&c.leaf, 1)?);
                            return Err(TaskError::new("fails, keeping the handle"));
                        }
                        let old = keep.take().expect("the first attempt's handle");
                        if replays_first {
                            wf.start_task(&c.leaf, 1)?;
                            return Ok(match wf.join(old) {
                                Err(e @ WfError::StaleHandle { .. }) => format!("stale: {e}"),
                                other => format!("{other:?}"),
                            });
                        }
                        wf.join(old)?;
                        Ok("joined".into())
                    },
                );
                let (inv, result) = settle(app, &flow);
                if replays_first {
                    let seen = result.unwrap();
                    assert!(seen.starts_with("stale"), "{context}: {seen}");
                } else {
                    assert_diverged(
                        &context,
                        inv.id(),
                        result,
                        0,
                        "child start of task 'leaf'",
                        "earlier execution",
                    );
                }
            });
        }
    }
}

/// A handle a child (same workflow) created, handed to its parent, is refused there.
#[test]
fn a_handle_from_a_child_s_body_is_refused_in_the_parent() {
    on_each_backend(|backend, app| {
        let c = Children::register(app);
        let slot: Arc<Mutex<Option<ChildHandle<u32>>>> = Arc::default();
        let keep = slot.clone();
        let child = app
            .task(
                "child",
                move |ctx: &TaskContext, (): ()| -> Result<u32, TaskError> {
                    let h = ctx.wf().start_task(&c.leaf, 4)?;
                    let v = ctx.wf().join(&h)?;
                    *keep.lock().unwrap() = Some(h);
                    Ok(v)
                },
            )
            .unwrap();
        let parent = app
            .task(
                "parent",
                move |ctx: &TaskContext, (): ()| -> Result<String, TaskError> {
                    ctx.wf().execute_task(&child, ())?;
                    let h = slot.lock().unwrap().take().expect("the child's handle");
                    Ok(match ctx.wf().join(h) {
                        Err(WfError::ForeignHandle { joined_by, .. })
                            if joined_by == ctx.invocation_id() =>
                        {
                            "refused".to_owned()
                        }
                        other => format!("{other:?}"),
                    })
                },
            )
            .unwrap();
        let (_, result) = settle(app, &parent);
        assert_eq!(result.unwrap(), "refused", "{backend}");
    });
}

// ---------------------------------------------------------------------------------------------
// 2. Calls from inside a body.
// ---------------------------------------------------------------------------------------------

/// A task that does nothing: what bodies try to call from the inside.
fn side_task(app: &App) -> Task<(), ()> {
    app.task("side", |_: &TaskContext, (): ()| -> Result<(), TaskError> {
        Ok(())
    })
    .unwrap()
}

/// Every path to a top-level `Task::call` (or `call_keyed`) from a body is refused with
/// `CallInsideBody` naming the body's invocation, and no workflow escapes: the context's app, `ctx.wf().app()`, an app
/// captured by the closure, an app built inside the body over the same store, the context's
/// app moved into a thread the body spawns. A blocking wait on an invocation (`result`,
/// `result_timeout`) is refused too (`WaitInsideBody`): it would hold the worker.
#[test]
fn every_top_level_call_from_a_body_is_refused() {
    on_each_backend(|backend, app| {
        let c = Children::register(app);
        let side = side_task(app);
        let outside = side.call(app, ()).unwrap();
        let outside_id = outside.id();
        let captured = app.clone();
        let flow = app
            .task(
                "flow",
                move |ctx: &TaskContext, (): ()| -> Result<Vec<String>, TaskError> {
                    let me = ctx.invocation_id();
                    let verdict = |r: Result<Invocation<()>, WfError>| match r {
                        Err(WfError::CallInsideBody { invocation, .. }) if invocation == me => {
                            "refused".to_owned()
                        }
                        other => format!("{other:?}"),
                    };
                    let built = App::builder()
                        .app_id("test")
                        .store(captured.store().clone())
                        .build()
                        .unwrap();
                    let mut seen = vec![
                        verdict(side.call_keyed(ctx.app(), "once", ())),
                        verdict(side.call_keyed(&captured, "once", ())),
                        verdict(side.call(ctx.app(), ())),
                        verdict(side.call(ctx.wf().app(), ())),
                        verdict(side.call(&captured, ())),
                        verdict(side.call(&built, ())),
                    ];
                    let (moved, s) = (ctx.app().clone(), side.clone());
                    let from_thread = std::thread::spawn(move || s.call(&moved, ()))
                        .join()
                        .unwrap();
                    seen.push(verdict(from_thread));
                    for waiting_app in [ctx.app(), &captured] {
                        let other = Invocation::<()>::attach(waiting_app, outside_id);
                        seen.push(match other.result_timeout(Duration::from_millis(1)) {
                            Err(WfError::WaitInsideBody {
                                invocation,
                                awaited,
                            }) if invocation == me && awaited == outside_id => "refused".to_owned(),
                            other => format!("{other:?}"),
                        });
                    }
                    ctx.wf().execute_task(&c.leaf, 1)?; // the body runs twice
                    Ok(seen)
                },
            )
            .unwrap();
        let (_, result) = settle(app, &flow);
        let seen = result.unwrap();
        assert_eq!(seen.len(), 9, "{backend}");
        for s in &seen {
            assert_eq!(s, "refused", "{backend}: {seen:?}");
        }
        assert_eq!(
            app.store().workflows().unwrap().len(),
            2,
            "{backend}: only the flow and the call made outside"
        );
    });
}

/// A thread the body spawns with an app it captured (not the context's) is outside the body as
/// far as wf can tell: its call is accepted, once per execution, like any other side effect of
/// a body (documented in docs/guide/workflows.md).
#[test]
fn a_thread_spawned_in_a_body_with_a_captured_app_is_outside_the_body() {
    on_each_backend(|backend, app| {
        let c = Children::register(app);
        let side = side_task(app);
        let captured = app.clone();
        let flow = app
            .task(
                "flow",
                move |ctx: &TaskContext, (): ()| -> Result<(), TaskError> {
                    let (a, s) = (captured.clone(), side.clone());
                    std::thread::spawn(move || s.call(&a, ())).join().unwrap()?;
                    ctx.wf().execute_task(&c.leaf, 1)?;
                    Ok(())
                },
            )
            .unwrap();
        let (_, result) = settle(app, &flow);
        result.unwrap();
        assert_eq!(
            app.store().workflows().unwrap().len(),
            3,
            "{backend}: one escaped call per execution (two executions)"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// 5, 6. Retries.
// ---------------------------------------------------------------------------------------------

/// A child that fails, and a parent that passes the failure on in `how`, with `options`.
/// Returns the parent's executions, the child's runs, the parent's retries and its result.
fn child_failure_passed_on(
    app: &App,
    options: TaskOptions,
    how: fn(WfError) -> TaskError,
) -> (usize, usize, u32, Result<u32, WfError>) {
    let child_runs = Count::default();
    let cr = child_runs.clone();
    let child = app
        .task(
            "child",
            move |_: &TaskContext, (): ()| -> Result<u32, TaskError> {
                cr.hit();
                Err(TaskError::new("out of stock"))
            },
        )
        .unwrap();
    let (parent, parent_runs) = counted(app, options, move |ctx, _| {
        ctx.wf().execute_task(&child, ()).map_err(how)
    });
    let (inv, result) = settle(app, &parent);
    (
        parent_runs.get(),
        child_runs.get(),
        inv.record().unwrap().state.retries,
        result,
    )
}

/// An error type of the user's own that keeps the child's failure as its source.
#[derive(Debug)]
struct CheckoutFailed(WfError);

impl fmt::Display for CheckoutFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("checkout failed")
    }
}

impl std::error::Error for CheckoutFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// How a child's failure reaches the parent's retry policy, with `max_retries(3)`:
/// - passed on with `?` (or `TaskError::from`), or inside an error of the user's own that keeps
///   it as its `source()`: final, the parent runs twice (suspends, then fails), no retry;
/// - with `retry_if` asking for it: three retries, each replaying the recorded failure;
/// - rewritten as a new message (`TaskError::new(format!(..))`): it is the parent's own error
///   now, and retries as one (documented).
///
/// The child runs once in every case.
#[test]
fn how_a_child_failure_reaches_the_parent_s_retries() {
    type Case = (
        &'static str,
        fn(TaskOptions) -> TaskOptions,
        fn(WfError) -> TaskError,
        u32,
    );
    let cases: [Case; 5] = [
        ("question mark", |o| o, TaskError::from, 0),
        (
            "own error type with the failure as source",
            |o| o,
            |e| TaskError::from(CheckoutFailed(e)),
            0,
        ),
        (
            "retry_if says yes",
            |o| o.retry_if(TaskError::is_child_failure),
            TaskError::from,
            3,
        ),
        (
            "rewritten as a new message",
            |o| o,
            |e| TaskError::new(format!("checkout failed: {e}")),
            3,
        ),
        (
            "rewritten and permanent",
            |o| o,
            |e| TaskError::new(format!("checkout failed: {e}")).permanent(),
            0,
        ),
    ];
    for (name, options, how, retries) in cases {
        on_each_backend(|backend, app| {
            let context = format!("{backend}: {name}");
            let (parent_runs, child_runs, seen_retries, result) =
                child_failure_passed_on(app, options(retried("parent", 3)), how);
            assert!(result.is_err(), "{context}");
            assert_eq!(child_runs, 1, "{context}");
            assert_eq!(seen_retries, retries, "{context}");
            assert_eq!(parent_runs, 2 + retries as usize, "{context}");
        });
    }
}

/// `Backoff::none()` with five retries finishes at once, inline and on a worker.
#[test]
fn backoff_none_with_five_retries_finishes_inline_and_on_a_worker() {
    for on_worker in [false, true] {
        on_each_backend(|backend, app| {
            let context = format!("{backend}: on a worker {on_worker}");
            let (flaky, _) = counted(app, retried("flaky", 5), |_, n| {
                if n <= 5 {
                    return Err(TaskError::new("not yet"));
                }
                Ok(6u32)
            });
            let inv = flaky.call(app, ()).unwrap();
            let worker = on_worker.then(|| app.worker().threads(1).start().unwrap());
            if !on_worker {
                assert_eq!(app.run_until_idle().unwrap(), 6, "{context}");
            }
            let result = inv.result_timeout(PATIENCE);
            if let Some(w) = worker {
                w.stop();
            }
            assert_eq!(result.unwrap(), 6, "{context}");
            assert_eq!(inv.record().unwrap().state.retries, 5, "{context}");
        });
    }
}

// ---------------------------------------------------------------------------------------------
// 7. Tasks a worker does not register.
// ---------------------------------------------------------------------------------------------

/// Polls `done` until it holds, failing after [`PATIENCE`]. For states nothing signals.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < PATIENCE, "never: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A worker app that registers only the parent leaves the child pending (never failed), and
/// `progress()` says it waits for a worker that runs it; a later app that registers the child
/// finishes the workflow, each body having run the expected number of times.
#[test]
fn a_child_no_worker_registers_waits_for_one_that_does() {
    on_each_backend(|backend, app| {
        let catalog = App::builder().app_id("catalog").memory().build().unwrap();
        let child: Task<u32, u32> = catalog
            .task(
                "child",
                |_: &TaskContext, _: u32| -> Result<u32, TaskError> { unreachable!() },
            )
            .unwrap();
        let on = |a: &App| {
            App::builder()
                .app_id("test")
                .store(a.store().clone())
                .build()
                .unwrap()
        };
        let parents = on(app);
        let parent_runs = Count::default();
        let pr = parent_runs.clone();
        let parent = parents
            .task(
                "parent",
                move |ctx: &TaskContext, n: u32| -> Result<u32, TaskError> {
                    pr.hit();
                    Ok(ctx.wf().execute_task(&child, n)? + 1)
                },
            )
            .unwrap();
        let first = parents.worker().threads(1).start().unwrap();
        let inv = parent.call(&parents, 20).unwrap();
        eventually("the parent waits", || {
            inv.status().unwrap() == Status::Waiting
        });
        let child_id = *app
            .store()
            .workflow_invocations(inv.id())
            .unwrap()
            .iter()
            .find(|id| **id != inv.id())
            .expect("the child was submitted");
        let child_inv = Invocation::<u32>::attach(&parents, child_id);
        assert_eq!(child_inv.status().unwrap(), Status::Pending, "{backend}");
        let progress = child_inv.progress().unwrap();
        assert!(
            progress.contains("waiting for a worker that runs task 'child'")
                && progress.contains("this app does not register it"),
            "{backend}: {progress}"
        );
        let waiting = inv.progress().unwrap();
        assert!(
            waiting.starts_with("waiting for 1 child")
                && waiting.contains(&child_id.to_string())
                && waiting.contains("this app does not register it"),
            "{backend}: the parent says what its child waits for: {waiting}"
        );
        let stats = first.stop();
        assert_eq!(
            (stats.failed, stats.released, stats.executed),
            (0, 0, 1),
            "{backend}: {stats:?}"
        );
        assert_eq!(child_inv.record().unwrap().state.attempts, 0, "{backend}");

        let children = on(app);
        children
            .task(
                "child",
                |_: &TaskContext, n: u32| -> Result<u32, TaskError> { Ok(n * 2) },
            )
            .unwrap();
        let second = children.worker().threads(1).start().unwrap();
        let restarted = parents.worker().threads(1).start().unwrap();
        assert_eq!(inv.result_timeout(PATIENCE).unwrap(), 41, "{backend}");
        let (a, b) = (second.stop(), restarted.stop());
        assert_eq!(a.failed + b.failed, 0, "{backend}");
        assert_eq!(parent_runs.get(), 2, "{backend}");
    });
}

// ---------------------------------------------------------------------------------------------
// 8. The store knows its app.
// ---------------------------------------------------------------------------------------------

#[track_caller]
fn expect_app_mismatch(
    context: &str,
    built: Result<App, WfError>,
    recorded: &str,
    requested: &str,
) {
    match built {
        Err(WfError::Store(e @ StoreError::AppMismatch { .. })) => {
            let text = e.to_string();
            assert!(
                text.contains(&format!("'{recorded}'")) && text.contains(&format!("'{requested}'")),
                "{context}: {text}"
            );
            match e {
                StoreError::AppMismatch {
                    recorded: r,
                    requested: q,
                    ..
                } => assert_eq!((r.as_str(), q.as_str()), (recorded, requested), "{context}"),
                _ => unreachable!(),
            }
        }
        other => panic!("{context}: expected AppMismatch, got {other:?}"),
    }
}

/// A store created by app "a" and opened by app "b" is refused naming both: a memory store
/// shared through its `Arc`, a file store reopened; "a" itself opens it again.
#[test]
fn a_store_of_app_a_refuses_app_b() {
    let a = App::builder().app_id("a").memory().build().unwrap();
    let shared = || App::builder().store(a.store().clone());
    expect_app_mismatch("memory", shared().app_id("b").build(), "a", "b");
    shared().app_id("a").build().unwrap();

    #[cfg(feature = "file")]
    {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        drop(App::builder().app_id("a").file(&path).build().unwrap());
        expect_app_mismatch(
            "file",
            App::builder().app_id("b").file(&path).build(),
            "a",
            "b",
        );
        App::builder().app_id("a").file(&path).build().unwrap();
    }
}

/// The role of this test binary when it is re-executed by
/// [`the_app_id_from_wf_app_id_is_checked_too`].
const ROLE: &str = "WF_HOSTILE_ROLE";

/// Entry point of the re-executed binary; does nothing in a normal run. With `WF_APP_ID=b` in
/// its environment it opens a memory store of app "a" and the file store named by `WF_STORE`
/// (created by app "a") without naming an app, and prints how each build ended.
#[test]
fn app_id_from_env_child_entry() {
    if std::env::var(ROLE).is_err() {
        return;
    }
    let a = App::builder().app_id("a").memory().build().unwrap();
    let memory = App::builder().store(a.store().clone()).build();
    println!(
        "memory: {:?}",
        memory.map(|_| ()).map_err(|e| e.to_string())
    );
    let file = App::builder().build();
    println!("file: {:?}", file.map(|_| ()).map_err(|e| e.to_string()));
}

/// The app id taken from `WF_APP_ID` is checked like one given to the builder.
#[cfg(feature = "file")]
#[test]
fn the_app_id_from_wf_app_id_is_checked_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    drop(App::builder().app_id("a").file(&path).build().unwrap());
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "app_id_from_env_child_entry", "--nocapture"])
        .env(ROLE, "1")
        .env("WF_APP_ID", "b")
        .env("WF_STORE", format!("file:{}", path.display()))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    for backend in ["memory", "file"] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{backend}: ")))
            .unwrap_or_else(|| panic!("no {backend} line in {stdout}"));
        assert!(
            line.contains("Err") && line.contains("'a'") && line.contains("'b'"),
            "{line}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Loops without progress.
// ---------------------------------------------------------------------------------------------

/// The first `n` reads of workflow data fail as a broken connection does.
struct FailingReads(AtomicU32);

impl Hooks for FailingReads {
    fn before_get_data(&self) -> Option<StoreError> {
        self.0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .ok()
            .map(|_| StoreError::Unavailable("connection reset (injected)".into()))
    }
}

/// How a body insists after the context refused it.
#[derive(Clone, Copy, Debug)]
enum Insists {
    /// Retries a data read that failed (the store failed once).
    OnAFailedRead,
    /// Polls a join until it stops saying `Suspended`.
    OnASuspendedJoin,
    /// Retries a join after the body diverged.
    AfterADivergence,
}

/// A body that retries in a loop what the context refused (a failed read, a suspended join, a
/// join after a divergence) is not left spinning on its worker forever: the execution is
/// stopped, deferred or suspended as the first refusal said, and the invocation finishes in a
/// few executions. Each body gives up after [`SPIN_LIMIT`] tries, so a runtime that lets it
/// spin fails the test instead of hanging it.
#[test]
fn a_body_that_insists_after_a_refusal_is_stopped() {
    for insists in [
        Insists::OnAFailedRead,
        Insists::OnASuspendedJoin,
        Insists::AfterADivergence,
    ] {
        for (t, _, app) in hooked_apps(|| FailingReads(AtomicU32::new(1)), |b| b) {
            let context = format!("{}: {insists:?}", t.backend);
            let c = Children::register(&app);
            let left_spinning = Arc::new(AtomicBool::new(false));
            let spun = left_spinning.clone();
            let (flow, runs) = counted(&app, TaskOptions::new("flow"), move |ctx, n| {
                let wf = ctx.wf();
                let h = wf.start_task(&c.leaf, 1)?;
                if matches!(insists, Insists::AfterADivergence) {
                    if n == 1 {
                        wf.random();
                    } else {
                        wf.uuid(); // the replay diverges here, then insists on joining
                    }
                }
                for _ in 0..SPIN_LIMIT {
                    let answer = match insists {
                        Insists::OnAFailedRead => wf.get_data::<u32>("k").map(|v| v.unwrap_or(1)),
                        _ => wf.join(&h),
                    };
                    match answer {
                        Ok(v) if n == 1 && !matches!(insists, Insists::OnAFailedRead) => {
                            return Err(TaskError::new(format!("joined at once: {v}")));
                        }
                        Ok(v) => return Ok(v),
                        Err(_) => continue,
                    }
                }
                spun.store(true, Ordering::SeqCst);
                Err(TaskError::new("the body was left spinning").permanent())
            });
            let worker = app.worker().threads(1).start().unwrap();
            let inv = flow.call(&app, ()).unwrap();
            let result = inv.result_timeout(PATIENCE);
            worker.stop();
            assert!(
                !left_spinning.load(Ordering::SeqCst),
                "{context}: an execution was left spinning on refusals"
            );
            match insists {
                Insists::AfterADivergence => {
                    assert_diverged(&context, inv.id(), result, 1, "random()", "uuid()");
                }
                Insists::OnAFailedRead => assert_eq!(result.unwrap(), 1, "{context}"),
                Insists::OnASuspendedJoin => assert_eq!(result.unwrap(), 2, "{context}"),
            }
            assert!(runs.get() <= FEW, "{context}: {} executions", runs.get());
        }
    }
}

/// Shapes that could replay an invocation over and over without progress each take only a few
/// executions: a swallowed suspension followed by an error under a large retry budget, and a
/// stale handle joined in every execution.
#[test]
fn no_body_shape_replays_without_progress() {
    on_each_backend(|backend, app| {
        let c = Children::register(app);
        let kept: Arc<Mutex<Option<ChildHandle<u32>>>> = Arc::default();
        let (flow, runs) = counted(app, retried("flow", 1000), move |ctx, _| {
            let wf = ctx.wf();
            let h = wf.start_task(&c.leaf, 1)?;
            let old = kept.lock().unwrap().replace(h);
            if let Some(old) = old {
                let _ = wf.join(old); // stale: refused, not waited on
            }
            let h = kept.lock().unwrap().take().expect("just kept");
            let v = match wf.join(&h) {
                Err(WfError::Suspended { .. }) => {
                    *kept.lock().unwrap() = Some(h);
                    return Err(TaskError::new("swallowed the suspension"));
                }
                other => other?,
            };
            Ok(v)
        });
        let worker = app.worker().threads(2).start().unwrap();
        let inv = flow.call(app, ()).unwrap();
        let result = inv.result_timeout(PATIENCE);
        worker.stop();
        assert_eq!(result.unwrap(), 2, "{backend}");
        assert!(runs.get() <= FEW, "{backend}: {} executions", runs.get());
        assert_eq!(inv.record().unwrap().state.retries, 0, "{backend}");
    });
}

// ---------------------------------------------------------------------------------------------
// Panics and hangs across the public API.
// ---------------------------------------------------------------------------------------------

/// Extreme but legal values do not panic: waiting "forever" (`Duration::MAX`) on a finished
/// invocation, the longest lease, the longest backoff, an invocation that does not exist.
#[test]
fn extreme_values_do_not_panic() {
    on_each_backend_with(
        |b| b.lease_duration(Duration::MAX),
        |backend, app| {
            let slow = app
                .task_with(
                    TaskOptions::new("slow")
                        .max_retries(1)
                        .retry_backoff(Backoff::fixed(Duration::MAX)),
                    |ctx: &TaskContext, (): ()| -> Result<u32, TaskError> {
                        if ctx.attempt() == 1 {
                            return Err(TaskError::new("once"));
                        }
                        Ok(1)
                    },
                )
                .unwrap();
            let inv = slow.call(app, ()).unwrap();
            app.run_until_idle().unwrap();
            assert_eq!(inv.result_timeout(Duration::MAX).unwrap(), 1, "{backend}");
            let worker = app.worker().threads(1).start().unwrap();
            let quick = slow.call(app, ()).unwrap();
            assert!(
                matches!(
                    quick.result_timeout(Duration::from_millis(200)),
                    Err(WfError::Timeout { .. })
                ),
                "{backend}: the retry waits its backoff"
            );
            worker.stop();
            let missing = Invocation::<u32>::attach(app, InvocationId::from_u128(42));
            assert!(
                matches!(
                    missing.result_timeout(Duration::MAX),
                    Err(WfError::Store(StoreError::InvocationNotFound(_)))
                ),
                "{backend}"
            );
        },
    );
}
