//! The management API on `App`: list workflows with filters, read invocations and workflow
//! trees with typed arguments and results, count, purge — without touching the store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::apps;
use serde::{Deserialize, Serialize};
use wf::prelude::*;
use wf::{Timestamp, WorkflowQuery};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Order {
    number: u32,
    sku: String,
}

/// An `order` workflow calling `price` and starting a `ship` sub-workflow that calls `label`.
struct Shop {
    order: Task<Order, u64>,
    flaky: Task<u32, u32>,
}

fn shop(app: &App) -> Shop {
    let price = app
        .task(
            "price",
            |_: &TaskContext, sku: String| -> Result<u64, TaskError> { Ok(sku.len() as u64 * 100) },
        )
        .unwrap();
    let label = app
        .task(
            "label",
            |_: &TaskContext, n: u32| -> Result<String, TaskError> { Ok(format!("label-{n}")) },
        )
        .unwrap();
    let ship = app
        .task_with(
            TaskOptions::new("ship").force_new_workflow(true),
            move |ctx: &TaskContext, n: u32| -> Result<String, TaskError> {
                Ok(ctx.wf().execute_task(&label, n)?)
            },
        )
        .unwrap();
    let order = app
        .task(
            "order",
            move |ctx: &TaskContext, o: Order| -> Result<u64, TaskError> {
                let wf = ctx.wf();
                let cents = wf.execute_task(&price, o.sku.clone())?;
                wf.execute_task(&ship, o.number)?;
                Ok(cents)
            },
        )
        .unwrap();
    let flaky = app
        .task(
            "flaky",
            |_: &TaskContext, n: u32| -> Result<u32, TaskError> {
                Err(TaskError::new(format!("no luck with {n}")))
            },
        )
        .unwrap();
    Shop { order, flaky }
}

fn order(n: u32) -> Order {
    Order {
        number: n,
        sku: "book".into(),
    }
}

#[test]
fn workflows_are_listed_newest_first_with_filters_and_a_limit() {
    for t in apps(|b| b) {
        let app = &t.app;
        let s = shop(app);
        let orders: Vec<_> = (1..=3)
            .map(|n| s.order.call(app, order(n)).unwrap())
            .collect();
        let failing = s.flaky.call(app, 7).unwrap();
        app.run_until_idle().unwrap();

        let all = app.workflows(&WorkflowQuery::new()).unwrap();
        // 3 orders, 3 ship sub-workflows, 1 flaky.
        assert_eq!(all.matched, 7, "{}", t.backend);
        let top = app.workflows(&WorkflowQuery::new().top_level()).unwrap();
        assert_eq!(top.matched, 4, "{}", t.backend);
        assert_eq!(
            top.workflows[0].id,
            failing.id(),
            "{}: newest first",
            t.backend
        );

        let q = WorkflowQuery::new().task("order").limit(2);
        let list = app.workflows(&q).unwrap();
        assert_eq!(
            (list.workflows.len(), list.matched),
            (2, 3),
            "{}",
            t.backend
        );
        assert_eq!(list.workflows[0].id, orders[2].id(), "{}", t.backend);
        assert_eq!(list.workflows[1].id, orders[1].id(), "{}", t.backend);
        let w = &list.workflows[0];
        assert_eq!(w.workflow_type.as_str(), "order");
        assert_eq!(w.status, Status::Success);
        assert_eq!(
            w.invocations, 2,
            "order and price; ship is its own workflow"
        );

        let failed = app
            .workflows(&WorkflowQuery::new().status(Status::Failed))
            .unwrap();
        let ids: Vec<_> = failed.workflows.iter().map(|w| w.id).collect();
        assert_eq!(ids, [failing.id()], "{}", t.backend);

        let subs = app.workflows(&WorkflowQuery::new().task("ship")).unwrap();
        assert_eq!(subs.matched, 3);
        assert!(subs.workflows.iter().all(|w| w.parent_workflow.is_some()));
    }
}

#[test]
fn the_age_filter_is_judged_against_the_time_given() {
    for t in apps(|b| b) {
        let app = &t.app;
        let s = shop(app);
        let inv = s.flaky.call(app, 1).unwrap();
        let created = app.invocation(inv.id()).unwrap().created_at();
        let hour = Duration::from_secs(3600);
        let an_hour_later = Timestamp(created.0 + 3_600_000);
        let ins = app.inspector();
        let older = WorkflowQuery::new().older_than(hour);
        let newer = WorkflowQuery::new().newer_than(hour);
        assert_eq!(ins.workflows(&older, created).unwrap().matched, 0);
        assert_eq!(ins.workflows(&newer, created).unwrap().matched, 1);
        assert_eq!(ins.workflows(&older, an_hour_later).unwrap().matched, 1);
        assert_eq!(ins.workflows(&newer, an_hour_later).unwrap().matched, 0);
        // Against the real clock: it was started just now.
        assert_eq!(app.workflows(&newer).unwrap().matched, 1, "{}", t.backend);
        assert_eq!(app.workflows(&older).unwrap().matched, 0, "{}", t.backend);
    }
}

#[test]
fn an_invocation_reads_back_with_the_types_the_caller_names() {
    for t in apps(|b| b) {
        let app = &t.app;
        let s = shop(app);
        let inv = s.order.call(app, order(42)).unwrap();
        let failing = s.flaky.call(app, 7).unwrap();
        let before = app.invocation(inv.id()).unwrap();
        assert_eq!(before.status(), Status::Pending);
        assert_eq!(before.result::<u64>().unwrap(), None);
        app.run_until_idle().unwrap();

        let view = app.invocation(inv.id()).unwrap();
        assert_eq!(view.task().as_str(), "order");
        assert!(view.is_root() && view.parent().is_none());
        assert_eq!(view.args::<Order>().unwrap(), order(42));
        assert_eq!(view.result::<u64>().unwrap(), Some(400));
        assert!(view.attempts() >= 1);
        // Naming the wrong type is a decode error, not a panic or garbage.
        assert!(matches!(view.args::<Vec<String>>(), Err(WfError::Codec(_))));

        let f = app.invocation(failing.id()).unwrap();
        assert_eq!(f.status(), Status::Failed);
        assert!(f.error().unwrap().message.contains("no luck with 7"));
        assert_eq!(f.result::<u32>().unwrap(), None);

        let unknown = wf::InvocationId::from_u128(99);
        assert!(matches!(
            app.invocation(unknown),
            Err(WfError::Store(wf::store::StoreError::InvocationNotFound(_)))
        ));
    }
}

#[test]
fn a_workflow_tree_holds_its_sub_workflows_under_their_callers() {
    for t in apps(|b| b) {
        let app = &t.app;
        let s = shop(app);
        let inv = s.order.call(app, order(5)).unwrap();
        app.run_until_idle().unwrap();
        let tree = app.workflow(inv.id()).unwrap();
        let shape: Vec<(usize, &str, bool)> = tree
            .nodes()
            .iter()
            .map(|n| (n.depth, n.invocation.task().as_str(), n.subworkflow_root))
            .collect();
        assert_eq!(
            shape,
            [
                (0, "order", false),
                (1, "price", false),
                (1, "ship", true),
                (2, "label", false)
            ],
            "{}",
            t.backend
        );
        assert_eq!(tree.root().unwrap().id(), inv.id());
        let label = &tree.nodes()[3].invocation;
        assert_eq!(label.args::<u32>().unwrap(), 5);
        assert_eq!(
            label.result::<String>().unwrap().as_deref(),
            Some("label-5")
        );
        // Asked by any member, the tree is the same workflow's.
        let by_member = app.workflow(tree.nodes()[1].invocation.id()).unwrap();
        assert_eq!(by_member, tree);
    }
}

#[test]
fn counts_and_purge_are_reachable_from_the_app() {
    for t in apps(|b| b) {
        let app = &t.app;
        let s = shop(app);
        s.order.call(app, order(1)).unwrap();
        s.flaky.call(app, 2).unwrap();
        let counts = app.counts().unwrap();
        assert_eq!(counts.get(Status::Pending), 2, "{}", t.backend);
        app.run_until_idle().unwrap();
        let counts = app.counts().unwrap();
        assert_eq!(counts.get(Status::Success), 4, "{}", t.backend);
        assert_eq!(counts.get(Status::Failed), 1, "{}", t.backend);
        // Finished just now: kept by an hour's margin, purged by none.
        assert_eq!(app.purge_finished(Duration::from_secs(3600)).unwrap(), 0);
        assert_eq!(app.counts().unwrap().total(), 5);
        assert_eq!(
            app.purge_finished(Duration::ZERO).unwrap(),
            3,
            "{}",
            t.backend
        );
        assert_eq!(app.counts().unwrap().total(), 0, "{}", t.backend);
    }
}

#[test]
fn sub_workflows_started_together_are_listed_in_the_order_they_were_started() {
    for t in apps(|b| b) {
        let app = &t.app;
        let sub = app
            .task_with(
                TaskOptions::new("sub").force_new_workflow(true),
                |_: &TaskContext, n: u32| -> Result<u32, TaskError> { Ok(n) },
            )
            .unwrap();
        let fan = app
            .task(
                "fan",
                move |ctx: &TaskContext, n: u32| -> Result<u32, TaskError> {
                    let wf = ctx.wf();
                    let handles = (0..n)
                        .map(|i| wf.start_task(&sub, i))
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok(wf.join_all(&handles)?.iter().sum())
                },
            )
            .unwrap();
        let inv = fan.call(app, 6).unwrap();
        app.run_until_idle().unwrap();
        let tree = app.workflow(inv.id()).unwrap();
        let args: Vec<u32> = tree.nodes()[1..]
            .iter()
            .map(|n| n.invocation.args::<u32>().unwrap())
            .collect();
        assert_eq!(args, [0, 1, 2, 3, 4, 5], "{}", t.backend);
    }
}

/// A retried workflow replays its journal: the child that finished before the failure is not
/// run again, the values it drew are the same, and the step that failed runs again.
#[test]
fn a_retried_workflow_replays_its_journal_and_reruns_only_the_failed_step() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    for t in apps(|b| b) {
        let app = &t.app;
        let charged = Arc::new(AtomicU32::new(0));
        let shipping_up = Arc::new(AtomicBool::new(false));
        let (c, up) = (charged.clone(), shipping_up.clone());
        let charge = app
            .task(
                "charge",
                move |_: &TaskContext, cents: u64| -> Result<u64, TaskError> {
                    c.fetch_add(1, Ordering::SeqCst);
                    Ok(cents)
                },
            )
            .unwrap();
        let order = app
            .task(
                "order",
                move |ctx: &TaskContext, cents: u64| -> Result<String, TaskError> {
                    let wf = ctx.wf();
                    let id = wf.uuid();
                    let paid = wf.execute_task(&charge, cents)?;
                    if !up.load(Ordering::SeqCst) {
                        return Err(TaskError::new("the shipping service is down"));
                    }
                    Ok(format!("{id}: {paid}"))
                },
            )
            .unwrap();
        let inv = order.call(app, 700).unwrap();
        app.run_until_idle().unwrap();
        let failed = app.invocation(inv.id()).unwrap();
        assert_eq!(failed.status(), Status::Failed, "{}", t.backend);
        assert_eq!(charged.load(Ordering::SeqCst), 1);

        shipping_up.store(true, Ordering::SeqCst);
        app.retry(inv.id()).unwrap();
        let pending = app.invocation(inv.id()).unwrap();
        assert_eq!(pending.status(), Status::Pending);
        assert!(pending.error().is_some(), "the last error stays visible");
        app.run_until_idle().unwrap();
        let done = inv.result().unwrap();
        assert!(done.ends_with(": 700"), "{done}");
        assert_eq!(
            charged.load(Ordering::SeqCst),
            1,
            "{}: the finished child is replayed, not charged again",
            t.backend
        );
        // The same uuid as the failed attempt drew: the journal was replayed, not redrawn.
        let journal_uuid = app.store().journal(inv.id()).unwrap()[0].clone();
        assert!(done.starts_with(&match journal_uuid.op {
            wf::core::Op::Uuid(u) => u.to_string(),
            other => panic!("{other:?}"),
        }));
    }
}

#[test]
fn retrying_what_is_not_failed_is_a_typed_refusal() {
    for t in apps(|b| b) {
        let app = &t.app;
        let s = shop(app);
        let inv = s.order.call(app, order(1)).unwrap();
        match app.retry(inv.id()) {
            Err(WfError::Store(e @ wf::store::StoreError::NotRetryable { .. })) => {
                assert!(e.to_string().contains("it is pending, not failed"), "{e}");
            }
            other => panic!("{}: expected NotRetryable, got {other:?}", t.backend),
        }
        assert!(matches!(
            app.retry(wf::InvocationId::from_u128(5)),
            Err(WfError::Store(wf::store::StoreError::InvocationNotFound(_)))
        ));
    }
}

#[test]
fn the_purge_dry_run_lists_what_a_purge_removes_and_removes_nothing() {
    for t in apps(|b| b) {
        let app = &t.app;
        let s = shop(app);
        let inv = s.order.call(app, order(1)).unwrap();
        app.run_until_idle().unwrap();
        let unfinished = s.flaky.call(app, 3).unwrap();
        let before = app.counts().unwrap();

        assert!(
            app.purge_finished_dry_run(Duration::from_secs(3600))
                .unwrap()
                .is_empty()
        );
        let listed = app.purge_finished_dry_run(Duration::ZERO).unwrap();
        let types: Vec<&str> = listed.iter().map(|w| w.workflow_type.as_str()).collect();
        assert_eq!(types, ["order", "ship"], "{}", t.backend);
        assert_eq!(listed[0].id, inv.id());
        assert!(listed.iter().all(|w| w.id != unfinished.id()));
        assert_eq!(app.counts().unwrap(), before, "a dry run removes nothing");

        assert_eq!(app.purge_finished(Duration::ZERO).unwrap(), listed.len());
        assert!(
            app.purge_finished_dry_run(Duration::ZERO)
                .unwrap()
                .is_empty()
        );
    }
}
