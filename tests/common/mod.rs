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

/// A lease for the tests that pin lease renewal (a body running longer than a lease keeps it)
/// and for the workers whose leases must not expire: the tests wait for renewals
/// ([`until_renewed`]), never for a span of time, so the lease only has to outlast the worst
/// stall of a loaded machine (renewed at a third of the lease, it may be late by two thirds, 4 s
/// here, before it expires). 150 ms leases expired under a load of 11-17 on two cores, between
/// a claim and the commit of a body that returned at once; 2 s leases once on Redis (the test's
/// redis-server runs niced like the tests). Each renewal waited for costs up to 2 s.
pub const RENEWED_LEASE: Duration = Duration::from_secs(6);

/// Waits (polling the store) until the lease of each of `ids`, running now, has been renewed
/// `times` times since this was called: its expiry seen to move forward that often, by the same
/// worker and attempt. Fails at once when another worker or attempt takes one over (its lease
/// was lost), and after [`PATIENCE`] when the renewals do not come (nothing renews it). Call it
/// from inside a body to make the body outlast renewals instead of sleeping for a guessed time.
pub fn until_renewed(app: &App, ids: &[wf::InvocationId], times: usize) {
    let lease = |id: wf::InvocationId| {
        let record = app.store().invocation(id).unwrap();
        let info = record
            .state
            .lease
            .unwrap_or_else(|| panic!("{id} is {} and holds no lease", record.state.status));
        (record.state.attempts, info.worker, info.expires_at)
    };
    // Per id: who holds it, the last expiry seen, the renewals seen.
    let mut seen: Vec<_> = ids
        .iter()
        .map(|&id| {
            let (attempt, worker, expires) = lease(id);
            (attempt, worker, expires, 0)
        })
        .collect();
    eventually(
        &format!("the leases of {ids:?} renewed {times} times"),
        || {
            for (&id, (attempt, worker, expires, renewals)) in ids.iter().zip(seen.iter_mut()) {
                let now = lease(id);
                assert_eq!(
                    (&now.0, &now.1),
                    (&*attempt, &*worker),
                    "{id}: the lease was lost (taken over) while it should have been renewed"
                );
                if now.2 > *expires {
                    *expires = now.2;
                    *renewals += 1;
                }
            }
            seen.iter().all(|s| s.3 >= times)
        },
    );
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
