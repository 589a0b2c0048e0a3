//! Values: large values round trip byte for byte.

use wf_core::{ChildOutcome, JournalEntry, Op};

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
