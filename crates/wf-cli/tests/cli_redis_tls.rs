//! The inspector on an encrypted, authenticated Redis store: a real `redis-server` serving TLS
//! (a throwaway CA) with an ACL user restricted to the commands docs/backends.md lists and the
//! `default` user off. Tables and `--json` show the stored values; no output of any command
//! (nor `--help` with `WF_STORE` set, nor a refused URL) shows the password.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use serde_json::Value;
use wf_runtime::{App, TaskContext, TaskError};
use wf_store::redis::testing::{ServerOptions, server_or_skip, unique_namespace, wf_acl_rule};

const SECRET: &str = "hunter2-tls-acl-secret";
const USER: &str = "inspector";

fn acl_user() -> String {
    wf_acl_rule(USER, SECRET, "clitls-")
}

/// Runs `wf` with `WF_STORE` set to `store` (or `--store` when `flag`), checking that the
/// password appears in neither stdout nor stderr.
fn wf_with(store: &str, flag: bool, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wf"));
    if flag {
        cmd.arg("--store").arg(store).env_remove("WF_STORE");
    } else {
        cmd.env("WF_STORE", store);
    }
    let out = cmd.args(args).env_remove("WF_APP_ID").output().unwrap();
    for text in [&out.stdout, &out.stderr] {
        let text = String::from_utf8_lossy(text);
        assert!(
            !text.contains(SECRET),
            "wf {args:?} printed the password: {text}"
        );
    }
    out
}

fn ok(store: &str, args: &[&str]) -> String {
    let out = wf_with(store, true, args);
    assert!(
        out.status.success(),
        "wf {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn refused(store: &str, args: &[&str]) -> String {
    let out = wf_with(store, true, args);
    assert!(!out.status.success(), "wf {args:?} succeeded");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn the_inspector_reads_a_tls_acl_store_and_never_prints_the_password() {
    let options = ServerOptions {
        tls: true,
        acl: vec![acl_user()],
        default_user_off: true,
        ..ServerOptions::default()
    };
    let Some(server) = server_or_skip("the inspector over TLS with an ACL user", &options) else {
        return;
    };
    let ns = unique_namespace("clitls");
    let url = server
        .tls_url(&format!("{USER}:{SECRET}@"), &format!("ns={ns}"))
        .unwrap();
    let app = App::builder()
        .app_id("cli-tls")
        .redis(&url)
        .build()
        .unwrap();
    let order = app
        .task(
            "order",
            |ctx: &TaskContext, n: u32| -> Result<u32, TaskError> {
                ctx.wf().set_data("card", "tok_visible_4242")?;
                Ok(n + 1)
            },
        )
        .unwrap();
    let id = order.call(&app, 41).unwrap().id().to_string();
    app.run_until_idle().unwrap();

    // Tables and JSON show the workflow and its values.
    assert!(ok(&url, &["workflows"]).contains(&id));
    let listed: Value = serde_json::from_str(&ok(&url, &["--json", "workflows"])).unwrap();
    assert!(listed.to_string().contains(&id), "{listed}");
    assert!(ok(&url, &["data", &id]).contains("tok_visible_4242"));
    let data: Value = serde_json::from_str(&ok(&url, &["--json", "data", &id])).unwrap();
    assert!(data.to_string().contains("tok_visible_4242"), "{data}");
    ok(&url, &["show", &id]);
    ok(&url, &["--json", "show", &id]);
    ok(&url, &["--json", "counts"]);
    ok(&url, &["--app", "cli-tls", "journal", &id]);

    // `--help` with the URL in WF_STORE (clap would show an env value).
    for args in [&["--help"][..], &["workflows", "--help"]] {
        let out = wf_with(&url, false, args);
        assert!(out.status.success());
    }
    // Through WF_STORE rather than --store, the same.
    let out = wf_with(&url, false, &["--json", "counts"]);
    assert!(out.status.success());

    // Refusals say what is wrong, without the password.
    let port = server.tls_port().unwrap();
    let wrong = refused(
        &server
            .tls_url(&format!("{USER}:not-{SECRET}@"), &format!("ns={ns}"))
            .unwrap(),
        &["counts"],
    );
    assert!(wrong.contains("password"), "{wrong}");
    let bad_option = refused(
        &format!("rediss://{USER}:{SECRET}@127.0.0.1:{port}/?colour=blue"),
        &["workflows"],
    );
    assert!(bad_option.contains("colour"), "{bad_option}");
    refused(
        &format!("redis://{USER}:{SECRET}@127.0.0.1:{port}/?ns={ns}&connect_timeout_ms=500"),
        &["counts"],
    );
    refused(
        &format!("redis://{USER}:{SECRET}@127.0.0.1:notaport/"),
        &["counts"],
    );
}
