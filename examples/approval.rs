//! Human in the loop: an expense workflow that asks a person for approval and waits for the
//! answer — durably, holding no worker, for up to a week — then pays or not. The answer is an
//! event sent to the workflow, from anywhere: another process, a web hook, the inspector.
//!
//! ```text
//! cargo run --example approval                                  # the whole story in one process
//!
//! # Across processes, on the embedded file store, with the workers running all along:
//! cargo run --example approval -- serve ./wf-data/approvals 4200   # asks, waits, prints the result
//! cargo run --example approval -- send  ./wf-data/approvals <ID> approve ana   # another terminal
//!
//! # Or with no process running in between:
//! cargo run --example approval -- start ./wf-data/approvals 4200   # asks, waits, exits
//! cargo run --example approval -- send  ./wf-data/approvals <ID> approve ana
//! cargo run --example approval -- run   ./wf-data/approvals <ID>   # finishes it, prints the result
//! ```
//!
//! `send` is a second process. The inspector can send the same event:
//!
//! ```text
//! cargo run -p wf-cli -- --store ./wf-data/approvals send-event <ID> approve '{"approved": true, "by": "ana"}'
//! ```
//!
//! A file store has one owning process, whose workers run the workflows. While it runs (`serve`),
//! `send` and `wf send-event` reach it through the store's control socket and the waiting
//! workflow wakes at once; with no owner running (after `start`), they store the event and the
//! workflow takes it when `run` starts workers again. Senders on other machines use the Redis
//! backend.
//!
//! On Redis every process shares the store, on any machine (`STORE` is a directory or a Redis
//! URL everywhere above; feature `redis`):
//!
//! ```text
//! cargo run --features redis --example approval -- serve redis://127.0.0.1:6379/?ns=approvals 4200
//! # workers run and the workflow waits; from another terminal:
//! cargo run --features redis --example approval -- send redis://127.0.0.1:6379/?ns=approvals <ID> approve ana
//! cargo run -p wf-cli -- --store 'redis://127.0.0.1:6379/?ns=approvals' send-event <ID> approve '{"approved": true, "by": "ana"}'
//! # serve prints the result as soon as the event arrives (or `wf … cancel <ID>` cancels it)
//! ```

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wf::prelude::*;

/// What the workflow is asked to approve.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Expense {
    cents: u64,
    what: String,
}

/// The event's payload (JSON): `{"approved": true, "by": "ana"}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Approval {
    approved: bool,
    by: String,
}

/// How long the workflow waits for an answer before it escalates.
const PATIENCE: Duration = Duration::from_secs(7 * 24 * 3600);

/// The app's tasks; returns the workflow.
fn register(app: &App) -> Result<Task<Expense, String>, WfError> {
    let notify = app.task(
        "notify_approver",
        |_: &TaskContext, e: Expense| -> Result<(), TaskError> {
            println!("  [mail] please approve {} cents for {}", e.cents, e.what);
            Ok(())
        },
    )?;
    let pay = app.task(
        "pay",
        |_: &TaskContext, e: Expense| -> Result<(), TaskError> {
            println!("  [bank] paid {} cents for {}", e.cents, e.what);
            Ok(())
        },
    )?;
    app.task(
        "expense",
        move |ctx: &TaskContext, e: Expense| -> Result<String, TaskError> {
            let wf = ctx.wf();
            wf.execute_task(&notify, e.clone())?;
            match wf.wait_event_timeout::<Approval>("approve", PATIENCE) {
                Ok(a) if a.approved => {
                    wf.execute_task(&pay, e.clone())?;
                    Ok(format!(
                        "{} cents for {}: paid, approved by {}",
                        e.cents, e.what, a.by
                    ))
                }
                Ok(a) => Ok(format!(
                    "{} cents for {}: rejected by {}",
                    e.cents, e.what, a.by
                )),
                Err(WfError::TimedOut { .. }) => Ok("no answer within a week: escalated".into()),
                Err(other) => Err(other.into()),
            }
        },
    )
}

/// The app on `store`: a file store's directory, or a Redis URL (feature `redis`).
fn open(store: &str) -> Result<App, Box<dyn std::error::Error>> {
    let spec = if store.contains("://") {
        store.parse()?
    } else {
        wf::StoreSpec::File(PathBuf::from(store))
    };
    Ok(App::builder()
        .app_id("approvals")
        .store_spec(spec)
        .build()?)
}

/// Waits until the workflow waits for its answer (or is final), with a worker running.
fn until_asked(app: &App, inv: &Invocation<String>) -> Result<(), WfError> {
    while app.store().events(inv.id())?.waiting_for.is_none() && !inv.status()?.is_final() {
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Opens the store in `dir`, starts workers and an expense of `cents` (default 4200), and waits
/// until the workflow asks for approval.
fn ask(
    store: &str,
    cents: Option<&str>,
) -> Result<(App, wf::Worker, Invocation<String>), Box<dyn std::error::Error>> {
    let app = open(store)?;
    let expense = register(&app)?;
    let cents = cents.map_or(Ok(4200), str::parse)?;
    let worker = app.worker().threads(2).start()?;
    let inv = expense.call(
        &app,
        Expense {
            cents,
            what: "a conference ticket".into(),
        },
    )?;
    until_asked(&app, &inv)?;
    Ok((app, worker, inv))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str);
    match (arg(0), arg(1)) {
        (None, _) => in_one_process(),
        (Some("serve"), Some(store)) => {
            // Workers stay up while the workflow waits: the answer comes from another process.
            let (_app, worker, inv) = ask(store, arg(2))?;
            println!("{}: {}", inv.id(), inv.progress()?);
            let features = if store.contains("://") { "--features redis " } else { "" };
            println!("approve it from another terminal; this one waits for the answer:");
            println!("  cargo run {features}--example approval -- send '{store}' {} approve ana", inv.id());
            match inv.result_timeout(PATIENCE) {
                Ok(result) => println!("{result}"),
                // `wf --store <STORE> cancel <ID>` from another process.
                Err(WfError::Cancelled { reason, .. }) => println!("cancelled: {reason}"),
                Err(e) => return Err(e.into()),
            }
            worker.stop();
            Ok(())
        }
        (Some("start"), Some(dir)) => {
            let (_app, worker, inv) = ask(dir, arg(2))?;
            worker.stop();
            println!("{}: {}", inv.id(), inv.progress()?);
            println!("approve it from another process:");
            println!("  cargo run --example approval -- send {dir} {} approve ana", inv.id());
            Ok(())
        }
        (Some("send"), Some(dir)) => {
            let (Some(id), Some(verdict)) = (arg(2), arg(3)) else {
                return Err("usage: approval send <STORE> <ID> approve|reject [NAME]".into());
            };
            let app = open(dir)?;
            let approval = Approval {
                approved: verdict == "approve",
                by: arg(4).unwrap_or("someone").to_owned(),
            };
            app.send_event(id.parse()?, "approve", &approval)?;
            if app.store().backend() == "file" {
                println!("sent {approval:?} to {id}; no worker runs, finish it with:");
                println!("  cargo run --example approval -- run {dir} {id}");
            } else {
                println!("sent {approval:?} to {id}; the running workers finish it");
            }
            Ok(())
        }
        (Some("run"), Some(dir)) => {
            let Some(id) = arg(2) else {
                return Err("usage: approval run <STORE> <ID>".into());
            };
            let app = open(dir)?;
            register(&app)?;
            let worker = app.worker().threads(2).start()?;
            let inv: Invocation<String> = Invocation::attach(&app, id.parse()?);
            match inv.result_timeout(Duration::from_secs(30)) {
                Ok(result) => println!("{result}"),
                Err(WfError::Timeout { progress, .. }) => println!("{id}: {progress}"),
                Err(e) => return Err(e.into()),
            }
            worker.stop();
            Ok(())
        }
        _ => Err("usage: approval [start <STORE> [CENTS] | serve <STORE> [CENTS] | send <STORE> <ID> approve|reject [NAME] | run <STORE> <ID>]".into()),
    }
}

/// The story in one process, on the memory store: the person answers from another thread.
fn in_one_process() -> Result<(), Box<dyn std::error::Error>> {
    let app = App::builder().app_id("approvals").memory().build()?;
    let expense = register(&app)?;
    let worker = app.worker().threads(2).start()?;
    let inv = expense.call(
        &app,
        Expense {
            cents: 4200,
            what: "a conference ticket".into(),
        },
    )?;
    until_asked(&app, &inv)?;
    println!("{}: {}", inv.id(), inv.progress()?);
    let person = {
        let app = app.clone();
        let id = inv.id();
        std::thread::spawn(move || {
            let approval = Approval {
                approved: true,
                by: "ana".into(),
            };
            app.send_event_with_key(id, "approve", "ana-decision", &approval)
        })
    };
    person
        .join()
        .map_err(|_| "the approver's thread panicked")??;
    println!("{}", inv.result_timeout(Duration::from_secs(30))?);
    worker.stop();
    Ok(())
}
