//! The knobs of a run ([`SimOptions`]): fault and corpus bounds, and which backend the checked
//! run uses.

/// Knobs of a run (the defaults are what CI runs).
#[derive(Debug, Clone, Copy)]
pub struct SimOptions {
    /// At most this many faults per seed.
    pub max_faults: u64,
    /// Workflows per corpus: 1 to this.
    pub max_workflows: u64,
    /// Half the torn crashes are [`CrashKind::Reordered`](crate::simfs::CrashKind::Reordered) (sector holes in the unsynced tail).
    pub reorder: bool,
    /// Runs the checked run on the memory store instead: no disk faults (a memory store does
    /// not survive its process), the zombie still stalls, and the results must equal the file
    /// store's fault-free run.
    pub memory: bool,
    /// Runs the checked run on Redis through a fault-injecting proxy instead (see
    /// [`crate::redis_sim`]): not bit-for-bit repeatable; results must equal the file store's.
    pub redis: bool,
    /// Runs the corpus on Redis with real worker threads of two apps instead (see
    /// [`crate::stress`]): not deterministic; results must equal the file store's.
    pub stress: bool,
    /// Opens the file store with `FileOptions::pipelined_commits` (the store's default, and
    /// this one's; `--unpipelined` turns it off): workers' commits join the next group commit,
    /// and a reordered power loss can leave an unsynced hole that the next open cuts.
    pub pipelined: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            max_faults: 3,
            max_workflows: 4,
            reorder: true,
            memory: false,
            redis: false,
            stress: false,
            pipelined: true,
        }
    }
}
