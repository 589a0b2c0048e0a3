//! `wf retry` and `wf purge` (with its dry run): the commands that change invocations through
//! [`wf_runtime::Admin`].

use std::time::Duration;

use serde_json::{Value, json};
use wf_core::{InvocationId, Timestamp};
use wf_runtime::{Admin, Inspector};

use crate::Failure;
use crate::cli::Target;
use crate::commands::{Out, ts_json};
use crate::fmt::utc;
use crate::open::{managed, open_for_changes};
use crate::workflows::{summary_json, summary_table};

pub(crate) fn purge_dry_run(
    out: &Out,
    reads: &Inspector<'_>,
    older_than: Duration,
) -> Result<String, Failure> {
    let listed = managed(None, reads.purgeable(older_than, out.now))?;
    let by = Timestamp(out.now.0.saturating_sub(older_than.as_millis() as u64));
    if out.json {
        let list: Vec<Value> = listed.iter().map(|w| summary_json(out, w)).collect();
        return out.json(&json!({
            "dry_run": true,
            "would_purge": list.len(),
            "finished_by": ts_json(by),
            "workflows": list,
        }));
    }
    let mut text = format!(
        "would purge {} finished workflow{} (finished by {}); nothing was removed\n",
        listed.len(),
        if listed.len() == 1 { "" } else { "s" },
        utc(by)
    );
    if listed.is_empty() {
        return Ok(text);
    }
    text.push('\n');
    let t = summary_table(out, &listed);
    text.push_str(&t.render());
    Ok(text)
}

pub(crate) fn retry(
    out: &Out,
    target: &Target,
    reads: &Inspector<'_>,
    id: InvocationId,
) -> Result<String, Failure> {
    // Read first, so an unknown id or a refused retry says so without taking the store.
    let task = managed(None, reads.invocation(id))?.task().clone();
    let store = open_for_changes(target)?;
    managed(Some(target), Admin::new(&*store).retry(id, out.now))?;
    if out.json {
        return out.json(
            &json!({ "retried": id.to_string(), "task": task.as_str(), "status": "pending" }),
        );
    }
    Ok(format!(
        "retried {id}: pending again; a worker that runs task '{task}' takes it and replays its journal\n"
    ))
}

pub(crate) fn purge(out: &Out, target: &Target, older_than: Duration) -> Result<String, Failure> {
    let store = open_for_changes(target)?;
    let purged = managed(
        Some(target),
        Admin::new(&*store).purge_finished(older_than, out.now),
    )?;
    let before = Timestamp(out.now.0.saturating_sub(older_than.as_millis() as u64));
    if out.json {
        return out.json(&json!({ "purged": purged, "finished_before": ts_json(before) }));
    }
    Ok(format!(
        "purged {purged} finished workflow{} (finished by {})\n",
        if purged == 1 { "" } else { "s" },
        utc(before)
    ))
}
