//! Runtime scenarios: tasks per second through the whole engine. **Place-holder: to be added
//! with `wf-runtime`.**
//!
//! What belongs here (one function per scenario, each returning rows; add the facade `wf` to this
//! crate's dependencies):
//!
//! - a no-op task called N times through an `App` on the memory store, run by a worker with 1 and
//!   `config.threads` threads: tasks/s end to end (call -> worker -> result), and the ratio to
//!   `floors.memory_round_trips_per_sec` (the runtime's overhead over the bare store);
//! - the same on the file store, as a ratio to `floors.fsync_per_sec`;
//! - a workflow with fan-out (a parent starting K children and joining them), replays included;
//! - later, Redis: tasks/s against `redis-benchmark` operations/s measured in the same run.

use crate::Config;
use crate::report::{Floors, Row};

/// Runs every runtime scenario.
pub fn run(_config: &Config, _floors: &mut Floors) -> Result<Vec<Row>, String> {
    Ok(vec![Row::note(
        "runtime: tasks through App + workers",
        "not measured yet: add it in crates/wf-bench/src/runtime.rs",
    )])
}
