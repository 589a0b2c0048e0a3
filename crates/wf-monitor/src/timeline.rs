//! A workflow tree as an SVG timeline: one row per invocation, a time axis, and the long quiet
//! stretches (a crash, a sleep, an outage) cut out of the axis and marked.
//!
//! What the store records per invocation is its submission time, the time of its last status
//! change, its attempt, retry and recovery counts and its callees; it does not record when each
//! execution started or ended. So the timeline draws what can be derived honestly:
//!
//! - an invocation without callees is one bar from submission to its end (its last change when
//!   final, now otherwise), coloured by its status: queueing, executions and retry back-offs
//!   are inside it, undivided;
//! - an invocation with callees is drawn as a thin line while any callee is alive (it waits
//!   for them) and as bars between (its executions: starting callees, reading their results,
//!   finishing, and the time queued before each); the last bar is coloured by its status, the
//!   others as "queued or ran, between waits";
//! - the journal's clock reads (`utc_now()`: an execution was running then) are ticks on the row,
//!   its timers' firing times diamonds;
//! - attempts and lost executions are marked after the bar: `×3` attempts, `↻1` executions lost
//!   with their worker since the last commit (the store counts those only until a commit, so a
//!   finished invocation's lost executions are among its attempts, not marked apart);
//! - a stretch longer than [`QUIET_MIN`] (and many times the usual spacing) in which nothing
//!   in the tree changed is shrunk to a fixed width and labelled with its length (a long step, a
//!   sleep, or no worker at all: the store cannot tell which): the demo's crash and resume show
//!   as such a cut, with the step that was in flight spanning it.

use std::collections::HashMap;
use std::fmt::Write;
use std::time::Duration;

use wf_core::{InvocationId, Op, Status, Timestamp};
use wf_runtime::TreeNode;
use wf_store::StoreRead;

use crate::html::{between, esc, span, utc};

/// The shortest stretch without change that is cut out of the axis.
pub(crate) const QUIET_MIN: Duration = Duration::from_secs(3);
/// At most this many rows are drawn.
pub(crate) const MAX_ROWS: usize = 400;

const LABEL_W: f64 = 250.0;
const PLOT_W: f64 = 900.0;
const BREAK_W: f64 = 44.0;
const ROW_H: f64 = 18.0;
const AXIS_H: f64 = 26.0;

/// What an invocation's journal tells of when it ran: the times its `utc_now()` reads recorded
/// (an execution was running then) and the times its timers fire (milliseconds since the epoch).
#[derive(Debug, Default)]
pub(crate) struct Recorded {
    clock_reads: Vec<u64>,
    timers: Vec<u64>,
}

/// The journals of the rows the timeline draws, by invocation. An invocation that vanished
/// while it was read (a purge) just has none.
pub(crate) fn recorded(
    store: &dyn StoreRead,
    nodes: &[TreeNode],
) -> HashMap<InvocationId, Recorded> {
    let mut out = HashMap::new();
    for n in nodes.iter().take(MAX_ROWS) {
        let id = n.invocation.id();
        let Ok(entries) = store.journal(id) else {
            continue;
        };
        let mut r = Recorded::default();
        for e in entries {
            match e.op {
                Op::Time(ns) => {
                    if let Ok(ms) = u64::try_from(ns / 1_000_000) {
                        r.clock_reads.push(ms);
                    }
                }
                Op::Timer { at } => r.timers.push(at.0),
                _ => {}
            }
        }
        if !r.clock_reads.is_empty() || !r.timers.is_empty() {
            out.insert(id, r);
        }
    }
    out
}

/// The colour of a bar that ended in `status`.
fn colour(status: Status) -> &'static str {
    match status {
        Status::Success => "#2e8b57",
        Status::Failed => "#c0392b",
        Status::Cancelled => "#7f8c8d",
        Status::Running => "#2d6cdf",
        Status::Waiting => "#8e6fd8",
        Status::Pending | Status::Registered => "#d4a017",
        Status::Retry => "#e67e22",
    }
}
const RAN_THEN_WAITED: &str = "#6f9ed8";

/// One row's times.
struct Row<'a> {
    node: &'a TreeNode,
    start: Timestamp,
    end: Timestamp,
}

/// The axis: time to x, with quiet stretches cut to [`BREAK_W`].
struct Axis {
    t0: u64,
    breaks: Vec<(u64, u64)>,
    scale: f64,
}

impl Axis {
    fn new(times: &mut Vec<u64>, t0: u64, t1: u64) -> Self {
        times.sort_unstable();
        times.dedup();
        let gaps: Vec<u64> = times.windows(2).map(|w| w[1] - w[0]).collect();
        let mut positive: Vec<u64> = gaps.iter().copied().filter(|g| *g > 0).collect();
        positive.sort_unstable();
        let median = positive.get(positive.len() / 2).copied().unwrap_or(0);
        let min = (QUIET_MIN.as_millis() as u64).max(median.saturating_mul(20));
        let breaks: Vec<(u64, u64)> = times
            .windows(2)
            .filter(|w| w[1] - w[0] >= min)
            .map(|w| (w[0], w[1]))
            .collect();
        let cut: u64 = breaks.iter().map(|(a, b)| b - a).sum();
        let active = (t1 - t0).saturating_sub(cut).max(1);
        let room = (PLOT_W - BREAK_W * breaks.len() as f64).max(PLOT_W / 4.0);
        Self {
            t0,
            breaks,
            scale: room / active as f64,
        }
    }

    /// The x of time `t` (milliseconds), from the plot's left edge.
    fn x(&self, t: u64) -> f64 {
        let mut x = 0.0;
        let mut from = self.t0;
        for &(a, b) in &self.breaks {
            if t < a {
                break;
            }
            if t < b {
                return x
                    + (a - from) as f64 * self.scale
                    + BREAK_W * (t - a) as f64 / (b - a) as f64;
            }
            x += (a - from) as f64 * self.scale + BREAK_W;
            from = b;
        }
        x + t.saturating_sub(from) as f64 * self.scale
    }
}

/// The timeline of `nodes` (a workflow tree, depth first) judged at `now`, as an `<svg>`.
pub(crate) fn svg(
    nodes: &[TreeNode],
    journals: &HashMap<InvocationId, Recorded>,
    now: Timestamp,
) -> String {
    let rows: Vec<Row<'_>> = nodes
        .iter()
        .take(MAX_ROWS)
        .map(|n| {
            let r = n.invocation.record();
            let end = match r.status().is_final() {
                true => r.state.updated_at,
                false => now,
            };
            Row {
                node: n,
                start: r.spec.created_at,
                end: end.max(r.spec.created_at),
            }
        })
        .collect();
    if rows.is_empty() {
        return "<p class=\"note\">nothing to draw</p>".into();
    }
    // The axis spans the rows and every clock read (a read and the row's times come from
    // clocks that may differ by a millisecond or so).
    let reads = || {
        journals
            .values()
            .flat_map(|r| r.clock_reads.iter().copied())
    };
    let t0 = rows
        .iter()
        .map(|r| r.start.0)
        .chain(reads())
        .min()
        .unwrap_or(0);
    let t1 = rows
        .iter()
        .map(|r| r.end.0)
        .chain(reads())
        .max()
        .unwrap_or(t0)
        .max(t0 + 1);
    let mut times: Vec<u64> = rows.iter().flat_map(|r| [r.start.0, r.end.0]).collect();
    // A clock read is activity too: an execution was running then.
    times.extend(reads());
    let axis = Axis::new(&mut times, t0, t1);
    let height = AXIS_H + ROW_H * rows.len() as f64 + 8.0;
    let width = LABEL_W + PLOT_W + 60.0;
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg id=\"timeline\" data-rows=\"{}\" xmlns=\"http://www.w3.org/2000/svg\" \
         width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" \
         font-family=\"system-ui,sans-serif\" font-size=\"11\">",
        rows.len()
    );
    draw_axis(&mut out, &axis, t0, t1, height);
    // Callees by caller, to find when a caller waited.
    let mut callees: HashMap<InvocationId, Vec<(u64, u64)>> = HashMap::new();
    for r in &rows {
        if let Some(p) = r.node.invocation.parent() {
            callees.entry(p).or_default().push((r.start.0, r.end.0));
        }
    }
    for (i, row) in rows.iter().enumerate() {
        let y = AXIS_H + ROW_H * i as f64;
        draw_row(
            &mut out,
            &axis,
            row,
            y,
            callees.get(&row.node.invocation.id()),
        );
        if let Some(r) = journals.get(&row.node.invocation.id()) {
            draw_recorded(&mut out, &axis, r, y, (t0, t1));
        }
    }
    draw_quiet(&mut out, &axis, height);
    out.push_str("</svg>");
    if nodes.len() > rows.len() {
        let _ = write!(
            out,
            "<p class=\"note\">the first {} of {} invocations are drawn</p>",
            rows.len(),
            nodes.len()
        );
    }
    out
}

fn draw_axis(out: &mut String, axis: &Axis, t0: u64, t1: u64, height: f64) {
    let total = t1 - t0;
    let active = PLOT_W / axis.scale;
    let step = [
        1u64, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 15_000, 30_000, 60_000,
        120_000, 300_000, 600_000, 900_000, 1_800_000, 3_600_000, 7_200_000, 21_600_000,
        43_200_000, 86_400_000,
    ]
    .into_iter()
    .find(|s| active / *s as f64 <= 8.0)
    .unwrap_or(86_400_000);
    let _ = write!(
        out,
        "<line x1=\"{LABEL_W}\" y1=\"{AXIS_H}\" x2=\"{}\" y2=\"{AXIS_H}\" stroke=\"#9aa3ad\"/>",
        LABEL_W + PLOT_W
    );
    let mut t = 0;
    let mut last_x = f64::NEG_INFINITY;
    while t <= total {
        let abs = t0 + t;
        // No tick inside a cut: jump past it rather than step through it (a stretch of weeks
        // cut out around a few milliseconds of work would be billions of steps of 1 ms).
        if let Some(&(_, b)) = axis.breaks.iter().find(|(a, b)| abs > *a && abs < *b) {
            t = (b - t0).div_ceil(step) * step;
            continue;
        }
        let x = LABEL_W + axis.x(abs);
        if x - last_x > 40.0 {
            tick(
                out,
                x,
                height,
                &format!("+{}", span(Duration::from_millis(t))),
            );
            last_x = x;
        }
        t += step;
    }
    for &(_, b) in &axis.breaks {
        let xb = LABEL_W + axis.x(b);
        if xb - last_x > 40.0 {
            tick(
                out,
                xb,
                height,
                &format!("+{}", span(Duration::from_millis(b - t0))),
            );
            last_x = xb;
        }
    }
    out.push_str(
        "<defs><pattern id=\"cut\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" \
         patternTransform=\"rotate(45)\"><rect width=\"3\" height=\"6\" fill=\"#d9b36c\"/></pattern></defs>",
    );
}

/// The quiet stretches, over the rows (drawn last, so a bar that spans one shows the cut).
fn draw_quiet(out: &mut String, axis: &Axis, height: f64) {
    for &(a, b) in &axis.breaks {
        let (xa, xb) = (LABEL_W + axis.x(a), LABEL_W + axis.x(b));
        let len = span(Duration::from_millis(b - a));
        let _ = write!(
            out,
            "<g class=\"quiet\"><title>{len} in which nothing in this tree changed: a long step, a \
             sleep or a wait, or no worker running it (a crash and a restart); cut out of the \
             axis. Bars that cross it were in flight.</title>\
             <rect x=\"{xa:.1}\" y=\"{}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"url(#cut)\" \
             fill-opacity=\"0.45\"/><text x=\"{:.1}\" y=\"10\" text-anchor=\"middle\" \
             fill=\"#8a5a00\">⋯ {len} unchanged</text></g>",
            AXIS_H - 4.0,
            xb - xa,
            height - AXIS_H,
            (xa + xb) / 2.0
        );
    }
}

fn tick(out: &mut String, x: f64, height: f64, label: &str) {
    let _ = write!(
        out,
        "<line x1=\"{x:.1}\" y1=\"{}\" x2=\"{x:.1}\" y2=\"{height:.1}\" stroke=\"#e3e6ea\"/>\
         <text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\" fill=\"#5b6676\">{}</text>",
        AXIS_H - 4.0,
        AXIS_H - 8.0,
        esc(label)
    );
}

fn draw_row(
    out: &mut String,
    axis: &Axis,
    row: &Row<'_>,
    y: f64,
    callees: Option<&Vec<(u64, u64)>>,
) {
    let inv = &row.node.invocation;
    let r = inv.record();
    let s = &r.state;
    let task = inv.task().as_str();
    let label: String = task.chars().take(30).collect();
    let indent = 6.0 + 12.0 * row.node.depth.min(12) as f64;
    let sub = if row.node.subworkflow_root {
        "◆ "
    } else {
        ""
    };
    let _ = write!(
        out,
        "<g class=\"row\" data-id=\"{id}\" data-status=\"{status}\"><a href=\"/invocations/{id}\">\
         <title>{} · {status} · {} from submission to {}{}</title>\
         <text x=\"{indent}\" y=\"{:.1}\" fill=\"#1d2530\">{sub}{}</text>",
        esc(task),
        span(between(row.start, row.end)),
        if r.status().is_final() {
            "its end"
        } else {
            "now"
        },
        counts_text(s.attempts, s.retries, s.recoveries, callees.is_some()),
        y + 13.0,
        esc(&label),
        id = inv.id(),
        status = r.status(),
    );
    let (x0, x1) = (LABEL_W + axis.x(row.start.0), LABEL_W + axis.x(row.end.0));
    let fill = colour(r.status());
    let waits = callees
        .map(|c| union(c, row.start.0, row.end.0))
        .unwrap_or_default();
    if waits.is_empty() {
        bar(out, x0, x1, y, fill);
    } else {
        let _ = write!(
            out,
            "<rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"2\" fill=\"{fill}\" \
             class=\"wait\"/>",
            y + 8.0,
            (x1 - x0).max(1.0)
        );
        let mut from = row.start.0;
        let mut pieces = Vec::new();
        for &(a, b) in &waits {
            if a > from {
                pieces.push((from, a));
            }
            from = from.max(b);
        }
        if from < row.end.0 || pieces.is_empty() {
            pieces.push((from, row.end.0));
        }
        let last = pieces.len() - 1;
        for (i, (a, b)) in pieces.into_iter().enumerate() {
            let colour = if i == last { fill } else { RAN_THEN_WAITED };
            bar(out, LABEL_W + axis.x(a), LABEL_W + axis.x(b), y, colour);
        }
    }
    let mut marks = String::new();
    if s.attempts > 1 {
        let _ = write!(marks, "×{} ", s.attempts);
    }
    if s.recoveries > 0 {
        let _ = write!(marks, "↻{}", s.recoveries);
    }
    if !marks.is_empty() {
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#8a3b00\" class=\"marks\">{}</text>",
            x1 + 4.0,
            y + 13.0,
            marks.trim_end()
        );
    }
    out.push_str("</a></g>");
}

/// The journal's marks on a row: a thin tick per clock read, a diamond per timer.
fn draw_recorded(out: &mut String, axis: &Axis, r: &Recorded, y: f64, (t0, t1): (u64, u64)) {
    for &t in r.clock_reads.iter().filter(|t| (t0..=t1).contains(*t)) {
        let _ = write!(
            out,
            "<rect class=\"clock\" x=\"{:.1}\" y=\"{:.1}\" width=\"1.5\" height=\"{:.1}\" \
             fill=\"#1d2530\"><title>utc_now() read {}: an execution was running then</title></rect>",
            LABEL_W + axis.x(t),
            y + 1.0,
            ROW_H - 2.0,
            utc(Timestamp(t))
        );
    }
    for &t in r.timers.iter().filter(|t| (t0..=t1).contains(*t)) {
        let x = LABEL_W + axis.x(t);
        let _ = write!(
            out,
            "<path class=\"timer\" d=\"M{x:.1},{:.1} l4,6 l-4,6 l-4,-6 z\" fill=\"#5a3fb0\">\
             <title>a timer set by this invocation fires {}</title></path>",
            y + 3.0,
            utc(Timestamp(t))
        );
    }
}

fn counts_text(attempts: u32, retries: u32, recoveries: u32, calls: bool) -> String {
    let mut t = format!(
        " · {attempts} attempt{}",
        if attempts == 1 { "" } else { "s" }
    );
    if retries > 0 {
        let _ = write!(t, ", {retries} ended in a retry");
    }
    match (attempts.saturating_sub(retries + 1), calls) {
        (0, _) => {}
        (n, false) => {
            let _ = write!(
                t,
                ", {n} more: lost with its worker (a crash) or woken from a sleep or an event"
            );
        }
        (n, true) => {
            let _ = write!(
                t,
                ", {n} more: woken by its callees' results, or lost with its worker"
            );
        }
    }
    if recoveries > 0 {
        let _ = write!(
            t,
            ", {recoveries} lost with its worker since its last commit"
        );
    }
    t
}

fn bar(out: &mut String, x0: f64, x1: f64, y: f64, fill: &str) {
    let _ = write!(
        out,
        "<rect class=\"bar\" x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"2\" \
         fill=\"{fill}\"/>",
        y + 3.0,
        (x1 - x0).max(2.0),
        ROW_H - 6.0
    );
}

/// The union of `spans`, clipped to `[from, to]`, sorted.
fn union(spans: &[(u64, u64)], from: u64, to: u64) -> Vec<(u64, u64)> {
    let mut v: Vec<(u64, u64)> = spans
        .iter()
        .map(|&(a, b)| (a.max(from), b.min(to)))
        .filter(|(a, b)| a < b)
        .collect();
    v.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (a, b) in v {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// The legend under the timeline.
pub(crate) fn legend() -> String {
    let mut out = String::from("<p class=\"note legend\">");
    for (label, c) in [
        ("succeeded", colour(Status::Success)),
        ("failed", colour(Status::Failed)),
        ("cancelled", colour(Status::Cancelled)),
        ("running", colour(Status::Running)),
        ("pending / retry", colour(Status::Pending)),
        ("waiting", colour(Status::Waiting)),
        ("queued or ran, between waits on callees", RAN_THEN_WAITED),
    ] {
        let _ = write!(
            out,
            "<span style=\"display:inline-block;width:10px;height:10px;background:{c};margin:0 4px 0 10px\"></span>{label}"
        );
    }
    out.push_str(
        " · thin line: waiting on callees · black tick: a utc_now() read (an execution ran then) · \
         ◆ a timer's firing time · ×N attempts · ↻N executions lost with their worker, not yet followed by a commit · \
         hatched: a stretch without any change, cut out of the axis. Per-execution start and \
         end times are not stored: an invocation's bar runs from its submission to its last \
         change.</p>",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn union_merges_and_clips() {
        assert_eq!(
            union(&[(5, 8), (1, 3), (2, 4), (9, 20)], 0, 10),
            vec![(1, 4), (5, 8), (9, 10)]
        );
        assert!(union(&[(1, 2)], 5, 10).is_empty());
    }

    #[test]
    fn a_quiet_stretch_is_cut_to_a_fixed_width() {
        // Changes every 100 ms, then nothing for an hour, then more changes.
        let mut times: Vec<u64> = (0..10).map(|i| i * 100).collect();
        times.extend((0..10).map(|i| 3_600_000 + i * 100));
        let axis = Axis::new(&mut times, 0, 3_600_900);
        assert_eq!(axis.breaks, vec![(900, 3_600_000)]);
        let before = axis.x(900);
        let after = axis.x(3_600_000);
        assert!((after - before - BREAK_W).abs() < 1e-6, "{before} {after}");
        assert!(
            (axis.x(3_600_900) - (PLOT_W)).abs() < 1e-6,
            "{}",
            axis.x(3_600_900)
        );
        // Without a quiet stretch the axis is linear.
        let mut even: Vec<u64> = (0..10).map(|i| i * 100).collect();
        let linear = Axis::new(&mut even, 0, 900);
        assert!(linear.breaks.is_empty());
        assert!((linear.x(450) - PLOT_W / 2.0).abs() < 1e-6);
    }
}
