//! The command line: arguments, subcommands and their help.

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};
use wf_core::{InvocationId, Status};
use wf_store::StoreSpec;

use crate::value::HEURISTIC;

/// Inspect a wf store: workflows, invocation trees, journals, data, counts; retry failed
/// invocations, purge old workflows.
#[derive(Debug, Parser)]
#[command(
    name = "wf",
    version,
    about = "Inspect a wf store: workflows, invocation trees, journals, data and counts; retry failed invocations, purge old workflows, send events, export workflows; serve the web monitor",
    long_about = "Inspect a wf store: list workflows with status and age, show one workflow as a \
tree of invocations, read an invocation's journal and a workflow's data, count invocations by \
status, retry failed invocations, purge finished workflows, send events to waiting workflows, \
cancel workflow trees, export workflows for replay checks and repair a damaged log; `serve` \
shows it all in a browser (the web monitor).

Reading never takes the store's lock and never writes: it reads a snapshot of the store's log, \
so it works while workers run (a record being written at that moment is not shown yet). Only \
`retry`, `purge`, `send-event` and `cancel` write: while a process owns a file store they run \
in that process, through its control socket; otherwise wf opens the store itself. `repair` \
needs the store free.",
    after_help = "Examples:
  wf --store ./wf-data workflows --status failed
  wf --store ./wf-data show 0193c4e2-7b1a-7c3e-9f00-5d2a1b3c4d5e
  WF_STORE=file:./wf-data wf --json counts",
    arg_required_else_help = true,
    propagate_version = true
)]
pub(crate) struct Cli {
    /// The store: a file store directory (`./wf-data`, `/var/lib/app/wf`), `file:<dir>`, or a
    /// Redis URL (`redis://host:6379/`, `rediss://…`, `redis+cluster://h1:p1,h2:p2`); the forms
    /// `WF_STORE` takes.
    // `--help` must never show `WF_STORE`'s value: a Redis URL may hold a password.
    #[arg(
        long,
        short = 's',
        env = "WF_STORE",
        hide_env_values = true,
        global = true,
        value_name = "STORE"
    )]
    pub store: Option<String>,

    /// The app the store must belong to. A store records the app that first opened it; with
    /// `--app`, a store of another app is an error naming both.
    #[arg(long, env = "WF_APP_ID", global = true, value_name = "ID")]
    pub app: Option<String>,

    /// Print one JSON document instead of tables (for scripts).
    #[arg(long, global = true)]
    pub json: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// List workflows (newest first) with type, status, age and size.
    #[command(
        long_about = "List workflows, newest first: one row per workflow root with its \
id, type (the root's task), status (the root's), age, number of invocations and, for a \
sub-workflow, the workflow it was started from.

Example:
  wf --store ./wf-data workflows --status running --limit 20
  wf --store ./wf-data workflows --task order --status failed --older-than 1h"
    )]
    Workflows(WorkflowsArgs),

    /// Show one workflow as a tree of invocations.
    #[command(
        long_about = "Show one workflow as a tree of invocations: each invocation under the \
one that called it, with status, attempts, retries, when it was created, how long it took (or \
has been going), the worker holding its lease while it runs, its error and its result. \
Sub-workflows it started appear under their caller, marked [sub-workflow].

Given the id of an invocation that is not a workflow root, shows the workflow it belongs to.

Example:
  wf --store ./wf-data show 0193c4e2-7b1a-7c3e-9f00-5d2a1b3c4d5e"
    )]
    Show {
        /// The workflow's id (its root invocation's id).
        #[arg(value_name = "WORKFLOW_ID", value_parser = parse_id)]
        workflow: InvocationId,
    },

    /// Show an invocation's journal: the deterministic operations it recorded.
    #[command(long_about = format!("Show an invocation's journal: every operation its workflow \
context recorded (random(), uuid(), utc_now(), children started and their results, data reads), \
numbered in the order a replay answers them.

{HEURISTIC}

Example:
  wf --store ./wf-data journal 0193c4e2-7b1a-7c3e-9f00-5d2a1b3c4d5e"))]
    Journal {
        /// The invocation's id.
        #[arg(value_name = "INVOCATION_ID", value_parser = parse_id)]
        invocation: InvocationId,
    },

    /// Show a workflow's data: all keys and values, or one key's whole value.
    #[command(long_about = format!("Show a workflow's data (what its root wrote with set_data): \
every key with its value cut to fit a line, or, given a KEY, that one value whole.

{HEURISTIC}

Example:
  wf --store ./wf-data data 0193c4e2-7b1a-7c3e-9f00-5d2a1b3c4d5e progress"))]
    Data {
        /// The workflow's id (its root invocation's id).
        #[arg(value_name = "WORKFLOW_ID", value_parser = parse_id)]
        workflow: InvocationId,
        /// Show only this key, with its whole value.
        key: Option<String>,
    },

    /// Count invocations by status.
    #[command(
        long_about = "Count the store's invocations by status (every invocation of every \
workflow, children included).

Example:
  wf --store ./wf-data counts"
    )]
    Counts,

    /// Retry a failed invocation: a new attempt that replays its journal (needs the store to
    /// be free).
    #[command(
        long_about = "Retry a failed invocation: it becomes pending at once, with its task's \
retry budget anew, and the next worker that runs its task takes it. The new attempt replays \
the invocation's journal: values it drew and children that finished are not done again; the \
work from the failed step on runs again. Retry after fixing what made it fail (a deploy, an \
outside service back up).

A workflow that failed because a child failed replays that recorded failure; a failed child \
can be retried while its caller still waits on it, not once the caller has finished.

While a worker process owns a file store, the retry runs in that process, through its control \
socket; with no owner running, wf opens the store itself.

Example:
  wf --store ./wf-data retry 0193c4e2-7b1a-7c3e-9f00-5d2a1b3c4d5e"
    )]
    Retry {
        /// The failed invocation's id.
        #[arg(value_name = "INVOCATION_ID", value_parser = parse_id)]
        invocation: InvocationId,
    },

    /// Remove finished workflows older than a duration, or list them with --dry-run.
    #[command(
        long_about = "Remove workflows that finished longer ago than --older-than: every \
invocation final and the last of them final before that time; a workflow goes together with \
the sub-workflows started from it. Their invocations, journals and data are deleted and the log \
is compacted.

While a worker process owns a file store, the purge runs in that process, through its control \
socket; with no owner running, wf opens the store itself. --dry-run lists what would be removed \
and removes nothing; it reads a snapshot.

Example:
  wf --store ./wf-data purge --older-than 7d --dry-run
  wf --store ./wf-data purge --older-than 7d"
    )]
    Purge {
        /// How long ago a workflow must have finished, e.g. 30m, 12h, 7d, 1h30m (units: ms, s,
        /// m, h, d, w).
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        older_than: Duration,
        /// List the workflows a purge would remove; remove nothing.
        #[arg(long)]
        dry_run: bool,
    },

    /// Send an event to a waiting workflow.
    #[command(
        long_about = "Send an event to an invocation (a workflow is addressed by its id): the \
body waiting for it with wf.wait_event(NAME) gets PAYLOAD, a JSON value, decoded as the type it \
asked for. An event sent before the body waits for it is kept until it does. With --key, sending \
again is harmless: the same key stores one event.

While a worker process owns a file store, the event goes through that process's control \
socket and wakes the waiting body at once; with no owner running, wf stores it and the workflow \
takes it when workers start again.

Examples:
  wf --store ./wf-data send-event 0193c4e2-7b1a-7c3e-9f00-5d2a1b3c4d5e approve true
  wf --store ./wf-data send-event 0193c4e2-... approve '{\"by\": \"ana\"}' --key approval-17"
    )]
    SendEvent(SendEventArgs),

    /// Cancel a workflow tree: an invocation and everything it started.
    #[command(
        long_about = "Cancel an invocation and everything it started, recursively (a workflow is \
addressed by its id): pending, waiting and retrying members end cancelled at once; a running \
member is asked to stop and ends cancelled at its next commit (its body gets WfError::Cancelled \
from its next workflow operation and may run compensating steps first). Cancelling a finished \
invocation, or cancelling again, is harmless: it says so and changes nothing.

While a process owns a file store, the cancellation runs in that process, through its \
control socket (its running bodies are told at once); a Redis store is shared with running \
workers (they learn of it at their next lease renewal).

Examples:
  wf --store ./wf-data cancel 0193c4e2-7b1a-7c3e-9f00-5d2a1b3c4d5e
  wf --store redis://127.0.0.1:6379/ cancel 0193c4e2-... --reason 'the customer gave up'"
    )]
    Cancel(CancelArgs),

    /// Export workflows with their journals to a JSON file, for replay checks in CI.
    #[command(
        long_about = "Write the given workflows (each with its invocations, their journals and \
the sub-workflows it started) as one JSON document, to stdout or --output. A test replays them \
against new code with wf::testing::replay_check, to catch a change that would break workflows \
in flight before it is deployed. Reads a snapshot: works while workers run.

Examples:
  wf --store ./wf-data export --all --output tests/fixtures/production.json
  wf --store ./wf-data export 0193c4e2-7b1a-7c3e-9f00-5d2a1b3c4d5e > one.json"
    )]
    Export(ExportArgs),

    /// Cut a damaged end off a file store's log, keeping everything before it (needs the store
    /// to be free).
    #[command(
        long_about = "Repair a file store whose log is damaged at its end. Opening a store cuts \
a torn tail (what one interrupted write leaves) by itself; anything more, or damage followed by \
valid records, makes opening fail with 'corrupt at byte offset N'. Repair saves every byte from \
the first unreadable record on to wf.log.cut-N next to the log, cuts them off, and reports the \
offset, how many bytes it dropped and where it saved them. Changes recorded in the cut part are \
lost from the store (restore from a backup if you need them). A whole log is left as it is.

Needs the store to be free: stop the process that owns it first.

Example:
  wf --store ./wf-data repair"
    )]
    Repair,

    /// Serve the web monitor: workflows as trees and timelines in a browser.
    #[command(
        long_about = "Serve the web monitor: the workflows (counted by status, filtered, in \
pages), each workflow as a tree and an SVG timeline that updates while it runs, each invocation \
with its journal, data and error, and the actions retry, cancel and purge (with a dry run), each \
behind a confirmation. It reads the store as the other commands do (a snapshot of a file store, \
so workers may run) and acts through the owner of a file store when one runs.

It listens on 127.0.0.1 only, unless --bind says otherwise. It has no authentication unless \
--token is given: then every request needs the token, as the header `Authorization: Bearer \
<token>` or, in a browser, once as `?token=<token>` in the address (the printed address has it), \
which the browser keeps in a cookie. Binding to another address without a token prints a warning.

Example:
  wf --store ./wf-data/orders/store serve
  WF_MONITOR_TOKEN=$(openssl rand -hex 16) wf --store redis://127.0.0.1:6379/ serve --bind 0.0.0.0:7070"
    )]
    Serve(ServeArgs),
}

/// Options of `wf send-event`.
#[derive(Debug, Args)]
pub(crate) struct SendEventArgs {
    /// The invocation (a workflow's id for its root).
    #[arg(value_name = "INVOCATION_ID", value_parser = parse_id)]
    pub invocation: InvocationId,
    /// The event's name, as the body waits for it.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The payload: a JSON value (`true`, `42`, `"text"`, `{"by": "ana"}`).
    #[arg(value_name = "PAYLOAD")]
    pub payload: String,
    /// An idempotency key: the same key sent again stores nothing new.
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
}

/// Options of `wf serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The address to listen on (port 0: any free port, printed).
    #[arg(long, default_value = "127.0.0.1:7070", value_name = "ADDR:PORT")]
    pub bind: std::net::SocketAddr,

    /// Require this token on every request. Prefer `WF_MONITOR_TOKEN`: a command line is
    /// visible to other users of the machine (`ps`).
    #[arg(
        long,
        env = "WF_MONITOR_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
}

/// Options of `wf cancel`.
#[derive(Debug, Args)]
pub(crate) struct CancelArgs {
    /// The invocation whose tree to cancel (a workflow's id for the whole workflow).
    #[arg(value_name = "INVOCATION_ID", value_parser = parse_id)]
    pub invocation: InvocationId,
    /// Why: the cancelled invocations' error message.
    #[arg(long, value_name = "TEXT", default_value = "cancelled with wf cancel")]
    pub reason: String,
}

/// Options of `wf export`.
#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// The workflows to export (their ids; an invocation's id exports its workflow).
    #[arg(value_name = "WORKFLOW_ID", value_parser = parse_id, required_unless_present = "all")]
    pub workflows: Vec<InvocationId>,
    /// Export every workflow of the store.
    #[arg(long, conflicts_with = "workflows")]
    pub all: bool,
    /// Write to this file instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Options of `wf workflows`.
#[derive(Debug, Args)]
pub(crate) struct WorkflowsArgs {
    /// Only workflows whose root has this status.
    #[arg(long, value_name = "STATUS", value_parser = status_parser())]
    pub status: Option<Status>,
    /// Only workflows of this type (the task of their root).
    #[arg(long, value_name = "TASK")]
    pub task: Option<String>,
    /// Only workflows started at least this long ago, e.g. 1h, 7d.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub older_than: Option<Duration>,
    /// Only workflows started less than this long ago, e.g. 30m.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub newer_than: Option<Duration>,
    /// Show at most this many (newest first); 0 shows all.
    #[arg(long, short = 'n', value_name = "N", default_value_t = 100)]
    pub limit: usize,
}

/// A store this inspector reads: a file store directory or a Redis URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// A file store directory.
    File(PathBuf),
    /// A Redis URL (possibly with a password: printed through `StoreSpec`, which hides it).
    Redis(String),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::File(dir) => write!(f, "{}", dir.display()),
            Target::Redis(url) => write!(f, "{}", StoreSpec::Redis(url.clone())),
        }
    }
}

/// Parses `--store` / `WF_STORE` (the forms every wf tool takes, `wf_store::StoreSpec`) into
/// what this inspector can read: a file store directory or a Redis store.
pub(crate) fn store_target(text: &str) -> Result<Target, String> {
    match StoreSpec::parse(text).map_err(|e| format!("--store: {e}"))? {
        StoreSpec::File(dir) => Ok(Target::File(dir)),
        StoreSpec::Redis(url) => Ok(Target::Redis(url)),
        StoreSpec::Memory => Err(
            "a memory store lives inside its process and cannot be inspected from outside; \
             point --store at a file store directory or a Redis URL"
                .into(),
        ),
        other => Err(format!(
            "{other}: this inspector cannot read a {} store",
            other.backend()
        )),
    }
}

/// Parses an invocation or workflow id (a UUID).
fn parse_id(s: &str) -> Result<InvocationId, String> {
    s.trim().parse().map_err(|e| {
        format!("not a valid invocation id: {s} ({e}); ids are UUIDs as `wf workflows` lists them")
    })
}

fn status_parser() -> impl clap::builder::TypedValueParser<Value = Status> {
    PossibleValuesParser::new(Status::ALL.map(Status::as_str)).map(|name| {
        Status::ALL
            .into_iter()
            .find(|s| s.as_str() == name)
            .unwrap_or(Status::Pending)
    })
}

/// Parses `30m`, `12h`, `7d`, `1h30m`, `0s`: number and unit pairs (ms, s, m, h, d, w).
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let text = s.trim();
    let bad = |why: &str| format!("{s:?} is not a duration: {why} (examples: 30m, 12h, 7d, 1h30m)");
    if text.is_empty() {
        return Err(bad("it is empty"));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad("expected a number"));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| bad("the number is too large"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            "d" => Duration::from_secs(86_400),
            "w" => Duration::from_secs(7 * 86_400),
            "" => return Err(bad("a unit is missing")),
            _ => return Err(bad("units are ms, s, m, h, d and w")),
        };
        rest = &rest[unit_len..];
        let part = u32::try_from(n)
            .ok()
            .and_then(|n| unit.checked_mul(n))
            .ok_or_else(|| bad("it is too long"))?;
        total = total
            .checked_add(part)
            .ok_or_else(|| bad("it is too long"))?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        for bad in ["", "7", "d", "7x", "1h30", "-1s", "99999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn store_specs_parse() {
        assert_eq!(store_target("file:./a"), Ok(Target::File("./a".into())));
        assert_eq!(store_target("/x/y"), Ok(Target::File("/x/y".into())));
        assert_eq!(
            store_target("./wf-data"),
            Ok(Target::File("./wf-data".into()))
        );
        assert_eq!(
            store_target("redis://127.0.0.1:6379"),
            Ok(Target::Redis("redis://127.0.0.1:6379".into()))
        );
        let shown = store_target("redis://u:hunter2@h:1").unwrap().to_string();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(store_target("file:").is_err());
        assert!(
            store_target("memory")
                .unwrap_err()
                .contains("cannot be inspected")
        );
        assert!(store_target("s3://bucket").is_err());
        assert!(store_target("wf-data").unwrap_err().contains("./wf-data"));
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
