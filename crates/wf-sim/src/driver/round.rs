//! What every backend's driver does the same way in a round: the virtual clock's start and step,
//! the round limit, submitting the corpus, sending due events and stalling the zombie.

use std::time::Duration;

use wf_core::{InvocationId, Timestamp};
use wf_runtime::{App, WfError};

use crate::corpus::{Program, Tasks};
use crate::zombie;

/// Rounds (run until idle, or crash and reopen) before a run counts as stuck.
pub(crate) const MAX_ROUNDS: usize = 64;

/// The virtual time a run starts at (2030-01-01), and how far it moves each round: past every
/// lease, retry backoff and sleep of the round before, as if the process restarted an hour later.
pub(crate) const START: Timestamp = Timestamp(1_893_456_000_000);
pub(crate) const ROUND: Duration = Duration::from_secs(3600);

/// The start of a round, the same on every backend: submits the workflows not submitted yet
/// (keyed, so a repeat after a crash finds the first), sends the events that are due, and, when
/// `stall_at` is given (the zombie's round), lets a worker claim something and stall past its
/// lease. Returns the first error and the stalled claim.
pub(crate) fn start_round(
    app: &App,
    tasks: &Tasks,
    programs: &[Program],
    ids: &mut [Option<InvocationId>],
    sent: &mut [usize],
    stall_at: Option<Timestamp>,
) -> (Result<(), WfError>, Option<zombie::Zombie>) {
    for (k, p) in programs.iter().enumerate() {
        if ids[k].is_none() {
            match tasks.flow.call_keyed(app, &format!("w{k}"), p.clone()) {
                Ok(inv) => ids[k] = Some(inv.id()),
                Err(e) => return (Err(e), None),
            }
        }
    }
    if let Err(e) = send_events(app, programs, ids, sent) {
        return (Err(e), None);
    }
    match stall_at.map(|now| zombie::stall(app, now)) {
        None => (Ok(()), None),
        Some(Ok(z)) => (Ok(()), z),
        Some(Err(e)) => (Err(WfError::Store(e)), None),
    }
}

/// Sends each submitted workflow the `go` events it waits for that were not acknowledged yet
/// (idempotent by key, so a send whose answer a crash lost is safe to repeat).
pub(crate) fn send_events(
    app: &App,
    programs: &[Program],
    ids: &[Option<InvocationId>],
    sent: &mut [usize],
) -> Result<(), WfError> {
    for (k, p) in programs.iter().enumerate() {
        let Some(id) = ids[k] else { continue };
        while sent[k] < p.events() {
            let j = sent[k] as u64;
            app.send_event_with_key(id, "go", &format!("e{j}"), &j)?;
            sent[k] += 1;
        }
    }
    Ok(())
}
