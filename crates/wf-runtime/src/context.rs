//! The `TaskContext` every task body receives.

use std::sync::Arc;

use serde::Serialize;
use wf_core::{InvocationId, TaskId, WorkflowIdentity};
use wf_store::InvocationSpec;

use crate::app::App;
use crate::clock::ExecClock;
use crate::error::WfError;
use crate::handle::ChildHandle;
use crate::inline::Inline;
use crate::recorder::Recorder;
use crate::task::Task;
use crate::workflow::WorkflowContext;

/// What a running task knows about itself, and its door to the workflow: [`TaskContext::wf`].
#[derive(Debug)]
pub struct TaskContext {
    spec: Arc<InvocationSpec>,
    attempt: u32,
    wf: WorkflowContext,
}

impl TaskContext {
    /// The context of one execution of `spec`'s body, recorded by `recorder`, on `clock`, running
    /// its children inline as `inline` allows.
    pub(crate) fn new(
        app: &App,
        spec: Arc<InvocationSpec>,
        attempt: u32,
        recorder: Recorder,
        clock: ExecClock,
        inline: Inline,
    ) -> Self {
        let identity = spec.identity.clone();
        let wf = WorkflowContext::new(app.inside_body(spec.id), identity, recorder, clock, inline);
        Self { spec, attempt, wf }
    }

    /// The workflow context: identity, data, deterministic primitives, child tasks.
    pub fn wf(&self) -> &WorkflowContext {
        &self.wf
    }

    /// The app the task runs in. See [`WorkflowContext::app`].
    pub fn app(&self) -> &App {
        self.wf.app()
    }

    /// This invocation's id.
    pub fn invocation_id(&self) -> InvocationId {
        self.spec.id
    }

    /// This task's id.
    pub fn task_id(&self) -> &TaskId {
        &self.spec.task
    }

    /// The invocation that called this one, if any.
    pub fn parent(&self) -> Option<InvocationId> {
        self.spec.parent
    }

    /// This invocation's workflow identity.
    pub fn identity(&self) -> &WorkflowIdentity {
        &self.spec.identity
    }

    /// Which execution of this invocation this is (1 for the first). Replays after a wake-up,
    /// retries and recoveries each count.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Calls `task` from inside this task: the call is recorded as a child of this invocation
    /// (same workflow, or a sub-workflow if the task forces one) and submitted when this
    /// execution commits. Same as `ctx.wf().start_task(..)`; wait for it with `ctx.wf().join(..)`.
    ///
    /// # Errors
    ///
    /// As [`WorkflowContext::start_task`].
    pub fn call<A, R>(&self, task: &Task<A, R>, args: A) -> Result<ChildHandle<R>, WfError>
    where
        A: Serialize + 'static,
        R: 'static,
    {
        self.wf.start_task(task, args)
    }

    /// Hands the execution's recorder to the execution that seals and commits it.
    pub(crate) fn into_recorder(self) -> Recorder {
        self.wf.into_recorder()
    }

    /// Takes the execution's recorder out of a shared context (an async body's), leaving a
    /// fresh one that nothing commits.
    #[cfg(feature = "tokio")]
    pub(crate) fn take_recorder(&self) -> Recorder {
        self.wf.take_recorder()
    }
}
