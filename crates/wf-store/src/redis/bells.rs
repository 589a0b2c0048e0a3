//! Waiting for work without polling: per-task doorbells, blocked on by the waiting threads
//! themselves (or, on a cluster, by listener threads).
//!
//! Every script that makes an invocation of task `t` claimable in shard `s` rings `b:<t>` in
//! that shard: it pushes one token if the list is empty (`q` for queued work, `d` for delayed
//! work; a `d` token becomes `q` when work is queued). A claim that leaves more queued work of
//! its task rings again (so the next idle worker wakes: a chain, one wake per item), one that
//! leaves none silences it (or leaves `d` while delayed work is left).
//!
//! On a single server (one shard or several), a thread in `wait_for_work` blocks on the
//! doorbells of its tasks itself: one `BLPOP` over every shard, on a blocking connection whose
//! reply timeout is longer than the block. The server hands a token to one blocked client, so
//! one token wakes one thread, straight from its socket. A `q` token ends the wait without a
//! probe: the work was there when it was popped (the claim that takes a task's last queued
//! invocation silences the doorbell in the same script), and the caller's claim is the look; a
//! token without work behind it (a cancelled pending invocation leaves one, or a racing claim
//! took the work) costs one claim that finds nothing. A `d` token, or a failed connection (whose
//! `BLPOP` may have taken a token with it), sends the thread to probe.
//!
//! On a cluster, where one `BLPOP`'s keys must share a slot, a store blocks on the doorbells of
//! the tasks its idle callers wait for with one listener thread per shard, on a dedicated
//! connection. A token of task `t` wakes one waiting caller of this process that waits for
//! `t` (the longest waiting), who looks (one probe: a token may be older than the work it rang
//! for, which may be gone) and claims, or sleeps until what it saw is due. A token nobody here
//! waits for any more is given back; one for a task whose waiters are all woken already is
//! dropped (their claims ring again while work is left, and a caller that looked before the drop
//! looks again). Listeners run only while someone waits, and end when the store is dropped.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{Retry, Shared};
use crate::error::StoreError;
use crate::memory::system_now;
use crate::model::TaskSet;
use wf_core::Timestamp;

/// The longest block of one listener `BLPOP`.
const LISTEN: Duration = Duration::from_secs(5);

#[derive(Default)]
struct State {
    /// Grows by one when every waiter should look again (a listener failed, the store stops).
    epoch: u64,
    /// Grows by one for each token no waiting caller took: a caller that looked before it and
    /// starts waiting after it looks again instead.
    dropped: u64,
    /// Callers blocked in `wait_for_work`, longest waiting first.
    waiters: Vec<Waiter>,
    /// The id of the next waiter.
    next_waiter: u64,
    /// Every task a caller waited for (the listeners' doorbells).
    tasks: BTreeSet<String>,
    /// The listener threads, once started.
    listeners: Vec<(String, JoinHandle<()>)>,
    stop: bool,
}

/// A caller blocked in `wait_for_work`.
struct Waiter {
    id: u64,
    tasks: Vec<String>,
    /// A doorbell of one of its tasks rang for it.
    rung: bool,
}

/// The doorbells of one store.
pub(crate) struct Bells {
    inner: Arc<Inner>,
    /// This store's number in the process (what a thread's [`Idle`] names).
    serial: u64,
}

/// What this thread's last claim (on a one-shard store) found: nothing, with the store's marks
/// read before it and when something becomes claimable by the clock (`None`: never). The next
/// `wait_for_work` of this thread on that store and task set sleeps on it instead of probing,
/// unless a token was dropped or everyone was told to look since.
struct Idle {
    serial: u64,
    tasks: TaskSet,
    marks: (u64, u64),
    due: Option<Timestamp>,
}

thread_local! {
    static IDLE: RefCell<Option<Idle>> = const { RefCell::new(None) };
}

#[derive(Default)]
struct Inner {
    state: Mutex<State>,
    cond: Condvar,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Bells {
    pub(crate) fn new() -> Self {
        static SERIAL: AtomicU64 = AtomicU64::new(0);
        Self {
            inner: Arc::default(),
            serial: SERIAL.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// This store's number in the process.
    pub(crate) fn serial(&self) -> u64 {
        self.serial
    }

    /// The epoch and the count of dropped tokens, read before a caller looks (or claims).
    pub(crate) fn marks(&self) -> (u64, u64) {
        let st = self.inner.lock();
        (st.epoch, st.dropped)
    }

    /// Stops the listeners: they end after their current block, which the kick cuts short.
    pub(crate) fn stop(&self, shared: &Shared) {
        let kicks: Vec<String> = {
            let mut st = self.inner.lock();
            st.stop = true;
            self.inner.cond.notify_all();
            st.listeners.iter().map(|(k, _)| k.clone()).collect()
        };
        kick(shared, &kicks);
        // The threads end on their own; joining here could wait for a block on a dead server.
    }
}

/// Pushes a token onto each listener's kick list so its `BLPOP` returns now.
fn kick(shared: &Shared, keys: &[String]) {
    for key in keys {
        let r = shared.with(Retry::Once, |c| {
            redis::cmd("RPUSH")
                .arg(key)
                .arg("1")
                .query::<i64>(c.like())
                .and_then(|_| {
                    redis::cmd("PEXPIRE")
                        .arg(key)
                        .arg(60_000)
                        .query::<i64>(c.like())
                })
        });
        if let Err(e) = r {
            tracing::debug!(error = %e, "redis: could not kick a doorbell listener");
        }
    }
}

/// Records (or with `found`, forgets) what this thread's claim on `shared` with `tasks` found:
/// `marks` were read before the claim, `due` is when something becomes claimable by the clock.
pub(crate) fn claimed(
    shared: &Shared,
    tasks: &TaskSet,
    marks: (u64, u64),
    found: bool,
    due: Option<Timestamp>,
) {
    let idle = (!found).then(|| Idle {
        serial: shared.bells.serial,
        tasks: tasks.clone(),
        marks,
        due,
    });
    IDLE.with(|i| *i.borrow_mut() = idle);
}

/// What this thread's last claim on `shared` with `tasks` found nothing, if it was the last
/// store operation that could tell (`None` otherwise): the marks read before it and the due time.
fn idle_since(shared: &Shared, tasks: &TaskSet) -> Option<((u64, u64), Option<Timestamp>)> {
    IDLE.with(|i| i.borrow_mut().take())
        .filter(|i| i.serial == shared.bells.serial && &i.tasks == tasks)
        .map(|i| (i.marks, i.due))
}

/// `wait_for_work`: returns `true` as soon as a claim by `tasks` may succeed, `false` after
/// `timeout`. Looks first (one probe of every shard); then sleeps until a doorbell of one of
/// the tasks rings, or the next due time (a retry's not-before, a lease expiry), or the timeout,
/// and looks again.
pub(crate) fn wait_for_work(
    shared: &Arc<Shared>,
    tasks: &TaskSet,
    timeout: Duration,
) -> Result<bool, StoreError> {
    let deadline = Instant::now() + timeout;
    // Right after this thread's claim found nothing, that claim was the look: what became
    // claimable since rang a doorbell (the listeners deliver it, or a dropped token sends this
    // caller to look), and it said when something becomes claimable by the clock.
    let mut claimed = idle_since(shared, tasks);
    loop {
        let (seen, now, (claimable, due)) = match claimed.take() {
            Some((marks, due)) => (marks, system_now(), (false, due)),
            None => {
                let seen = shared.bells.marks();
                let now = system_now();
                (seen, now, shared.probe(tasks, now)?)
            }
        };
        if claimable {
            return Ok(true);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        let sleep = match due {
            Some(t) => left.min(now.until(t).max(Duration::from_millis(1))),
            None => left,
        };
        if shared.url.cluster {
            wait(shared, tasks, seen, sleep);
            continue;
        }
        // One server: this thread blocks on the doorbells itself, until a token or `sleep`.
        let until = Instant::now() + sleep;
        loop {
            let block = until.saturating_duration_since(Instant::now());
            if block.is_zero() {
                break;
            }
            match pop_doorbell(shared, tasks, block) {
                // Queued work was there when the token was popped (the claim that takes the
                // last queued invocation of a task silences its doorbell in the same script):
                // the caller's claim is the look.
                Ok(Some(Rang::Queued)) => return Ok(true),
                // Delayed work: look for its due time.
                Ok(Some(Rang::Delayed)) => break,
                // Nothing rang: what the last look saw still holds, until its due time (the
                // outer loop looks then) or the caller's deadline (it returns `false` there
                // without looking: its caller claims next, and that is the look).
                Ok(None) => {
                    if Instant::now() >= deadline {
                        return Ok(false);
                    }
                }
                // A lost connection may have taken a token with it: look again (the probe
                // retries through an outage, or reports it).
                Err(e) if e.is_transient() => {
                    std::thread::sleep(Duration::from_millis(10).min(block));
                    break;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// What a popped doorbell token announced.
enum Rang {
    /// Queued work (`q`).
    Queued,
    /// Delayed work (`d`): claimable later.
    Delayed,
}

/// Blocks this thread on the doorbells of `tasks` in every shard (one server: one `BLPOP`, on
/// a blocking connection) for at most `block` (cut to [`LISTEN`]); `None` when nothing rang.
/// Only on a single server: on a cluster the doorbells of different shards may live on
/// different nodes, and the listener threads block on them.
fn pop_doorbell(
    shared: &Shared,
    tasks: &TaskSet,
    block: Duration,
) -> Result<Option<Rang>, StoreError> {
    let block = block.min(LISTEN).max(Duration::from_millis(1));
    let mut keys: Vec<String> = Vec::with_capacity(shared.shards as usize * tasks.len());
    for s in 0..shared.shards {
        for t in tasks {
            keys.push(shared.key(s, &format!("b:{}", t.as_str())));
        }
    }
    let Some(first) = keys.first().cloned() else {
        // No task to wait for: nothing can ring.
        std::thread::sleep(block);
        return Ok(None);
    };
    let popped = shared.block(&first, block, |c| {
        redis::cmd("BLPOP")
            .arg(&keys)
            .arg(format!("{:.3}", block.as_secs_f64()))
            .query::<Option<(String, String)>>(c.like())
    })?;
    Ok(popped.map(|(_, token)| {
        if token == "d" {
            Rang::Delayed
        } else {
            Rang::Queued
        }
    }))
}

/// Sleeps until a doorbell of `tasks` rings for this caller, the epoch moves past `seen` or
/// `sleep` passes, with listeners running for `tasks`; does not sleep when a token was dropped
/// since the caller looked (`seen`: the marks read before it looked).
fn wait(shared: &Arc<Shared>, tasks: &TaskSet, seen: (u64, u64), sleep: Duration) {
    let (seen, seen_dropped) = seen;
    let inner = &shared.bells.inner;
    let (me, kicks, stale) = {
        let mut st = inner.lock();
        let mut added = false;
        for t in tasks {
            added |= st.tasks.insert(t.as_str().to_owned());
        }
        if st.listeners.is_empty() && !st.stop {
            start_listeners(shared, &mut st);
            added = false;
        }
        // A token nobody took since this caller looked may be for work the look missed.
        let stale = st.dropped != seen_dropped;
        let me = st.next_waiter;
        st.next_waiter += 1;
        if !stale {
            st.waiters.push(Waiter {
                id: me,
                tasks: tasks.iter().map(|t| t.as_str().to_owned()).collect(),
                rung: false,
            });
        }
        inner.cond.notify_all();
        let kicks = if added {
            st.listeners.iter().map(|(k, _)| k.clone()).collect()
        } else {
            Vec::new()
        };
        (me, kicks, stale)
    };
    // New tasks: the listeners rebuild their key lists.
    kick(shared, &kicks);
    if stale {
        return;
    }
    let until = Instant::now() + sleep;
    let mut st = inner.lock();
    let rung = |st: &State| st.waiters.iter().any(|w| w.id == me && w.rung);
    while st.epoch == seen && !st.stop && !rung(&st) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        st = inner
            .cond
            .wait_timeout(st, left)
            .map(|(g, _)| g)
            .unwrap_or_else(|p| p.into_inner().0);
    }
    st.waiters.retain(|w| w.id != me);
}

fn start_listeners(shared: &Arc<Shared>, st: &mut State) {
    let groups: Vec<Vec<u32>> = if shared.url.cluster {
        (0..shared.shards).map(|s| vec![s]).collect()
    } else {
        vec![(0..shared.shards).collect()]
    };
    for group in groups {
        let kick = shared.key(group[0], &format!("k:{}", super::unique_token()));
        let weak = Arc::downgrade(shared);
        let inner = shared.bells.inner.clone();
        let key = kick.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("wf-redis-bells-{}", group[0]))
            .spawn(move || listen(&weak, &inner, &group, &key));
        match spawned {
            Ok(handle) => st.listeners.push((kick, handle)),
            Err(e) => {
                tracing::error!(error = %e, "redis: cannot start a doorbell listener; idle workers fall back to their timeouts")
            }
        }
    }
}

/// One listener: while callers wait, `BLPOP` the doorbells of their tasks in `group`'s shards.
fn listen(weak: &Weak<Shared>, inner: &Inner, group: &[u32], kick: &str) {
    let mut pause = Duration::from_millis(50);
    loop {
        let tasks: Vec<String> = {
            let mut st = inner.lock();
            while !st.stop && st.waiters.is_empty() {
                st = inner.cond.wait(st).unwrap_or_else(|p| p.into_inner());
            }
            if st.stop {
                return;
            }
            st.tasks.iter().cloned().collect()
        };
        let Some(shared) = weak.upgrade() else {
            return;
        };
        let mut keys: Vec<String> = Vec::with_capacity(group.len() * tasks.len() + 1);
        for s in group {
            for t in &tasks {
                keys.push(shared.key(*s, &format!("b:{t}")));
            }
        }
        keys.push(kick.to_owned());
        let popped = shared.block(kick, LISTEN, |c| {
            redis::cmd("BLPOP")
                .arg(&keys)
                .arg(LISTEN.as_secs())
                .query::<Option<(String, String)>>(c.like())
        });
        match popped {
            Ok(Some((key, _))) if key == kick => {}
            Ok(Some((key, _))) => {
                pause = Duration::from_millis(50);
                let task = task_of(&shared, group, &key);
                let mut st = inner.lock();
                if st.waiters.is_empty() {
                    drop(st);
                    if let Some((s, task)) = task {
                        give_back(&shared, s, task);
                    }
                } else if let Some((_, task)) = task {
                    // One token, one wake-up: the longest waiting caller of this task not woken
                    // yet. None left: those woken claim, and a claim that leaves work rings again.
                    if let Some(w) = st
                        .waiters
                        .iter_mut()
                        .find(|w| !w.rung && w.tasks.iter().any(|t| t == task))
                    {
                        w.rung = true;
                        inner.cond.notify_all();
                    } else {
                        st.dropped += 1;
                    }
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "redis: doorbell listener failed; retrying");
                let mut st = inner.lock();
                // Waiters look again (and see the error themselves).
                st.epoch += 1;
                inner.cond.notify_all();
                let _ = inner.cond.wait_timeout(st, pause);
                pause = (pause * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// The shard and task of a doorbell key of `group`'s shards.
fn task_of<'k>(shared: &Shared, group: &[u32], key: &'k str) -> Option<(u32, &'k str)> {
    group
        .iter()
        .find_map(|s| key.strip_prefix(&shared.key(*s, "b:")).map(|t| (*s, t)))
}

/// Rings again a doorbell whose token this process took but no longer needs.
fn give_back(shared: &Shared, shard: u32, task: &str) {
    let args = vec![task.as_bytes().to_vec()];
    if let Err(e) = shared.call(shard, &shared.scripts.ring, &args, Retry::Once) {
        tracing::debug!(error = %e, "redis: could not give a doorbell token back");
    }
}
