//! Reads, and `wait_final`.

use std::cell::Cell;
use std::time::{Duration, Instant};

use redis::Value;
use wf_core::{InvocationId, JournalEntry, Status};

use super::fields::{
    array, bytes, id_arg, int, malformed, parse_id, parse_journal, parse_record, parse_status,
    text, token_record,
};
use super::{RETRY_BUDGET, Retry, Shared};
use crate::error::StoreError;
use crate::model::{InvocationRecord, StatusCounts};

/// The longest single block of `wait_final` (it blocks again until its timeout).
const MAX_BLOCK: Duration = Duration::from_secs(30);

/// How long after this thread's submit created an invocation its `wait_final` may block without
/// reading first: far below the 60 s a final token lives (`NOTIFY_TTL_MS` in the prelude).
const FRESH: Duration = Duration::from_secs(10);

/// The longest first block of a `wait_final` that did not read first.
const BLIND_BLOCK: Duration = Duration::from_secs(1);

thread_local! {
    /// The invocation this thread's last submit created: the store's serial, its id, and when
    /// the submit was sent.
    static CREATED: Cell<Option<(u64, InvocationId, Instant)>> = const { Cell::new(None) };
}

/// Notes that this thread's submit, sent at `sent`, created `id` in `shared`.
pub(super) fn created(shared: &Shared, id: InvocationId, sent: Instant) {
    CREATED.with(|c| c.set(Some((shared.bells.serial(), id, sent))));
}

/// Whether this thread's last submit on `shared` created `id` less than [`FRESH`] ago (and
/// forgets it).
fn take_fresh(shared: &Shared, id: InvocationId) -> bool {
    CREATED.with(|c| match c.get() {
        Some((serial, created, sent)) if created == id => {
            c.set(None);
            serial == shared.bells.serial() && sent.elapsed() < FRESH
        }
        _ => false,
    })
}

fn budget() -> Retry {
    Retry::Until(Instant::now() + RETRY_BUDGET)
}

impl Shared {
    /// The records of `ids` in shard `shard` (`None` for unknown ones), in one script call.
    fn read_in(
        &self,
        shard: u32,
        ids: &[InvocationId],
    ) -> Result<Vec<Option<InvocationRecord>>, StoreError> {
        Ok(self
            .read_ordered(shard, ids)?
            .into_iter()
            .map(|r| r.map(|(rec, _)| rec))
            .collect())
    }

    /// [`Shared::read_in`], with the caller's order of each invocation's creation.
    fn read_ordered(
        &self,
        shard: u32,
        ids: &[InvocationId],
    ) -> Result<Vec<Option<(InvocationRecord, u64)>>, StoreError> {
        let args: Vec<Vec<u8>> = ids.iter().map(|id| id_arg(*id)).collect();
        let reply = self.call(shard, &self.scripts.read, &args, budget())?;
        let records = array(&reply).ok_or_else(|| malformed("read"))?;
        ids.iter()
            .enumerate()
            .map(|(i, id)| match records.get(i) {
                None | Some(Value::Nil) => Ok(None),
                Some(v) => {
                    let order = array(v)
                        .and_then(|f| f.get(15))
                        .and_then(int)
                        .and_then(|o| u64::try_from(o).ok())
                        .unwrap_or(0);
                    Ok(Some((parse_record(*id, v)?, order)))
                }
            })
            .collect()
    }

    pub(super) fn read_one(&self, id: InvocationId) -> Result<InvocationRecord, StoreError> {
        let shard = self.locate(id)?.ok_or(StoreError::InvocationNotFound(id))?;
        self.read_in(shard, &[id])?
            .pop()
            .flatten()
            .ok_or(StoreError::InvocationNotFound(id))
    }

    pub(super) fn read_many(
        &self,
        ids: &[InvocationId],
    ) -> Result<Vec<InvocationRecord>, StoreError> {
        let mut by_shard: Vec<Vec<(usize, InvocationId)>> = vec![Vec::new(); self.shards as usize];
        for (i, id) in ids.iter().enumerate() {
            let shard = self
                .locate(*id)?
                .ok_or(StoreError::InvocationNotFound(*id))?;
            by_shard[shard as usize].push((i, *id));
        }
        let mut out: Vec<Option<InvocationRecord>> = vec![None; ids.len()];
        for (shard, wanted) in by_shard.iter().enumerate() {
            if wanted.is_empty() {
                continue;
            }
            let just_ids: Vec<InvocationId> = wanted.iter().map(|(_, id)| *id).collect();
            for ((i, _), rec) in wanted.iter().zip(self.read_in(shard as u32, &just_ids)?) {
                out[*i] = rec;
            }
        }
        ids.iter()
            .zip(out)
            .map(|(id, rec)| rec.ok_or(StoreError::InvocationNotFound(*id)))
            .collect()
    }

    pub(super) fn journal(&self, id: InvocationId) -> Result<Vec<JournalEntry>, StoreError> {
        let shard = self.locate(id)?.ok_or(StoreError::InvocationNotFound(id))?;
        let reply = self.call(shard, &self.scripts.journal, &[id_arg(id)], budget())?;
        let r = array(&reply).ok_or_else(|| malformed("journal"))?;
        match r.first().and_then(text) {
            Some("ok") => parse_journal(r.get(1).ok_or_else(|| malformed("journal"))?),
            Some("notfound") => Err(StoreError::InvocationNotFound(id)),
            _ => Err(malformed("journal")),
        }
    }

    /// Runs one command on the shard holding workflow `wf` (`None` when no shard does).
    fn on_workflow(
        &self,
        wf: InvocationId,
        build: impl Fn(String) -> redis::Cmd,
    ) -> Result<Option<Value>, StoreError> {
        let Some(shard) = self.locate(wf)? else {
            return Ok(None);
        };
        let cmd = build(self.prefixes[shard as usize].clone());
        self.with(budget(), |c| cmd.query(c.like())).map(Some)
    }

    pub(super) fn get_data(
        &self,
        wf: InvocationId,
        key: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let v = self.on_workflow(wf, |p| {
            let mut c = redis::cmd("HGET");
            c.arg(format!("{p}d:{wf}")).arg(key);
            c
        })?;
        Ok(v.as_ref().and_then(bytes).map(<[u8]>::to_vec))
    }

    pub(super) fn data_keys(&self, wf: InvocationId) -> Result<Vec<String>, StoreError> {
        let v = self.on_workflow(wf, |p| {
            let mut c = redis::cmd("HKEYS");
            c.arg(format!("{p}d:{wf}"));
            c
        })?;
        let mut keys: Vec<String> = match &v {
            None => Vec::new(),
            Some(v) => array(v)
                .ok_or_else(|| malformed("data keys"))?
                .iter()
                .map(|k| {
                    text(k)
                        .map(str::to_owned)
                        .ok_or_else(|| malformed("a data key"))
                })
                .collect::<Result<_, _>>()?,
        };
        keys.sort();
        Ok(keys)
    }

    pub(super) fn members(&self, wf: InvocationId) -> Result<Vec<InvocationId>, StoreError> {
        let v = self.on_workflow(wf, |p| {
            let mut c = redis::cmd("LRANGE");
            c.arg(format!("{p}m:{wf}")).arg(0).arg(-1);
            c
        })?;
        match &v {
            None => Ok(Vec::new()),
            Some(v) => array(v)
                .ok_or_else(|| malformed("members"))?
                .iter()
                .map(parse_id)
                .collect(),
        }
    }

    /// Every workflow root, oldest first. Roots created in the same millisecond: in creation
    /// order within a shard; across shards, in the order their creators made them (exact for
    /// one process; two processes' calls in the same millisecond have no order to keep).
    pub(super) fn workflows(&self) -> Result<Vec<InvocationRecord>, StoreError> {
        let cmds: Vec<redis::Cmd> = (0..self.shards)
            .map(|s| {
                let mut c = redis::cmd("ZRANGE");
                c.arg(self.key(s, "roots")).arg(0).arg(-1);
                c
            })
            .collect();
        let lists = self.with(budget(), |c| c.pipeline(&cmds))?;
        let mut all: Vec<(wf_core::Timestamp, u64, u32, usize, InvocationRecord)> = Vec::new();
        for (shard, list) in lists.iter().enumerate() {
            let ids = array(list)
                .ok_or_else(|| malformed("roots"))?
                .iter()
                .map(parse_id)
                .collect::<Result<Vec<_>, _>>()?;
            for (seq, rec) in self
                .read_ordered(shard as u32, &ids)?
                .into_iter()
                .enumerate()
            {
                if let Some((rec, order)) = rec {
                    all.push((rec.spec.created_at, order, shard as u32, seq, rec));
                }
            }
        }
        all.sort_by_key(|(created, order, shard, seq, _)| (*created, *order, *shard, *seq));
        Ok(all.into_iter().map(|(_, _, _, _, r)| r).collect())
    }

    pub(super) fn counts(&self) -> Result<StatusCounts, StoreError> {
        let cmds: Vec<redis::Cmd> = (0..self.shards)
            .map(|s| {
                let mut c = redis::cmd("HGETALL");
                c.arg(self.shard_key(s));
                c
            })
            .collect();
        let replies = self.with(budget(), |c| c.pipeline(&cmds))?;
        let mut counts = StatusCounts::default();
        for reply in &replies {
            let pairs: Vec<(&Value, &Value)> = match reply {
                Value::Map(m) => m.iter().map(|(k, v)| (k, v)).collect(),
                Value::Array(a) => a
                    .chunks(2)
                    .filter_map(|c| Some((c.first()?, c.get(1)?)))
                    .collect(),
                _ => return Err(malformed("counts")),
            };
            for (k, v) in pairs {
                let status: Status = parse_status(k)?;
                let n = int(v).ok_or_else(|| malformed("a count"))?;
                counts.add_n(status, u64::try_from(n).unwrap_or(0));
            }
        }
        Ok(counts)
    }

    /// Blocks until `id` is final: reads it, and while it is not, blocks on its notification
    /// list (`BLMOVE f:<id> f:<id>`: a rotation that takes nothing away, so every waiter wakes)
    /// on a dedicated connection whose reply timeout is longer than the block. A commit that
    /// makes an invocation final puts its final record in the token (`record_token` in the
    /// prelude), so a woken waiter returns it without reading again; other tokens (`1`: a
    /// cancellation, a recovery that failed it, a purge) send it back to read.
    ///
    /// Right after this thread's own submit created `id` (the `call` → `result` of one caller),
    /// the first read is skipped: the invocation was not final when it was created, and if it
    /// became final since, its token is in the list (tokens outlive [`FRESH`] by far), so the
    /// block returns it at once. That first block is short ([`BLIND_BLOCK`]): should the token be
    /// gone anyway (evicted), the caller reads after it.
    pub(super) fn wait_final(
        &self,
        id: InvocationId,
        timeout: Duration,
    ) -> Result<Option<InvocationRecord>, StoreError> {
        let deadline = Instant::now().checked_add(timeout);
        let shard = self.locate(id)?.ok_or(StoreError::InvocationNotFound(id))?;
        let key = self.key(shard, &format!("f:{id}"));
        let mut blind = take_fresh(self, id);
        loop {
            if !blind {
                let rec = self
                    .read_in(shard, &[id])?
                    .pop()
                    .flatten()
                    .ok_or(StoreError::InvocationNotFound(id))?;
                if rec.state.status.is_final() {
                    return Ok(Some(rec));
                }
            }
            let left = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => MAX_BLOCK,
            };
            if left.is_zero() {
                return Ok(None);
            }
            let mut block = left.min(MAX_BLOCK).max(Duration::from_millis(1));
            if std::mem::take(&mut blind) {
                block = block.min(BLIND_BLOCK);
            }
            let woke = self.block(&key, block, |c| {
                let mut cmd = redis::cmd("BLMOVE");
                cmd.arg(&key)
                    .arg(&key)
                    .arg("LEFT")
                    .arg("LEFT")
                    .arg(format!("{:.3}", block.as_secs_f64()));
                cmd.query::<Value>(c.like())
            });
            match woke {
                // The commit that made it final handed over the record: no second read.
                Ok(token) => {
                    if let Some(rec) = bytes(&token).and_then(|t| token_record(id, t)) {
                        let rec = rec?;
                        if rec.state.status.is_final() {
                            return Ok(Some(rec));
                        }
                    }
                }
                // A lost connection (a restart, a failover): look again, on a new connection;
                // the read above retries through the outage or reports it.
                Err(e) if e.is_transient() => {
                    std::thread::sleep(Duration::from_millis(50).min(left));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Runs a blocking command of at most `block` on a blocking connection, its reply timeout
    /// raised above the block for the call.
    pub(super) fn block<T>(
        &self,
        _key: &str,
        block: Duration,
        f: impl FnOnce(&mut super::Conn) -> redis::RedisResult<T>,
    ) -> Result<T, StoreError> {
        let normal = self.url.timeout;
        self.blocking
            .with(|c| {
                c.set_read_timeout(Some(block + normal))?;
                let r = f(c);
                c.set_read_timeout(Some(normal))?;
                r
            })
            .map_err(|e| self.err(&e))
    }
}
