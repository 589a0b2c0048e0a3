//! The recorder: everything one execution of a body records, in one place.
//!
//! One recorder per execution owns
//! - the replay cursor (answers operations from the journal, records new ones),
//! - the first divergence from the journal, after which nothing more is recorded,
//! - the buffered data writes and child submissions, committed with the execution,
//! - the one stop point: where (and why) the execution stopped counting before its body ended
//!   (a suspension on unfinished children, a timer or an event, or a failed store read).
//!   Whatever the body does after it — even if it swallows the error and returns a value — is
//!   not committed, and every fallible operation after it returns the same error again, so the
//!   body keeps unwinding;
//! - the events it consumed (committed with the journal entries that record them);
//! - whether the body was told of its cancellation: the first journaled operation past the
//!   recorded journal after a cancellation request (raised by the worker's lease thread through
//!   a [`CancelFlag`]) records it and returns `WfError::Cancelled`, and every replay returns it
//!   at the same position; later operations work as usual (compensating steps).
//!
//! A body that insists after the stop point (retries the refused operation in a loop) is unwound
//! after [`REFUSALS_BEFORE_UNWIND`] refusals, so it cannot spin on its worker forever.
//!
//! When the body has ended, [`Recorder::seal`] turns all of it into a [`Sealed`] execution: what
//! to commit and a [`Verdict`].

use wf_core::{
    CallId, ChildOutcome, Ending, InvocationId, JournalEntry, NonDeterminism, RecordedEvent,
    Replay, ReplayCursor, TaskId, Timestamp, deterministic,
};
use wf_store::{Checkpoint, NewInvocation, StoreError};

use crate::cancel::CancelFlag;
use crate::error::WfError;
use crate::handle::Execution;

/// How many operations the context refuses after an execution stopped counting (suspended,
/// interrupted by a failed store read, or diverged) before it unwinds the body instead: a body
/// that retries a refused operation in a loop (`while wf.join(&h).is_err() {}`, a retry loop
/// around a failed `get_data`) would otherwise spin on its worker forever, since the answer
/// never changes within the execution. The unwinding is caught with the body's other panics;
/// the execution ends as its stop point or divergence says.
pub(crate) const REFUSALS_BEFORE_UNWIND: u32 = 1000;

/// The payload of the unwinding that stops an insisting body (see [`REFUSALS_BEFORE_UNWIND`]).
#[derive(Debug)]
pub(crate) struct InsistedAfterStop;

/// How a body ended, as [`Recorder::seal`] takes it: the ending and, for an error or a panic,
/// what it said (kept in a stop-short divergence, which it often explains).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BodyEnd {
    pub(crate) how: Ending,
    pub(crate) said: Option<String>,
}

impl From<Ending> for BodyEnd {
    fn from(how: Ending) -> Self {
        Self { how, said: None }
    }
}

/// Why an execution stopped counting before its body ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Interruption {
    /// Waiting on unfinished children, a timer or an event (whichever comes first): the
    /// invocation becomes waiting.
    Suspended {
        on: Vec<InvocationId>,
        until: Option<Timestamp>,
        event: Option<String>,
    },
    /// A store read failed: the invocation runs again later, replaying up to this point.
    StoreFailed { error: String },
    /// A replay check reached the end of the recorded journal (nothing is ever run live there).
    EndOfJournal,
}

impl Interruption {
    /// The error every operation returns once the execution is interrupted.
    fn error(&self) -> WfError {
        match self {
            Interruption::Suspended { on, .. } => WfError::Suspended {
                waiting_on: on.len(),
            },
            Interruption::EndOfJournal => WfError::Suspended { waiting_on: 0 },
            Interruption::StoreFailed { error } => {
                WfError::Store(StoreError::Unavailable(format!(
                    "a store read of this execution failed ({error}); the execution is deferred \
                     and runs again later from its last recorded step"
                )))
            }
        }
    }
}

/// The stop point: why, and how much had been recorded and buffered when it happened.
#[derive(Debug)]
struct StopPoint {
    why: Interruption,
    journal_len: usize,
    writes_len: usize,
    children_len: usize,
    consumed_len: usize,
}

/// What a sealed execution amounts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The body diverged from its journal (asked for another operation, or ended before asking
    /// for every recorded one): the invocation fails; nothing it buffered is committed.
    Diverged(NonDeterminism),
    /// The execution was interrupted: commit what came before the stop point.
    Interrupted(Interruption),
    /// The body ended in step with its journal: its result decides the outcome.
    Ended,
}

/// A sealed execution: what to commit, and the verdict.
#[derive(Debug)]
pub(crate) struct Sealed {
    pub(crate) journal: Vec<JournalEntry>,
    pub(crate) writes: Vec<(String, Vec<u8>)>,
    pub(crate) children: Vec<NewInvocation>,
    /// The events consumed (journaled) before the stop point.
    pub(crate) consumed: Vec<u64>,
    /// Why it was cancelled, when the body was told (replayed or recorded).
    pub(crate) told: Option<String>,
    /// Children this execution started before it told the body of its cancellation: they are
    /// submitted with the commit (the journal holds them) and cancelled right after it.
    pub(crate) started_before_told: Vec<InvocationId>,
    pub(crate) verdict: Verdict,
}

/// Records one execution of one invocation's body. See the module documentation.
#[derive(Debug)]
pub(crate) struct Recorder {
    execution: Execution,
    cursor: ReplayCursor,
    divergence: Option<NonDeterminism>,
    writes: Vec<(String, Vec<u8>)>,
    children: Vec<NewInvocation>,
    consumed: Vec<u64>,
    stop: Option<StopPoint>,
    cancel: CancelFlag,
    told: Option<String>,
    /// How many children this execution had started when it told the body, live.
    told_after_children: Option<usize>,
    check_only: bool,
    /// Operations refused since the execution stopped counting.
    refusals: u32,
}

impl Recorder {
    /// A recorder for a new execution of `invocation`, over its recorded `journal`.
    pub(crate) fn new(invocation: InvocationId, journal: Vec<JournalEntry>) -> Self {
        Self {
            execution: Execution::begin(invocation),
            cursor: ReplayCursor::new(invocation, journal),
            divergence: None,
            writes: Vec::new(),
            children: Vec::new(),
            consumed: Vec::new(),
            stop: None,
            cancel: CancelFlag::default(),
            told: None,
            told_after_children: None,
            check_only: false,
            refusals: 0,
        }
    }

    /// The same, told of a cancellation request through `flag`.
    pub(crate) fn with_cancel(self, flag: CancelFlag) -> Self {
        Self {
            cancel: flag,
            ..self
        }
    }

    /// The same, for a replay check: nothing is ever run past the recorded journal (every
    /// operation that would is an [`Interruption::EndOfJournal`]).
    pub(crate) fn check_only(self) -> Self {
        Self {
            check_only: true,
            ..self
        }
    }

    /// The execution being recorded (owner of the handles it creates).
    pub(crate) fn execution(&self) -> Execution {
        self.execution
    }

    /// True while operations are answered from the recorded journal.
    pub(crate) fn is_replaying(&self) -> bool {
        self.cursor.is_replaying()
    }

    /// The next journal position.
    pub(crate) fn position(&self) -> u32 {
        self.cursor.position()
    }

    /// Fails once the execution diverged or was interrupted: nothing more counts. Unwinds the
    /// body once it has been refused [`REFUSALS_BEFORE_UNWIND`] times.
    pub(crate) fn check_live(&mut self) -> Result<(), WfError> {
        let refusal = match (&self.divergence, &self.stop) {
            (Some(nd), _) => WfError::NonDeterminism(nd.clone()),
            (None, Some(stop)) => stop.why.error(),
            (None, None) => return Ok(()),
        };
        self.refusals = self.refusals.saturating_add(1);
        if self.refusals > REFUSALS_BEFORE_UNWIND {
            tracing::warn!(
                refusals = self.refusals,
                "the body keeps calling the workflow context after it was stopped ({refusal}); \
                 unwinding it"
            );
            std::panic::resume_unwind(Box::new(InsistedAfterStop));
        }
        Err(refusal)
    }

    /// A workflow wait of the body was dropped before it ended (raced against a future the
    /// journal does not know, and lost): whatever the body does next may differ on a replay, so
    /// the execution counts as diverged here.
    #[cfg(feature = "tokio")]
    pub(crate) fn abandoned(&mut self, what: &str) {
        let nd = NonDeterminism {
            invocation: self.cursor.invocation(),
            position: self.cursor.position(),
            recorded: format!("{what}, awaited to its end"),
            requested: format!(
                "{what} dropped before it ended: the body raced it (select!, a timeout) against \
                 a future the journal does not know, which a replay may not repeat; await \
                 workflow futures to their end, and use the context's durable timers for \
                 deadlines (join_timeout)"
            ),
        };
        self.diverged(nd);
    }

    /// Keeps the first divergence.
    fn diverged(&mut self, nd: NonDeterminism) -> WfError {
        self.divergence.get_or_insert(nd.clone());
        WfError::NonDeterminism(nd)
    }

    /// Runs a fallible cursor step, unless the execution no longer counts; a divergence is kept.
    fn step<T>(
        &mut self,
        op: impl FnOnce(&mut ReplayCursor) -> Result<T, NonDeterminism>,
    ) -> Result<T, WfError> {
        self.check_live()?;
        op(&mut self.cursor).map_err(|nd| self.diverged(nd))
    }

    /// Runs an infallible primitive: on divergence it is kept and `fallback` (the value a live
    /// run would draw at this position) is returned, so the body runs on to its end and the
    /// invocation fails then.
    fn draw<T>(
        &mut self,
        op: impl FnOnce(&mut ReplayCursor) -> Result<T, NonDeterminism>,
        fallback: impl FnOnce(InvocationId, u32) -> T,
    ) -> T {
        let position = self.cursor.position();
        match op(&mut self.cursor) {
            Ok(value) => value,
            Err(nd) => {
                self.diverged(nd);
                fallback(self.cursor.invocation(), position)
            }
        }
    }

    /// `random()`.
    pub(crate) fn random(&mut self) -> f64 {
        self.draw(ReplayCursor::random, deterministic::random_at)
    }

    /// `uuid()`.
    pub(crate) fn uuid(&mut self) -> uuid::Uuid {
        self.draw(ReplayCursor::uuid, deterministic::uuid_at)
    }

    /// `utc_now()`, with `clock` the wall clock read by the caller.
    pub(crate) fn utc_now(&mut self, clock: time::OffsetDateTime) -> time::OffsetDateTime {
        self.draw(|c| c.utc_now(clock), |_, _| clock)
    }

    /// Starts a child: the recorded one on replay, else a new one, buffered for the commit as
    /// `submission(child_id)` describes it.
    pub(crate) fn start_child(
        &mut self,
        task: &TaskId,
        call: CallId,
        submission: impl FnOnce(InvocationId) -> NewInvocation,
    ) -> Result<InvocationId, WfError> {
        let start = self.step(|c| c.child_start(task, call))?;
        if !start.replayed {
            self.go_live()?;
            self.children.push(submission(start.child));
        }
        Ok(start.child)
    }

    /// What this execution recorded and buffered since it began or last checkpointed, for a
    /// checkpoint to persist; refused once the execution no longer counts, and
    /// `None` when a checkpoint cannot carry it: in a replay check (nothing is written), with
    /// events consumed since (only a commit marks them), or once the body was told of a
    /// cancellation (the cancellation decides the commit).
    pub(crate) fn progress(&mut self) -> Result<Option<Checkpoint>, WfError> {
        self.check_live()?;
        if self.check_only || self.told.is_some() || !self.consumed.is_empty() {
            return Ok(None);
        }
        Ok(Some(Checkpoint {
            journal: self.cursor.new_entries().to_vec(),
            data: self.writes.clone(),
            children: self.children.clone(),
        }))
    }

    /// The [`Recorder::progress`] taken last is persisted: drop it from what the execution will
    /// commit (reads of data written before it now go to the store).
    pub(crate) fn checkpointed(&mut self) {
        self.cursor.take_new_entries();
        self.writes.clear();
        self.children.clear();
    }

    /// Whether `child` is submitted only when this execution commits (it was started live in
    /// this execution), so the store does not know it yet.
    pub(crate) fn submits(&self, child: InvocationId) -> bool {
        self.children.iter().any(|c| c.id == child)
    }

    /// The recorded outcome of `child` at this position, or [`Replay::Live`].
    pub(crate) fn child_result(
        &mut self,
        child: InvocationId,
    ) -> Result<Replay<ChildOutcome>, WfError> {
        self.step(|c| c.child_result(child))
    }

    /// Records the final outcome of `child`, observed live.
    pub(crate) fn record_child_result(
        &mut self,
        child: InvocationId,
        outcome: ChildOutcome,
    ) -> Result<ChildOutcome, WfError> {
        self.step(|c| c.record_child_result(child, outcome))
    }

    /// The recorded value of a read of `key` at this position, or [`Replay::Live`].
    pub(crate) fn data_get(&mut self, key: &str) -> Result<Replay<Option<Vec<u8>>>, WfError> {
        self.step(|c| c.data_get(key))
    }

    /// The value this execution wrote to `key` last, if it wrote one (a root reads its own
    /// writes).
    pub(crate) fn written(&self, key: &str) -> Option<Vec<u8>> {
        self.writes
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }

    /// Records the value a read of `key` found live.
    pub(crate) fn record_data_get(
        &mut self,
        key: &str,
        value: Option<Vec<u8>>,
    ) -> Result<Option<Vec<u8>>, WfError> {
        self.step(|c| c.record_data_get(key, value))
    }

    /// Buffers a data write for the commit.
    pub(crate) fn write(&mut self, key: &str, value: Vec<u8>) -> Result<(), WfError> {
        self.check_live()?;
        self.writes.push((key.to_owned(), value));
        Ok(())
    }

    /// Stops the execution: suspended on `on`, the children it waits for (each either submitted
    /// by this execution or seen unfinished in the store), and/or until a timer fires at `until`
    /// or an event named `event` arrives. Returns the error to unwind with.
    pub(crate) fn suspend(
        &mut self,
        on: Vec<InvocationId>,
        until: Option<Timestamp>,
        event: Option<&str>,
    ) -> WfError {
        self.interrupt(Interruption::Suspended {
            on,
            until,
            event: event.map(str::to_owned),
        })
    }

    /// In a replay check, an operation that would run past the recorded journal: the check of
    /// this invocation ends here. Returns `Ok` outside a check.
    pub(crate) fn go_live(&mut self) -> Result<(), WfError> {
        self.check_live()?;
        if self.check_only {
            return Err(self.interrupt(Interruption::EndOfJournal));
        }
        Ok(())
    }

    /// Tells the body of its cancellation, once, at a journaled operation: where the journal
    /// recorded it (a replay), or past the journal once a cancellation was requested (recorded
    /// now). Every journaled fallible operation calls it first.
    pub(crate) fn tell_cancellation(&mut self) -> Result<(), WfError> {
        self.check_live()?;
        if self.told.is_some() {
            return Ok(());
        }
        let reason = match self.cursor.recorded_cancellation() {
            Some(reason) => reason,
            None if self.cursor.is_replaying() || self.check_only => return Ok(()),
            None => match self.cancel.reason() {
                Some(reason) => {
                    let reason = reason.to_owned();
                    self.step(|c| c.record_cancellation(&reason))?;
                    self.told_after_children = Some(self.children.len());
                    reason
                }
                None => return Ok(()),
            },
        };
        self.told = Some(reason.clone());
        Err(WfError::Cancelled {
            invocation: self.execution.invocation(),
            reason,
        })
    }

    /// Whether a cancellation of this invocation was requested (told or not yet).
    #[cfg(feature = "tokio")]
    pub(crate) fn cancel_requested(&self) -> bool {
        self.cancel.reason().is_some()
    }

    /// Whether the body was told of its cancellation (in this execution or, replayed, an
    /// earlier one).
    pub(crate) fn told(&self) -> bool {
        self.told.is_some()
    }

    /// A timer firing `delay` after `clock` (see [`ReplayCursor::timer_after`]).
    pub(crate) fn timer_after(
        &mut self,
        clock: time::OffsetDateTime,
        delay: std::time::Duration,
    ) -> Result<Timestamp, WfError> {
        self.step(|c| c.timer_after(clock, delay))
    }

    /// A timer firing at `at` (see [`ReplayCursor::timer_at`]).
    pub(crate) fn timer_at(&mut self, at: Timestamp) -> Result<Timestamp, WfError> {
        self.step(|c| c.timer_at(at))
    }

    /// Whether the timer set just before fired, as recorded.
    pub(crate) fn timer_fired(&mut self) -> Result<Replay<()>, WfError> {
        self.step(ReplayCursor::timer_fired)
    }

    /// Records that the timer set just before fired.
    pub(crate) fn record_timer_fired(&mut self) -> Result<(), WfError> {
        self.step(ReplayCursor::record_timer_fired)
    }

    /// The recorded end of a race between `child` and the timer set just before.
    pub(crate) fn child_result_or_timeout(
        &mut self,
        child: InvocationId,
    ) -> Result<Replay<Option<ChildOutcome>>, WfError> {
        self.step(|c| c.child_result_or_timeout(child))
    }

    /// The event named `name` consumed at this position, as recorded.
    pub(crate) fn event(&mut self, name: &str) -> Result<Replay<RecordedEvent>, WfError> {
        self.step(|c| c.event(name))
    }

    /// The recorded end of a race between an event named `name` and the timer set just before.
    pub(crate) fn event_or_timeout(
        &mut self,
        name: &str,
    ) -> Result<Replay<Option<RecordedEvent>>, WfError> {
        self.step(|c| c.event_or_timeout(name))
    }

    /// Records that this execution consumes `event` (named `name`): journaled, and committed as
    /// consumed with the journal.
    pub(crate) fn consume_event(
        &mut self,
        name: &str,
        event: RecordedEvent,
    ) -> Result<RecordedEvent, WfError> {
        let seq = event.seq;
        let recorded = self.step(|c| c.record_event(name, event))?;
        if recorded.seq == seq {
            self.consumed.push(seq);
        }
        Ok(recorded)
    }

    /// The events this execution consumed so far (not committed yet).
    pub(crate) fn consumed(&self) -> &[u64] {
        &self.consumed
    }

    /// `patched(id)` (see [`ReplayCursor::patched`]); infallible like the draws.
    pub(crate) fn patched(&mut self, id: &str) -> bool {
        self.cursor.patched(id)
    }

    /// Stops the execution after a transient store failure. Returns the error to unwind with.
    pub(crate) fn store_failed(&mut self, error: &StoreError) -> WfError {
        self.interrupt(Interruption::StoreFailed {
            error: error.to_string(),
        })
    }

    /// Stops the execution after a checkpoint whose outcome is unknown (see `crate::inline`):
    /// nothing recorded since the last persisted checkpoint is committed, because the
    /// checkpoint may have stored it already. Returns the error to unwind with.
    pub(crate) fn checkpoint_unknown(&mut self, error: &StoreError) -> WfError {
        self.stop.get_or_insert(StopPoint {
            why: Interruption::StoreFailed {
                error: format!("a checkpoint's outcome is unknown: {error}"),
            },
            journal_len: 0,
            writes_len: 0,
            children_len: 0,
            consumed_len: 0,
        });
        self.stop_error()
    }

    /// The error of the stop point that is set.
    fn stop_error(&self) -> WfError {
        self.stop
            .as_ref()
            .map_or(WfError::Suspended { waiting_on: 0 }, |s| s.why.error())
    }

    /// Sets the stop point, if none is set yet, and returns its error.
    fn interrupt(&mut self, why: Interruption) -> WfError {
        let stop = self.stop.get_or_insert(StopPoint {
            why,
            journal_len: self.cursor.new_entries().len(),
            writes_len: self.writes.len(),
            children_len: self.children.len(),
            consumed_len: self.consumed.len(),
        });
        stop.why.error()
    }

    /// Seals the execution once its body is over. `ending` is how the body ended, or `None` when
    /// it never ran (its arguments did not decode).
    pub(crate) fn seal(self, ending: Option<BodyEnd>) -> Sealed {
        let Self {
            mut cursor,
            divergence,
            mut writes,
            mut children,
            mut consumed,
            stop,
            told,
            told_after_children,
            ..
        } = self;
        // An interrupted execution has not ended: only an ending must have consumed the journal.
        let stopped_short = match (&stop, ending) {
            (None, Some(end)) => cursor.check_end(end.how, end.said.as_deref()).err(),
            _ => None,
        };
        if let Some(nd) = divergence.or(stopped_short) {
            return Sealed {
                journal: Vec::new(),
                writes: Vec::new(),
                children: Vec::new(),
                consumed: Vec::new(),
                told,
                started_before_told: Vec::new(),
                verdict: Verdict::Diverged(nd),
            };
        }
        let mut journal = cursor.take_new_entries();
        let verdict = match stop {
            Some(stop) => {
                journal.truncate(stop.journal_len);
                writes.truncate(stop.writes_len);
                children.truncate(stop.children_len);
                consumed.truncate(stop.consumed_len);
                Verdict::Interrupted(stop.why)
            }
            None => Verdict::Ended,
        };
        let started_before_told = told_after_children
            .map(|n| children.iter().take(n).map(|c| c.id).collect())
            .unwrap_or_default();
        Sealed {
            journal,
            writes,
            children,
            consumed,
            told,
            started_before_told,
            verdict,
        }
    }
}
