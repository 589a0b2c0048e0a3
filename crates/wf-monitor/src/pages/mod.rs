//! The pages: the workflow list, one workflow, one invocation.

pub(crate) mod invocation;
pub(crate) mod list;
pub(crate) mod workflow;

use wf_core::Status;

use crate::error::MonitorError;

/// A status named in a query (`failed`), or an error naming the valid ones.
pub(crate) fn parse_status(text: &str) -> Result<Status, MonitorError> {
    Status::ALL
        .into_iter()
        .find(|s| s.as_str() == text)
        .ok_or_else(|| {
            let names: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
            MonitorError::BadRequest(format!(
                "unknown status {text:?}: use one of {}",
                names.join(", ")
            ))
        })
}
