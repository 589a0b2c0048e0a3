//! `wf serve` run as a user runs it: it prints the address to open, refuses requests without
//! its token, warns when it listens beyond loopback without one, and fails clearly on a
//! missing store. (The pages themselves are tested in crates/wf-monitor.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use wf_runtime::{App, TaskContext, TaskError};

const PATIENCE: Duration = Duration::from_secs(60);

/// A `wf serve` child, killed when dropped.
struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn store() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let app = App::builder()
        .app_id("serve-test")
        .file(tmp.path())
        .build()
        .unwrap();
    let job = app
        .task("job", |_: &TaskContext, n: u32| -> Result<u32, TaskError> {
            Ok(n)
        })
        .unwrap();
    job.call(&app, 1).unwrap();
    app.run_until_idle().unwrap();
    tmp
}

fn serve(dir: &std::path::Path, args: &[&str]) -> Serving {
    let child = Command::new(env!("CARGO_BIN_EXE_wf"))
        .args(["--store", dir.to_str().unwrap(), "serve"])
        .args(args)
        .env_remove("WF_STORE")
        .env_remove("WF_MONITOR_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    Serving(child)
}

/// The first line of a pipe, read on a thread so the wait is bounded.
fn first_line(pipe: impl Read + Send + 'static) -> String {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(pipe).read_line(&mut line);
        let _ = tx.send(line);
    });
    rx.recv_timeout(PATIENCE)
        .expect("wf serve printed a line in time")
}

/// The status code of `GET path` with extra header lines.
fn status(host: &str, path: &str, headers: &str) -> u16 {
    let mut s = TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{headers}\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text.split(' ').nth(1).unwrap().parse().unwrap()
}

#[test]
fn serve_prints_its_address_and_requires_its_token() {
    let tmp = store();
    let mut child = serve(tmp.path(), &["--bind", "127.0.0.1:0", "--token", "t0k en"]);
    let line = first_line(child.0.stdout.take().unwrap());
    let url = line.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/?token=t0k%20en"),
        "{line}"
    );
    let host = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(status(&host, "/", ""), 401);
    assert_eq!(status(&host, "/", "Authorization: Bearer wrong\r\n"), 401);
    assert_eq!(status(&host, "/", "Authorization: Bearer t0k en\r\n"), 200);
    assert_eq!(status(&host, "/?token=t0k%20en", ""), 303);
}

#[test]
fn serve_warns_when_it_listens_beyond_loopback_without_a_token() {
    let tmp = store();
    let mut child = serve(tmp.path(), &["--bind", "0.0.0.0:0"]);
    let warning = first_line(child.0.stderr.take().unwrap());
    assert!(
        warning.starts_with("warning: wf serve listens on 0.0.0.0:0 without authentication"),
        "{warning}"
    );
    let line = first_line(child.0.stdout.take().unwrap());
    assert!(line.contains("http://127.0.0.1:"), "{line}");
}

#[test]
fn serve_fails_clearly_on_a_missing_store() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_wf"))
        .args([
            "--store",
            tmp.path().join("nope").to_str().unwrap(),
            "serve",
        ])
        .env_remove("WF_STORE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no wf store at"), "{stderr}");
}
