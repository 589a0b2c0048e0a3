//! Memory store scenarios: the in-process floor of one task's storage round trip.
//!
//! A round trip is what the runtime does per task that finishes in one execution: `submit` a
//! root invocation, `claim` it with a lease, `commit` its `Success` outcome. Every operation reads
//! the wall clock for its `now`, as the runtime does; the `Instant` reads for latency add a few
//! tens of nanoseconds per operation.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use wf_core::{CallId, InvocationId, TaskId, Timestamp, WorkerId, WorkflowIdentity};
use wf_store::{Commit, MemoryStore, NewInvocation, Outcome, Store, TaskSet};

use crate::Config;
use crate::report::{Floors, Row, Samples};

/// The memory store keeps every invocation; cap a run so a fast machine does not fill its RAM.
const MAX_ROUND_TRIPS: u64 = 300_000;
const LEASE: Duration = Duration::from_secs(30);

/// Per-thread timings of one run.
pub(crate) struct Run {
    /// Round trips done.
    pub round_trips: u64,
    pub submit: Samples,
    pub claim: Samples,
    pub commit: Samples,
    /// Each round trip's duration.
    pub round_trip: Samples,
}

/// A root invocation with a unique id; the rest is shared by all (the call id is computed once,
/// as hashing arguments is the runtime's cost, not the store's).
struct Maker {
    task: TaskId,
    call: CallId,
    args: Vec<u8>,
}

impl Maker {
    fn new() -> Self {
        let task = TaskId::new("bench.noop");
        let args = vec![1u8, 7, 42, 0];
        Self {
            call: CallId::of(&task, &args),
            task,
            args,
        }
    }

    fn root(&self, id: InvocationId) -> NewInvocation {
        NewInvocation {
            id,
            task: self.task.clone(),
            call: self.call,
            args: self.args.clone(),
            identity: WorkflowIdentity::new_workflow(id, self.task.clone()),
            parent: None,
            not_before: None,
            max_recoveries: wf_store::DEFAULT_MAX_RECOVERIES,
        }
    }
}

fn now() -> Timestamp {
    Timestamp::from_system_time(SystemTime::now())
}

/// Runs round trips on `store` from thread number `thread` until `deadline` or `cap`. Any store:
/// the file store scenarios run the same loop.
pub(crate) fn round_trips<S: Store + ?Sized>(
    store: &S,
    thread: u64,
    deadline: Instant,
    cap: u64,
) -> Result<Run, String> {
    let maker = Maker::new();
    let tasks = TaskSet::new([maker.task.clone()]);
    let worker = WorkerId::new(format!("bench-{thread}"));
    let cap_usize = usize::try_from(cap).unwrap_or(usize::MAX);
    let mut run = Run {
        round_trips: 0,
        submit: Samples::with_capacity(cap_usize),
        claim: Samples::with_capacity(cap_usize),
        commit: Samples::with_capacity(cap_usize),
        round_trip: Samples::with_capacity(cap_usize),
    };
    let result = vec![0u8; 8];
    let mut t0 = Instant::now();
    while run.round_trips < cap && t0 < deadline {
        let id = InvocationId::from_u128((u128::from(thread) << 64) | u128::from(run.round_trips));
        store
            .submit(maker.root(id), now())
            .map_err(|e| format!("submit: {e}"))?;
        let t1 = Instant::now();
        // With several threads the claim may return another thread's invocation; every claim is
        // preceded by its own submit, so there is always one to claim.
        let claim = store
            .claim(&worker, &tasks, LEASE, now())
            .map_err(|e| format!("claim: {e}"))?
            .ok_or("claim found nothing right after a submit")?;
        let t2 = Instant::now();
        store
            .commit(
                &claim.lease,
                Commit::outcome(Outcome::Success(result.clone())),
                now(),
            )
            .map_err(|e| format!("commit: {e}"))?;
        let t3 = Instant::now();
        run.submit.push(t1 - t0);
        run.claim.push(t2 - t1);
        run.commit.push(t3 - t2);
        run.round_trip.push(t3 - t0);
        run.round_trips += 1;
        t0 = t3;
    }
    Ok(run)
}

/// Single-threaded round trips, with each operation's latency, then `config.threads` threads
/// sharing one store.
pub(crate) fn run(config: &Config, floors: &mut Floors) -> Result<Vec<Row>, String> {
    let cap = if config.quick {
        MAX_ROUND_TRIPS / 3
    } else {
        MAX_ROUND_TRIPS
    };
    // Warm-up: allocator, caches, page faults.
    round_trips(
        &MemoryStore::new(),
        0,
        Instant::now() + Duration::from_millis(50),
        20_000,
    )?;

    let mut rows = Vec::new();

    // One thread.
    let store = MemoryStore::new();
    let start = Instant::now();
    let one = round_trips(&store, 0, start + config.duration, cap)?;
    let elapsed = start.elapsed();
    drop(store);
    let rt = Row::measured(
        "memory: submit+claim+commit",
        1,
        one.round_trips,
        elapsed,
        one.round_trip.latency(),
    );
    floors.memory_round_trips_per_sec = rt.per_sec;
    rows.push(rt.with_note("the in-process floor"));
    let whole = one.round_trip.total().as_secs_f64();
    for (op, samples) in [
        ("submit", &one.submit),
        ("claim", &one.claim),
        ("commit", &one.commit),
    ] {
        // ops/s here is the rate this operation alone would reach: ops / time spent in it.
        let share = if whole > 0.0 {
            100.0 * samples.total().as_secs_f64() / whole
        } else {
            0.0
        };
        rows.push(
            Row::measured(
                format!("memory:   {op}"),
                1,
                one.round_trips,
                samples.total(),
                samples.latency(),
            )
            .with_note(format!("{share:.0}% of a round trip")),
        );
    }

    // N threads, one shared store.
    let threads = config.threads;
    let store = Arc::new(MemoryStore::new());
    let start = Instant::now();
    let deadline = start + config.duration;
    let per_thread = cap / threads as u64;
    let handles: Vec<_> = (0..threads as u64)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || round_trips(&*store, t, deadline, per_thread))
        })
        .collect();
    let mut total = 0;
    let mut samples = Samples::default();
    for h in handles {
        let run = h.join().map_err(|_| "a bench thread panicked")??;
        total += run.round_trips;
        samples.merge(run.round_trip);
    }
    let elapsed = start.elapsed();
    let row = Row::measured(
        "memory: submit+claim+commit",
        threads,
        total,
        elapsed,
        samples.latency(),
    );
    let note = Floors::ratio(row.per_sec, floors.memory_round_trips_per_sec, "1 thread");
    rows.push(row.with_note(format!("{note}; one store lock shared by all threads")));
    Ok(rows)
}

/// Runs [`round_trips`] on `threads` threads sharing `store` until `deadline`, `cap` round trips
/// in all, and returns each thread's run (the file and Redis scenarios).
pub(crate) fn round_trips_on_threads<S: Store + ?Sized>(
    store: &Arc<S>,
    threads: usize,
    deadline: Instant,
    cap: u64,
) -> Result<Vec<Run>, String> {
    let per_thread = (cap / threads as u64).max(1);
    let handles: Vec<_> = (0..threads as u64)
        .map(|t| {
            let store = Arc::clone(store);
            std::thread::spawn(move || round_trips(&*store, t, deadline, per_thread))
        })
        .collect();
    let mut runs = Vec::with_capacity(threads);
    let mut failure = None;
    for h in handles {
        match h.join() {
            Ok(Ok(run)) => runs.push(run),
            Ok(Err(e)) => failure = Some(e),
            Err(_) => failure = Some("a bench thread panicked".to_owned()),
        }
    }
    match failure {
        Some(e) => Err(format!("{threads} thread(s): {e}")),
        None => Ok(runs),
    }
}
