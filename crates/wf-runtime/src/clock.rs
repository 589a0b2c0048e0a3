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

/// The clock of one execution: the wall clock, never earlier than `floor`. Workers' executions
/// use the real time (the floor is when they started); `App::run_until_idle` passes its virtual
/// time, so a sleep it skipped over has passed for the body too.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ExecClock {
    floor: Timestamp,
}

impl ExecClock {
    /// A clock never earlier than `floor`.
    pub(crate) fn new(floor: Timestamp) -> Self {
        Self { floor }
    }

    /// Now, as stored.
    pub(crate) fn now(&self) -> Timestamp {
        now().max(self.floor)
    }

    /// Now, for `utc_now()` and timers.
    pub(crate) fn now_utc(&self) -> time::OffsetDateTime {
        let real = now_utc();
        let floor = time::OffsetDateTime::from_unix_timestamp_nanos(self.floor.as_nanos())
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        real.max(floor)
    }
}
