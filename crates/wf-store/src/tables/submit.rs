//! Submitting invocations to [`Tables`] (one or a batch, idempotent by id) and binding them to
//! an app.

use std::sync::Arc;

use wf_core::{IdHashing, Status, Timestamp};

use super::{Change, IdMap, Tables, check, new_call, spec_call};
use crate::error::StoreError;
use crate::limits::check_task_name;
use crate::model::{InvocationSpec, InvocationState, Lease, LeaseInfo, NewInvocation, Submitted};

impl Tables {
    /// Whether `new` is stored already (an identical call); refuses a long task name and
    /// another call under its id.
    fn check_new(&self, new: &NewInvocation) -> Result<Option<Submitted>, StoreError> {
        check_task_name(&new.task)?;
        match self.invocations.get(&new.id) {
            None => Ok(None),
            Some(slot) => {
                if spec_call(&slot.spec) == new_call(new) {
                    Ok(Some(Submitted::AlreadyExists))
                } else {
                    Err(StoreError::Conflict(new.id))
                }
            }
        }
    }

    pub(super) fn create(
        &mut self,
        out: &mut Vec<Change>,
        new: NewInvocation,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let (spec, state) = Self::new_slot(new, now)?;
        let spec = self.shared_spec(spec);
        self.emit(out, Change::Created(spec, state));
        Ok(())
    }

    /// `spec`, shared, with its task names interned once: here when the change is logged (the
    /// list's copy shares the spec, so `apply` leaves it alone), by `apply` otherwise (it
    /// interns a spec nobody else holds).
    fn shared_spec(&mut self, mut spec: InvocationSpec) -> Arc<InvocationSpec> {
        if !self.unlogged {
            self.intern(&mut spec);
        }
        Arc::new(spec)
    }

    /// Creates `new` already claimed under `lease` (attempt 1), in one change: it is never
    /// queued, so no other worker can see it claimable.
    pub(super) fn create_running(
        &mut self,
        out: &mut Vec<Change>,
        new: NewInvocation,
        lease: &Lease,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let (spec, mut state) = Self::new_slot(new, now)?;
        check(spec.id, state.status, Status::Running)?;
        state.status = Status::Running;
        state.attempts = lease.attempt;
        state.lease = Some(LeaseInfo {
            worker: lease.worker.clone(),
            expires_at: lease.expires_at,
        });
        let spec = self.shared_spec(spec);
        self.emit(out, Change::Created(spec, state));
        Ok(())
    }

    /// The spec and pending state of a new submission.
    fn new_slot(
        new: NewInvocation,
        now: Timestamp,
    ) -> Result<(InvocationSpec, InvocationState), StoreError> {
        check(new.id, Status::Registered, Status::Pending)?;
        let spec = InvocationSpec {
            id: new.id,
            task: new.task,
            call: new.call,
            args: new.args,
            identity: new.identity,
            parent: new.parent,
            created_at: now,
            max_recoveries: new.max_recoveries,
        };
        let state = InvocationState {
            status: Status::Pending,
            attempts: 0,
            retries: 0,
            recoveries: 0,
            lease: None,
            not_before: new.not_before,
            result: None,
            error: None,
            waiting_on: Vec::new(),
            updated_at: now,
        };
        Ok((spec, state))
    }

    /// Stores and queues a new invocation; idempotent by id.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] for another call under an existing id.
    pub fn submit(
        &mut self,
        out: &mut Vec<Change>,
        new: NewInvocation,
        now: Timestamp,
    ) -> Result<Submitted, StoreError> {
        if let Some(done) = self.check_new(&new)? {
            return Ok(done);
        }
        self.create(out, new, now)?;
        Ok(Submitted::Created)
    }

    /// Stores and queues several invocations, all or nothing; each is idempotent by id, within
    /// the batch too. Answers in the order given.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] for the first id that is another call (in the store or earlier
    /// in the batch), with nothing submitted.
    pub fn submit_many(
        &mut self,
        out: &mut Vec<Change>,
        batch: Vec<NewInvocation>,
        now: Timestamp,
    ) -> Result<Vec<Submitted>, StoreError> {
        let fresh = self.check_new_batch(batch.iter())?;
        let created = fresh.iter().filter(|f| **f).count();
        self.invocations.reserve(created);
        // One `Created` change each: sized once (a burst of 20,000 would otherwise regrow the
        // list up to 32,768 entries, and hold the old and new buffers at once while it does).
        out.reserve(created);
        let answers = fresh
            .iter()
            .map(|f| match f {
                true => Submitted::Created,
                false => Submitted::AlreadyExists,
            })
            .collect();
        for (new, fresh) in batch.into_iter().zip(fresh) {
            if fresh {
                self.create(out, new, now)?;
            }
        }
        Ok(answers)
    }

    /// For each of `batch`, in order, whether it is new: not stored and not an identical repeat
    /// of an earlier one in the batch.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] for the first that is another call under a known id.
    pub(super) fn check_new_batch<'a>(
        &self,
        batch: impl Iterator<Item = &'a NewInvocation>,
    ) -> Result<Vec<bool>, StoreError> {
        let batch = batch.collect::<Vec<_>>();
        if let [one] = batch[..] {
            return Ok(vec![self.check_new(one)?.is_none()]);
        }
        // Sized once: the batch's ids go in (bar repeats), so it would regrow through every
        // power of two up to the batch's size.
        let mut earlier: IdMap<&NewInvocation> =
            IdMap::with_capacity_and_hasher(batch.len(), IdHashing::default());
        let mut fresh = Vec::with_capacity(batch.len());
        for new in batch {
            let is_new = match earlier.get(&new.id) {
                Some(first) if new_call(first) == new_call(new) => false,
                Some(_) => return Err(StoreError::Conflict(new.id)),
                None => self.check_new(new)?.is_none(),
            };
            if is_new {
                earlier.insert(new.id, new);
            }
            fresh.push(is_new);
        }
        Ok(fresh)
    }

    /// Binds the tables to app `app_id`: the first bind records it, a later one with the same
    /// id changes nothing, one with another id is [`StoreError::AppMismatch`] naming `store`
    /// (a directory or a URL, for the message).
    ///
    /// # Errors
    /// [`StoreError::AppMismatch`] when another app is recorded.
    pub fn bind_app(
        &mut self,
        out: &mut Vec<Change>,
        store: &str,
        app_id: &str,
    ) -> Result<(), StoreError> {
        match &self.app {
            Some(recorded) if recorded == app_id => Ok(()),
            Some(recorded) => Err(StoreError::AppMismatch {
                store: store.to_owned(),
                recorded: recorded.clone(),
                requested: app_id.to_owned(),
            }),
            None => {
                self.emit(out, Change::App(app_id.to_owned()));
                Ok(())
            }
        }
    }
}
