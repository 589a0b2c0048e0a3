//! Redis: the server the run measures, its floor, and the Redis store's own round trips.
//!
//! The server is `--redis URL` when given, else a throwaway `redis-server` on a free loopback
//! port (no persistence, the backend's default deployment for tests) started once for the whole
//! run (floors and workloads) and stopped after it. Without a `redis-server` and without
//! `--redis`, the Redis rows say they were skipped.
//!
//! - floor: `EVALSHA` of a script that does nothing, in a loop of our own over one connection
//!   per client, from one client and from four;
//! - store: the Redis store's submit + claim + commit round trips (three script calls), 1 and 4
//!   threads, with each operation's latency.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wf_store::Store;
use wf_store::redis::RedisStore;
use wf_store::redis::testing::{RedisServer, redis_server_binary, unique_namespace};

use crate::Config;
use crate::memory::round_trips_on_threads;
use crate::report::{Floors, Row, Samples};

/// Thread counts of the store round trips.
const THREADS: &[usize] = &[1, 4];
/// Clients of the floor.
const CLIENTS: &[usize] = &[1, 4];
/// Redis keeps every invocation until purged; cap a run.
const MAX_ROUND_TRIPS: u64 = 100_000;

/// The Redis server of a run: a URL, and the throwaway server behind it when the run started one.
#[derive(Debug)]
pub(crate) struct Target {
    pub(crate) url: String,
    _server: Option<RedisServer>,
}

impl Target {
    /// `--redis URL`, else a throwaway server; `Ok(None)` with neither (no `redis-server`).
    pub(crate) fn open(url: Option<&str>) -> Result<Option<Self>, String> {
        if let Some(url) = url {
            return Ok(Some(Self {
                url: url.to_owned(),
                _server: None,
            }));
        }
        if redis_server_binary().is_none() {
            return Ok(None);
        }
        let server = RedisServer::start()?;
        Ok(Some(Self {
            url: server.url(""),
            _server: Some(server),
        }))
    }
}

/// A fresh Redis store under its own namespace on the server at `base`.
pub(crate) fn fresh_store(base: &str, what: &str) -> Result<Arc<dyn Store>, String> {
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}ns={}", unique_namespace(what));
    RedisStore::open(&url)
        .map(|s| Arc::new(s) as Arc<dyn Store>)
        .map_err(|e| format!("cannot open a Redis store at {url}: {e}"))
}

/// Runs the floor, then the store round trips.
pub(crate) fn run(config: &Config, floors: &mut Floors) -> Result<Vec<Row>, String> {
    let name = "redis: EVALSHA floor (return 1)";
    let Some(base) = config.redis.as_deref() else {
        return Ok(vec![Row::note(
            name,
            "skipped: no redis-server on PATH and no --redis URL",
        )]);
    };
    let mut rows = Vec::new();
    for &clients in CLIENTS {
        let (ops, elapsed, samples) = evalsha_floor(base, clients, config.duration)?;
        let row = Row::measured(name, clients, ops, elapsed, samples.latency());
        match clients {
            1 => floors.redis_evalsha_1 = row.per_sec,
            _ => floors.redis_evalsha_4 = row.per_sec,
        }
        rows.push(row.with_note(format!("{clients} client(s), each its own connection")));
    }
    let cap = if config.quick {
        MAX_ROUND_TRIPS / 4
    } else {
        MAX_ROUND_TRIPS
    };
    for &threads in THREADS {
        let store = fresh_store(base, "bench")?;
        let start = Instant::now();
        let deadline = start + config.duration;
        let runs = round_trips_on_threads(&store, threads, deadline, cap)?;
        let elapsed = start.elapsed();
        let mut done = 0;
        let mut samples = Samples::default();
        let mut ops = Vec::new();
        for run in runs {
            done += run.round_trips;
            if ops.is_empty() {
                ops = vec![
                    ("submit", run.submit),
                    ("claim", run.claim),
                    ("commit", run.commit),
                ];
            }
            samples.merge(run.round_trip);
        }
        let row = Row::measured(
            "redis: submit+claim+commit (3 scripts)",
            threads,
            done,
            elapsed,
            samples.latency(),
        );
        // Each round trip is three script calls: compare script calls with the floor.
        let note = Floors::ratio(
            row.per_sec.map(|r| r * 3.0),
            floors.redis_evalsha_1,
            "EVALSHA floor (1 client), counting 3 scripts per round trip",
        );
        rows.push(row.with_note(note));
        if threads == 1 {
            for (op, s) in &ops {
                rows.push(Row::measured(
                    format!("redis:   {op}"),
                    1,
                    done,
                    s.total(),
                    s.latency(),
                ));
            }
        }
    }
    Ok(rows)
}

/// `clients` threads, each on its own connection, calling a script that returns 1.
fn evalsha_floor(
    url: &str,
    clients: usize,
    duration: Duration,
) -> Result<(u64, Duration, Samples), String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let script = redis::Script::new("return 1");
    let start = Instant::now();
    let deadline = start + duration;
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let client = client.clone();
            let script = script.clone();
            std::thread::spawn(move || -> Result<(u64, Samples), String> {
                let mut con = client.get_connection().map_err(|e| e.to_string())?;
                let mut samples = Samples::default();
                let mut n = 0u64;
                let mut t0 = Instant::now();
                while t0 < deadline {
                    let one: i64 = script.invoke(&mut con).map_err(|e| e.to_string())?;
                    if one != 1 {
                        return Err(format!("the script returned {one}"));
                    }
                    let t1 = Instant::now();
                    samples.push(t1 - t0);
                    n += 1;
                    t0 = t1;
                }
                Ok((n, samples))
            })
        })
        .collect();
    let mut ops = 0;
    let mut samples = Samples::default();
    for h in handles {
        let (n, s) = h
            .join()
            .map_err(|_| "a bench thread panicked".to_owned())??;
        ops += n;
        samples.merge(s);
    }
    Ok((ops, start.elapsed(), samples))
}
