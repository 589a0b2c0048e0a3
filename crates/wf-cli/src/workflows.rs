//! `wf workflows` and `wf counts`: the store's workflows, listed, and its invocations counted
//! by status.

use serde_json::{Value, json};
use wf_runtime::{Inspector, WorkflowQuery, WorkflowSummary};

use crate::Failure;
use crate::cli::WorkflowsArgs;
use crate::commands::{Out, ts_json};
use crate::fmt::{Table, age, between};
use crate::open::managed;

pub(crate) fn workflows(
    out: &Out,
    ins: &Inspector<'_>,
    args: &WorkflowsArgs,
) -> Result<String, Failure> {
    let mut query = WorkflowQuery::new();
    if let Some(status) = args.status {
        query = query.status(status);
    }
    if let Some(task) = &args.task {
        query = query.task(task);
    }
    if let Some(age) = args.older_than {
        query = query.older_than(age);
    }
    if let Some(age) = args.newer_than {
        query = query.newer_than(age);
    }
    if args.limit > 0 {
        query = query.limit(args.limit);
    }
    let list = managed(None, ins.workflows(&query, out.now))?;
    let total = list.matched;
    let rows = &list.workflows;
    if out.json {
        let list: Vec<Value> = rows.iter().map(|w| summary_json(out, w)).collect();
        return out.json(&json!({ "total": total, "workflows": list }));
    }
    if rows.is_empty() {
        return Ok(match args.status {
            Some(s) => format!("no {s} workflows\n"),
            None => "no workflows\n".into(),
        });
    }
    let t = summary_table(out, rows);
    let mut text = t.render();
    if rows.len() < total {
        text.push_str(&format!(
            "({} of {total} shown, newest first; --limit 0 shows all)\n",
            rows.len()
        ));
    }
    Ok(text)
}

/// One workflow of a list, for JSON.
pub(crate) fn summary_json(out: &Out, w: &WorkflowSummary) -> Value {
    json!({
        "id": w.id.to_string(),
        "type": w.workflow_type.as_str(),
        "status": w.status.as_str(),
        "created_at": ts_json(w.created_at),
        "updated_at": ts_json(w.updated_at),
        "age_ms": between(w.created_at, out.now).as_millis() as u64,
        "invocations": w.invocations,
        "parent_workflow": w.parent_workflow.map(|p| p.to_string()),
    })
}

/// A list of workflows as a table: id, type, status, age, size, parent workflow.
pub(crate) fn summary_table(out: &Out, rows: &[WorkflowSummary]) -> Table {
    let mut t = Table::new(&[
        "WORKFLOW",
        "TYPE",
        "STATUS",
        ">AGE",
        ">INVOCATIONS",
        "SUB-WORKFLOW OF",
    ]);
    for w in rows {
        t.row(vec![
            w.id.to_string(),
            w.workflow_type.to_string(),
            w.status.to_string(),
            age(between(w.created_at, out.now)),
            w.invocations.to_string(),
            w.parent_workflow
                .map_or_else(|| "-".into(), |p| p.to_string()),
        ]);
    }
    t
}

pub(crate) fn counts(out: &Out, ins: &Inspector<'_>) -> Result<String, Failure> {
    let counts = managed(None, ins.counts())?;
    if out.json {
        let map: serde_json::Map<String, Value> = counts
            .iter()
            .map(|(s, n)| (s.as_str().to_owned(), json!(n)))
            .collect();
        return out.json(&json!({ "counts": map, "total": counts.total() }));
    }
    let mut t = Table::new(&["STATUS", ">INVOCATIONS"]);
    for (s, n) in counts.iter() {
        t.row(vec![s.to_string(), n.to_string()]);
    }
    t.row(vec!["total".into(), counts.total().to_string()]);
    Ok(t.render())
}
