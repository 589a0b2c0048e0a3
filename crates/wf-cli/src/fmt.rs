//! Plain-text formatting: UTC times, human durations and aligned tables.

use std::time::Duration;

use wf_core::Timestamp;

/// `2026-01-01 12:00:03Z` (seconds precision, UTC), for tables.
pub(crate) fn utc(ts: Timestamp) -> String {
    let (date, h, m, s, _) = civil(i128::from(ts.0) * 1_000_000);
    format!("{date} {h:02}:{m:02}:{s:02}Z")
}

/// `2026-01-01T12:00:03.123Z` (RFC 3339, milliseconds), for JSON.
pub(crate) fn rfc3339(ts: Timestamp) -> String {
    let (date, h, m, s, nanos) = civil(i128::from(ts.0) * 1_000_000);
    format!("{date}T{h:02}:{m:02}:{s:02}.{:03}Z", nanos / 1_000_000)
}

/// `2026-01-01T12:00:03.123456789Z` from nanoseconds since the epoch (journaled `utc_now()`).
pub(crate) fn rfc3339_nanos(nanos: i128) -> String {
    let (date, h, m, s, ns) = civil(nanos);
    format!("{date}T{h:02}:{m:02}:{s:02}.{ns:09}Z")
}

/// Splits nanoseconds since the epoch into a `YYYY-MM-DD` date, hours, minutes, seconds and
/// nanoseconds (proleptic Gregorian calendar, UTC).
fn civil(nanos: i128) -> (String, i128, i128, i128, i128) {
    let secs = nanos.div_euclid(1_000_000_000);
    let ns = nanos.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    // Days to a civil date (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i128::from(month <= 2);
    (
        format!("{year:04}-{month:02}-{day:02}"),
        tod / 3600,
        tod % 3600 / 60,
        tod % 60,
        ns,
    )
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

fn width(s: &str) -> usize {
    s.chars().count()
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
}
