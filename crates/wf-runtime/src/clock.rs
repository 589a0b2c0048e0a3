//! The runtime's one source of wall-clock time.

use std::time::SystemTime;

use wf_core::Timestamp;

/// Now, as stored.
pub(crate) fn now() -> Timestamp {
    Timestamp::from_system_time(SystemTime::now())
}

/// Now, for `utc_now()`.
pub(crate) fn now_utc() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}
