//! The wf quick start: a workflow with a durable child task, run by a background worker.
use serde::{Deserialize, Serialize};
use wf::prelude::*;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Order {
    number: u32,
    cents: u64,
}

fn main() -> Result<(), WfError> {
    // The app's state lives in a directory: it survives crashes and restarts.
    let app = App::builder()
        .app_id("shop")
        .file("wf-data/quickstart")
        .build()?;

    // A plain task: arguments and results are any serde types.
    let charge = app.task(
        "charge",
        |_ctx: &TaskContext, order: Order| -> Result<String, TaskError> {
            Ok(format!(
                "receipt for order {}: {} cents",
                order.number, order.cents
            ))
        },
    )?;

    // A workflow: what it records is replayed after a crash, a retry or a wake-up.
    let checkout = app.task(
        "checkout",
        move |ctx: &TaskContext, order: Order| -> Result<String, TaskError> {
            let wf = ctx.wf();
            let payment_id = wf.uuid(); // the same on every replay
            wf.set_data("payment_id", &payment_id)?; // workflow data: only the root writes
            let receipt = wf.execute_task(&charge, order)?; // runs once; replays return its result
            Ok(format!("{receipt} (payment {payment_id})"))
        },
    )?;

    let worker = app.worker().threads(4).start()?;
    // Started once per key: running this program again finds order 1042's checkout.
    let order = Order {
        number: 1042,
        cents: 1250,
    };
    let checkout_1042 = checkout.call_keyed(&app, "order-1042", order)?;
    println!("{}", checkout_1042.result()?);
    worker.stop();
    Ok(())
}
