//! The replay check as a user puts it in CI: workflows recorded by the deployed code (exported
//! to a JSON file, or read from a store) replayed against changed code, on every backend.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use common::steering_apps;
use wf::prelude::*;
use wf::store::WorkflowExport;
use wf::testing::{ReplayCheck, read_export, replay_check};

/// The deployed code: `checkout` reserves, then charges (each a leaf that counts its runs);
/// checkout number 2 then waits to be shipped (so it stays in flight). `swapped` charges first:
/// a change that breaks checkouts recorded by the deployed code.
fn register(app: &App, swapped: bool, leaf_runs: &Arc<AtomicU32>) -> Task<u32, u32> {
    let r = leaf_runs.clone();
    let reserve = app
        .task(
            "reserve",
            move |_: &TaskContext, n: u32| -> Result<u32, TaskError> {
                r.fetch_add(1, Ordering::SeqCst);
                Ok(n)
            },
        )
        .unwrap();
    let c = leaf_runs.clone();
    let charge = app
        .task(
            "charge",
            move |_: &TaskContext, n: u32| -> Result<u32, TaskError> {
                c.fetch_add(1, Ordering::SeqCst);
                Ok(n * 100)
            },
        )
        .unwrap();
    app.task(
        "checkout",
        move |ctx: &TaskContext, n: u32| -> Result<u32, TaskError> {
            let wf = ctx.wf();
            let (first, second) = match swapped {
                false => (wf.execute_task(&reserve, n)?, wf.execute_task(&charge, n)?),
                true => {
                    let c = wf.execute_task(&charge, n)?;
                    (wf.execute_task(&reserve, n)?, c)
                }
            };
            if n == 2 {
                wf.wait_event::<()>("shipped")?;
            }
            Ok(first + second)
        },
    )
    .unwrap()
}

/// Workflows recorded by the deployed code — one finished, one in flight —
/// exported to a file as `wf export` writes it, then checked: the deployed code replays them,
/// the changed code is reported at position 0 of each, naming both operations. The check runs
/// no leaf, submits nothing and writes nothing.
#[test]
fn a_changed_body_is_caught_from_an_exported_file() {
    for t in steering_apps(|b| b) {
        let runs = Arc::new(AtomicU32::new(0));
        let checkout = register(&t.app, false, &runs);
        let done = checkout.call(&t.app, 1).unwrap();
        t.app.run_until_idle().unwrap();
        assert_eq!(done.result().unwrap(), 101);
        let in_flight = checkout.call(&t.app, 2).unwrap();
        t.app.run_until_idle().unwrap();
        assert_eq!(
            in_flight.status().unwrap(),
            Status::Waiting,
            "waits to be shipped"
        );
        let export =
            WorkflowExport::from_store(&**t.app.store(), &[done.id(), in_flight.id()]).unwrap();
        assert_eq!(export.workflows(), vec![done.id(), in_flight.id()]);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("production.json");
        std::fs::write(&file, serde_json::to_string_pretty(&export).unwrap()).unwrap();
        let export = read_export(&file).unwrap();
        let leaf_runs_before = runs.load(Ordering::SeqCst);

        let deployed = App::builder().memory().build().unwrap();
        register(&deployed, false, &runs);
        let report = replay_check(&deployed, &export).unwrap();
        assert!(report.is_ok(), "{}: {report}", t.backend);
        assert_eq!(
            report.checked,
            vec![done.id(), in_flight.id()],
            "only checkouts"
        );

        let changed = App::builder().memory().build().unwrap();
        register(&changed, true, &runs);
        let report = replay_check(&changed, &export).unwrap();
        assert_eq!(report.divergences.len(), 2, "{}: {report}", t.backend);
        for (d, wf_id) in report.divergences.iter().zip([done.id(), in_flight.id()]) {
            assert_eq!((d.workflow, d.error.invocation), (wf_id, wf_id));
            assert_eq!(d.task.as_str(), "checkout");
            assert_eq!(d.error.position, 0);
            assert!(d.error.recorded.contains("task 'reserve'"), "{report}");
            assert!(d.error.requested.contains("task 'charge'"), "{report}");
        }
        let text = report.to_string();
        assert!(text.contains("2 diverge"), "{text}");
        assert!(text.contains(&format!("workflow {}", done.id())), "{text}");

        assert_eq!(runs.load(Ordering::SeqCst), leaf_runs_before, "no leaf ran");
        for app in [&deployed, &changed] {
            assert_eq!(app.store().counts().unwrap().total(), 0, "nothing written");
        }
    }
}

/// By default only orchestrators (tasks whose journals start children) are replayed, never a
/// leaf: its body is its side effect. Naming a leaf replays it, and its side effect happens
/// again — which is why the default leaves it out. An unregistered task among the named ones,
/// and recorded arguments the code no longer decodes, are reported.
#[test]
fn only_orchestrators_are_replayed_unless_tasks_are_named() {
    let runs = Arc::new(AtomicU32::new(0));
    let app = App::builder().memory().build().unwrap();
    let checkout = register(&app, false, &runs);
    checkout.call(&app, 1).unwrap();
    app.run_until_idle().unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 2);

    let report = replay_check(&app, app.store()).unwrap();
    assert_eq!(report.checked.len(), 1, "{report}");
    assert_eq!(runs.load(Ordering::SeqCst), 2, "the leaves did not run");

    let report = ReplayCheck::new(&app)
        .tasks(["charge"])
        .run(app.store())
        .unwrap();
    assert!(report.is_ok() && report.checked.len() == 1, "{report}");
    assert_eq!(
        runs.load(Ordering::SeqCst),
        3,
        "a named leaf runs its side effect again"
    );

    let renamed = App::builder().memory().build().unwrap();
    renamed
        .task(
            "checkout",
            |_: &TaskContext, s: String| -> Result<String, TaskError> { Ok(s) },
        )
        .unwrap();
    let export = WorkflowExport::all(&**app.store()).unwrap();
    let report = ReplayCheck::new(&renamed)
        .tasks(["checkout", "reserve"])
        .run(&export)
        .unwrap();
    assert!(!report.is_ok());
    let reasons: Vec<&str> = report.problems.iter().map(|p| p.reason.as_str()).collect();
    assert!(reasons[0].contains("do not decode"), "{report}");
    assert!(reasons[1].contains("not registered"), "{report}");
}
