//! The subcommands: each reads the store and returns its whole output as text.

use std::cell::RefCell;
use std::io::ErrorKind as IoKind;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use wf_core::{ChildOutcome, Failure as StoredFailure, InvocationId, Op, Status, Timestamp};
use wf_monitor::journal::{CallWords, Described, Style, describe};
use wf_runtime::{Admin, Inspector, TreeNode, WfError, WorkflowQuery, WorkflowSummary};
use wf_store::{FileStore, InvocationRecord, RedisStore, StoreAdmin, StoreError, StoreRead};

use crate::Failure;
use crate::cli::{Cli, Command, Target, WorkflowsArgs, store_target};
use crate::fmt::{Table, age, between, rfc3339, rfc3339_nanos, span, utc};
use crate::value::{clip, render};

/// How many characters of a value a table line shows.
const VALUE_WIDTH: usize = 72;

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
        } => purge_dry_run(&out, &reads, *older_than),
        Command::Purge { older_than, .. } => purge(&out, &target, *older_than),
        Command::Retry { invocation } => retry(&out, &target, &reads, *invocation),
        Command::Workflows(args) => workflows(&out, &reads, args),
        Command::Show { workflow } => show(&out, &reads, store, *workflow),
        Command::Journal { invocation } => journal(&out, store, *invocation),
        Command::Data { workflow, key } => data(&out, store, *workflow, key.as_deref()),
        Command::Counts => counts(&out, &reads),
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
    fn note(&self, line: String) {
        self.notes.borrow_mut().push(line);
    }

    pub(crate) fn json(&self, v: &Value) -> Result<String, Failure> {
        serde_json::to_string_pretty(v)
            .map(|s| s + "\n")
            .map_err(|e| Failure::Runtime(format!("cannot encode JSON output: {e}")))
    }
}

/// What the reading commands read: a read-only snapshot of the file store in a directory (it
/// takes no lock, so workers may run), or a Redis store (opened without creating its namespace
/// or binding it to an app; a namespace that does not exist is an error, not an empty store).
fn open_read(target: &Target, out: &Out) -> Result<Box<dyn StoreRead>, Failure> {
    match target {
        Target::File(dir) => {
            let snapshot = FileStore::snapshot(dir).map_err(|e| store_failure(target, e))?;
            if let Some(cut) = snapshot.torn_tail() {
                out.note(format!(
                    "ignored {} unreadable bytes at the end of the log (from offset {}: {}): a \
                     write in progress, or a torn tail a crash left, which the owning process \
                     cuts when it next opens the store",
                    cut.bytes, cut.offset, cut.reason
                ));
            }
            Ok(Box::new(snapshot))
        }
        Target::Redis(url) => {
            let store = RedisStore::open_read(url).map_err(|e| store_failure(target, e))?;
            if !store
                .namespace_exists()
                .map_err(|e| store_failure(target, e))?
            {
                return Err(Failure::Runtime(format!(
                    "no wf store at {target}: its namespace '{}' holds nothing (point --store or \
                     WF_STORE at the URL your workers use, with the same ns= option)",
                    store.url().namespace
                )));
            }
            Ok(Box::new(store))
        }
    }
}

/// With `--app`, checks that the store belongs to that app. A store no app has opened since
/// stores record their app has nothing to compare with, and is accepted.
fn check_app(target: &Target, store: &dyn StoreRead, app: Option<&str>) -> Result<(), Failure> {
    let (Some(requested), Some(recorded)) = (app, read(Some(target), store.app_id())?) else {
        return Ok(());
    };
    if recorded == requested {
        return Ok(());
    }
    Err(store_failure(
        target,
        StoreError::AppMismatch {
            store: target.to_string(),
            recorded,
            requested: requested.to_owned(),
        },
    ))
}

/// A store error as one line for the user.
pub(crate) fn store_failure(target: &Target, e: StoreError) -> Failure {
    match e {
        StoreError::Io { source, .. } if source.kind() == IoKind::NotFound => {
            Failure::Runtime(format!(
                "no wf store at {target}: {source} (point --store or WF_STORE at the directory your workers open)"
            ))
        }
        e => Failure::Runtime(e.to_string()),
    }
}

fn store_error(target: Option<&Target>, e: StoreError) -> Failure {
    match target {
        Some(d) => store_failure(d, e),
        None => Failure::Runtime(e.to_string()),
    }
}

pub(crate) fn read<T>(target: Option<&Target>, r: Result<T, StoreError>) -> Result<T, Failure> {
    r.map_err(|e| store_error(target, e))
}

/// A management call's error as one line for the user.
fn managed<T>(target: Option<&Target>, r: Result<T, WfError>) -> Result<T, Failure> {
    r.map_err(|e| match e {
        WfError::Store(e) => store_error(target, e),
        e => Failure::Runtime(e.to_string()),
    })
}

fn ts_json(ts: Timestamp) -> Value {
    json!(rfc3339(ts))
}

fn failure_json(f: &StoredFailure) -> Value {
    json!({ "kind": f.kind.to_string(), "message": f.message })
}

fn workflows(out: &Out, ins: &Inspector<'_>, args: &WorkflowsArgs) -> Result<String, Failure> {
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
fn summary_json(out: &Out, w: &WorkflowSummary) -> Value {
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
fn summary_table(out: &Out, rows: &[WorkflowSummary]) -> Table {
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

fn show(
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

fn journal(out: &Out, store: &dyn StoreRead, id: InvocationId) -> Result<String, Failure> {
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

fn data(
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

fn counts(out: &Out, ins: &Inspector<'_>) -> Result<String, Failure> {
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

/// Opens the store for a command that writes. It must exist (opening would create an empty
/// one at a mistyped path; `run` checked with a read). A free file store is opened itself, an
/// owned one reached through its owner's control socket; a Redis store is shared with running
/// workers. It is opened without an app,
/// so it is not bound to one.
fn open_store(target: &Target) -> Result<Box<dyn StoreAdmin>, Failure> {
    let dir = match target {
        Target::Redis(url) => {
            return Ok(Box::new(
                RedisStore::open_read(url).map_err(|e| store_failure(target, e))?,
            ));
        }
        Target::File(dir) => dir,
    };
    match FileStore::open(dir) {
        Ok(s) => Ok(Box::new(s)),
        Err(StoreError::StoreLocked { .. }) => Ok(through_owner(dir)?),
        Err(e) => Err(store_failure(target, e)),
    }
}

/// A file store owned by a running process: reached through that process's control socket, so
/// the owner runs the command on its store while its workers go on.
pub(crate) fn through_owner(dir: &std::path::Path) -> Result<Box<dyn wf_store::Store>, Failure> {
    #[cfg(unix)]
    match wf_store::control::ControlClient::connect(dir) {
        Ok(client) => Ok(Box::new(client)),
        Err(e) => Err(Failure::Runtime(format!(
            "store {} is locked by a process that does not answer on its control socket ({e}): \
             if a wf worker owns it, it is an older version or its socket could not start; \
             stop it, run the command, and start it again (waiting workflows wait durably \
             meanwhile)",
            dir.display()
        ))),
    }
    #[cfg(not(unix))]
    {
        Err(Failure::Runtime(format!(
            "store {} is owned by a running process: stop its workers first, or do this from \
             that process (App::send_event, App::retry, App::cancel_tree)",
            dir.display()
        )))
    }
}

fn purge_dry_run(
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

fn retry(
    out: &Out,
    target: &Target,
    reads: &Inspector<'_>,
    id: InvocationId,
) -> Result<String, Failure> {
    // Read first, so an unknown id or a refused retry says so without taking the store.
    let task = managed(None, reads.invocation(id))?.task().clone();
    let store = open_store(target)?;
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

fn purge(out: &Out, target: &Target, older_than: Duration) -> Result<String, Failure> {
    let store = open_store(target)?;
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
