//! Resolving an app's settings: builder values, then `WF_*` environment variables, then defaults,
//! each checked with an error that names the setting as the user wrote it.

use std::sync::Arc;
use std::time::Duration;

use wf_store::{MemoryStore, Store, StoreSpec};

use crate::error::{ConfigError, WfError};

/// The default lease: how long a worker may go silent before its invocations are taken over.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(5);

/// The shortest lease an app accepts.
const MIN_LEASE: Duration = Duration::from_millis(10);

/// The store an app was told to use.
#[derive(Clone)]
pub(crate) enum StoreChoice {
    /// Named by kind and place (builder methods or `WF_STORE`).
    Spec(StoreSpec),
    /// Built by the caller.
    Custom(Arc<dyn Store>),
}

/// What the builder was given; `None` falls back to the environment, then to the default.
#[derive(Default)]
pub(crate) struct Given {
    pub app_id: Option<String>,
    pub store: Option<StoreChoice>,
    pub lease: Option<Duration>,
    pub worker_threads: Option<usize>,
}

/// Settings after resolution, before the store is opened.
pub(crate) struct Resolved {
    pub app_id: String,
    pub store: StoreChoice,
    pub lease: Duration,
    pub worker_threads: usize,
}

fn invalid(setting: &'static str, value: impl Into<String>, problem: impl Into<String>) -> WfError {
    WfError::Config(ConfigError::Invalid {
        setting,
        value: value.into(),
        problem: problem.into(),
    })
}

/// Resolves every setting. `env` reads a variable (the process environment in `build`).
pub(crate) fn resolve(
    given: Given,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Resolved, WfError> {
    let app_id = match (given.app_id, env("WF_APP_ID")) {
        (Some(id), _) => check_app_id("app_id", id)?,
        (None, Some(id)) => check_app_id("WF_APP_ID", id)?,
        (None, None) => "wf".to_owned(),
    };
    let store = match (given.store, env("WF_STORE")) {
        (Some(choice), _) => choice,
        (None, Some(text)) => StoreChoice::Spec(
            StoreSpec::parse(&text).map_err(|e| invalid("WF_STORE", text, e.to_string()))?,
        ),
        (None, None) => {
            warn_memory_by_default();
            StoreChoice::Spec(StoreSpec::Memory)
        }
    };
    let lease = match (given.lease, env("WF_LEASE_MS")) {
        (Some(lease), _) => check_lease("lease_duration", format!("{lease:?}"), lease)?,
        (None, Some(text)) => {
            let ms: u64 = text.trim().parse().map_err(|_| {
                invalid(
                    "WF_LEASE_MS",
                    &text,
                    "not a whole number of milliseconds; write e.g. WF_LEASE_MS=5000",
                )
            })?;
            check_lease("WF_LEASE_MS", text, Duration::from_millis(ms))?
        }
        (None, None) => DEFAULT_LEASE,
    };
    let worker_threads = match (given.worker_threads, env("WF_WORKER_THREADS")) {
        (Some(n), _) => check_threads("worker_threads", n.to_string(), n)?,
        (None, Some(text)) => {
            let n: usize = text.trim().parse().map_err(|_| {
                invalid(
                    "WF_WORKER_THREADS",
                    &text,
                    "not a whole number; write e.g. WF_WORKER_THREADS=4",
                )
            })?;
            check_threads("WF_WORKER_THREADS", text, n)?
        }
        (None, None) => std::thread::available_parallelism().map_or(2, |n| n.get()),
    };
    Ok(Resolved {
        app_id,
        store,
        lease,
        worker_threads,
    })
}

/// The warning an app built without a store choice prints once per process.
pub(crate) const MEMORY_BY_DEFAULT: &str = "wf: no store configured (neither a builder method \
     nor WF_STORE), so this app keeps its work in memory: everything is lost when the process \
     exits. Choose `.file(dir)` or WF_STORE=./wf-data for a durable store, or say `.memory()` \
     (or WF_STORE=memory) to keep memory and silence this warning";

/// Warns, once per process, that an app with no store choice keeps its work in memory. Printed
/// to standard error as well as logged: without a tracing subscriber a log line alone would go
/// unseen, and losing every invocation at exit is not something to find out later.
fn warn_memory_by_default() {
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        tracing::warn!("{MEMORY_BY_DEFAULT}");
        eprintln!("{MEMORY_BY_DEFAULT}");
    });
}

fn check_app_id(setting: &'static str, id: String) -> Result<String, WfError> {
    if id.trim().is_empty() {
        return Err(invalid(
            setting,
            id,
            "an app id cannot be empty: name the app, e.g. \"shop\"",
        ));
    }
    Ok(id)
}

fn check_lease(setting: &'static str, value: String, lease: Duration) -> Result<Duration, WfError> {
    if lease < MIN_LEASE {
        return Err(invalid(
            setting,
            value,
            format!(
                "a lease must be at least {} ms (a few seconds in production: a worker that \
                 stays silent that long loses its invocations)",
                MIN_LEASE.as_millis()
            ),
        ));
    }
    Ok(lease)
}

fn check_threads(setting: &'static str, value: String, n: usize) -> Result<usize, WfError> {
    if n == 0 {
        return Err(invalid(setting, value, "a worker needs at least 1 thread"));
    }
    Ok(n)
}

/// An opened store, with the control socket that serves it to other processes (file stores
/// this process owns, on Unix).
pub(crate) struct Opened {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) control: Option<Control>,
}

impl Opened {
    fn plain(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            control: None,
        }
    }
}

/// What keeps a store's control socket served (dropped with the app).
#[cfg(all(feature = "file", unix))]
pub(crate) type Control = wf_store::control::ControlServer;
/// What keeps a store's control socket served (none on this platform or build).
#[cfg(not(all(feature = "file", unix)))]
pub(crate) type Control = ();

/// Opens the store a choice names. The one place that maps a [`StoreSpec`] to a backend.
pub(crate) fn open_store(choice: StoreChoice) -> Result<Opened, WfError> {
    let spec = match choice {
        StoreChoice::Custom(store) => return Ok(Opened::plain(store)),
        StoreChoice::Spec(spec) => spec,
    };
    match spec {
        StoreSpec::Memory => Ok(Opened::plain(Arc::new(MemoryStore::new()))),
        #[cfg(feature = "file")]
        StoreSpec::File(dir) => open_file(&dir),
        #[cfg(feature = "redis")]
        StoreSpec::Redis(url) => Ok(Opened::plain(Arc::new(wf_store::RedisStore::open(&url)?))),
        #[cfg(not(feature = "file"))]
        StoreSpec::File(dir) => Err(invalid(
            "WF_STORE",
            format!("file:{}", dir.display()),
            "this build has no file store: enable wf's `file` feature (on by default)",
        )),
        other => Err(invalid(
            "WF_STORE",
            other.to_string(),
            format!(
                "this build has no {} backend (enable wf's `redis` feature); use `memory`, \
                 `file:<dir>` or a directory path",
                other.backend()
            ),
        )),
    }
}

/// Opens a file store. This process becomes its owner and serves its control socket, or, when
/// a live process owns it already, this process becomes a client of that owner (it submits,
/// reads and steers through it; see `wf_store::control`).
#[cfg(feature = "file")]
fn open_file(dir: &std::path::Path) -> Result<Opened, WfError> {
    match wf_store::FileStore::open(dir) {
        Ok(store) => {
            let store: Arc<dyn Store> = Arc::new(store);
            #[cfg(unix)]
            let control = match wf_store::control::ControlServer::start(dir, Arc::downgrade(&store))
            {
                Ok(server) => Some(server),
                Err(e) => {
                    tracing::warn!(
                        error = %e,
                        "the store's control socket could not be started: other processes \
                         cannot submit to or steer this store while this process owns it"
                    );
                    None
                }
            };
            #[cfg(not(unix))]
            let control = None;
            Ok(Opened { store, control })
        }
        #[cfg(unix)]
        Err(locked @ wf_store::StoreError::StoreLocked { .. }) => {
            match wf_store::control::ControlClient::connect(dir) {
                Ok(client) => {
                    tracing::info!(
                        store = %dir.display(),
                        owner = client.owner_pid(),
                        "the store is owned by another process: submitting, reading and steering \
                         through its control socket (workers must run in the owner)"
                    );
                    Ok(Opened::plain(Arc::new(client)))
                }
                Err(e) => {
                    tracing::debug!(error = %e, "no control socket to reach the store's owner");
                    Err(locked.into())
                }
            }
        }
        Err(e) => Err(e.into()),
    }
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

    fn memory() -> Given {
        Given {
            store: Some(StoreChoice::Spec(StoreSpec::Memory)),
            ..Given::default()
        }
    }

    fn error(given: Given, env: &'static [(&'static str, &'static str)]) -> String {
        match resolve(given, env_of(env)) {
            Ok(_) => panic!("resolved a bad configuration: {env:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn builder_values_win_over_environment() {
        let env = env_of(&[
            ("WF_APP_ID", "from-env"),
            ("WF_STORE", "memory"),
            ("WF_LEASE_MS", "1500"),
            ("WF_WORKER_THREADS", "3"),
        ]);
        let r = resolve(Given::default(), &env).unwrap();
        assert_eq!(r.app_id, "from-env");
        assert!(matches!(r.store, StoreChoice::Spec(StoreSpec::Memory)));
        assert_eq!(r.lease, Duration::from_millis(1500));
        assert_eq!(r.worker_threads, 3);

        let given = Given {
            app_id: Some("built".into()),
            store: Some(StoreChoice::Spec(StoreSpec::File("./x".into()))),
            lease: Some(Duration::from_secs(2)),
            worker_threads: Some(7),
        };
        let r = resolve(given, &env).unwrap();
        assert_eq!(r.app_id, "built");
        assert!(matches!(r.store, StoreChoice::Spec(StoreSpec::File(_))));
        assert_eq!(r.lease, Duration::from_secs(2));
        assert_eq!(r.worker_threads, 7);
    }

    #[test]
    fn every_bad_value_names_its_variable_and_value() {
        for (env, expected) in [
            (
                &[("WF_LEASE_MS", "0")][..],
                "WF_LEASE_MS=0: a lease must be at least 10 ms",
            ),
            (
                &[("WF_LEASE_MS", "soon")][..],
                "WF_LEASE_MS=soon: not a whole number",
            ),
            (
                &[("WF_WORKER_THREADS", "0")][..],
                "WF_WORKER_THREADS=0: a worker needs at least 1",
            ),
            (
                &[("WF_WORKER_THREADS", "many")][..],
                "WF_WORKER_THREADS=many: not a whole number",
            ),
            (
                &[("WF_APP_ID", "")][..],
                "WF_APP_ID=: an app id cannot be empty",
            ),
            (
                &[("WF_STORE", "postgres://x")][..],
                "WF_STORE=postgres://x: \"postgres://x\": no store kind `postgres`",
            ),
            (
                &[("WF_STORE", "memroy")][..],
                "WF_STORE=memroy: \"memroy\" is not a store",
            ),
            (
                &[("WF_STORE", "file:")][..],
                "WF_STORE=file:: \"file:\" names no directory",
            ),
        ] {
            assert!(
                error(memory_unless_store(env), env).starts_with(expected),
                "{env:?}: {}",
                error(memory_unless_store(env), env)
            );
        }
    }

    /// A memory store from the builder, unless the case is about WF_STORE.
    fn memory_unless_store(env: &[(&str, &str)]) -> Given {
        match env.iter().any(|(k, _)| *k == "WF_STORE") {
            true => Given::default(),
            false => memory(),
        }
    }

    #[test]
    fn bad_builder_values_name_the_builder_method() {
        let e = error(
            Given {
                lease: Some(Duration::from_millis(5)),
                ..memory()
            },
            &[],
        );
        assert!(e.starts_with("lease_duration=5ms: a lease must be"), "{e}");
        let e = error(
            Given {
                worker_threads: Some(0),
                ..memory()
            },
            &[],
        );
        assert!(e.starts_with("worker_threads=0: a worker needs"), "{e}");
    }

    #[test]
    fn no_store_choice_is_memory_with_a_warning_that_names_the_choices() {
        match resolve(Given::default(), env_of(&[])) {
            Ok(Resolved {
                store: StoreChoice::Spec(StoreSpec::Memory),
                ..
            }) => {}
            Ok(_) => panic!("an app without a store choice got another store than memory"),
            Err(e) => panic!("an app without a store choice was refused: {e}"),
        }
        for needle in [
            ".memory()",
            "lost when the process exits",
            ".file(dir)",
            "WF_STORE",
        ] {
            assert!(MEMORY_BY_DEFAULT.contains(needle), "{MEMORY_BY_DEFAULT}");
        }
    }

    #[test]
    fn wf_store_takes_a_directory_path_as_the_docs_say() {
        for text in ["./wf-data", "/var/lib/wf", "file:wf-data"] {
            let r = resolve(Given::default(), move |k: &str| {
                (k == "WF_STORE").then(|| text.to_owned())
            })
            .unwrap();
            assert!(
                matches!(r.store, StoreChoice::Spec(StoreSpec::File(_))),
                "{text}"
            );
        }
    }
}
