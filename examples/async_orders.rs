//! An axum service that takes orders and runs each as a durable workflow, with a worker in the
//! same binary (feature `tokio`).
//!
//! ```text
//! cargo run --features tokio --example async_orders            # listens on 127.0.0.1:3000
//! curl -X POST localhost:3000/orders/1042 -H 'content-type: application/json' \
//!      -d '{"sku":"book","quantity":2}'
//! ```
//!
//! `POST /orders/{id}` starts the `order` workflow with the order id as its idempotency key
//! (`call_keyed_async`): a client that retries the request gets the same workflow and the same
//! receipt, never a second charge; the same id with another body is a 409. The handler awaits
//! the workflow's result (`invocation.await`) without blocking the runtime.
//!
//! The workflow is async: it reserves the stock (a sync task) and charges the card (an async
//! task, where a real service would call a payment API with an HTTP client). The worker runs
//! async bodies on its own tokio runtime; a body waiting on its child stays parked in memory.
//!
//! Settings: `WF_STORE` picks the store (memory by default, `file:./wf-data/orders` to keep
//! the orders across restarts); `ORDERS_ADDR` the address (`127.0.0.1:3000`; port 0 picks a
//! free one). Ctrl-C stops the server, then the worker, gracefully.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use serde::{Deserialize, Serialize};
use wf::prelude::*;

/// What a client posts.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Order {
    sku: String,
    quantity: u32,
}

/// What the workflow returns, and the service answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Receipt {
    order: u64,
    reservation: String,
    charged_cents: u64,
    payment_id: String,
}

/// The service's state: the app and the workflow to start.
#[derive(Clone)]
struct Shop {
    app: App,
    order: Task<(u64, Order), Receipt>,
}

fn register(app: &App) -> Result<Task<(u64, Order), Receipt>, WfError> {
    let reserve = app.task(
        "reserve",
        |_ctx: &TaskContext, (sku, quantity): (String, u32)| -> Result<String, TaskError> {
            Ok(format!("{quantity} x {sku}"))
        },
    )?;
    let charge = app.task_async("charge", |ctx: AsyncTaskContext, cents: u64| async move {
        // A real service calls its payment provider here (an HTTP request, awaited), with an
        // idempotency key that is the same on every retry: this invocation's id.
        let payment_id = format!("pay-{}", ctx.invocation_id());
        let _ = cents;
        Ok::<_, TaskError>(payment_id)
    })?;
    app.task_async(
        "order",
        move |ctx: AsyncTaskContext, (id, order): (u64, Order)| {
            let (reserve, charge) = (reserve.clone(), charge.clone());
            async move {
                let wf = ctx.wf();
                let reservation = wf
                    .execute_task(&reserve, (order.sku.clone(), order.quantity))
                    .await?;
                let cents = u64::from(order.quantity) * 1250;
                let payment_id = wf.execute_task(&charge, cents).await?;
                Ok::<_, TaskError>(Receipt {
                    order: id,
                    reservation,
                    charged_cents: cents,
                    payment_id,
                })
            }
        },
    )
}

/// `POST /orders/{id}`: starts (or finds) the order's workflow and answers its receipt.
async fn place(
    State(shop): State<Shop>,
    Path(id): Path<u64>,
    Json(order): Json<Order>,
) -> Result<Json<Receipt>, (StatusCode, String)> {
    let key = format!("order-{id}");
    let started = shop
        .order
        .call_keyed_async(&shop.app, &key, (id, order))
        .await;
    let invocation = match started {
        Ok(invocation) => invocation,
        Err(e @ WfError::KeyConflict { .. }) => return Err((StatusCode::CONFLICT, e.to_string())),
        Err(e) => return Err((StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    };
    match invocation.await {
        Ok(receipt) => Ok(Json(receipt)),
        Err(e) => Err((StatusCode::BAD_GATEWAY, e.to_string())),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let app = App::builder().app_id("orders").build()?;
    let order = register(&app)?;
    let worker = app.worker().threads(1).concurrency(64).start()?;

    let addr = std::env::var("ORDERS_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on {}", listener.local_addr()?);
    let router = axum::Router::new()
        .route("/orders/{id}", post(place))
        .with_state(Shop { app, order });
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    let stats = worker.stop_async().await;
    println!("stopped after {} executions", stats.executed);
    Ok(())
}
