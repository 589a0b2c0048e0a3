//! The checks the drivers run against a reopened store and at the end of a run: what was
//! acknowledged is there, every journal replays, everything ended.

use std::sync::atomic::Ordering;

use wf_core::{InvocationId, Status};
use wf_runtime::App;
use wf_runtime::testing::replay_check;
use wf_store::{Store, StoreError};

use crate::corpus::Watch;
use crate::ledger::{Final, SharedAcks, acks};
use crate::purge::Purges;

/// Every acknowledged submission, final outcome, journal entry and data write is in `store`,
/// unchanged. Returns the violations.
pub fn acknowledged(store: &dyn Store, shared: &SharedAcks) -> Vec<String> {
    let a = acks(shared);
    let mut out = Vec::new();
    for id in a.submitted.keys() {
        if let Err(e) = store.invocation(*id) {
            out.push(format!("acknowledged submission {id} lost: {e}"));
        }
    }
    for (id, f) in &a.finals {
        match store.invocation(*id) {
            Ok(r) => {
                let same = match f {
                    Final::Success(bytes) => {
                        r.state.status == Status::Success && r.state.result.as_ref() == Some(bytes)
                    }
                    Final::Failed => r.state.status == Status::Failed,
                    Final::Cancelled => r.state.status == Status::Cancelled,
                };
                if !same {
                    out.push(format!(
                        "acknowledged final outcome of {id} lost: acknowledged {f:?}, stored {:?}",
                        r.state.status
                    ));
                }
            }
            Err(e) => out.push(format!("acknowledged final {id} lost: {e}")),
        }
    }
    for (id, entries) in &a.journals {
        match store.journal(*id) {
            Ok(stored) => {
                for (seq, e) in entries {
                    if stored.get(*seq as usize) != Some(e) {
                        out.push(format!(
                            "acknowledged journal entry {seq} of {id} lost or changed: {e:?}, \
                             stored {:?}",
                            stored.get(*seq as usize)
                        ));
                    }
                }
            }
            Err(e) => out.push(format!("journal of {id} unreadable: {e}")),
        }
    }
    for ((id, key), bytes) in &a.data {
        match store.get_data(*id, key) {
            Ok(Some(stored)) if &stored == bytes => {}
            other => out.push(format!(
                "acknowledged data write {key} of {id} lost or changed: stored {other:?}"
            )),
        }
    }
    out
}

/// Every journal in `app`'s store replays without divergence (the bodies told by `watch` that
/// they run for the check). Returns how many invocations replayed.
///
/// # Errors
/// The violation: the replay check's report of a divergence, or why it could not run.
pub fn replays(app: &App, watch: &Watch) -> Result<usize, String> {
    watch.checking.store(true, Ordering::SeqCst);
    let report = replay_check(app, app.store());
    watch.checking.store(false, Ordering::SeqCst);
    match report {
        Ok(r) if r.is_ok() => Ok(r.checked.len()),
        Ok(r) => Err(format!("{r}")),
        Err(e) => Err(format!("replay check failed: {e}")),
    }
}

/// What a run ended with: each workflow's result, in the corpus's order, and the violations.
#[derive(Debug, Default)]
pub struct Ended {
    /// Each submitted workflow's final status and result.
    pub results: Vec<(Status, Option<Vec<u8>>)>,
    /// What is not final, missing or unreadable.
    pub violations: Vec<String>,
}

/// Every acknowledged submission and every workflow of `ids` (those `purges` removed aside) is
/// final; collects the workflows' results (a purged one's as the purge kept it).
pub fn ended(
    app: &App,
    shared: &SharedAcks,
    purges: &Purges,
    ids: &[Option<InvocationId>],
) -> Ended {
    let store = app.store();
    let mut out = Ended::default();
    let mut all: Vec<InvocationId> = acks(shared).submitted.keys().copied().collect();
    all.extend(
        ids.iter()
            .flatten()
            .filter(|id| !purges.results.contains_key(id)),
    );
    for id in all {
        match store.invocation(id) {
            Ok(r) if r.state.status.is_final() => {}
            Ok(r) => out
                .violations
                .push(format!("{id} is stuck: {:?}", r.state.status)),
            Err(StoreError::InvocationNotFound(_)) => {
                out.violations.push(format!("{id} is missing"));
            }
            Err(e) => out.violations.push(format!("{id} unreadable: {e}")),
        }
    }
    for id in ids {
        let Some(id) = id else {
            out.violations
                .push("a workflow was never submitted".to_owned());
            continue;
        };
        match purges.result(app, *id) {
            Ok(r) => out.results.push(r),
            Err(e) => out
                .violations
                .push(format!("workflow {id} unreadable: {e}")),
        }
    }
    out
}
