//! Deterministic simulation of wf on the file store.
//!
//! - [`simfs`]: a simulated file system under the file store's
//!   [`FileSystem`](wf_store::file::fs::FileSystem) seam, which keeps synced and unsynced
//!   bytes (and directory entries) apart and, at a crash, keeps what a process crash, a power
//!   loss or a torn flush would keep; fsync failures are injectable.
//! - [`corpus`]: generated workflows (children, fan-out, sub-workflows, data, retries,
//!   failures, panics, timers, deterministic draws) run through the public runtime.
//! - [`ledger`]: notes what the store acknowledged, in the driver's memory; [`check`] finds
//!   it in a reopened store.
//! - [`zombie`]: a worker that stalls past its lease and commits late.
//! - [`purge`]: retention in some seeds: finished workflows purged between rounds, checked.
//! - [`proxy`]: a TCP proxy in front of a real `redis-server` that cuts connections, loses
//!   replies, has outages and restarts the server, at seed-chosen requests; [`redis_sim`]: the
//!   driver on Redis through it (`--redis`); [`stress`]: real worker threads of two apps on
//!   Redis through it (`--stress`, not deterministic).
//! - [`driver`]: one seed, one history: a fault-free reference run and a faulty run, checked.
//!
//! Run seeds with `cargo xtask sim --seeds N [--from S]`; replay one with its step trace with
//! `cargo xtask sim --seed S --trace`.

pub mod check;
pub mod corpus;
pub mod driver;
pub mod ledger;
pub mod proxy;
pub mod purge;
pub mod redis_sim;
pub mod rng;
pub mod simfs;
pub mod stress;
pub mod zombie;

pub use driver::{SeedFailure, SeedReport, SimOptions, run_seed};
