//! Connections to one Redis or one Redis Cluster: a small pool, and the classification of
//! Redis errors into [`StoreError`]s.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConnection};
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{
    Client, Cmd, Connection, ConnectionAddr, ConnectionLike, ErrorKind, IntoConnectionInfo,
    RedisConnectionInfo, RedisError, RedisResult, ServerErrorKind, Value,
};

use super::url::{Node, RedisUrl};
use crate::error::StoreError;

/// One connection: to a single server, or a cluster connection that routes by key slot.
pub(crate) enum Conn {
    Single(Connection),
    Cluster(Box<ClusterConnection>),
}

impl Conn {
    pub(crate) fn like(&mut self) -> &mut dyn ConnectionLike {
        match self {
            Conn::Single(c) => c,
            Conn::Cluster(c) => &mut **c,
        }
    }

    /// Sets the reply timeout (`None`: wait forever).
    pub(crate) fn set_read_timeout(&self, d: Option<Duration>) -> RedisResult<()> {
        match self {
            Conn::Single(c) => c.set_read_timeout(d),
            Conn::Cluster(c) => c.set_read_timeout(d),
        }
    }

    /// Runs `cmds` as one pipeline (a cluster pipeline sends each to its slot's node) and
    /// returns their replies in order.
    pub(crate) fn pipeline(&mut self, cmds: &[Cmd]) -> RedisResult<Vec<Value>> {
        match self {
            Conn::Single(c) => {
                let mut p = redis::pipe();
                for cmd in cmds {
                    p.add_command(cmd.clone());
                }
                p.query(c)
            }
            Conn::Cluster(c) => {
                let mut p = redis::cluster::cluster_pipe();
                for cmd in cmds {
                    p.add_command(cmd.clone());
                }
                p.query(c)
            }
        }
    }

    /// Runs `cmd` on the node that serves `key` (for `WAIT` after a script on that node).
    pub(crate) fn on_node_of(&mut self, key: &str, cmd: &Cmd) -> RedisResult<Value> {
        match self {
            Conn::Single(c) => cmd.query(c),
            Conn::Cluster(c) => c.route_command(
                cmd,
                RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(Route::with_key(
                    key,
                    SlotAddr::Master,
                ))),
            ),
        }
    }
}

/// Opens connections.
pub(crate) enum Connector {
    Single(Client),
    Cluster(ClusterClient),
}

fn addr(url: &RedisUrl, node: &Node) -> Result<ConnectionAddr, StoreError> {
    if url.tls {
        #[cfg(feature = "redis-tls")]
        {
            return Ok(ConnectionAddr::TcpTls {
                host: node.host.clone(),
                port: node.port,
                insecure: false,
                tls_params: None,
            });
        }
        #[cfg(not(feature = "redis-tls"))]
        return Err(StoreError::Backend {
            store: url.to_string(),
            message: "rediss:// (TLS) needs wf built with the `redis-tls` feature".into(),
        });
    }
    Ok(ConnectionAddr::Tcp(node.host.clone(), node.port))
}

/// The CA to trust for TLS, from the URL's `tls_ca` file; `None`: the system's roots.
#[cfg(feature = "redis-tls")]
fn tls_certificates(url: &RedisUrl) -> Result<Option<redis::TlsCertificates>, StoreError> {
    // rustls needs one process-wide crypto provider; an app may have installed its own.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(path) = url.tls_ca.as_ref().filter(|_| url.tls) else {
        return Ok(None);
    };
    let pem = std::fs::read(path).map_err(|e| StoreError::Backend {
        store: url.to_string(),
        message: format!("cannot read the CA file tls_ca={}: {e}", path.display()),
    })?;
    Ok(Some(redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(pem),
    }))
}

impl Connector {
    pub(crate) fn new(url: &RedisUrl) -> Result<Self, StoreError> {
        #[cfg(feature = "redis-tls")]
        if url.tls {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let fail = |e: RedisError| classify(url, &e);
        let mut settings = RedisConnectionInfo::default().set_db(url.db);
        if let Some(u) = &url.username {
            settings = settings.set_username(u);
        }
        if let Some(p) = &url.password {
            settings = settings.set_password(p.expose());
        }
        let infos = url
            .nodes
            .iter()
            .map(|n| {
                addr(url, n)?
                    .into_connection_info()
                    .map(|i| i.set_redis_settings(settings.clone()))
                    .map_err(fail)
            })
            .collect::<Result<Vec<_>, _>>()?;
        if url.cluster {
            let mut b = ClusterClientBuilder::new(infos)
                .connection_timeout(url.connect_timeout)
                .response_timeout(url.timeout)
                .retries(4);
            if let Some(u) = &url.username {
                b = b.username(u);
            }
            if let Some(p) = &url.password {
                b = b.password(p.expose());
            }
            #[cfg(feature = "redis-tls")]
            if url.tls {
                b = b.tls(redis::TlsMode::Secure);
                if let Some(certs) = tls_certificates(url)? {
                    b = b.certs(certs);
                }
            }
            Ok(Connector::Cluster(b.build().map_err(fail)?))
        } else {
            let info = infos
                .into_iter()
                .next()
                .ok_or_else(|| StoreError::Backend {
                    store: url.to_string(),
                    message: "the URL names no server".into(),
                })?;
            #[cfg(feature = "redis-tls")]
            if let Some(certs) = tls_certificates(url)? {
                return Ok(Connector::Single(
                    Client::build_with_tls(info, certs).map_err(fail)?,
                ));
            }
            Ok(Connector::Single(Client::open(info).map_err(fail)?))
        }
    }

    fn connect(&self, url: &RedisUrl) -> RedisResult<Conn> {
        match self {
            Connector::Single(client) => {
                let c = client.get_connection_with_timeout(url.connect_timeout)?;
                c.set_write_timeout(Some(url.timeout))?;
                c.set_read_timeout(Some(url.timeout))?;
                Ok(Conn::Single(c))
            }
            Connector::Cluster(client) => {
                let c = client.get_connection()?;
                c.set_write_timeout(Some(url.timeout))?;
                c.set_read_timeout(Some(url.timeout))?;
                Ok(Conn::Cluster(Box::new(c)))
            }
        }
    }
}

/// A small pool of connections. A connection that failed is dropped, and so is every idle one
/// opened before the failure (after a server restart they are all dead).
pub(crate) struct Pool {
    connector: Connector,
    url: RedisUrl,
    idle: Mutex<Vec<(u64, Conn)>>,
    max_idle: usize,
    generation: AtomicU64,
}

impl Pool {
    pub(crate) fn new(url: &RedisUrl, max_idle: usize) -> Result<Self, StoreError> {
        Ok(Pool {
            connector: Connector::new(url)?,
            url: url.clone(),
            idle: Mutex::new(Vec::new()),
            max_idle,
            generation: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Vec<(u64, Conn)>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on a connection (an idle one, or a new one) and gives the connection back,
    /// unless `f` failed in a way that leaves it unusable.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut Conn) -> RedisResult<T>) -> RedisResult<T> {
        let (generation, mut conn) = self.take()?;
        let result = f(&mut conn);
        match &result {
            Err(e) if !connection_survives(e) => self.invalidate(),
            _ => self.put(generation, conn),
        }
        result
    }

    fn take(&self) -> RedisResult<(u64, Conn)> {
        let generation = self.generation.load(Ordering::Acquire);
        loop {
            let idle = self.lock().pop();
            match idle {
                Some((g, conn)) if g == generation => return Ok((generation, conn)),
                Some(_) => continue, // opened before a failure: drop it
                None => break,
            }
        }
        Ok((generation, self.connector.connect(&self.url)?))
    }

    fn put(&self, generation: u64, conn: Conn) {
        if generation == self.generation.load(Ordering::Acquire) {
            let mut idle = self.lock();
            if idle.len() < self.max_idle {
                idle.push((generation, conn));
            }
        }
    }

    /// Forgets every connection opened so far (a connection failed: the others may be dead).
    fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.lock().clear();
    }
}

/// Whether a connection is still usable after `e`: the server answered with an error reply
/// (the protocol stream is intact), as opposed to I/O failures and timeouts.
fn connection_survives(e: &RedisError) -> bool {
    !(e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || matches!(
            e.kind(),
            ErrorKind::Parse | ErrorKind::ClusterConnectionNotFound | ErrorKind::Client
        ))
}

/// The server's error replies inside `e` (one for a command, the failed ones of a pipeline),
/// as kind (when the driver knows it) and code.
pub(crate) fn server_errors(e: &RedisError) -> Vec<(Option<ServerErrorKind>, String)> {
    e.clone()
        .into_server_errors()
        .map(|errors| {
            errors
                .iter()
                .map(|(_, s)| (s.kind(), s.code().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a server error reply of this kind or code may go away by itself.
fn transient_reply(kind: Option<ServerErrorKind>, code: &str) -> bool {
    matches!(
        kind,
        Some(
            ServerErrorKind::BusyLoading
                | ServerErrorKind::TryAgain
                | ServerErrorKind::ClusterDown
                | ServerErrorKind::MasterDown
                | ServerErrorKind::ReadOnly
                | ServerErrorKind::Moved
                | ServerErrorKind::Ask
        )
    ) || matches!(
        code,
        "BUSY" | "LOADING" | "NOREPLICAS" | "MISCONF" | "UNBLOCKED" | "OOM"
    )
}

/// Whether `e` may go away by itself: the connection was lost or refused, the server is
/// loading its data, busy with a long script, failing over, or the cluster is re-sharding (for
/// a pipeline: any of its failed commands).
pub(crate) fn is_transient(e: &RedisError) -> bool {
    if e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_cluster_error()
        || matches!(e.kind(), ErrorKind::ClusterConnectionNotFound)
    {
        return true;
    }
    let inner = server_errors(e);
    if inner.is_empty() {
        return e.code().is_some_and(|c| transient_reply(None, c));
    }
    inner
        .iter()
        .any(|(kind, code)| transient_reply(*kind, code))
}

/// The store error for a Redis error: transient ones are [`StoreError::Unavailable`] (workers
/// back off and try again; bodies are deferred, not failed), others
/// [`StoreError::Backend`]. The URL's password never appears in either.
pub(crate) fn classify(url: &RedisUrl, e: &RedisError) -> StoreError {
    let text = url.redact(&e.to_string());
    if is_transient(e) {
        StoreError::Unavailable(format!(
            "Redis at {url}: {text} (a transient failure: workers retry; check that redis-server \
             is up and reachable)"
        ))
    } else if matches!(e.kind(), ErrorKind::AuthenticationFailed)
        || matches!(e.code(), Some("WRONGPASS" | "NOAUTH" | "NOPERM"))
        || server_errors(e)
            .iter()
            .any(|(_, c)| matches!(c.as_str(), "WRONGPASS" | "NOAUTH" | "NOPERM"))
    {
        StoreError::Backend {
            store: url.to_string(),
            message: format!(
                "{text}: check the user name and password in the store URL, and the ACL user's \
                 permissions (it needs the commands listed in docs/backends.md on ~<ns>* keys)"
            ),
        }
    } else {
        StoreError::Backend {
            store: url.to_string(),
            message: text,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error the driver makes of a server's error reply `line` (as it arrives on the wire).
    fn server_error(line: &str) -> RedisError {
        match redis::parse_redis_value(format!("-{line}\r\n").as_bytes())
            .and_then(Value::extract_error)
        {
            Err(e) => e,
            Ok(v) => panic!("{line}: parsed as {v:?}, not an error"),
        }
    }

    fn url() -> RedisUrl {
        RedisUrl::parse("redis://app:hunter2-secret@127.0.0.1:1/").unwrap()
    }

    #[test]
    fn transient_failures_are_unavailable() {
        for line in [
            "LOADING Redis is loading the dataset in memory",
            "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
            "TRYAGAIN Multiple keys request during rehashing of slot",
            "CLUSTERDOWN The cluster is down",
            "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
            "READONLY You can't write against a read only replica.",
            "MOVED 3999 127.0.0.1:6381",
            "ASK 3999 127.0.0.1:6381",
            "NOREPLICAS Not enough good replicas to write.",
            "OOM command not allowed when used memory > 'maxmemory'.",
        ] {
            let e = classify(&url(), &server_error(line));
            assert!(
                matches!(e, StoreError::Unavailable(_)) && e.is_transient(),
                "{line}: {e:?}"
            );
        }
        let io = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(classify(&url(), &io).is_transient());
        assert!(!connection_survives(&io), "a reset connection is dropped");
        assert!(
            connection_survives(&server_error("BUSY busy")),
            "an error reply leaves the connection usable"
        );
    }

    #[test]
    fn refusals_are_not_transient_and_hide_the_password() {
        for line in [
            "WRONGPASS invalid username-password pair or user is disabled.",
            "NOPERM this user has no permissions to run the 'evalsha' command",
            "ERR something hunter2-secret went wrong",
        ] {
            let e = classify(&url(), &server_error(line));
            assert!(matches!(e, StoreError::Backend { .. }), "{line}: {e:?}");
            assert!(!e.is_transient(), "{line}");
            for shown in [e.to_string(), format!("{e:?}")] {
                assert!(!shown.contains("hunter2"), "{shown}");
            }
        }
    }
}
