//! HTML building blocks: escaping (every user-controlled string goes through [`esc`]), the page
//! layout, status badges, times and durations.

use std::fmt::Write;
use std::time::Duration;

use axum::response::Html;
use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use wf_core::{Status, Timestamp};

const TABLE_TIME: &[BorrowedFormatItem<'_>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:3]Z");

/// `s` with `& < > " '` escaped: safe in element content and in quoted attributes.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `s` percent-encoded for a URL query value (unreserved characters kept).
pub fn url_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            b => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

const STYLE: &str = r#"
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2530;background:#f6f7f9}
header{background:#1d2530;color:#fff;padding:10px 24px;display:flex;gap:24px;align-items:baseline}
header a{color:#fff;text-decoration:none;font-weight:600}
header .src{color:#aab4c3;font-size:12px}
main{padding:16px 24px}
h1{font-size:20px;margin:4px 0 12px} h2{font-size:16px;margin:20px 0 8px}
table{border-collapse:collapse;background:#fff;width:100%}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #e3e6ea;vertical-align:top}
th{background:#eef1f4;font-weight:600;font-size:12px;text-transform:uppercase;color:#4a5565}
td.num,th.num{text-align:right}
code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
a{color:#1f5fbf}
.badge{display:inline-block;padding:0 7px;border-radius:9px;font-size:12px;color:#fff}
.s-success{background:#2e8b57}.s-failed{background:#c0392b}.s-cancelled{background:#7f8c8d}
.s-running{background:#2d6cdf}.s-waiting{background:#8e6fd8}.s-pending{background:#d4a017}
.s-retry{background:#e67e22}.s-registered{background:#95a5a6}
.counts{display:flex;gap:8px;flex-wrap:wrap;margin-bottom:12px}
.counts a{text-decoration:none;background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:6px 12px;color:#1d2530}
.counts a.on{border-color:#1f5fbf;box-shadow:0 0 0 1px #1f5fbf}
.counts b{font-size:18px;display:block}
form.filters{display:flex;gap:8px;align-items:end;margin-bottom:12px;flex-wrap:wrap}
form.filters label{font-size:12px;color:#4a5565;display:flex;flex-direction:column}
input,select,button{font:inherit;padding:3px 6px}
button.danger{background:#c0392b;color:#fff;border:0;border-radius:4px;padding:5px 14px}
.actions{display:flex;gap:8px;margin:8px 0}
.actions a{background:#fff;border:1px solid #c9ced6;border-radius:4px;padding:3px 10px;text-decoration:none}
.error{color:#a12a1f;white-space:pre-wrap}
.note{color:#5b6676;font-size:12px}
.pager{margin:10px 0;display:flex;gap:12px}
.meta{display:grid;grid-template-columns:max-content auto;gap:2px 16px;background:#fff;padding:8px 12px;border:1px solid #e3e6ea}
.meta dt{color:#5b6676}.meta dd{margin:0}
.tl{background:#fff;border:1px solid #e3e6ea;overflow-x:auto}
pre{background:#fff;border:1px solid #e3e6ea;padding:8px;white-space:pre-wrap;word-break:break-all}
"#;

/// A whole page: the layout around `body` (already HTML).
pub(crate) fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{} · wf monitor</title><style>{STYLE}</style></head><body>\
         <header><a href=\"/\">wf monitor</a><a href=\"/purge\">Purge</a></header>\
         <main>{body}</main></body></html>",
        esc(title)
    ))
}

/// A status as a coloured badge.
pub(crate) fn badge(status: Status) -> String {
    format!(
        "<span class=\"badge s-{0}\" data-status=\"{0}\">{0}</span>",
        status.as_str()
    )
}

/// `2026-01-01 12:00:03.123Z`.
pub(crate) fn utc(ts: Timestamp) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ts.0) * 1_000_000)
        .ok()
        .and_then(|t| t.format(TABLE_TIME).ok())
        .unwrap_or_else(|| format!("{} ms since the epoch", ts.0))
}

/// `2026-01-01 12:00:03.123456789Z` from journaled nanoseconds.
pub(crate) fn utc_nanos(nanos: i128) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:9]Z"
            ))
            .ok()
        })
        .unwrap_or_else(|| format!("{nanos} ns since the epoch"))
}

/// A duration: `12ms`, `3.4s`, `5m 3s`, `2h 10m`, `4d 3h`.
pub(crate) fn span(d: Duration) -> String {
    let ms = d.as_millis();
    let s = d.as_secs();
    match ms {
        0..1000 => format!("{ms}ms"),
        1000..60_000 => format!("{:.1}s", d.as_secs_f64()),
        _ => match s {
            0..3600 => format!("{}m {}s", s / 60, s % 60),
            3600..86_400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
            _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
        },
    }
}

/// The time from `from` to `to` (zero if `to` is earlier).
pub(crate) fn between(from: Timestamp, to: Timestamp) -> Duration {
    Duration::from_millis(to.0.saturating_sub(from.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            esc("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
        assert_eq!(url_value("a b/é"), "a%20b%2F%C3%A9");
    }

    #[test]
    fn spans_read_naturally() {
        assert_eq!(span(Duration::from_millis(12)), "12ms");
        assert_eq!(span(Duration::from_millis(3400)), "3.4s");
        assert_eq!(span(Duration::from_secs(303)), "5m 3s");
    }
}
