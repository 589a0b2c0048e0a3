//! File store scenarios. **Place-holder: to be added with the file backend.**
//!
//! What belongs here (one function per scenario, each returning rows):
//!
//! - submit + claim + commit round trips on `wf_store::FileStore` (feature `file`; add
//!   `features = ["file"]` to this crate's `wf-store` dependency), 1 and `config.threads`
//!   threads, in a fresh directory under `config.dir`;
//! - the same with many concurrent committers, to show group commit: invocations per fsync;
//! - the note column: `Floors::ratio(row.per_sec, floors.fsync_per_sec, "fsync floor")`.

use crate::Config;
use crate::report::{Floors, Row};

/// Runs every file store scenario.
pub fn run(_config: &Config, _floors: &mut Floors) -> Result<Vec<Row>, String> {
    Ok(vec![Row::note(
        "file: submit+claim+commit",
        "not measured yet: add it in crates/wf-bench/src/file_store.rs",
    )])
}
