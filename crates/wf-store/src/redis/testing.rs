//! Throwaway Redis servers and clusters for tests (features `redis` + `testing`).
//!
//! Every server is a real `redis-server` process on a free loopback port, in a temporary
//! directory of its own, started through a small `sh` watchdog that kills it when the test
//! process ends in any way (its standard input, a pipe held by the test process, closes), so
//! no server outlives its test run even after a `panic = abort` or a `kill -9`. A guard stops its
//! server by pid when dropped.
//!
//! Without a `redis-server` binary on `PATH` (or in `WF_REDIS_SERVER`), [`server_or_skip`] and
//! friends print a loud notice straight to the terminal and the test returns early; with
//! `WF_REQUIRE_REDIS=1` (set by `.ci/run`) a missing server fails the test instead.
// Test support: a failed expectation is a failed test, so unwrap and panic are the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a server may take to answer after it was started.
const STARTUP: Duration = Duration::from_secs(20);

/// The `redis-server` binary to run, if there is one.
pub fn redis_server_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("WF_REDIS_SERVER").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    find_on_path("redis-server")
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Whether Redis tests must run (`WF_REQUIRE_REDIS=1`): then a missing server fails them.
pub fn required() -> bool {
    std::env::var("WF_REQUIRE_REDIS").is_ok_and(|v| v == "1" || v == "true")
}

/// Whether a `redis-server` can be started here; prints the loud skip notice for `test` when
/// not, and panics instead when [`required`].
pub fn available_or_skip(test: &str) -> bool {
    if redis_server_binary().is_some() {
        return true;
    }
    if required() {
        panic!(
            "{test}: WF_REQUIRE_REDIS=1 but no redis-server was found on PATH (or in \
             WF_REDIS_SERVER): install it (Debian: apt-get install redis-server)"
        );
    }
    loud(&format!(
        "SKIPPED {test}: redis-server not found on PATH; the Redis backend was NOT tested. \
         Install it (Debian: apt-get install redis-server) or set WF_REDIS_SERVER; set \
         WF_REQUIRE_REDIS=1 to make this a failure"
    ));
    false
}

/// Writes a line straight to the terminal's standard error (test output capture does not
/// swallow it), once per process and message.
fn loud(message: &str) {
    static SAID: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut said = SAID.lock().unwrap_or_else(|p| p.into_inner());
    let key = message.split(':').next().unwrap_or(message).to_owned();
    if said.contains(&key) {
        return;
    }
    said.push(key);
    let _ = writeln!(std::io::stderr(), "\n!!! {message}\n");
}

/// A fresh namespace for one test's store, unique in this process and across processes.
pub fn unique_namespace(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// How a server is started.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// `--appendonly yes --appendfsync always`: every acknowledged write is on disk.
    pub aof_always: bool,
    /// `--cluster-enabled yes`.
    pub cluster: bool,
    /// Extra `redis-server` arguments.
    pub extra: Vec<String>,
    /// Remove the server's directory when the test process ends (for servers shared by a whole
    /// process, which are never dropped).
    pub remove_at_exit: bool,
}

/// A `redis-server` process. Stopped (by pid) when dropped.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    args: Vec<String>,
    remove_at_exit: bool,
    pid: u32,
    watchdog: Option<(Child, ChildStdin)>,
}

impl RedisServer {
    /// Starts a plain server (no persistence) on a free port.
    ///
    /// # Errors
    ///
    /// Why it could not be started (no binary, no free port, it did not answer).
    pub fn start() -> Result<Self, String> {
        Self::start_with(&ServerOptions::default())
    }

    /// Starts a server with `options` on a free port.
    ///
    /// # Errors
    ///
    /// Why it could not be started.
    pub fn start_with(options: &ServerOptions) -> Result<Self, String> {
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port(options.cluster)?;
            let dir = scratch_dir(port)?;
            let mut args: Vec<String> = [
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--dir",
                &dir.to_string_lossy(),
                "--save",
                "",
                "--logfile",
                "",
                "--daemonize",
                "no",
                "--protected-mode",
                "no",
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
            if options.aof_always {
                args.extend(["--appendonly", "yes", "--appendfsync", "always"].map(str::to_owned));
            } else {
                args.extend(["--appendonly", "no"].map(str::to_owned));
            }
            if options.cluster {
                args.extend(
                    [
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "3000",
                    ]
                    .map(str::to_owned),
                );
            }
            args.extend(options.extra.iter().cloned());
            let mut server = RedisServer {
                port,
                dir,
                args,
                remove_at_exit: options.remove_at_exit,
                pid: 0,
                watchdog: None,
            };
            match server.launch() {
                Ok(()) => return Ok(server),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Starts the process with the stored arguments and waits until it answers.
    fn launch(&mut self) -> Result<(), String> {
        let binary = redis_server_binary()
            .ok_or_else(|| "no redis-server on PATH (or in WF_REDIS_SERVER)".to_owned())?;
        let log = self.dir.join("redis.log");
        // The watchdog: starts the server, prints its pid, then waits for its stdin (a pipe
        // held by this process) to close, and kills the server then.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(concat!(
                r#"b="$1"; shift; "$b" "$@" </dev/null >>"$WF_REDIS_LOG" 2>&1 & echo $!; "#,
                r#"cat >/dev/null; kill -9 $! 2>/dev/null; "#,
                r#"if [ -n "$WF_REDIS_RMDIR" ]; then sleep 0.2; rm -rf "$WF_REDIS_RMDIR"; fi"#
            ))
            .arg("sh")
            .arg(&binary)
            .args(&self.args)
            .env("WF_REDIS_LOG", &log)
            .env(
                "WF_REDIS_RMDIR",
                if self.remove_at_exit {
                    self.dir.as_os_str()
                } else {
                    std::ffi::OsStr::new("")
                },
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run sh to start {}: {e}", binary.display()))?;
        let stdin = child.stdin.take().ok_or("no stdin pipe")?;
        let stdout = child.stdout.take().ok_or("no stdout pipe")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| format!("reading the server's pid: {e}"))?;
        self.pid = line
            .trim()
            .parse()
            .map_err(|_| format!("the watchdog printed {line:?}, not a pid"))?;
        self.watchdog = Some((child, stdin));
        match wait_for_ping(self.port, self.pid, STARTUP) {
            Ok(()) => Ok(()),
            Err(e) => {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                self.kill();
                Err(format!(
                    "redis-server on port {} did not answer: {e}; its log:\n{log}",
                    self.port
                ))
            }
        }
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server process's id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The server's directory (AOF files, logs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `redis://127.0.0.1:<port>/`, with `query` appended when not empty.
    pub fn url(&self, query: &str) -> String {
        if query.is_empty() {
            format!("redis://127.0.0.1:{}/", self.port)
        } else {
            format!("redis://127.0.0.1:{}/?{query}", self.port)
        }
    }

    /// Kills the server with SIGKILL (a crash: whatever it had not written is lost).
    pub fn kill(&mut self) {
        if self.pid != 0 {
            let _ = Command::new("kill")
                .args(["-9", &self.pid.to_string()])
                .stderr(Stdio::null())
                .status();
            self.pid = 0;
        }
        if let Some((mut child, stdin)) = self.watchdog.take() {
            drop(stdin);
            let _ = child.wait();
        }
    }

    /// Kills the server with SIGKILL and starts it again on the same port and directory (with
    /// `--appendfsync always` it comes back with every acknowledged write).
    ///
    /// # Errors
    ///
    /// Why it did not come back.
    pub fn restart(&mut self) -> Result<(), String> {
        self.kill();
        // The port stays ours (nothing else was told about it), but SIGKILL is asynchronous:
        // wait until the old process's listening socket is gone, or the new server could not
        // bind it.
        let deadline = Instant::now() + STARTUP;
        while TcpListener::bind(("127.0.0.1", self.port)).is_err() {
            if Instant::now() > deadline {
                return Err(format!(
                    "port {} is still in use {STARTUP:?} after the old server was killed",
                    self.port
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.launch()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A local Redis Cluster of `redis-server --cluster-enabled yes` masters (no replicas).
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts `masters` nodes (at least 3, as `redis-cli --cluster create` requires) and joins
    /// them with `redis-cli --cluster create … --cluster-replicas 0 --cluster-yes`, then waits
    /// until every node reports `cluster_state:ok`.
    ///
    /// # Errors
    ///
    /// Why the cluster did not form.
    pub fn start(masters: usize) -> Result<Self, String> {
        Self::start_with(masters, false)
    }

    fn start_with(masters: usize, remove_at_exit: bool) -> Result<Self, String> {
        let options = ServerOptions {
            cluster: true,
            remove_at_exit,
            ..ServerOptions::default()
        };
        let nodes = (0..masters.max(3))
            .map(|_| RedisServer::start_with(&options))
            .collect::<Result<Vec<_>, _>>()?;
        let cli = redis_server_binary()
            .and_then(|b| {
                let cli = b.with_file_name("redis-cli");
                cli.is_file().then_some(cli)
            })
            .or_else(|| find_on_path("redis-cli"))
            .ok_or("no redis-cli next to redis-server or on PATH")?;
        let out = Command::new(&cli)
            .arg("--cluster")
            .arg("create")
            .args(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)))
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", cli.display()))?;
        if !out.status.success() {
            return Err(format!(
                "redis-cli --cluster create failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let cluster = RedisCluster { nodes };
        // Nothing announces that gossip has converged: ask each node, with a deadline.
        let deadline = Instant::now() + STARTUP;
        for n in &cluster.nodes {
            loop {
                let info = command(n.port, &["CLUSTER", "INFO"]).unwrap_or_default();
                if info.contains("cluster_state:ok") {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(format!(
                        "cluster node {} did not reach cluster_state:ok: {info}",
                        n.port
                    ));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(cluster)
    }

    /// `redis+cluster://127.0.0.1:p1,127.0.0.1:p2,…`, with `query` appended when not empty.
    pub fn url(&self, query: &str) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let mut url = format!("redis+cluster://{}", hosts.join(","));
        if !query.is_empty() {
            url.push('?');
            url.push_str(query);
        }
        url
    }

    /// The nodes.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }
}

/// A server for this whole test process, started on first use (the watchdog stops it when
/// the process ends). `None`, after the loud skip notice, when there is no `redis-server`.
pub fn shared_server(test: &str) -> Option<&'static RedisServer> {
    static SERVER: OnceLock<Result<RedisServer, String>> = OnceLock::new();
    if !available_or_skip(test) {
        return None;
    }
    let options = ServerOptions {
        remove_at_exit: true,
        ..ServerOptions::default()
    };
    match SERVER.get_or_init(|| RedisServer::start_with(&options)) {
        Ok(s) => Some(s),
        Err(e) => panic!("{test}: could not start redis-server: {e}"),
    }
}

/// A 3-master cluster for this whole test process, like [`shared_server`].
pub fn shared_cluster(test: &str) -> Option<&'static RedisCluster> {
    static CLUSTER: OnceLock<Result<RedisCluster, String>> = OnceLock::new();
    if !available_or_skip(test) {
        return None;
    }
    match CLUSTER.get_or_init(|| RedisCluster::start_with(3, true)) {
        Ok(c) => Some(c),
        Err(e) => panic!("{test}: could not start a Redis Cluster: {e}"),
    }
}

/// A server of its own for one test. `None`, after the loud notice, without `redis-server`.
pub fn server_or_skip(test: &str, options: &ServerOptions) -> Option<RedisServer> {
    if !available_or_skip(test) {
        return None;
    }
    match RedisServer::start_with(options) {
        Ok(s) => Some(s),
        Err(e) => panic!("{test}: could not start redis-server: {e}"),
    }
}

fn free_port(with_bus: bool) -> Result<u16, String> {
    for _ in 0..50 {
        let listener =
            TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
        let port = listener
            .local_addr()
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        // A cluster node also listens on port + 10000 (its bus).
        if !with_bus || (port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok()) {
            return Ok(port);
        }
    }
    Err("no free port pair for a cluster node".into())
}

fn scratch_dir(port: u16) -> Result<PathBuf, String> {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "wf-redis-{}-{port}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

/// Whether process `pid` still runs (`kill -0`).
fn alive(pid: u32) -> bool {
    Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Sends one command in the inline protocol and returns the raw reply.
fn command(port: u16, args: &[&str]) -> Result<String, String> {
    let mut con = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    con.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    con.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(con);
    let mut first = String::new();
    reader.read_line(&mut first).map_err(|e| e.to_string())?;
    if let Some(len) = first.strip_prefix('$') {
        let len: usize = len.trim().parse().map_err(|_| first.clone())?;
        let mut body = vec![0; len + 2];
        std::io::Read::read_exact(&mut reader, &mut body).map_err(|e| e.to_string())?;
        return Ok(String::from_utf8_lossy(&body).into_owned());
    }
    Ok(first)
}

/// Waits until the server on `port` answers PING (it announces nothing a test can block on, so
/// this asks, with a deadline). A server still loading its data answers `-LOADING`.
fn wait_for_ping(port: u16, pid: u32, patience: Duration) -> Result<(), String> {
    let deadline = Instant::now() + patience;
    loop {
        let reply = command(port, &["PING"]);
        match &reply {
            // A server with a password answers NOAUTH: it is up.
            Ok(r) if r.starts_with("+PONG") || r.starts_with("-NOAUTH") => return Ok(()),
            _ if Instant::now() > deadline => {
                return Err(format!("no PONG within {patience:?}: last reply {reply:?}"));
            }
            _ if !alive(pid) => return Err("the process exited".into()),
            _ => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}
