//! What can go wrong in the monitor, and the page each error shows.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use wf_runtime::WfError;
use wf_store::StoreError;

use crate::html;

/// Why a monitor request or the monitor itself failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MonitorError {
    /// The store failed or refused (an unknown invocation, a retry of one that is not failed).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A management call failed.
    #[error(transparent)]
    Wf(#[from] WfError),
    /// Listening or serving failed.
    #[error("cannot serve the monitor: {0}")]
    Io(#[from] std::io::Error),
    /// A request named something malformed (an id that is not an id, an unknown status).
    #[error("{0}")]
    BadRequest(String),
    /// A request without the token, or a form without its confirmation.
    #[error("{0}")]
    Forbidden(String),
    /// A worker thread of the monitor failed.
    #[error("internal error: {0}")]
    Internal(String),
}

impl MonitorError {
    fn status(&self) -> StatusCode {
        let store = |e: &StoreError| match e {
            StoreError::InvocationNotFound(_) => StatusCode::NOT_FOUND,
            StoreError::NotRetryable { .. } => StatusCode::CONFLICT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        match self {
            MonitorError::Store(e) | MonitorError::Wf(WfError::Store(e)) => store(e),
            MonitorError::BadRequest(_) => StatusCode::BAD_REQUEST,
            MonitorError::Forbidden(_) => StatusCode::FORBIDDEN,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for MonitorError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = format!(
            "<h1>{} {}</h1><p class=\"error\">{}</p><p><a href=\"/\">All workflows</a></p>",
            status.as_u16(),
            html::esc(status.canonical_reason().unwrap_or("error")),
            html::esc(&self.to_string())
        );
        (status, html::page("Error", &body)).into_response()
    }
}
