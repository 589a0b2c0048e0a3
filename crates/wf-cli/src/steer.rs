//! The commands that reach into workflows: `send-event` and `cancel` (write, through the owner
//! of a file store when one runs) and `export` (reads a snapshot).

use serde_json::{Value, json};
use wf_store::{EventSent, NewEvent, StoreRead, WorkflowExport};

use crate::Failure;
use crate::cli::{CancelArgs, ExportArgs, SendEventArgs, Target};
use crate::commands::Out;
use crate::open::{open_for_changes, read};

/// `wf send-event`: stores an event for an invocation.
pub(crate) fn send_event(
    out: &Out,
    target: &Target,
    args: &SendEventArgs,
) -> Result<String, Failure> {
    let value: Value = serde_json::from_str(&args.payload).map_err(|e| {
        Failure::Usage(format!(
            "the payload {:?} is not JSON ({e}); quote it for the shell, e.g. '\"yes\"', 'true' or \
             '{{\"by\": \"ana\"}}'",
            args.payload
        ))
    })?;
    if args.name.is_empty() {
        return Err(Failure::Usage("the event name is empty".into()));
    }
    let payload = serde_json::to_vec(&value)
        .map_err(|e| Failure::Runtime(format!("cannot encode the payload: {e}")))?;
    let store = open_for_changes(target)?;
    let event = NewEvent {
        name: args.name.clone(),
        payload,
        key: args.key.clone(),
    };
    let sent = read(None, store.send_event(args.invocation, event, out.now))?;
    let (seq, stored) = match sent {
        EventSent::Stored { seq } => (seq, true),
        EventSent::AlreadyStored { seq } => (seq, false),
    };
    if out.json {
        return out.json(&json!({
            "invocation": args.invocation.to_string(),
            "name": args.name,
            "seq": seq,
            "stored": stored,
        }));
    }
    Ok(match stored {
        true => format!(
            "event {:?} stored as #{seq} for invocation {}\n",
            args.name, args.invocation
        ),
        false => format!(
            "event {:?} with key {:?} was already stored as #{seq} for invocation {}: nothing \
             changed\n",
            args.name,
            args.key.as_deref().unwrap_or_default(),
            args.invocation
        ),
    })
}

/// `wf cancel`: cancels an invocation's tree.
pub(crate) fn cancel(out: &Out, target: &Target, args: &CancelArgs) -> Result<String, Failure> {
    let store = open_for_changes(target)?;
    let report = read(
        None,
        store.cancel_tree(args.invocation, &args.reason, out.now),
    )?;
    if out.json {
        let ids = |v: &[wf_core::InvocationId]| v.iter().map(|i| i.to_string()).collect::<Vec<_>>();
        return out.json(&json!({
            "invocation": args.invocation.to_string(),
            "status_before": report.status_before.as_str(),
            "was_final": report.was_final(),
            "cancelled": ids(&report.cancelled),
            "stopping": ids(&report.stopping),
            "already_stopping": ids(&report.already_stopping),
        }));
    }
    Ok(format!("{report}\n"))
}

/// `wf export`: the workflows' trees with their journals, as JSON.
pub(crate) fn export(
    out: &Out,
    store: &dyn StoreRead,
    args: &ExportArgs,
) -> Result<String, Failure> {
    let export = match args.all {
        true => read(None, WorkflowExport::all(store))?,
        false => read(None, WorkflowExport::from_store(store, &args.workflows))?,
    };
    let text = serde_json::to_string_pretty(&export)
        .map_err(|e| Failure::Runtime(format!("cannot encode the export: {e}")))?
        + "\n";
    let Some(path) = &args.output else {
        return Ok(text);
    };
    std::fs::write(path, text)
        .map_err(|e| Failure::Runtime(format!("cannot write {}: {e}", path.display())))?;
    let (invocations, workflows) = (export.invocations.len(), export.workflows().len());
    if out.json {
        return out.json(&json!({
            "file": path.display().to_string(),
            "workflows": workflows,
            "invocations": invocations,
        }));
    }
    Ok(format!(
        "exported {workflows} workflow(s), {invocations} invocation(s) to {}\n",
        path.display()
    ))
}
