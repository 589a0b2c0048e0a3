//! A body that swallows its suspension is still suspended: whatever it returns (a value, an
//! error, a panic) does not count, nothing it does after the suspension point is committed, and
//! the context refuses further work in that execution. On memory and file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};

use common::program::Children;
use common::{PATIENCE, apps, journal_kinds};
use wf::core::OpKind;
use wf::prelude::*;

/// How the body carries on after swallowing its suspension.
#[derive(Clone, Copy, Debug)]
enum After {
    /// Returns `Ok(999)`.
    ReturnOk,
    /// Returns an error (the task allows retries: none may be spent).
    ReturnErr,
    /// Panics.
    Panic,
    /// Issues more operations, then returns `Ok(999)`.
    MoreOperations,
}

#[test]
fn a_swallowed_suspension_still_suspends_whatever_the_body_does_next() {
    for after in [
        After::ReturnOk,
        After::ReturnErr,
        After::Panic,
        After::MoreOperations,
    ] {
        for t in apps(|b| b) {
            let context = format!("{}: {after:?}", t.backend);
            let app = &t.app;
            let leaf = Children::register(app).leaf;
            // What the context answered after the suspension, per execution.
            let answers: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
            let seen = answers.clone();
            let flow = app
                .task_with(
                    TaskOptions::new("flow")
                        .max_retries(5)
                        .retry_backoff(Backoff::none()),
                    move |ctx: &TaskContext, (): ()| -> Result<u32, TaskError> {
                        let wf = ctx.wf();
                        let v = match wf.execute_task(&leaf, 21) {
                            Ok(v) => return Ok(v),
                            Err(WfError::Suspended { .. }) => 0,
                            Err(e) => return Err(e.into()),
                        };
                        match after {
                            After::ReturnOk => Ok(999 + v),
                            After::ReturnErr => Err(TaskError::new("swallowed, then failed")),
                            After::Panic => panic!("swallowed, then panicked"),
                            After::MoreOperations => {
                                wf.random();
                                wf.uuid();
                                wf.utc_now();
                                let mut said = Vec::new();
                                let mut note = |what: &str, r: Result<(), WfError>| {
                                    said.push(match r {
                                        Ok(()) => format!("{what}: ok"),
                                        Err(e) => format!("{what}: {e}"),
                                    })
                                };
                                note("set_data", wf.set_data("leaked", &1u8));
                                note("get_data", wf.get_data::<u8>("leaked").map(|_| ()));
                                note("start_task", wf.start_task(&leaf, 1).map(|_| ()));
                                note("execute_task", wf.execute_task(&leaf, 2).map(|_| ()));
                                seen.lock().unwrap().push(said);
                                Ok(999)
                            }
                        }
                    },
                )
                .unwrap();
            let inv = flow.call(app, ()).unwrap();
            app.run_until_idle().unwrap();
            assert_eq!(inv.result_timeout(PATIENCE).unwrap(), 42, "{context}");

            let store = app.store();
            let record = store.invocation(inv.id()).unwrap();
            assert_eq!(record.state.retries, 0, "{context}: no retry was spent");
            // Only the child start before the suspension and the child's result were recorded.
            let kinds: Vec<OpKind> = journal_kinds(app, inv.id());
            assert_eq!(
                kinds,
                [OpKind::ChildStart, OpKind::ChildResult],
                "{context}"
            );
            assert_eq!(
                store.workflow_invocations(inv.id()).unwrap().len(),
                2,
                "{context}: no child started after the suspension"
            );
            assert!(
                store.data_keys(inv.id()).unwrap().is_empty(),
                "{context}: no data written after the suspension"
            );
            for said in answers.lock().unwrap().iter() {
                for answer in said {
                    assert!(
                        answer.contains("suspended"),
                        "{context}: after its suspension the context does no more work: {answer}"
                    );
                }
            }
        }
    }
}
