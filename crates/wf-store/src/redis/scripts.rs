//! The Lua scripts: one per state change, assembled from a shared prelude whose status table is
//! generated from [`wf_core::status::TRANSITIONS`], so one table decides in every backend.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use redis::{Cmd, RedisError, RedisResult, Value};
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

/// One script: the same Lua body called as a function of the wf library (`FCALL`, Redis 7) or as
/// a script of its own, prelude included (`EVALSHA`, the fallback).
pub(crate) struct Script {
    /// Its function name in the library, `wf_<library hash>_<name>`.
    function: String,
    /// The whole script (prelude and body) for `EVALSHA`.
    eval: redis::Script,
    /// Whether calls go by `FCALL`: shared by every script of one store, set when it opens.
    functions: Arc<AtomicBool>,
}

impl Script {
    /// Whether this script is called as a function of the library.
    fn by_function(&self) -> bool {
        self.functions.load(Ordering::Relaxed)
    }

    /// A command calling this script with one key (the arguments follow), with room for
    /// `count` arguments of `size` bytes in all.
    pub(crate) fn command_with_capacity(&self, key: &str, count: usize, size: usize) -> Cmd {
        let (command, name) = if self.by_function() {
            ("FCALL", self.function.as_str())
        } else {
            ("EVALSHA", self.eval.get_hash())
        };
        let mut cmd = Cmd::with_capacity(count + 4, size + name.len() + key.len() + 16);
        cmd.arg(command).arg(name).arg(1).arg(key);
        cmd
    }
}

/// The names of the scripts, in library order, with whether each only reads (a function of the
/// library is then flagged `no-writes`, as Redis wants for a function that writes nothing).
const NAMES: &[(&str, bool)] = &[
    ("submit", false),
    ("claim", false),
    ("commit", false),
    ("commit_claim", false),
    ("renew", false),
    ("recover", false),
    ("cancel", false),
    ("purge", false),
    ("read", true),
    ("journal", true),
    ("probe", true),
    ("ring", false),
    ("retry", false),
    ("purgeable", true),
    ("send_event", false),
    ("events", true),
    ("cancel_tree", false),
    ("requests", true),
    ("submit_many", false),
    ("checkpoint", false),
];

/// The body of each script of the library.
fn body(name: &str) -> &'static str {
    match name {
        "submit" => include_str!("lua/submit.lua"),
        "claim" => include_str!("lua/claim.lua"),
        "commit" => "return (commit_main())",
        "commit_claim" => include_str!("lua/commit_claim.lua"),
        "renew" => include_str!("lua/renew.lua"),
        "recover" => include_str!("lua/recover.lua"),
        "cancel" => include_str!("lua/cancel.lua"),
        "purge" => include_str!("lua/purge.lua"),
        "read" => include_str!("lua/read.lua"),
        "journal" => include_str!("lua/journal.lua"),
        "probe" => include_str!("lua/probe.lua"),
        "ring" => include_str!("lua/ring.lua"),
        "retry" => include_str!("lua/retry.lua"),
        "purgeable" => include_str!("lua/purgeable.lua"),
        "send_event" => include_str!("lua/send_event.lua"),
        "events" => include_str!("lua/events.lua"),
        "cancel_tree" => include_str!("lua/cancel_tree.lua"),
        "requests" => include_str!("lua/requests.lua"),
        "submit_many" => include_str!("lua/submit_many.lua"),
        "checkpoint" => include_str!("lua/checkpoint.lua"),
        _ => "",
    }
}

/// Every script, called by function name (`FCALL`) where the server has the library, else by
/// SHA (`EVALSHA`).
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
    pub(crate) retry: Script,
    pub(crate) purgeable: Script,
    pub(crate) send_event: Script,
    pub(crate) events: Script,
    pub(crate) cancel_tree: Script,
    pub(crate) requests: Script,
    pub(crate) submit_many: Script,
    pub(crate) checkpoint: Script,
    /// `bind`, always by `EVALSHA`: it runs before the library is loaded, and needs no prelude.
    pub(crate) bind: redis::Script,
    /// The library's text for `FUNCTION LOAD`.
    library: String,
    /// The library's name (`FUNCTION LIST LIBRARYNAME`).
    lib_name: String,
    /// Whether calls go by `FCALL` (shared with every [`Script`]).
    functions: Arc<AtomicBool>,
}

/// The library's text: the prelude once, `commit_main()`, then one registered function per
/// script. Its name carries a hash of its text, so different wf versions on one server each
/// call their own.
fn library(prelude: &str) -> (String, String) {
    let mut functions = String::new();
    for (name, read_only) in NAMES {
        let flags = if *read_only {
            ", flags = { 'no-writes' }"
        } else {
            ""
        };
        functions.push_str(&format!(
            "redis.register_function{{ function_name = '@NAME@_{name}'{flags}, callback = \
             function(keys, args)\nbegin(keys, args)\n{}\nend }}\n",
            body(name)
        ));
    }
    let code = format!("{prelude}\n{COMMIT}\n{functions}");
    let hash = redis::Script::new(&code).get_hash()[..16].to_owned();
    let name = format!("wf_{hash}");
    let code = format!("#!lua name={name}\n{}", code.replace("@NAME@", &name));
    (name, code)
}

impl Scripts {
    pub(crate) fn new() -> Self {
        let prelude = prelude();
        let functions = Arc::new(AtomicBool::new(false));
        let (lib_name, library) = library(&prelude);
        let with = |name: &str| Script {
            // Only the commit scripts use commit_main().
            function: format!("{lib_name}_{name}"),
            eval: redis::Script::new(&format!(
                "local EVAL_KEYS, EVAL_ARGV = KEYS, ARGV\n{prelude}\n{}\nbegin(EVAL_KEYS, \
                 EVAL_ARGV)\n{}",
                if name.starts_with("commit") {
                    COMMIT
                } else {
                    ""
                },
                body(name)
            )),
            functions: Arc::clone(&functions),
        };
        Scripts {
            submit: with("submit"),
            claim: with("claim"),
            commit: with("commit"),
            commit_claim: with("commit_claim"),
            renew: with("renew"),
            recover: with("recover"),
            cancel: with("cancel"),
            purge: with("purge"),
            read: with("read"),
            journal: with("journal"),
            probe: with("probe"),
            ring: with("ring"),
            retry: with("retry"),
            purgeable: with("purgeable"),
            send_event: with("send_event"),
            events: with("events"),
            cancel_tree: with("cancel_tree"),
            requests: with("requests"),
            submit_many: with("submit_many"),
            checkpoint: with("checkpoint"),
            bind: redis::Script::new(include_str!("lua/bind.lua")),
            library,
            lib_name,
            functions,
        }
    }

    /// Loads the library (on every master of a cluster) and calls scripts by `FCALL` from now
    /// on. A single server that has the library already is only asked (`FUNCTION LIST`, a
    /// read), so a store opens on a read-only replica and on a server at `maxmemory`. A server
    /// that refuses the load (no functions before Redis 7, an ACL user without `FUNCTION
    /// LOAD`, `OOM` at `maxmemory`, `READONLY` on a replica) keeps `EVALSHA`:
    /// `Ok(Some(the refusal))`.
    pub(crate) fn use_functions(&self, conn: &mut Conn) -> RedisResult<Option<RedisError>> {
        if matches!(conn, Conn::Single(_)) && self.library_loaded(conn)? {
            self.functions.store(true, Ordering::Relaxed);
            return Ok(None);
        }
        match self.load_library(conn, false) {
            Ok(()) => {
                self.functions.store(true, Ordering::Relaxed);
                Ok(None)
            }
            Err(e) if is_refusal(&e) || is_write_refusal(&e) => Ok(Some(e)),
            Err(e) => Err(e),
        }
    }

    /// Whether the server has this library (`FUNCTION LIST LIBRARYNAME`; the pattern is the
    /// exact name, which holds no glob characters). A server without `FUNCTION` or a user not
    /// allowed `FUNCTION LIST` answers "no": the load decides.
    fn library_loaded(&self, conn: &mut Conn) -> RedisResult<bool> {
        let listed = redis::cmd("FUNCTION")
            .arg("LIST")
            .arg("LIBRARYNAME")
            .arg(&self.lib_name)
            .query::<Value>(conn.like());
        match listed {
            Ok(Value::Array(libraries)) => Ok(!libraries.is_empty()),
            Ok(_) => Ok(false),
            Err(e) if is_refusal(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `FUNCTION LOAD` of the library; `replace`: load it even where it is (a cluster answers
    /// "already exists" from the masters that have it, which fails the whole command).
    fn load_library(&self, conn: &mut Conn, replace: bool) -> RedisResult<()> {
        let mut cmd = redis::cmd("FUNCTION");
        cmd.arg("LOAD");
        if replace {
            cmd.arg("REPLACE");
        }
        cmd.arg(&self.library);
        match cmd.query::<Value>(conn.like()) {
            Ok(_) => Ok(()),
            Err(e) if !replace && already_exists(&e) => {
                if matches!(conn, Conn::Single(_)) {
                    Ok(())
                } else {
                    self.load_library(conn, true)
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Calls `script` with one key and `args`; when the server lost it (a restart or failover
    /// without persistence empties the script cache, `FUNCTION FLUSH` the library), loads it
    /// and calls again.
    pub(crate) fn call(
        &self,
        conn: &mut Conn,
        script: &Script,
        key: &str,
        args: &[Vec<u8>],
    ) -> RedisResult<Value> {
        let cmd = command(script, key, args);
        match cmd.query(conn.like()) {
            Err(e) if is_noscript(&e) => {
                self.load(conn, &[script])?;
                cmd.query(conn.like())
            }
            other => other,
        }
    }

    /// Loads `used` (or the library) where the server lost them.
    pub(crate) fn load(&self, conn: &mut Conn, used: &[&Script]) -> RedisResult<()> {
        if self.functions.load(Ordering::Relaxed) {
            return self.load_library(conn, true);
        }
        for s in used {
            s.eval.prepare_invoke().load(conn.like())?;
        }
        Ok(())
    }
}

/// The command of a script call, for pipelines (no reloading: see [`Scripts::load`]).
pub(crate) fn command(script: &Script, key: &str, args: &[Vec<u8>]) -> Cmd {
    let size = args.iter().map(Vec::len).sum();
    let mut cmd = script.command_with_capacity(key, args.len(), size);
    for a in args {
        cmd.arg(a.as_slice());
    }
    cmd
}

/// Calls `bind` by SHA with one key and `args`, loading it on `NOSCRIPT`.
pub(crate) fn call_bind(
    conn: &mut Conn,
    script: &redis::Script,
    key: &str,
    args: &[Vec<u8>],
) -> RedisResult<Value> {
    let mut inv = script.key(key);
    for a in args {
        inv.arg(a.as_slice());
    }
    inv.invoke(conn.like())
}

/// The error replies in `e` (one, or the failed commands of a pipeline) as (code, detail).
fn replies(e: &RedisError) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = e
        .clone()
        .into_server_errors()
        .map(|errors| {
            errors
                .iter()
                .map(|(_, s)| (s.code().to_owned(), s.details().unwrap_or("").to_owned()))
                .collect()
        })
        .unwrap_or_default();
    if out.is_empty()
        && let Some(code) = e.code()
    {
        out.push((code.to_owned(), e.detail().unwrap_or("").to_owned()));
    }
    out
}

/// Whether `e` says a script is not loaded (for a pipeline: any of its commands): `NOSCRIPT`,
/// or a function missing from the server's library.
pub(crate) fn is_noscript(e: &redis::RedisError) -> bool {
    matches!(
        e.kind(),
        redis::ErrorKind::Server(redis::ServerErrorKind::NoScript)
    ) || super::conn::server_errors(e)
        .iter()
        .any(|(kind, code)| *kind == Some(redis::ServerErrorKind::NoScript) || code == "NOSCRIPT")
        || replies(e)
            .iter()
            .any(|(code, detail)| code == "ERR" && detail.contains("Function not found"))
        || e.to_string().contains("Function not found")
}

/// Whether `FUNCTION LOAD` failed because the library is there already.
fn already_exists(e: &RedisError) -> bool {
    e.to_string().contains("already exists")
}

/// Whether `FUNCTION LOAD` was refused for good: an unknown command (a server without
/// functions, or with `FUNCTION` renamed away) or an ACL user not allowed it. Anything else (a
/// library the server cannot load is a bug in wf) is an error, not a silent fallback.
fn is_refusal(e: &RedisError) -> bool {
    let text = e.to_string().to_ascii_lowercase();
    text.contains("noperm") || text.contains("unknown command")
}

/// Whether `FUNCTION LOAD` was refused as a write the server takes none of now: `OOM` (at
/// `maxmemory` with `noeviction`) or `READONLY` (a replica). Scripts then go by `EVALSHA`,
/// where reads work as with the library.
fn is_write_refusal(e: &RedisError) -> bool {
    replies(e)
        .iter()
        .any(|(code, _)| code == "OOM" || code == "READONLY")
        || {
            let text = e.to_string();
            text.contains("OOM") || text.contains("READONLY")
        }
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
