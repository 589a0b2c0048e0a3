//! A fault-injecting TCP proxy between a Redis store and a real `redis-server` (test support:
//! std threads, no mock of Redis). It forwards bytes both ways, counts the requests it forwards
//! (one read from the client is one request: the store's driver writes each command whole and
//! waits for its reply), and at armed points:
//!
//! - [`ProxyFault::Cut`]: closes the connection before forwarding the request (the server never
//!   sees it);
//! - [`ProxyFault::LostReply`]: forwards the request, then drops the reply and closes the
//!   connection (the server applied it; the client cannot know);
//! - [`ProxyFault::Outage`]: closes every connection and refuses new ones until healed, by
//!   [`Proxy::heal`] or after a number of refused connections;
//! - [`ProxyFault::LostReplyThenOutage`]: both, the outage starting once the reply is dropped;
//! - [`ProxyFault::Restart`]: forwards the request, drops its reply, then kills the server with
//!   SIGKILL and starts it again on the same port and directory (with `appendfsync always` the
//!   applied request survives).
//!
//! Which request a fault hits depends on how many requests came before it: the store's retries
//! after a fault follow wall-clock backoff, so runs through the proxy are not bit-for-bit
//! repeatable (the plan is; see [`crate::redis_sim`]).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use wf_store::redis::testing::RedisServer;

/// A fault the proxy injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyFault {
    /// Close the connection; the request is not forwarded.
    Cut,
    /// Forward the request, drop its reply, close the connection.
    LostReply,
    /// Close every connection and refuse new ones until healed or after this many refused
    /// connections (`0`: only [`Proxy::heal`] heals).
    Outage(u64),
    /// Forward the request, drop its reply, then an [`Outage`](Self::Outage) of this many
    /// refused connections (`0`: until healed): the reply is lost and the retries meet a
    /// server that cannot be reached.
    LostReplyThenOutage(u64),
    /// Forward the request, drop its reply, kill the server (SIGKILL) and start it again.
    Restart,
}

/// How often each kind of fault fired.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyCounts {
    /// Requests forwarded.
    pub requests: u64,
    /// [`ProxyFault::Cut`]s.
    pub cuts: u64,
    /// [`ProxyFault::LostReply`]s.
    pub lost_replies: u64,
    /// [`ProxyFault::Outage`]s.
    pub outages: u64,
    /// Connections refused during outages.
    pub refused: u64,
    /// [`ProxyFault::Restart`]s.
    pub restarts: u64,
}

/// When an armed fault fires.
#[derive(Debug, Clone)]
enum Trigger {
    /// At the request with this number (counted from 1 since the proxy started).
    At(u64),
    /// At the next request whose bytes contain this.
    Containing(Vec<u8>),
}

#[derive(Default)]
struct State {
    armed: Vec<(Trigger, ProxyFault)>,
    /// Refused connections left in the outage (`Some(0)`: until healed).
    down: Option<u64>,
    counts: ProxyCounts,
    /// The open connections' sockets (client side, server side), to close at an outage.
    open: BTreeMap<u64, (TcpStream, TcpStream)>,
    next_conn: u64,
    restart_failed: Option<String>,
    /// A restart is under way: connections are refused until the new server answers.
    restarting: bool,
}

struct Shared {
    upstream: u16,
    state: Mutex<State>,
    /// Told when a restart is over.
    restarted: Condvar,
    server: Option<Arc<Mutex<RedisServer>>>,
    stopping: AtomicBool,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The proxy: listens on a port of its own on 127.0.0.1. Stopped when dropped.
pub struct Proxy {
    port: u16,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("port", &self.port)
            .field("upstream", &self.shared.upstream)
            .finish_non_exhaustive()
    }
}

impl Proxy {
    /// A proxy in front of `server` (which [`ProxyFault::Restart`] restarts).
    ///
    /// # Errors
    /// No port to listen on.
    pub fn start(server: Arc<Mutex<RedisServer>>) -> Result<Self, String> {
        let upstream = server.lock().unwrap_or_else(|p| p.into_inner()).port();
        Self::launch(upstream, Some(server))
    }

    fn launch(upstream: u16, server: Option<Arc<Mutex<RedisServer>>>) -> Result<Self, String> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).map_err(|e| format!("bind: {e}"))?;
        let port = listener
            .local_addr()
            .map_err(|e| format!("local_addr: {e}"))?
            .port();
        let shared = Arc::new(Shared {
            upstream,
            state: Mutex::new(State::default()),
            restarted: Condvar::new(),
            server,
            stopping: AtomicBool::new(false),
        });
        let s = shared.clone();
        let acceptor = std::thread::spawn(move || accept(&listener, &s));
        Ok(Self {
            port,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// `redis://127.0.0.1:<proxy port>/?<query>`.
    pub fn url(&self, query: &str) -> String {
        format!("redis://127.0.0.1:{}/?{query}", self.port)
    }

    /// Arms `fault` at the request numbered `at` (see [`ProxyCounts::requests`]).
    pub fn arm_at(&self, at: u64, fault: ProxyFault) {
        self.shared.state().armed.push((Trigger::At(at), fault));
    }

    /// Arms `fault` at the next request whose bytes contain `pattern`.
    pub fn arm_containing(&self, pattern: &[u8], fault: ProxyFault) {
        self.shared
            .state()
            .armed
            .push((Trigger::Containing(pattern.to_vec()), fault));
    }

    /// Drops every armed fault and ends an outage.
    pub fn disarm(&self) {
        let mut s = self.shared.state();
        s.armed.clear();
        s.down = None;
    }

    /// Ends an outage.
    pub fn heal(&self) {
        self.shared.state().down = None;
    }

    /// Whether an outage is on.
    pub fn is_down(&self) -> bool {
        self.shared.state().down.is_some()
    }

    /// The counters so far.
    pub fn counts(&self) -> ProxyCounts {
        self.shared.state().counts
    }

    /// Waits (at most `timeout`) until no restart is under way: the server answers `PING`
    /// (it has loaded its AOF), so reads through the proxy see everything it acknowledged.
    ///
    /// # Errors
    /// A restart still under way after `timeout`.
    pub fn wait_ready(&self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let mut s = self.shared.state();
        while s.restarting {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!("redis-server still restarting after {timeout:?}"));
            }
            s = self
                .shared
                .restarted
                .wait_timeout(s, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        Ok(())
    }

    /// Empties the server (`FLUSHALL`, straight to it, not through the proxy): between seeds,
    /// so that its AOF, which a restart loads, stays small.
    ///
    /// # Errors
    /// The server did not answer `+OK`.
    pub fn flush_all(&self) -> Result<(), String> {
        let mut c = TcpStream::connect(("127.0.0.1", self.shared.upstream))
            .map_err(|e| format!("connect: {e}"))?;
        c.set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| format!("timeout: {e}"))?;
        c.write_all(b"*1\r\n$8\r\nFLUSHALL\r\n")
            .map_err(|e| format!("write: {e}"))?;
        let mut reply = [0u8; 64];
        let n = c.read(&mut reply).map_err(|e| format!("read: {e}"))?;
        if reply[..n].starts_with(b"+OK") {
            Ok(())
        } else {
            Err(format!(
                "FLUSHALL: {}",
                String::from_utf8_lossy(&reply[..n])
            ))
        }
    }

    /// Why a restart failed, if one did (the server is down then).
    pub fn restart_failed(&self) -> Option<String> {
        self.shared.state().restart_failed.clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        close_all(&mut self.shared.state());
        // Wake the acceptor.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
    }
}

fn close_all(state: &mut State) {
    for (_, (client, server)) in std::mem::take(&mut state.open) {
        let _ = client.shutdown(Shutdown::Both);
        let _ = server.shutdown(Shutdown::Both);
    }
}

fn accept(listener: &TcpListener, shared: &Arc<Shared>) {
    for client in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        {
            let mut s = shared.state();
            if s.restarting {
                s.counts.refused += 1;
                let _ = client.shutdown(Shutdown::Both);
                continue;
            }
            if let Some(left) = s.down {
                s.counts.refused += 1;
                if left == 1 {
                    s.down = None;
                } else if left > 1 {
                    s.down = Some(left - 1);
                }
                let _ = client.shutdown(Shutdown::Both);
                continue;
            }
        }
        let Ok(server) = TcpStream::connect(("127.0.0.1", shared.upstream)) else {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let (Ok(c2), Ok(s2), Ok(c3), Ok(s3)) = (
            client.try_clone(),
            server.try_clone(),
            client.try_clone(),
            server.try_clone(),
        ) else {
            continue;
        };
        let id = {
            let mut s = shared.state();
            s.next_conn += 1;
            let id = s.next_conn;
            s.open.insert(id, (c3, s3));
            id
        };
        let drop_reply = Arc::new(Mutex::new(None::<ProxyFault>));
        let (sh, dr) = (shared.clone(), drop_reply.clone());
        std::thread::spawn(move || requests(client, server, &sh, &dr, id));
        let sh = shared.clone();
        std::thread::spawn(move || replies(s2, c2, &sh, &drop_reply, id));
    }
}

/// Forwards requests client → server, firing armed faults.
fn requests(
    mut client: TcpStream,
    mut server: TcpStream,
    shared: &Shared,
    drop_reply: &Mutex<Option<ProxyFault>>,
    id: u64,
) {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match client.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let fault = due(shared, &buf[..n]);
        match fault {
            None => {}
            Some(ProxyFault::Cut) => break,
            Some(ProxyFault::Outage(n)) => {
                let mut s = shared.state();
                s.down = Some(n);
                close_all(&mut s);
                break;
            }
            Some(
                f @ (ProxyFault::LostReply
                | ProxyFault::LostReplyThenOutage(_)
                | ProxyFault::Restart),
            ) => {
                *drop_reply.lock().unwrap_or_else(|p| p.into_inner()) = Some(f);
            }
        }
        if server.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    end(shared, id, &client, &server);
}

/// Forwards replies server → client, dropping one when told to (and restarting the server
/// after it when the fault says so).
fn replies(
    mut server: TcpStream,
    mut client: TcpStream,
    shared: &Shared,
    drop_reply: &Mutex<Option<ProxyFault>>,
    id: u64,
) {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match server.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let dropped = drop_reply.lock().unwrap_or_else(|p| p.into_inner()).take();
        match dropped {
            None => {
                if client.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Some(ProxyFault::Restart) => {
                end(shared, id, &client, &server);
                restart(shared);
                return;
            }
            Some(ProxyFault::LostReplyThenOutage(n)) => {
                end(shared, id, &client, &server);
                let mut s = shared.state();
                s.down = Some(n);
                close_all(&mut s);
                return;
            }
            Some(_) => break,
        }
    }
    end(shared, id, &client, &server);
}

fn end(shared: &Shared, id: u64, client: &TcpStream, server: &TcpStream) {
    let _ = client.shutdown(Shutdown::Both);
    let _ = server.shutdown(Shutdown::Both);
    shared.state().open.remove(&id);
}

/// Kills the server and starts it again; connections are refused meanwhile (those open die
/// with the old server), and accepted again once the new one answers `PING`.
fn restart(shared: &Shared) {
    let Some(server) = &shared.server else { return };
    {
        let mut s = shared.state();
        s.restarting = true;
        close_all(&mut s);
    }
    let result = server.lock().unwrap_or_else(|p| p.into_inner()).restart();
    let mut s = shared.state();
    s.restarting = false;
    if let Err(e) = result {
        s.restart_failed = Some(e);
    }
    shared.restarted.notify_all();
}

/// Counts a request and takes the fault due at it, if any.
fn due(shared: &Shared, request: &[u8]) -> Option<ProxyFault> {
    let mut s = shared.state();
    s.counts.requests += 1;
    let number = s.counts.requests;
    if s.down.is_some() {
        return Some(ProxyFault::Cut);
    }
    let at = s.armed.iter().position(|(t, _)| match t {
        Trigger::At(n) => *n == number,
        Trigger::Containing(p) => {
            p.is_empty() || request.windows(p.len()).any(|w| w == p.as_slice())
        }
    })?;
    let (_, fault) = s.armed.remove(at);
    match fault {
        ProxyFault::Cut => s.counts.cuts += 1,
        ProxyFault::LostReply => s.counts.lost_replies += 1,
        ProxyFault::Outage(_) => s.counts.outages += 1,
        ProxyFault::LostReplyThenOutage(_) => {
            s.counts.lost_replies += 1;
            s.counts.outages += 1;
        }
        ProxyFault::Restart => s.counts.restarts += 1,
    }
    Some(fault)
}
