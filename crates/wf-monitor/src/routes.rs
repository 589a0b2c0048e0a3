//! The routes, the state they share, and running a page's store reads off the async threads.

use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::middleware;
use axum::routing::get;
use wf_core::{InvocationId, Timestamp};
use wf_store::{StoreAdmin, StoreRead};

use crate::error::MonitorError;
use crate::source::Backend;
use crate::{MonitorConfig, actions, auth, pages};

/// What every handler sees.
pub(crate) struct Shared {
    pub(crate) config: MonitorConfig,
    pub(crate) backend: Backend,
    /// Where the store is, for the page header.
    pub(crate) describe: String,
    /// The per-process secret every action form carries.
    pub(crate) csrf: String,
}

/// The monitor's routes over the store `config` names, behind its token check.
///
/// | route | what |
/// |---|---|
/// | `GET /` | the workflows: counts by status, filters (`status`, `task`, `age`, `q` id search), pages (`page`) |
/// | `GET /workflows/{id}` | one workflow: tree and timeline, updated live |
/// | `GET /workflows/{id}/live?v=…` | the tree and timeline fragment when changed since version `v` (204 otherwise) |
/// | `GET /invocations/{id}` | one invocation: journal, workflow data, error |
/// | `GET`/`POST /invocations/{id}/retry`, `…/cancel`, `/purge` | an action: its confirmation, then the action |
/// | `GET /static/live.js` | the workflow page's polling script |
///
/// # Errors
///
/// [`MonitorError::BadRequest`] when the store does not exist (a missing directory, an empty
/// Redis namespace), [`MonitorError::Store`] when it cannot be read.
pub fn router(config: MonitorConfig) -> Result<Router, MonitorError> {
    let backend = Backend::open(&config.source)?;
    let shared = Arc::new(Shared {
        describe: backend.describe(),
        backend,
        config,
        csrf: auth::secret(),
    });
    Ok(Router::new()
        .route("/", get(pages::list::list))
        .route("/workflows/{id}", get(pages::workflow::workflow))
        .route("/workflows/{id}/live", get(pages::workflow::live))
        .route("/invocations/{id}", get(pages::invocation::invocation))
        .route(
            "/invocations/{id}/retry",
            get(actions::retry_confirm).post(actions::retry),
        )
        .route(
            "/invocations/{id}/cancel",
            get(actions::cancel_confirm).post(actions::cancel),
        )
        .route("/purge", get(actions::purge_confirm).post(actions::purge))
        .route("/static/live.js", get(pages::workflow::live_js))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            auth::gate,
        ))
        .layer(middleware::map_response(auth::hardened))
        .with_state(shared))
}

/// Now, as the store's clock reads it.
pub(crate) fn now() -> Timestamp {
    Timestamp::from_system_time(SystemTime::now())
}

/// An id from a path.
pub(crate) fn parse_id(text: &str) -> Result<InvocationId, MonitorError> {
    text.parse()
        .map_err(|_| MonitorError::BadRequest(format!("{text:?} is not an invocation id")))
}

/// Runs `f` on the store's current contents on a blocking thread (store reads do file or
/// network I/O).
pub(crate) async fn reading<T, F>(shared: &Arc<Shared>, f: F) -> Result<T, MonitorError>
where
    T: Send + 'static,
    F: FnOnce(&Shared, &dyn StoreRead) -> Result<T, MonitorError> + Send + 'static,
{
    on_blocking_thread(shared, move |shared| {
        let store = shared.backend.read()?;
        f(shared, &*store)
    })
    .await
}

/// Runs `f` on the store opened for a change (an action; see [`Backend::admin`]) on a blocking
/// thread.
pub(crate) async fn changing<T, F>(shared: &Arc<Shared>, f: F) -> Result<T, MonitorError>
where
    T: Send + 'static,
    F: FnOnce(&dyn StoreAdmin) -> Result<T, MonitorError> + Send + 'static,
{
    on_blocking_thread(shared, move |shared| {
        let store = shared.backend.admin()?;
        f(&*store)
    })
    .await
}

/// Runs `f` on a blocking thread.
async fn on_blocking_thread<T, F>(shared: &Arc<Shared>, f: F) -> Result<T, MonitorError>
where
    T: Send + 'static,
    F: FnOnce(&Shared) -> Result<T, MonitorError> + Send + 'static,
{
    let shared = Arc::clone(shared);
    tokio::task::spawn_blocking(move || f(&shared))
        .await
        .map_err(|e| MonitorError::Internal(e.to_string()))?
}
