//! The stress mode (`--stress`): a seed's corpus on Redis run by real worker threads of two
//! apps (two "processes" on one namespace) on the real clock, through the fault proxy, which
//! cuts connections and loses replies at seed-chosen requests. Not deterministic at all (thread
//! scheduling decides which worker runs what); it finds what only concurrency shows. Checked:
//! acknowledgements survive, no body runs after its acknowledged final outcome, journals
//! replay, everything ends final within a bound, results equal the file store's fault-free run,
//! and a cancelled workflow ends `Cancelled`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wf_core::{InvocationId, Status};
use wf_runtime::testing::replay_check;
use wf_runtime::{App, WfError, Worker};
use wf_store::RedisStore;
use wf_store::redis::testing::unique_namespace;

use crate::corpus::{self, Program, Watch};
use crate::driver::{SeedFailure, SeedReport, SimOptions};
use crate::ledger::{Acks, Ledger, SharedAcks};
use crate::proxy::{Proxy, ProxyCounts, ProxyFault};
use crate::redis_sim::{RedisReport, shared};
use crate::rng::SimRng;
use crate::{check, purge::Ended};

/// How long a stress run may take before what is not final counts as stuck.
const BOUND: Duration = Duration::from_secs(120);

/// Worker threads per app.
const THREADS: usize = 2;

/// What a stress run found (empty when it passed) and did.
#[derive(Debug, Default)]
pub struct Stress {
    /// Violations.
    pub violations: Vec<String>,
    /// Body executions.
    pub executions: u64,
    /// What the proxy did (cuts and lost replies).
    pub proxy: ProxyCounts,
}

/// Runs `programs` under stress and compares with `reference`.
pub fn run(seed: u64, programs: &[Program], reference: &[Ended]) -> Stress {
    let mut out = Stress::default();
    let proxy = match shared() {
        Ok(p) => p,
        Err(e) => {
            out.violations.push(e);
            return out;
        }
    };
    proxy.disarm();
    let before = proxy.counts();
    let mut rng = SimRng::new(seed ^ 0x57e5_5000);
    let mut at = before.requests;
    for _ in 0..rng.range(1, 4) {
        at += rng.range(1, 60);
        let fault = if rng.chance(50) {
            ProxyFault::Cut
        } else {
            ProxyFault::LostReply
        };
        proxy.arm_at(at, fault);
    }
    let acks = SharedAcks::new(Mutex::new(Acks::default()));
    let watch = Arc::new(Watch::default());
    let ns = unique_namespace(&format!("stress{seed}"));
    let result = stress(&proxy, &ns, programs, &acks, &watch);
    proxy.disarm();
    let after = proxy.counts();
    out.proxy = ProxyCounts {
        requests: after.requests - before.requests,
        cuts: after.cuts - before.cuts,
        lost_replies: after.lost_replies - before.lost_replies,
        ..ProxyCounts::default()
    };
    out.executions = watch.executions.load(std::sync::atomic::Ordering::SeqCst);
    match result {
        Ok((results, found)) => {
            out.violations.extend(found);
            if out.violations.is_empty() && results != reference {
                out.violations.push(format!(
                    "results differ from the fault-free run: {results:?} != {reference:?}"
                ));
            }
        }
        Err(e) => out.violations.push(format!("the stress run failed: {e}")),
    }
    let inside = watch
        .violations
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    out.violations.extend(inside);
    if let Err(e) = proxy.flush_all() {
        out.violations
            .push(format!("the harness could not empty redis-server: {e}"));
    }
    out
}

fn open(
    proxy: &Proxy,
    ns: &str,
    acks: &SharedAcks,
    watch: &Arc<Watch>,
) -> Result<(App, corpus::Tasks, Worker), WfError> {
    let store = RedisStore::open(&proxy.url(&format!("ns={ns}")))?;
    let app = App::builder()
        .app_id("stress")
        .store(Arc::new(Ledger::new(store, acks.clone()).cancels_race()))
        .build()?;
    let tasks = corpus::register(&app, watch, acks)?;
    let worker = app.worker().threads(THREADS).start()?;
    Ok((app, tasks, worker))
}

type Found = (Vec<Ended>, Vec<String>);

fn stress(
    proxy: &Proxy,
    ns: &str,
    programs: &[Program],
    acks: &SharedAcks,
    watch: &Arc<Watch>,
) -> Result<Found, WfError> {
    let (a, tasks, wa) = open(proxy, ns, acks, watch)?;
    let (b, _, wb) = open(proxy, ns, acks, watch)?;
    let deadline = Instant::now() + BOUND;
    let mut ids: Vec<Option<InvocationId>> = Vec::new();
    for (k, p) in programs.iter().enumerate() {
        let inv = tasks.flow.call_keyed(&a, &format!("w{k}"), p.clone())?;
        ids.push(Some(inv.id()));
    }
    let mut sent = vec![0usize; programs.len()];
    crate::driver::send_events(&b, programs, &ids, &mut sent)?;
    let mut found = Vec::new();
    // The others first; then the hanging ones are cancelled.
    for hanging in [false, true] {
        for (p, id) in programs.iter().zip(&ids) {
            let Some(id) = id else { continue };
            if p.hangs() != hanging {
                continue;
            }
            if hanging {
                a.cancel_because(*id, "stress: cancelled while hanging")?;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if a.store().wait_final(*id, left)?.is_none() {
                found.push(format!("{id} is not final after {BOUND:?}"));
            }
        }
    }
    wa.stop();
    wb.stop();
    found.extend(check::acknowledged(&**a.store(), acks));
    watch
        .checking
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let report = replay_check(&a, a.store());
    watch
        .checking
        .store(false, std::sync::atomic::Ordering::SeqCst);
    match report {
        Ok(r) if r.is_ok() => {}
        Ok(r) => found.push(format!("{r}")),
        Err(e) => found.push(format!("replay check failed: {e}")),
    }
    let mut results = Vec::new();
    for (k, id) in ids.iter().flatten().enumerate() {
        let r = a.store().invocation(*id)?;
        if programs[k].hangs() && r.state.status != Status::Cancelled {
            found.push(format!("w{k} was cancelled but ended {:?}", r.state.status));
        }
        results.push((r.state.status, r.state.result.clone()));
    }
    drop(b);
    Ok((results, found))
}

/// A `--stress` seed: the stress run, as a seed's report or failure.
pub(crate) fn seed(
    seed: u64,
    programs: &[Program],
    reference: &[Ended],
    options: SimOptions,
) -> Result<SeedReport, SeedFailure> {
    let n = programs.len();
    let found = run(seed, programs, reference);
    let header = format!("seed {seed}: {n} workflow(s) {programs:?}");
    if found.violations.is_empty() {
        return Ok(SeedReport {
            seed,
            workflows: n,
            executions: found.executions,
            trace: vec![header],
            redis: Some(RedisReport {
                proxy: found.proxy,
                ..RedisReport::default()
            }),
            ..SeedReport::default()
        });
    }
    Err(SeedFailure {
        seed,
        violations: found
            .violations
            .into_iter()
            .map(|v| format!("stress run: {v}"))
            .collect(),
        trace: vec![header],
        options,
    })
}
