//! The order workflow: charge, reserve stock, ship and email, each a child task, for a batch of
//! orders on the embedded file store. Interrupt it (Ctrl-C or `kill -9`) halfway and run it
//! again: it resumes where it stopped, replaying the finished steps instead of repeating them.
//!
//! ```text
//! cargo run --release --example order                # 20 orders, store in ./wf-data/orders
//! cargo run --release --example order -- --orders 200 --step-ms 20
//! cargo run --release --example order -- --fresh     # discard the store and start over
//! ```
//!
//! Every step appends a line to `effects.log` in the store directory, standing in for the outside
//! world (a payment provider, a warehouse, a mailer). At the end the example checks it: each step
//! of each order happened once, except a step that was in flight at the moment of a kill, which
//! at-least-once execution runs again (make such steps idempotent, e.g. with the order's
//! deterministic id as the payment provider's idempotency key).

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use wf::prelude::*;
use wf::{Status, uuid::Uuid};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Order {
    number: u32,
    customer: String,
    cents: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Step {
    order_id: Uuid,
    number: u32,
}

struct Args {
    orders: u32,
    dir: PathBuf,
    step: Duration,
    fresh: bool,
}

const HELP: &str = "\
Process a batch of orders (charge, reserve stock, ship, email) as durable workflows on the
embedded file store. Interrupt it (Ctrl-C or kill -9) and run the same command again: it
resumes, printing `replay` for steps taken from the journal and `run` for steps executed.

usage: cargo run --release --example order -- [OPTIONS]

options:
  --orders N     orders in the batch (default 20; ignored when resuming a batch)
  --dir DIR      the store directory (default wf-data/orders)
  --step-ms MS   how long each step pretends to work, in milliseconds (default 150)
  --fresh        delete the store directory first and start a new batch
  -h, --help     this text
";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        orders: 20,
        dir: PathBuf::from("wf-data/orders"),
        step: Duration::from_millis(150),
        fresh: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--orders" => {
                args.orders = value("--orders")?
                    .parse()
                    .map_err(|e| format!("--orders: {e}"))?
            }
            "--dir" => args.dir = PathBuf::from(value("--dir")?),
            "--step-ms" => {
                args.step = Duration::from_millis(
                    value("--step-ms")?
                        .parse()
                        .map_err(|e| format!("--step-ms: {e}"))?,
                )
            }
            "--fresh" => args.fresh = true,
            "-h" | "--help" => {
                print!("{HELP}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}; try --help")),
        }
    }
    Ok(args)
}

/// The outside world: a line per side effect, synced so a kill cannot lose it.
fn effect(dir: &Path, line: &str) -> Result<(), TaskError> {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("effects.log"))?;
    // One write per line: O_APPEND keeps concurrent lines whole only if each is a single write.
    f.write_all(format!("{line}\n").as_bytes())?;
    f.sync_data()?;
    Ok(())
}

/// Registers a step task that does its work (a pause standing in for a remote call) and records
/// its effect.
fn step_task(
    app: &App,
    name: &'static str,
    dir: PathBuf,
    pause: Duration,
) -> Result<Task<Step, String>, WfError> {
    app.task_with(
        TaskOptions::new(name).max_retries(3),
        move |_ctx: &TaskContext, s: Step| -> Result<String, TaskError> {
            std::thread::sleep(pause);
            effect(&dir, &format!("{name} {}", s.order_id))?;
            eprintln!("  run     {name:<8} order #{:<4} {}", s.number, s.order_id);
            Ok(format!("{name}-ok-{}", &s.order_id.to_string()[..8]))
        },
    )
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    if args.fresh && args.dir.exists() {
        std::fs::remove_dir_all(&args.dir)?;
    }
    std::fs::create_dir_all(&args.dir)?;
    let app = App::builder()
        .app_id("orders")
        .file(args.dir.join("store"))
        .lease_duration(Duration::from_secs(2))
        .build()?;

    let dir = args.dir.clone();
    let charge = step_task(&app, "charge", dir.clone(), args.step)?;
    let reserve = step_task(&app, "reserve", dir.clone(), args.step)?;
    let ship = step_task(&app, "ship", dir.clone(), args.step)?;
    let email = step_task(&app, "email", dir.clone(), args.step)?;

    // One order: a sub-workflow with its own data (progress) and a deterministic order id.
    let order = app.task_with(
        TaskOptions::new("order").force_new_workflow(true),
        move |ctx: &TaskContext, o: Order| -> Result<String, TaskError> {
            let wf = ctx.wf();
            let order_id = wf.uuid(); // the same id on every replay: safe as an idempotency key
            let placed_at = wf.utc_now();
            let step = Step {
                order_id,
                number: o.number,
            };
            let mut receipts = Vec::new();
            for (name, task) in [
                ("charge", &charge),
                ("reserve", &reserve),
                ("ship", &ship),
                ("email", &email),
            ] {
                let replaying = wf.deterministic().is_replaying();
                wf.set_data("progress", name)?;
                receipts.push(wf.execute_task(task, step.clone())?);
                if replaying {
                    eprintln!(
                        "  replay  {name:<8} order #{:<4} (recorded result, not run again)",
                        o.number
                    );
                }
            }
            wf.set_data("progress", "done")?;
            Ok(format!(
                "order #{} for {} ({} cents) placed {placed_at}: {}",
                o.number,
                o.customer,
                o.cents,
                receipts.join(", ")
            ))
        },
    )?;

    // The batch: starts every order as a child and waits for all of them, holding no worker.
    let batch = app.task(
        "order_batch",
        move |ctx: &TaskContext, n: u32| -> Result<u32, TaskError> {
            let wf = ctx.wf();
            let handles = (1..=n)
                .map(|i| {
                    wf.start_task(
                        &order,
                        Order {
                            number: i,
                            customer: format!("customer-{i}"),
                            cents: 1000 + u64::from(i) * 7,
                        },
                    )
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(wf.join_all(&handles)?.len() as u32)
        },
    )?;

    // Resume an unfinished batch if the store has one; otherwise start a new one.
    let store = app.store().clone();
    let unfinished = store
        .workflows()?
        .into_iter()
        .find(|r| r.spec.task.as_str() == "order_batch" && !r.status().is_final());
    let (inv, total) = match unfinished {
        Some(r) => {
            let n: u32 = wf::core::decode(&r.spec.args)?;
            eprintln!(
                "resuming batch {} of {n} orders (found in {})",
                r.id(),
                args.dir.display()
            );
            (Invocation::<u32>::attach(&app, r.id()), n)
        }
        None => {
            eprintln!(
                "starting a batch of {} orders in {}; interrupt me and run me again",
                args.orders,
                args.dir.display()
            );
            (batch.call(&app, args.orders)?, args.orders)
        }
    };

    let worker = app.worker().threads(4).start()?;
    let started = Instant::now();
    loop {
        match inv.result_timeout(Duration::from_millis(250)) {
            Ok(done) => {
                progress(total, total, started);
                eprintln!();
                println!("batch finished: {done} orders in {:.1?}", started.elapsed());
                break;
            }
            Err(WfError::Timeout { .. }) => {
                let done = store
                    .workflows()?
                    .iter()
                    .filter(|r| r.spec.task.as_str() == "order" && r.status() == Status::Success)
                    .count();
                progress(done as u32, total, started);
            }
            Err(e) => return Err(e.into()),
        }
    }
    worker.stop();
    check_effects(&args.dir)?;
    Ok(())
}

fn progress(done: u32, total: u32, started: Instant) {
    let width = 30usize;
    let filled = (done as usize * width)
        .checked_div(total as usize)
        .unwrap_or(width);
    eprint!(
        "\r[{}{}] {done}/{total} orders, {:.1?}   ",
        "#".repeat(filled),
        ".".repeat(width - filled),
        started.elapsed()
    );
    let _ = std::io::stderr().flush();
}

/// Reads the outside world's log and reports steps that happened more than once.
fn check_effects(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let log = std::fs::read_to_string(dir.join("effects.log")).unwrap_or_default();
    let mut seen: BTreeMap<&str, u32> = BTreeMap::new();
    for line in log.lines() {
        *seen.entry(line).or_default() += 1;
    }
    let repeated: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    println!(
        "{} side effects, {} distinct; repeated (in flight when killed): {}",
        log.lines().count(),
        seen.len(),
        repeated.len()
    );
    for (line, n) in repeated {
        println!("  {n}x {line}");
    }
    Ok(())
}
