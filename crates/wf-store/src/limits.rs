//! Size limits every backend shares, so that a request one backend accepts another does not
//! refuse. A request over a limit is refused alone with [`crate::StoreError::TooLarge`]
//! before anything is applied; the store goes on serving everyone else.

use wf_core::codec::MAX_DECODE_BYTES;
use wf_core::{Failure, TaskId};

use crate::error::StoreError;

/// The largest single value (arguments, a result, a workflow data value, an error text) every
/// backend stores. Backends may refuse larger ones with [`crate::StoreError::TooLarge`].
pub const MAX_VALUE_BYTES: usize = 64 << 20;

/// The largest encoded record one operation may write (a submission, or a commit with its
/// journal, data and children), with room left below what the codec decodes
/// ([`MAX_DECODE_BYTES`]) for the framing and bookkeeping a backend adds.
pub const MAX_RECORD_BYTES: usize = MAX_DECODE_BYTES - (1 << 20);

/// The longest error text a store keeps, in bytes: a failure's message (and each text of a
/// non-determinism report) beyond it is cut at a character boundary and ends with a note
/// `… [N bytes cut]`. An error is stored in the invocation's state, which later records copy
/// (a claim, a recovery, a wake-up), so it is kept small; a cancellation's reason is cut the
/// same way. Every backend cuts the same texts the same way (see [`bounded_failure`]).
pub const MAX_ERROR_BYTES: usize = 64 << 10;

/// The longest task name a store accepts, in bytes; a submission (or a child in a commit)
/// naming a longer one is refused with [`crate::StoreError::TooLarge`]. Task names are stored
/// with every invocation and in every task index, so they are kept short.
pub const MAX_TASK_NAME_BYTES: usize = 1 << 10;

/// `text`, cut to at most [`MAX_ERROR_BYTES`] bytes (at a character boundary) with a note of how
/// many bytes were cut, or unchanged when it is not longer.
pub fn bounded_text(text: String) -> String {
    if text.len() <= MAX_ERROR_BYTES {
        return text;
    }
    let mut keep = MAX_ERROR_BYTES;
    while !text.is_char_boundary(keep) {
        keep -= 1;
    }
    let cut = text.len() - keep;
    let mut out = text;
    out.truncate(keep);
    out.push_str(&format!(" … [{cut} bytes cut]"));
    out
}

/// `failure` as a store keeps it: its message and non-determinism texts cut by
/// [`bounded_text`].
pub fn bounded_failure(mut failure: Failure) -> Failure {
    if failure.message.len() > MAX_ERROR_BYTES {
        failure.message = bounded_text(std::mem::take(&mut failure.message));
    }
    if let Some(nd) = failure.non_determinism.as_mut() {
        for text in [&mut nd.recorded, &mut nd.requested] {
            if text.len() > MAX_ERROR_BYTES {
                *text = bounded_text(std::mem::take(text));
            }
        }
    }
    failure
}

/// Refuses a task name longer than [`MAX_TASK_NAME_BYTES`].
///
/// # Errors
/// [`StoreError::TooLarge`] naming the task name's size.
pub fn check_task_name(task: &TaskId) -> Result<(), StoreError> {
    let len = task.as_str().len();
    if len > MAX_TASK_NAME_BYTES {
        return Err(StoreError::TooLarge {
            what: "a task name".to_owned(),
            size: len,
            limit: MAX_TASK_NAME_BYTES,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_texts_are_cut_at_a_char_boundary_with_a_note() {
        let short = "é".repeat(10);
        assert_eq!(bounded_text(short.clone()), short);
        // Two-byte characters, so the limit falls inside one when it is odd.
        let long = format!("a{}", "é".repeat(MAX_ERROR_BYTES));
        let len = long.len();
        let cut = bounded_text(long);
        let (kept, note) = cut.split_once(" … [").unwrap();
        assert!(kept.len() <= MAX_ERROR_BYTES && kept.len() >= MAX_ERROR_BYTES - 1);
        assert_eq!(note, format!("{} bytes cut]", len - kept.len()));
    }
}
