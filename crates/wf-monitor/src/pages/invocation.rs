//! `GET /invocations/{id}`: one invocation: what was called, its arguments and result, its
//! error and the attempt that raised it, its journal, and its workflow's data.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Html;
use wf_core::{InvocationId, Status, Timestamp};
use wf_runtime::Inspector;
use wf_store::StoreRead;

use crate::error::MonitorError;
use crate::html::{self, badge, esc, utc, utc_nanos};
use crate::journal::{CallWords, Described, Style, describe};
use crate::pages::list::short;
use crate::pages::workflow::duration;
use crate::routes::{now, parse_id, reading};
use crate::value::render;

/// How many characters of a value the journal table shows.
const VALUE_WIDTH: usize = 120;

/// `GET /invocations/{id}`.
pub(crate) async fn invocation(
    State(shared): State<Arc<crate::routes::Shared>>,
    Path(id): Path<String>,
) -> Result<Html<String>, MonitorError> {
    let id = parse_id(&id)?;
    reading(&shared, move |_, store| page(store, id)).await
}

fn page(store: &dyn StoreRead, id: InvocationId) -> Result<Html<String>, MonitorError> {
    let view = Inspector::new(store).invocation(id)?;
    let journal = store.journal(id)?;
    let r = view.record();
    let s = &r.state;
    let wf = r.spec.identity.workflow_id;
    let now = now();
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>Invocation {} {}</h1><dl class=\"meta\"><dt>id</dt><dd class=\"mono\">{id}</dd>\
         <dt>workflow</dt><dd><a class=\"mono\" href=\"/workflows/{wf}\">{wf}</a> ({})</dd>",
        esc(view.task().as_str()),
        badge(s.status),
        esc(r.spec.identity.workflow_type.as_str()),
    );
    if let Some(p) = view.parent() {
        let _ = write!(
            body,
            "<dt>called by</dt><dd><a class=\"mono\" href=\"/invocations/{p}\">{p}</a></dd>"
        );
    }
    let _ = write!(
        body,
        "<dt>submitted</dt><dd>{}</dd><dt>last change</dt><dd>{}</dd><dt>duration</dt><dd>{}</dd>\
         <dt>attempts</dt><dd>{} ({} ended in a retry; {} lost with their worker since its last \
         commit)</dd>",
        utc(r.spec.created_at),
        utc(s.updated_at),
        duration(s.status, r.spec.created_at, s.updated_at, now),
        s.attempts,
        s.retries,
        s.recoveries,
    );
    if let Some(lease) = &s.lease {
        let _ = write!(
            body,
            "<dt>lease</dt><dd>{} until {}</dd>",
            esc(lease.worker.as_str()),
            utc(lease.expires_at)
        );
    }
    if let Some(at) = s.not_before {
        let _ = write!(body, "<dt>not before</dt><dd>{}</dd>", utc(at));
    }
    let _ = write!(
        body,
        "<dt>arguments</dt><dd class=\"mono\">{}</dd>",
        esc(&render(&r.spec.args).text(Some(400)))
    );
    if let Some(result) = &s.result {
        let _ = write!(
            body,
            "<dt>result</dt><dd class=\"mono\" id=\"result\">{}</dd>",
            esc(&render(result).text(Some(400)))
        );
    }
    body.push_str("</dl><div class=\"actions\">");
    if s.status == Status::Failed {
        let _ = write!(
            body,
            "<a href=\"/invocations/{id}/retry\" id=\"retry\">Retry…</a>"
        );
    }
    if !s.status.is_final() {
        let _ = write!(
            body,
            "<a href=\"/invocations/{id}/cancel\" id=\"cancel\">Cancel…</a>"
        );
    }
    body.push_str("</div>");
    if let Some(e) = &s.error {
        let when = match s.status {
            Status::Failed => "the final error",
            _ => "the last attempt's error",
        };
        let _ = write!(
            body,
            "<h2>Error</h2><p class=\"note\">{when}, raised by attempt {} (the store keeps the \
             latest error only)</p><pre class=\"error\" id=\"error\">{}: {}</pre>",
            s.attempts,
            esc(&e.kind.to_string()),
            esc(&e.message)
        );
    }
    let _ = write!(body, "<h2>Journal ({} entries)</h2>", journal.len());
    body.push_str(
        "<table id=\"journal\"><tr><th class=\"num\">position</th><th>operation</th>\
         <th>recorded value</th></tr>",
    );
    for e in &journal {
        let Described {
            operation,
            recorded,
        } = describe(&e.op, &JournalHtml);
        let _ = write!(
            body,
            "<tr><td class=\"num\">{}</td><td>{operation}</td><td class=\"mono\">{recorded}</td></tr>",
            e.seq
        );
    }
    body.push_str("</table>");
    data(&mut body, store, wf)?;
    Ok(html::page(
        &format!("{} {}", view.task(), short(&id.to_string())),
        &body,
    ))
}

/// The workflow's data, every key.
fn data(body: &mut String, store: &dyn StoreRead, wf: InvocationId) -> Result<(), MonitorError> {
    let keys = store.data_keys(wf)?;
    let _ = write!(body, "<h2>Workflow data ({} keys)</h2>", keys.len());
    if keys.is_empty() {
        return Ok(());
    }
    body.push_str("<table id=\"data\"><tr><th>key</th><th>value</th></tr>");
    for k in keys {
        let value = store
            .get_data(wf, &k)?
            .map_or_else(|| "none".to_owned(), |v| render(&v).text(Some(VALUE_WIDTH)));
        let _ = write!(
            body,
            "<tr><td class=\"mono\">{}</td><td class=\"mono\">{}</td></tr>",
            esc(&k),
            esc(&value)
        );
    }
    body.push_str("</table>");
    Ok(())
}

/// The journal table's pieces as HTML: store text escaped, invocations linked by their short id.
struct JournalHtml;

impl Style for JournalHtml {
    const VALUE_WIDTH: usize = VALUE_WIDTH;
    const MESSAGE_WIDTH: usize = 300;
    const CALLS: CallWords = CallWords {
        started: "callee started",
        result: "callee result",
        succeeded: "succeeded",
    };

    fn text(&self, s: &str) -> String {
        esc(s)
    }

    fn invocation(&self, id: InvocationId) -> String {
        format!(
            "<a href=\"/invocations/{id}\">{}</a>",
            short(&id.to_string())
        )
    }

    fn failure(&self, message: &str) -> String {
        format!("<span class=\"error\">{}</span>", esc(message))
    }

    fn time(&self, at: Timestamp) -> String {
        utc(at)
    }

    fn clock(&self, nanos: i128) -> String {
        utc_nanos(nanos)
    }
}
