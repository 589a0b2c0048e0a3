//! Journal entries in words, shared by the monitor's invocation page and `wf journal`: which
//! operation an entry recorded and what it recorded, in one place for both.
//!
//! [`describe`] chooses the words and what each entry shows; a [`Style`] says how the pieces
//! look: plain text for the terminal, or HTML (escaped, with links) for the monitor.

use wf_core::{ChildOutcome, InvocationId, Op, Timestamp};

use crate::value::{clip, render};

/// The words for calls between invocations: `wf journal` speaks of children, the monitor of
/// callees.
#[derive(Debug, Clone, Copy)]
pub struct CallWords {
    /// The operation that started one (`child start`).
    pub started: &'static str,
    /// The operation that observed its outcome (`child result`).
    pub result: &'static str,
    /// What a successful outcome is called before its value (`success`).
    pub succeeded: &'static str,
}

/// How a front end writes the pieces of a description.
pub trait Style {
    /// How many characters of a stored value or an event's payload to show.
    const VALUE_WIDTH: usize;
    /// How many characters of an error or a cancellation's reason to show.
    const MESSAGE_WIDTH: usize;
    /// The words for calls between invocations.
    const CALLS: CallWords;

    /// Text from the store (keys, names, values, reasons): the monitor escapes it.
    fn text(&self, s: &str) -> String;

    /// A reference to an invocation: the monitor links to its page.
    fn invocation(&self, id: InvocationId) -> String;

    /// A child's error, already cut to [`Style::MESSAGE_WIDTH`]: the monitor marks it.
    fn failure(&self, message: &str) -> String {
        self.text(message)
    }

    /// A wall-clock time (a timer's).
    fn time(&self, at: Timestamp) -> String;

    /// A journaled clock reading, in nanoseconds since the epoch.
    fn clock(&self, nanos: i128) -> String;
}

/// One journal entry in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    /// The operation: `random()`, `get_data("key")`, `timer`, ….
    pub operation: String,
    /// What it recorded (may be empty).
    pub recorded: String,
}

/// Describes the operation `op` of a journal entry in `style`.
pub fn describe<S: Style>(op: &Op, style: &S) -> Described {
    let value = |bytes: &[u8]| style.text(&render(bytes).text(Some(S::VALUE_WIDTH)));
    let (operation, recorded) = match op {
        Op::Random(bits) => ("random()".into(), format!("{:?}", f64::from_bits(*bits))),
        Op::Uuid(u) => ("uuid()".into(), u.to_string()),
        Op::Time(nanos) => ("utc_now()".into(), style.clock(*nanos)),
        Op::ChildStart { task, call, child } => (
            S::CALLS.started.into(),
            format!(
                "task {} as {} (call {call})",
                style.text(task.as_str()),
                style.invocation(*child)
            ),
        ),
        Op::DataGet { key, value: found } => (
            style.text(&format!("get_data({key:?})")),
            found.as_deref().map_or_else(|| "none".into(), value),
        ),
        Op::ChildResult { child, outcome } => (
            S::CALLS.result.into(),
            match outcome {
                ChildOutcome::Success(v) => format!(
                    "{} {}: {}",
                    style.invocation(*child),
                    S::CALLS.succeeded,
                    value(v)
                ),
                ChildOutcome::Failed(f) => format!(
                    "{} failed: {}",
                    style.invocation(*child),
                    style.failure(&clip(&f.to_string(), S::MESSAGE_WIDTH))
                ),
            },
        ),
        Op::Timer { at } => ("timer".into(), format!("fires at {}", style.time(*at))),
        Op::TimerFired => ("timer fired".into(), String::new()),
        Op::Event { name, seq, payload } => (
            style.text(&format!("event {name:?}")),
            format!(
                "#{seq}: {}",
                style.text(&clip(&String::from_utf8_lossy(payload), S::VALUE_WIDTH))
            ),
        ),
        Op::Patch { id } => ("patch marker".into(), style.text(id)),
        Op::Cancelled { reason } => (
            "told: cancelled".into(),
            style.text(&clip(reason, S::MESSAGE_WIDTH)),
        ),
    };
    Described {
        operation,
        recorded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wf_core::codec::encode;
    use wf_core::{CallId, Failure, FailureKind, TaskId};

    /// Brackets what each hook wrote, so a test sees which hook wrote what.
    struct Marked;

    impl Style for Marked {
        const VALUE_WIDTH: usize = 5;
        const MESSAGE_WIDTH: usize = 4;
        const CALLS: CallWords = CallWords {
            started: "started",
            result: "result",
            succeeded: "ok",
        };

        fn text(&self, s: &str) -> String {
            format!("[{s}]")
        }

        fn invocation(&self, id: InvocationId) -> String {
            format!("<{}>", id.to_string().chars().take(4).collect::<String>())
        }

        fn failure(&self, message: &str) -> String {
            format!("!{message}!")
        }

        fn time(&self, at: Timestamp) -> String {
            format!("t{}", at.0)
        }

        fn clock(&self, nanos: i128) -> String {
            format!("c{nanos}")
        }
    }

    fn said(op: Op) -> (String, String) {
        let d = describe(&op, &Marked);
        (d.operation, d.recorded)
    }

    #[test]
    fn every_piece_goes_through_the_style() {
        let child = InvocationId::from_random_bytes([0x12; 16]);
        let call = CallId::of(&TaskId::new("step"), b"args");
        let start = said(Op::ChildStart {
            task: TaskId::new("step"),
            call,
            child,
        });
        assert_eq!(start.0, "started");
        assert_eq!(start.1, format!("task [step] as <1212> (call {call})"));

        let done = said(Op::ChildResult {
            child,
            outcome: ChildOutcome::Success(encode(&"long text").unwrap()),
        });
        assert_eq!(done, ("result".into(), "<1212> ok: [\"long…]".into()));
        let failed = said(Op::ChildResult {
            child,
            outcome: ChildOutcome::Failed(Failure::new(FailureKind::Task, "boom")),
        });
        assert!(failed.1.starts_with("<1212> failed: !"), "{}", failed.1);

        assert_eq!(
            said(Op::DataGet {
                key: "k".into(),
                value: None
            }),
            ("[get_data(\"k\")]".into(), "none".into())
        );
        assert_eq!(said(Op::Time(7)).1, "c7");
        assert_eq!(said(Op::Timer { at: Timestamp(9) }).1, "fires at t9");
        assert_eq!(
            said(Op::Cancelled {
                reason: "because".into()
            }),
            ("told: cancelled".into(), "[beca…]".into())
        );
        assert_eq!(
            said(Op::Event {
                name: "go".into(),
                seq: 2,
                payload: b"{}".to_vec()
            }),
            ("[event \"go\"]".into(), "#2: [{}]".into())
        );
    }
}
