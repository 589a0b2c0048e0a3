//! The `App`: a store, a task registry and configuration, shared by callers and workers.

use std::fmt;
#[cfg(feature = "file")]
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use wf_core::{InvocationId, TaskId};
use wf_store::{MemoryStore, Store, TaskSet};

use crate::cancel::Running;
use crate::context::TaskContext;
use crate::error::{TaskError, WfError};
use crate::registry::{RegisteredTask, Registry};
use crate::scope;
use crate::task::{Task, TaskOptions};

/// The default lease: how long a worker may go silent before its invocations are taken over.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(5);

/// Which store an app uses.
#[derive(Clone)]
enum Backend {
    Memory,
    #[cfg(feature = "file")]
    File(PathBuf),
    Custom(Arc<dyn Store>),
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backend::Memory => f.write_str("Memory"),
            #[cfg(feature = "file")]
            Backend::File(dir) => f.debug_tuple("File").field(dir).finish(),
            Backend::Custom(store) => f.debug_tuple("Custom").field(&store.backend()).finish(),
        }
    }
}

/// Settings shared by the app's workers.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) lease: Duration,
    pub(crate) worker_threads: usize,
}

struct AppInner {
    app_id: String,
    store: Arc<dyn Store>,
    registry: Registry,
    config: Config,
    /// The executions running in this process, told of cancellations through it.
    running: Arc<Running>,
}

/// A wf application: where tasks are registered and invocations stored.
///
/// Cheap to clone (`Arc` inside), `Send + Sync`.
///
/// ```
/// use wf_runtime::{App, TaskContext, TaskError};
///
/// let app = App::builder().app_id("shop").memory().build()?;
/// let double = app.task("double", |_ctx: &TaskContext, n: u64| -> Result<u64, TaskError> { Ok(n * 2) })?;
/// let inv = double.call(&app, 21)?;
/// app.run_until_idle()?; // or: app.worker().threads(4).start()?
/// assert_eq!(inv.result()?, 42);
/// # Ok::<(), wf_runtime::WfError>(())
/// ```
#[derive(Clone)]
pub struct App {
    inner: Arc<AppInner>,
    /// Set on the app a task context hands its body (and on clones of it): the invocation whose
    /// body may use it, where top-level calls are refused.
    body: Option<InvocationId>,
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App")
            .field("app_id", &self.inner.app_id)
            .field("backend", &self.inner.store.backend())
            .finish()
    }
}

impl App {
    /// Starts configuring an app. Unset values come from `WF_*` environment variables, then
    /// defaults; see [`AppBuilder`].
    pub fn builder() -> AppBuilder {
        AppBuilder::default()
    }

    /// The app id.
    pub fn app_id(&self) -> &str {
        &self.inner.app_id
    }

    /// The store (for tools and tests; tasks use the contexts instead).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The lease workers take on invocations.
    pub fn lease_duration(&self) -> Duration {
        self.inner.config.lease
    }

    /// Settings for the app's workers.
    pub(crate) fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The executions running in this process.
    pub(crate) fn running(&self) -> &Arc<Running> {
        &self.inner.running
    }

    /// Registers a task called `name` with default options. See [`App::task_with`].
    ///
    /// # Errors
    ///
    /// As [`App::task_with`].
    pub fn task<A, R, F>(&self, name: &str, body: F) -> Result<Task<A, R>, WfError>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        F: Fn(&TaskContext, A) -> Result<R, TaskError> + Send + Sync + 'static,
    {
        self.task_with(TaskOptions::new(name), body)
    }

    /// Registers a task with options.
    ///
    /// # Errors
    ///
    /// [`WfError::DuplicateTask`] when a task of this name is already registered.
    pub fn task_with<A, R, F>(&self, options: TaskOptions, body: F) -> Result<Task<A, R>, WfError>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        F: Fn(&TaskContext, A) -> Result<R, TaskError> + Send + Sync + 'static,
    {
        let handle = Task::new(&options);
        self.inner.registry.register(options, body)?;
        Ok(handle)
    }

    /// The ids of the registered tasks: what this app's workers claim.
    pub(crate) fn task_set(&self) -> TaskSet {
        self.inner.registry.task_set()
    }

    /// The registered task called `id`, if any.
    pub(crate) fn registered(&self, id: &TaskId) -> Option<Arc<RegisteredTask>> {
        self.inner.registry.get(id)
    }

    /// Checks that a handle matches this app's registration of its task, when there is one.
    pub(crate) fn check_handle<A: 'static, R: 'static>(
        &self,
        task: &Task<A, R>,
    ) -> Result<(), WfError> {
        self.inner.registry.check_handle(task)
    }

    /// The names of all registered tasks, sorted.
    pub fn task_names(&self) -> Vec<String> {
        self.inner
            .registry
            .ids()
            .into_iter()
            .map(|t| t.as_str().to_owned())
            .collect()
    }

    /// This app, as handed to the body of `invocation`.
    pub(crate) fn inside_body(&self, invocation: InvocationId) -> App {
        App {
            inner: self.inner.clone(),
            body: Some(invocation),
        }
    }

    /// The invocation whose body is running where this app is used (the app a context handed
    /// out, or any app on a thread running a body), if any.
    pub(crate) fn body_in_progress(&self) -> Option<InvocationId> {
        self.body.or_else(scope::running_body)
    }
}

/// Configures an [`App`]. Builder values win over `WF_*` environment variables, which win over
/// defaults:
///
/// | setting | builder | environment | default |
/// |---|---|---|---|
/// | app id | `app_id` | `WF_APP_ID` | `"wf"` |
/// | store | `memory`, `file`, `store` | `WF_STORE` = `memory` or `file:<dir>` | memory |
/// | lease | `lease_duration` | `WF_LEASE_MS` | 5 s |
/// | worker threads | `worker_threads` | `WF_WORKER_THREADS` | available cores |
#[derive(Debug, Default)]
pub struct AppBuilder {
    app_id: Option<String>,
    backend: Option<Backend>,
    lease: Option<Duration>,
    worker_threads: Option<usize>,
}

impl AppBuilder {
    /// The app's id (labels its store and logs).
    pub fn app_id(mut self, id: impl Into<String>) -> Self {
        self.app_id = Some(id.into());
        self
    }

    /// Keep everything in this process's memory (tests, single-process use).
    pub fn memory(mut self) -> Self {
        self.backend = Some(Backend::Memory);
        self
    }

    /// Keep everything in a directory on disk: durable across crashes; one owning process.
    /// Takes anything path-like: `&str`, `PathBuf`, `&Path`, a `tempfile::TempDir`.
    #[cfg(feature = "file")]
    pub fn file(mut self, dir: impl AsRef<std::path::Path>) -> Self {
        self.backend = Some(Backend::File(dir.as_ref().to_path_buf()));
        self
    }

    /// Use a store you built yourself (any [`Store`] implementation).
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.backend = Some(Backend::Custom(store));
        self
    }

    /// How long a worker's claim lasts without renewal (workers renew at a third of it).
    pub fn lease_duration(mut self, lease: Duration) -> Self {
        self.lease = Some(lease);
        self
    }

    /// Default thread count of this app's workers.
    pub fn worker_threads(mut self, n: usize) -> Self {
        self.worker_threads = Some(n);
        self
    }

    /// Builds the app, opening its store and binding it to the app id: a store records the
    /// first app that opens it.
    ///
    /// # Errors
    ///
    /// [`WfError::Config`] for an invalid setting (an empty app id, a lease under 10 ms, zero
    /// threads, an unparsable `WF_*` variable); [`WfError::Store`] when the store cannot be
    /// opened (locked by another process, corrupt, of a newer format), or holds another app's
    /// work: `WfError::Store(StoreError::AppMismatch { .. })` names both app ids.
    pub fn build(self) -> Result<App, WfError> {
        self.build_with_env(|k| std::env::var(k).ok())
    }

    fn build_with_env(self, env: impl Fn(&str) -> Option<String>) -> Result<App, WfError> {
        let app_id = self
            .app_id
            .or_else(|| env("WF_APP_ID"))
            .unwrap_or_else(|| "wf".to_owned());
        if app_id.is_empty() {
            return Err(WfError::Config(
                "app id is empty: set a name with `.app_id(..)` or WF_APP_ID".into(),
            ));
        }
        let backend = match self.backend {
            Some(b) => b,
            None => match env("WF_STORE") {
                Some(spec) => parse_store(&spec)?,
                None => Backend::Memory,
            },
        };
        let lease = match (self.lease, env("WF_LEASE_MS")) {
            (Some(l), _) => l,
            (None, Some(ms)) => Duration::from_millis(ms.trim().parse().map_err(|_| {
                WfError::Config(format!(
                    "WF_LEASE_MS={ms:?} is not a whole number of milliseconds"
                ))
            })?),
            (None, None) => DEFAULT_LEASE,
        };
        if lease < Duration::from_millis(10) {
            return Err(WfError::Config(format!(
                "lease {lease:?} is too short: use at least 10 ms (seconds in production)"
            )));
        }
        let worker_threads = match (self.worker_threads, env("WF_WORKER_THREADS")) {
            (Some(n), _) => n,
            (None, Some(n)) => n.trim().parse().map_err(|_| {
                WfError::Config(format!("WF_WORKER_THREADS={n:?} is not a whole number"))
            })?,
            (None, None) => std::thread::available_parallelism().map_or(2, |n| n.get()),
        };
        if worker_threads == 0 {
            return Err(WfError::Config("worker threads must be at least 1".into()));
        }
        let store: Arc<dyn Store> = match backend {
            Backend::Memory => Arc::new(MemoryStore::new()),
            #[cfg(feature = "file")]
            Backend::File(dir) => Arc::new(wf_store::FileStore::open(&dir)?),
            Backend::Custom(store) => store,
        };
        store.bind_app(&app_id)?;
        Ok(App {
            inner: Arc::new(AppInner {
                app_id,
                store,
                registry: Registry::default(),
                config: Config {
                    lease,
                    worker_threads,
                },
                running: Arc::default(),
            }),
            body: None,
        })
    }
}

fn parse_store(spec: &str) -> Result<Backend, WfError> {
    let spec = spec.trim();
    if spec == "memory" {
        return Ok(Backend::Memory);
    }
    #[cfg(feature = "file")]
    if let Some(dir) = spec.strip_prefix("file:") {
        if dir.is_empty() {
            return Err(WfError::Config(
                "WF_STORE=file: needs a directory, e.g. file:./wf-data".into(),
            ));
        }
        return Ok(Backend::File(PathBuf::from(dir)));
    }
    Err(WfError::Config(format!(
        "WF_STORE={spec:?} is not a store this build knows: use `memory` or `file:<dir>` (file needs the `file` feature)"
    )))
}
#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn builder_values_win_over_environment() {
        let env = env_of(&[
            ("WF_APP_ID", "from-env"),
            ("WF_LEASE_MS", "1500"),
            ("WF_WORKER_THREADS", "3"),
        ]);
        let app = App::builder().build_with_env(&env).unwrap();
        assert_eq!(app.app_id(), "from-env");
        assert_eq!(app.lease_duration(), Duration::from_millis(1500));
        assert_eq!(app.config().worker_threads, 3);

        let app = App::builder()
            .app_id("built")
            .lease_duration(Duration::from_secs(2))
            .worker_threads(7)
            .build_with_env(&env)
            .unwrap();
        assert_eq!(app.app_id(), "built");
        assert_eq!(app.lease_duration(), Duration::from_secs(2));
        assert_eq!(app.config().worker_threads, 7);
    }

    #[test]
    fn bad_environment_gives_actionable_errors() {
        let err = App::builder()
            .build_with_env(env_of(&[("WF_LEASE_MS", "soon")]))
            .unwrap_err();
        assert!(err.to_string().contains("WF_LEASE_MS"), "{err}");
        let err = App::builder()
            .build_with_env(env_of(&[("WF_STORE", "postgres://x")]))
            .unwrap_err();
        assert!(err.to_string().contains("memory"), "{err}");
        let err = App::builder()
            .worker_threads(0)
            .build_with_env(env_of(&[]))
            .unwrap_err();
        assert!(matches!(err, WfError::Config(_)));
    }

    #[test]
    fn duplicate_task_names_are_refused() {
        let app = App::builder().memory().build().unwrap();
        app.task("t", |_: &TaskContext, (): ()| Ok(1u8)).unwrap();
        let err = app
            .task("t", |_: &TaskContext, (): ()| Ok(2u8))
            .unwrap_err();
        assert!(
            matches!(err, WfError::DuplicateTask(ref t) if t.as_str() == "t"),
            "{err}"
        );
    }
}
