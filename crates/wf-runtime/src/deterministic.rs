//! The replay executor behind `random()`, `uuid()`, `utc_now()` and every journaled operation.

use std::cell::{Cell, RefCell};

use wf_core::{InvocationId, JournalEntry, NonDeterminism, ReplayCursor, deterministic};

use crate::clock;

/// The deterministic executor of one invocation (the seed's `DeterministicExecutor`).
///
/// It wraps the invocation's [`ReplayCursor`]: every operation is answered from the recorded
/// journal while it lasts, then generated and recorded. The primitives are infallible and do no
/// I/O. If a replay diverges from the journal, the executor is *poisoned*: the invocation fails
/// with a non-determinism error when the body returns, whatever the body returns.
pub struct DeterministicExecutor {
    cursor: RefCell<ReplayCursor>,
    poisoned: RefCell<Option<NonDeterminism>>,
    /// Entries recorded before an interruption (suspension, failed store read); later ones are
    /// dropped at commit.
    cut: Cell<Option<usize>>,
}

impl DeterministicExecutor {
    pub(crate) fn new(invocation: InvocationId, journal: Vec<JournalEntry>) -> Self {
        Self {
            cursor: RefCell::new(ReplayCursor::new(invocation, journal)),
            poisoned: RefCell::new(None),
            cut: Cell::new(None),
        }
    }

    /// A number in [0, 1): the same sequence on every replay of this invocation.
    pub fn random(&self) -> f64 {
        let mut c = self.cursor.borrow_mut();
        match c.random() {
            Ok(v) => v,
            Err(nd) => {
                let pos = nd.position;
                self.poison(nd);
                deterministic::random_at(c.invocation(), pos)
            }
        }
    }

    /// A UUID: the same sequence on every replay of this invocation.
    pub fn uuid(&self) -> uuid::Uuid {
        let mut c = self.cursor.borrow_mut();
        match c.uuid() {
            Ok(v) => v,
            Err(nd) => {
                let pos = nd.position;
                self.poison(nd);
                deterministic::uuid_at(c.invocation(), pos)
            }
        }
    }

    /// The UTC time when this point was first executed; replays return the recorded value.
    /// Never earlier than a time this invocation saw before.
    pub fn utc_now(&self) -> time::OffsetDateTime {
        let now = clock::now_utc();
        match self.cursor.borrow_mut().utc_now(now) {
            Ok(t) => t,
            Err(nd) => {
                self.poison(nd);
                now
            }
        }
    }

    /// True while operations are answered from the journal (a replay of earlier executions).
    pub fn is_replaying(&self) -> bool {
        self.cursor.borrow().is_replaying()
    }

    /// The next journal position.
    pub fn position(&self) -> u32 {
        self.cursor.borrow().position()
    }

    /// Runs a fallible cursor operation; a divergence poisons the executor.
    pub(crate) fn with_cursor<T>(
        &self,
        op: impl FnOnce(&mut ReplayCursor) -> Result<T, NonDeterminism>,
    ) -> Result<T, NonDeterminism> {
        self.check()?;
        let r = op(&mut self.cursor.borrow_mut());
        if let Err(nd) = &r {
            self.poison(nd.clone());
        }
        r
    }

    /// The first divergence, if any.
    pub(crate) fn check(&self) -> Result<(), NonDeterminism> {
        match &*self.poisoned.borrow() {
            Some(nd) => Err(nd.clone()),
            None => Ok(()),
        }
    }

    fn poison(&self, nd: NonDeterminism) {
        let mut p = self.poisoned.borrow_mut();
        if p.is_none() {
            *p = Some(nd);
        }
    }

    /// Marks where the execution was interrupted (a suspension, a failed store read): entries
    /// recorded after it are not committed.
    pub(crate) fn mark_cut(&self) {
        if self.cut.get().is_none() {
            self.cut.set(Some(self.cursor.borrow().new_entries().len()));
        }
    }

    /// The entries to commit and the divergence, if any.
    pub(crate) fn finish(self) -> (Vec<JournalEntry>, Option<NonDeterminism>) {
        let mut entries = self.cursor.into_inner().take_new_entries();
        if let Some(cut) = self.cut.get() {
            entries.truncate(cut);
        }
        (entries, self.poisoned.into_inner())
    }
}
