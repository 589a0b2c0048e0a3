//! `wf show`: one workflow as a tree of invocations, each with where it stands (pending,
//! leased, retrying, waiting), its error and its result.

use serde_json::{Value, json};
use wf_core::{InvocationId, Status};
use wf_runtime::{Inspector, TreeNode};
use wf_store::{InvocationRecord, StoreRead};

use crate::Failure;
use crate::commands::{Out, failure_json, ts_json};
use crate::fmt::{Table, VALUE_WIDTH, age, between, span, utc};
use crate::open::managed;
use crate::value::{clip, render};

/// Tree-drawing prefixes for nodes listed depth first (given by their depths): for each node, the prefix of its own row
/// (`├─ `, `└─ ` after its ancestors' rails) and the one for lines under it.
fn rails(depths: &[usize]) -> Vec<(String, String)> {
    // A node is the last of its siblings when no later node at its depth comes before one
    // shallower than it; found walking backwards.
    let mut last = vec![false; depths.len()];
    let mut sibling_below: Vec<bool> = Vec::new();
    for (i, &depth) in depths.iter().enumerate().rev() {
        sibling_below.resize(depth + 1, false);
        last[i] = !sibling_below[depth];
        sibling_below[depth] = true;
    }
    let mut open: Vec<bool> = Vec::new(); // per depth: is that ancestor's branch still open?
    depths
        .iter()
        .zip(&last)
        .map(|(&depth, &is_last)| {
            open.truncate(depth);
            let mut rail = String::new();
            for &o in open.iter().skip(1) {
                rail.push_str(if o { "│  " } else { "   " });
            }
            let (row, under) = match depth {
                0 => (String::new(), String::new()),
                _ => (
                    format!("{rail}{}", if is_last { "└─ " } else { "├─ " }),
                    format!("{rail}{}", if is_last { "   " } else { "│  " }),
                ),
            };
            open.push(!is_last);
            (row, under)
        })
        .collect()
}

pub(crate) fn show(
    out: &Out,
    ins: &Inspector<'_>,
    store: &dyn StoreRead,
    id: InvocationId,
) -> Result<String, Failure> {
    let tree = managed(None, ins.workflow(id))?;
    let Some(root) = tree.root() else {
        return Err(Failure::Runtime(format!(
            "the workflow of {id} was purged while it was read"
        )));
    };
    let root = root.record();
    let wf = root.id();
    if wf != id {
        out.note(format!(
            "{id} is an invocation of workflow {wf}; showing that workflow"
        ));
    }
    let nodes = tree.nodes();
    let in_subs = nodes
        .iter()
        .filter(|n| n.invocation.identity().workflow_id != wf)
        .count();
    if out.json {
        let list: Vec<Value> = nodes.iter().map(|n| invocation_json(out, n)).collect();
        return out.json(&json!({
            "workflow": {
                "id": wf.to_string(),
                "type": root.spec.identity.workflow_type.as_str(),
                "status": root.status().as_str(),
                "parent_workflow": root.spec.identity.parent_workflow_id.map(|p| p.to_string()),
                "created_at": ts_json(root.spec.created_at),
                "updated_at": ts_json(root.state.updated_at),
            },
            "invocations": list,
        }));
    }
    let mut text = format!(
        "workflow {wf}  type {}  status {}  created {} ({} ago)\n",
        root.spec.identity.workflow_type,
        root.status(),
        utc(root.spec.created_at),
        age(between(root.spec.created_at, out.now)),
    );
    if let Some(p) = root.spec.identity.parent_workflow_id {
        text.push_str(&format!("sub-workflow of {p}\n"));
    }
    text.push_str(&format!(
        "{} invocations{}\n\n",
        nodes.len(),
        match in_subs {
            0 => String::new(),
            n => format!(" ({n} in sub-workflows)"),
        }
    ));
    let mut t = Table::new(&[
        "INVOCATION",
        "TASK",
        "STATUS",
        ">ATTEMPTS",
        ">RETRIES",
        "CREATED",
        ">DURATION",
        "UPDATED",
    ]);
    let depths: Vec<usize> = nodes.iter().map(|n| n.depth).collect();
    for (n, (prefix, under)) in nodes.iter().zip(rails(&depths)) {
        let r = n.invocation.record();
        let s = &r.state;
        t.row(vec![
            format!("{prefix}{}", r.id()),
            match n.subworkflow_root {
                true => format!("{} [sub-workflow]", r.spec.task),
                false => r.spec.task.to_string(),
            },
            s.status.to_string(),
            s.attempts.to_string(),
            s.retries.to_string(),
            utc(r.spec.created_at),
            duration_text(out, r),
            format!("{} ago", age(between(s.updated_at, out.now))),
        ]);
        let pad = format!("{under}   ");
        if s.status == Status::Pending {
            t.note(match s.not_before.filter(|at| *at > out.now) {
                Some(at) => format!(
                    "{pad}pending until {} (in {}), then waiting for a worker that runs task '{}'",
                    utc(at),
                    span(between(out.now, at)),
                    r.spec.task
                ),
                None => format!(
                    "{pad}pending — waiting for a worker that runs task '{}'",
                    r.spec.task
                ),
            });
        }
        if let Some(lease) = &s.lease {
            let left = between(out.now, lease.expires_at);
            t.note(format!(
                "{pad}lease: {} (expires {})",
                lease.worker,
                match left.is_zero() {
                    true => "now: expired".to_owned(),
                    false => format!("in {}", span(left)),
                }
            ));
        }
        if s.status == Status::Retry
            && let Some(at) = s.not_before
        {
            t.note(format!(
                "{pad}retry at {} (in {})",
                utc(at),
                span(between(out.now, at))
            ));
        }
        if !s.waiting_on.is_empty() {
            t.note(format!("{pad}waiting on {} children", s.waiting_on.len()));
        }
        if s.status == Status::Waiting {
            if let Some(name) = store.events(r.id()).ok().and_then(|i| i.waiting_for) {
                t.note(format!("{pad}waiting for event {name:?} (wf send-event)"));
            }
            if let Some(at) = s.not_before {
                t.note(format!(
                    "{pad}timer fires at {} (in {})",
                    utc(at),
                    span(between(out.now, at))
                ));
            }
        }
        if let Some(e) = &s.error {
            t.note(format!("{pad}error: {}", clip(&e.to_string(), 200)));
        }
        if let Some(result) = &s.result {
            t.note(format!(
                "{pad}result: {}",
                render(result).text(Some(VALUE_WIDTH))
            ));
        }
    }
    text.push_str(&t.render());
    Ok(text)
}

/// How long an invocation took (final) or has been going (otherwise).
fn duration_text(out: &Out, r: &InvocationRecord) -> String {
    match r.status().is_final() {
        true => span(between(r.spec.created_at, r.state.updated_at)),
        false => format!("{}+", span(between(r.spec.created_at, out.now))),
    }
}

fn invocation_json(out: &Out, n: &TreeNode) -> Value {
    let r = n.invocation.record();
    let s = &r.state;
    let end = match s.status.is_final() {
        true => s.updated_at,
        false => out.now,
    };
    json!({
        "id": r.id().to_string(),
        "task": r.spec.task.as_str(),
        "workflow": r.spec.identity.workflow_id.to_string(),
        "parent": r.spec.parent.map(|p| p.to_string()),
        "depth": n.depth,
        "subworkflow_root": n.subworkflow_root,
        "status": s.status.as_str(),
        "attempts": s.attempts,
        "retries": s.retries,
        "created_at": ts_json(r.spec.created_at),
        "updated_at": ts_json(s.updated_at),
        "duration_ms": between(r.spec.created_at, end).as_millis() as u64,
        "lease": s.lease.as_ref().map(|l| json!({
            "worker": l.worker.as_str(),
            "expires_at": ts_json(l.expires_at),
        })),
        "not_before": s.not_before.map(ts_json),
        "waiting_on": s.waiting_on.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "error": s.error.as_ref().map(failure_json),
        "args": render(&r.spec.args).json(),
        "result": s.result.as_deref().map(|v| render(v).json()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rails_follow_the_depths() {
        let r = rails(&[0, 1, 2, 1, 2, 2, 3]);
        let rows: Vec<&str> = r.iter().map(|(row, _)| row.as_str()).collect();
        assert_eq!(
            rows,
            ["", "├─ ", "│  └─ ", "└─ ", "   ├─ ", "   └─ ", "      └─ "]
        );
        let unders: Vec<&str> = r.iter().map(|(_, u)| u.as_str()).collect();
        assert_eq!(
            unders,
            ["", "│  ", "│     ", "   ", "   │  ", "      ", "         "]
        );
    }
}
