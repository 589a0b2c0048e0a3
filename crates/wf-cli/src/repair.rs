//! `wf repair`: cuts a damaged end off a file store's log.

use serde_json::json;
use wf_store::{FileStore, StoreError};

use crate::Failure;
use crate::cli::Target;
use crate::commands::Out;
use crate::open::store_failure;

/// " (pid N)" when the owning process's id is known.
fn pid_text(pid: Option<u32>) -> String {
    pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
}

/// `wf repair`: cuts a damaged end off a file store's log (see the command's help).
pub(crate) fn repair(out: &Out, target: &Target) -> Result<String, Failure> {
    let Target::File(dir) = target else {
        return Err(Failure::Usage(format!(
            "repair is for file stores; {target} is a Redis store, whose durability is Redis's \
             (see docs/backends.md, \"Durability: what each Redis setting gives\")"
        )));
    };
    if !dir.join("wf.log").is_file() {
        return Err(Failure::Runtime(format!(
            "no wf store at {target}: the directory has no store log (wf.log); point --store or \
             WF_STORE at the directory your workers open"
        )));
    }
    let cut = match FileStore::repair(dir) {
        Ok(cut) => cut,
        Err(StoreError::StoreLocked { pid, .. }) => {
            return Err(Failure::Runtime(format!(
                "store {} is owned by a running process{}: stop it first (a store that needs a \
                 repair does not open, so it is a healthy store's owner)",
                dir.display(),
                pid_text(pid)
            )));
        }
        Err(e) => return Err(store_failure(target, e)),
    };
    let log = dir.join("wf.log");
    if out.json {
        return out.json(&match &cut {
            None => json!({ "repaired": false, "log": log.display().to_string() }),
            Some(cut) => json!({
                "repaired": true,
                "log": log.display().to_string(),
                "offset": cut.offset,
                "dropped_bytes": cut.bytes,
                "reason": cut.reason,
                "torn_tail_only": !cut.repaired,
                "unsynced_hole": cut.hole,
                "saved_to": cut.saved_to.as_ref().map(|p| p.display().to_string()),
            }),
        });
    }
    Ok(match cut {
        None => format!("{} is whole: nothing to repair\n", log.display()),
        Some(cut) if cut.hole => format!(
            "cut an unsynced hole and what followed it, {} bytes at offset {}, off {} ({}): \
             records a power loss kept out of order, none acknowledged as durable; nothing else \
             was wrong\n",
            cut.bytes,
            cut.offset,
            log.display(),
            cut.reason
        ),
        Some(cut) if !cut.repaired => format!(
            "cut a torn tail of {} bytes at offset {} off {} ({}): an append a crash \
             interrupted, never acknowledged; nothing else was wrong\n",
            cut.bytes,
            cut.offset,
            log.display(),
            cut.reason
        ),
        Some(cut) => format!(
            "cut {} bytes at offset {} off {} ({});\nsaved them to {}; changes recorded in them \
             are no longer in the store\n",
            cut.bytes,
            cut.offset,
            log.display(),
            cut.reason,
            cut.saved_to
                .as_ref()
                .map_or_else(|| "nowhere".to_owned(), |p| p.display().to_string())
        ),
    })
}
