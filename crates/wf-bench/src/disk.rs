//! The raw fsync floor of the scratch disk: how many durable appends per second the hardware
//! allows, before any store logic. The file store's target is one group-committed fsync shared
//! by many invocations, so its tasks/s are judged as a multiple of this rate.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::time::Instant;

use crate::Config;
use crate::report::{Floors, Row, Samples};

const BLOCK: usize = 4096;
const MAX_SYNCS: u64 = 200_000;

/// Appends 4 KiB and calls `File::sync_data` in a loop for the configured duration.
pub(crate) fn run(config: &Config, floors: &mut Floors) -> Result<Vec<Row>, String> {
    fs::create_dir_all(&config.dir)
        .map_err(|e| format!("cannot create {}: {e}", config.dir.display()))?;
    let path = config.dir.join(format!("fsync-{}.tmp", std::process::id()));
    let result = measure(config, &path);
    let _ = fs::remove_file(&path);
    let (syncs, elapsed, samples) = result.map_err(|e| format!("{}: {e}", path.display()))?;
    let row = Row::measured(
        "disk: append 4 KiB + sync_data",
        1,
        syncs,
        elapsed,
        samples.latency(),
    );
    floors.fsync_per_sec = row.per_sec;
    Ok(vec![row.with_note(format!(
        "the file store's floor (disk under {})",
        config.dir.display()
    ))])
}

fn measure(
    config: &Config,
    path: &std::path::Path,
) -> std::io::Result<(u64, std::time::Duration, Samples)> {
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)?;
    // Make the file itself durable first, so the loop measures appends only.
    file.sync_all()?;
    let block: Vec<u8> = (0..BLOCK).map(|i| (i % 251) as u8).collect();
    let mut samples = Samples::with_capacity(16_384);
    let start = Instant::now();
    let deadline = start + config.duration;
    let mut syncs = 0;
    let mut t0 = start;
    while syncs < MAX_SYNCS && t0 < deadline {
        file.write_all(&block)?;
        file.sync_data()?;
        let t1 = Instant::now();
        samples.push(t1 - t0);
        syncs += 1;
        t0 = t1;
    }
    Ok((syncs, start.elapsed(), samples))
}
