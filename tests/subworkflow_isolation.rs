//! A sub-workflow (`force_new_workflow`) is isolated from the workflow that started it: its
//! journal is its own, its data is its own, and handles do not cross between them. On memory
//! and file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};

use common::program::Children;
use common::{PATIENCE, apps, journal_kinds};
use wf::core::OpKind;
use wf::prelude::*;

#[test]
fn a_sub_workflow_keeps_its_own_journal_and_data() {
    for t in apps(|b| b) {
        let app = &t.app;
        let sub = app
            .task_with(
                TaskOptions::new("sub").force_new_workflow(true),
                |ctx: &TaskContext, (): ()| -> Result<(Option<String>, u64), TaskError> {
                    let wf = ctx.wf();
                    let parent_value: Option<String> = wf.get_data("owner")?;
                    wf.set_data("owner", "sub")?;
                    Ok((parent_value, wf.random().to_bits()))
                },
            )
            .unwrap();
        let top = app
            .task(
                "top",
                move |ctx: &TaskContext,
                      (): ()|
                      -> Result<(Option<String>, Option<String>), TaskError> {
                    let wf = ctx.wf();
                    wf.set_data("owner", "top")?;
                    let h = wf.start_task(&sub, ())?;
                    let (seen_by_sub, _) = wf.join(&h)?;
                    Ok((seen_by_sub, wf.get_data("owner")?))
                },
            )
            .unwrap();
        let inv = top.call(app, ()).unwrap();
        app.run_until_idle().unwrap();
        let (seen_by_sub, seen_by_top) = inv.result_timeout(PATIENCE).unwrap();
        assert_eq!(
            seen_by_sub, None,
            "{}: the sub-workflow does not read its parent's data",
            t.backend
        );
        assert_eq!(
            seen_by_top.as_deref(),
            Some("top"),
            "{}: nor write it",
            t.backend
        );

        let store = app.store();
        let members = store.workflow_invocations(inv.id()).unwrap();
        assert_eq!(members, vec![inv.id()], "{}", t.backend);
        let top_kinds: Vec<OpKind> = journal_kinds(app, inv.id());
        assert_eq!(
            top_kinds,
            [OpKind::ChildStart, OpKind::ChildResult, OpKind::DataGet],
            "{}: the sub-workflow's reads and draws are in its own journal",
            t.backend
        );
        let sub_id = match &store.journal(inv.id()).unwrap()[0].op {
            wf::core::Op::ChildStart { child, .. } => *child,
            other => panic!("{other:?}"),
        };
        let sub_kinds: Vec<OpKind> = journal_kinds(app, sub_id);
        assert_eq!(
            sub_kinds,
            [OpKind::DataGet, OpKind::Random],
            "{}",
            t.backend
        );
        assert_eq!(store.data_keys(sub_id).unwrap(), vec!["owner".to_owned()]);
        let sub_value: String =
            wf::core::decode(&store.get_data(sub_id, "owner").unwrap().unwrap()).unwrap();
        assert_eq!(sub_value, "sub");
    }
}

/// A handle created in a sub-workflow cannot be joined by its parent, nor the other way round.
#[test]
fn handles_do_not_cross_between_a_workflow_and_its_sub_workflow() {
    for t in apps(|b| b) {
        let app = &t.app;
        let leaf = Children::register(app).leaf;
        // The sub-workflow's handle, handed up; the parent's handle, handed down.
        let up: Arc<Mutex<Option<ChildHandle<u32>>>> = Arc::default();
        let down: Arc<Mutex<Option<ChildHandle<u32>>>> = Arc::default();
        let (sub_up, sub_down, l) = (up.clone(), down.clone(), leaf.clone());
        let sub = app
            .task_with(
                TaskOptions::new("sub").force_new_workflow(true),
                move |ctx: &TaskContext, (): ()| -> Result<String, TaskError> {
                    let wf = ctx.wf();
                    let mine = wf.start_task(&l, 1)?;
                    wf.join(&mine)?;
                    let parents = sub_down
                        .lock()
                        .unwrap()
                        .take()
                        .expect("the parent's handle");
                    let answer = match wf.join(parents) {
                        Ok(v) => format!("joined the parent's child: {v}"),
                        Err(e) => format!("refused: {e}"),
                    };
                    *sub_up.lock().unwrap() = Some(mine);
                    Ok(answer)
                },
            )
            .unwrap();
        let (top_up, top_down) = (up.clone(), down.clone());
        let top = app
            .task(
                "top",
                move |ctx: &TaskContext, (): ()| -> Result<(String, String), TaskError> {
                    let wf = ctx.wf();
                    let mine = wf.start_task(&leaf, 2)?;
                    wf.join(&mine)?;
                    *top_down.lock().unwrap() = Some(mine);
                    let in_sub = wf.execute_task(&sub, ())?;
                    let subs = top_up
                        .lock()
                        .unwrap()
                        .take()
                        .expect("the sub-workflow's handle");
                    let in_top = match wf.join(subs) {
                        Ok(v) => format!("joined the sub-workflow's child: {v}"),
                        Err(e) => format!("refused: {e}"),
                    };
                    Ok((in_sub, in_top))
                },
            )
            .unwrap();
        let inv = top.call(app, ()).unwrap();
        app.run_until_idle().unwrap();
        let (in_sub, in_top) = inv.result_timeout(PATIENCE).unwrap();
        assert!(in_sub.starts_with("refused"), "{}: {in_sub}", t.backend);
        assert!(in_top.starts_with("refused"), "{}: {in_top}", t.backend);
    }
}
