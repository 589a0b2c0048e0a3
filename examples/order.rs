//! The order workflow: charge, reserve stock, ship and email, each a child task, for a batch of
//! orders on the embedded file store. Interrupt it (Ctrl-C or `kill -9`) halfway and run it
//! again: it resumes where it stopped, replaying the finished steps instead of repeating them.
//!
//! ```text
//! cargo run --release --example order                # 20 orders, in ./wf-data/orders
//! cargo run --release --example order -- --orders 200 --step-ms 20
//! cargo run --release --example order -- --fresh     # discard the store and start over
//! ```
//!
//! With Redis (feature `redis`), workers in several processes share the batch: start workers
//! with `--workers-only`, then the batch, all with the same `--store` URL:
//!
//! ```text
//! cargo run --release --features redis --example order -- --store redis://127.0.0.1:6379/ --workers-only
//! cargo run --release --features redis --example order -- --store redis://127.0.0.1:6379/ --workers-only
//! cargo run --release --features redis --example order -- --store redis://127.0.0.1:6379/
//! ```
//!
//! The batch is started with an idempotency key (`call_keyed`), so running the example again
//! finds the batch already in the store instead of starting a second one.
//!
//! Every step appends a line to `effects.log` in the data directory, standing in for the outside
//! world (a payment provider, a warehouse, a mailer). At the end the example checks it: each step
//! of each order happened once, except a step that was in flight at the moment of a kill, which
//! at-least-once execution runs again (make such steps idempotent, e.g. with the order's
//! deterministic id as the payment provider's idempotency key).
//!
//! Output: step lines and messages go to stderr, above a progress bar when stderr is a terminal
//! (no bar otherwise); the summary goes to stdout. Writing them can fail (a closed pipe, a full
//! disk) without failing any order: output is best effort, the workflow's work is not.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Display;
use std::fs::OpenOptions;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use wf::prelude::*;
use wf::{StoreSpec, WorkflowQuery, uuid::Uuid};

/// The batch's idempotency key: one batch per store.
const BATCH_KEY: &str = "order-batch";

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
    store: Option<StoreSpec>,
    step: Duration,
    fresh: bool,
    workers_only: bool,
}

const HELP: &str = "\
Process a batch of orders (charge, reserve stock, ship, email) as durable workflows on the
embedded file store. Interrupt it (Ctrl-C or kill -9) and run the same command again: it
resumes the same batch; steps finished before the interruption are replayed from the journal
(`replay`), the others run (`run`).

usage: cargo run --release --example order -- [OPTIONS]

options:
  --orders N      orders in the batch (default 20; a store that holds a batch resumes it)
  --dir DIR       the data directory: store and effects.log (default wf-data/orders)
  --store STORE   the store instead of DIR/store: memory, file:<dir>, a directory path, or a
                  redis:// URL (build with --features redis) that several processes share
  --workers-only  run workers for the batch's tasks and nothing else, until interrupted: start
                  two of these and one process without it, all with the same --store redis://…
  --step-ms MS    how long each step pretends to work, in milliseconds (default 150)
  --fresh         delete the data directory first and start a new batch
  -h, --help      this text
";

fn parse_args() -> Result<Option<Args>, String> {
    let mut args = Args {
        orders: 20,
        dir: PathBuf::from("wf-data/orders"),
        store: None,
        step: Duration::from_millis(150),
        fresh: false,
        workers_only: false,
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
            "--store" => {
                let text = value("--store")?;
                args.store = Some(text.parse().map_err(|e| format!("--store: {e}"))?);
            }
            "--step-ms" => {
                args.step = Duration::from_millis(
                    value("--step-ms")?
                        .parse()
                        .map_err(|e| format!("--step-ms: {e}"))?,
                )
            }
            "--fresh" => args.fresh = true,
            "--workers-only" => args.workers_only = true,
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}; try --help")),
        }
    }
    Ok(Some(args))
}

/// Where lines go: stderr, above the progress bar. Never fails and never panics: a closed pipe
/// or a full disk loses the line, not the order.
#[derive(Clone)]
struct Console {
    bar: ProgressBar,
}

impl Console {
    /// A bar on stderr when it is a terminal; none (lines only) otherwise.
    fn new() -> Self {
        let bar = match std::io::stderr().is_terminal() {
            true => ProgressBar::new(0),
            false => ProgressBar::hidden(),
        };
        if let Ok(style) =
            ProgressStyle::with_template("[{bar:30}] {pos}/{len} orders, {elapsed_precise}")
        {
            bar.set_style(style.progress_chars("#>."));
        }
        Self { bar }
    }

    /// Prints a line on stderr, above the bar.
    fn log(&self, line: impl Display) {
        self.bar.suspend(|| {
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        });
    }
}

/// Prints a line on stderr before the console exists.
fn console_note(line: impl Display) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Prints a line on stdout; a closed pipe is not an error of the batch.
fn say(line: impl Display) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
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
    console: Console,
    replays: Replays,
) -> Result<Task<Step, String>, WfError> {
    app.task_with(
        TaskOptions::new(name).max_retries(3),
        move |ctx: &TaskContext, s: Step| -> Result<String, TaskError> {
            std::thread::sleep(pause);
            effect(&dir, &format!("{name} {}", s.order_id))?;
            replays.ran(s.number, name);
            match ctx.attempt() {
                1 => console.log(format_args!(
                    "  run     {name:<8} order #{:<4} {}",
                    s.number, s.order_id
                )),
                n => console.log(format_args!(
                    "  rerun   {name:<8} order #{:<4} {} (attempt {n}: the previous one did not finish)",
                    s.number, s.order_id
                )),
            }
            Ok(format!("{name}-ok-{}", &s.order_id.to_string()[..8]))
        },
    )
}

/// What the order workflow reports about replays. A workflow body replays its journal every
/// time it is woken up (here: after each step), which is routine and not worth a line. What is
/// worth one is a step that an earlier process ran (before a crash or an interruption) and this
/// process takes from the journal instead of running it again: once per step.
#[derive(Clone, Default)]
struct Replays {
    /// Steps this process ran, by order number and step name.
    ran_here: Arc<Mutex<HashSet<(u32, &'static str)>>>,
    /// Replayed steps already reported.
    announced: Arc<Mutex<HashSet<(u32, &'static str)>>>,
}

impl Replays {
    fn ran(&self, order: u32, step: &'static str) {
        if let Ok(mut ran) = self.ran_here.lock() {
            ran.insert((order, step));
        }
    }

    /// True the first time a replayed step turns out to be one an earlier process ran.
    fn first_replay_of_earlier_run(&self, order: u32, step: &'static str) -> bool {
        let ran_here = self
            .ran_here
            .lock()
            .map(|ran| ran.contains(&(order, step)))
            .unwrap_or(true);
        !ran_here
            && self
                .announced
                .lock()
                .map(|mut seen| seen.insert((order, step)))
                .unwrap_or(false)
    }
}

fn main() {
    if let Err(e) = run() {
        let _ = writeln!(std::io::stderr(), "error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let Some(args) = parse_args()? else {
        let _ = write!(std::io::stdout(), "{HELP}");
        return Ok(());
    };
    if args.workers_only && args.fresh {
        return Err(
            "--fresh and --workers-only do not go together: a worker process only \
                    runs what the store holds"
                .into(),
        );
    }
    if args.fresh && args.dir.exists() {
        std::fs::remove_dir_all(&args.dir)?;
    }
    if args.fresh && matches!(args.store, Some(StoreSpec::Redis(_))) {
        console_note(
            "--fresh cleared the data directory only; a Redis store keeps its batch: add \
             ?ns=<a new name> to the URL for a new one",
        );
    }
    std::fs::create_dir_all(&args.dir)?;
    let spec = args
        .store
        .clone()
        .unwrap_or_else(|| StoreSpec::File(args.dir.join("store")));
    let app = App::builder()
        .app_id("orders")
        .store_spec(spec.clone())
        .lease_duration(Duration::from_secs(2))
        .build()?;

    let console = Console::new();
    let replays = Replays::default();
    let dir = args.dir.clone();
    let step = |name| {
        step_task(
            &app,
            name,
            dir.clone(),
            args.step,
            console.clone(),
            replays.clone(),
        )
    };
    let (charge, reserve, ship, email) = (
        step("charge")?,
        step("reserve")?,
        step("ship")?,
        step("email")?,
    );

    // One order: a sub-workflow with its own data (progress) and a deterministic order id.
    let seen = replays.clone();
    let log = console.clone();
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
                if replaying && seen.first_replay_of_earlier_run(o.number, name) {
                    log.log(format_args!(
                        "  replay  {name:<8} order #{:<4} (done earlier or by another process: recorded result, not run again)",
                        o.number
                    ));
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

    if args.workers_only {
        console.log(format_args!(
            "worker process {}: running the order tasks from {spec}; start the batch from \
             another process with the same --store (without --workers-only); Ctrl-C stops me",
            std::process::id()
        ));
        app.worker().threads(4).run()?;
        return Ok(());
    }

    // One batch per store: the key finds the batch an earlier run started.
    let (inv, total) = match batch.call_keyed(&app, BATCH_KEY, args.orders) {
        Ok(inv) => (inv, args.orders),
        Err(WfError::KeyConflict { existing, .. }) => {
            let n: u32 = app.invocation(existing)?.args()?;
            console.log(format_args!(
                "this store holds a batch of {n} orders, not {}: resuming it (--fresh starts over)",
                args.orders
            ));
            (Invocation::<u32>::attach(&app, existing), n)
        }
        Err(e) => return Err(e.into()),
    };
    match inv.was_created() {
        true => console.log(format_args!(
            "started batch {} of {total} orders in {spec}; interrupt me and run me again",
            inv.id()
        )),
        false => console.log(format_args!(
            "resuming batch {} of {total} orders from {spec}: steps done before the \
             interruption replay from the journal, steps in flight run again",
            inv.id()
        )),
    }

    console.bar.set_length(u64::from(total));
    let worker = app.worker().threads(4).start()?;
    let started = Instant::now();
    let done_orders = WorkflowQuery::new().task("order").status(Status::Success);
    let outcome = loop {
        match inv.result_timeout(Duration::from_millis(250)) {
            Ok(done) => break Ok(done),
            Err(WfError::Timeout { .. }) => {
                console
                    .bar
                    .set_position(app.workflows(&done_orders)?.matched as u64);
            }
            Err(e) => break Err(e),
        }
    };
    worker.stop();
    let done = outcome?;
    console.bar.set_position(u64::from(done));
    console.bar.finish_and_clear();
    say(format_args!(
        "batch finished: {done} orders in {:.1?}",
        started.elapsed()
    ));
    check_effects(&args.dir)?;
    if spec != StoreSpec::Memory {
        say(format_args!(
            "inspect it: cargo run -q -p wf-cli -- --store {spec} show {}",
            inv.id()
        ));
        say(format_args!(
            "or in a browser, as trees and timelines: cargo run -q -p wf-cli -- --store {spec} serve"
        ));
    }
    Ok(())
}

/// Reads the outside world's log and reports steps that happened more than once.
fn check_effects(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let log = match std::fs::read_to_string(dir.join("effects.log")) {
        Ok(log) => log,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e.into()),
    };
    let mut seen: BTreeMap<&str, u32> = BTreeMap::new();
    for line in log.lines() {
        *seen.entry(line).or_default() += 1;
    }
    let repeated: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    say(format_args!(
        "{} side effects, {} distinct; repeated (in flight when interrupted): {}",
        log.lines().count(),
        seen.len(),
        repeated.len()
    ));
    for (line, n) in repeated {
        say(format_args!("  {n}x {line}"));
    }
    Ok(())
}
