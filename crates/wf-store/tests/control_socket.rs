//! The control socket of a file store: a client in another thread (the wire is the same as
//! from another process) gets the owner's answers and errors, cannot run workers, survives
//! hostile frames sent by others, and is told clearly when the owner is gone.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use wf_store::conformance::fixtures::{at, claim_expect, id, root, succeed, tasks, worker};
use wf_store::control::{ControlClient, ControlServer, SOCKET_FILE};
use wf_store::{
    EventSent, FileStore, NewEvent, Store, StoreAdmin, StoreError, StoreRead, StoreWork, Submitted,
};

struct Owner {
    store: Arc<dyn Store>,
    server: ControlServer,
    _tmp: tempfile::TempDir,
}

fn owner() -> Owner {
    let tmp = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(FileStore::open(tmp.path()).unwrap());
    let server = ControlServer::start(tmp.path(), Arc::downgrade(&store)).unwrap();
    Owner {
        store,
        server,
        _tmp: tmp,
    }
}

fn event(name: &str) -> NewEvent {
    NewEvent {
        name: name.into(),
        payload: b"1".to_vec(),
        key: None,
    }
}

#[test]
fn a_client_gets_the_owners_answers_and_errors() {
    let o = owner();
    let dir = o.server.path().parent().unwrap();
    let client = ControlClient::connect(dir).unwrap();
    assert_eq!(client.owner_pid(), std::process::id());

    let a = root(1, "t", b"a");
    assert_eq!(client.submit(a.clone(), at(1)).unwrap(), Submitted::Created);
    assert_eq!(
        client.submit(a.clone(), at(1)).unwrap(),
        Submitted::AlreadyExists
    );
    assert_eq!(
        o.store.invocation(a.id).unwrap(),
        client.invocation(a.id).unwrap()
    );
    let mut changed = a.clone();
    changed.args = b"b".to_vec();
    assert!(matches!(client.submit(changed, at(1)), Err(StoreError::Conflict(x)) if x == a.id));
    assert!(matches!(
        client.invocation(id(99)),
        Err(StoreError::InvocationNotFound(x)) if x == id(99)
    ));
    assert_eq!(client.counts().unwrap(), o.store.counts().unwrap());

    // The owner runs it; the client's wait is woken by the owner's commit.
    let waiter = {
        let client = ControlClient::connect(dir).unwrap();
        std::thread::spawn(move || client.wait_final(a.id, Duration::from_secs(30)))
    };
    let claim = claim_expect(o.store.as_ref(), "w", at(2), a.id);
    succeed(o.store.as_ref(), &claim.lease, b"done", at(2));
    let done = waiter.join().unwrap().unwrap().expect("final");
    assert_eq!(done.status(), wf_core::Status::Success);

    assert!(matches!(
        client.send_event(a.id, event("late"), at(3)),
        Err(StoreError::AlreadyFinished { invocation, .. }) if invocation == a.id
    ));
    let b = root(2, "t", b"b");
    client.submit(b.clone(), at(4)).unwrap();
    assert_eq!(
        client.send_event(b.id, event("go"), at(4)).unwrap(),
        EventSent::Stored { seq: 0 }
    );
    assert_eq!(o.store.events(b.id).unwrap().events.len(), 1);
    let report = client.cancel_tree(b.id, "not needed", at(5)).unwrap();
    assert_eq!(report.cancelled, vec![b.id]);
    assert_eq!(
        o.store.invocation(b.id).unwrap().status(),
        wf_core::Status::Cancelled
    );
    assert_eq!(client.purge_finished(at(3600)).unwrap(), 2);
}

#[test]
fn a_client_cannot_run_workers() {
    let o = owner();
    let client = ControlClient::connect(o.server.path().parent().unwrap()).unwrap();
    let refused = client.claim(&worker("w"), &tasks(&["t"]), Duration::from_secs(5), at(1));
    match refused {
        Err(e @ StoreError::NotOwner { pid, .. }) => {
            assert_eq!(pid, std::process::id());
            assert!(
                e.to_string()
                    .contains("run the workers in the owning process"),
                "{e}"
            );
        }
        other => panic!("expected NotOwner, got {other:?}"),
    }
    assert!(matches!(
        client.wait_for_work(&tasks(&["t"]), Duration::ZERO),
        Err(StoreError::NotOwner { .. })
    ));
}

#[test]
fn hostile_frames_drop_only_their_sender() {
    let o = owner();
    let path = o.server.path().to_path_buf();
    // A length of 4 GiB - 1: refused before any allocation, the connection closed.
    let mut bad = UnixStream::connect(&path).unwrap();
    bad.write_all(&u32::MAX.to_le_bytes()).unwrap();
    let mut rest = Vec::new();
    bad.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "no answer to a bad frame");
    // A frame of garbage bytes.
    let mut junk = UnixStream::connect(&path).unwrap();
    junk.write_all(&8u32.to_le_bytes()).unwrap();
    junk.write_all(&[0xff; 8]).unwrap();
    let mut rest = Vec::new();
    junk.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    // Everyone else is still served.
    let client = ControlClient::connect(path.parent().unwrap()).unwrap();
    assert_eq!(client.workflows().unwrap().len(), 0);
}

#[test]
fn the_socket_is_private_and_gone_with_its_owner() {
    let o = owner();
    let path = o.server.path().to_path_buf();
    let dir = path.parent().unwrap().to_path_buf();
    assert_eq!(path.file_name().unwrap(), SOCKET_FILE);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "only the store's user may connect");
    let client = ControlClient::connect(&dir).unwrap();
    drop(o.server);
    assert!(!path.exists(), "the socket file is removed");
    match client.counts() {
        Err(StoreError::Unavailable(m)) => assert!(m.contains("still running"), "{m}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    match ControlClient::connect(&dir) {
        Err(StoreError::Unavailable(m)) => assert!(m.contains(SOCKET_FILE), "{m}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    // A socket file a dead owner left behind does not stop the next owner.
    std::fs::write(&path, b"stale").unwrap();
    let again = ControlServer::start(&dir, Arc::downgrade(&o.store)).unwrap();
    assert!(ControlClient::connect(&dir).is_ok());
    drop(again);
}

#[test]
fn a_client_of_a_closing_owner_is_told_to_try_again() {
    let o = owner();
    let dir = o.server.path().parent().unwrap().to_path_buf();
    let client = ControlClient::connect(&dir).unwrap();
    let Owner {
        store,
        server,
        _tmp,
    } = o;
    drop(store); // the app let go of its store; the server is about to stop
    match client.counts() {
        Err(StoreError::Unavailable(m)) => assert!(m.contains("closing"), "{m}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    drop(server);
}
