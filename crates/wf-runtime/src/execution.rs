//! One execution: run a claimed invocation's body, seal what its recorder recorded, and turn it
//! into one commit.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use wf_core::{ChildOutcome, Ending, Failure, FailureKind, JournalEntry, Timestamp};
use wf_store::{
    Claim, Commit, InvocationRecord, InvocationSpec, Lease, Outcome, StoreError, Suspension,
    TaskSet,
};

use crate::app::App;
use crate::cancel::Registered;
use crate::clock::ExecClock;
use crate::context::TaskContext;
use crate::error::{TaskError, WfError};
use crate::inline::Inline;
use crate::recorder::{BodyEnd, Interruption, Recorder, Sealed, Verdict};
use crate::registry::{BodyError, RegisteredTask};
use crate::runner::Runner;
use crate::scope::BodyScope;

/// How long an execution interrupted by a failed store read waits before it runs again.
const STORE_RETRY_DELAY: Duration = Duration::from_secs(1);

/// How an execution ended: the outcome it committed (one variant per [`Outcome`]), or a refused
/// commit. For worker statistics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// Committed [`Outcome::Success`].
    Success,
    /// Committed [`Outcome::Failed`].
    Failed,
    /// Committed [`Outcome::Retry`].
    Retry,
    /// Committed [`Outcome::Deferred`].
    Deferred,
    /// Committed [`Outcome::Waiting`].
    Waiting,
    /// Committed [`Outcome::Released`].
    Released,
    /// The commit was refused: the lease was lost (expired or taken over).
    LeaseLost,
}

impl From<&Outcome> for Ended {
    fn from(outcome: &Outcome) -> Self {
        match outcome {
            Outcome::Success(_) => Ended::Success,
            Outcome::Failed(_) => Ended::Failed,
            Outcome::Retry { .. } => Ended::Retry,
            Outcome::Deferred { .. } => Ended::Deferred,
            Outcome::Waiting { .. } | Outcome::Suspended(_) => Ended::Waiting,
            Outcome::Released => Ended::Released,
        }
    }
}

/// What an execution amounted to: how it ended, and, when it ran inline for a parent (its
/// runner is nested) and committed a final outcome, that outcome for the parent to record.
#[derive(Debug)]
pub(crate) struct Executed {
    pub(crate) ended: Ended,
    pub(crate) outcome: Option<ChildOutcome>,
    /// What the commit claimed next when it claimed (`then_claim`): `Some(None)` when it found
    /// nothing.
    pub(crate) next: Option<Option<Claim>>,
}

impl Executed {
    fn new(ended: Ended) -> Self {
        Self {
            ended,
            outcome: None,
            next: None,
        }
    }
}

/// The final outcome a commit carries, as a parent records it.
fn final_outcome(outcome: &Outcome) -> Option<ChildOutcome> {
    match outcome {
        Outcome::Success(bytes) => Some(ChildOutcome::Success(bytes.clone())),
        Outcome::Failed(failure) => Some(ChildOutcome::Failed(failure.clone())),
        _ => None,
    }
}

/// Runs the body of a claimed invocation for `runner` and commits the outcome at the runner's
/// time (read after the body ran); with `then_claim`, the commit also claims the next invocation
/// of those tasks for the runner's worker (one store operation where the store can).
pub(crate) fn execute(
    app: &App,
    claim: Claim,
    runner: &Runner,
    then_claim: Option<&TaskSet>,
) -> Result<Executed, WfError> {
    let mut prepared = prepare(app, claim, runner);
    let span = prepared.span.clone();
    let _entered = span.enter();
    let (spec, attempt) = (prepared.record.spec.clone(), prepared.lease.attempt);
    let ran = prepared.body.as_mut().map(|b| {
        let (recorder, inline) = (b.recorder(), b.inline(runner));
        run_body(app, &b.task, &spec, attempt, recorder, b.clock, inline)
    });
    conclude(app, prepared, ran, runner, then_claim)
}

/// A claimed invocation, ready for its body to run: [`prepare`], then run the body (the
/// sync [`run_body`] or the async one), then [`conclude`].
#[derive(Debug)]
pub(crate) struct Prepared {
    /// The execution's tracing span.
    pub(crate) span: tracing::Span,
    pub(crate) lease: Lease,
    pub(crate) record: InvocationRecord,
    /// `None` when this app does not register the claimed task.
    pub(crate) body: Option<BodyParts>,
}

/// What a registered body runs with.
#[derive(Debug)]
pub(crate) struct BodyParts {
    pub(crate) task: Arc<RegisteredTask>,
    /// Registered while the body runs, so a cancellation reaches it.
    running: Registered,
    pub(crate) clock: ExecClock,
    journal: Vec<JournalEntry>,
    lease: Lease,
    enabled: bool,
}

impl BodyParts {
    /// The execution's recorder (once).
    pub(crate) fn recorder(&mut self) -> Recorder {
        let journal = std::mem::take(&mut self.journal);
        Recorder::new(self.lease.invocation, journal).with_cancel(self.running.flag())
    }

    /// How the execution runs its children inline with `runner`.
    pub(crate) fn inline(&self, runner: &Runner) -> Inline {
        Inline::new(self.lease.clone(), runner, self.enabled)
    }
}

/// Step 1 of an execution: its span, and what its body runs with.
pub(crate) fn prepare(app: &App, claim: Claim, runner: &Runner) -> Prepared {
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
    let body = app.registered(&record.spec.task).map(|task| BodyParts {
        task,
        running: app.running().register(record.spec.id),
        clock: ExecClock::new(runner.now()),
        journal,
        lease: lease.clone(),
        enabled: app.config().inline_children,
    });
    Prepared {
        span,
        lease,
        record,
        body,
    }
}

/// Step 3 of an execution: builds the commit of what the body did (`ran`, `None` when the
/// task is not registered here) and commits it at the runner's time; with `then_claim` (a
/// worker's own claim only), claims the next invocation of those tasks in the same step.
pub(crate) fn conclude(
    app: &App,
    prepared: Prepared,
    ran: Option<(BodyResult, Sealed)>,
    runner: &Runner,
    then_claim: Option<&TaskSet>,
) -> Result<Executed, WfError> {
    let now = || runner.now();
    let Prepared {
        span,
        lease,
        record,
        body,
    } = prepared;
    let _entered = span.enter();
    let mut cancel_after_commit = Vec::new();
    let commit = match (body, ran) {
        (Some(body), Some((result, mut sealed))) => {
            if let Some(reason) = &sealed.told {
                let started = std::mem::take(&mut sealed.started_before_told);
                cancel_after_commit = started.into_iter().map(|c| (c, reason.clone())).collect();
            }
            let commit = commit_of(&body.task, &record, result, sealed, &now);
            drop(body);
            commit
        }
        _ => {
            // Claims are filtered by the registered tasks, so this needs a claim made with
            // another task set (or a task unregistered since): hand it back for a worker that
            // runs it, never fail it.
            tracing::warn!("claimed a task this worker's app has not registered; releasing it");
            Commit::outcome(Outcome::Released)
        }
    };
    let ended = Ended::from(&commit.outcome);
    let outcome = runner
        .is_nested()
        .then(|| final_outcome(&commit.outcome))
        .flatten();
    // A worker's own claim needs no acknowledgement it acts on: its commit may be pipelined (the
    // store hands the outcome to no one before it is durable). A child run inline reports its
    // outcome to its caller, which records it and goes on: that commit must be durable first.
    // Claim nothing once a stop was asked, nor with children to cancel once the commit is in
    // (the claim could take one).
    let then_claim = then_claim
        .filter(|_| !runner.is_nested() && runner.may_start() && cancel_after_commit.is_empty());
    let committed = if runner.is_nested() {
        app.store().commit(&lease, commit, now()).map(|()| None)
    } else if let Some(tasks) = then_claim {
        app.store()
            .commit_then_claim(&lease, commit, tasks, app.lease_duration(), now())
            .map(|claimed| match claimed {
                Ok(next) => Some(next),
                Err(e) => {
                    // The commit is in; the worker's loop claims again and meets the error there.
                    tracing::debug!(error = %e, "the claim after the commit failed");
                    None
                }
            })
    } else {
        app.store()
            .commit_pipelined(&lease, commit, now())
            .map(|()| None)
    };
    match committed {
        Ok(next) => {
            tracing::debug!(?ended, "committed");
            app.ring();
            cancel_started_before_told(app, &cancel_after_commit, &now);
            Ok(Executed {
                ended,
                outcome,
                next,
            })
        }
        Err(StoreError::LeaseLost { reason, .. }) => {
            tracing::warn!(%reason, "commit refused: lease lost; another worker owns this invocation now");
            Ok(Executed::new(Ended::LeaseLost))
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
            let outcome = runner
                .is_nested()
                .then(|| ChildOutcome::Failed(failure.clone()));
            app.store()
                .commit(&lease, Commit::outcome(Outcome::Failed(failure)), now())?;
            Ok(Executed {
                ended: Ended::Failed,
                outcome,
                next: None,
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// The children an execution started before it told its body of the cancellation of its tree
/// were not in the store when the tree was cancelled; they are part of it, and are cancelled as
/// soon as the commit that submits them is in. (Best effort: a failure is logged, and a child a
/// worker claimed meanwhile ends cancelled at its own commit.)
fn cancel_started_before_told(
    app: &App,
    children: &[(wf_core::InvocationId, String)],
    now: &impl Fn() -> Timestamp,
) {
    for (child, reason) in children {
        if let Err(e) = app.store().cancel_tree(*child, reason, now()) {
            tracing::warn!(%child, error = %e, "could not cancel a child started before the body was told");
        }
    }
}

/// What a body's run came to: its result (or panic).
pub(crate) type BodyResult = std::thread::Result<Result<Vec<u8>, BodyError>>;

/// Runs the body of `spec` once, recorded by `recorder` on `clock`, running its children inline
/// as `inline` allows, and seals the recorder.
pub(crate) fn run_body(
    app: &App,
    task: &RegisteredTask,
    spec: &Arc<InvocationSpec>,
    attempt: u32,
    recorder: Recorder,
    clock: ExecClock,
    inline: Inline,
) -> (BodyResult, Sealed) {
    #[cfg(feature = "tokio")]
    if task.is_async() {
        return crate::asynch::run_body_blocking(app, task, spec, attempt, recorder, clock, inline);
    }
    let ctx = TaskContext::new(app, spec.clone(), attempt, recorder, clock, inline);
    let result = {
        let _scope = BodyScope::enter(spec.id);
        catch_unwind(AssertUnwindSafe(|| task.run(&ctx, &spec.args)))
    };
    let sealed = ctx.into_recorder().seal(body_end(&result));
    (result, sealed)
}

/// How a body's run ended, as the recorder's seal takes it (`None`: it never ran).
pub(crate) fn body_end(result: &BodyResult) -> Option<BodyEnd> {
    match result {
        Ok(Ok(_)) => Some(BodyEnd::from(Ending::Returned)),
        Ok(Err(BodyError::Args(_))) => None,
        Ok(Err(BodyError::Result(e))) => Some(BodyEnd {
            how: Ending::Failed,
            said: Some(format!("result cannot be encoded: {e}")),
        }),
        Ok(Err(BodyError::Task(e))) => Some(BodyEnd {
            how: Ending::Failed,
            said: Some(e.message().to_owned()),
        }),
        Err(panic) => Some(BodyEnd {
            how: Ending::Panicked,
            said: Some(panic_text(&**panic)),
        }),
    }
}

/// Builds the commit of a sealed execution: the recorder's verdict first (a divergence fails,
/// an interruption suspends or defers, a body told of its cancellation ends cancelled), then
/// the body's own result.
fn commit_of(
    task: &RegisteredTask,
    record: &InvocationRecord,
    result: BodyResult,
    sealed: Sealed,
    now: &impl Fn() -> Timestamp,
) -> Commit {
    let Sealed {
        journal,
        writes,
        children,
        consumed,
        told,
        verdict,
        ..
    } = sealed;
    let internal = |what: &str| {
        tracing::error!(what, "internal error");
        Commit::outcome(Outcome::Failed(Failure::new(
            FailureKind::Internal,
            format!("{what}; this is a bug in wf, please report it"),
        )))
    };
    let outcome = match verdict {
        Verdict::Diverged(nd) => {
            tracing::error!(error = %nd, "non-determinism");
            return Commit::outcome(Outcome::Failed(Failure::non_determinism(nd)));
        }
        Verdict::Interrupted(Interruption::Suspended {
            on,
            until: None,
            event: None,
        }) if on.is_empty() => {
            return internal(
                "the execution suspended without an unfinished child, a timer or an event to \
                 wait for, which would replay it in a loop",
            );
        }
        Verdict::Interrupted(Interruption::Suspended {
            on,
            until: None,
            event: None,
        }) => Outcome::Waiting { on },
        Verdict::Interrupted(Interruption::Suspended { on, until, event }) => {
            Outcome::Suspended(Suspension {
                children: on,
                wake_at: until,
                event,
            })
        }
        Verdict::Interrupted(Interruption::EndOfJournal) => {
            return internal("a live execution stopped as a replay check");
        }
        Verdict::Interrupted(Interruption::StoreFailed { error }) => {
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
        Verdict::Ended => match &told {
            // Told of its cancellation, the body ran its compensating steps: it ends cancelled.
            Some(reason) => Outcome::Failed(Failure::new(FailureKind::Cancelled, reason.clone())),
            None => body_outcome(task, record, result, now),
        },
    };
    Commit {
        journal,
        data: writes,
        children,
        outcome,
        consumed,
        cancel_acknowledged: told.is_some(),
    }
}

/// The outcome of a body that ended in step with its journal.
fn body_outcome(
    task: &RegisteredTask,
    record: &InvocationRecord,
    result: std::thread::Result<Result<Vec<u8>, BodyError>>,
    now: &impl Fn() -> Timestamp,
) -> Outcome {
    match result {
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

/// When something delayed by `delay` from `now` may run. Zero means at once: `now` itself.
/// Otherwise the first whole millisecond at which at least `delay` has passed: `now` is a
/// reading truncated to the millisecond and `delay` may have a fraction of one, so both are
/// rounded up, and a backoff is never shorter than asked.
fn not_before(now: Timestamp, delay: Duration) -> Timestamp {
    if delay.is_zero() {
        return now;
    }
    let ms = delay.as_nanos().div_ceil(1_000_000).saturating_add(1);
    Timestamp(now.0.saturating_add(u64::try_from(ms).unwrap_or(u64::MAX)))
}

fn failure_of(e: &TaskError) -> Failure {
    let kind = if e.is_child_failure() {
        FailureKind::Child
    } else {
        FailureKind::Task
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
        assert_eq!(not_before(now, Duration::from_nanos(1)), Timestamp(1002));
        assert_eq!(not_before(now, Duration::MAX), Timestamp(u64::MAX));
    }

    #[test]
    fn no_backoff_is_at_once() {
        assert_eq!(not_before(Timestamp(1000), Duration::ZERO), Timestamp(1000));
    }
}
