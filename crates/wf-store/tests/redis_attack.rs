//! Hostile review of two Redis changes (attack-redis): idle threads blocking on their doorbells
//! themselves (redis-handoff) and the scripts as a function library (redis-scripts). Each test
//! here failed on the merged branches when written; each is `#[ignore]`d with the defect it shows
//! so the branch stays green. Run them with `cargo test -p wf-store --features redis --test
//! redis_attack -- --ignored`. Every test starts a real `redis-server` of its own.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use wf_core::{Status, WorkerId};
use wf_store::conformance::fixtures::{LEASE, root, succeed, system_now, tasks};
use wf_store::redis::RedisStore;
use wf_store::redis::testing::{RedisServer, ServerOptions, server_or_skip, unique_namespace};
use wf_store::{StoreAdmin, StoreRead, StoreWork, Submitted};

/// Far beyond any prompt wake-up: a waiter that took this long was not woken.
const WAKE_BOUND: Duration = Duration::from_secs(2);

fn admin(server: &RedisServer) -> redis::Connection {
    redis::Client::open(server.url(""))
        .unwrap()
        .get_connection()
        .unwrap()
}

/// How many calls of `command` (lower case) the server served since its last `CONFIG RESETSTAT`.
fn calls(admin: &mut redis::Connection, command: &str) -> u64 {
    let info: String = redis::cmd("INFO").arg("commandstats").query(admin).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{command}:calls=")))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

/// A token for task `a` is taken by a thread waiting on {a, b}; its claim takes the older work
/// of task `b` and silences `b`'s doorbell. `a`'s work is queued with a silent doorbell, so a
/// thread idle on {a} alone (its empty claim was its look) sleeps through its whole wait.
#[test]
fn attack_a_token_taken_by_a_waiter_on_two_tasks_strands_a_waiter_on_one() {
    let Some(server) = server_or_skip("attack_two_task_token", &ServerOptions::default()) else {
        return;
    };
    let url = server.url(&format!("ns={}", unique_namespace("atk")));
    let store = RedisStore::open(&url).unwrap();
    let both = tasks(&["a", "b"]);
    let only_a = tasks(&["a"]);
    let (w1_idle_tx, w1_idle_rx) = mpsc::channel::<()>();
    let (w2_idle_tx, w2_idle_rx) = mpsc::channel::<()>();
    let (submitted_tx, submitted_rx) = mpsc::channel::<()>();
    let (w1_claimed_tx, w1_claimed_rx) = mpsc::channel::<()>();
    thread::scope(|scope| {
        let (store, both, only_a) = (&store, &both, &only_a);
        // W2: idle on {a} (its empty claim was its look), then waits once W1 has claimed.
        let w2 = scope.spawn(move || {
            let w = WorkerId::new("w2");
            assert!(
                store
                    .claim(&w, only_a, LEASE, system_now())
                    .unwrap()
                    .is_none()
            );
            w2_idle_tx.send(()).unwrap();
            w1_claimed_rx.recv().unwrap();
            let start = Instant::now();
            let found = store.wait_for_work(only_a, Duration::from_secs(4)).unwrap();
            (found, start.elapsed())
        });
        // W1: idle on {a, b}, then waits (no probe: its claim was the look) and claims.
        let w1 = scope.spawn(move || {
            let w = WorkerId::new("w1");
            assert!(
                store
                    .claim(&w, both, LEASE, system_now())
                    .unwrap()
                    .is_none()
            );
            w1_idle_tx.send(()).unwrap();
            submitted_rx.recv().unwrap();
            assert!(store.wait_for_work(both, Duration::from_secs(4)).unwrap());
            let c = store
                .claim(&w, both, LEASE, system_now())
                .unwrap()
                .expect("W1 was woken for work");
            w1_claimed_tx.send(()).unwrap();
            c.lease.invocation
        });
        w1_idle_rx.recv().unwrap();
        w2_idle_rx.recv().unwrap();
        // b's work first (older), then a's: both doorbells hold a token.
        store.submit(root(1, "b", b""), system_now()).unwrap();
        store.submit(root(2, "a", b""), system_now()).unwrap();
        submitted_tx.send(()).unwrap();
        let took = w1.join().unwrap();
        assert_eq!(took, root(1, "b", b"").id, "W1 took the older work, b's");
        let (found, waited) = w2.join().unwrap();
        assert!(
            found && waited < WAKE_BOUND,
            "a's work is queued and claimable, but the waiter on {{a}} was not woken: it \
             returned {found} after {waited:?} (a's token went to W1, whose claim took b's work)"
        );
    });
}

/// Idle threads of one store on one server: each blocks on a blocking connection of its own
/// (a store's connections grow with its idle threads: `pool` + one per idle thread, against
/// `pool` + one listener before). With more idle threads than `pool`, those beyond it are
/// closed after every wait and opened again (TCP, and with `rediss://` TLS, handshakes per idle
/// thread per 200 ms runtime wait cycle); before, the deadline probes churned the normal pool
/// the same way, so only the count of held connections is asserted here.
#[test]
#[ignore = "attack: (design) every idle thread holds a blocking connection of its own: 6 idle threads, 6 blocked clients"]
fn attack_idle_threads_hold_a_blocking_connection_each() {
    let Some(server) = server_or_skip("attack_idle_conns", &ServerOptions::default()) else {
        return;
    };
    let mut admin = admin(&server);
    let url = server.url(&format!("ns={}&pool=2", unique_namespace("atk")));
    let store = RedisStore::open(&url).unwrap();
    let mine = tasks(&["idle"]);
    const THREADS: usize = 6;
    let wait = Duration::from_secs(3);
    let blocked = thread::scope(|scope| {
        for n in 0..THREADS {
            let (store, mine) = (&store, &mine);
            scope.spawn(move || {
                let w = WorkerId::new(format!("w{n}"));
                assert!(
                    store
                        .claim(&w, mine, LEASE, system_now())
                        .unwrap()
                        .is_none()
                );
                assert!(!store.wait_for_work(mine, wait).unwrap());
            });
        }
        // Every thread is idle (a claim found nothing) and waits; count the blocked clients
        // once they stop growing.
        let until = Instant::now() + wait / 2;
        let mut most = 0;
        while Instant::now() < until {
            let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut admin).unwrap();
            let n = list.lines().filter(|l| l.contains("flags=b")).count();
            most = most.max(n);
            if most == THREADS {
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        most
    });
    assert!(
        blocked <= 2,
        "{THREADS} idle threads of one store held {blocked} blocked connections at once"
    );
}

/// An invocation purged and submitted again under the same id (a deterministic workflow id run
/// again) finds the purge's `1` token still in its `f:` list (it lives 60 s). `wait_final`'s
/// `BLMOVE` rotates that token back at once on every block: the wait spins, a read and a
/// `BLMOVE` per loop, until the invocation is final or the token expires.
#[test]
fn attack_wait_final_after_a_purge_and_the_same_id_again_spins() {
    let Some(server) = server_or_skip("attack_wait_final_spin", &ServerOptions::default()) else {
        return;
    };
    let mut admin = admin(&server);
    let url = server.url(&format!("ns={}", unique_namespace("atk")));
    let store = RedisStore::open(&url).unwrap();
    let inv = root(1, "t", b"");
    let t = tasks(&["t"]);
    store.submit(inv.clone(), system_now()).unwrap();
    let c = store
        .claim(&WorkerId::new("w"), &t, LEASE, system_now())
        .unwrap()
        .unwrap();
    succeed(&store, &c.lease, b"first", system_now());
    let later = wf_core::Timestamp(system_now().0 + 60_000);
    assert_eq!(store.purge_finished(later).unwrap(), 1);
    assert_eq!(
        store.submit(inv.clone(), system_now()).unwrap(),
        Submitted::Created,
        "the purged id is new again"
    );
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut admin)
        .unwrap();
    let wait = Duration::from_millis(500);
    let got = store.wait_final(inv.id, wait).unwrap();
    assert!(got.is_none(), "not final: {got:?}");
    let blocks = calls(&mut admin, "blmove");
    assert!(
        blocks <= 5,
        "a {wait:?} wait_final on an unfinished invocation made {blocks} BLMOVE calls (and as \
         many reads): it spins on the purge's token instead of blocking"
    );
    assert_eq!(
        store.invocation(inv.id).unwrap().state.status,
        Status::Pending
    );
}

/// A Redis at `maxmemory` (noeviction) refuses `FUNCTION LOAD` (a `denyoom` command) even when
/// the library is there already, and `OOM` is transient to the store: opening a store fails
/// after the retry budget. With `EVALSHA` only, `bind` on an existing namespace writes nothing
/// and the store opens; its reads (status, results) still work, so an operator can look.
#[test]
fn attack_a_store_opens_on_a_redis_at_maxmemory() {
    let Some(server) = server_or_skip("attack_open_at_maxmemory", &ServerOptions::default()) else {
        return;
    };
    let mut admin = admin(&server);
    let url = server.url(&format!("ns={}", unique_namespace("atk")));
    let store = RedisStore::open(&url).unwrap();
    store.submit(root(1, "t", b""), system_now()).unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("1")
        .query(&mut admin)
        .unwrap();
    // The open store still reads.
    assert_eq!(store.counts().unwrap().total(), 1);
    // Another process opens the same namespace (a restarted worker), and the inspector
    // (`open_read`, which only reads).
    let inspector = RedisStore::open_read(&url).map(|s| s.counts().map(|c| c.total()));
    let again = RedisStore::open(&url).map(|s| s.counts().map(|c| c.total()));
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("0")
        .query(&mut admin)
        .unwrap();
    for (what, opened) in [("the inspector (open_read)", inspector), ("open", again)] {
        match opened {
            Ok(Ok(1)) => {}
            Ok(other) => panic!("{what} opened, but its read gave {other:?}"),
            Err(e) => panic!("{what} on a Redis at maxmemory failed: {e}"),
        }
    }
}

/// Waits until `n` clients of the server are blocked (`flags=b`).
fn blocked(admin: &mut redis::Connection, n: usize) {
    let until = Instant::now() + WAKE_BOUND;
    loop {
        let list: String = redis::cmd("CLIENT").arg("LIST").query(admin).unwrap();
        if list.lines().filter(|l| l.contains("flags=b")).count() >= n {
            return;
        }
        assert!(Instant::now() < until, "{n} clients did not block");
        thread::sleep(Duration::from_millis(5));
    }
}

/// Two delayed invocations due at the same time, submitted while nobody blocks: the first rings
/// `d`, the second finds the token there. An idle waiter takes it and wakes at the due time; its
/// claim takes one and leaves the doorbell silent although the other is due too (`quiet` only
/// turns a `q` into a `d`; the chain "a claim that leaves work rings again" is for queued work
/// only). A second idle waiter (its empty claim was its look) sleeps through the due time until
/// its own timeout.
#[test]
#[ignore = "attack: two delayed invocations due at once wake one idle waiter; the other sleeps past the due time (no chain for due delayed work)"]
fn attack_two_due_delayed_invocations_wake_only_one_waiter() {
    let Some(server) = server_or_skip("attack_delayed_chain", &ServerOptions::default()) else {
        return;
    };
    let mut admin = admin(&server);
    let ns = unique_namespace("atk");
    let bell = format!("{{{ns}:0}}:b:later");
    let store = RedisStore::open(&server.url(&format!("ns={ns}"))).unwrap();
    let mine = tasks(&["later"]);
    let wait = Duration::from_secs(4);
    let (tx, rx) = mpsc::channel();
    let (idle_tx, idle_rx) = mpsc::channel::<()>();
    let (go1_tx, go1_rx) = mpsc::channel::<()>();
    let (go2_tx, go2_rx) = mpsc::channel::<()>();
    let delay = Duration::from_millis(400);
    thread::scope(|scope| {
        for (n, go) in [go1_rx, go2_rx].into_iter().enumerate() {
            let (store, mine, tx, idle_tx) = (&store, &mine, tx.clone(), idle_tx.clone());
            scope.spawn(move || {
                let w = WorkerId::new(format!("w{n}"));
                assert!(
                    store
                        .claim(&w, mine, LEASE, system_now())
                        .unwrap()
                        .is_none()
                );
                idle_tx.send(()).unwrap();
                go.recv().unwrap();
                let found = store.wait_for_work(mine, wait).unwrap();
                let took = found
                    && store
                        .claim(&w, mine, LEASE, system_now())
                        .unwrap()
                        .is_some();
                tx.send((n, found, took, Instant::now())).unwrap();
            });
        }
        idle_rx.recv().unwrap();
        idle_rx.recv().unwrap();
        let due = wf_core::Timestamp(system_now().0 + delay.as_millis() as u64);
        let due_at = Instant::now() + delay;
        for n in 1..=2 {
            let mut inv = root(n, "later", b"");
            inv.not_before = Some(due);
            store.submit(inv, system_now()).unwrap();
        }
        // The first waiter takes the one token and blocks again until the due time.
        go1_tx.send(()).unwrap();
        blocked(&mut admin, 1);
        let left: i64 = redis::cmd("LLEN").arg(&bell).query(&mut admin).unwrap();
        assert_eq!(left, 0, "the first waiter took the token");
        go2_tx.send(()).unwrap();
        for _ in 0..2 {
            let (n, found, took, at) = rx.recv().unwrap();
            let late = at.saturating_duration_since(due_at);
            assert!(
                found && took && late < WAKE_BOUND,
                "waiter {n} returned {found} (claimed: {took}) {late:?} after both invocations \
                 were due"
            );
        }
    });
}

/// Eight processes open a store on a fresh server at once: each `FUNCTION LOAD` races the
/// others; every one opens, and every one calls by `FCALL` (held).
#[test]
fn attack_concurrent_opens_race_function_load() {
    let Some(server) = server_or_skip("attack_load_race", &ServerOptions::default()) else {
        return;
    };
    let mut admin = admin(&server);
    let url = server.url(&format!("ns={}", unique_namespace("atk")));
    thread::scope(|scope| {
        for n in 0..8u128 {
            let url = &url;
            scope.spawn(move || {
                let store = RedisStore::open(url).unwrap();
                store.submit(root(n + 1, "t", b""), system_now()).unwrap();
            });
        }
    });
    assert_eq!(calls(&mut admin, "fcall"), 8, "every submit went by FCALL");
    let store = RedisStore::open(&url).unwrap();
    assert_eq!(store.counts().unwrap().total(), 8);
}

/// The same root cause on a read-only replica (an operator's read-only view, a reporting
/// process): `FUNCTION LOAD` is a write, refused with `READONLY` (transient to the store), so
/// the store does not open, although the library is there (replicated) and every read is
/// flagged `no-writes`. With `EVALSHA` only, `bind` on an existing namespace writes nothing and
/// the store opens on the replica and reads.
#[test]
fn attack_a_store_opens_on_a_read_only_replica() {
    let Some(primary) = server_or_skip("attack_replica_primary", &ServerOptions::default()) else {
        return;
    };
    let options = ServerOptions {
        extra: vec![
            "--replicaof".into(),
            "127.0.0.1".into(),
            primary.port().to_string(),
        ],
        ..ServerOptions::default()
    };
    let Some(replica) = server_or_skip("attack_replica", &options) else {
        return;
    };
    let ns = unique_namespace("atk");
    let store = RedisStore::open(&primary.url(&format!("ns={ns}"))).unwrap();
    store.submit(root(1, "t", b""), system_now()).unwrap();
    // The replica has caught up: the namespace and the invocation are there.
    let mut on_replica = admin(&replica);
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let n: i64 = redis::cmd("EXISTS")
            .arg(format!("{{{ns}:0}}:i:{}", root(1, "t", b"").id))
            .query(&mut on_replica)
            .unwrap();
        if n == 1 {
            break;
        }
        assert!(Instant::now() < until, "the replica did not catch up");
        thread::sleep(Duration::from_millis(20));
    }
    // The inspector (`open_read`): it only reads.
    let opened = RedisStore::open_read(&replica.url(&format!("ns={ns}")))
        .map(|s| s.invocation(root(1, "t", b"").id).map(|r| r.state.status));
    match opened {
        Ok(Ok(Status::Pending)) => {}
        Ok(other) => panic!("opened on the replica, but its read gave {other:?}"),
        Err(e) => panic!("the inspector (open_read) on a read-only replica failed: {e}"),
    }
}
