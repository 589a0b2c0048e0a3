//! What happens to `set_data` writes of an attempt that fails: they are kept, committed with
//! that attempt's journal and children (the documented behaviour, `wf::guide::workflows`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::apps;
use wf::prelude::*;

#[test]
fn a_failed_attempts_data_writes_are_kept_for_the_retry_and_the_workflow() {
    for t in apps(|b| b) {
        let app = &t.app;
        let read = app
            .task(
                "read",
                |ctx: &TaskContext, key: String| -> Result<Option<u32>, TaskError> {
                    Ok(ctx.wf().get_data(&key)?)
                },
            )
            .unwrap();
        let root = app
            .task_with(
                TaskOptions::new("root").max_retries(1),
                move |ctx: &TaskContext, (): ()| -> Result<Option<u32>, TaskError> {
                    let wf = ctx.wf();
                    if ctx.attempt() == 1 {
                        wf.set_data("written_by_attempt", &1u32)?;
                        return Err(TaskError::new("the first attempt fails after writing"));
                    }
                    // The second attempt writes nothing; a child reads what is stored.
                    Ok(wf.execute_task(&read, "written_by_attempt".to_string())?)
                },
            )
            .unwrap();
        let inv = root.call(app, ()).unwrap();
        app.run_until_idle().unwrap();
        assert_eq!(inv.result().unwrap(), Some(1), "{}", t.backend);
    }
}

#[test]
fn a_finally_failed_invocations_data_writes_are_kept() {
    for t in apps(|b| b) {
        let app = &t.app;
        let root = app
            .task(
                "root",
                |ctx: &TaskContext, (): ()| -> Result<(), TaskError> {
                    ctx.wf().set_data("progress", "charged")?;
                    Err(TaskError::new("shipping failed").permanent())
                },
            )
            .unwrap();
        let inv = root.call(app, ()).unwrap();
        app.run_until_idle().unwrap();
        assert!(matches!(inv.result(), Err(WfError::Failed { .. })));
        let stored = app.store().get_data(inv.id(), "progress").unwrap();
        let stored: Option<String> = stored.map(|b| wf::core::decode(&b).unwrap());
        assert_eq!(stored.as_deref(), Some("charged"), "{}", t.backend);
    }
}
