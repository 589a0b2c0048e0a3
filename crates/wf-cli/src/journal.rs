//! `wf journal`: an invocation's journal, one row per recorded operation, in the words the web
//! monitor uses too ([`wf_monitor::journal`]), or as JSON.

use serde_json::{Value, json};
use wf_core::{ChildOutcome, InvocationId, Op, Timestamp};
use wf_monitor::journal::{CallWords, Described, Style, describe};
use wf_store::StoreRead;

use crate::Failure;
use crate::commands::{Out, failure_json, ts_json};
use crate::fmt::{Table, VALUE_WIDTH, rfc3339_nanos, utc};
use crate::open::read;
use crate::value::render;

pub(crate) fn journal(
    out: &Out,
    store: &dyn StoreRead,
    id: InvocationId,
) -> Result<String, Failure> {
    let record = read(None, store.invocation(id))?;
    let entries = read(None, store.journal(id))?;
    if out.json {
        let list: Vec<Value> = entries
            .iter()
            .map(|e| {
                let mut v = op_json(&e.op);
                if let Some(map) = v.as_object_mut() {
                    map.insert("seq".into(), json!(e.seq));
                }
                v
            })
            .collect();
        return out.json(&json!({
            "invocation": id.to_string(),
            "task": record.spec.task.as_str(),
            "status": record.status().as_str(),
            "entries": list,
        }));
    }
    let mut text = format!(
        "journal of {id}  task {}  status {}  {} entries\n",
        record.spec.task,
        record.status(),
        entries.len()
    );
    if entries.is_empty() {
        return Ok(text);
    }
    text.push('\n');
    let mut t = Table::new(&[">SEQ", "OPERATION", "VALUE"]);
    for e in &entries {
        let Described {
            operation,
            recorded,
        } = describe(&e.op, &JournalText);
        t.row(vec![e.seq.to_string(), operation, recorded]);
    }
    text.push_str(&t.render());
    Ok(text)
}

/// The journal table's pieces as plain text: ids whole, times in RFC 3339.
struct JournalText;

impl Style for JournalText {
    const VALUE_WIDTH: usize = VALUE_WIDTH;
    const MESSAGE_WIDTH: usize = 200;
    const CALLS: CallWords = CallWords {
        started: "child start",
        result: "child result",
        succeeded: "success",
    };

    fn text(&self, s: &str) -> String {
        s.to_owned()
    }

    fn invocation(&self, id: InvocationId) -> String {
        id.to_string()
    }

    fn time(&self, at: Timestamp) -> String {
        utc(at)
    }

    fn clock(&self, nanos: i128) -> String {
        rfc3339_nanos(nanos)
    }
}

fn op_json(op: &Op) -> Value {
    match op {
        Op::Random(bits) => json!({ "op": "random", "value": f64::from_bits(*bits) }),
        Op::Uuid(u) => json!({ "op": "uuid", "value": u.to_string() }),
        Op::Time(ns) => {
            json!({ "op": "time", "value": rfc3339_nanos(*ns), "nanos": ns.to_string() })
        }
        Op::ChildStart { task, call, child } => json!({
            "op": "child_start", "task": task.as_str(), "call": call.to_string(), "child": child.to_string(),
        }),
        Op::DataGet { key, value } => json!({
            "op": "data_get", "key": key, "value": value.as_deref().map(|v| render(v).json()),
        }),
        Op::ChildResult { child, outcome } => match outcome {
            ChildOutcome::Success(v) => json!({
                "op": "child_result", "child": child.to_string(), "status": "success",
                "value": render(v).json(),
            }),
            ChildOutcome::Failed(f) => json!({
                "op": "child_result", "child": child.to_string(), "status": "failed",
                "error": failure_json(f),
            }),
        },
        Op::Timer { at } => json!({ "op": "timer", "at": ts_json(*at) }),
        Op::TimerFired => json!({ "op": "timer_fired" }),
        Op::Event { name, seq, payload } => json!({
            "op": "event", "name": name, "seq": seq,
            "payload": serde_json::from_slice::<Value>(payload)
                .unwrap_or_else(|_| json!(String::from_utf8_lossy(payload))),
        }),
        Op::Patch { id } => json!({ "op": "patch", "id": id }),
        Op::Cancelled { reason } => json!({ "op": "cancelled", "reason": reason }),
    }
}
