//! The app a store belongs to: recorded by the first bind, refused to any other app.

use crate::error::StoreError;

use super::Subject;
use super::fixtures::*;

/// A fresh store belongs to no app; the first bind records the app id.
pub fn first_bind_records_the_app(s: Subject) {
    let store = &*s.store;
    assert_eq!(
        ok(store.app_id(), "app_id"),
        None,
        "a fresh store has no app"
    );
    ok(store.bind_app("shop"), "first bind");
    assert_eq!(
        ok(store.app_id(), "app_id").as_deref(),
        Some("shop"),
        "the first bind records the app"
    );
}

/// Binding again with the same app id succeeds and changes nothing.
pub fn same_app_binds_again(s: Subject) {
    let store = &*s.store;
    ok(store.bind_app("shop"), "first bind");
    submit(store, &root(1, "t", b""), T0);
    for _ in 0..2 {
        ok(store.bind_app("shop"), "the same app binds again");
    }
    assert_eq!(ok(store.app_id(), "app_id").as_deref(), Some("shop"));
    assert_eq!(
        ok(store.counts(), "counts").total(),
        1,
        "binding changes no invocation"
    );
}

/// Another app id is refused with `AppMismatch` naming both apps and saying what to do; the
/// recorded app stays. It is a configuration error: neither transient nor a refusal of one
/// request.
pub fn other_app_is_refused_naming_both(s: Subject) {
    let store = &*s.store;
    ok(store.bind_app("shop"), "first bind");
    let e = err(store.bind_app("billing"), "bind by another app");
    match &e {
        StoreError::AppMismatch {
            store: name,
            recorded,
            requested,
        } => {
            assert_eq!(recorded, "shop");
            assert_eq!(requested, "billing");
            assert!(!name.is_empty(), "the error names the store");
        }
        other => panic!("bind by another app: expected AppMismatch, got {other:?}"),
    }
    let message = e.to_string();
    for part in ["'shop'", "'billing'", "its own store"] {
        assert!(message.contains(part), "{message:?} should contain {part}");
    }
    assert!(!e.is_transient(), "a wrong app does not go away by itself");
    assert!(!e.is_refusal(), "a wrong app is a configuration error");
    assert_eq!(
        ok(store.app_id(), "app_id").as_deref(),
        Some("shop"),
        "a refused bind changes nothing"
    );
    ok(store.bind_app("shop"), "the recorded app still binds");
}
