//! The `App`: a store, a task registry and configuration, shared by callers and workers.

use std::any::TypeId;
use std::collections::HashMap;
use std::fmt;
#[cfg(feature = "file")]
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use wf_core::TaskId;
use wf_store::{MemoryStore, Store, TaskSet};

use crate::context::TaskContext;
use crate::error::{TaskError, WfError};
use crate::task::{RegisteredTask, Task, TaskOptions};
use crate::worker::WorkerBuilder;

/// The default lease: how long a worker may go silent before its invocations are taken over.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(5);

/// Which store an app uses.
#[derive(Clone)]
enum Backend {
    Memory,
    #[cfg(feature = "file")]
    File(PathBuf),
    /// A Redis URL (kept as given; it may hold a password, so it is never printed).
    #[cfg(feature = "redis")]
    Redis(String),
    Custom(Arc<dyn Store>),
}

/// Settings shared by the app's workers.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub lease: Duration,
    pub worker_threads: usize,
}

pub(crate) struct AppInner {
    pub app_id: String,
    pub store: Arc<dyn Store>,
    pub tasks: RwLock<HashMap<TaskId, Arc<RegisteredTask>>>,
    /// The registered tasks' ids, as workers pass them to claims; replaced on registration.
    pub task_set: RwLock<TaskSet>,
    pub config: Config,
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
    pub(crate) inner: Arc<AppInner>,
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

    /// Registers a task called `name` with default options. See [`App::task_with`].
    pub fn task<A, R, F>(&self, name: &str, body: F) -> Result<Task<A, R>, WfError>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        F: Fn(&TaskContext, A) -> Result<R, TaskError> + Send + Sync + 'static,
    {
        self.task_with(TaskOptions::new(name), body)
    }

    /// Registers a task with options. A name already registered is [`WfError::DuplicateTask`].
    pub fn task_with<A, R, F>(&self, options: TaskOptions, body: F) -> Result<Task<A, R>, WfError>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        F: Fn(&TaskContext, A) -> Result<R, TaskError> + Send + Sync + 'static,
    {
        let id = options.id.clone();
        let handle = Task::new(&options);
        let mut tasks = self.inner.tasks.write().unwrap_or_else(|p| p.into_inner());
        if tasks.contains_key(&id) {
            return Err(WfError::DuplicateTask(id));
        }
        tasks.insert(id.clone(), Arc::new(RegisteredTask::new(options, body)));
        *self
            .inner
            .task_set
            .write()
            .unwrap_or_else(|p| p.into_inner()) = TaskSet::new(tasks.keys().cloned());
        Ok(handle)
    }

    /// The ids of the registered tasks: what this app's workers claim.
    pub(crate) fn task_set(&self) -> TaskSet {
        self.inner
            .task_set
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The registered task called `id`, if any.
    pub(crate) fn registered(&self, id: &TaskId) -> Option<Arc<RegisteredTask>> {
        self.inner
            .tasks
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    /// Checks that a handle matches this app's registration of its task, when there is one.
    pub(crate) fn check_handle<A: 'static, R: 'static>(
        &self,
        task: &Task<A, R>,
    ) -> Result<(), WfError> {
        match self.registered(&task.id) {
            Some(r) if r.signature != TypeId::of::<fn(A) -> R>() => {
                Err(WfError::ForeignTask(task.id.clone()))
            }
            _ => Ok(()),
        }
    }

    /// The names of all registered tasks, sorted.
    pub fn task_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .inner
            .tasks
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .map(|t| t.as_str().to_owned())
            .collect();
        names.sort();
        names
    }

    /// Configures a worker pool for this app: `app.worker().threads(4).start()?`.
    pub fn worker(&self) -> WorkerBuilder {
        WorkerBuilder::new(self.clone())
    }

    /// Runs queued work on the calling thread until nothing is left to run, and returns how many
    /// executions ran. Meant for unit tests of workflows: deterministic (one thread, FIFO) and
    /// fast — retry backoffs and other not-before times are skipped, not waited for.
    ///
    /// Do not use it while workers of the same store run: it treats the store as its own.
    pub fn run_until_idle(&self) -> Result<usize, WfError> {
        crate::worker::run_until_idle(self)
    }
}

/// Configures an [`App`]. Builder values win over `WF_*` environment variables, which win over
/// defaults:
///
/// | setting | builder | environment | default |
/// |---|---|---|---|
/// | app id | `app_id` | `WF_APP_ID` | `"wf"` |
/// | store | `memory`, `file`, `redis`, `store` | `WF_STORE` = `memory`, `file:<dir>`, or a `redis://`, `rediss://`, `redis+cluster://` URL | memory |
/// | lease | `lease_duration` | `WF_LEASE_MS` | 5 s |
/// | worker threads | `worker_threads` | `WF_WORKER_THREADS` | available cores |
#[derive(Default)]
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

    /// Keep everything in Redis (feature `redis`): many worker processes on many machines share
    /// it. `url` is `redis://[user:password@]host[:port][/db][?options]`, `rediss://…` for TLS
    /// (feature `redis-tls`), or `redis+cluster://h1:p1,h2:p2[?options]` for Redis Cluster;
    /// see `wf_store::redis::RedisUrl` for the options (`shards`, `ns`, `wait_replicas`, …).
    /// The password never appears in errors, logs or `Debug` output.
    #[cfg(feature = "redis")]
    pub fn redis(mut self, url: impl Into<String>) -> Self {
        self.backend = Some(Backend::Redis(url.into()));
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
    /// [`WfError::Config`] for invalid settings; [`WfError::Store`] when the store cannot be
    /// opened, or holds another app's work: `WfError::Store(StoreError::AppMismatch { .. })`
    /// names both app ids.
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
            #[cfg(feature = "redis")]
            Backend::Redis(url) => Arc::new(wf_store::RedisStore::open(&url)?),
            Backend::Custom(store) => store,
        };
        store.bind_app(&app_id)?;
        Ok(App {
            inner: Arc::new(AppInner {
                app_id,
                store,
                tasks: RwLock::new(HashMap::new()),
                task_set: RwLock::new(TaskSet::default()),
                config: Config {
                    lease,
                    worker_threads,
                },
            }),
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
    #[cfg(feature = "redis")]
    if [
        "redis://",
        "rediss://",
        "redis+cluster://",
        "rediss+cluster://",
    ]
    .iter()
    .any(|scheme| spec.starts_with(scheme))
    {
        return Ok(Backend::Redis(spec.to_owned()));
    }
    Err(WfError::Config(format!(
        "WF_STORE={:?} is not a store this build knows: use `memory`, `file:<dir>` (feature \
         `file`) or a redis:// URL (feature `redis`)",
        wf_store::redact_url(spec)
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
        assert_eq!(app.inner.config.worker_threads, 3);

        let app = App::builder()
            .app_id("built")
            .lease_duration(Duration::from_secs(2))
            .worker_threads(7)
            .build_with_env(&env)
            .unwrap();
        assert_eq!(app.app_id(), "built");
        assert_eq!(app.lease_duration(), Duration::from_secs(2));
        assert_eq!(app.inner.config.worker_threads, 7);
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
