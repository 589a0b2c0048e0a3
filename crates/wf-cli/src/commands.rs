//! Running a command: checks the store it names, hands it to the command's module (`workflows`,
//! `show`, `journal`, `data`, `admin`, `steer`, `repair`, `serve`), each of which returns its
//! whole output as text, and collects the notes for stderr. Also the output settings the
//! commands share ([`Out`]) and their JSON forms of times and failures.

use std::cell::RefCell;
use std::time::SystemTime;

use serde_json::{Value, json};
use wf_core::{Failure as StoredFailure, Timestamp};
use wf_runtime::Inspector;

use crate::Failure;
use crate::cli::{Cli, Command, store_target};
use crate::fmt::rfc3339;
use crate::open::{check_app, open_read};
use crate::{admin, data, journal, show, workflows};

/// What a command prints: its output for stdout, and notes for stderr (that an id named an
/// invocation inside another workflow; where the store hardening lands, that a read ignored a
/// torn tail). `main` prints the notes first.
#[derive(Debug, Default)]
pub(crate) struct Printed {
    /// The output.
    pub(crate) stdout: String,
    /// One line each, without the `note: ` prefix.
    pub(crate) notes: Vec<String>,
}

/// Runs the command `cli` names and returns what to print.
pub(crate) fn run(cli: &Cli) -> Result<Printed, Failure> {
    let target = match cli.store.as_deref() {
        Some(s) => store_target(s).map_err(Failure::Usage)?,
        None => {
            return Err(Failure::Usage(
                "no store given: pass --store <DIR> (a file store directory) or --store \
                 redis://host:port/ (a Redis store), or set WF_STORE"
                    .into(),
            ));
        }
    };
    if cli.app.as_deref().is_some_and(|a| a.trim().is_empty()) {
        return Err(Failure::Usage(
            "--app is empty: give an app id or leave it out".into(),
        ));
    }
    let now = Timestamp::from_system_time(SystemTime::now());
    let out = Out {
        json: cli.json,
        now,
        notes: RefCell::new(Vec::new()),
    };
    if let Command::Repair = cli.command {
        // Before any read: a store that needs a repair does not open for reading either.
        return Ok(Printed {
            stdout: crate::repair::repair(&out, &target)?,
            notes: out.notes.into_inner(),
        });
    }
    // Checks the store exists (opening it would create an empty one at a mistyped path) and
    // belongs to `--app`; notes a torn tail the snapshot ignored.
    let store = open_read(&target, &out)?;
    let store = &*store;
    check_app(&target, store, cli.app.as_deref())?;
    let reads = Inspector::new(store);
    let stdout = match &cli.command {
        Command::Purge {
            older_than,
            dry_run: true,
        } => admin::purge_dry_run(&out, &reads, *older_than),
        Command::Purge { older_than, .. } => admin::purge(&out, &target, *older_than),
        Command::Retry { invocation } => admin::retry(&out, &target, &reads, *invocation),
        Command::Workflows(args) => workflows::workflows(&out, &reads, args),
        Command::Show { workflow } => show::show(&out, &reads, store, *workflow),
        Command::Journal { invocation } => journal::journal(&out, store, *invocation),
        Command::Data { workflow, key } => data::data(&out, store, *workflow, key.as_deref()),
        Command::Counts => workflows::counts(&out, &reads),
        Command::SendEvent(args) => crate::steer::send_event(&out, &target, args),
        Command::Cancel(args) => crate::steer::cancel(&out, &target, args),
        Command::Export(args) => crate::steer::export(&out, store, args),
        Command::Repair => crate::repair::repair(&out, &target),
        Command::Serve(args) => crate::serve::serve(&target, args),
    }?;
    Ok(Printed {
        stdout,
        notes: out.notes.into_inner(),
    })
}

/// Output settings shared by the commands, and the notes they leave for stderr.
pub(crate) struct Out {
    pub(crate) json: bool,
    pub(crate) now: Timestamp,
    notes: RefCell<Vec<String>>,
}

impl Out {
    pub(crate) fn note(&self, line: String) {
        self.notes.borrow_mut().push(line);
    }

    pub(crate) fn json(&self, v: &Value) -> Result<String, Failure> {
        serde_json::to_string_pretty(v)
            .map(|s| s + "\n")
            .map_err(|e| Failure::Runtime(format!("cannot encode JSON output: {e}")))
    }
}

/// A time for JSON output (RFC 3339).
pub(crate) fn ts_json(ts: Timestamp) -> Value {
    json!(rfc3339(ts))
}

/// A stored failure for JSON output: its kind and message.
pub(crate) fn failure_json(f: &StoredFailure) -> Value {
    json!({ "kind": f.kind.to_string(), "message": f.message })
}
