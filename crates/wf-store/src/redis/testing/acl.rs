//! The least an ACL user of a `wf` store needs, as docs/backends.md lists it.

/// The commands a `wf` store's ACL user needs: the script commands (the function library's and
/// `EVALSHA`'s), what the scripts call, the
/// blocking waits, and `INFO`, `WAIT`, `PING` (docs/backends.md, "URLs").
pub const WF_COMMANDS: &[&str] = &[
    "fcall",
    "function|load",
    "function|list",
    "evalsha",
    "script|load",
    "hset",
    "hmget",
    "hget",
    "hdel",
    "hincrby",
    "hexists",
    "hkeys",
    "hgetall",
    "zadd",
    "zrem",
    "zrange",
    "zrangebyscore",
    "zcard",
    "zscore",
    "sadd",
    "smembers",
    "rpush",
    "lrange",
    "llen",
    "del",
    "exists",
    "pexpire",
    "incr",
    "blpop",
    "blmove",
    "info",
    "wait",
    "ping",
];

/// The `ACL SETUSER` rule line (for [`super::ServerOptions::acl`]) of `user` with `password`,
/// allowed exactly [`WF_COMMANDS`] on the keys of namespaces starting with `ns_prefix` (keys
/// `{<ns>…`), and nothing else.
pub fn wf_acl_rule(user: &str, password: &str, ns_prefix: &str) -> String {
    let mut rule = format!("{user} on >{password} resetkeys ~{{{ns_prefix}* resetchannels -@all");
    for command in WF_COMMANDS {
        rule.push_str(" +");
        rule.push_str(command);
    }
    rule
}
