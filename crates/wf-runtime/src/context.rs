//! The `TaskContext` every task body receives.

use std::sync::Arc;

use serde::Serialize;
use wf_core::{InvocationId, JournalEntry, TaskId, WorkflowIdentity};
use wf_store::InvocationSpec;

use crate::app::App;
use crate::deterministic::DeterministicExecutor;
use crate::error::WfError;
use crate::task::Task;
use crate::workflow::{ChildHandle, WorkflowContext};

/// What a running task knows about itself, and its door to the workflow: [`TaskContext::wf`].
pub struct TaskContext {
    spec: Arc<InvocationSpec>,
    attempt: u32,
    wf: WorkflowContext,
}

impl TaskContext {
    pub(crate) fn new(
        app: App,
        spec: Arc<InvocationSpec>,
        attempt: u32,
        journal: Vec<JournalEntry>,
    ) -> Self {
        let det = DeterministicExecutor::new(spec.id, journal);
        let wf = WorkflowContext::new(app, spec.id, spec.identity.clone(), det);
        Self { spec, attempt, wf }
    }

    /// The workflow context: identity, data, deterministic primitives, child tasks.
    pub fn wf(&self) -> &WorkflowContext {
        &self.wf
    }

    /// The app the task runs in.
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
    pub fn call<A, R>(&self, task: &Task<A, R>, args: A) -> Result<ChildHandle<R>, WfError>
    where
        A: Serialize + 'static,
        R: 'static,
    {
        self.wf.start_task(task, args)
    }

    pub(crate) fn finish(self) -> WorkflowContext {
        self.wf
    }
}
