//! Quick start: a workflow with a durable child task, run by a background worker.
//!
//! ```text
//! cargo run --example quickstart
//! ```

use wf::prelude::*;

fn main() -> Result<(), WfError> {
    // An app whose state lives in a directory: it survives crashes and restarts.
    let dir = std::env::temp_dir().join(format!("wf-quickstart-{}", std::process::id()));
    let app = App::builder().app_id("quickstart").file(&dir).build()?;

    // A plain task.
    let greet = app.task(
        "greet",
        |_ctx: &TaskContext, name: String| -> Result<String, TaskError> {
            Ok(format!("Hello, {name}!"))
        },
    )?;

    // A workflow: its deterministic values and child results are recorded, so a re-run after a
    // crash or a retry replays them instead of doing them again.
    let welcome = app.task(
        "welcome",
        move |ctx: &TaskContext, name: String| -> Result<String, TaskError> {
            let wf = ctx.wf();
            let ticket = wf.uuid(); // the same on every replay
            wf.set_data("ticket", &ticket)?; // workflow data, written by the workflow's root
            let greeting = wf.execute_task(&greet, name)?; // runs once, even across crashes
            Ok(format!("{greeting} Your ticket is {ticket}."))
        },
    )?;

    let worker = app.worker().threads(2).start()?;
    let invocation = welcome.call(&app, "Ada".to_string())?;
    println!("{}", invocation.result()?);
    worker.stop();

    drop(app);
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
