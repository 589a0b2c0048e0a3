//! The Redis floor: `EVALSHA` round trips of a one-key script to a throwaway local
//! `redis-server`, from one client and from four, with a minimal RESP client of our own (so the
//! floor measures the server and the loopback, not a client library).
//!
//! The server is started with persistence off (`--save "" --appendonly no`) on a free loopback
//! port, in a scratch directory, and killed when the measurement ends (also on failure).

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Config;
use crate::report::{Floors, Row, Samples};
use crate::scratch::ScratchDir;

/// The script the floor runs: one key written per call, as every wf state change does at least.
const SCRIPT: &str = "return redis.call('INCR', KEYS[1])";
/// Round trips per measurement at most.
const MAX_CALLS: u64 = 400_000;

/// A redis-server child process, killed on drop.
pub(crate) struct RedisServer {
    child: Child,
    port: u16,
    _dir: ScratchDir,
}

impl RedisServer {
    /// Starts `redis-server` on a free loopback port; `Ok(None)` when it is not installed.
    pub(crate) fn start(parent: &std::path::Path) -> Result<Option<Self>, String> {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("cannot find a free loopback port: {e}"))?
            .port();
        let dir = ScratchDir::new(parent, "redis")?;
        let spawned = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot start redis-server: {e}")),
        };
        let server = Self {
            child,
            port,
            _dir: dir,
        };
        // Wait until it answers (a bench may poll; nothing here can be awaited).
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut c) = server.connect()
                && c.call(&[b"PING"]).is_ok()
            {
                return Ok(Some(server));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "redis-server did not answer on port {port} within 10 s"
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A new connection.
    pub(crate) fn connect(&self) -> Result<Conn, String> {
        let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port))
            .map_err(|e| format!("cannot connect to redis on port {}: {e}", self.port))?;
        stream
            .set_nodelay(true)
            .map_err(|e| format!("set_nodelay: {e}"))?;
        let reader = BufReader::new(
            stream
                .try_clone()
                .map_err(|e| format!("cannot clone a socket: {e}"))?,
        );
        Ok(Conn {
            writer: stream,
            reader,
            out: Vec::with_capacity(256),
            line: String::new(),
        })
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A RESP connection: one command, one reply.
pub(crate) struct Conn {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
    out: Vec<u8>,
    line: String,
}

impl Conn {
    /// Sends one command and reads its reply: an integer, a status or a bulk string, as text.
    pub(crate) fn call(&mut self, args: &[&[u8]]) -> Result<String, String> {
        self.out.clear();
        self.out
            .extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            self.out
                .extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            self.out.extend_from_slice(a);
            self.out.extend_from_slice(b"\r\n");
        }
        self.writer
            .write_all(&self.out)
            .map_err(|e| format!("redis write: {e}"))?;
        self.read_line()?;
        let line = self.line.trim_end().to_owned();
        match line.as_bytes().first() {
            Some(b'+' | b':') => Ok(line[1..].to_owned()),
            Some(b'-') => Err(format!("redis error: {}", &line[1..])),
            Some(b'$') => {
                let len: i64 = line[1..]
                    .parse()
                    .map_err(|_| format!("bad bulk length: {line}"))?;
                if len < 0 {
                    return Ok(String::new());
                }
                self.read_line()?;
                Ok(self.line.trim_end().to_owned())
            }
            _ => Err(format!("unexpected redis reply: {line:?}")),
        }
    }

    fn read_line(&mut self) -> Result<(), String> {
        self.line.clear();
        match self.reader.read_line(&mut self.line) {
            Ok(0) => Err("redis closed the connection".to_owned()),
            Ok(_) => Ok(()),
            Err(e) => Err(format!("redis read: {e}")),
        }
    }
}

/// Measures the floor: `EVALSHA` from one client, then from four at once.
pub(crate) fn run(config: &Config, floors: &mut Floors) -> Result<Vec<Row>, String> {
    let Some(server) = RedisServer::start(&config.dir)? else {
        return Ok(vec![Row::note(
            "redis: EVALSHA floor",
            "skipped: redis-server is not installed (apt-get install redis-server)",
        )]);
    };
    let sha = server
        .connect()?
        .call(&[b"SCRIPT", b"LOAD", SCRIPT.as_bytes()])?;
    let cap = if config.quick {
        MAX_CALLS / 4
    } else {
        MAX_CALLS
    };
    let mut rows = Vec::new();
    for clients in [1usize, 4] {
        let start = Instant::now();
        let deadline = start + config.duration;
        let per_client = cap / clients as u64;
        let results: Vec<Result<(u64, Samples), String>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..clients)
                .map(|c| {
                    let (server, sha) = (&server, sha.as_bytes());
                    s.spawn(move || evalsha_loop(server, sha, c, deadline, per_client))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err("a client panicked".to_owned()))
                })
                .collect()
        });
        let elapsed = start.elapsed();
        let mut calls = 0;
        let mut samples = Samples::default();
        for r in results {
            let (n, s) = r?;
            calls += n;
            samples.merge(s);
        }
        let row = Row::measured(
            "redis: EVALSHA (one INCR)",
            clients,
            calls,
            elapsed,
            samples.latency(),
        );
        match clients {
            1 => floors.redis_evalsha_1 = row.per_sec,
            _ => floors.redis_evalsha_4 = row.per_sec,
        }
        rows.push(row.with_note(format!(
            "{clients} client(s), loopback, persistence off: the Redis backend's floor"
        )));
    }
    Ok(rows)
}

fn evalsha_loop(
    server: &RedisServer,
    sha: &[u8],
    client: usize,
    deadline: Instant,
    cap: u64,
) -> Result<(u64, Samples), String> {
    let mut conn = server.connect()?;
    let key = format!("wf-bench:floor:{client}");
    let mut samples = Samples::with_capacity(usize::try_from(cap).unwrap_or(0).min(1 << 20));
    let mut calls = 0;
    let mut t0 = Instant::now();
    while calls < cap && t0 < deadline {
        conn.call(&[b"EVALSHA", sha, b"1", key.as_bytes()])?;
        let t1 = Instant::now();
        samples.push(t1 - t0);
        calls += 1;
        t0 = t1;
    }
    Ok((calls, samples))
}
