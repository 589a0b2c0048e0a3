//! `GET /`: the workflows, newest first, with counts by status, filters and pages.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::Html;
use serde::Deserialize;
use wf_core::Status;
use wf_runtime::{Inspector, WorkflowQuery, WorkflowSummary};

use crate::error::MonitorError;
use crate::html::{self, badge, between, esc, span, url_value, utc};
use crate::pages::parse_status;
use crate::routes::{Shared, now, reading};

/// Workflows per page.
pub(crate) const PAGE_SIZE: usize = 50;

/// The list's filters, as the form sends them (empty fields are no filter).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    task: String,
    #[serde(default)]
    age: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: Option<usize>,
}

/// The age choices: (query value, label, duration).
const AGES: [(&str, &str, Duration); 4] = [
    ("1h", "last hour", Duration::from_secs(3600)),
    ("24h", "last 24 hours", Duration::from_secs(86_400)),
    ("7d", "last 7 days", Duration::from_secs(7 * 86_400)),
    ("old", "older than 7 days", Duration::from_secs(7 * 86_400)),
];

impl ListQuery {
    /// The query string of these filters on another page (`page` 0 leaves it out).
    fn link(&self, page: usize, status: Option<&str>) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("status", status.unwrap_or(&self.status)),
            ("task", &self.task),
            ("age", &self.age),
            ("q", &self.q),
        ] {
            if !v.is_empty() {
                parts.push(format!("{k}={}", url_value(v)));
            }
        }
        if page > 0 {
            parts.push(format!("page={page}"));
        }
        format!("/?{}", parts.join("&"))
    }
}

/// `GET /`.
pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<ListQuery>,
) -> Result<Html<String>, MonitorError> {
    reading(&shared, move |shared, store| render(shared, store, &q)).await
}

fn render(
    shared: &Shared,
    store: &dyn wf_store::StoreRead,
    q: &ListQuery,
) -> Result<Html<String>, MonitorError> {
    let status = match q.status.as_str() {
        "" => None,
        s => Some(parse_status(s)?),
    };
    let now = now();
    let mut query = WorkflowQuery::new();
    match AGES.iter().find(|(k, _, _)| *k == q.age) {
        Some(("old", _, d)) => query = query.older_than(*d),
        Some((_, _, d)) => query = query.newer_than(*d),
        None if q.age.is_empty() => {}
        None => {
            return Err(MonitorError::BadRequest(format!(
                "unknown age {:?}: use 1h, 24h, 7d or old",
                q.age
            )));
        }
    }
    // One read of every workflow in the age range: the counts by status and the task choices
    // come from it, the status, task and id filters apply to it.
    let all = Inspector::new(store).workflows(&query, now)?.workflows;
    let tasks: BTreeSet<&str> = all.iter().map(|w| w.workflow_type.as_str()).collect();
    let needle = q.q.trim().to_ascii_lowercase();
    let shown: Vec<&WorkflowSummary> = all
        .iter()
        .filter(|w| status.is_none_or(|s| w.status == s))
        .filter(|w| q.task.is_empty() || w.workflow_type.as_str() == q.task)
        .filter(|w| needle.is_empty() || w.id.to_string().contains(&needle))
        .collect();
    let pages = shown.len().div_ceil(PAGE_SIZE).max(1);
    let page = q.page.unwrap_or(0).min(pages - 1);

    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>Workflows</h1><p class=\"note\">{}</p><div class=\"counts\" id=\"counts\">",
        esc(&shared.describe)
    );
    let _ = write!(
        body,
        "<a href=\"{}\" class=\"{}\"><b>{}</b>all</a>",
        esc(&q.link(0, Some(""))),
        if status.is_none() { "on" } else { "" },
        all.len()
    );
    for s in Status::ALL {
        let n = all.iter().filter(|w| w.status == s).count();
        if n == 0 && status != Some(s) {
            continue;
        }
        let _ = write!(
            body,
            "<a href=\"{}\" class=\"{}\" data-count=\"{s}\"><b>{n}</b>{}</a>",
            esc(&q.link(0, Some(s.as_str()))),
            if status == Some(s) { "on" } else { "" },
            badge(s)
        );
    }
    body.push_str("</div>");
    // Every invocation, not only roots: how much work is queued, running, waiting.
    let counts = Inspector::new(store).counts()?;
    let parts: Vec<String> = counts
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| format!("{n} {s}"))
        .collect();
    let _ = write!(
        body,
        "<p class=\"note\" id=\"invocation-counts\">invocations: {} in all{}{}</p>",
        counts.total(),
        if parts.is_empty() { "" } else { ": " },
        parts.join(" · ")
    );
    filters(&mut body, q, &tasks);
    let _ = write!(
        body,
        "<p class=\"note\">{} of {} workflows match, newest first</p>",
        shown.len(),
        all.len()
    );
    table(
        &mut body,
        &shown[(page * PAGE_SIZE).min(shown.len())..],
        now,
    );
    if pages > 1 {
        let _ = write!(body, "<div class=\"pager\">");
        if page > 0 {
            let _ = write!(
                body,
                "<a href=\"{}\">← newer</a>",
                esc(&q.link(page - 1, None))
            );
        }
        let _ = write!(body, "<span>page {} of {pages}</span>", page + 1);
        if page + 1 < pages {
            let _ = write!(
                body,
                "<a href=\"{}\" id=\"next\">older →</a>",
                esc(&q.link(page + 1, None))
            );
        }
        body.push_str("</div>");
    }
    Ok(html::page("Workflows", &body))
}

fn filters(body: &mut String, q: &ListQuery, tasks: &BTreeSet<&str>) {
    body.push_str("<form class=\"filters\" method=\"get\" action=\"/\">");
    body.push_str("<label>status<select name=\"status\"><option value=\"\">any</option>");
    for s in Status::ALL {
        let sel = if q.status == s.as_str() {
            " selected"
        } else {
            ""
        };
        let _ = write!(body, "<option{sel}>{s}</option>");
    }
    body.push_str(
        "</select></label><label>type<select name=\"task\"><option value=\"\">any</option>",
    );
    for t in tasks {
        let sel = if q.task == *t { " selected" } else { "" };
        let _ = write!(body, "<option{sel}>{}</option>", esc(t));
    }
    body.push_str(
        "</select></label><label>started<select name=\"age\"><option value=\"\">any time</option>",
    );
    for (k, label, _) in AGES {
        let sel = if q.age == k { " selected" } else { "" };
        let _ = write!(body, "<option value=\"{k}\"{sel}>{label}</option>");
    }
    let _ = write!(
        body,
        "</select></label><label>id contains<input name=\"q\" value=\"{}\" size=\"24\"></label>\
         <button>Filter</button></form>",
        esc(&q.q)
    );
}

fn table(body: &mut String, rows: &[&WorkflowSummary], now: wf_core::Timestamp) {
    body.push_str(
        "<table id=\"workflows\"><tr><th>workflow</th><th>type</th><th>status</th>\
         <th>started</th><th class=\"num\">duration</th><th class=\"num\">invocations</th>\
         <th>sub-workflow of</th></tr>",
    );
    for w in rows.iter().take(PAGE_SIZE) {
        let end = match w.status.is_final() {
            true => w.updated_at,
            false => now,
        };
        let running = if w.status.is_final() { "" } else { "+" };
        let parent = w.parent_workflow.map_or_else(
            || "–".to_owned(),
            |p| {
                format!(
                    "<a class=\"mono\" href=\"/workflows/{p}\">{}</a>",
                    short(&p.to_string())
                )
            },
        );
        let _ = write!(
            body,
            "<tr class=\"wf\"><td><a class=\"mono\" href=\"/workflows/{id}\">{id}</a></td>\
             <td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}{running}</td>\
             <td class=\"num\">{}</td><td>{parent}</td></tr>",
            esc(w.workflow_type.as_str()),
            badge(w.status),
            utc(w.created_at),
            span(between(w.created_at, end)),
            w.invocations,
            id = w.id,
        );
    }
    body.push_str("</table>");
}

/// The first 8 characters of an id, for links beside the full one.
pub(crate) fn short(id: &str) -> String {
    id.chars().take(8).collect()
}
