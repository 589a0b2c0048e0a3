//! Measurements, rows and the printed table.

use std::time::Duration;

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

    /// Mean, median and 99th percentile, in microseconds.
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

/// The floors later scenarios are judged against, filled in as scenarios run.
#[derive(Default)]
pub(crate) struct Floors {
    /// Memory store submit+claim+commit round trips per second, one thread.
    pub memory_round_trips_per_sec: Option<f64>,
    /// Raw `write 4 KiB + fsync` per second on the scratch disk.
    pub fsync_per_sec: Option<f64>,
    /// The file store's best durable round-trip rate (group commit at work).
    pub file_store: Option<FileFloor>,
    /// End-to-end tasks through an `App` and a worker pool, best rate per backend.
    pub runtime_memory: Option<RuntimeRate>,
    /// The same on the file store.
    pub runtime_file: Option<RuntimeRate>,
    /// `EVALSHA` of a script that does nothing, per second on one connection.
    pub redis_evalsha_per_sec: Option<f64>,
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

/// A runtime measurement summarised in the floors section.
pub(crate) struct RuntimeRate {
    /// Worker threads.
    pub threads: usize,
    /// Tasks per second, call to result.
    pub tasks_per_sec: f64,
}

impl Floors {
    /// `value` as a multiple of `floor`, for the note column (e.g. "0.85x fsync floor").
    pub(crate) fn ratio(value: Option<f64>, floor: Option<f64>, what: &str) -> String {
        match (value, floor) {
            (Some(v), Some(f)) if f > 0.0 => format!("{:.2}x {what}", v / f),
            _ => String::new(),
        }
    }

    /// Prints the floors in words.
    pub(crate) fn print(&self) {
        println!("floors:");
        match self.memory_round_trips_per_sec {
            Some(r) => println!(
                "  memory store: {} round trips/s on one thread ({:.2} us each): the in-process floor",
                human(r),
                1e6 / r
            ),
            None => println!("  memory store: not measured"),
        }
        match self.fsync_per_sec {
            Some(f) => println!(
                "  disk: {} fsync/s ({:.0} us each): the file store's floor is one group-committed fsync shared by many invocations",
                human(f),
                1e6 / f
            ),
            None => println!("  disk: not measured"),
        }
        if let Some(r) = self.redis_evalsha_per_sec {
            println!(
                "  redis: {} EVALSHA/s on one connection ({:.0} us each): the Redis store's floor is one script call per state change",
                human(r),
                1e6 / r
            );
        }
        if let Some(f) = &self.file_store {
            println!(
                "  file store: best {} commits/s on {} threads = {} with {:.1} records per fsync (vs one fsync per commit)",
                human(f.tasks_per_sec),
                f.threads,
                Self::or_dash(Self::ratio(
                    Some(f.tasks_per_sec),
                    self.fsync_per_sec,
                    "the fsync floor"
                )),
                f.records_per_fsync
            );
        }
        for (backend, rate, floor, what) in [
            (
                "memory",
                &self.runtime_memory,
                self.memory_round_trips_per_sec,
                "the memory round trip",
            ),
            ("file", &self.runtime_file, self.fsync_per_sec, "one fsync"),
        ] {
            if let Some(r) = rate {
                let per_task = 1e6 / r.tasks_per_sec;
                let times = floor.map_or(String::new(), |f| {
                    format!(" = {:.1}x {what} ({:.2} us)", per_task * f / 1e6, 1e6 / f)
                });
                println!(
                    "  runtime on {backend}: best {} tasks/s with {} worker thread(s), {per_task:.2} us per task{times}",
                    human(r.tasks_per_sec),
                    r.threads,
                );
            }
        }
    }

    fn or_dash(s: String) -> String {
        if s.is_empty() { "-".to_owned() } else { s }
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

    /// Prints the table, columns aligned.
    pub(crate) fn print(&self) {
        let header = [
            "scenario", "threads", "ops", "ops/s", "mean us", "p50 us", "p99 us", "note",
        ];
        let cells: Vec<[String; 8]> = self
            .0
            .iter()
            .map(|r| {
                let opt = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
                [
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
        let mut width = header.map(str::len);
        for row in &cells {
            for (w, c) in width.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |row: &[String; 8]| {
            let mut s = String::new();
            for (i, (c, w)) in row.iter().zip(width).enumerate() {
                match i {
                    0 => s.push_str(&format!("{c:<w$}")),
                    7 => s.push_str(&format!("  {c}")),
                    _ => s.push_str(&format!("  {c:>w$}")),
                }
            }
            println!("{}", s.trim_end());
        };
        line(&header.map(str::to_owned));
        let rule: usize = width.iter().sum::<usize>() + 2 * (width.len() - 1);
        println!("{}", "-".repeat(rule.min(140)));
        for row in &cells {
            line(row);
        }
    }
}
