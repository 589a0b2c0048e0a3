//! A retry replays everything the failed attempt recorded — not only `random` and `uuid`, which
//! are derived from the invocation id and position and would come out the same anyway, but
//! `utc_now` and `get_data`, which a retry that lost the journal would read afresh. On every
//! backend.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{PATIENCE, apps};
use wf::prelude::*;

/// What one attempt saw: (attempt, utc_now in ms, the data value it read).
type Seen = Arc<Mutex<Vec<(u32, i128, Option<u32>)>>>;

fn register(app: &App, seen: Seen) -> Task<(), (i128, Option<u32>)> {
    let options = TaskOptions::new("stamp")
        .max_retries(1)
        .retry_backoff(Duration::from_secs(5));
    app.task_with(
        options,
        move |ctx: &TaskContext, (): ()| -> Result<(i128, Option<u32>), TaskError> {
            let wf = ctx.wf();
            let now = wf.utc_now().unix_timestamp_nanos() / 1_000_000;
            let value: Option<u32> = wf.get_data("k")?;
            seen.lock().unwrap().push((ctx.attempt(), now, value));
            if ctx.attempt() == 1 {
                // Kept with the failed attempt: a retry that read afresh would see it.
                wf.set_data("k", &7u32)?;
                return Err(TaskError::new("the first attempt fails"));
            }
            Ok((now, value))
        },
    )
    .unwrap()
}

#[test]
fn a_retry_replays_the_recorded_time_and_data_reads() {
    for t in apps(|b| b) {
        let seen: Seen = Arc::default();
        let stamp = register(&t.app, seen.clone());
        let inv = stamp.call(&t.app, ()).unwrap();
        // Virtual time: the retry runs at its not-before, 5 s after the first attempt.
        t.app.run_until_idle().unwrap();
        let (now, value) = inv.result_timeout(PATIENCE).unwrap();
        let seen = seen.lock().unwrap().clone();
        assert_eq!(
            seen.len(),
            2,
            "{}: one failed attempt, one retry: {seen:?}",
            t.backend
        );
        let (first, second) = (seen[0], seen[1]);
        assert_eq!((first.0, second.0), (1, 2), "{}", t.backend);
        assert_eq!(
            second.1, first.1,
            "{}: the retry replays the first attempt's utc_now",
            t.backend
        );
        assert_eq!(
            second.2, None,
            "{}: the retry replays the first attempt's get_data (None), not the value it wrote after",
            t.backend
        );
        assert_eq!((now, value), (first.1, None), "{}", t.backend);
        assert_eq!(
            t.app.store().get_data(inv.id(), "k").unwrap(),
            Some(wf::core::codec::encode(&7u32).unwrap()),
            "{}: the failed attempt's write was kept",
            t.backend
        );
    }
}

/// What one attempt saw of its place in the journal: (attempt, [(is_replaying, position)]) at
/// its start, after `utc_now` and after `get_data`.
type Places = Arc<Mutex<Vec<(u32, Vec<(bool, u32)>)>>>;

/// A body knows where it is: the first attempt runs live from position 0; its retry starts
/// replaying at position 0 and counts the recorded steps as it replays them.
#[test]
fn a_retry_knows_it_replays_and_where() {
    for t in apps(|b| b) {
        let places: Places = Arc::default();
        let p = places.clone();
        let options = TaskOptions::new("places")
            .max_retries(1)
            .retry_backoff(Duration::from_secs(5));
        let task = t
            .app
            .task_with(
                options,
                move |ctx: &TaskContext, (): ()| -> Result<u32, TaskError> {
                    let wf = ctx.wf();
                    let mut seen = vec![(wf.is_replaying(), wf.position())];
                    wf.utc_now();
                    seen.push((wf.is_replaying(), wf.position()));
                    let _: Option<u32> = wf.get_data("k")?;
                    seen.push((wf.is_replaying(), wf.position()));
                    p.lock().unwrap().push((ctx.attempt(), seen));
                    if ctx.attempt() == 1 {
                        return Err(TaskError::new("the first attempt fails"));
                    }
                    Ok(ctx.attempt())
                },
            )
            .unwrap();
        let inv = task.call(&t.app, ()).unwrap();
        t.app.run_until_idle().unwrap();
        assert_eq!(inv.result_timeout(PATIENCE).unwrap(), 2, "{}", t.backend);
        let places = places.lock().unwrap().clone();
        assert_eq!(
            places,
            vec![
                (1, vec![(false, 0), (false, 1), (false, 2)]),
                (2, vec![(true, 0), (true, 1), (false, 2)]),
            ],
            "{}: (attempt, [(is_replaying, position)] at start, after utc_now, after get_data)",
            t.backend
        );
    }
}
