//! The non-determinism matrix: a body whose code changed between executions is reported at the
//! exact journal position where it first asks for something else than was recorded, for every
//! kind of recorded operation replaced by every other kind, for a changed child (task or
//! arguments) and a changed data key. On memory and file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::apps;
use common::program::{End, Evolving, Program, Step, assert_diverged, run_to_end};

/// Old program `[start leaf(0), recorded]` fails once (so the invocation is retried); the
/// retry runs `[start leaf(0), asked]`: the divergence is at position 1.
fn check_replaced(recorded: Step, asked: Step) {
    for t in apps(|b| b) {
        let context = format!("{}: recorded {recorded:?}, asked {asked:?}", t.backend);
        let flow = Evolving::register(
            &t.app,
            "flow",
            Program::new(&[recorded], End::Fail),
            Program::new(&[asked], End::Return),
        );
        let (id, result) = run_to_end(&t.app, &flow.task);
        assert_diverged(
            &context,
            id,
            result,
            1,
            recorded.shows_as(),
            asked.shows_as(),
        );
    }
}

#[test]
fn every_recorded_kind_replaced_by_every_other_kind_is_reported_at_its_position() {
    for recorded in Step::KINDS {
        for asked in Step::KINDS {
            if recorded != asked {
                check_replaced(recorded, asked);
            }
        }
    }
}

#[test]
fn a_child_of_another_task_is_reported_at_its_position() {
    check_replaced(Step::Start, Step::StartOtherTask);
}

#[test]
fn a_child_with_other_arguments_is_reported_at_its_position() {
    check_replaced(Step::Start, Step::StartOtherArgs);
}

#[test]
fn a_read_of_another_key_is_reported_at_its_position() {
    check_replaced(Step::Data, Step::DataOtherKey);
}

/// The same program replays to success: the matrix's divergences come from the changes alone.
#[test]
fn an_unchanged_program_of_every_kind_replays_to_success() {
    for t in apps(|b| b) {
        let flow = Evolving::register(
            &t.app,
            "flow",
            Program::new(&Step::KINDS, End::Fail),
            Program::new(&Step::KINDS, End::Return),
        );
        let (_, result) = run_to_end(&t.app, &flow.task);
        assert_eq!(result.unwrap(), 0, "{}", t.backend);
    }
}

/// A body that swallows the divergence error and returns a value still fails with it: the first
/// divergence is kept, and nothing after it counts.
#[test]
fn a_swallowed_divergence_still_fails_the_invocation() {
    for t in apps(|b| b) {
        let app = &t.app;
        let leaf = common::program::Children::register(app).leaf;
        let flow = app
            .task_with(
                wf::TaskOptions::new("flow")
                    .max_retries(1)
                    .retry_backoff(wf::Backoff::none()),
                move |ctx: &wf::TaskContext, (): ()| -> Result<u32, wf::TaskError> {
                    let wf = ctx.wf();
                    if ctx.attempt() == 1 {
                        wf.random();
                        return Err(wf::TaskError::new("retry me"));
                    }
                    // The retry asks for a child where random() was recorded, and swallows it.
                    let swallowed = wf.start_task(&leaf, 1).is_err();
                    let later = wf.get_data::<u32>("k").is_err();
                    Ok(u32::from(swallowed) + u32::from(later))
                },
            )
            .unwrap();
        let (id, result) = run_to_end(app, &flow);
        assert_diverged(
            t.backend,
            id,
            result,
            0,
            "random()",
            "child start of task 'leaf'",
        );
        assert!(
            app.store().workflow_invocations(id).unwrap() == vec![id],
            "{}: the diverging execution started no child",
            t.backend
        );
    }
}
