//! The checks the driver runs against a reopened store: what was acknowledged is there.

use wf_core::Status;
use wf_store::Store;

use crate::ledger::{Final, SharedAcks, acks};

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
