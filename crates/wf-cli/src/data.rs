//! `wf data`: a workflow's data, every key or one.

use serde_json::{Value, json};
use wf_core::InvocationId;
use wf_store::StoreRead;

use crate::Failure;
use crate::commands::Out;
use crate::fmt::{Table, VALUE_WIDTH};
use crate::open::read;
use crate::value::render;

/// Resolves an id that may name any invocation to its workflow's id.
fn workflow_of(
    store: &dyn StoreRead,
    id: InvocationId,
) -> Result<(InvocationId, Option<String>), Failure> {
    let record = read(None, store.invocation(id))?;
    let wf = record.spec.identity.workflow_id;
    let note = (wf != id)
        .then(|| format!("{id} is an invocation of workflow {wf}; showing that workflow"));
    Ok((wf, note))
}

pub(crate) fn data(
    out: &Out,
    store: &dyn StoreRead,
    id: InvocationId,
    key: Option<&str>,
) -> Result<String, Failure> {
    let (wf, note) = workflow_of(store, id)?;
    if let Some(note) = note {
        out.note(note);
    }
    if let Some(key) = key {
        let Some(bytes) = read(None, store.get_data(wf, key))? else {
            return Err(Failure::Runtime(format!(
                "workflow {wf} has no data key {key:?} (`wf data {wf}` lists its keys)"
            )));
        };
        let v = render(&bytes);
        return match out.json {
            true => out.json(&json!({ "workflow": wf.to_string(), "key": key, "value": v.json() })),
            false => Ok(format!("{}\n", v.text(None))),
        };
    }
    let keys = read(None, store.data_keys(wf))?;
    let mut values = Vec::with_capacity(keys.len());
    for k in keys {
        let bytes = read(None, store.get_data(wf, &k))?.unwrap_or_default();
        values.push((k, render(&bytes)));
    }
    if out.json {
        let map: serde_json::Map<String, Value> =
            values.iter().map(|(k, v)| (k.clone(), v.json())).collect();
        return out.json(&json!({ "workflow": wf.to_string(), "data": map }));
    }
    if values.is_empty() {
        return Ok(format!("workflow {wf} has no data\n"));
    }
    let mut t = Table::new(&["KEY", "VALUE"]);
    for (k, v) in &values {
        t.row(vec![k.clone(), v.text(Some(VALUE_WIDTH))]);
    }
    Ok(t.render())
}
