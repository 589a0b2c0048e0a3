//! `wf-sim`: runs simulation seeds (`cargo xtask sim` runs this).
//!
//! ```text
//! wf-sim --seeds N [--from S]     run seeds S..S+N (default S = 0), print a summary
//! wf-sim --seed S [--trace]       run one seed; --trace prints its step trace
//! --max-faults N, --max-workflows N  heavier histories (defaults 3 and 4: what CI runs);
//!                                    a failing seed replays only with the same values
//! --no-reorder                       torn crashes never leave holes (unwritten sectors)
//! --unpipelined                      the file store with FileOptions::pipelined_commits(false)
//!                                    (pipelined commits are the default; --pipelined is accepted
//!                                    and changes nothing)
//! --memory                           the checked run on the memory store (no disk faults; the
//!                                    zombie still stalls; results must equal the file store's)
//! --redis                            the checked run on a real redis-server (AOF, fsync always)
//!                                    through a fault-injecting proxy: cut connections, lost
//!                                    replies, outages, server restarts, process deaths; not
//!                                    bit-for-bit repeatable (the fault plan is)
//! --stress                           the corpus on Redis run by real worker threads of two
//!                                    apps, through the proxy (cuts, lost replies): not
//!                                    deterministic
//! ```
//! Exits with status 1 when a seed fails, after printing it and the command that replays it.

use std::process::ExitCode;
use std::time::Instant;

use wf_sim::proxy::ProxyCounts;
use wf_sim::simfs::SimCounts;
use wf_sim::{SimOptions, run_seed};

struct Args {
    from: u64,
    count: u64,
    trace: bool,
    keep_going: bool,
    options: SimOptions,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        from: 0,
        count: 100,
        trace: false,
        keep_going: false,
        options: SimOptions::default(),
    };
    let mut it = std::env::args().skip(1);
    let number = |v: Option<String>, flag: &str| -> Result<u64, String> {
        v.ok_or_else(|| format!("{flag} needs a number"))?
            .parse()
            .map_err(|e| format!("{flag}: {e}"))
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seeds" => args.count = number(it.next(), "--seeds")?,
            "--from" => args.from = number(it.next(), "--from")?,
            "--seed" => {
                args.from = number(it.next(), "--seed")?;
                args.count = 1;
            }
            "--trace" => args.trace = true,
            "--keep-going" => args.keep_going = true,
            "--no-reorder" => args.options.reorder = false,
            "--memory" => args.options.memory = true,
            "--redis" => args.options.redis = true,
            "--stress" => args.options.stress = true,
            "--pipelined" => args.options.pipelined = true,
            "--unpipelined" => args.options.pipelined = false,
            "--max-faults" => args.options.max_faults = number(it.next(), "--max-faults")?,
            "--max-workflows" => {
                args.options.max_workflows = number(it.next(), "--max-workflows")?;
            }
            other => {
                return Err(format!(
                    "unknown argument {other}; usage: wf-sim --seeds N [--from S] [--keep-going] | --seed S [--trace]; \
                     both take [--max-faults N] [--max-workflows N] [--no-reorder] [--unpipelined] [--memory | --redis | --stress]"
                ));
            }
        }
    }
    Ok(args)
}

fn add(total: &mut SimCounts, c: &SimCounts) {
    total.ops += c.ops;
    total.syncs += c.syncs;
    total.renames += c.renames;
    total.sync_eio += c.sync_eio;
    total.sync_enospc += c.sync_enospc;
    total.write_enospc += c.write_enospc;
    total.deaths += c.deaths;
    for i in 0..4 {
        total.crashes[i] += c.crashes[i];
    }
    total.bytes_lost += c.bytes_lost;
    total.dir_ops_lost += c.dir_ops_lost;
    total.holes += c.holes;
    total.holes_cut += c.holes_cut;
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    // Panics of the corpus's `boom` task are expected: keep them off the terminal.
    std::panic::set_hook(Box::new(|_| {}));
    let started = Instant::now();
    let mut total = SimCounts::default();
    let (mut net, mut deaths, mut unfired) = (ProxyCounts::default(), 0u64, 0u64);
    let (mut passed, mut failed, mut executions) = (0u64, Vec::new(), 0u64);
    let mut purged = 0u64;
    for seed in args.from..args.from.saturating_add(args.count) {
        match run_seed(seed, args.options) {
            Ok(report) => {
                if args.trace {
                    for line in &report.trace {
                        println!("{line}");
                    }
                }
                add(&mut total, &report.counts);
                if let Some(r) = &report.redis {
                    net.requests += r.proxy.requests;
                    net.cuts += r.proxy.cuts;
                    net.lost_replies += r.proxy.lost_replies;
                    net.outages += r.proxy.outages;
                    net.refused += r.proxy.refused;
                    net.restarts += r.proxy.restarts;
                    deaths += r.deaths;
                    unfired += r.unfired;
                }
                executions += report.executions;
                purged += report.purged;
                passed += 1;
            }
            Err(failure) => {
                if args.trace {
                    for line in &failure.trace {
                        println!("{line}");
                    }
                }
                println!("{failure}");
                failed.push(seed);
                if !args.keep_going {
                    break;
                }
            }
        }
    }
    if args.options.redis || args.options.stress {
        wf_sim::redis_sim::stop();
    }
    if args.options.redis || args.options.stress {
        println!(
            "sim {}: {passed} seed(s) passed, {} failed {:?} from seed {} in {:.1?}; faults: \
             {} cut connections, {} lost replies, {} outages ({} connections refused, among them \
             {} process deaths), {} server restarts; {} planned faults not reached; {} requests \
             through the proxy, {executions} body executions, {purged} invocations purged",
            if args.options.stress {
                "--stress"
            } else {
                "--redis"
            },
            failed.len(),
            failed,
            args.from,
            started.elapsed(),
            net.cuts,
            net.lost_replies,
            net.outages,
            net.refused,
            deaths,
            net.restarts,
            unfired,
            net.requests,
        );
        return if failed.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    println!(
        "sim: {passed} seed(s) passed, {} failed {:?} from seed {} in {:.1?}; faults: {} process \
         deaths, {} fsync EIO, {} fsync ENOSPC, {} write ENOSPC; crashes: {} process, {} power loss, {} torn, {} reordered ({} holes, {} cut as unsynced holes on open); {} \
         unsynced bytes and {} directory operations lost; {} fs operations, {} fsyncs, {} renames \
         (compactions), {} body executions, {purged} invocations purged",
        failed.len(),
        failed,
        args.from,
        started.elapsed(),
        total.deaths,
        total.sync_eio,
        total.sync_enospc,
        total.write_enospc,
        total.crashes[0],
        total.crashes[1],
        total.crashes[2],
        total.crashes[3],
        total.holes,
        total.holes_cut,
        total.bytes_lost,
        total.dir_ops_lost,
        total.ops,
        total.syncs,
        total.renames,
        executions
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
