//! Plain-text formatting: UTC times, human durations and aligned tables.

use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use unicode_width::UnicodeWidthStr;
use wf_core::Timestamp;

/// How many characters of a value a table line shows.
pub(crate) const VALUE_WIDTH: usize = 72;

const TABLE_TIME: &[BorrowedFormatItem<'_>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second]Z");
const RFC3339_MILLIS: &[BorrowedFormatItem<'_>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
const RFC3339_NANOS: &[BorrowedFormatItem<'_>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z");

/// Nanoseconds since the epoch in `format`, or the raw number when the time crate cannot
/// represent it (a year past 9999).
fn format_nanos(nanos: i128, format: &[BorrowedFormatItem<'_>]) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(format).ok())
        .unwrap_or_else(|| format!("{nanos} ns since the epoch"))
}

fn ts_nanos(ts: Timestamp) -> i128 {
    i128::from(ts.0) * 1_000_000
}

/// `2026-01-01 12:00:03Z` (seconds precision, UTC), for tables.
pub(crate) fn utc(ts: Timestamp) -> String {
    format_nanos(ts_nanos(ts), TABLE_TIME)
}

/// `2026-01-01T12:00:03.123Z` (RFC 3339, milliseconds), for JSON.
pub(crate) fn rfc3339(ts: Timestamp) -> String {
    format_nanos(ts_nanos(ts), RFC3339_MILLIS)
}

/// `2026-01-01T12:00:03.123456789Z` from nanoseconds since the epoch (journaled `utc_now()`).
pub(crate) fn rfc3339_nanos(nanos: i128) -> String {
    format_nanos(nanos, RFC3339_NANOS)
}

/// A coarse age: `3s`, `5m`, `2h`, `4d`.
pub(crate) fn age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// A duration with more precision for short spans: `12ms`, `3.4s`, then like [`age`].
pub(crate) fn span(d: Duration) -> String {
    match d.as_millis() {
        0..1000 => format!("{}ms", d.as_millis()),
        1000..60_000 => format!("{:.1}s", d.as_secs_f64()),
        _ => age(d),
    }
}

/// The time from `from` to `to` (zero if `to` is earlier).
pub(crate) fn between(from: Timestamp, to: Timestamp) -> Duration {
    Duration::from_millis(to.0.saturating_sub(from.0))
}

/// One line of a [`Table`].
enum Line {
    Row(Vec<String>),
    /// Free text under a row, outside the columns.
    Note(String),
}

/// An aligned plain-text table: a header, rows and free-text notes.
pub(crate) struct Table {
    headers: Vec<String>,
    right: Vec<bool>,
    lines: Vec<Line>,
}

impl Table {
    /// A table with these column headers; a header starting with `>` is right-aligned.
    pub(crate) fn new(headers: &[&str]) -> Self {
        Self {
            headers: headers
                .iter()
                .map(|h| h.trim_start_matches('>').to_owned())
                .collect(),
            right: headers.iter().map(|h| h.starts_with('>')).collect(),
            lines: Vec::new(),
        }
    }

    /// Adds a row.
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.lines.push(Line::Row(cells));
    }

    /// Adds a line of free text.
    pub(crate) fn note(&mut self, text: String) {
        self.lines.push(Line::Note(text));
    }

    /// The table as text, one line per row, columns two spaces apart.
    pub(crate) fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for line in &self.lines {
            if let Line::Row(cells) = line {
                for (w, c) in widths.iter_mut().zip(cells) {
                    *w = (*w).max(width(c));
                }
            }
        }
        let mut out = String::new();
        self.push_row(&mut out, &self.headers, &widths);
        for line in &self.lines {
            match line {
                Line::Row(cells) => self.push_row(&mut out, cells, &widths),
                Line::Note(text) => {
                    out.push_str(text);
                    out.push('\n');
                }
            }
        }
        out
    }

    fn push_row(&self, out: &mut String, cells: &[String], widths: &[usize]) {
        let mut line = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let pad = " ".repeat(w.saturating_sub(width(cell)));
            match self.right.get(i).copied().unwrap_or(false) {
                true => {
                    line.push_str(&pad);
                    line.push_str(cell);
                }
                false => {
                    line.push_str(cell);
                    line.push_str(&pad);
                }
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

/// How many terminal columns `s` takes: wide characters (CJK, most emoji) take two, combining
/// marks none.
fn width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_calendar_dates() {
        assert_eq!(utc(Timestamp(0)), "1970-01-01 00:00:00Z");
        assert_eq!(
            rfc3339(Timestamp(1_767_225_600_123)),
            "2026-01-01T00:00:00.123Z"
        );
        assert_eq!(utc(Timestamp(951_825_600_000)), "2000-02-29 12:00:00Z");
        assert_eq!(rfc3339_nanos(-1), "1969-12-31T23:59:59.999999999Z");
        assert_eq!(
            rfc3339_nanos(1_767_225_600_000_000_007),
            "2026-01-01T00:00:00.000000007Z"
        );
        // Past what the calendar formats: the number, not a panic or a wrong date.
        assert_eq!(
            utc(Timestamp(u64::MAX)),
            format!("{} ns since the epoch", i128::from(u64::MAX) * 1_000_000)
        );
    }

    #[test]
    fn durations_are_short() {
        assert_eq!(age(Duration::from_secs(3)), "3s");
        assert_eq!(age(Duration::from_secs(300)), "5m");
        assert_eq!(age(Duration::from_secs(7300)), "2h");
        assert_eq!(age(Duration::from_secs(4 * 86_400 + 5)), "4d");
        assert_eq!(span(Duration::from_millis(12)), "12ms");
        assert_eq!(span(Duration::from_millis(3400)), "3.4s");
    }

    #[test]
    fn tables_align() {
        let mut t = Table::new(&["A", ">N", "C"]);
        t.row(vec!["├─ x".into(), "5".into(), "".into()]);
        t.note("│  note".into());
        t.row(vec!["long".into(), "100".into(), "z".into()]);
        assert_eq!(
            t.render(),
            "A       N  C\n├─ x    5\n│  note\nlong  100  z\n"
        );
    }

    #[test]
    fn wide_characters_take_two_columns() {
        let mut t = Table::new(&["TASK", ">N"]);
        t.row(vec!["注文".into(), "1".into()]);
        t.row(vec!["order".into(), "22".into()]);
        t.row(vec!["cafe\u{301}".into(), "3".into()]);
        // 注文 is four columns wide, "café" with a combining accent four.
        assert_eq!(
            t.render(),
            "TASK    N\n注文    1\norder  22\ncafe\u{301}    3\n"
        );
    }
}
