//! The actions: retry, cancel and purge. Each `GET` shows what would happen and a form; the
//! form's `POST` acts, only with the confirmation and the per-process secret the form carries
//! (another site cannot read it, so it cannot post the form: no cross-site requests), behind the
//! token like every route.

use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Form, Path, Query, State};
use axum::response::Html;
use serde::Deserialize;
use wf_runtime::{Admin, Inspector};

use crate::auth::same;
use crate::error::MonitorError;
use crate::html::{self, badge, esc, span, utc};
use crate::routes::{Shared, changing, now, parse_id, reading};

/// The reason a cancellation from the monitor gives when its form leaves the field empty.
const CANCEL_REASON: &str = "cancelled from the wf monitor";

/// What an action form posts.
#[derive(Debug, Deserialize)]
pub(crate) struct Confirmed {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    older_than: String,
}

impl Confirmed {
    fn check(&self, shared: &Shared) -> Result<(), MonitorError> {
        if !same(self.csrf.as_bytes(), shared.csrf.as_bytes()) {
            return Err(MonitorError::Forbidden(
                "this form is stale or did not come from this monitor: open the action's \
                 page again and confirm there"
                    .into(),
            ));
        }
        if self.confirm != "yes" {
            return Err(MonitorError::Forbidden(
                "not confirmed: tick the confirmation and submit again".into(),
            ));
        }
        Ok(())
    }
}

/// The form's hidden secret, its confirmation and its button.
fn form(shared: &Shared, action: &str, fields: &str, button: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{}\" id=\"confirm-form\">{fields}\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <p><label><input type=\"checkbox\" name=\"confirm\" value=\"yes\" id=\"confirm\"> I am sure</label></p>\
         <button class=\"danger\" id=\"do\">{}</button> <a href=\"/\">Back to the workflows</a></form>",
        esc(action),
        esc(&shared.csrf),
        esc(button)
    )
}

/// `GET /invocations/{id}/retry`.
pub(crate) async fn retry_confirm(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<Html<String>, MonitorError> {
    let id = parse_id(&id)?;
    reading(&shared, move |shared, store| {
        let v = Inspector::new(store).invocation(id)?;
        let error = v.error().map(|e| e.to_string()).unwrap_or_default();
        let body = format!(
            "<h1>Retry {} {}?</h1><p class=\"mono\">{id}</p><p class=\"error\">{}</p>\
             <p>It becomes pending with its retry budget anew; its next attempt replays its \
             journal, so what it recorded before it failed is not done again.</p>{}",
            esc(v.task().as_str()),
            badge(v.status()),
            esc(&error),
            form(shared, &format!("/invocations/{id}/retry"), "", "Retry")
        );
        Ok(html::page("Retry", &body))
    })
    .await
}

/// `POST /invocations/{id}/retry`.
pub(crate) async fn retry(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    Form(f): Form<Confirmed>,
) -> Result<Html<String>, MonitorError> {
    let id = parse_id(&id)?;
    f.check(&shared)?;
    changing(&shared, move |store| {
        Admin::new(store).retry(id, now())?;
        let body = format!(
            "<h1 id=\"done\">Retried</h1><p>{id} is pending again: a worker that runs its task \
             takes it and replays its journal.</p><p><a href=\"/workflows/{id}\">Its workflow</a> · \
             <a href=\"/invocations/{id}\">the invocation</a></p>"
        );
        Ok(html::page("Retried", &body))
    })
    .await
}

/// `GET /invocations/{id}/cancel`.
pub(crate) async fn cancel_confirm(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<Html<String>, MonitorError> {
    let id = parse_id(&id)?;
    reading(&shared, move |shared, store| {
        let tree = Inspector::new(store).workflow(id)?;
        let below = tree
            .nodes()
            .iter()
            .filter(|n| !n.invocation.status().is_final())
            .count();
        let v = Inspector::new(store).invocation(id)?;
        let body = format!(
            "<h1>Cancel {} {}?</h1><p class=\"mono\">{id}</p><p>It and the invocations it \
             started are cancelled: waiting and pending ones at once, running ones at their next \
             step (their workflow has {below} unfinished invocations).</p>{}",
            esc(v.task().as_str()),
            badge(v.status()),
            form(
                shared,
                &format!("/invocations/{id}/cancel"),
                &format!(
                    "<p><label>reason <input name=\"reason\" size=\"50\" \
                     value=\"{CANCEL_REASON}\"></label></p>"
                ),
                "Cancel it"
            )
        );
        Ok(html::page("Cancel", &body))
    })
    .await
}

/// `POST /invocations/{id}/cancel`.
pub(crate) async fn cancel(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    Form(f): Form<Confirmed>,
) -> Result<Html<String>, MonitorError> {
    let id = parse_id(&id)?;
    f.check(&shared)?;
    let reason = match f.reason.trim() {
        "" => CANCEL_REASON.to_owned(),
        r => r.to_owned(),
    };
    changing(&shared, move |store| {
        let report = store.cancel_tree(id, &reason, now())?;
        let body = format!(
            "<h1 id=\"done\">Cancel requested</h1><pre>{}</pre><p><a href=\"/workflows/{id}\">Its \
             workflow</a></p>",
            esc(&report.to_string())
        );
        Ok(html::page("Cancelled", &body))
    })
    .await
}

/// What the purge page takes.
#[derive(Debug, Deserialize)]
pub(crate) struct PurgeQuery {
    #[serde(default)]
    older_than: String,
}

/// `7d`, `12h`, `30m`, `45s`, `0`: how long ago a workflow must have finished.
fn parse_age(text: &str) -> Result<Duration, MonitorError> {
    let text = text.trim();
    let bad = || {
        MonitorError::BadRequest(format!(
            "{text:?} is not an age: write a number and a unit, e.g. 7d, 12h, 30m, 45s or 0"
        ))
    };
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let unit = text.chars().last().ok_or_else(bad)?;
    let n: u64 = text[..text.len() - unit.len_utf8()]
        .parse()
        .map_err(|_| bad())?;
    let secs = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Err(bad()),
    };
    Ok(Duration::from_secs(n.saturating_mul(secs)))
}

/// `GET /purge?older_than=7d`: the dry run, and the form.
pub(crate) async fn purge_confirm(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<PurgeQuery>,
) -> Result<Html<String>, MonitorError> {
    let text = match q.older_than.as_str() {
        "" => "7d".to_owned(),
        t => t.to_owned(),
    };
    let age = parse_age(&text)?;
    reading(&shared, move |shared, store| {
        let listed = Inspector::new(store).purgeable(age, now())?;
        let mut body = format!(
            "<h1>Purge finished workflows</h1><form method=\"get\" class=\"filters\">\
             <label>finished at least<input name=\"older_than\" value=\"{}\" size=\"6\"></label>\
             <button>Show</button></form><p id=\"dry-run\">Dry run: a purge now would remove \
             <b>{}</b> workflow(s) finished at least {} ago (sub-workflows with theirs); nothing \
             was removed.</p>",
            esc(&text),
            listed.len(),
            span(age)
        );
        body.push_str(
            "<table><tr><th>workflow</th><th>type</th><th>status</th><th>last change</th></tr>",
        );
        for w in listed.iter().take(200) {
            let _ = write!(
                body,
                "<tr><td><a class=\"mono\" href=\"/workflows/{id}\">{id}</a></td><td>{}</td>\
                 <td>{}</td><td>{}</td></tr>",
                esc(w.workflow_type.as_str()),
                badge(w.status),
                utc(w.updated_at),
                id = w.id
            );
        }
        body.push_str("</table>");
        if !listed.is_empty() {
            body.push_str(&form(
                shared,
                "/purge",
                &format!(
                    "<input type=\"hidden\" name=\"older_than\" value=\"{}\">",
                    esc(&text)
                ),
                "Purge them",
            ));
        }
        Ok(html::page("Purge", &body))
    })
    .await
}

/// `POST /purge`.
pub(crate) async fn purge(
    State(shared): State<Arc<Shared>>,
    Form(f): Form<Confirmed>,
) -> Result<Html<String>, MonitorError> {
    f.check(&shared)?;
    let age = parse_age(&f.older_than)?;
    changing(&shared, move |store| {
        let n = Admin::new(store).purge_finished(age, now())?;
        let body = format!(
            "<h1 id=\"done\">Purged {n} workflow(s)</h1><p>finished at least {} ago.</p>\
             <p><a href=\"/\">All workflows</a></p>",
            span(age)
        );
        Ok(html::page("Purged", &body))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_parse() {
        assert_eq!(parse_age("7d").unwrap(), Duration::from_secs(7 * 86_400));
        assert_eq!(parse_age("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_age("30m").unwrap(), Duration::from_secs(1800));
        assert!(parse_age("7x").is_err());
        assert!(parse_age("").is_err());
    }
}
