//! The throughput operations: `submit_many` (a batch in one script call per shard) and
//! `checkpoint` (progress plus the claim of an inline child, one script call).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use redis::Value;
use wf_core::{InvocationId, Timestamp};

use super::fields::{
    array, id_arg, int, malformed, new_invocation_args, parse_id, parse_record, text, time_arg,
};
use super::work::{budget, check_sizes, refusal};
use super::{RETRY_BUDGET, Retry, Shared, order_arg, unique_token};
use crate::error::StoreError;
use crate::model::{Checkpoint, Claim, Lease, NewInvocation, Submitted, lease_expiry};

impl Shared {
    /// Where each of `ids` is stored (`None`: nowhere), with one pipelined round trip for the
    /// ids this process has not seen.
    fn locate_many(
        &self,
        ids: &[InvocationId],
    ) -> Result<HashMap<InvocationId, Option<u32>>, StoreError> {
        let mut found: HashMap<InvocationId, Option<u32>> = HashMap::with_capacity(ids.len());
        if self.shards == 1 {
            found.extend(ids.iter().map(|id| (*id, Some(0))));
            return Ok(found);
        }
        let mut unknown = Vec::new();
        {
            let located = self.located.lock().unwrap_or_else(|p| p.into_inner());
            for id in ids {
                match located.get(id) {
                    Some(s) => {
                        found.insert(*id, Some(*s));
                    }
                    None => unknown.push(*id),
                }
            }
        }
        unknown.sort_unstable();
        unknown.dedup();
        if unknown.is_empty() {
            return Ok(found);
        }
        let cmds: Vec<redis::Cmd> = unknown
            .iter()
            .flat_map(|id| {
                (0..self.shards).map(move |s| {
                    let mut c = redis::cmd("EXISTS");
                    c.arg(self.key(s, &format!("i:{id}")));
                    c
                })
            })
            .collect();
        let replies = self.with(Retry::Until(Instant::now() + RETRY_BUDGET), |c| {
            c.pipeline(&cmds)
        })?;
        for (i, id) in unknown.iter().enumerate() {
            let start = i * self.shards as usize;
            let shard = (0..self.shards)
                .find(|s| replies.get(start + *s as usize).and_then(int) == Some(1));
            if let Some(s) = shard {
                self.remember(*id, s);
            }
            found.insert(*id, shard);
        }
        Ok(found)
    }

    pub(super) fn submit_many(
        &self,
        batch: Vec<NewInvocation>,
        now: Timestamp,
    ) -> Result<Vec<Submitted>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let mut per_new = Vec::with_capacity(batch.len());
        for new in &batch {
            per_new.push(new_invocation_args(new)?);
        }
        check_sizes(
            "a batch of submissions",
            per_new.iter().flatten().map(Vec::as_slice),
        )?;
        // The shard of each, as `submit` picks it: where its id is, else its caller's, else its
        // workflow's, else its workflow's home.
        let mut wanted: Vec<InvocationId> = Vec::with_capacity(batch.len() * 2);
        for new in &batch {
            wanted.push(new.id);
            wanted.extend(new.parent);
            wanted.push(new.identity.workflow_id);
        }
        let located = self.locate_many(&wanted)?;
        let at = |id: InvocationId| located.get(&id).copied().flatten();
        let mut groups: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for (i, new) in batch.iter().enumerate() {
            let wf = new.identity.workflow_id;
            let shard = at(new.id)
                .or_else(|| new.parent.and_then(at))
                .or_else(|| at(wf))
                .unwrap_or_else(|| self.home_shard(wf));
            groups.entry(shard).or_default().push(i);
        }
        let order = order_arg();
        let header = |n: usize, check_only: bool| {
            vec![
                time_arg(now),
                order.clone(),
                if check_only {
                    b"1".to_vec()
                } else {
                    b"0".to_vec()
                },
                n.to_string().into_bytes(),
            ]
        };
        let script = &self.scripts.submit_many;
        let replies: Vec<Value> = if groups.len() == 1 {
            // One shard: one atomic script call. Its members are the whole batch, in order. A
            // burst of 20,000 is several MB of arguments: they move into the command one by one,
            // each freed as it is copied into the command's one buffer, sized up front (no
            // per-argument allocations held twice, no buffer regrown).
            let shard = *groups.keys().next().ok_or_else(|| malformed("a batch"))?;
            let head = header(batch.len(), false);
            let key = self.shard_key(shard);
            let count = head.len() + per_new.iter().map(Vec::len).sum::<usize>();
            let size = head
                .iter()
                .chain(per_new.iter().flatten())
                .map(Vec::len)
                .sum::<usize>();
            let mut cmd = script.command_with_capacity(&key, count, size);
            for a in head.into_iter().chain(per_new.into_iter().flatten()) {
                cmd.arg(a.as_slice());
            }
            self.pipeline_scripts(std::slice::from_ref(&cmd), &[script], budget())?
        } else {
            let args_of = |members: &[usize], check_only: bool| {
                let mut args = header(members.len(), check_only);
                for i in members {
                    args.extend(per_new[*i].iter().cloned());
                }
                args
            };
            // Several shards: every part checked first (one pipelined round trip), then every
            // part submitted (another); each part is atomic in its shard. Repeating is harmless
            // (submissions are idempotent by id).
            let check: Vec<redis::Cmd> = groups
                .iter()
                .map(|(s, m)| {
                    super::scripts::command(script, &self.shard_key(*s), &args_of(m, true))
                })
                .collect();
            let checked = self.pipeline_scripts(&check, &[script], budget())?;
            self.first_conflict(&groups, &batch, &checked)?;
            let submit: Vec<redis::Cmd> = groups
                .iter()
                .map(|(s, m)| {
                    super::scripts::command(script, &self.shard_key(*s), &args_of(m, false))
                })
                .collect();
            self.pipeline_scripts(&submit, &[script], budget())?
        };
        self.first_conflict(&groups, &batch, &replies)?;
        let mut answers = vec![Submitted::AlreadyExists; batch.len()];
        for ((shard, members), reply) in groups.iter().zip(&replies) {
            let r = array(reply).ok_or_else(|| malformed("submit_many"))?;
            let each = r
                .get(1)
                .and_then(array)
                .ok_or_else(|| malformed("submit_many"))?;
            for (i, answer) in members.iter().zip(each) {
                if text(answer) == Some("created") {
                    answers[*i] = Submitted::Created;
                    self.remember(batch[*i].id, *shard);
                }
            }
        }
        Ok(answers)
    }

    /// The conflict (or other refusal) of the batch's first refused invocation, if any part
    /// was refused.
    fn first_conflict(
        &self,
        groups: &BTreeMap<u32, Vec<usize>>,
        batch: &[NewInvocation],
        replies: &[Value],
    ) -> Result<(), StoreError> {
        let mut first: Option<(usize, StoreError)> = None;
        for ((_, members), reply) in groups.iter().zip(replies) {
            let r = array(reply).ok_or_else(|| malformed("submit_many"))?;
            let refused = match r.first().and_then(text) {
                Some("ok") => continue,
                Some("conflict") => {
                    let id = parse_id(r.get(1).ok_or_else(|| malformed("submit_many"))?)?;
                    StoreError::Conflict(id)
                }
                _ => refusal(batch[members[0]].id, r),
            };
            let position = match &refused {
                StoreError::Conflict(id) => batch.iter().position(|n| n.id == *id),
                _ => None,
            }
            .unwrap_or(members[0]);
            if first.as_ref().is_none_or(|(p, _)| position < *p) {
                first = Some((position, refused));
            }
        }
        match first {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
    }

    pub(super) fn checkpoint(
        &self,
        lease: &Lease,
        checkpoint: Checkpoint,
        run: InvocationId,
        lease_for: Duration,
        now: Timestamp,
    ) -> Result<Claim, StoreError> {
        let id = lease.invocation;
        let shard = self.shard_of(id)?;
        let expires_at = lease_expiry(now, lease_for);
        let mut args = vec![
            time_arg(now),
            id_arg(id),
            lease.worker.as_str().as_bytes().to_vec(),
            lease.attempt.to_string().into_bytes(),
            time_arg(expires_at),
            id_arg(run),
            order_arg(),
            unique_token().into_bytes(),
        ];
        args.push(checkpoint.journal.len().to_string().into_bytes());
        for e in &checkpoint.journal {
            args.push(e.seq.to_string().into_bytes());
            args.push(wf_core::codec::encode(e)?);
        }
        args.push(checkpoint.data.len().to_string().into_bytes());
        for (k, v) in &checkpoint.data {
            args.push(k.as_bytes().to_vec());
            args.push(v.clone());
        }
        args.push(checkpoint.children.len().to_string().into_bytes());
        for child in &checkpoint.children {
            args.extend(new_invocation_args(child)?);
        }
        check_sizes("a checkpoint", args.iter().map(Vec::as_slice))?;
        // Like a commit, it carries the only copy of the execution's progress: keep trying
        // through a restart or failover while the lease lasts. The token makes a repeat of a
        // checkpoint that was applied (its reply lost) answer as the first did.
        let patience = now.until(lease.expires_at).max(RETRY_BUDGET);
        let retry = Retry::Until(Instant::now() + patience);
        let reply = self.durable_call(shard, &self.scripts.checkpoint, &args, retry)?;
        let r = array(&reply).ok_or_else(|| malformed("checkpoint"))?;
        match r.first().and_then(text) {
            Some("ok") => {}
            Some("access") => {
                let workflow = parse_id(r.get(1).ok_or_else(|| malformed("checkpoint"))?)?;
                return Err(super::work::access_refused(id, workflow));
            }
            Some("conflict") => {
                return Err(StoreError::Conflict(parse_id(
                    r.get(1).ok_or_else(|| malformed("checkpoint"))?,
                )?));
            }
            _ => return Err(refusal(id, r)),
        }
        for child in &checkpoint.children {
            self.remember(child.id, shard);
        }
        let record = parse_record(run, r.get(1).ok_or_else(|| malformed("checkpoint"))?)?;
        Ok(Claim {
            lease: Lease {
                invocation: run,
                worker: lease.worker.clone(),
                attempt: 1,
                expires_at,
            },
            record,
            journal: Vec::new(),
        })
    }
}
