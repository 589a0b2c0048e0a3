//! What the monitor's tests share: a store with a few workflows in it, a monitor serving it on
//! a real socket, and an HTTP client.
#![allow(dead_code, unreachable_pub, missing_docs)]

pub mod http;
pub mod webdriver;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::mpsc;

use wf_core::InvocationId;
use wf_monitor::{MonitorConfig, StoreSource};
use wf_runtime::{App, Task, TaskContext, TaskError, TaskOptions};

/// A task name and an error message a page must escape.
pub const XSS_TASK: &str = "<script>alert('task')</script>";
pub const XSS_ERROR: &str = "<img src=x onerror=alert('error')>";

/// What [`populate`] stored.
#[derive(Debug, Clone, Copy)]
pub struct Stored {
    /// `order`: calls `charge` and `ship`, then `notify`, which fails: 4 invocations, failed.
    pub tree: InvocationId,
    /// `notify`, the failed callee in `tree`.
    pub failed_leaf: InvocationId,
    /// A single invocation of [`XSS_TASK`], failed with [`XSS_ERROR`].
    pub xss: InvocationId,
    /// A `charge` that succeeded on its own.
    pub done: InvocationId,
}

/// The tasks, registered on `app`: `(charge, order, xss)`.
pub fn tasks(app: &App) -> (Task<u32, u32>, Task<u32, u32>, Task<u32, u32>) {
    let charge = app
        .task(
            "charge",
            |_: &TaskContext, n: u32| -> Result<u32, TaskError> { Ok(n * 100) },
        )
        .unwrap();
    let ship = app
        .task(
            "ship",
            |_: &TaskContext, n: u32| -> Result<u32, TaskError> { Ok(n) },
        )
        .unwrap();
    let notify = app
        .task_with(
            TaskOptions::new("notify").max_retries(0),
            |_: &TaskContext, _: u32| -> Result<u32, TaskError> {
                Err(TaskError::new("mail server unavailable"))
            },
        )
        .unwrap();
    let c = charge.clone();
    let order = app
        .task_with(
            TaskOptions::new("order").max_retries(0),
            move |ctx: &TaskContext, n: u32| -> Result<u32, TaskError> {
                let wf = ctx.wf();
                wf.set_data("note", "<i>fragile</i>")?;
                let cents = wf.execute_task(&c, n)?;
                wf.execute_task(&ship, n)?;
                wf.execute_task(&notify, n)?;
                Ok(cents)
            },
        )
        .unwrap();
    let xss = app
        .task_with(
            TaskOptions::new(XSS_TASK).max_retries(0),
            |_: &TaskContext, _: u32| -> Result<u32, TaskError> { Err(TaskError::new(XSS_ERROR)) },
        )
        .unwrap();
    (charge, order, xss)
}

/// Opens the file store in `dir` as the app the tests use (it owns the store while it lives).
pub fn app(dir: &Path) -> App {
    App::builder()
        .app_id("monitor-test")
        .file(dir)
        .build()
        .unwrap()
}

/// Fills the file store in `dir`: see [`Stored`]. The app is gone when it returns (the store is
/// free).
pub fn populate(dir: &Path) -> Stored {
    populate_app(app(dir))
}

/// Fills `app`'s store: see [`Stored`].
pub fn populate_app(app: App) -> Stored {
    let (charge, order, xss) = tasks(&app);
    let done = charge.call(&app, 7).unwrap().id();
    let tree = order.call(&app, 3).unwrap().id();
    let xss = xss.call(&app, 1).unwrap().id();
    app.run_until_idle().unwrap();
    let nodes = app.workflow(tree).unwrap();
    let failed_leaf = nodes
        .nodes()
        .iter()
        .find(|n| n.invocation.task().as_str() == "notify")
        .unwrap()
        .invocation
        .id();
    Stored {
        tree,
        failed_leaf,
        xss,
        done,
    }
}

/// Serves a monitor with `config` on a free loopback port, on a thread of its own (it ends with
/// the test process).
pub fn serve(config: MonitorConfig) -> SocketAddr {
    let router = wf_monitor::router(config).unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            wf_monitor::serve_router(listener, router).await.unwrap();
        });
    });
    rx.recv_timeout(http::PATIENCE)
        .expect("the monitor listens within the patience")
}

/// A token-less monitor of the file store in `dir`.
pub fn serve_dir(dir: &Path) -> SocketAddr {
    serve(MonitorConfig::new(StoreSource::File(dir.to_owned())))
}

/// The value of `name="csrf"` in a confirmation page.
pub fn csrf(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("the page has the form secret");
    let rest = &page[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}
