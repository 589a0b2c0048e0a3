//! The Lua scripts: one per state change, assembled from a shared prelude whose status table is
//! generated from [`wf_core::status::TRANSITIONS`], so one table decides in every backend.

use redis::{RedisResult, Script, Value};
use wf_core::Status;
use wf_core::status::TRANSITIONS;

use super::conn::Conn;

const PRELUDE: &str = include_str!("lua/prelude.lua");
/// `commit_main()`, shared by the commit and commit-then-claim scripts.
const COMMIT: &str = include_str!("lua/commit.lua");

/// The Lua table of legal moves, `['from>to'] = true, …`, from the `wf_core` table.
pub(crate) fn transitions_lua() -> String {
    TRANSITIONS
        .iter()
        .map(|t| format!("['{}>{}'] = true", t.from.as_str(), t.to.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn status_set(pick: impl Fn(Status) -> bool) -> String {
    Status::ALL
        .iter()
        .filter(|s| pick(**s))
        .map(|s| format!("['{}'] = true", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The prelude with its generated tables filled in.
fn prelude() -> String {
    PRELUDE
        .replace("--[[TRANSITIONS]]", &transitions_lua())
        .replace("--[[FINAL]]", &status_set(Status::is_final))
        .replace("--[[CLAIMABLE]]", &status_set(Status::is_claimable))
}

/// Every script, loaded once per server and called by SHA.
pub(crate) struct Scripts {
    pub(crate) submit: Script,
    pub(crate) claim: Script,
    pub(crate) commit: Script,
    pub(crate) commit_claim: Script,
    pub(crate) renew: Script,
    pub(crate) recover: Script,
    pub(crate) cancel: Script,
    pub(crate) purge: Script,
    pub(crate) read: Script,
    pub(crate) journal: Script,
    pub(crate) probe: Script,
    pub(crate) ring: Script,
    pub(crate) bind: Script,
    pub(crate) retry: Script,
    pub(crate) purgeable: Script,
    pub(crate) send_event: Script,
    pub(crate) events: Script,
    pub(crate) cancel_tree: Script,
    pub(crate) requests: Script,
    pub(crate) submit_many: Script,
    pub(crate) checkpoint: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        let prelude = prelude();
        let with = |body: &str| Script::new(&format!("{prelude}\n{body}"));
        Scripts {
            submit: with(include_str!("lua/submit.lua")),
            claim: with(include_str!("lua/claim.lua")),
            commit: with(&format!("{COMMIT}\nreturn (commit_main())")),
            commit_claim: with(&format!(
                "{COMMIT}\n{}",
                include_str!("lua/commit_claim.lua")
            )),
            renew: with(include_str!("lua/renew.lua")),
            recover: with(include_str!("lua/recover.lua")),
            cancel: with(include_str!("lua/cancel.lua")),
            purge: with(include_str!("lua/purge.lua")),
            read: with(include_str!("lua/read.lua")),
            journal: with(include_str!("lua/journal.lua")),
            probe: with(include_str!("lua/probe.lua")),
            ring: with(include_str!("lua/ring.lua")),
            bind: Script::new(include_str!("lua/bind.lua")),
            retry: with(include_str!("lua/retry.lua")),
            purgeable: with(include_str!("lua/purgeable.lua")),
            send_event: with(include_str!("lua/send_event.lua")),
            events: with(include_str!("lua/events.lua")),
            cancel_tree: with(include_str!("lua/cancel_tree.lua")),
            requests: with(include_str!("lua/requests.lua")),
            submit_many: with(include_str!("lua/submit_many.lua")),
            checkpoint: with(include_str!("lua/checkpoint.lua")),
        }
    }
}

/// Calls `script` by SHA with one key and `args`; on `NOSCRIPT` (a restarted or failed-over
/// server has an empty script cache) loads it and calls again.
pub(crate) fn call(
    conn: &mut Conn,
    script: &Script,
    key: &str,
    args: &[Vec<u8>],
) -> RedisResult<Value> {
    let mut inv = script.key(key);
    for a in args {
        inv.arg(a.as_slice());
    }
    inv.invoke(conn.like())
}

/// The `EVALSHA` command of a script call, for pipelines (no `NOSCRIPT` handling: see
/// [`load`]).
pub(crate) fn evalsha(script: &Script, key: &str, args: &[Vec<u8>]) -> redis::Cmd {
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(script.get_hash()).arg(1).arg(key);
    for a in args {
        cmd.arg(a.as_slice());
    }
    cmd
}

/// Loads `script` (on every master of a cluster).
pub(crate) fn load(conn: &mut Conn, script: &Script) -> RedisResult<()> {
    script.prepare_invoke().load(conn.like()).map(|_| ())
}

/// Whether `e` says a script is not loaded (for a pipeline: any of its commands).
pub(crate) fn is_noscript(e: &redis::RedisError) -> bool {
    matches!(
        e.kind(),
        redis::ErrorKind::Server(redis::ServerErrorKind::NoScript)
    ) || super::conn::server_errors(e)
        .iter()
        .any(|(kind, code)| *kind == Some(redis::ServerErrorKind::NoScript) || code == "NOSCRIPT")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lua_table_is_the_core_table() {
        let lua = transitions_lua();
        for from in Status::ALL {
            for to in Status::ALL {
                let entry = format!("['{}>{}'] = true", from.as_str(), to.as_str());
                assert_eq!(
                    lua.contains(&entry),
                    from.check_transition(to).is_ok(),
                    "{from} -> {to}"
                );
            }
        }
        let p = prelude();
        assert!(!p.contains("--[["), "every placeholder is filled");
        assert!(p.contains("['success'] = true"));
        assert!(p.contains("['retry'] = true"));
    }
}
