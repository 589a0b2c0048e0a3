//! The axum example as its docs tell a user to run it: the binary serves, a client posts an
//! order over a real socket, and gets the receipt; posting again with the same order id (a
//! retried request) gets the same receipt from the same workflow.
#![cfg(feature = "tokio")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use common::process::{CHILD_PATIENCE, ChildLines, example_binary, kill_9};

/// One HTTP/1.1 request with `body`, read to the end (the connection closes).
fn post(addr: &str, path: &str, body: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(CHILD_PATIENCE)).unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn the_axum_example_answers_an_order_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Command::new(example_binary("async_orders"))
        .env("ORDERS_ADDR", "127.0.0.1:0")
        .env(
            "WF_STORE",
            format!("file:{}", dir.path().join("store").display()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = ChildLines::of(&mut server);
    let line = lines.until(&mut server, "the address it listens on", |l| {
        l.starts_with("listening on ")
    });
    let addr = line.trim_start_matches("listening on ").to_owned();

    let first = post(&addr, "/orders/1042", r#"{"sku":"book","quantity":2}"#);
    let again = post(&addr, "/orders/1042", r#"{"sku":"book","quantity":2}"#);
    let other = post(&addr, "/orders/1042", r#"{"sku":"pen","quantity":1}"#);
    kill_9(&mut server);

    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    assert!(first.contains(r#""charged_cents":2500"#), "{first}");
    assert!(first.contains(r#""reservation":"2 x book""#), "{first}");
    let body = |r: &str| r.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    assert_eq!(
        body(&again),
        body(&first),
        "a retried request gets the same receipt"
    );
    assert!(
        other.starts_with("HTTP/1.1 409"),
        "the same key with another order: {other}"
    );
}
