//! `GET /workflows/{id}`: one workflow as a tree and a timeline, updated while it runs by
//! polling `GET /workflows/{id}/live`, which answers 204 while nothing changed.

use std::collections::hash_map::DefaultHasher;
use std::fmt::Write;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use wf_core::{Status, Timestamp};
use wf_runtime::{Inspector, WorkflowTree};
use wf_store::StoreRead;

use crate::error::MonitorError;
use crate::html::{self, badge, between, esc, span, utc};
use crate::pages::list::short;
use crate::routes::{Shared, now, parse_id, reading};
use crate::timeline;
use crate::value::clip;

/// At most this many invocations are listed in the tree table.
const TABLE_ROWS: usize = 1000;

/// How often the page asks whether the workflow changed, in milliseconds.
pub(crate) const POLL_MS: u64 = 2000;

/// `GET /workflows/{id}`.
pub(crate) async fn workflow(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<Html<String>, MonitorError> {
    let id = parse_id(&id)?;
    reading(&shared, move |_, store| {
        let tree = Inspector::new(store).workflow(id)?;
        page(store, &tree, id)
    })
    .await
}

/// What the live endpoint takes: the version the page shows.
#[derive(Debug, Deserialize)]
pub(crate) struct LiveQuery {
    #[serde(default)]
    v: String,
}

/// `GET /workflows/{id}/live?v=…`: 204 when the workflow is still at version `v`, else the
/// fragment (tree and timeline) with its version in `X-WF-Version` and `X-WF-Final: true`
/// once every invocation in it is final (the page stops polling).
pub(crate) async fn live(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    Query(q): Query<LiveQuery>,
) -> Result<Response, MonitorError> {
    let id = parse_id(&id)?;
    let (version, finished, html) = reading(&shared, move |_, store| {
        let tree = Inspector::new(store).workflow(id)?;
        let version = version(&tree);
        let html = (version != q.v).then(|| fragment(store, &tree, now()));
        Ok((version, finished(&tree), html))
    })
    .await?;
    let headers = [
        ("x-wf-version", version),
        ("x-wf-final", finished.to_string()),
        (header::CACHE_CONTROL.as_str(), "no-store".to_owned()),
    ];
    Ok(match html {
        None => (StatusCode::NO_CONTENT, headers).into_response(),
        Some(html) => (headers, Html(html)).into_response(),
    })
}

/// A hash of every invocation's status and last change: equal while nothing changed.
fn version(tree: &WorkflowTree) -> String {
    let mut h = DefaultHasher::new();
    for n in tree.nodes() {
        let r = n.invocation.record();
        (
            r.id(),
            r.status().as_str(),
            r.state.updated_at.0,
            r.state.attempts,
        )
            .hash(&mut h);
    }
    format!("{:016x}", h.finish())
}

fn finished(tree: &WorkflowTree) -> bool {
    tree.nodes()
        .iter()
        .all(|n| n.invocation.status().is_final())
}

fn page(
    store: &dyn StoreRead,
    tree: &WorkflowTree,
    asked: wf_core::InvocationId,
) -> Result<Html<String>, MonitorError> {
    let Some(root) = tree.root() else {
        return Err(MonitorError::BadRequest(format!(
            "the workflow of {asked} was purged while it was read"
        )));
    };
    let now = now();
    let r = root.record();
    let wf = root.id();
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>Workflow {} {}</h1>",
        esc(r.spec.identity.workflow_type.as_str()),
        badge(r.status())
    );
    if wf != asked {
        let _ = write!(
            body,
            "<p class=\"note\">{asked} is an invocation of this workflow</p>"
        );
    }
    let subs = tree.nodes().iter().filter(|n| n.subworkflow_root).count();
    let _ = write!(
        body,
        "<dl class=\"meta\"><dt>id</dt><dd class=\"mono\">{wf}</dd><dt>submitted</dt><dd>{}</dd>\
         <dt>duration</dt><dd>{}</dd><dt>invocations</dt><dd>{} ({subs} sub-workflows)</dd>",
        utc(r.spec.created_at),
        duration(r.status(), r.spec.created_at, r.state.updated_at, now),
        tree.len(),
    );
    if let Some(p) = r.spec.identity.parent_workflow_id {
        let _ = write!(
            body,
            "<dt>sub-workflow of</dt><dd><a class=\"mono\" href=\"/workflows/{p}\">{p}</a></dd>"
        );
    }
    body.push_str("</dl><div class=\"actions\">");
    if r.status() == Status::Failed {
        let _ = write!(
            body,
            "<a href=\"/invocations/{wf}/retry\" id=\"retry\">Retry…</a>"
        );
    }
    if !r.status().is_final() {
        let _ = write!(
            body,
            "<a href=\"/invocations/{wf}/cancel\" id=\"cancel\">Cancel…</a>"
        );
    }
    let _ = write!(
        body,
        "</div><div id=\"live\" data-workflow=\"{wf}\" data-version=\"{}\" data-final=\"{}\">{}</div>\
         <script src=\"/static/live.js\"></script>",
        version(tree),
        finished(tree),
        fragment(store, tree, now)
    );
    Ok(html::page(
        &format!(
            "{} {}",
            r.spec.identity.workflow_type,
            short(&wf.to_string())
        ),
        &body,
    ))
}

/// How long it took (final) or has been going (`+`).
pub(crate) fn duration(
    status: Status,
    from: Timestamp,
    updated: Timestamp,
    now: Timestamp,
) -> String {
    match status.is_final() {
        true => span(between(from, updated)),
        false => format!("{}+", span(between(from, now))),
    }
}

/// The part of the page that updates: the timeline, its legend and the tree.
fn fragment(store: &dyn StoreRead, tree: &WorkflowTree, now: Timestamp) -> String {
    let mut out = String::from("<h2>Timeline</h2><div class=\"tl\">");
    out.push_str(&timeline::svg(
        tree.nodes(),
        &timeline::recorded(store, tree.nodes()),
        now,
    ));
    out.push_str("</div>");
    out.push_str(&timeline::legend());
    out.push_str(
        "<h2>Invocations</h2><table id=\"tree\"><tr><th>task</th><th>status</th>\
         <th class=\"num\">attempts</th><th class=\"num\">retries</th><th class=\"num\" title=\"executions lost with their worker since the last commit\">lost</th>\
         <th>submitted</th><th class=\"num\">duration</th><th>note</th></tr>",
    );
    for n in tree.nodes().iter().take(TABLE_ROWS) {
        let r = n.invocation.record();
        let s = &r.state;
        let mut note = String::new();
        if !s.waiting_on.is_empty() {
            // Which callees it waits on, by task, linked (the first few).
            let names: Vec<String> = s
                .waiting_on
                .iter()
                .take(5)
                .map(|c| {
                    let task = tree
                        .get(*c)
                        .map_or_else(|| "?".to_owned(), |v| v.task().as_str().to_owned());
                    format!("<a href=\"/invocations/{c}\">{}</a>", esc(&task))
                })
                .collect();
            let more = s.waiting_on.len().saturating_sub(names.len());
            let _ = write!(
                note,
                "waiting on {}{} ",
                names.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            );
        }
        if s.status == Status::Waiting && s.waiting_on.is_empty() {
            match s.not_before {
                Some(at) => {
                    let _ = write!(note, "timer at {} ", utc(at));
                }
                None => note.push_str("waiting for an event "),
            }
        }
        if let Some(e) = &s.error {
            let _ = write!(
                note,
                "<span class=\"error\">{}</span>",
                esc(&clip(&e.to_string(), 160))
            );
        }
        let _ = write!(
            out,
            "<tr><td style=\"padding-left:{}px\"><a href=\"/invocations/{id}\">{}</a>{}</td>\
             <td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td>{}</td><td class=\"num\">{}</td><td>{note}</td></tr>",
            8 + 16 * n.depth.min(12),
            esc(r.spec.task.as_str()),
            match n.subworkflow_root {
                true => format!(
                    " <a class=\"note\" href=\"/workflows/{}\">sub-workflow</a>",
                    r.id()
                ),
                false => String::new(),
            },
            badge(s.status),
            s.attempts,
            s.retries,
            s.recoveries,
            utc(r.spec.created_at),
            duration(s.status, r.spec.created_at, s.updated_at, now),
            id = r.id(),
        );
    }
    out.push_str("</table>");
    if tree.len() > TABLE_ROWS {
        let _ = write!(
            out,
            "<p class=\"note\">the first {TABLE_ROWS} of {} invocations are listed; open a \
             sub-workflow for the rest</p>",
            tree.len()
        );
    }
    out
}

/// `GET /static/live.js`: polls the live endpoint while the workflow runs and swaps the
/// fragment when it changed. A file, not an inline script, so the pages' content security
/// policy allows scripts from the monitor itself only.
pub(crate) async fn live_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        LIVE_JS.replace("POLL_MS", &POLL_MS.to_string()),
    )
        .into_response()
}

const LIVE_JS: &str = r#"(function () {
  var live = document.getElementById('live');
  if (!live) return;
  function poll() {
    if (live.dataset.final === 'true') return;
    fetch('/workflows/' + live.dataset.workflow + '/live?v=' + live.dataset.version,
          { credentials: 'same-origin' })
      .then(function (r) {
        live.dataset.final = r.headers.get('x-wf-final') || 'false';
        if (r.status === 200) {
          live.dataset.version = r.headers.get('x-wf-version');
          return r.text().then(function (t) { live.innerHTML = t; });
        }
      })
      .catch(function () {})
      .then(function () { setTimeout(poll, POLL_MS); });
  }
  setTimeout(poll, POLL_MS);
})();
"#;
