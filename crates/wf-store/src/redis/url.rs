//! Redis store URLs: parsing, options, and the one place a password is hidden.
//!
//! ```text
//! redis://[user[:password]@]host[:port][/db][?option=value&…]
//! rediss://…                                     (TLS; feature `redis-tls`)
//! redis+cluster://[user[:password]@]h1:p1,h2:p2[?…]   (Redis Cluster; also rediss+cluster://)
//! ```
//!
//! Options: `ns` (key namespace, default `wf`), `shards` (how many shards a new namespace gets),
//! `pool` (pooled connections), `wait_replicas` and `wait_timeout_ms` (commit waits for that many
//! replicas), `connect_timeout_ms`, `timeout_ms` (reply timeout of non-blocking commands),
//! `tls_ca` (a PEM file of the CA to trust for `rediss://` instead of the system's roots).
//!
//! The password is kept apart from everything printable: [`RedisUrl`]'s `Display` and `Debug`
//! show `***` in its place, and [`RedisUrl::redact`] scrubs it from any text (an error message
//! from the server or the driver) before it reaches a log or an error.

use std::fmt;
use std::time::Duration;

/// The default key namespace.
pub const DEFAULT_NAMESPACE: &str = "wf";
/// The default number of pooled connections per store.
pub const DEFAULT_POOL: usize = 16;
/// The most shards a namespace may have.
pub const MAX_SHARDS: u32 = 1024;

/// One `host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// A secret that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// The secret itself, for the driver.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A parsed Redis store URL. Prints without its password.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    /// TLS (`rediss://`).
    pub tls: bool,
    /// A Redis Cluster (`redis+cluster://`).
    pub cluster: bool,
    /// The server, or the cluster's seed nodes.
    pub nodes: Vec<Node>,
    /// ACL user name.
    pub username: Option<String>,
    /// Password (ACL user's, or `requirepass`).
    pub password: Option<Password>,
    /// Database number (single Redis only; a cluster has database 0 only).
    pub db: i64,
    /// Key namespace: every key starts with `{<ns>:`.
    pub namespace: String,
    /// Shards a new namespace is created with; `None`: the recorded count, or 1.
    pub shards: Option<u32>,
    /// Pooled connections.
    pub pool: usize,
    /// Replicas a commit waits for (`WAIT`), 0 for none.
    pub wait_replicas: u32,
    /// How long a commit waits for them.
    pub wait_timeout: Duration,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Reply timeout of non-blocking commands.
    pub timeout: Duration,
    /// A PEM file with the CA certificate(s) to trust for TLS, instead of the system's.
    pub tls_ca: Option<std::path::PathBuf>,
}

/// Why a URL was refused. Never contains the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Redis URL {url}: {reason}")]
pub struct UrlError {
    /// The URL, password hidden.
    pub url: String,
    /// What is wrong and how to write it.
    pub reason: String,
}

const SCHEMES: &str = "redis://, rediss://, redis+cluster:// or rediss+cluster://";

impl RedisUrl {
    /// Parses a store URL.
    ///
    /// ```
    /// # #[cfg(feature = "redis")] {
    /// use wf_store::redis::RedisUrl;
    /// let url = RedisUrl::parse("redis://app:s3cret@localhost:6380/2?shards=4").unwrap();
    /// assert_eq!(url.to_string(), "redis://app:***@localhost:6380/2?shards=4");
    /// assert_eq!(url.shards, Some(4));
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`UrlError`] naming what is wrong (the password hidden in it).
    pub fn parse(text: &str) -> Result<Self, UrlError> {
        let shown = crate::redact::redact_url(text);
        let fail = |reason: String| UrlError {
            url: shown.clone(),
            reason,
        };
        let text = text.trim();
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| fail(format!("no scheme: start it with {SCHEMES}")))?;
        let (tls, cluster) = match scheme.to_ascii_lowercase().as_str() {
            "redis" => (false, false),
            "rediss" => (true, false),
            "redis+cluster" => (false, true),
            "rediss+cluster" => (true, true),
            other => return Err(fail(format!("unknown scheme `{other}`: use {SCHEMES}"))),
        };
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = match rest.split_once('/') {
            Some((a, p)) => (a, p),
            None => (rest, ""),
        };
        // The last '@' ends the user info: a password may contain '@' only percent-encoded,
        // but be lenient.
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(u) => {
                let (user, pass) = match u.split_once(':') {
                    Some((user, pass)) => (user, Some(pass)),
                    None => (u, None),
                };
                let user = percent_decode(user).map_err(|e| fail(format!("user name: {e}")))?;
                let pass = pass
                    .map(|p| percent_decode(p).map(Password))
                    .transpose()
                    .map_err(|e| fail(format!("password: {e}")))?;
                (
                    (!user.is_empty()).then_some(user),
                    pass.filter(|p| !p.0.is_empty()),
                )
            }
        };
        let mut nodes = Vec::new();
        for h in hosts.split(',').filter(|h| !h.is_empty()) {
            nodes.push(parse_node(h).map_err(&fail)?);
        }
        if nodes.is_empty() {
            nodes.push(Node {
                host: "127.0.0.1".to_owned(),
                port: 6379,
            });
        }
        if nodes.len() > 1 && !cluster {
            return Err(fail(
                "several hosts need the cluster scheme: write redis+cluster://h1:p1,h2:p2".into(),
            ));
        }
        let db = match path.trim_matches('/') {
            "" => 0,
            d => d.parse::<i64>().ok().filter(|d| *d >= 0).ok_or_else(|| {
                fail(format!(
                    "`/{d}` is not a database number: write /0, /1, … or nothing"
                ))
            })?,
        };
        if cluster && db != 0 {
            return Err(fail(
                "a Redis Cluster has only database 0: drop the /db part".into(),
            ));
        }
        let mut url = RedisUrl {
            tls,
            cluster,
            nodes,
            username,
            password,
            db,
            namespace: DEFAULT_NAMESPACE.to_owned(),
            shards: None,
            pool: DEFAULT_POOL,
            wait_replicas: 0,
            wait_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            tls_ca: None,
        };
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(value).map_err(|e| fail(format!("option {key}: {e}")))?;
            url.set_option(key, &value).map_err(&fail)?;
        }
        Ok(url)
    }

    fn set_option(&mut self, key: &str, value: &str) -> Result<(), String> {
        let number = |what: &str| -> Result<u64, String> {
            value
                .parse::<u64>()
                .map_err(|_| format!("{what}={value:?} is not a whole number"))
        };
        match key {
            "ns" | "namespace" => {
                if value.is_empty() || value.contains(['{', '}']) {
                    return Err(format!(
                        "ns={value:?}: a namespace is a non-empty name without braces"
                    ));
                }
                self.namespace = value.to_owned();
            }
            "shards" => {
                let n = number("shards")?;
                if n == 0 || n > u64::from(MAX_SHARDS) {
                    return Err(format!("shards={n}: use 1 to {MAX_SHARDS}"));
                }
                self.shards = Some(n as u32);
            }
            "pool" => {
                let n = number("pool")?;
                if n == 0 {
                    return Err("pool=0: a store needs at least one connection".into());
                }
                self.pool = n as usize;
            }
            "wait_replicas" => self.wait_replicas = number("wait_replicas")? as u32,
            "wait_timeout_ms" => self.wait_timeout = Duration::from_millis(number(key)?),
            "connect_timeout_ms" => self.connect_timeout = Duration::from_millis(number(key)?),
            "timeout_ms" => {
                let ms = number(key)?;
                if ms == 0 {
                    return Err("timeout_ms=0: give the reply timeout in milliseconds".into());
                }
                self.timeout = Duration::from_millis(ms);
            }
            "tls_ca" => self.tls_ca = Some(std::path::PathBuf::from(value)),
            other => {
                return Err(format!(
                    "unknown option `{other}`: known are ns, shards, pool, wait_replicas, \
                     wait_timeout_ms, connect_timeout_ms, timeout_ms, tls_ca"
                ));
            }
        }
        Ok(())
    }

    /// Removes this URL's password from `text` (for messages that came from elsewhere).
    pub fn redact(&self, text: &str) -> String {
        match &self.password {
            Some(p) if !p.0.is_empty() => text.replace(&p.0, "***"),
            _ => text.to_owned(),
        }
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match (self.tls, self.cluster) {
            (false, false) => "redis",
            (true, false) => "rediss",
            (false, true) => "redis+cluster",
            (true, true) => "rediss+cluster",
        };
        write!(f, "{scheme}://")?;
        match (&self.username, &self.password) {
            (Some(u), Some(_)) => write!(f, "{u}:***@")?,
            (Some(u), None) => write!(f, "{u}@")?,
            (None, Some(_)) => f.write_str(":***@")?,
            (None, None) => {}
        }
        for (i, n) in self.nodes.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{n}")?;
        }
        if self.db != 0 {
            write!(f, "/{}", self.db)?;
        }
        let mut sep = '?';
        let mut opt = |f: &mut fmt::Formatter<'_>, k: &str, v: &dyn fmt::Display| {
            let r = write!(f, "{sep}{k}={v}");
            sep = '&';
            r
        };
        if self.namespace != DEFAULT_NAMESPACE {
            opt(f, "ns", &self.namespace)?;
        }
        if let Some(s) = self.shards {
            opt(f, "shards", &s)?;
        }
        if self.wait_replicas > 0 {
            opt(f, "wait_replicas", &self.wait_replicas)?;
        }
        Ok(())
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({self})")
    }
}

fn parse_node(text: &str) -> Result<Node, String> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("`{text}`: an IPv6 address needs its closing `]`"))?;
        (host, after.strip_prefix(':'))
    } else {
        match text.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return Err(format!("`{text}`: the host name is missing"));
    }
    let port = match port {
        None | Some("") => 6379,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("`{p}` is not a port number (1-65535)"))?,
    };
    Ok(Node {
        host: host.to_owned(),
        port,
    })
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| "a `%` must be followed by two hex digits".to_owned())?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "percent-encoding decodes to invalid UTF-8".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_with_everything() {
        let u = RedisUrl::parse(
            "redis://app:p%40ss@cache.local:6380/3?ns=shop&shards=8&pool=4&wait_replicas=1",
        )
        .unwrap();
        assert!(!u.tls && !u.cluster);
        assert_eq!(
            u.nodes,
            [Node {
                host: "cache.local".into(),
                port: 6380
            }]
        );
        assert_eq!(u.username.as_deref(), Some("app"));
        assert_eq!(u.password.as_ref().map(Password::expose), Some("p@ss"));
        assert_eq!(
            (u.db, u.namespace.as_str(), u.shards, u.pool),
            (3, "shop", Some(8), 4)
        );
        assert_eq!(u.wait_replicas, 1);
    }

    #[test]
    fn defaults_and_cluster_form() {
        let u = RedisUrl::parse("redis://localhost").unwrap();
        assert_eq!(u.nodes[0].port, 6379);
        assert_eq!((u.db, u.shards, u.namespace.as_str()), (0, None, "wf"));
        let c = RedisUrl::parse("redis+cluster://a:7000,b:7001,[::1]:7002").unwrap();
        assert!(c.cluster);
        assert_eq!(c.nodes.len(), 3);
        assert_eq!(c.nodes[2].host, "::1");
        assert_eq!(c.to_string(), "redis+cluster://a:7000,b:7001,[::1]:7002");
        assert!(RedisUrl::parse("rediss+cluster://a:1").unwrap().tls);
    }

    #[test]
    fn the_password_never_prints() {
        let secret = "hunter2-very-secret";
        for text in [
            format!("redis://u:{secret}@h:1/0"),
            format!("redis://:{secret}@h:1"),
            format!("rediss+cluster://u:{secret}@h:1,h:2"),
        ] {
            let u = RedisUrl::parse(&text).unwrap();
            for shown in [u.to_string(), format!("{u:?}"), format!("{:?}", u.password)] {
                assert!(!shown.contains(secret), "{shown}");
            }
            assert_eq!(u.redact(&format!("ERR {secret} wrong")), "ERR *** wrong");
        }
        // Refused URLs do not echo it either.
        for text in [
            format!("redis://u:{secret}@h:notaport"),
            format!("redis://u:{secret}@h:1/x"),
            format!("redis://u:{secret}@h:1?bogus=1"),
            format!("redis://{secret}@a:1,b:2"),
            format!("postgres://u:{secret}@h"),
        ] {
            let e = RedisUrl::parse(&text).unwrap_err();
            assert!(!e.to_string().contains(secret), "{e}");
            assert!(!format!("{e:?}").contains(secret), "{e:?}");
        }
    }

    #[test]
    fn bad_urls_say_how_to_write_them() {
        for (text, hint) in [
            ("localhost:6379", "redis://"),
            ("http://x", "redis://"),
            ("redis://a:1,b:2", "redis+cluster://"),
            ("redis://h/abc", "database number"),
            ("redis+cluster://h:1/2", "database 0"),
            ("redis://h?shards=0", "1 to"),
            ("redis://h?ns={x}", "braces"),
            ("redis://h?colour=blue", "known are"),
        ] {
            let e = RedisUrl::parse(text).unwrap_err().to_string();
            assert!(e.contains(hint), "{text}: {e}");
        }
    }
}
