//! Changing a workflow's code while invocations of it are in flight, end to end on every
//! backend: the three stages of a patch (`patched`, then `deprecate_patch`, then nothing), each
//! deployed as a new app on the same store while workflows recorded by the earlier code wait;
//! and why the stages wait for the drain: the replay check shows what each stage would break.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::steering_apps;
use wf::core::OpKind;
use wf::prelude::*;
use wf::store::Store;
use wf::testing::{ReplayCheck, replay_check};

/// The replay check of what is in flight in `store` under `app`'s code.
fn check_in_flight(app: &App, store: &Arc<dyn Store>) -> wf::testing::ReplayReport {
    ReplayCheck::new(app).unfinished_only().run(store).unwrap()
}

/// Which version of the `order` body an app runs.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Stage {
    /// The original code: ships by post.
    Old,
    /// Stage 1: `if patched("courier") { courier } else { post }`.
    Patched,
    /// Stage 2: `deprecate_patch("courier"); courier`.
    Deprecated,
    /// Stage 3: `courier`, no marker.
    Clean,
    /// The change made without a patch: `courier` where the old code used `post`.
    Unpatched,
}

/// An app of `stage` on `store`: the task `order` ships an order, then waits for a "paid"
/// event before it finishes (so invocations stay in flight across deploys).
fn deploy(store: &Arc<dyn Store>, stage: Stage) -> (App, Task<u32, String>) {
    let app = App::builder()
        .app_id("test") // the app id of `common::apps`
        .store(store.clone())
        .build()
        .unwrap();
    let post = app
        .task(
            "post",
            |_: &TaskContext, n: u32| -> Result<String, TaskError> { Ok(format!("post #{n}")) },
        )
        .unwrap();
    let courier = app
        .task(
            "courier",
            |_: &TaskContext, n: u32| -> Result<String, TaskError> { Ok(format!("courier #{n}")) },
        )
        .unwrap();
    let order = app
        .task(
            "order",
            move |ctx: &TaskContext, n: u32| -> Result<String, TaskError> {
                let wf = ctx.wf();
                let shipped = match stage {
                    Stage::Old => wf.execute_task(&post, n)?,
                    Stage::Patched => {
                        if wf.patched("courier") {
                            wf.execute_task(&courier, n)?
                        } else {
                            wf.execute_task(&post, n)?
                        }
                    }
                    Stage::Deprecated => {
                        wf.deprecate_patch("courier");
                        wf.execute_task(&courier, n)?
                    }
                    Stage::Clean | Stage::Unpatched => wf.execute_task(&courier, n)?,
                };
                let paid: bool = wf.wait_event("paid")?;
                Ok(format!("{shipped}, paid {paid}"))
            },
        )
        .unwrap();
    (app, order)
}

/// Starts order `n` on `app` and runs it until it waits for its payment.
fn start(app: &App, order: &Task<u32, String>, n: u32) -> Invocation<String> {
    let inv = order.call(app, n).unwrap();
    app.run_until_idle().unwrap();
    assert_eq!(inv.status().unwrap(), Status::Waiting);
    inv
}

/// Pays order `inv` and runs `app` until it finishes.
fn finish(app: &App, inv: &Invocation<String>) -> String {
    app.send_event(inv.id(), "paid", &true).unwrap();
    app.run_until_idle().unwrap();
    inv.result().unwrap()
}

#[test]
fn a_patch_goes_through_three_stages_while_workflows_are_in_flight() {
    for t in steering_apps(|b| b) {
        let store = t.app.store().clone();

        // Before: the old code records orders shipped by post.
        let (old, order) = deploy(&store, Stage::Old);
        let by_post = start(&old, &order, 1);

        // The change without a patch would break the order in flight: the check says where.
        let (unpatched, _) = deploy(&store, Stage::Unpatched);
        let report = replay_check(&unpatched, &store).unwrap();
        assert_eq!(report.divergences.len(), 1, "{}: {report}", t.backend);
        let d = &report.divergences[0];
        assert_eq!((d.error.invocation, d.error.position), (by_post.id(), 0));
        assert!(d.error.recorded.contains("'post'"), "{report}");
        assert!(d.error.requested.contains("'courier'"), "{report}");

        // Stage 1: patched. The old order replays the old branch; a new one takes the new
        // branch and records the marker.
        let (patched, order) = deploy(&store, Stage::Patched);
        assert!(replay_check(&patched, &store).unwrap().is_ok());
        let by_courier = start(&patched, &order, 2);
        assert_eq!(
            common::journal_kinds(&patched, by_courier.id())[0],
            OpKind::Patch
        );
        assert_eq!(
            finish(&patched, &by_post),
            "post #1, paid true",
            "{}",
            t.backend
        );

        // Stage 2, once no order recorded without the marker is in flight: deprecated. (Old,
        // finished orders would not replay any more, but they never replay again.)
        let (deprecated, order) = deploy(&store, Stage::Deprecated);
        let all = replay_check(&deprecated, &store).unwrap();
        assert_eq!(all.divergences.len(), 1, "{all}");
        assert_eq!(all.divergences[0].error.invocation, by_post.id());
        assert!(check_in_flight(&deprecated, &store).is_ok());
        let marked = start(&deprecated, &order, 3);
        assert_eq!(finish(&deprecated, &by_courier), "courier #2, paid true");

        // Stage 3 would break orders recorded with the marker while they are in flight...
        let (clean, order) = deploy(&store, Stage::Clean);
        let report = check_in_flight(&clean, &store);
        assert_eq!(report.divergences.len(), 1, "{report}");
        assert_eq!(report.divergences[0].error.invocation, marked.id());
        assert!(
            report.divergences[0]
                .error
                .recorded
                .starts_with("patch marker")
        );
        // ... so it is deployed once they are done.
        assert_eq!(finish(&deprecated, &marked), "courier #3, paid true");
        assert!(check_in_flight(&clean, &store).is_ok(), "{}", t.backend);
        let fresh = start(&clean, &order, 4);
        assert_eq!(finish(&clean, &fresh), "courier #4, paid true");
    }
}
