//! Values: large values round trip byte for byte.

use wf_core::{ChildOutcome, JournalEntry, Op};

use crate::limits::MAX_ERROR_BYTES;
use crate::model::{Commit, Outcome};

use super::Subject;
use super::fixtures::*;

/// 1 MiB arguments, results, data values and journal values round trip byte for byte.
pub fn large_values_round_trip(s: Subject) {
    const MIB: usize = 1 << 20;
    let store = &*s.store;
    let args = pattern(MIB, 1);
    let result = pattern(MIB, 2);
    let value = pattern(MIB, 3);
    let observed = pattern(MIB, 4);
    let inv = root(1, "big", &args);
    submit(store, &inv, T0);
    let c = claim_expect(store, "w", T0, inv.id);
    assert!(c.record.spec.args == args, "1 MiB args from claim differ");
    let journal = vec![JournalEntry {
        seq: 0,
        op: Op::ChildResult {
            child: id(9),
            outcome: ChildOutcome::Success(observed.clone()),
        },
    }];
    commit(
        store,
        &c.lease,
        Commit {
            journal: journal.clone(),
            data: vec![("big".to_owned(), value.clone())],
            children: Vec::new(),
            outcome: Outcome::Success(result.clone()),
            ..Commit::outcome(Outcome::Released)
        },
        at(1),
    );
    let rec = record(store, inv.id);
    assert!(
        rec.spec.args == args,
        "1 MiB args differ after reading back"
    );
    assert!(
        rec.state.result.as_deref() == Some(&result[..]),
        "1 MiB result differs after reading back"
    );
    assert!(
        ok(store.get_data(inv.id, "big"), "get_data").as_deref() == Some(&value[..]),
        "1 MiB data value differs after reading back"
    );
    assert!(
        ok(store.journal(inv.id), "journal") == journal,
        "1 MiB journal value differs after reading back"
    );
}

/// The text a store keeps for `message`: cut to [`MAX_ERROR_BYTES`] with the note, as every
/// backend must keep it.
fn kept(message: &str) -> String {
    format!(
        "{} … [{} bytes cut]",
        &message[..MAX_ERROR_BYTES],
        message.len() - MAX_ERROR_BYTES
    )
}

/// Error texts are kept up to [`MAX_ERROR_BYTES`]: a longer one (of a retry, a failure, a
/// cancellation) is cut with a note of how much was cut, so later records that copy the state
/// stay small; one at the limit is kept whole.
pub fn long_error_texts_are_cut(s: Subject) {
    let store = &*s.store;
    let inv = root(1, "t", b"");
    submit(store, &inv, T0);
    let huge = "x".repeat(MAX_ERROR_BYTES * 4 + 7);
    let c = claim_expect(store, "w", T0, inv.id);
    commit(
        store,
        &c.lease,
        Commit::outcome(Outcome::Retry {
            not_before: at(1),
            error: failure(&huge),
        }),
        at(1),
    );
    let error = record(store, inv.id)
        .state
        .error
        .expect("a retry keeps its error");
    assert_eq!(
        error.message,
        kept(&huge),
        "a retry's long error is cut with a note"
    );

    let c = claim_expect(store, "w", at(2), inv.id);
    let exact = "y".repeat(MAX_ERROR_BYTES);
    commit(
        store,
        &c.lease,
        Commit::outcome(Outcome::Deferred {
            not_before: at(3),
            error: failure(&exact),
        }),
        at(2),
    );
    let error = record(store, inv.id)
        .state
        .error
        .expect("a deferral keeps its error");
    assert_eq!(error.message, exact, "an error at the limit is kept whole");

    let c = claim_expect(store, "w", at(3), inv.id);
    commit(
        store,
        &c.lease,
        Commit::outcome(Outcome::Failed(failure(&huge))),
        at(4),
    );
    let error = record(store, inv.id)
        .state
        .error
        .expect("a failure keeps its error");
    assert_eq!(
        error.message,
        kept(&huge),
        "a failure's long error is cut with a note"
    );

    let other = root(2, "t", b"");
    submit(store, &other, at(5));
    ok(
        store.cancel(other.id, &huge, at(6)),
        "cancel with a long reason",
    );
    let error = record(store, other.id)
        .state
        .error
        .expect("a cancellation's reason");
    assert_eq!(
        error.message,
        kept(&huge),
        "a long cancellation reason is cut with a note"
    );
}
