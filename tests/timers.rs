//! Durable time end to end, on every backend: `sleep` suspends without holding a worker and
//! wakes at its time, a replay after it fired returns at once, delayed calls, and deadlines on
//! joins and event waits whose outcome is journaled so that replays agree.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{Gate, PATIENCE, journal_kinds, steering_apps, until_waiting};
use wf::core::OpKind;
use wf::prelude::*;

/// A sleep suspends the body: its worker is free meanwhile (a one-thread worker runs other
/// work), the invocation waits with its wake time stored, and the body goes on after the time,
/// with the journaled clock showing that the time has passed.
#[test]
fn a_sleep_holds_no_worker_and_wakes_at_its_time() {
    for t in steering_apps(|b| b) {
        let app = &t.app;
        let nap = app
            .task(
                "nap",
                |ctx: &TaskContext, ms: u64| -> Result<i128, TaskError> {
                    let wf = ctx.wf();
                    let before = wf.utc_now();
                    wf.sleep(Duration::from_millis(ms))?;
                    Ok((wf.utc_now() - before).whole_milliseconds())
                },
            )
            .unwrap();
        let quick = app
            .task(
                "quick",
                |_: &TaskContext, n: u32| -> Result<u32, TaskError> { Ok(n + 1) },
            )
            .unwrap();
        let worker = app.worker().threads(1).start().unwrap();
        let long = nap.call(app, 60_000).unwrap();
        until_waiting(app, long.id());
        let record = long.record().unwrap();
        let wake = record.state.not_before.expect("the wake time is stored");
        assert!(
            record.state.lease.is_none(),
            "{}: no worker held",
            t.backend
        );
        assert!(
            long.progress().unwrap().contains("timer"),
            "{}: {}",
            t.backend,
            long.progress().unwrap()
        );
        // The only worker thread is free: other work runs while the sleeper waits.
        assert_eq!(
            quick
                .call(app, 1)
                .unwrap()
                .result_timeout(PATIENCE)
                .unwrap(),
            2
        );

        let short = nap.call(app, 300).unwrap();
        let slept = short.result_timeout(PATIENCE).unwrap();
        assert!(slept >= 300, "{}: slept {slept} ms, asked 300", t.backend);
        assert_eq!(
            short.record().unwrap().state.attempts,
            2,
            "one suspension, one wake-up"
        );
        assert_eq!(
            journal_kinds(app, short.id()),
            [
                OpKind::Time,
                OpKind::Timer,
                OpKind::TimerFired,
                OpKind::Time
            ]
        );
        assert_eq!(long.status().unwrap(), Status::Waiting, "{}", t.backend);
        assert_eq!(long.record().unwrap().state.not_before, Some(wake));
        worker.stop();
    }
}

/// `run_until_idle` skips sleeps with its virtual clock: a day-long sleep finishes at once, and
/// the body sees the day pass.
#[test]
fn run_until_idle_skips_a_day_long_sleep() {
    for t in steering_apps(|b| b) {
        let app = &t.app;
        let nap = app
            .task(
                "nap",
                |ctx: &TaskContext, (): ()| -> Result<i64, TaskError> {
                    let wf = ctx.wf();
                    let before = wf.utc_now();
                    wf.sleep(Duration::from_secs(24 * 3600))?;
                    Ok((wf.utc_now() - before).whole_hours())
                },
            )
            .unwrap();
        let inv = nap.call(app, ()).unwrap();
        assert_eq!(app.run_until_idle().unwrap(), 2, "{}", t.backend);
        assert_eq!(inv.result().unwrap(), 24, "{}", t.backend);
    }
}

/// Once the timer has fired, a replay (here after a child the body starts later finishes)
/// returns from the sleep at once: no second wait, no new timer.
#[test]
fn a_replay_after_the_timer_fired_returns_at_once() {
    // The replay after the leaf needs the leaf claimed by a worker, not run inline.
    for t in steering_apps(|b| b.inline_children(false)) {
        let app = &t.app;
        let runs = Arc::new(AtomicU32::new(0));
        let leaf = app
            .task(
                "leaf",
                |_: &TaskContext, n: u32| -> Result<u32, TaskError> { Ok(n * 2) },
            )
            .unwrap();
        let r = runs.clone();
        let flow = app
            .task(
                "flow",
                move |ctx: &TaskContext, (): ()| -> Result<u32, TaskError> {
                    r.fetch_add(1, Ordering::SeqCst);
                    let wf = ctx.wf();
                    wf.sleep(Duration::from_secs(3600))?;
                    Ok(wf.execute_task(&leaf, 21)?)
                },
            )
            .unwrap();
        let inv = flow.call(app, ()).unwrap();
        // flow (sleeps), flow (wakes, starts leaf), leaf, flow (replays the sleep: returns).
        assert_eq!(app.run_until_idle().unwrap(), 4, "{}", t.backend);
        assert_eq!(inv.result().unwrap(), 42);
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        assert_eq!(
            journal_kinds(app, inv.id()),
            [
                OpKind::Timer,
                OpKind::TimerFired,
                OpKind::ChildStart,
                OpKind::ChildResult
            ]
        );
    }
}

/// `sleep_until` a time in the past returns at once; `call_after` and `call_at` start an
/// invocation no sooner than asked.
#[test]
fn sleep_until_and_delayed_calls() {
    for t in steering_apps(|b| b) {
        let app = &t.app;
        let stamp = app
            .task(
                "stamp",
                |ctx: &TaskContext, (): ()| -> Result<i128, TaskError> {
                    let wf = ctx.wf();
                    wf.sleep_until(wf::time::OffsetDateTime::UNIX_EPOCH)?;
                    Ok(wf.utc_now().unix_timestamp_nanos() / 1_000_000)
                },
            )
            .unwrap();
        let now_ms = || wf::time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        let worker = app.worker().threads(2).start().unwrap();
        let called = now_ms();
        let later = stamp
            .call_after(app, Duration::from_millis(300), ())
            .unwrap();
        let at = wf::time::OffsetDateTime::now_utc() + Duration::from_millis(200);
        let at_ms = at.unix_timestamp_nanos() / 1_000_000;
        let scheduled = stamp.call_at(app, at, ()).unwrap();
        let ran = later.result_timeout(PATIENCE).unwrap();
        assert!(
            ran >= called + 300,
            "{}: ran at {ran}, called at {called}",
            t.backend
        );
        assert!(scheduled.result_timeout(PATIENCE).unwrap() >= at_ms);
        assert_eq!(
            journal_kinds(app, later.id()),
            [OpKind::Timer, OpKind::TimerFired, OpKind::Time],
            "a past time fires at once"
        );
        worker.stop();
    }
}

/// A join with a deadline that passes first returns `TimedOut`, journaled: the body handles it,
/// joins the same child again without a deadline, and the replay after the child finished still
/// sees the timeout at its position (it does not decide the race again). A child that finishes
/// first wins the race.
#[test]
fn join_timeout_races_are_journaled() {
    for t in steering_apps(|b| b) {
        let app = &t.app;
        let gate = Gate::default();
        let g = gate.clone();
        let slow = app
            .task(
                "slow",
                move |_: &TaskContext, n: u32| -> Result<u32, TaskError> {
                    g.wait();
                    Ok(n)
                },
            )
            .unwrap();
        let fast = app
            .task(
                "fast",
                |_: &TaskContext, n: u32| -> Result<u32, TaskError> { Ok(n) },
            )
            .unwrap();
        let flow = app
            .task(
                "flow",
                move |ctx: &TaskContext, (): ()| -> Result<String, TaskError> {
                    let wf = ctx.wf();
                    let quick = wf.execute_task_timeout(&fast, 1, Duration::from_secs(3600))?;
                    let h = wf.start_task(&slow, 7)?;
                    match wf.join_timeout(&h, Duration::from_millis(200)) {
                        Err(WfError::TimedOut { waiting_for, .. }) => {
                            let late = wf.join(&h)?;
                            Ok(format!("{quick}; timed out on {waiting_for}; then {late}"))
                        }
                        other => Ok(format!("unexpected: {other:?}")),
                    }
                },
            )
            .unwrap();
        let worker = app.worker().threads(2).start().unwrap();
        let inv = flow.call(app, ()).unwrap();
        common::eventually("the flow timed out and waits for the slow child", || {
            journal_kinds(app, inv.id()).contains(&OpKind::TimerFired)
                && inv.status().unwrap() == Status::Waiting
        });
        gate.open();
        assert_eq!(
            inv.result_timeout(PATIENCE).unwrap(),
            "1; timed out on 1 child invocation(s); then 7",
            "{}",
            t.backend
        );
        assert_eq!(
            journal_kinds(app, inv.id()),
            [
                OpKind::ChildStart,
                OpKind::Timer,
                OpKind::ChildResult, // fast won its race
                OpKind::ChildStart,
                OpKind::Timer,
                OpKind::TimerFired, // slow lost its race, and every replay agrees
                OpKind::ChildResult,
            ]
        );
        worker.stop();
    }
}

/// `wait_event_timeout`: the event in time gives its payload; none in time gives `TimedOut`.
#[test]
fn wait_event_timeout_gives_the_event_or_a_timeout() {
    for t in steering_apps(|b| b) {
        let app = &t.app;
        let ask = app
            .task(
                "ask",
                |ctx: &TaskContext, ms: u64| -> Result<String, TaskError> {
                    match ctx
                        .wf()
                        .wait_event_timeout::<String>("answer", Duration::from_millis(ms))
                    {
                        Ok(answer) => Ok(answer),
                        Err(WfError::TimedOut { waiting_for, .. }) => {
                            Ok(format!("no {waiting_for}"))
                        }
                        Err(e) => Err(e.into()),
                    }
                },
            )
            .unwrap();
        let worker = app.worker().threads(1).start().unwrap();
        let unanswered = ask.call(app, 200).unwrap();
        assert_eq!(
            unanswered.result_timeout(PATIENCE).unwrap(),
            "no event 'answer'",
            "{}",
            t.backend
        );
        let answered = ask.call(app, 60_000).unwrap();
        until_waiting(app, answered.id());
        app.send_event(answered.id(), "answer", "42").unwrap();
        assert_eq!(answered.result_timeout(PATIENCE).unwrap(), "42");
        assert_eq!(
            journal_kinds(app, answered.id()),
            [OpKind::Timer, OpKind::Event]
        );
        worker.stop();
    }
}
