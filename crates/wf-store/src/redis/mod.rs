//! The Redis backend (feature `redis`): many worker processes on many machines sharing one
//! Redis or one Redis Cluster.
//!
//! Every state change is one Lua script call (one round trip), atomic on the server: submit,
//! claim (with lease recovery), renew, commit (journal + data + children + status + consumed
//! events + waking the parent, fenced by the lease), recover, cancel, purge, bind, and the
//! steering operations: a suspension on a durable timer is a commit, `send_event` and
//! `cancel_tree` are one script each. The scripts share a prelude whose
//! status table is generated from `wf_core::status::TRANSITIONS`. Keys are grouped into
//! *shards*: every key of a shard starts with the hash tag `{<ns>:<shard>}`, so one script only
//! ever touches one slot, and the same scripts run on a single Redis and on Redis Cluster. A
//! workflow tree (a workflow and its sub-workflows) lives in one shard, chosen from its top
//! root's id. See `docs/backends.md` for the key layout, durability per Redis setting, and when
//! to pick Redis.
//!
//! ```no_run
//! use wf_store::redis::RedisStore;
//! use wf_store::StoreRead;
//! let store = RedisStore::open("redis://127.0.0.1:6379/")?;
//! println!("{} invocations", store.counts()?.total());
//! # Ok::<(), wf_store::StoreError>(())
//! ```

mod batch;
mod bells;
mod conn;
pub(crate) mod fields;
mod reads;
mod scripts;
mod steering;
pub mod url;
mod work;

#[cfg(feature = "testing")]
pub mod testing;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::{RedisError, Value};
use wf_core::{InvocationId, JournalEntry, Timestamp, WorkerId};

use self::bells::Bells;
use self::conn::{Conn, Pool, classify, is_transient};
use self::fields::{array, int, malformed, text};
use self::scripts::{Script, Scripts};
pub use self::url::{RedisUrl, UrlError};
use crate::error::StoreError;
use crate::model::{
    Checkpoint, Claim, Commit, InvocationRecord, Lease, NewInvocation, StatusCounts, Submitted,
    TaskSet,
};
use crate::steering::{CancelReport, EventInbox, EventSent, NewEvent};
use crate::store::{StoreAdmin, StoreRead, StoreWork};

/// The version of the key layout and script protocol, recorded in a namespace's meta hash.
const FORMAT: &str = "1";

/// How long an idempotent operation keeps retrying through transient failures (a server
/// restart, a failover) before it reports [`StoreError::Unavailable`].
const RETRY_BUDGET: Duration = Duration::from_secs(2);

/// How many ids the id → shard cache keeps before it starts over.
const LOCATED_CACHE: usize = 100_000;

/// A store in Redis. See the [module docs](self).
pub struct RedisStore {
    shared: Arc<Shared>,
}

/// Everything the store and its doorbell listeners share.
pub(crate) struct Shared {
    url: RedisUrl,
    shards: u32,
    /// Per shard: `{<ns>:<shard>}:`.
    prefixes: Vec<String>,
    meta_key: String,
    pool: Pool,
    /// Connections for blocking commands (doorbell listeners, `wait_final`).
    blocking: Pool,
    scripts: Scripts,
    bells: Bells,
    /// Which shard holds an id, for ids this process has seen (ids never move).
    located: Mutex<HashMap<InvocationId, u32>>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.shared.url)
            .field("shards", &self.shared.shards)
            .finish_non_exhaustive()
    }
}

/// Which calls a retry may repeat.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Only once, at once, on a fresh connection when the pooled one turned out dead.
    Once,
    /// Through transient failures until this instant.
    Until(Instant),
}

impl RedisStore {
    /// Opens the store at `url` (see [`RedisUrl`] for the forms), creating its namespace on
    /// first use with the URL's `shards` (default 1).
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] for a URL that does not parse, a wrong password, a server that is
    /// too old or a namespace recorded with another shard count; [`StoreError::Unavailable`]
    /// when the server cannot be reached.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_url(parse_url(url)?, true)
    }

    /// Opens the store at `url` for reading (the inspector): a namespace that does not exist
    /// yet is not created, it reads as empty.
    ///
    /// # Errors
    ///
    /// As [`RedisStore::open`].
    pub fn open_read(url: &str) -> Result<Self, StoreError> {
        Self::open_url(parse_url(url)?, false)
    }

    /// Opens the store at a parsed URL; `create` records a missing namespace.
    ///
    /// # Errors
    ///
    /// As [`RedisStore::open`].
    pub fn open_url(url: RedisUrl, create: bool) -> Result<Self, StoreError> {
        let pool = Pool::new(&url, url.pool)?;
        let blocking = Pool::new(&url, url.pool)?;
        let meta_key = format!("{{{}}}:meta", url.namespace);
        let scripts = Scripts::new();
        let mut store = Shared {
            shards: 1,
            prefixes: Vec::new(),
            meta_key,
            pool,
            blocking,
            scripts,
            bells: Bells::new(),
            located: Mutex::new(HashMap::new()),
            url,
        };
        if store.check_server()? {
            store.use_functions()?;
        }
        let (shards, _) = store.bind(None, create)?;
        store.shards = shards;
        store.prefixes = (0..shards)
            .map(|s| format!("{{{}:{s}}}:", store.url.namespace))
            .collect();
        Ok(RedisStore {
            shared: Arc::new(store),
        })
    }

    /// The URL, password hidden.
    pub fn url(&self) -> &RedisUrl {
        &self.shared.url
    }

    /// How many shards the namespace has.
    pub fn shards(&self) -> u32 {
        self.shared.shards
    }

    /// Whether the namespace exists (a store opened with [`RedisStore::open`] created it; one
    /// opened with [`RedisStore::open_read`] may read an empty namespace).
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the server cannot be reached.
    pub fn namespace_exists(&self) -> Result<bool, StoreError> {
        let key = self.shared.meta_key.clone();
        let n: i64 = self
            .shared
            .with(Retry::Until(Instant::now() + RETRY_BUDGET), |c| {
                redis::cmd("EXISTS").arg(&key).query(c.like())
            })?;
        Ok(n == 1)
    }
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        self.shared.bells.stop(&self.shared);
    }
}

fn parse_url(url: &str) -> Result<RedisUrl, StoreError> {
    RedisUrl::parse(url).map_err(|e| StoreError::Backend {
        store: e.url.clone(),
        message: e.reason,
    })
}

/// This process's order of a state change among its own: ties between invocations that became
/// ready in the same millisecond in different shards go by it.
fn order_arg() -> Vec<u8> {
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::Relaxed).to_string().into_bytes()
}

/// A token unique to one call (commit retries are recognised by it).
fn unique_token() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{:x}.{:x}.{:x}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

impl Shared {
    /// The key every script of shard `s` gets as KEYS[1] (its counts hash).
    fn shard_key(&self, s: u32) -> String {
        format!("{}n", self.prefixes[s as usize])
    }

    fn key(&self, s: u32, rest: &str) -> String {
        format!("{}{rest}", self.prefixes[s as usize])
    }

    /// The shard a new workflow tree whose top root is `id` lives in.
    fn home_shard(&self, id: InvocationId) -> u32 {
        (id.as_u128() % u128::from(self.shards)) as u32
    }

    fn err(&self, e: &RedisError) -> StoreError {
        classify(&self.url, e)
    }

    /// Runs `f` on a pooled connection, retrying as `retry` allows.
    fn with<T>(
        &self,
        retry: Retry,
        mut f: impl FnMut(&mut Conn) -> redis::RedisResult<T>,
    ) -> Result<T, StoreError> {
        let mut pause = Duration::from_millis(20);
        let mut tries = 0;
        loop {
            tries += 1;
            match self.pool.with(&mut f) {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let again = match retry {
                        Retry::Once => tries == 1 && (e.is_io_error() || e.is_connection_dropped()),
                        Retry::Until(deadline) => {
                            is_transient(&e) && Instant::now() + pause < deadline
                        }
                    };
                    if !again {
                        return Err(self.err(&e));
                    }
                    tracing::debug!(error = %self.url.redact(&e.to_string()), "redis: retrying");
                    if tries > 1 {
                        std::thread::sleep(pause);
                        pause = (pause * 2).min(Duration::from_millis(500));
                    }
                }
            }
        }
    }

    /// Calls `script` on shard `s`.
    fn call(
        &self,
        s: u32,
        script: &Script,
        args: &[Vec<u8>],
        retry: Retry,
    ) -> Result<Value, StoreError> {
        let key = self.shard_key(s);
        self.with(retry, |c| self.scripts.call(c, script, &key, args))
    }

    /// Calls `script` on every shard in one pipeline (each shard's call goes to its node) and
    /// returns the replies in shard order.
    fn call_all(
        &self,
        script: &Script,
        args: &[Vec<u8>],
        retry: Retry,
    ) -> Result<Vec<Value>, StoreError> {
        let cmds: Vec<redis::Cmd> = (0..self.shards)
            .map(|s| scripts::command(script, &self.shard_key(s), args))
            .collect();
        self.pipeline_scripts(&cmds, &[script], retry)
    }

    /// Runs a pipeline of `EVALSHA`s of `scripts`, loading them on `NOSCRIPT` and running it
    /// again.
    fn pipeline_scripts(
        &self,
        cmds: &[redis::Cmd],
        used: &[&Script],
        retry: Retry,
    ) -> Result<Vec<Value>, StoreError> {
        self.with(retry, |c| match c.pipeline(cmds) {
            Err(e) if scripts::is_noscript(&e) => {
                self.scripts.load(c, used)?;
                c.pipeline(cmds)
            }
            other => other,
        })
    }

    /// Checks that the server is new enough (`BLMOVE`, `ZRANGE … WITHSCORES` in scripts).
    /// Returns whether it has functions (Redis 7; every master of a cluster).
    fn check_server(&self) -> Result<bool, StoreError> {
        // A cluster answers INFO from every master: each must be new enough.
        let info: Value = self.with(Retry::Until(Instant::now() + RETRY_BUDGET), |c| {
            redis::cmd("INFO").arg("server").query(c.like())
        })?;
        let texts: Vec<&str> = match &info {
            Value::Map(nodes) => nodes.iter().filter_map(|(_, v)| text(v)).collect(),
            other => text(other).into_iter().collect(),
        };
        let mut functions = !texts.is_empty();
        for info in texts {
            let version = info
                .lines()
                .find_map(|l| l.strip_prefix("redis_version:"))
                .unwrap_or("0")
                .trim();
            let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
            let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
            if (major, minor) < (6, 2) {
                return Err(StoreError::Backend {
                    store: self.url.to_string(),
                    message: format!(
                        "the server is Redis {version}; wf needs Redis 6.2 or newer (BLMOVE)"
                    ),
                });
            }
            functions &= major >= 7;
        }
        Ok(functions)
    }

    /// Loads the scripts as a function library (`FUNCTION LOAD`: its prelude runs once, not on
    /// every call) and calls them by `FCALL` from now on. A server that refuses it for good (an
    /// ACL user without `FUNCTION LOAD`, a server with the command renamed away) keeps
    /// `EVALSHA`.
    fn use_functions(&self) -> Result<(), StoreError> {
        let refused = self.with(Retry::Until(Instant::now() + RETRY_BUDGET), |c| {
            self.scripts.use_functions(c)
        })?;
        if let Some(e) = refused {
            tracing::info!(
                error = %self.url.redact(&e.to_string()),
                "redis: no function library (FUNCTION LOAD refused); calling scripts by EVALSHA"
            );
        }
        Ok(())
    }

    /// Reads (and with `create`, records) the namespace's meta: shard count, app, format.
    /// Binds `app` when given. Returns the shard count and the recorded app.
    fn bind(&self, app: Option<&str>, create: bool) -> Result<(u32, Option<String>), StoreError> {
        let wanted = self.url.shards.map(|s| s.to_string()).unwrap_or_default();
        let args = vec![
            app.unwrap_or("").as_bytes().to_vec(),
            wanted.into_bytes(),
            FORMAT.as_bytes().to_vec(),
            if create { b"1".to_vec() } else { b"0".to_vec() },
        ];
        let key = self.meta_key.clone();
        let reply = self.with(Retry::Until(Instant::now() + RETRY_BUDGET), |c| {
            scripts::call_bind(c, &self.scripts.bind, &key, &args)
        })?;
        let r = array(&reply).ok_or_else(|| malformed("bind"))?;
        match r.first().and_then(text) {
            Some("ok") => {}
            Some("format") => {
                let found = r.get(1).and_then(text).unwrap_or("?");
                return Err(StoreError::Backend {
                    store: self.url.to_string(),
                    message: format!(
                        "namespace '{}' has key format {found}, this wf writes format {FORMAT}: \
                         use another ns= or the wf version that wrote it",
                        self.url.namespace
                    ),
                });
            }
            _ => return Err(malformed("bind")),
        }
        let recorded = r.get(1).and_then(int).map(|n| n as u32);
        let shards = recorded.or(self.url.shards).unwrap_or(1).max(1);
        if let (Some(rec), Some(asked)) = (recorded, self.url.shards)
            && rec != asked
        {
            return Err(StoreError::Backend {
                store: self.url.to_string(),
                message: format!(
                    "namespace '{}' was created with {rec} shard(s), the URL asks for {asked}: \
                     the shard count is fixed when a namespace is created; drop shards= from the \
                     URL, or use a new ns=",
                    self.url.namespace
                ),
            });
        }
        let app = r.get(2).and_then(text).map(str::to_owned);
        Ok((shards, app))
    }

    fn remember(&self, id: InvocationId, shard: u32) {
        if self.shards == 1 {
            return;
        }
        let mut located = self.located.lock().unwrap_or_else(|p| p.into_inner());
        if located.len() >= LOCATED_CACHE {
            located.clear();
        }
        located.insert(id, shard);
    }

    /// The shard holding `id`, or `None` when no shard does. One shard: always shard 0 (the
    /// scripts report unknown ids). Several: ids seen by this process are cached, others are
    /// looked for in every shard in one pipelined round trip.
    fn locate(&self, id: InvocationId) -> Result<Option<u32>, StoreError> {
        if self.shards == 1 {
            return Ok(Some(0));
        }
        if let Some(s) = self
            .located
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
        {
            return Ok(Some(*s));
        }
        let cmds: Vec<redis::Cmd> = (0..self.shards)
            .map(|s| {
                let mut c = redis::cmd("EXISTS");
                c.arg(self.key(s, &format!("i:{id}")));
                c
            })
            .collect();
        let found = self.with(Retry::Until(Instant::now() + RETRY_BUDGET), |c| {
            c.pipeline(&cmds)
        })?;
        let shard = found
            .iter()
            .position(|v| int(v) == Some(1))
            .map(|s| s as u32);
        if let Some(s) = shard {
            self.remember(id, s);
        }
        Ok(shard)
    }
}

impl StoreRead for RedisStore {
    fn backend(&self) -> &'static str {
        "redis"
    }

    fn app_id(&self) -> Result<Option<String>, StoreError> {
        Ok(self.shared.bind(None, false)?.1)
    }

    fn invocation(&self, id: InvocationId) -> Result<InvocationRecord, StoreError> {
        self.shared.read_one(id)
    }

    fn invocations(&self, ids: &[InvocationId]) -> Result<Vec<InvocationRecord>, StoreError> {
        self.shared.read_many(ids)
    }

    fn journal(&self, id: InvocationId) -> Result<Vec<JournalEntry>, StoreError> {
        self.shared.journal(id)
    }

    fn get_data(&self, workflow: InvocationId, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.shared.get_data(workflow, key)
    }

    fn data_keys(&self, workflow: InvocationId) -> Result<Vec<String>, StoreError> {
        self.shared.data_keys(workflow)
    }

    fn workflow_invocations(
        &self,
        workflow: InvocationId,
    ) -> Result<Vec<InvocationId>, StoreError> {
        self.shared.members(workflow)
    }

    fn workflows(&self) -> Result<Vec<InvocationRecord>, StoreError> {
        self.shared.workflows()
    }

    fn counts(&self) -> Result<StatusCounts, StoreError> {
        self.shared.counts()
    }

    fn purgeable(&self, finished_before: Timestamp) -> Result<Vec<InvocationId>, StoreError> {
        self.shared.purgeable(finished_before)
    }

    fn wait_final(
        &self,
        id: InvocationId,
        timeout: Duration,
    ) -> Result<Option<InvocationRecord>, StoreError> {
        self.shared.wait_final(id, timeout)
    }

    fn events(&self, id: InvocationId) -> Result<EventInbox, StoreError> {
        self.shared.events(id)
    }

    fn cancel_requests(
        &self,
        ids: &[InvocationId],
    ) -> Result<Vec<(InvocationId, String)>, StoreError> {
        self.shared.cancel_requests(ids)
    }
}

impl StoreWork for RedisStore {
    fn bind_app(&self, app_id: &str) -> Result<(), StoreError> {
        let (_, recorded) = self.shared.bind(Some(app_id), true)?;
        match recorded {
            Some(r) if r != app_id => Err(StoreError::AppMismatch {
                store: self.shared.url.to_string(),
                recorded: r,
                requested: app_id.to_owned(),
            }),
            _ => Ok(()),
        }
    }

    fn submit(&self, invocation: NewInvocation, now: Timestamp) -> Result<Submitted, StoreError> {
        self.shared.submit(invocation, now)
    }

    fn submit_many(
        &self,
        invocations: Vec<NewInvocation>,
        now: Timestamp,
    ) -> Result<Vec<Submitted>, StoreError> {
        self.shared.submit_many(invocations, now)
    }

    fn checkpoint(
        &self,
        lease: &Lease,
        checkpoint: Checkpoint,
        run: InvocationId,
        lease_for: Duration,
        now: Timestamp,
    ) -> Result<Option<Claim>, StoreError> {
        self.shared
            .checkpoint(lease, checkpoint, run, lease_for, now)
            .map(Some)
    }

    fn claim(
        &self,
        worker: &WorkerId,
        tasks: &TaskSet,
        lease_for: Duration,
        now: Timestamp,
    ) -> Result<Option<Claim>, StoreError> {
        self.shared.claim(worker, tasks, lease_for, now)
    }

    fn next_due(&self, tasks: &TaskSet) -> Result<Option<Timestamp>, StoreError> {
        Ok(self.shared.probe(tasks, crate::memory::system_now())?.1)
    }

    fn wait_for_work(&self, tasks: &TaskSet, timeout: Duration) -> Result<bool, StoreError> {
        bells::wait_for_work(&self.shared, tasks, timeout)
    }

    fn renew(
        &self,
        lease: &Lease,
        lease_for: Duration,
        now: Timestamp,
    ) -> Result<Lease, StoreError> {
        self.shared.renew(lease, lease_for, now)
    }

    fn commit(&self, lease: &Lease, commit: Commit, now: Timestamp) -> Result<(), StoreError> {
        self.shared.commit(lease, commit, now)
    }

    fn commit_then_claim(
        &self,
        lease: &Lease,
        commit: Commit,
        tasks: &TaskSet,
        lease_for: Duration,
        now: Timestamp,
    ) -> Result<Result<Option<Claim>, StoreError>, StoreError> {
        self.shared
            .commit_then_claim(lease, commit, tasks, lease_for, now)
    }

    fn recover_expired(&self, now: Timestamp) -> Result<Vec<InvocationId>, StoreError> {
        self.shared.recover_expired(now)
    }

    fn send_event(
        &self,
        to: InvocationId,
        event: NewEvent,
        now: Timestamp,
    ) -> Result<EventSent, StoreError> {
        self.shared.send_event(to, event, now)
    }
}

impl StoreAdmin for RedisStore {
    fn cancel(&self, id: InvocationId, reason: &str, now: Timestamp) -> Result<(), StoreError> {
        self.shared.cancel(id, reason, now)
    }

    fn purge_finished(&self, finished_before: Timestamp) -> Result<usize, StoreError> {
        self.shared.purge_finished(finished_before)
    }

    fn retry(&self, id: InvocationId, now: Timestamp) -> Result<(), StoreError> {
        self.shared.retry(id, now)
    }

    fn cancel_tree(
        &self,
        id: InvocationId,
        reason: &str,
        now: Timestamp,
    ) -> Result<CancelReport, StoreError> {
        self.shared.cancel_tree(id, reason, now)
    }
}
