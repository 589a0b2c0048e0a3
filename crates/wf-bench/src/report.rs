//! Measurements, rows and the printed table.

use std::time::Duration;

use crate::targets::Target;

/// Per-operation latencies of one measurement, in nanoseconds.
#[derive(Default)]
pub(crate) struct Samples(Vec<u64>);

impl Samples {
    /// Room for `n` samples.
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self(Vec::with_capacity(n))
    }

    /// Records one operation's duration.
    pub(crate) fn push(&mut self, d: Duration) {
        self.0.push(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Adds another thread's samples.
    pub(crate) fn merge(&mut self, other: Samples) {
        self.0.extend(other.0);
    }

    /// The time all samples add up to.
    pub(crate) fn total(&self) -> Duration {
        Duration::from_nanos(self.0.iter().sum())
    }

    /// Mean, median, 95th and 99th percentile, in microseconds.
    pub(crate) fn latency(&self) -> Option<Latency> {
        if self.0.is_empty() {
            return None;
        }
        let mut sorted = self.0.clone();
        sorted.sort_unstable();
        let n = sorted.len();
        let at = |q: f64| {
            let i = ((n as f64 * q).ceil() as usize).clamp(1, n) - 1;
            sorted[i] as f64 / 1_000.0
        };
        let mean = sorted.iter().map(|&x| x as f64).sum::<f64>() / n as f64 / 1_000.0;
        Some(Latency {
            mean_us: mean,
            p50_us: at(0.50),
            p95_us: at(0.95),
            p99_us: at(0.99),
        })
    }
}

/// Latency summary in microseconds.
#[derive(Clone, Copy)]
pub(crate) struct Latency {
    /// Mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: f64,
    /// 95th percentile.
    pub p95_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
}

/// One line of the table.
pub(crate) struct Row {
    /// What was measured.
    pub name: String,
    /// Threads that did it.
    pub threads: Option<usize>,
    /// Operations completed.
    pub ops: Option<u64>,
    /// Operations per second over the whole run (all threads).
    pub per_sec: Option<f64>,
    /// Per-operation latency, as seen by the thread that did it.
    pub latency: Option<Latency>,
    /// Ratio to a floor, a skip reason or an error.
    pub note: String,
}

impl Row {
    /// A measured row: `ops` operations by `threads` threads in `elapsed` wall time.
    pub(crate) fn measured(
        name: impl Into<String>,
        threads: usize,
        ops: u64,
        elapsed: Duration,
        latency: Option<Latency>,
    ) -> Self {
        let secs = elapsed.as_secs_f64();
        Self {
            name: name.into(),
            threads: Some(threads),
            ops: Some(ops),
            per_sec: (secs > 0.0).then(|| ops as f64 / secs),
            latency,
            note: String::new(),
        }
    }

    /// A row with only a note (a scenario not implemented yet, skipped or failed).
    pub(crate) fn note(name: impl Into<String>, note: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            threads: None,
            ops: None,
            per_sec: None,
            latency: None,
            note: note.into(),
        }
    }

    /// Sets the note column.
    pub(crate) fn with_note(mut self, note: impl Into<String>) -> Self {
        self.note = note.into();
        self
    }
}

/// The floors the workloads are judged against, measured first in the same run.
#[derive(Default)]
pub(crate) struct Floors {
    /// Memory store submit+claim+commit round trips per second, one thread.
    pub memory_round_trips_per_sec: Option<f64>,
    /// Raw `write 4 KiB + fsync` per second on the scratch disk.
    pub fsync_per_sec: Option<f64>,
    /// The file store's best durable round-trip rate (group commit at work).
    pub file_store: Option<FileFloor>,
    /// `EVALSHA` round trips per second from one client to the Redis server.
    pub redis_evalsha_1: Option<f64>,
    /// The same from four clients together.
    pub redis_evalsha_4: Option<f64>,
}

/// The file store's best measurement.
pub(crate) struct FileFloor {
    /// Threads doing round trips.
    pub threads: usize,
    /// Round trips (commits) per second.
    pub tasks_per_sec: f64,
    /// Log records per fsync: the group-commit factor.
    pub records_per_fsync: f64,
}

impl Floors {
    /// `value` as a multiple of `floor`, for the note column (e.g. "0.85x fsync floor").
    pub(crate) fn ratio(value: Option<f64>, floor: Option<f64>, what: &str) -> String {
        match (value, floor) {
            (Some(v), Some(f)) if f > 0.0 => format!("{:.2}x {what}", v / f),
            _ => String::new(),
        }
    }

    /// The floors in words, one line each (markdown list items).
    pub(crate) fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        out.push(match self.memory_round_trips_per_sec {
            Some(r) => format!(
                "memory store: {} submit+claim+commit round trips/s on one thread ({:.2} µs each)",
                human(r),
                1e6 / r
            ),
            None => "memory store: not measured".to_owned(),
        });
        if let Some(f) = self.fsync_per_sec {
            out.push(format!(
                "disk: {} fsync/s ({:.0} µs each; append 4 KiB + fdatasync in a loop)",
                human(f),
                1e6 / f
            ));
        }
        if let Some(f) = &self.file_store {
            out.push(format!(
                "file store: best {} durable round trips/s on {} threads, {:.1} records per fsync \
                 (group commit)",
                human(f.tasks_per_sec),
                f.threads,
                f.records_per_fsync
            ));
        }
        for (clients, rate) in [(1, self.redis_evalsha_1), (4, self.redis_evalsha_4)] {
            if let Some(r) = rate {
                out.push(format!(
                    "redis: {} EVALSHA/s from {clients} client(s) ({:.1} µs per round trip per \
                     client)",
                    human(r),
                    1e6 * clients as f64 / r
                ));
            }
        }
        out
    }
}

/// A number with thousands separators, no decimals.
pub(crate) fn human(x: f64) -> String {
    let n = x.round().max(0.0) as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The result table.
#[derive(Default)]
pub(crate) struct Table(Vec<Row>);

impl Table {
    /// Adds a row.
    pub(crate) fn push(&mut self, row: Row) {
        self.0.push(row);
    }

    /// Adds rows.
    pub(crate) fn extend(&mut self, rows: impl IntoIterator<Item = Row>) {
        self.0.extend(rows);
    }

    /// The table as markdown, columns aligned.
    pub(crate) fn markdown(&self) -> String {
        let header = [
            "scenario", "threads", "ops", "ops/s", "mean µs", "p50 µs", "p99 µs", "note",
        ];
        let cells: Vec<Vec<String>> = self
            .0
            .iter()
            .map(|r| {
                let opt = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
                vec![
                    r.name.clone(),
                    opt(r.threads.map(|t| t.to_string())),
                    opt(r.ops.map(|o| human(o as f64))),
                    opt(r.per_sec.map(human)),
                    opt(r.latency.map(|l| format!("{:.2}", l.mean_us))),
                    opt(r.latency.map(|l| format!("{:.2}", l.p50_us))),
                    opt(r.latency.map(|l| format!("{:.2}", l.p99_us))),
                    r.note.clone(),
                ]
            })
            .collect();
        markdown_table(&header, &cells)
    }

    /// The rows as JSON.
    pub(crate) fn json(&self) -> serde_json::Value {
        self.0
            .iter()
            .map(|r| {
                serde_json::json!({
                    "scenario": r.name,
                    "threads": r.threads,
                    "ops": r.ops,
                    "ops_per_sec": r.per_sec,
                    "mean_us": r.latency.map(|l| l.mean_us),
                    "p50_us": r.latency.map(|l| l.p50_us),
                    "p99_us": r.latency.map(|l| l.p99_us),
                    "note": r.note,
                })
            })
            .collect()
    }
}

/// A markdown table with `header`, its columns padded to align in a terminal.
pub(crate) fn markdown_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, c) in width.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = String>| {
        let mut s = String::from("|");
        for (c, w) in cells.zip(&width) {
            let pad = w.saturating_sub(c.chars().count());
            s.push(' ');
            s.push_str(&c);
            s.push_str(&" ".repeat(pad));
            s.push_str(" |");
        }
        s.push('\n');
        s
    };
    let mut out = line(&mut header.iter().map(|h| (*h).to_owned()));
    out.push_str(&line(&mut width.iter().map(|w| "-".repeat(*w))));
    for row in rows {
        out.push_str(&line(&mut row.iter().map(|c| c.replace('|', "/"))));
    }
    out
}

/// One row of the main table: a workload on a backend, measured once per run, beside its floor
/// and its target.
pub(crate) struct Measurement {
    /// The workload, as the table names it.
    pub workload: String,
    /// The backend it ran on.
    pub backend: &'static str,
    /// The unit of the primary value ("tasks/s", "µs", "ms", "s", "MB", "x").
    pub unit: &'static str,
    /// The primary value of each run.
    pub values: Vec<f64>,
    /// More facts, from the run closest to the median.
    pub detail: String,
    /// The floor it is judged against, as measured in this run.
    pub floor: String,
    /// The primary value as a multiple of the floor.
    pub vs_floor: String,
    /// The target, when it has one for this backend.
    pub target: Option<Target>,
    /// Why it was not measured (skipped, failed), when it was not.
    pub note: String,
}

impl Measurement {
    /// A row for `workload` on `backend` with no value yet.
    pub(crate) fn new(
        workload: impl Into<String>,
        backend: &'static str,
        unit: &'static str,
    ) -> Self {
        Self {
            workload: workload.into(),
            backend,
            unit,
            values: Vec::new(),
            detail: String::new(),
            floor: String::new(),
            vs_floor: String::new(),
            target: None,
            note: String::new(),
        }
    }

    /// The median of the runs.
    pub(crate) fn median(&self) -> Option<f64> {
        let mut v = self.values.clone();
        v.sort_by(f64::total_cmp);
        match v.len() {
            0 => None,
            n if n % 2 == 1 => Some(v[n / 2]),
            n => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
        }
    }

    fn spread(&self) -> Option<(f64, f64)> {
        let min = self.values.iter().copied().reduce(f64::min)?;
        let max = self.values.iter().copied().reduce(f64::max)?;
        Some((min, max))
    }

    /// Whether the median meets the target.
    pub(crate) fn met(&self) -> Option<bool> {
        Some(self.target.as_ref()?.met(self.median()?))
    }

    fn value_text(&self) -> String {
        let Some(m) = self.median() else {
            return "—".to_owned();
        };
        let mut s = format!("{} {}", number(m), self.unit);
        if self.values.len() > 1
            && let Some((lo, hi)) = self.spread()
        {
            s.push_str(&format!(" ({}–{})", number(lo), number(hi)));
        }
        s
    }
}

/// A value with a precision that suits its size.
pub(crate) fn number(x: f64) -> String {
    if x.abs() >= 1000.0 {
        human(x)
    } else if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// The main table as markdown.
pub(crate) fn measurements_markdown(rows: &[Measurement]) -> String {
    let header = [
        "workload",
        "backend",
        "result (median; min–max)",
        "details",
        "floor (this run)",
        "vs floor",
        "target",
        "met",
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let met = match r.met() {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "—",
            };
            let detail = match (r.note.is_empty(), r.detail.is_empty()) {
                (true, _) => r.detail.clone(),
                (false, true) => r.note.clone(),
                (false, false) => format!("{}; {}", r.note, r.detail),
            };
            vec![
                r.workload.clone(),
                r.backend.to_owned(),
                r.value_text(),
                detail,
                r.floor.clone(),
                r.vs_floor.clone(),
                r.target
                    .as_ref()
                    .map_or_else(|| "—".to_owned(), |t| t.text.clone()),
                met.to_owned(),
            ]
        })
        .collect();
    markdown_table(&header, &cells)
}

/// The main table as JSON.
pub(crate) fn measurements_json(rows: &[Measurement]) -> serde_json::Value {
    rows.iter()
        .map(|r| {
            serde_json::json!({
                "workload": r.workload,
                "backend": r.backend,
                "unit": r.unit,
                "median": r.median(),
                "runs": r.values,
                "detail": r.detail,
                "floor": r.floor,
                "vs_floor": r.vs_floor,
                "target": r.target.as_ref().map(|t| t.text.clone()),
                "met": r.met(),
                "note": r.note,
            })
        })
        .collect()
}
