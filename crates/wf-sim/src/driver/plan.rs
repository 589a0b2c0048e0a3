//! The fault plan of a seed: how many faults, which, when each fires after it is armed, and what
//! the crash that follows keeps.

use crate::driver::SimOptions;
use crate::rng::SimRng;
use crate::simfs::{CrashKind, Fault};

/// A fault the driver will inject: `after` operations from when it is armed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedFault {
    /// Operations from arming to firing.
    pub after: u64,
    /// What fires.
    pub fault: Fault,
    /// What the crash that follows keeps.
    pub crash: CrashKind,
}

/// Draws the faulty run's plan from `rng`: 1 to `max_faults` faults, each armed when the one
/// before fired and firing within the reference run's `ops` file-system operations spread over
/// them.
pub(crate) fn plan(rng: &mut SimRng, ops: u64, options: &SimOptions) -> Vec<PlannedFault> {
    let faults = rng.range(1, options.max_faults);
    (0..faults)
        .map(|_| {
            let after = rng.range(1, ops / faults.max(1) + 1);
            let (fault, crash) = match rng.below(6) {
                0 => (Fault::Die, CrashKind::Process),
                1 => (Fault::Die, CrashKind::PowerLoss),
                2 => (Fault::Die, CrashKind::Torn),
                3 => (Fault::SyncEio, pick_crash(rng)),
                4 => (Fault::SyncEnospc, pick_crash(rng)),
                _ => (Fault::WriteEnospc, pick_crash(rng)),
            };
            let crash = if crash == CrashKind::Torn && options.reorder && rng.chance(50) {
                CrashKind::Reordered
            } else {
                crash
            };
            PlannedFault {
                after,
                fault,
                crash,
            }
        })
        .collect()
}

fn pick_crash(rng: &mut SimRng) -> CrashKind {
    match rng.below(3) {
        0 => CrashKind::Process,
        1 => CrashKind::PowerLoss,
        _ => CrashKind::Torn,
    }
}
