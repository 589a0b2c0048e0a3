//! Workflow data: written by the workflow's root only.

use wf_core::Status;

use crate::error::StoreError;
use crate::model::{Commit, Outcome};

use super::Subject;
use super::fixtures::*;

/// A root's data writes land in its workflow: readable by key, keys sorted, overwrites win;
/// a sub-workflow root writes its own workflow's data.
pub fn data_writes_by_root(s: Subject) {
    let store = &*s.store;
    let r = root(1, "root", b"");
    let sub = subworkflow(2, &r, "sub", b"");
    submit(store, &r, T0);
    let c = claim_expect(store, "w", T0, r.id);
    commit(
        store,
        &c.lease,
        Commit {
            data: vec![
                ("b".to_owned(), b"2".to_vec()),
                ("a".to_owned(), b"1".to_vec()),
                ("c".to_owned(), b"3".to_vec()),
            ],
            children: vec![sub.clone()],
            ..Commit::outcome(Outcome::Waiting { on: vec![sub.id] })
        },
        at(1),
    );
    assert_eq!(
        ok(store.data_keys(r.id), "keys"),
        ["a", "b", "c"],
        "keys sorted"
    );
    assert_eq!(
        ok(store.get_data(r.id, "a"), "get a").as_deref(),
        Some(&b"1"[..])
    );
    assert_eq!(
        ok(store.get_data(r.id, "c"), "get c").as_deref(),
        Some(&b"3"[..])
    );
    assert_eq!(
        ok(store.get_data(r.id, "zz"), "get zz"),
        None,
        "unknown key"
    );

    let k = claim_expect(store, "w", at(2), sub.id);
    commit(
        store,
        &k.lease,
        Commit {
            data: vec![("a".to_owned(), b"sub".to_vec())],
            ..Commit::outcome(Outcome::Success(b"s".to_vec()))
        },
        at(3),
    );
    assert_eq!(
        ok(store.get_data(sub.id, "a"), "sub data").as_deref(),
        Some(&b"sub"[..]),
        "a sub-workflow root writes its own workflow"
    );
    assert_eq!(ok(store.data_keys(sub.id), "sub keys"), ["a"]);
    assert_eq!(
        ok(store.get_data(r.id, "a"), "root data").as_deref(),
        Some(&b"1"[..]),
        "a sub-workflow's writes do not touch its parent workflow"
    );

    let c = claim_expect(store, "w", at(4), r.id);
    commit(
        store,
        &c.lease,
        Commit {
            data: vec![
                ("a".to_owned(), b"one".to_vec()),
                ("d".to_owned(), Vec::new()),
            ],
            ..Commit::outcome(Outcome::Success(b"r".to_vec()))
        },
        at(5),
    );
    assert_eq!(
        ok(store.get_data(r.id, "a"), "overwritten").as_deref(),
        Some(&b"one"[..]),
        "the later write wins"
    );
    assert_eq!(
        ok(store.get_data(r.id, "d"), "empty value").as_deref(),
        Some(&b""[..]),
        "an empty value is stored, not absent"
    );
    assert_eq!(ok(store.data_keys(r.id), "keys"), ["a", "b", "c", "d"]);
}

/// A non-root member's commit with data writes is refused with `Access`; nothing of that
/// commit is written and the invocation stays running.
pub fn data_write_by_child_is_refused(s: Subject) {
    let store = &*s.store;
    let r = root(1, "root", b"");
    let k = child(2, &r, "kid", b"");
    submit(store, &r, T0);
    let c = claim_expect(store, "w", T0, r.id);
    commit(
        store,
        &c.lease,
        Commit {
            children: vec![k.clone()],
            ..Commit::outcome(Outcome::Waiting { on: vec![k.id] })
        },
        at(1),
    );
    let kc = claim_expect(store, "w", at(2), k.id);
    let refused = Commit {
        journal: entries(0, 2),
        data: vec![("x".to_owned(), b"from child".to_vec())],
        children: vec![child(3, &k, "grandkid", b"")],
        outcome: Outcome::Success(b"kid".to_vec()),
        ..Commit::outcome(Outcome::Released)
    };
    match err(store.commit(&kc.lease, refused, at(3)), "child writes data") {
        StoreError::Access(e) => {
            assert_eq!(e.invocation, k.id, "the error names the writer");
            assert_eq!(e.workflow, r.id, "the error names the workflow");
        }
        other => panic!("a child writing workflow data: expected Access, got {other:?}"),
    }
    assert!(
        ok(store.data_keys(r.id), "keys").is_empty(),
        "nothing written"
    );
    assert_eq!(ok(store.get_data(r.id, "x"), "get"), None);
    assert!(ok(store.journal(k.id), "journal").is_empty(), "no journal");
    assert_not_found(store.invocation(id(3)), id(3), "the refused grandchild");
    let rec = record(store, k.id);
    assert_eq!(rec.state.status, Status::Running, "status unchanged");
    assert_eq!(rec.state.attempts, 1);
    assert_eq!(
        status(store, r.id),
        Status::Waiting,
        "the parent is not woken"
    );

    succeed(store, &kc.lease, b"kid", at(4));
    assert_eq!(status(store, r.id), Status::Pending);
}
