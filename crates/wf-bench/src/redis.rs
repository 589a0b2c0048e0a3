//! Redis scenarios: the floor (an `EVALSHA` of a script that does nothing, in a loop of our own
//! over one connection per thread) and the Redis store's submit + claim + commit round trips,
//! each of them one script call.
//!
//! The server is `--redis URL` when given, else a throwaway `redis-server` on a free loopback
//! port (no persistence) started for the run and stopped after it. Without a `redis-server`
//! and without `--redis`, the rows say they were skipped.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wf_store::redis::RedisStore;
use wf_store::redis::testing::{RedisServer, redis_server_binary, unique_namespace};

use crate::Config;
use crate::memory::round_trips_on_threads;
use crate::report::{Floors, Row, Samples};

/// Thread counts of both scenarios.
const THREADS: &[usize] = &[1, 4];
/// Redis keeps every invocation until purged; cap a run.
const MAX_ROUND_TRIPS: u64 = 100_000;

/// Runs the floor, then the store round trips, on 1 and 4 threads.
pub(crate) fn run(config: &Config, floors: &mut Floors) -> Result<Vec<Row>, String> {
    let name = "redis: EVALSHA floor (return 1)";
    let (_server, base) = match &config.redis {
        Some(url) => (None, url.clone()),
        None if redis_server_binary().is_none() => {
            return Ok(vec![Row::note(
                name,
                "skipped: no redis-server on PATH and no --redis URL",
            )]);
        }
        None => {
            let server = RedisServer::start()?;
            let url = server.url("");
            (Some(server), url)
        }
    };
    let mut rows = Vec::new();
    for &threads in THREADS {
        let (ops, elapsed, samples) = evalsha_floor(&base, threads, config.duration)?;
        let row = Row::measured(name, threads, ops, elapsed, samples.latency());
        if threads == 1 {
            floors.redis_evalsha_per_sec = row.per_sec;
        }
        rows.push(row);
    }
    let cap = if config.quick {
        MAX_ROUND_TRIPS / 4
    } else {
        MAX_ROUND_TRIPS
    };
    for &threads in THREADS {
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}ns={}", unique_namespace("bench"));
        let store = Arc::new(RedisStore::open(&url).map_err(|e| e.to_string())?);
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
            floors.redis_evalsha_per_sec,
            "EVALSHA floor (1 thread), counting 3 scripts per round trip",
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

/// `threads` threads, each on its own connection, calling a script that returns 1.
fn evalsha_floor(
    url: &str,
    threads: usize,
    duration: Duration,
) -> Result<(u64, Duration, Samples), String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let script = redis::Script::new("return 1");
    let start = Instant::now();
    let deadline = start + duration;
    let handles: Vec<_> = (0..threads)
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
