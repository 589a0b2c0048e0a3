//! How records travel to and from the scripts: opaque blobs (the spec's call, arguments,
//! results, failures, journal entries) encoded with `wf_core::codec`, and the plain fields the
//! scripts decide on (status, counters, lease, times, ids, task names) as text.

use std::sync::Arc;

use redis::Value;
use serde::{Deserialize, Serialize};
use wf_core::{
    CallId, Failure, InvocationId, JournalEntry, Status, TaskId, Timestamp, WorkerId,
    WorkflowIdentity, codec,
};

use crate::error::StoreError;
use crate::model::{InvocationRecord, InvocationSpec, InvocationState, LeaseInfo, NewInvocation};
use crate::tables::worker_lost_failure as worker_lost;

/// The latest time a script stores exactly (Lua numbers are doubles): about the year 287,000.
const MAX_TIME: u64 = (1 << 53) - 1;

/// A timestamp as script argument text, clamped to what Lua holds exactly.
pub(crate) fn time_arg(t: Timestamp) -> Vec<u8> {
    t.0.min(MAX_TIME).to_string().into_bytes()
}

/// The immutable part of a spec that identifies the call: an identical resubmission has the
/// same bytes (the scripts compare them), anything else is a conflict.
#[derive(Serialize, Deserialize)]
struct SpecCore {
    task: TaskId,
    call: CallId,
    args: Vec<u8>,
    identity: WorkflowIdentity,
    parent: Option<InvocationId>,
}

/// Lowercase hyphenated UUID: its text order is the ids' order.
pub(crate) fn id_arg(id: InvocationId) -> Vec<u8> {
    id.to_string().into_bytes()
}

/// The 7 script arguments of a new invocation: id, task, workflow, parent (or empty), spec,
/// max recoveries, not-before (or empty).
pub(crate) fn new_invocation_args(new: &NewInvocation) -> Result<Vec<Vec<u8>>, StoreError> {
    crate::limits::check_task_name(&new.task)?;
    let spec = codec::encode(&SpecCore {
        task: new.task.clone(),
        call: new.call,
        args: new.args.clone(),
        identity: new.identity.clone(),
        parent: new.parent,
    })?;
    Ok(vec![
        id_arg(new.id),
        new.task.as_str().as_bytes().to_vec(),
        id_arg(new.identity.workflow_id),
        new.parent.map(id_arg).unwrap_or_default(),
        spec,
        new.max_recoveries.to_string().into_bytes(),
        new.not_before.map(time_arg).unwrap_or_default(),
    ])
}

/// A reply that does not have the shape the scripts return: a bug, or a foreign key.
pub(crate) fn malformed(what: &str) -> StoreError {
    StoreError::Backend {
        store: String::new(),
        message: format!(
            "unexpected reply from Redis ({what}): the namespace holds data this wf version did \
             not write; use another ns= or check the server"
        ),
    }
}

pub(crate) fn bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        Value::Okay => Some(b"OK"),
        _ => None,
    }
}

pub(crate) fn text(v: &Value) -> Option<&str> {
    bytes(v).and_then(|b| std::str::from_utf8(b).ok())
}

pub(crate) fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        other => text(other).and_then(|t| t.parse().ok()),
    }
}

pub(crate) fn array(v: &Value) -> Option<&[Value]> {
    match v {
        Value::Array(a) => Some(a),
        _ => None,
    }
}

pub(crate) fn parse_id(v: &Value) -> Result<InvocationId, StoreError> {
    text(v)
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| malformed("an invocation id"))
}

fn opt_u64(v: &Value) -> Option<u64> {
    int(v).and_then(|i| u64::try_from(i).ok())
}

fn u32_field(v: &Value, what: &str) -> Result<u32, StoreError> {
    opt_u64(v)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| malformed(what))
}

pub(crate) fn parse_status(v: &Value) -> Result<Status, StoreError> {
    let t = text(v).ok_or_else(|| malformed("a status"))?;
    Status::ALL
        .iter()
        .copied()
        .find(|s| s.as_str() == t)
        .ok_or_else(|| malformed("a status name"))
}

/// Decodes a record as `record()` in the prelude returns it: spec, created, maxr, st, att, ret,
/// rec, lw, lx, nb, upd, res, err, errl, waiting ids.
pub(crate) fn parse_record(id: InvocationId, v: &Value) -> Result<InvocationRecord, StoreError> {
    let f = array(v).ok_or_else(|| malformed("a record"))?;
    if f.len() < 15 {
        return Err(malformed("a record's fields"));
    }
    let core: SpecCore = codec::decode(bytes(&f[0]).ok_or_else(|| malformed("a spec"))?)?;
    let spec = InvocationSpec {
        id,
        task: core.task,
        call: core.call,
        args: core.args,
        identity: core.identity,
        parent: core.parent,
        created_at: Timestamp(opt_u64(&f[1]).ok_or_else(|| malformed("created"))?),
        max_recoveries: u32_field(&f[2], "max_recoveries")?,
    };
    let status = parse_status(&f[3])?;
    let attempts = u32_field(&f[4], "attempts")?;
    let recoveries = u32_field(&f[6], "recoveries")?;
    let lease = match (text(&f[7]), opt_u64(&f[8])) {
        (Some(worker), Some(expires_at)) => Some(LeaseInfo {
            worker: WorkerId::new(worker),
            expires_at: Timestamp(expires_at),
        }),
        _ => None,
    };
    let error = match (bytes(&f[12]), text(&f[13])) {
        (Some(blob), _) => Some(codec::decode::<Failure>(blob)?),
        (None, Some(lost)) => {
            let (rec, att) = lost
                .split_once(':')
                .and_then(|(r, a)| Some((r.parse().ok()?, a.parse().ok()?)))
                .ok_or_else(|| malformed("a worker-lost failure"))?;
            Some(worker_lost(rec, att))
        }
        (None, None) => None,
    };
    let waiting_on = array(&f[14])
        .ok_or_else(|| malformed("waiting_on"))?
        .iter()
        .map(parse_id)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(InvocationRecord {
        spec: Arc::new(spec),
        state: InvocationState {
            status,
            attempts,
            retries: u32_field(&f[5], "retries")?,
            recoveries,
            lease,
            not_before: opt_u64(&f[9]).map(Timestamp),
            result: bytes(&f[11]).map(<[u8]>::to_vec),
            error,
            waiting_on,
            updated_at: Timestamp(opt_u64(&f[10]).ok_or_else(|| malformed("updated_at"))?),
        },
    })
}

pub(crate) fn parse_journal(v: &Value) -> Result<Vec<JournalEntry>, StoreError> {
    array(v)
        .ok_or_else(|| malformed("a journal"))?
        .iter()
        .map(|e| {
            Ok(codec::decode(
                bytes(e).ok_or_else(|| malformed("a journal entry"))?,
            )?)
        })
        .collect()
}

/// The fields of a record token (`record_token` in the prelude: `R`, then per field `-` or
/// `<length>:<bytes>`), as the `Value` array `parse_record` reads; `None` for a plain token.
pub(crate) fn token_record(
    id: InvocationId,
    token: &[u8],
) -> Option<Result<InvocationRecord, StoreError>> {
    let mut rest = token.strip_prefix(b"R")?;
    let mut fields: Vec<Value> = Vec::with_capacity(16);
    // spec … errl, then the caller's order of its creation.
    for _ in 0..15 {
        if let Some(after) = rest.strip_prefix(b"-") {
            fields.push(Value::Nil);
            rest = after;
            continue;
        }
        let Some(colon) = rest.iter().position(|b| *b == b':') else {
            return Some(Err(malformed("a record token")));
        };
        let len = std::str::from_utf8(&rest[..colon])
            .ok()
            .and_then(|l| l.parse::<usize>().ok());
        let Some(value) = len.and_then(|len| rest.get(colon + 1..colon + 1 + len)) else {
            return Some(Err(malformed("a record token")));
        };
        fields.push(Value::BulkString(value.to_vec()));
        rest = &rest[colon + 1 + value.len()..];
    }
    if !rest.is_empty() {
        return Some(Err(malformed("a record token")));
    }
    // A final invocation waits on no children.
    fields.insert(14, Value::Array(Vec::new()));
    Some(parse_record(id, &Value::Array(fields)))
}
