//! Capturing everything `tracing` emits in a test process, as text, for tests that check what
//! the logs show (no password, say). Feature `testing`.
//!
//! ```
//! wf_store::log_capture::install();
//! tracing::warn!(user = "ana", "something happened");
//! assert!(wf_store::log_capture::captured().contains("user=ana"));
//! ```

use std::fmt::Write as _;
use std::sync::{Mutex, Once, PoisonError};

/// Everything captured so far.
static LOGGED: Mutex<String> = Mutex::new(String::new());

/// Makes a subscriber that writes every span and event, at every level, with all fields, the
/// process's global `tracing` subscriber. Idempotent. If another global subscriber was set
/// first, nothing is captured: call this before anything logs.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if tracing::subscriber::set_global_default(Capture).is_err() {
            tracing::warn!(
                "log_capture::install: another subscriber is installed; capturing nothing"
            );
        }
    });
}

/// Everything captured since [`install`], one line per span, record or event.
pub fn captured() -> String {
    LOGGED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

struct Capture;

struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        let _ = write!(self.0, " {}={value}", field.name());
    }
}

impl Capture {
    fn write(&self, head: &str, record: impl FnOnce(&mut Fields<'_>)) {
        let mut log = LOGGED.lock().unwrap_or_else(PoisonError::into_inner);
        log.push_str(head);
        record(&mut Fields(&mut log));
        log.push('\n');
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        self.write(span.metadata().name(), |f| span.record(f));
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        self.write("record", |f| values.record(f));
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        self.write(event.metadata().level().as_str(), |f| event.record(f));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}
