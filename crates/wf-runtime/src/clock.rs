//! The runtime's one source of wall-clock time, which a test may freeze on its own thread
//! ([`crate::testing::freeze_clock`]).

use std::cell::Cell;
use std::time::SystemTime;

use wf_core::Timestamp;

thread_local! {
    /// A frozen reading for this thread, set by `testing::freeze_clock`.
    static FROZEN: Cell<Option<Timestamp>> = const { Cell::new(None) };
}

/// Freezes (or, with `None`, thaws) this thread's clock.
pub(crate) fn freeze(at: Option<Timestamp>) {
    FROZEN.with(|f| f.set(at));
}

fn frozen() -> Option<Timestamp> {
    FROZEN.with(Cell::get)
}

/// Now, as stored.
pub(crate) fn now() -> Timestamp {
    frozen().unwrap_or_else(|| Timestamp::from_system_time(SystemTime::now()))
}

/// Now, for `utc_now()`.
pub(crate) fn now_utc() -> time::OffsetDateTime {
    match frozen() {
        Some(t) => time::OffsetDateTime::from_unix_timestamp_nanos(t.as_nanos())
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
        None => time::OffsetDateTime::now_utc(),
    }
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
