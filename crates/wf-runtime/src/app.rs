//! The `App`: a store, a task registry and configuration, shared by callers and workers.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use wf_core::{InvocationId, TaskId};
use wf_store::{Store, StoreSpec, TaskSet};

use crate::cancel::Running;
use crate::config::{self, Given, StoreChoice};
use crate::context::TaskContext;
#[cfg(doc)]
use crate::error::ConfigError;
use crate::error::{TaskError, WfError};
use crate::registry::{RegisteredTask, Registry};
use crate::scope;
use crate::task::{Task, TaskOptions};

/// Settings shared by the app's workers.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) lease: Duration,
    pub(crate) worker_threads: usize,
    /// Whether `execute_task` runs a child inline (see `AppBuilder::inline_children`).
    pub(crate) inline_children: bool,
}

struct AppInner {
    /// Serves the store to other processes while this app owns it; dropped first.
    _control: Option<config::Control>,
    app_id: String,
    store: Arc<dyn Store>,
    registry: Registry,
    config: Config,
    /// The executions running in this process, told of cancellations through it.
    running: Arc<Running>,
    /// Rung after every commit of this process, for parked async bodies.
    #[cfg(feature = "tokio")]
    bell: tokio::sync::Notify,
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

    /// The task registry.
    #[cfg(feature = "tokio")]
    pub(crate) fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// Rung after every commit of this process (and when a worker stops): parked async bodies
    /// read their children again.
    #[cfg(feature = "tokio")]
    pub(crate) fn bell(&self) -> &tokio::sync::Notify {
        &self.inner.bell
    }

    /// Wakes the parked async bodies of this process (no-op without feature `tokio`).
    pub(crate) fn ring(&self) {
        #[cfg(feature = "tokio")]
        self.inner.bell.notify_waiters();
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
/// | store | `memory`, `file`, `redis`, `store` | `WF_STORE` = `memory`, `file:<dir>`, a directory path (`./wf-data`, `/var/lib/app/wf`) or a `redis://`, `rediss://`, `redis+cluster://` URL | memory, with a warning on standard error |
/// | lease | `lease_duration` | `WF_LEASE_MS` | 5 s |
/// | worker threads | `worker_threads` | `WF_WORKER_THREADS` | available cores |
///
/// An app built with no store choice at all keeps its work in memory, and `build` prints a
/// warning to standard error (once per process) that everything is lost on exit, naming the
/// choices. Say `.memory()` (or `WF_STORE=memory`) where memory is what you want (tests,
/// throw-away work) and the warning goes away; choose `.file(dir)` for durable work.
#[derive(Default)]
pub struct AppBuilder {
    given: Given,
    inline_children: Option<bool>,
}

impl fmt::Debug for AppBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppBuilder")
            .field("app_id", &self.given.app_id)
            .field("lease", &self.given.lease)
            .field("worker_threads", &self.given.worker_threads)
            .field("inline_children", &self.inline_children)
            .finish_non_exhaustive()
    }
}

impl AppBuilder {
    /// The app's id (labels its store and logs).
    pub fn app_id(mut self, id: impl Into<String>) -> Self {
        self.given.app_id = Some(id.into());
        self
    }

    /// Keep everything in this process's memory: for tests and work that may be lost when the
    /// process exits.
    pub fn memory(mut self) -> Self {
        self.given.store = Some(StoreChoice::Spec(StoreSpec::Memory));
        self
    }

    /// Keep everything in a directory on disk: durable across crashes; one owning process.
    /// Takes anything path-like: `&str`, `PathBuf`, `&Path`, a `tempfile::TempDir`.
    #[cfg(feature = "file")]
    pub fn file(mut self, dir: impl AsRef<std::path::Path>) -> Self {
        self.given.store = Some(StoreChoice::Spec(StoreSpec::File(
            dir.as_ref().to_path_buf(),
        )));
        self
    }

    /// Keep everything in Redis (feature `redis`): many worker processes on many machines share
    /// it. `url` is `redis://[user:password@]host[:port][/db][?options]`, `rediss://…` for TLS
    /// (feature `redis-tls`), or `redis+cluster://h1:p1,h2:p2[?options]` for Redis Cluster; the
    /// options (`shards`, `ns`, `wait_replicas`, …) are listed at `wf_store::redis::RedisUrl`.
    /// The password never appears in errors, logs or `Debug` output.
    #[cfg(feature = "redis")]
    pub fn redis(mut self, url: impl Into<String>) -> Self {
        self.given.store = Some(StoreChoice::Spec(StoreSpec::Redis(url.into())));
        self
    }

    /// The store a [`StoreSpec`] names (what `WF_STORE` holds, parsed): one binary can take its
    /// store from a flag or a config file with `text.parse::<StoreSpec>()?`.
    pub fn store_spec(mut self, spec: StoreSpec) -> Self {
        self.given.store = Some(StoreChoice::Spec(spec));
        self
    }

    /// Use a store you built yourself (any [`Store`] implementation).
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.given.store = Some(StoreChoice::Custom(store));
        self
    }

    /// How long a worker's claim lasts without renewal (workers renew at a third of it). At
    /// least 10 ms; seconds in production.
    pub fn lease_duration(mut self, lease: Duration) -> Self {
        self.given.lease = Some(lease);
        self
    }

    /// Default thread count of this app's workers. At least 1.
    pub fn worker_threads(mut self, n: usize) -> Self {
        self.given.worker_threads = Some(n);
        self
    }

    /// Whether `execute_task` runs a child of a task this app registers inline, on the
    /// caller's thread (default: yes). Inline, a workflow of n sequential children costs n
    /// child executions; otherwise each child is claimed by a worker like any invocation and
    /// its caller suspends and is replayed once per child (O(n²) in all). Durability and replay
    /// are the same either way. Turn it off in tests that must exercise a workflow's replays
    /// after each child, or to have children claimed by whichever worker is free.
    pub fn inline_children(mut self, yes: bool) -> Self {
        self.inline_children = Some(yes);
        self
    }

    /// Builds the app, opening its store and binding it to the app id: a store records the
    /// first app that opens it.
    ///
    /// # Errors
    ///
    /// [`WfError::Config`] when a setting is invalid or no store was chosen (the message names
    /// the setting: `WF_LEASE_MS=0`, `worker_threads=0`, …); [`WfError::Store`] when the store
    /// cannot be opened (locked by another process, not a directory, corrupt, …), or holds
    /// another app's work: `WfError::Store(StoreError::AppMismatch { .. })` names both app ids.
    pub fn build(self) -> Result<App, WfError> {
        self.build_with_env(|k| std::env::var(k).ok())
    }

    fn build_with_env(self, env: impl Fn(&str) -> Option<String>) -> Result<App, WfError> {
        let settings = config::resolve(self.given, env)?;
        let config::Opened { store, control } = config::open_store(settings.store)?;
        store.bind_app(&settings.app_id)?;
        Ok(App {
            inner: Arc::new(AppInner {
                _control: control,
                app_id: settings.app_id,
                store,
                registry: Registry::default(),
                config: Config {
                    lease: settings.lease,
                    worker_threads: settings.worker_threads,
                    inline_children: self.inline_children.unwrap_or(true),
                },
                running: Arc::default(),
                #[cfg(feature = "tokio")]
                bell: tokio::sync::Notify::new(),
            }),
            body: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_app_gets_the_settings_it_was_given() {
        let app = App::builder()
            .app_id("built")
            .memory()
            .lease_duration(Duration::from_secs(2))
            .worker_threads(7)
            .build_with_env(|_| None)
            .unwrap();
        assert_eq!(app.app_id(), "built");
        assert_eq!(app.lease_duration(), Duration::from_secs(2));
        assert_eq!(app.config().worker_threads, 7);
        assert_eq!(app.store().backend(), "memory");
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
