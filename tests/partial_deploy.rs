//! A worker never destroys work it cannot run, and a store knows its app. An app that registers
//! only some tasks (a partial deploy, a renamed task, a second binary) leaves in-flight
//! invocations of the others pending — never failed — and an app that registers them finishes
//! them; opening a store with another app id is a typed error naming both. On memory and file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use common::{PATIENCE, apps};
use wf::prelude::*;
use wf::store::StoreError;

/// How many times each task's body ran.
type Runs = Arc<Mutex<BTreeMap<&'static str, u32>>>;

/// Typed handles of the three tasks. A handle is a plain value: an app may start a child of a
/// task it does not register itself.
struct Handles {
    order: Task<u32, String>,
    charge: Task<u32, String>,
    ship: Task<String, String>,
}

fn handles() -> Handles {
    let catalog = App::builder().app_id("catalog").memory().build().unwrap();
    let body = |_: &TaskContext, _: u32| -> Result<String, TaskError> { unreachable!() };
    Handles {
        order: catalog.task("order", body).unwrap(),
        charge: catalog.task("charge", body).unwrap(),
        ship: catalog
            .task(
                "ship",
                |_: &TaskContext, _: String| -> Result<String, TaskError> { unreachable!() },
            )
            .unwrap(),
    }
}

/// An app on `store` (app id "test") that registers only the tasks `names` lists.
fn deploy(store: &App, names: &[&'static str], runs: &Runs) -> App {
    let app = App::builder()
        .app_id("test")
        .store(store.store().clone())
        .build()
        .unwrap();
    let hit = |name: &'static str| {
        let runs = runs.clone();
        move || *runs.lock().unwrap().entry(name).or_default() += 1
    };
    let h = handles();
    for name in names {
        match *name {
            "order" => {
                let (ran, charge, ship) = (hit("order"), h.charge.clone(), h.ship.clone());
                app.task(
                    "order",
                    move |ctx: &TaskContext, cents: u32| -> Result<String, TaskError> {
                        ran();
                        let receipt = ctx.wf().execute_task(&charge, cents)?;
                        Ok(ctx.wf().execute_task(&ship, receipt)?)
                    },
                )
                .unwrap();
            }
            "charge" => {
                let ran = hit("charge");
                app.task(
                    "charge",
                    move |_: &TaskContext, cents: u32| -> Result<String, TaskError> {
                        ran();
                        Ok(format!("receipt-{cents}"))
                    },
                )
                .unwrap();
            }
            "ship" => {
                let ran = hit("ship");
                app.task(
                    "ship",
                    move |_: &TaskContext, receipt: String| -> Result<String, TaskError> {
                        ran();
                        Ok(format!("shipped with {receipt}"))
                    },
                )
                .unwrap();
            }
            other => panic!("no task {other}"),
        }
    }
    app
}

/// Three orders (nine invocations) in flight across three partial deploys: nothing is ever
/// failed, what no app can run waits, and the full deploy finishes everything once.
#[test]
fn a_partial_deploy_never_fails_in_flight_work_of_the_tasks_it_lacks() {
    for t in apps(|b| b) {
        let backend = t.backend;
        let runs: Runs = Arc::default();
        let h = handles();
        let orders: Vec<Invocation<String>> = (1..=3)
            .map(|cents| h.order.call(&t.app, cents).unwrap())
            .collect();

        // Deploy 1 lacks `ship`: orders charge, then wait on ship children no one runs.
        let first = deploy(&t.app, &["order", "charge"], &runs);
        first.run_until_idle().unwrap();
        let counts = t.app.store().counts().unwrap();
        assert_eq!(counts.get(Status::Failed), 0, "{backend}: {counts:?}");
        assert_eq!(
            counts.get(Status::Waiting),
            3,
            "{backend}: the orders wait on ships"
        );
        assert_eq!(
            counts.get(Status::Pending),
            3,
            "{backend}: the ships stay pending"
        );
        let ships: Vec<InvocationId> = orders
            .iter()
            .flat_map(|o| t.app.store().workflow_invocations(o.id()).unwrap())
            .filter(|id| t.app.store().invocation(*id).unwrap().spec.task.as_str() == "ship")
            .collect();
        assert_eq!(ships.len(), 3, "{backend}");
        let seen = Invocation::<String>::attach(&first, ships[0])
            .progress()
            .unwrap();
        assert!(
            seen.contains("waiting for a worker that runs task 'ship'")
                && seen.contains("does not register"),
            "{backend}: {seen}"
        );

        // Deploy 2 lacks `order`: ships run; the orders wake and wait for an order worker.
        let second = deploy(&t.app, &["ship"], &runs);
        assert_eq!(second.run_until_idle().unwrap(), 3, "{backend}: the ships");
        assert_eq!(second.run_until_idle().unwrap(), 0, "{backend}");
        let counts = t.app.store().counts().unwrap();
        assert_eq!(counts.get(Status::Failed), 0, "{backend}: {counts:?}");
        assert_eq!(
            counts.get(Status::Pending),
            3,
            "{backend}: the woken orders wait"
        );
        for order in &orders {
            let seen = Invocation::<String>::attach(&second, order.id())
                .progress()
                .unwrap();
            assert!(
                seen.contains("waiting for a worker that runs task 'order'"),
                "{backend}: {seen}"
            );
            assert!(matches!(
                Invocation::<String>::attach(&second, order.id())
                    .result_timeout(std::time::Duration::from_millis(1)),
                Err(WfError::Timeout { ref progress, .. }) if progress.contains("task 'order'")
            ));
        }

        // The full deploy finishes every order, each step once.
        let full = deploy(&t.app, &["order", "charge", "ship"], &runs);
        full.run_until_idle().unwrap();
        for (cents, order) in (1..=3).zip(&orders) {
            assert_eq!(
                order.result_timeout(PATIENCE).unwrap(),
                format!("shipped with receipt-{cents}"),
                "{backend}"
            );
        }
        let runs = runs.lock().unwrap().clone();
        assert_eq!(runs["charge"], 3, "{backend}: {runs:?}");
        assert_eq!(runs["ship"], 3, "{backend}: {runs:?}");
        assert_eq!(
            t.app.store().counts().unwrap().get(Status::Failed),
            0,
            "{backend}"
        );
    }
}

/// A file store reopened by an app with another id is refused, naming both ids; its own app
/// reopens it.
#[cfg(feature = "file")]
#[test]
fn a_file_store_reopened_with_another_app_id_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    drop(App::builder().app_id("shop").file(&path).build().unwrap());
    match App::builder().app_id("billing").file(&path).build() {
        Err(WfError::Store(e @ StoreError::AppMismatch { .. })) => {
            let text = e.to_string();
            assert!(
                text.contains("'shop'") && text.contains("'billing'"),
                "the refusal names both apps: {text}"
            );
            match e {
                StoreError::AppMismatch {
                    recorded,
                    requested,
                    ..
                } => assert_eq!((recorded.as_str(), requested.as_str()), ("shop", "billing")),
                _ => unreachable!(),
            }
        }
        other => panic!("expected AppMismatch, got {other:?}"),
    }
    let again = App::builder().app_id("shop").file(&path).build().unwrap();
    assert_eq!(again.store().app_id().unwrap().as_deref(), Some("shop"));
}

/// The same for a memory store shared by two apps.
#[test]
fn a_memory_store_shared_with_another_app_id_is_refused() {
    let shop = App::builder().app_id("shop").memory().build().unwrap();
    match App::builder()
        .app_id("billing")
        .store(shop.store().clone())
        .build()
    {
        Err(WfError::Store(e @ StoreError::AppMismatch { .. })) => {
            let text = e.to_string();
            assert!(
                text.contains("'shop'") && text.contains("'billing'"),
                "{text}"
            );
        }
        other => panic!("expected AppMismatch, got {other:?}"),
    }
}
