//! The task registry: each task's options and its body, type-erased to work on encoded bytes so
//! that one map holds tasks of every argument and result type.

use std::any::TypeId;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use serde::Serialize;
use serde::de::DeserializeOwned;
use wf_core::{CodecError, IdHashing, TaskId, decode, encode};
use wf_store::TaskSet;

use crate::context::TaskContext;
use crate::error::{TaskError, WfError};
use crate::task::{Task, TaskOptions};

/// Why a type-erased body did not produce a result.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// The stored arguments do not decode as the task's argument type (the body did not run).
    Args(CodecError),
    /// The result could not be encoded.
    Result(CodecError),
    /// The body returned an error.
    Task(TaskError),
}

type ErasedBody = dyn Fn(&TaskContext, &[u8]) -> Result<Vec<u8>, BodyError> + Send + Sync;

/// A body: a function, or (feature `tokio`) a function returning a future.
enum Body {
    Sync(Box<ErasedBody>),
    #[cfg(feature = "tokio")]
    Async(Box<crate::asynch::ErasedAsyncBody>),
}

/// A task as the registry keeps it: options, the typed signature, and a body working on bytes.
pub(crate) struct RegisteredTask {
    pub(crate) options: TaskOptions,
    signature: TypeId,
    body: Body,
}

impl RegisteredTask {
    fn new<A, R, F>(options: TaskOptions, f: F) -> Self
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        F: Fn(&TaskContext, A) -> Result<R, TaskError> + Send + Sync + 'static,
    {
        let body = move |ctx: &TaskContext, args: &[u8]| -> Result<Vec<u8>, BodyError> {
            let args: A = decode(args).map_err(BodyError::Args)?;
            let result = f(ctx, args).map_err(BodyError::Task)?;
            encode(&result).map_err(BodyError::Result)
        };
        Self {
            options,
            signature: TypeId::of::<fn(A) -> R>(),
            body: Body::Sync(Box::new(body)),
        }
    }

    /// A task whose body is async.
    #[cfg(feature = "tokio")]
    pub(crate) fn new_async<A: 'static, R: 'static>(
        options: TaskOptions,
        body: Box<crate::asynch::ErasedAsyncBody>,
    ) -> Self {
        Self {
            options,
            signature: TypeId::of::<fn(A) -> R>(),
            body: Body::Async(body),
        }
    }

    /// Whether the body is async (runs as a future).
    #[cfg(feature = "tokio")]
    pub(crate) fn is_async(&self) -> bool {
        matches!(self.body, Body::Async(_))
    }

    /// The async body, if the body is async.
    #[cfg(feature = "tokio")]
    pub(crate) fn async_body(&self) -> Option<&crate::asynch::ErasedAsyncBody> {
        match &self.body {
            Body::Async(b) => Some(b),
            Body::Sync(_) => None,
        }
    }

    /// Runs a sync body on encoded arguments (an async body runs through `crate::asynch`).
    pub(crate) fn run(&self, ctx: &TaskContext, args: &[u8]) -> Result<Vec<u8>, BodyError> {
        match &self.body {
            Body::Sync(body) => body(ctx, args),
            #[cfg(feature = "tokio")]
            Body::Async(_) => Err(BodyError::Task(TaskError::new(
                "an async body was run as a sync one; this is a bug in wf, please report it",
            ))),
        }
    }
}

impl fmt::Debug for RegisteredTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisteredTask")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// The tasks of one app, by id.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    /// Hashed with the fast id hasher: every execution looks its task up here.
    tasks: RwLock<HashMap<TaskId, Arc<RegisteredTask>, IdHashing>>,
    /// The registered tasks' ids, as workers pass them to claims; replaced on registration.
    task_set: RwLock<TaskSet>,
}

impl Registry {
    /// Registers a task; a name already registered is [`WfError::DuplicateTask`].
    pub(crate) fn register<A, R, F>(&self, options: TaskOptions, body: F) -> Result<(), WfError>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        F: Fn(&TaskContext, A) -> Result<R, TaskError> + Send + Sync + 'static,
    {
        let mut tasks = self.tasks.write().unwrap_or_else(|p| p.into_inner());
        if tasks.contains_key(&options.id) {
            return Err(WfError::DuplicateTask(options.id));
        }
        let id = options.id.clone();
        tasks.insert(id, Arc::new(RegisteredTask::new(options, body)));
        *self.task_set.write().unwrap_or_else(|p| p.into_inner()) =
            TaskSet::new(tasks.keys().cloned());
        Ok(())
    }

    /// Registers a task already built; a name already registered is [`WfError::DuplicateTask`].
    #[cfg(feature = "tokio")]
    pub(crate) fn register_built(&self, task: RegisteredTask) -> Result<(), WfError> {
        let mut tasks = self.tasks.write().unwrap_or_else(|p| p.into_inner());
        if tasks.contains_key(&task.options.id) {
            return Err(WfError::DuplicateTask(task.options.id.clone()));
        }
        tasks.insert(task.options.id.clone(), Arc::new(task));
        *self.task_set.write().unwrap_or_else(|p| p.into_inner()) =
            TaskSet::new(tasks.keys().cloned());
        Ok(())
    }

    /// The registered task called `id`, if any.
    pub(crate) fn get(&self, id: &TaskId) -> Option<Arc<RegisteredTask>> {
        self.tasks
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    /// Checks that a handle matches the registration of its task, when there is one.
    pub(crate) fn check_handle<A: 'static, R: 'static>(
        &self,
        task: &Task<A, R>,
    ) -> Result<(), WfError> {
        match self.get(&task.id) {
            Some(r) if r.signature != TypeId::of::<fn(A) -> R>() => {
                Err(WfError::ForeignTask(task.id.clone()))
            }
            _ => Ok(()),
        }
    }

    /// The ids of all registered tasks, as a claim takes them.
    pub(crate) fn task_set(&self) -> TaskSet {
        self.task_set
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The ids of all registered tasks, sorted.
    pub(crate) fn ids(&self) -> Vec<TaskId> {
        let mut ids: Vec<TaskId> = self
            .tasks
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect();
        ids.sort();
        ids
    }
}
