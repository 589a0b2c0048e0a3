//! One execution: run a claimed invocation's body and turn what happened into one commit.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use wf_core::{Failure, FailureKind, Timestamp};
use wf_store::{Claim, Commit, InvocationRecord, Outcome, StoreError};

use crate::app::App;
use crate::context::TaskContext;
use crate::error::{TaskError, WfError};
use crate::task::{BodyError, RegisteredTask};
use crate::workflow::Interruption;

/// How long an execution interrupted by a failed store read waits before it runs again.
const STORE_RETRY_DELAY: Duration = Duration::from_secs(1);

/// How an execution ended, for worker statistics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    Success,
    Failed,
    Retry,
    Waiting,
    /// The commit was refused: the lease was lost (expired or taken over).
    LeaseLost,
}

/// Runs the body of a claimed invocation and commits the outcome at `now()` (a function, so the
/// time is read after the body ran).
pub(crate) fn execute(
    app: &App,
    claim: Claim,
    now: impl Fn() -> Timestamp,
) -> Result<Ended, WfError> {
    let Claim {
        lease,
        record,
        journal,
    } = claim;
    let span = tracing::info_span!(
        "invocation",
        task = %record.spec.task,
        invocation = %record.spec.id,
        workflow = %record.spec.identity.workflow_id,
        attempt = lease.attempt,
    );
    let _entered = span.enter();
    let commit = match app.registered(&record.spec.task) {
        Some(task) => run(app, &task, &record, journal, lease.attempt, &now),
        None => {
            // Claims are filtered by the registered tasks, so this needs a claim made with
            // another task set (or a task unregistered since): hand it back for a worker that
            // runs it, never fail it.
            tracing::warn!("claimed a task this worker's app has not registered; releasing it");
            Commit::outcome(Outcome::Released)
        }
    };
    let ended = match &commit.outcome {
        Outcome::Success(_) => Ended::Success,
        Outcome::Failed(_) => Ended::Failed,
        Outcome::Retry { .. } | Outcome::Deferred { .. } => Ended::Retry,
        Outcome::Waiting { .. } | Outcome::Released => Ended::Waiting,
    };
    match app.store().commit(&lease, commit, now()) {
        Ok(()) => {
            tracing::debug!(?ended, "committed");
            Ok(ended)
        }
        Err(StoreError::LeaseLost { reason, .. }) => {
            tracing::warn!(%reason, "commit refused: lease lost; another worker owns this invocation now");
            Ok(Ended::LeaseLost)
        }
        Err(e) if e.is_refusal() => {
            // Running the body again would build the same commit: fail the invocation instead
            // of letting its lease expire and recovering it into the same refusal.
            tracing::error!(error = %e, "commit refused by the store; failing the invocation");
            let kind = match e {
                StoreError::Codec(_) | StoreError::TooLarge { .. } => FailureKind::Codec,
                _ => FailureKind::Store,
            };
            let failure = Failure::new(
                kind,
                format!(
                    "the store refused to save this execution ({e}); nothing it recorded was \
                     kept, and the invocation is failed because running it again would build \
                     the same commit"
                ),
            );
            app.store()
                .commit(&lease, Commit::outcome(Outcome::Failed(failure)), now())?;
            Ok(Ended::Failed)
        }
        Err(e) => Err(e.into()),
    }
}

fn run(
    app: &App,
    task: &RegisteredTask,
    record: &InvocationRecord,
    journal: Vec<wf_core::JournalEntry>,
    attempt: u32,
    now: &impl Fn() -> Timestamp,
) -> Commit {
    let ctx = TaskContext::new(app.clone(), record.spec.clone(), attempt, journal);
    let result = catch_unwind(AssertUnwindSafe(|| (task.body)(&ctx, &record.spec.args)));
    let (det, buffers) = ctx.finish().finish();
    let (journal, divergence) = det.finish();

    if let Some(nd) = divergence {
        tracing::error!(error = %nd, "non-determinism");
        return Commit::outcome(Outcome::Failed(Failure::non_determinism(nd)));
    }
    let mut data = buffers.data;
    let mut children = buffers.children;
    if let Some(cut) = buffers.cut {
        data.truncate(cut.data_len);
        children.truncate(cut.children_len);
        let outcome = match cut.why {
            Interruption::Suspended { on } => Outcome::Waiting { on },
            Interruption::StoreFailed { error } => {
                tracing::warn!(%error, delay = ?STORE_RETRY_DELAY, "a store read failed mid-body; running it again later");
                Outcome::Deferred {
                    not_before: not_before(now(), STORE_RETRY_DELAY),
                    error: Failure::new(
                        FailureKind::Store,
                        format!(
                            "a store read failed while the body ran ({error}); the invocation \
                             runs again in {} s from its last recorded step, without spending \
                             its retry budget",
                            STORE_RETRY_DELAY.as_secs()
                        ),
                    ),
                }
            }
        };
        return Commit {
            journal,
            data,
            children,
            outcome,
        };
    }
    let outcome = match result {
        Ok(Ok(bytes)) => Outcome::Success(bytes),
        Ok(Err(BodyError::Args(e))) => Outcome::Failed(Failure::new(
            FailureKind::Codec,
            format!(
                "arguments do not decode as this task's argument type ({e}); was the task's signature changed?"
            ),
        )),
        Ok(Err(BodyError::Result(e))) => Outcome::Failed(Failure::new(
            FailureKind::Codec,
            format!("result cannot be encoded: {e}"),
        )),
        Ok(Err(BodyError::Task(e))) => failed(task, record, Some(&e), failure_of(&e), now),
        Err(panic) => failed(
            task,
            record,
            None,
            Failure::new(
                FailureKind::Panic,
                format!("task body panicked: {}", panic_text(&*panic)),
            ),
            now,
        ),
    };
    Commit {
        journal,
        data,
        children,
        outcome,
    }
}

/// A failed attempt: retried if the policy allows, else final.
fn failed(
    task: &RegisteredTask,
    record: &InvocationRecord,
    error: Option<&TaskError>,
    failure: Failure,
    now: &impl Fn() -> Timestamp,
) -> Outcome {
    // The retry predicate is user code: a panic in it must not take the worker thread down.
    let decision = catch_unwind(AssertUnwindSafe(|| {
        task.options
            .retry
            .next_delay(record.spec.id, record.state.retries, error)
    }));
    let delay = match decision {
        Ok(delay) => delay,
        Err(panic) => {
            let failure = Failure::new(
                FailureKind::Panic,
                format!(
                    "the task's retry_if predicate panicked ({}) while deciding whether to retry \
                     this error, so it is final: {failure}",
                    panic_text(&*panic)
                ),
            );
            tracing::error!(error = %failure, "retry predicate panicked");
            return Outcome::Failed(failure);
        }
    };
    match delay {
        Some(delay) => {
            tracing::info!(error = %failure, ?delay, "attempt failed; retrying");
            Outcome::Retry {
                not_before: not_before(now(), delay),
                error: failure,
            }
        }
        None => {
            tracing::info!(error = %failure, "failed");
            Outcome::Failed(failure)
        }
    }
}

/// The first whole millisecond at which at least `delay` has passed since `now`. `now` is a
/// reading truncated to the millisecond and `delay` may have a fraction of one, so both are
/// rounded up: a backoff is never shorter than asked.
fn not_before(now: Timestamp, delay: Duration) -> Timestamp {
    let ms = delay.as_nanos().div_ceil(1_000_000).saturating_add(1);
    Timestamp(now.0.saturating_add(u64::try_from(ms).unwrap_or(u64::MAX)))
}

fn failure_of(e: &TaskError) -> Failure {
    let kind = match e.downcast_ref::<WfError>() {
        Some(WfError::ChildFailed { .. }) => FailureKind::Child,
        _ => FailureKind::Task,
    };
    Failure::new(kind, e.message())
}

/// The text of a panic payload.
pub(crate) fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic payload".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backoff_is_never_shorter_than_asked() {
        // `now` = 1000 stands for any real time in [1000, 1001) ms.
        let now = Timestamp(1000);
        assert_eq!(not_before(now, Duration::from_millis(40)), Timestamp(1041));
        assert_eq!(
            not_before(now, Duration::from_micros(39_500)),
            Timestamp(1041)
        );
        assert_eq!(not_before(now, Duration::ZERO), Timestamp(1001));
        assert_eq!(not_before(now, Duration::MAX), Timestamp(u64::MAX));
    }
}
