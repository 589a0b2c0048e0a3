//! What the file store refuses as too large: requests are estimated first, cheaply, before
//! anything is done; the record an operation writes is then measured exactly.

use wf_core::{ChildOutcome, JournalEntry, Op};

use crate::error::StoreError;
use crate::limits;
use crate::model::{Checkpoint, Commit, NewInvocation, Outcome};
use crate::steering::NewEvent;
use crate::tables::Change;

/// Refuses a request or record of `bytes` over [`limits::MAX_RECORD_BYTES`]. Requests are
/// estimated first (see `commit_bytes`), cheaply, before anything is done; the record an
/// operation writes is then measured exactly ([`check_record`]).
pub(super) fn check_size(what: &str, bytes: usize) -> Result<(), StoreError> {
    let limit = limits::MAX_RECORD_BYTES;
    if bytes > limit {
        tracing::debug!(what, bytes, "refusing an oversized request");
        return Err(StoreError::TooLarge {
            what: what.to_owned(),
            size: bytes,
            limit,
        });
    }
    Ok(())
}

/// Refuses the record of `changes` when its encoding is over [`limits::MAX_RECORD_BYTES`] (or
/// cannot be encoded): measured exactly, whatever the request looked like.
pub(super) fn check_record(changes: &[Change]) -> Result<(), StoreError> {
    if changes.is_empty() {
        return Ok(());
    }
    let bytes = wf_core::codec::encoded_len(changes)?;
    check_size("the record of this operation", bytes)
}

pub(super) fn invocation_bytes(new: &NewInvocation) -> usize {
    new.args.len() + new.task.as_str().len() + 256
}

fn journal_bytes(entry: &JournalEntry) -> usize {
    64 + match &entry.op {
        Op::DataGet { key, value } => key.len() + value.as_ref().map_or(0, Vec::len),
        Op::ChildResult {
            outcome: ChildOutcome::Success(v),
            ..
        } => v.len(),
        Op::ChildResult {
            outcome: ChildOutcome::Failed(f),
            ..
        } => f.message.len(),
        Op::Event { name, payload, .. } => name.len() + payload.len(),
        Op::Patch { id } => id.len(),
        Op::Cancelled { reason } => reason.len(),
        _ => 64,
    }
}

pub(super) fn commit_bytes(commit: &Commit) -> usize {
    let outcome = match &commit.outcome {
        Outcome::Success(r) => r.len(),
        Outcome::Failed(f)
        | Outcome::Retry { error: f, .. }
        | Outcome::Deferred { error: f, .. } => f.message.len(),
        Outcome::Waiting { on } => on.len() * 16,
        Outcome::Suspended(s) => {
            s.children.len() * 16 + s.event.as_ref().map_or(0, String::len) + 16
        }
        Outcome::Released => 0,
    };
    outcome
        + parts_bytes(&commit.journal, &commit.data, &commit.children)
        + commit.consumed.len() * 8
}

pub(super) fn progress_bytes(checkpoint: &Checkpoint) -> usize {
    parts_bytes(&checkpoint.journal, &checkpoint.data, &checkpoint.children) + 256
}

fn parts_bytes(
    journal: &[JournalEntry],
    data: &[(String, Vec<u8>)],
    children: &[NewInvocation],
) -> usize {
    journal.iter().map(journal_bytes).sum::<usize>()
        + data
            .iter()
            .map(|(k, v)| k.len() + v.len() + 32)
            .sum::<usize>()
        + children.iter().map(invocation_bytes).sum::<usize>()
}

pub(super) fn event_bytes(event: &NewEvent) -> usize {
    event.name.len() + event.payload.len() + event.key.as_ref().map_or(0, String::len) + 64
}
