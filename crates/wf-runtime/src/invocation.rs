//! `Invocation<R>`: a caller's handle on one call.

use std::fmt;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use wf_core::{
    CallId, Failure, FailureKind, InvocationId, Status, WorkflowIdentity, decode, encode,
};
use wf_store::{InvocationRecord, NewInvocation, StoreError, Submitted};

use crate::app::App;
use crate::clock;
use crate::error::WfError;
use crate::ids::fresh_invocation_id;
use crate::task::Task;

/// A call of a task from outside any task, typed by its result.
pub struct Invocation<R> {
    id: InvocationId,
    app: App,
    created: bool,
    _result: PhantomData<fn() -> R>,
}

impl<A: Serialize + 'static, R: DeserializeOwned + 'static> Task<A, R> {
    /// Calls the task from outside any task: a new workflow rooted at this invocation. Returns
    /// at once; workers run it. Inside a task body use `ctx.wf().execute_task` instead.
    ///
    /// # Errors
    ///
    /// [`WfError::ForeignTask`] for a handle the app registered with another signature,
    /// [`WfError::Codec`] when the arguments do not encode, [`WfError::Store`] when the store
    /// refuses or fails the submission.
    pub fn call(&self, app: &App, args: A) -> Result<Invocation<R>, WfError> {
        self.submit(app, fresh_invocation_id(), &args)
    }

    /// Calls the task at most once per `key`: an idempotent start. The invocation's id derives
    /// from (app id, task, key) ([`InvocationId::keyed`]), so every call with the same key —
    /// from this process or another one sharing the store, now or after a restart — returns the
    /// same invocation, and only the first stores and queues it ([`Invocation::was_created`]
    /// tells which one this was). Use a key that names the work in your domain: an order number,
    /// a batch date, a request id.
    ///
    /// ```
    /// use wf_runtime::{App, TaskContext, TaskError, WfError};
    ///
    /// let app = App::builder().app_id("shop").memory().build()?;
    /// let ship = app.task("ship", |_: &TaskContext, order: u32| -> Result<String, TaskError> {
    ///     Ok(format!("parcel for order {order}"))
    /// })?;
    /// let first = ship.call_keyed(&app, "order-1042", 1042)?;
    /// let again = ship.call_keyed(&app, "order-1042", 1042)?; // a retry of the request
    /// assert_eq!(first.id(), again.id());
    /// assert!(first.was_created() && !again.was_created());
    ///
    /// // The same key with other arguments is a conflict, not a second start.
    /// let err = ship.call_keyed(&app, "order-1042", 7).unwrap_err();
    /// assert!(matches!(err, WfError::KeyConflict { existing, .. } if existing == first.id()));
    /// # Ok::<(), WfError>(())
    /// ```
    ///
    /// The key holds while the invocation is stored: once its workflow is purged, the same key
    /// starts anew.
    ///
    /// # Errors
    ///
    /// [`WfError::KeyConflict`] when the key already started an invocation with other arguments,
    /// and the errors of [`Task::call`].
    pub fn call_keyed(&self, app: &App, key: &str, args: A) -> Result<Invocation<R>, WfError> {
        let id = InvocationId::keyed(app.app_id(), &self.id, key);
        match self.submit(app, id, &args) {
            Err(WfError::Store(StoreError::Conflict(existing))) => Err(WfError::KeyConflict {
                task: self.id.clone(),
                key: key.to_owned(),
                existing,
            }),
            other => other,
        }
    }

    /// Submits a root invocation with id `id`; idempotent by id.
    fn submit(&self, app: &App, id: InvocationId, args: &A) -> Result<Invocation<R>, WfError> {
        app.check_handle(self)?;
        let args = encode(args)?;
        let invocation = NewInvocation {
            id,
            call: CallId::of(&self.id, &args),
            identity: WorkflowIdentity::derive(id, &self.id, self.force_new_workflow, None),
            task: self.id.clone(),
            args,
            parent: None,
            not_before: None,
            max_recoveries: self.max_recoveries,
        };
        let submitted = app.store().submit(invocation, clock::now())?;
        Ok(Invocation {
            created: submitted == Submitted::Created,
            ..Invocation::attach(app, id)
        })
    }
}

impl<R: DeserializeOwned> Invocation<R> {
    /// A handle on an existing invocation (for example an id read from a log). The result type is
    /// the caller's promise; a mismatch shows as a decode error.
    pub fn attach(app: &App, id: InvocationId) -> Self {
        Self {
            id,
            app: app.clone(),
            created: false,
            _result: PhantomData,
        }
    }

    /// True when the call that returned this handle stored the invocation: always for
    /// [`Task::call`]; for [`Task::call_keyed`], only for the first call with its key. False
    /// for a handle from [`Invocation::attach`].
    pub fn was_created(&self) -> bool {
        self.created
    }

    /// The invocation's id.
    pub fn id(&self) -> InvocationId {
        self.id
    }

    /// Its current status.
    pub fn status(&self) -> Result<Status, WfError> {
        Ok(self.app.store().invocation(self.id)?.status())
    }

    /// Its stored record (status, attempts, identity, timings).
    pub fn record(&self) -> Result<InvocationRecord, WfError> {
        Ok(self.app.store().invocation(self.id)?)
    }

    /// Blocks until the invocation is final and returns its result, or its failure as
    /// [`WfError::Failed`]. Needs a worker running somewhere (or `app.run_until_idle()`).
    pub fn result(&self) -> Result<R, WfError> {
        loop {
            if let Some(r) = self
                .app
                .store()
                .wait_final(self.id, Duration::from_secs(3600))?
            {
                return outcome(r);
            }
        }
    }

    /// Like [`Invocation::result`], giving up with [`WfError::Timeout`] after `timeout`.
    pub fn result_timeout(&self, timeout: Duration) -> Result<R, WfError> {
        let start = Instant::now();
        match self.app.store().wait_final(self.id, timeout)? {
            Some(r) => outcome(r),
            None => Err(WfError::Timeout {
                invocation: self.id,
                waited: start.elapsed(),
            }),
        }
    }
}

fn outcome<R: DeserializeOwned>(r: InvocationRecord) -> Result<R, WfError> {
    let id = r.id();
    match (r.state.status, r.state.result, r.state.error) {
        (Status::Success, Some(bytes), _) => Ok(decode(&bytes)?),
        (
            _,
            _,
            Some(Failure {
                non_determinism: Some(nd),
                ..
            }),
        ) => Err(WfError::NonDeterminism(*nd)),
        (_, _, Some(failure)) => Err(WfError::Failed {
            invocation: id,
            failure,
        }),
        (status, _, None) => Err(WfError::Failed {
            invocation: id,
            failure: Failure::new(
                FailureKind::Task,
                format!("finished as {status} without a result"),
            ),
        }),
    }
}

impl<R> fmt::Debug for Invocation<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Invocation").field("id", &self.id).finish()
    }
}

impl<R> Clone for Invocation<R> {
    fn clone(&self) -> Self {
        Self {
            id: self.id,
            app: self.app.clone(),
            created: self.created,
            _result: PhantomData,
        }
    }
}
