//! Idle workers' wake-ups on a real `redis-server` (one server: each waiting thread blocks on
//! its tasks' doorbells itself): one token wakes one waiter, a stale token never yields a wrong
//! claim and does not keep a worker awake, a blocking connection dropped mid-block loses no
//! wake-up, and `wait_final` right after the caller's own submit survives a lost final token.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use wf_core::{Status, WorkerId};
use wf_store::conformance::fixtures::{LEASE, root, succeed, system_now, tasks};
use wf_store::redis::RedisStore;
use wf_store::redis::testing::{RedisServer, ServerOptions, server_or_skip, unique_namespace};
use wf_store::{StoreRead, StoreWork};

/// Far beyond any prompt wake-up: a waiter that took this long was not woken.
const WAKE_BOUND: Duration = Duration::from_secs(2);

/// A server of the test's own (tests here look at and kill its clients), a store in a fresh
/// namespace there, its key prefix, and an admin connection.
fn setup(test: &str) -> Option<(RedisServer, RedisStore, String, redis::Connection)> {
    let server = server_or_skip(test, &ServerOptions::default())?;
    let ns = unique_namespace("bells");
    let store = RedisStore::open(&server.url(&format!("ns={ns}"))).unwrap();
    let admin = redis::Client::open(server.url(""))
        .unwrap()
        .get_connection()
        .unwrap();
    Some((server, store, format!("{{{ns}:0}}:"), admin))
}

fn worker() -> WorkerId {
    WorkerId::new("w")
}

/// Waits until `n` clients of the server are blocked in `BLPOP` on `key` (their ids).
fn blocked_on(admin: &mut redis::Connection, key: &str, n: usize) -> Vec<String> {
    let until = Instant::now() + WAKE_BOUND;
    loop {
        let list: String = redis::cmd("CLIENT").arg("LIST").query(admin).unwrap();
        // The server is this test's own: every client blocked in BLPOP is one of its waiters.
        let ids: Vec<String> = list
            .lines()
            .filter(|l| l.contains("cmd=blpop") && l.contains("flags=b"))
            .filter_map(|l| {
                l.split(' ')
                    .find_map(|f| f.strip_prefix("id="))
                    .map(str::to_owned)
            })
            .collect();
        if ids.len() >= n {
            return ids;
        }
        assert!(
            Instant::now() < until,
            "no client blocked on {key} within {WAKE_BOUND:?}"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

/// A token left on a doorbell with no work behind it (as a cancelled invocation leaves one)
/// may wake a waiter once; its claim finds nothing, takes nothing of another task, and the
/// next wait sleeps until its timeout.
#[test]
fn a_stale_token_never_yields_a_wrong_claim() {
    let Some((_server, store, prefix, mut admin)) =
        setup("a_stale_token_never_yields_a_wrong_claim")
    else {
        return;
    };
    let mine = tasks(&["t"]);
    // Work of another task, and stale tokens on this task's doorbell.
    store.submit(root(1, "u", b""), system_now()).unwrap();
    let _: i64 = redis::cmd("RPUSH")
        .arg(format!("{prefix}b:t"))
        .arg("q")
        .arg("q")
        .query(&mut admin)
        .unwrap();
    let timeout = Duration::from_millis(150);
    let mut woken = 0;
    for _ in 0..2 {
        if store.wait_for_work(&mine, timeout).unwrap() {
            woken += 1;
            assert!(
                store
                    .claim(&worker(), &mine, LEASE, system_now())
                    .unwrap()
                    .is_none(),
                "a stale token must not yield a claim (the only work is of another task)"
            );
        }
    }
    assert!(woken <= 2, "at most one wake-up per stale token");
    let start = Instant::now();
    assert!(
        !store.wait_for_work(&mine, timeout).unwrap(),
        "no token is left, and no work of this task"
    );
    assert!(
        start.elapsed() >= timeout / 2,
        "the wait ran out its timeout"
    );
    let theirs = store
        .claim(&worker(), &tasks(&["u"]), LEASE, system_now())
        .unwrap();
    assert_eq!(
        theirs.map(|c| c.lease.invocation),
        Some(root(1, "u", b"").id),
        "the other task's work is still there for its own worker"
    );
}

/// Two idle waiters and one submit: one token, one wake-up. The other waiter sleeps on until
/// its timeout.
#[test]
fn one_token_wakes_one_waiter() {
    let Some((_server, store, prefix, mut admin)) = setup("one_token_wakes_one_waiter") else {
        return;
    };
    let mine = tasks(&["one"]);
    let timeout = Duration::from_millis(1500);
    let (tx, rx) = mpsc::channel();
    thread::scope(|scope| {
        for _ in 0..2 {
            let tx = tx.clone();
            let (store, mine) = (&store, &mine);
            scope.spawn(move || {
                let start = Instant::now();
                let found = store.wait_for_work(mine, timeout).unwrap();
                tx.send((found, start.elapsed())).unwrap();
            });
        }
        blocked_on(&mut admin, &format!("{prefix}b:one"), 2);
        store.submit(root(1, "one", b""), system_now()).unwrap();
        let (first, _) = rx.recv().unwrap();
        assert!(first, "the submit woke one waiter");
        let (second, waited) = rx.recv().unwrap();
        assert!(
            !second && waited >= timeout / 2,
            "the second waiter must sleep on (one token, one wake-up): it returned {second} \
             after {waited:?}"
        );
    });
    assert!(
        store
            .claim(&worker(), &mine, LEASE, system_now())
            .unwrap()
            .is_some(),
        "the announced work is claimable"
    );
}

/// The connection a waiter blocks on is killed mid-block (a failover, a proxy cutting idle
/// connections): the waiter blocks again on a new connection and a later submit still wakes it.
#[test]
fn a_dropped_blocking_connection_loses_no_wake_up() {
    let Some((_server, store, prefix, mut admin)) =
        setup("a_dropped_blocking_connection_loses_no_wake_up")
    else {
        return;
    };
    let mine = tasks(&["dropped"]);
    let (tx, rx) = mpsc::channel();
    thread::scope(|scope| {
        let (store, mine) = (&store, &mine);
        scope.spawn(move || {
            let found = store.wait_for_work(mine, Duration::from_secs(10)).unwrap();
            tx.send((found, Instant::now())).unwrap();
        });
        let key = format!("{prefix}b:dropped");
        for id in blocked_on(&mut admin, &key, 1) {
            let _: i64 = redis::cmd("CLIENT")
                .arg("KILL")
                .arg("ID")
                .arg(&id)
                .query(&mut admin)
                .unwrap();
        }
        // It blocks again (on a new connection) rather than returning.
        blocked_on(&mut admin, &key, 1);
        assert!(rx.try_recv().is_err(), "nothing rang: the waiter waits on");
        let submitted = Instant::now();
        store.submit(root(1, "dropped", b""), system_now()).unwrap();
        let (found, at) = rx.recv().unwrap();
        assert!(found, "the submit woke the waiter");
        assert!(
            at.saturating_duration_since(submitted) < WAKE_BOUND,
            "woken by the submit, not by its timeout"
        );
    });
    assert!(
        store
            .claim(&worker(), &mine, LEASE, system_now())
            .unwrap()
            .is_some()
    );
}

/// `wait_final` right after this thread's own submit blocks without reading first, on the final
/// token the commit pushes; should that token be gone (evicted), it reads after a short block
/// and still returns the final record.
#[test]
fn wait_final_after_the_own_submit_survives_a_lost_final_token() {
    let Some((_server, store, prefix, mut admin)) =
        setup("wait_final_after_the_own_submit_survives_a_lost_final_token")
    else {
        return;
    };
    let inv = root(1, "t", b"");
    store.submit(inv.clone(), system_now()).unwrap();
    thread::scope(|scope| {
        scope.spawn(|| {
            let c = store
                .claim(&worker(), &tasks(&["t"]), LEASE, system_now())
                .unwrap()
                .unwrap();
            succeed(&store, &c.lease, b"done", system_now());
        });
    });
    let _: i64 = redis::cmd("DEL")
        .arg(format!("{prefix}f:{}", inv.id))
        .query(&mut admin)
        .unwrap();
    let start = Instant::now();
    let rec = store
        .wait_final(inv.id, Duration::from_secs(30))
        .unwrap()
        .expect("the invocation is final");
    assert_eq!(rec.state.status, Status::Success);
    assert_eq!(rec.state.result.as_deref(), Some(&b"done"[..]));
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "a lost token costs one short block, not the whole wait: {:?}",
        start.elapsed()
    );
}
