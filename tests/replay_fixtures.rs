//! Replay fixtures: journals recorded by this test and checked in under `tests/fixtures/replay/`,
//! each with the changed code that must diverge from it and the exact position expected.
//!
//! For every fixture the test
//! 1. runs the *original* body (at a fixed invocation id, so the journal is reproducible) and
//!    checks that it records exactly the checked-in journal — a fixture that no longer matches
//!    what the code records fails loudly, with how to re-record it;
//! 2. plants the checked-in journal in a fresh store (memory and file) and replays the original
//!    body over it: it finishes, so the journal is consistent;
//! 3. plants it again and runs the *changed* body: it fails with `NonDeterminism` at the
//!    fixture's position, naming the recorded entry there and what the changed code asked.
//!
//! Re-record after an intended change of what bodies record (review the diff of the files):
//!
//! ```text
//! WF_RECORD_FIXTURES=1 cargo test --test replay_fixtures
//! ```
//!
//! The bodies avoid `utc_now()` in what they record, so recordings are exact.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::apps;
use common::program::Children;
use wf::core::{CallId, JournalEntry, TaskId, WorkerId, encode};
use wf::prelude::*;
use wf::store::{Commit, NewInvocation, Outcome, TaskSet};

/// A body under test: what a task body does with its workflow context.
type Body = fn(&WorkflowContext, &Children) -> Result<u32, WfError>;

/// A recorded journal and the change that must diverge from it.
struct Fixture {
    /// The file under `tests/fixtures/replay/`, without `.json`.
    name: &'static str,
    /// The root invocation's id when recorded (child ids and draws derive from it).
    invocation: u128,
    original: Body,
    changed: Body,
    /// Where the changed body diverges.
    position: u32,
    /// How the journal names the entry at `position` (a prefix).
    recorded: &'static str,
    /// What the changed body asks for there (a part).
    requested: &'static str,
}

/// Two draws swapped.
///
/// ```text
/// original                            changed
/// wf.random();                        wf.uuid();                     // position 0 diverges
/// wf.uuid();                          wf.random();
/// wf.execute_task(&leaf, 1)           wf.execute_task(&leaf, 1)
/// ```
fn swapped_draws() -> Fixture {
    Fixture {
        name: "swapped_draws",
        invocation: 0x5eed_0001,
        original: |wf, c| {
            wf.random();
            wf.uuid();
            wf.execute_task(&c.leaf, 1)
        },
        changed: |wf, c| {
            wf.uuid();
            wf.random();
            wf.execute_task(&c.leaf, 1)
        },
        position: 0,
        recorded: "random()",
        requested: "uuid()",
    }
}

/// A child call removed: the changed body stops short of a recorded child.
///
/// ```text
/// original                            changed
/// wf.random();                        wf.random();
/// wf.uuid();                          wf.uuid();
/// wf.execute_task(&leaf, 1)           Ok(0)                          // position 2 skipped
/// ```
fn removed_child_call() -> Fixture {
    Fixture {
        name: "removed_child_call",
        invocation: 0x5eed_0002,
        original: |wf, c| {
            wf.random();
            wf.uuid();
            wf.execute_task(&c.leaf, 1)
        },
        changed: |wf, _| {
            wf.random();
            wf.uuid();
            Ok(0)
        },
        position: 2,
        recorded: "child start of task 'leaf'",
        requested: "nothing more (the body returned)",
    }
}

/// A child's arguments changed (another call id).
///
/// ```text
/// original                            changed
/// let a = wf.start_task(&leaf, 1)?;   let a = wf.start_task(&leaf, 1)?;
/// let b = wf.start_task(&leaf, 2)?;   let b = wf.start_task(&leaf, 3)?;   // position 1 diverges
/// wf.join_all([a, b])                 wf.join_all([a, b])
/// ```
fn changed_child_arguments() -> Fixture {
    Fixture {
        name: "changed_child_arguments",
        invocation: 0x5eed_0003,
        original: |wf, c| {
            let a = wf.start_task(&c.leaf, 1)?;
            let b = wf.start_task(&c.leaf, 2)?;
            Ok(wf.join_all([a, b])?.iter().sum())
        },
        changed: |wf, c| {
            let a = wf.start_task(&c.leaf, 1)?;
            let b = wf.start_task(&c.leaf, 3)?;
            Ok(wf.join_all([a, b])?.iter().sum())
        },
        position: 1,
        recorded: "child start of task 'leaf'",
        requested: "child start of task 'leaf'",
    }
}

/// A child of another task.
///
/// ```text
/// original                            changed
/// wf.uuid();                          wf.uuid();
/// wf.execute_task(&leaf, 5)           wf.execute_task(&other, 5)     // position 1 diverges
/// ```
fn changed_child_task() -> Fixture {
    Fixture {
        name: "changed_child_task",
        invocation: 0x5eed_0004,
        original: |wf, c| {
            wf.uuid();
            wf.execute_task(&c.leaf, 5)
        },
        changed: |wf, c| {
            wf.uuid();
            wf.execute_task(&c.other, 5)
        },
        position: 1,
        recorded: "child start of task 'leaf'",
        requested: "child start of task 'other'",
    }
}

/// A data key renamed.
///
/// ```text
/// original                                  changed
/// let n = wf.get_data_or("limit", 4)?;      let n = wf.get_data_or("max", 4)?;   // position 0
/// wf.execute_task(&leaf, n)                 wf.execute_task(&leaf, n)
/// ```
fn renamed_data_key() -> Fixture {
    Fixture {
        name: "renamed_data_key",
        invocation: 0x5eed_0005,
        original: |wf, c| {
            let n = wf.get_data_or("limit", 4)?;
            wf.execute_task(&c.leaf, n)
        },
        changed: |wf, c| {
            let n = wf.get_data_or("max", 4)?;
            wf.execute_task(&c.leaf, n)
        },
        position: 0,
        recorded: "get_data(\"limit\")",
        requested: "get_data(\"max\")",
    }
}

/// A time read inserted before a recorded child.
///
/// ```text
/// original                            changed
/// wf.random();                        wf.random();
///                                     wf.utc_now();                  // position 1 diverges
/// wf.execute_task(&leaf, 1)?;         wf.execute_task(&leaf, 1)?;
/// wf.uuid();                          wf.uuid();
/// ```
fn inserted_time_read() -> Fixture {
    Fixture {
        name: "inserted_time_read",
        invocation: 0x5eed_0006,
        original: |wf, c| {
            wf.random();
            let v = wf.execute_task(&c.leaf, 1)?;
            wf.uuid();
            Ok(v)
        },
        changed: |wf, c| {
            wf.random();
            wf.utc_now();
            let v = wf.execute_task(&c.leaf, 1)?;
            wf.uuid();
            Ok(v)
        },
        position: 1,
        recorded: "child start of task 'leaf'",
        requested: "utc_now()",
    }
}

/// Two joins swapped.
///
/// ```text
/// original                            changed
/// let a = wf.start_task(&leaf, 1)?;   let a = wf.start_task(&leaf, 1)?;
/// let b = wf.start_task(&leaf, 2)?;   let b = wf.start_task(&leaf, 2)?;
/// let x = wf.join(&a)?;               let y = wf.join(&b)?;          // position 2 diverges
/// let y = wf.join(&b)?;               let x = wf.join(&a)?;
/// ```
fn swapped_joins() -> Fixture {
    Fixture {
        name: "swapped_joins",
        invocation: 0x5eed_0007,
        original: |wf, c| {
            let a = wf.start_task(&c.leaf, 1)?;
            let b = wf.start_task(&c.leaf, 2)?;
            let x = wf.join(&a)?;
            let y = wf.join(&b)?;
            Ok(x * 10 + y)
        },
        changed: |wf, c| {
            let a = wf.start_task(&c.leaf, 1)?;
            let b = wf.start_task(&c.leaf, 2)?;
            let y = wf.join(&b)?;
            let x = wf.join(&a)?;
            Ok(x * 10 + y)
        },
        position: 2,
        recorded: "child result of",
        requested: "child result of",
    }
}

fn fixtures() -> Vec<Fixture> {
    vec![
        swapped_draws(),
        removed_child_call(),
        changed_child_arguments(),
        changed_child_task(),
        renamed_data_key(),
        inserted_time_read(),
        swapped_joins(),
    ]
}

const ROOT_TASK: &str = "flow";

fn path_of(f: &Fixture) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/replay")
        .join(format!("{}.json", f.name))
}

/// Registers `body` as the root task (and the children it calls) in `app`.
fn register(app: &App, body: Body) -> Task<(), u32> {
    let children = Children::register(app);
    app.task(
        ROOT_TASK,
        move |ctx: &TaskContext, (): ()| -> Result<u32, TaskError> {
            Ok(body(ctx.wf(), &children)?)
        },
    )
    .unwrap()
}

/// Submits the root invocation of fixture `f` under its fixed id.
fn submit_root(app: &App, f: &Fixture) -> InvocationId {
    let root = root_of(f);
    let id = root.id;
    app.store().submit(root, wf::core::Timestamp(0)).unwrap();
    id
}

/// The root invocation of fixture `f`, under its fixed id.
fn root_of(f: &Fixture) -> NewInvocation {
    let id = InvocationId::from_u128(f.invocation);
    let task = TaskId::new(ROOT_TASK);
    let args = encode(&()).unwrap();
    NewInvocation {
        id,
        call: CallId::of(&task, &args),
        identity: WorkflowIdentity::new_workflow(id, task.clone()),
        task,
        args,
        parent: None,
        not_before: None,
        max_recoveries: 3,
    }
}

/// What the original body records, run to the end on a memory store.
fn record(f: &Fixture) -> Vec<JournalEntry> {
    let app = App::builder().app_id("fixtures").memory().build().unwrap();
    register(&app, f.original);
    let id = submit_root(&app, f);
    app.run_until_idle().unwrap();
    let outcome = Invocation::<u32>::attach(&app, id).result_timeout(Duration::from_secs(5));
    assert!(
        outcome.is_ok(),
        "{}: the original body fails: {outcome:?}",
        f.name
    );
    app.store().journal(id).unwrap()
}

/// Plants `journal` as the recorded journal of fixture `f`'s root in `app`'s store (claimed and
/// released with the journal, as a run interrupted after recording it would leave it).
fn plant(app: &App, f: &Fixture, journal: Vec<JournalEntry>) -> InvocationId {
    let id = submit_root(app, f);
    let store = app.store();
    let claim = store
        .claim(
            &WorkerId::new("fixture-planter"),
            &TaskSet::new([ROOT_TASK]),
            Duration::from_secs(60),
            wf::core::Timestamp(1),
        )
        .unwrap()
        .expect("the planted root is claimable");
    assert_eq!(claim.record.id(), id);
    let commit = Commit {
        journal,
        ..Commit::outcome(Outcome::Released)
    };
    store
        .commit(&claim.lease, commit, wf::core::Timestamp(2))
        .unwrap();
    id
}

/// Whether this run re-records the fixtures instead of checking them.
fn rerecording() -> bool {
    std::env::var_os("WF_RECORD_FIXTURES").is_some()
}

/// A journal as a fixture file: a JSON array, one entry per line.
fn to_text(journal: &[JournalEntry]) -> String {
    let lines: Vec<String> = journal
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    format!("[\n{}\n]\n", lines.join(",\n"))
}

/// The fixture's journal: the checked-in file (or, while re-recording, the fresh recording).
fn load(f: &Fixture) -> Vec<JournalEntry> {
    if rerecording() {
        return record(f);
    }
    let path = path_of(f);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "fixture {} cannot be read at {} ({e}); record it with \
             `WF_RECORD_FIXTURES=1 cargo test --test replay_fixtures`",
            f.name,
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "fixture {} at {} is not a journal ({e}); re-record it with \
             `WF_RECORD_FIXTURES=1 cargo test --test replay_fixtures`",
            f.name,
            path.display()
        )
    })
}

/// Step 1: each checked-in journal is exactly what the original body records today.
#[test]
fn fixtures_match_what_the_original_code_records() {
    for f in fixtures() {
        let recorded = record(&f);
        let path = path_of(&f);
        if rerecording() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, to_text(&recorded)).unwrap();
            continue;
        }
        let checked_in = load(&f);
        assert!(
            checked_in == recorded,
            "fixture {name} ({path}) no longer matches what the original body records.\n\
             checked in: {checked_in:#?}\nrecorded now: {recorded:#?}\n\
             If the change of what bodies record is intended (it breaks replays of in-flight \
             workflows recorded before it!), re-record with \
             `WF_RECORD_FIXTURES=1 cargo test --test replay_fixtures` and review the diff.",
            name = f.name,
            path = path.display(),
        );
    }
}

/// Step 2: the original body replays each checked-in journal to its end.
#[test]
fn the_original_code_replays_each_fixture() {
    for f in fixtures() {
        let journal = load(&f);
        for t in apps(|b| b) {
            register(&t.app, f.original);
            let id = plant(&t.app, &f, journal.clone());
            t.app.run_until_idle().unwrap();
            let result = Invocation::<u32>::attach(&t.app, id).result_timeout(common::PATIENCE);
            assert!(result.is_ok(), "{}: {}: {result:?}", t.backend, f.name);
            assert_eq!(
                t.app.store().journal(id).unwrap(),
                journal,
                "{}: {}: a replay records nothing new",
                t.backend,
                f.name
            );
        }
    }
}

/// Step 3: the changed body diverges from each checked-in journal at the fixture's position.
#[test]
fn the_changed_code_diverges_at_the_expected_position() {
    for f in fixtures() {
        let journal = load(&f);
        for t in apps(|b| b) {
            let context = format!("{}: {}", t.backend, f.name);
            register(&t.app, f.changed);
            let id = plant(&t.app, &f, journal.clone());
            t.app.run_until_idle().unwrap();
            match Invocation::<u32>::attach(&t.app, id).result_timeout(common::PATIENCE) {
                Err(WfError::NonDeterminism(nd)) => {
                    assert_eq!(nd.invocation, id, "{context}: {nd}");
                    assert_eq!(nd.position, f.position, "{context}: {nd}");
                    assert_eq!(
                        nd.recorded,
                        journal[f.position as usize].op.to_string(),
                        "{context}"
                    );
                    assert!(nd.recorded.starts_with(f.recorded), "{context}: {nd}");
                    assert!(nd.requested.contains(f.requested), "{context}: {nd}");
                }
                other => panic!("{context}: expected NonDeterminism, got {other:?}"),
            }
        }
    }
}

/// The fixture's journal as an export, the form `wf export` writes: one finished root
/// invocation of `flow`.
fn export_of(f: &Fixture, journal: Vec<JournalEntry>) -> wf::store::WorkflowExport {
    let root = root_of(f);
    let spec = wf::store::InvocationSpec {
        id: root.id,
        call: root.call,
        identity: root.identity,
        task: root.task,
        args: root.args,
        parent: root.parent,
        created_at: wf::core::Timestamp(0),
        max_recoveries: root.max_recoveries,
    };
    let mut export = wf::store::WorkflowExport::new(Some("fixtures".into()));
    export.invocations.push(wf::store::ExportedInvocation {
        spec,
        status: Status::Success,
        journal,
    });
    export
}

/// The replay check (`wf::testing::replay_check`) runs every fixture as a user's CI would run
/// an export: the original code replays it, the changed code is reported at the fixture's
/// position with both operations; nothing runs live and nothing is written.
#[test]
fn the_replay_check_reports_each_fixture_s_divergence() {
    for f in fixtures() {
        let export = export_of(&f, load(&f));
        let original = App::builder().memory().build().unwrap();
        register(&original, f.original);
        let report = wf::testing::replay_check(&original, &export).unwrap();
        assert!(report.is_ok(), "{}: {report}", f.name);
        assert_eq!(report.checked, vec![InvocationId::from_u128(f.invocation)]);

        let changed = App::builder().memory().build().unwrap();
        register(&changed, f.changed);
        let report = wf::testing::replay_check(&changed, &export).unwrap();
        assert_eq!(report.divergences.len(), 1, "{}: {report}", f.name);
        let d = &report.divergences[0];
        assert_eq!(d.workflow, InvocationId::from_u128(f.invocation));
        assert_eq!(d.error.position, f.position, "{}: {report}", f.name);
        assert!(
            d.error.recorded.starts_with(f.recorded),
            "{}: {report}",
            f.name
        );
        assert!(
            d.error.requested.contains(f.requested),
            "{}: {report}",
            f.name
        );
        assert!(
            report
                .to_string()
                .contains(&format!("position {}", f.position)),
            "{report}"
        );
        assert_eq!(
            changed.store().counts().unwrap().total(),
            0,
            "nothing written"
        );
    }
}
