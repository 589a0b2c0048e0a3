//! Shared helpers of the end-to-end tests: one app per backend, and small sync tools.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use wf::App;

pub mod hooked;
pub mod process;
pub mod program;

/// How long a test waits for something that should happen quickly. Generous: a timeout here is a
/// failure, never a synchronisation.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// An app on one backend, with whatever keeps the backend alive.
pub struct TestApp {
    pub backend: &'static str,
    pub app: App,
    _dir: Option<tempfile::TempDir>,
}

/// A fresh app on every backend this build has. `configure` adjusts the builder.
pub fn apps(configure: impl Fn(wf::AppBuilder) -> wf::AppBuilder) -> Vec<TestApp> {
    #[allow(unused_mut)]
    let mut out = vec![TestApp {
        backend: "memory",
        app: configure(App::builder().app_id("test").memory())
            .build()
            .unwrap(),
        _dir: None,
    }];
    #[cfg(feature = "file")]
    {
        let dir = tempfile::tempdir().unwrap();
        let app = configure(App::builder().app_id("test").file(dir.path().join("store")))
            .build()
            .unwrap();
        out.push(TestApp {
            backend: "file",
            app,
            _dir: Some(dir),
        });
    }
    // A real redis-server shared by the test process, a fresh namespace per app (without a
    // redis-server, a loud notice says the Redis runs were skipped).
    #[cfg(feature = "redis")]
    if let Some(server) = wf_store::redis::testing::shared_server("end-to-end tests on Redis") {
        let ns = wf_store::redis::testing::unique_namespace("e2e");
        let app = configure(
            App::builder()
                .app_id("test")
                .redis(server.url(&format!("ns={ns}"))),
        )
        .build()
        .unwrap();
        out.push(TestApp {
            backend: "redis",
            app,
            _dir: None,
        });
    }
    out
}

/// A one-shot gate: threads wait until it is opened.
#[derive(Clone, Default)]
pub struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    pub fn open(&self) {
        let (m, c) = &*self.0;
        *m.lock().unwrap() = true;
        c.notify_all();
    }

    pub fn wait(&self) {
        let (m, c) = &*self.0;
        let guard = m.lock().unwrap();
        let (guard, timeout) = c
            .wait_timeout_while(guard, PATIENCE, |open| !*open)
            .unwrap();
        assert!(*guard && !timeout.timed_out(), "gate never opened");
    }

    pub fn is_open(&self) -> bool {
        *self.0.0.lock().unwrap()
    }
}

/// Counts executions of a body (or runs of a child).
#[derive(Clone, Default)]
pub struct Count(Arc<std::sync::atomic::AtomicUsize>);

impl Count {
    /// Counts one more and returns the new count (1 for the first).
    pub fn hit(&self) -> usize {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1
    }

    /// The count so far.
    pub fn get(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The kinds of invocation `id`'s journal entries, in order.
pub fn journal_kinds(app: &App, id: wf::InvocationId) -> Vec<wf::core::OpKind> {
    app.store()
        .journal(id)
        .unwrap()
        .iter()
        .map(|e| e.op.kind())
        .collect()
}

/// Waits until `condition` holds, checking every few milliseconds, and fails after
/// [`PATIENCE`]. Only for states nothing can be awaited on (an invocation becoming waiting in
/// another thread's worker).
pub fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + PATIENCE;
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until invocation `id` is waiting (suspended, holding no worker).
pub fn until_waiting(app: &App, id: wf::InvocationId) {
    eventually(&format!("{id} is waiting"), || {
        app.store().invocation(id).unwrap().status() == wf::Status::Waiting
    });
}

/// The apps of [`apps`] for the steering tests (durable timers, events, tree cancellation:
/// `wf_store::steering_conformance_tests!`): every backend implements them, Redis included.
pub fn steering_apps(configure: impl Fn(wf::AppBuilder) -> wf::AppBuilder) -> Vec<TestApp> {
    apps(configure)
}
