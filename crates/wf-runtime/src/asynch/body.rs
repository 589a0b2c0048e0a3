//! Running an async body: awaited on the async worker, or driven to its end on the calling
//! thread anywhere else. Either way the body runs under its invocation's scope, its panics are
//! caught, and its recorder is sealed as a sync body's is.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use wf_core::InvocationId;
use wf_store::InvocationSpec;

use super::LocalBody;
use super::context::AsyncTaskContext;
use super::park::Parking;
use crate::app::App;
use crate::clock::ExecClock;
use crate::context::TaskContext;
use crate::error::TaskError;
use crate::execution::{BodyResult, body_end};
use crate::inline::Inline;
use crate::recorder::{Recorder, Sealed};
use crate::registry::{BodyError, RegisteredTask};
use crate::scope::BodyScope;

/// Runs the async body of `task` once, awaited, and seals its recorder. `parking` is the
/// worker's, when the body runs on an async worker (its waits may park).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run_body_async(
    app: &App,
    task: &RegisteredTask,
    spec: &Arc<InvocationSpec>,
    attempt: u32,
    recorder: Recorder,
    clock: ExecClock,
    inline: Inline,
    parking: Option<Parking>,
) -> (BodyResult, Sealed) {
    let ctx = Rc::new(TaskContext::new(
        app,
        spec.clone(),
        attempt,
        recorder,
        clock,
        inline,
    ));
    let future: LocalBody = match task.async_body() {
        Some(body) => body(
            AsyncTaskContext::new(ctx.clone(), parking),
            spec.args.clone(),
        ),
        None => Box::pin(async {
            Err(BodyError::Task(TaskError::new(
                "a sync body was run as an async one; this is a bug in wf, please report it",
            )))
        }),
    };
    let result = Guarded {
        invocation: spec.id,
        future,
    }
    .await;
    // The body's future is gone; a context it leaked elsewhere records into a fresh recorder
    // that nothing commits.
    let sealed = ctx.take_recorder().seal(body_end(&result));
    (result, sealed)
}

/// Runs the async body of `task` to its end for a caller that blocks (a sync worker,
/// `run_until_idle`, a sync parent running it inline), and seals its recorder. Its waits
/// behave as a sync body's: nothing parks. The body runs on a current-thread runtime of its
/// own; when the calling thread already belongs to a runtime (a `#[tokio::test]` calling
/// `run_until_idle`, a blocking thread of the async worker), on a thread of its own too, so
/// that it never waits for timers or sockets of a runtime the caller is blocking.
pub(crate) fn run_body_blocking(
    app: &App,
    task: &RegisteredTask,
    spec: &Arc<InvocationSpec>,
    attempt: u32,
    recorder: Recorder,
    clock: ExecClock,
    inline: Inline,
) -> (BodyResult, Sealed) {
    let run = move || {
        let future = run_body_async(app, task, spec, attempt, recorder, clock, inline, None);
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(future),
            Err(e) => {
                tracing::warn!(error = %e, "could not build a tokio runtime for an async body; running it without one");
                block_here(future)
            }
        }
    };
    if tokio::runtime::Handle::try_current().is_err() {
        return run();
    }
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name(format!("wf-async-{}", spec.id))
            .spawn_scoped(scope, run);
        match thread {
            Ok(thread) => thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            // The runner catches it: the invocation is recovered when its lease expires.
            Err(e) => std::panic::resume_unwind(Box::new(format!(
                "could not start a thread to run an async body: {e}"
            ))),
        }
    })
}

/// Polls a body's future under its invocation's scope, catching its panics.
struct Guarded {
    invocation: InvocationId,
    future: LocalBody,
}

impl Future for Guarded {
    type Output = BodyResult;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<BodyResult> {
        let this = self.get_mut();
        let _scope = BodyScope::enter(this.invocation);
        match catch_unwind(AssertUnwindSafe(|| this.future.as_mut().poll(cx))) {
            Ok(Poll::Ready(result)) => Poll::Ready(Ok(result)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}

/// Wakes a thread parked in [`block_here`].
struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Drives `future` to its end on this thread.
fn block_here<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}
