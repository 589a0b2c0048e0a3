//! The state changes: each one script call on the shard that holds the invocation.

use std::time::{Duration, Instant};

use redis::Value;
use wf_core::{
    Failure, FailureKind, InvocationId, TaskId, Timestamp, TransitionError, WorkerId,
    WorkflowIdentity, check_write, codec,
};

use super::fields::{
    array, id_arg, int, malformed, new_invocation_args, parse_id, parse_journal, parse_record,
    parse_status, text, time_arg,
};
use super::{RETRY_BUDGET, Retry, Shared, order_arg, unique_token};
use crate::error::StoreError;
use crate::limits::{MAX_RECORD_BYTES, MAX_VALUE_BYTES, bounded_failure};
use crate::model::{
    Claim, Commit, Lease, NewInvocation, Outcome, Submitted, TaskSet, lease_expiry,
};

/// How many expired leases one script call recovers (more are left for the next call).
const RECOVER_BATCH: usize = 1000;
/// How many finished trees one purge call removes.
const PURGE_BATCH: usize = 200;

/// A shard's candidate for a claim, ordered as the claim rule orders them: runnable longest
/// first; a queued one before a delayed one runnable since the same millisecond; queued ones by
/// the order they were queued in, delayed ones by id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Candidate {
    since: u64,
    kind: i64,
    order: u64,
    id: String,
}

pub(super) fn budget() -> Retry {
    Retry::Until(Instant::now() + RETRY_BUDGET)
}

/// The task arguments of a script: count, then the names.
fn task_args(tasks: &TaskSet) -> Vec<Vec<u8>> {
    let mut args = Vec::with_capacity(tasks.len() + 1);
    args.push(tasks.len().to_string().into_bytes());
    args.extend(tasks.iter().map(|t| t.as_str().as_bytes().to_vec()));
    args
}

fn too_large(what: &str, size: usize, limit: usize) -> StoreError {
    StoreError::TooLarge {
        what: what.to_owned(),
        size,
        limit,
    }
}

/// Refuses one oversized value or request before anything is sent.
pub(super) fn check_sizes<'a>(
    what: &str,
    values: impl IntoIterator<Item = &'a [u8]>,
) -> Result<(), StoreError> {
    let mut total = 0usize;
    for v in values {
        if v.len() > MAX_VALUE_BYTES {
            return Err(too_large(
                &format!("a value in {what}"),
                v.len(),
                MAX_VALUE_BYTES,
            ));
        }
        total += v.len();
    }
    if total > MAX_RECORD_BYTES {
        return Err(too_large(what, total, MAX_RECORD_BYTES));
    }
    Ok(())
}

/// Maps the status-change refusals every script returns in the same shape.
pub(super) fn refusal(id: InvocationId, reply: &[Value]) -> StoreError {
    let word = |i: usize| reply.get(i).and_then(text).unwrap_or("").to_owned();
    match word(0).as_str() {
        "notfound" => StoreError::InvocationNotFound(id),
        "lost" => StoreError::LeaseLost {
            invocation: id,
            reason: word(1),
        },
        "invalid" => StoreError::InvalidCommit {
            invocation: id,
            reason: word(1),
        },
        "transition" => match (reply.get(1), reply.get(2)) {
            (Some(from), Some(to)) => match (parse_status(from), parse_status(to)) {
                (Ok(from), Ok(to)) => StoreError::Transition {
                    invocation: id,
                    source: TransitionError { from, to },
                },
                (Err(e), _) | (_, Err(e)) => e,
            },
            _ => malformed("a refused transition"),
        },
        other => malformed(&format!("reply `{other}`")),
    }
}

/// The refusal of a data write by `id`, which is not the root of `workflow`. The scripts refuse
/// exactly what `check_write` refuses; the same function builds the error.
pub(super) fn access_refused(id: InvocationId, workflow: InvocationId) -> StoreError {
    let identity = WorkflowIdentity {
        workflow_id: workflow,
        workflow_type: TaskId::new(""),
        parent_workflow_id: None,
    };
    match check_write(id, &identity, workflow) {
        Err(e) => StoreError::Access(e),
        Ok(()) => malformed("a refused data write by the root"),
    }
}

/// A commit's script arguments (see `lua/commit.lua`), refused when over the size limits.
fn commit_args(lease: &Lease, commit: &Commit, now: Timestamp) -> Result<Vec<Vec<u8>>, StoreError> {
    let id = lease.invocation;
    let (kind, payload, not_before): (&str, Vec<u8>, Option<Timestamp>) = match &commit.outcome {
        Outcome::Success(r) => ("success", r.clone(), None),
        // Error texts are cut as every backend cuts them (`limits::bounded_failure`).
        Outcome::Failed(f) => ("failed", codec::encode(&bounded_failure(f.clone()))?, None),
        Outcome::Retry { not_before, error } => (
            "retry",
            codec::encode(&bounded_failure(error.clone()))?,
            Some(*not_before),
        ),
        Outcome::Released => ("released", Vec::new(), None),
        Outcome::Deferred { not_before, error } => (
            "deferred",
            codec::encode(&bounded_failure(error.clone()))?,
            Some(*not_before),
        ),
        Outcome::Waiting { .. } => ("waiting", Vec::new(), None),
        Outcome::Suspended(_) => ("suspended", Vec::new(), None),
    };
    let mut args = vec![
        time_arg(now),
        id_arg(id),
        lease.worker.as_str().as_bytes().to_vec(),
        lease.attempt.to_string().into_bytes(),
        unique_token().into_bytes(),
        kind.as_bytes().to_vec(),
        payload,
        not_before.map(time_arg).unwrap_or_default(),
        order_arg(),
    ];
    args.push(commit.journal.len().to_string().into_bytes());
    for e in &commit.journal {
        args.push(e.seq.to_string().into_bytes());
        args.push(codec::encode(e)?);
    }
    args.push(commit.data.len().to_string().into_bytes());
    for (k, v) in &commit.data {
        args.push(k.as_bytes().to_vec());
        args.push(v.clone());
    }
    args.push(commit.children.len().to_string().into_bytes());
    for child in &commit.children {
        args.extend(new_invocation_args(child)?);
    }
    let (on, wake_at, event): (&[InvocationId], _, _) = match &commit.outcome {
        Outcome::Waiting { on } => (on, None, None),
        Outcome::Suspended(s) => (&s.children, s.wake_at, s.event.as_deref()),
        _ => (&[], None, None),
    };
    args.push(on.len().to_string().into_bytes());
    args.extend(on.iter().map(|c| id_arg(*c)));
    args.push(wake_at.map(time_arg).unwrap_or_default());
    args.push(if event.is_some() {
        b"1".to_vec()
    } else {
        b"0".to_vec()
    });
    args.push(event.unwrap_or("").as_bytes().to_vec());
    args.push(if commit.cancel_acknowledged {
        b"1".to_vec()
    } else {
        b"0".to_vec()
    });
    args.push(commit.consumed.len().to_string().into_bytes());
    args.extend(commit.consumed.iter().map(|s| s.to_string().into_bytes()));
    check_sizes("a commit", args.iter().map(Vec::as_slice))?;
    Ok(args)
}

/// How long a commit keeps trying: it carries the only copy of an execution's results, so
/// through a restart or failover while the lease lasts. The token makes a repeat of a commit
/// that was applied (its reply lost) an acknowledged no-op.
fn patience(lease: &Lease, now: Timestamp) -> Retry {
    Retry::Until(Instant::now() + now.until(lease.expires_at).max(RETRY_BUDGET))
}

impl Shared {
    pub(super) fn submit(
        &self,
        new: NewInvocation,
        now: Timestamp,
    ) -> Result<Submitted, StoreError> {
        let mut args = vec![time_arg(now)];
        args.extend(new_invocation_args(&new)?);
        args.push(order_arg());
        check_sizes("a submission", args.iter().map(Vec::as_slice))?;
        let shard = self.shard_of_new(&new)?;
        let sent = Instant::now();
        let reply = self.call(shard, &self.scripts.submit, &args, budget())?;
        let r = array(&reply).ok_or_else(|| malformed("submit"))?;
        match r.first().and_then(text) {
            Some("created") => {
                self.remember(new.id, shard);
                super::reads::created(self, new.id, sent);
                Ok(Submitted::Created)
            }
            Some("exists") => Ok(Submitted::AlreadyExists),
            Some("conflict") => Err(StoreError::Conflict(new.id)),
            _ => Err(refusal(new.id, r)),
        }
    }

    /// Where a new invocation goes: where its id already is (a resubmission), else with its
    /// caller (its tree), else with its workflow, else the home shard of its own id.
    pub(super) fn shard_of_new(&self, new: &NewInvocation) -> Result<u32, StoreError> {
        if self.shards == 1 {
            return Ok(0);
        }
        if let Some(s) = self.locate(new.id)? {
            return Ok(s);
        }
        if let Some(parent) = new.parent
            && let Some(s) = self.locate(parent)?
        {
            return Ok(s);
        }
        let wf = new.identity.workflow_id;
        if wf != new.id
            && let Some(s) = self.locate(wf)?
        {
            return Ok(s);
        }
        Ok(self.home_shard(wf))
    }

    /// Each shard's candidate (when it became runnable, and how it compares with the others'),
    /// and the earliest time anything becomes claimable by the clock.
    fn probe_shards(
        &self,
        tasks: &TaskSet,
        now: Timestamp,
    ) -> Result<(Vec<Option<Candidate>>, Option<Timestamp>), StoreError> {
        let mut args = vec![time_arg(now)];
        args.extend(task_args(tasks));
        let replies = self.call_all(&self.scripts.probe, &args, budget())?;
        let mut best = Vec::with_capacity(replies.len());
        let mut due: Option<u64> = None;
        for reply in &replies {
            let r = array(reply).ok_or_else(|| malformed("probe"))?;
            let field = |i: usize| r.get(i).ok_or_else(|| malformed("probe"));
            let since = int(field(0)?).ok_or_else(|| malformed("probe"))?;
            let kind = int(field(1)?).ok_or_else(|| malformed("probe"))?;
            let tie = text(field(2)?).unwrap_or("").to_owned();
            let d = int(field(3)?).ok_or_else(|| malformed("probe"))?;
            best.push(u64::try_from(since).ok().map(|since| Candidate {
                since,
                kind,
                // A queued candidate ties by the caller's order (a number), the others by id.
                order: if kind == 0 {
                    tie.parse().unwrap_or(0)
                } else {
                    0
                },
                id: if kind == 0 { String::new() } else { tie },
            }));
            if let Ok(d) = u64::try_from(d) {
                due = Some(due.map_or(d, |x| x.min(d)));
            }
        }
        Ok((best, due.map(Timestamp)))
    }

    /// Whether a claim by `tasks` at `now` would find something, and the next due time.
    pub(super) fn probe(
        &self,
        tasks: &TaskSet,
        now: Timestamp,
    ) -> Result<(bool, Option<Timestamp>), StoreError> {
        let (since, due) = self.probe_shards(tasks, now)?;
        Ok((since.iter().any(Option::is_some), due))
    }

    pub(super) fn claim(
        &self,
        worker: &WorkerId,
        tasks: &TaskSet,
        lease_for: Duration,
        now: Timestamp,
    ) -> Result<Option<Claim>, StoreError> {
        let expires_at = lease_expiry(now, lease_for);
        let mut args = vec![
            time_arg(now),
            worker.as_str().as_bytes().to_vec(),
            time_arg(expires_at),
            RECOVER_BATCH.to_string().into_bytes(),
            order_arg(),
        ];
        args.extend(task_args(tasks));
        // One shard: claim there. Several: the shard whose candidate is runnable longest first
        // (one pipelined probe), the next one if that claim lost a race.
        let order: Vec<u32> = if self.shards == 1 {
            vec![0]
        } else {
            let (best, _) = self.probe_shards(tasks, now)?;
            let mut order: Vec<(Candidate, u32)> = best
                .into_iter()
                .enumerate()
                .filter_map(|(s, c)| c.map(|c| (c, s as u32)))
                .collect();
            order.sort();
            order.into_iter().map(|(_, s)| s).collect()
        };
        let marks = self.bells.marks();
        for shard in order {
            let reply = self.call(shard, &self.scripts.claim, &args, Retry::Once)?;
            let claim = self.claimed(shard, worker, expires_at, &reply)?;
            self.note_claim(tasks, marks, claim.is_some(), &reply);
            if claim.is_some() {
                return Ok(claim);
            }
        }
        Ok(None)
    }

    /// Tells this thread's next `wait_for_work` what a claim on a one-shard namespace found
    /// (nothing, and when something becomes claimable by the clock: it need not look again).
    fn note_claim(&self, tasks: &TaskSet, marks: (u64, u64), found: bool, reply: &Value) {
        // A claim's reply {'none', due}: due -1 for never.
        let due = array(reply)
            .filter(|r| r.first().and_then(text) == Some("none"))
            .and_then(|r| r.get(1))
            .and_then(int)
            .filter(|_| self.shards == 1 && !found);
        match due {
            Some(d) => {
                let due = u64::try_from(d).ok().map(Timestamp);
                super::bells::claimed(self, tasks, marks, false, due);
            }
            None => super::bells::claimed(self, tasks, marks, true, None),
        }
    }

    /// Decodes a claim script's reply (as `claim_one` in the prelude returns it) in `shard`.
    fn claimed(
        &self,
        shard: u32,
        worker: &WorkerId,
        expires_at: Timestamp,
        reply: &Value,
    ) -> Result<Option<Claim>, StoreError> {
        let r = array(reply).ok_or_else(|| malformed("claim"))?;
        match r.first().and_then(text) {
            Some("none") => return Ok(None),
            Some("claimed") => {}
            _ => {
                let id = parse_id(r.get(3).ok_or_else(|| malformed("claim"))?)?;
                return Err(refusal(id, r));
            }
        }
        let id = parse_id(r.get(1).ok_or_else(|| malformed("claim"))?)?;
        let record = parse_record(id, r.get(2).ok_or_else(|| malformed("claim"))?)?;
        let journal = parse_journal(r.get(3).ok_or_else(|| malformed("claim"))?)?;
        self.remember(id, shard);
        let lease = Lease {
            invocation: id,
            worker: worker.clone(),
            attempt: record.state.attempts,
            expires_at: record
                .state
                .lease
                .as_ref()
                .map_or(expires_at, |l| l.expires_at),
        };
        Ok(Some(Claim {
            lease,
            record,
            journal,
        }))
    }

    pub(super) fn shard_of(&self, id: InvocationId) -> Result<u32, StoreError> {
        self.locate(id)?.ok_or(StoreError::InvocationNotFound(id))
    }

    pub(super) fn renew(
        &self,
        lease: &Lease,
        lease_for: Duration,
        now: Timestamp,
    ) -> Result<Lease, StoreError> {
        let id = lease.invocation;
        let shard = self.shard_of(id)?;
        let expires_at = lease_expiry(now, lease_for);
        let args = vec![
            time_arg(now),
            id_arg(id),
            lease.worker.as_str().as_bytes().to_vec(),
            lease.attempt.to_string().into_bytes(),
            time_arg(expires_at),
        ];
        let reply = self.call(shard, &self.scripts.renew, &args, budget())?;
        let r = array(&reply).ok_or_else(|| malformed("renew"))?;
        match r.first().and_then(text) {
            Some("ok") => Ok(Lease {
                expires_at,
                ..lease.clone()
            }),
            _ => Err(refusal(id, r)),
        }
    }

    pub(super) fn commit(
        &self,
        lease: &Lease,
        commit: Commit,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let shard = self.shard_of(lease.invocation)?;
        let args = commit_args(lease, &commit, now)?;
        let reply = self.commit_call(shard, &self.scripts.commit, &args, patience(lease, now))?;
        self.committed(shard, lease, &commit, &reply)
    }

    /// The commit, then a claim for the lease's worker, in one script call on a one-shard
    /// namespace; on several shards the claim must compare every shard's candidate, so it is
    /// the commit, then [`Shared::claim`].
    pub(super) fn commit_then_claim(
        &self,
        lease: &Lease,
        commit: Commit,
        tasks: &TaskSet,
        lease_for: Duration,
        now: Timestamp,
    ) -> Result<Result<Option<Claim>, StoreError>, StoreError> {
        if self.shards != 1 {
            self.commit(lease, commit, now)?;
            return Ok(self.claim(&lease.worker, tasks, lease_for, now));
        }
        let expires_at = lease_expiry(now, lease_for);
        let mut args = commit_args(lease, &commit, now)?;
        args.push(time_arg(expires_at));
        args.push(RECOVER_BATCH.to_string().into_bytes());
        args.extend(task_args(tasks));
        let marks = self.bells.marks();
        let reply = self.commit_call(0, &self.scripts.commit_claim, &args, patience(lease, now))?;
        self.committed(0, lease, &commit, &reply)?;
        let Some(claim_reply) = array(&reply).and_then(|r| r.get(1)) else {
            return Ok(Err(malformed("commit_claim")));
        };
        let claim = self.claimed(0, &lease.worker, expires_at, claim_reply);
        let found = !matches!(claim, Ok(None));
        self.note_claim(tasks, marks, found, claim_reply);
        Ok(claim)
    }

    /// What a commit's reply says (the commit-then-claim script's starts the same way).
    fn committed(
        &self,
        shard: u32,
        lease: &Lease,
        commit: &Commit,
        reply: &Value,
    ) -> Result<(), StoreError> {
        let id = lease.invocation;
        let r = array(reply).ok_or_else(|| malformed("commit"))?;
        match r.first().and_then(text) {
            Some("ok") => {
                for child in &commit.children {
                    self.remember(child.id, shard);
                }
                Ok(())
            }
            Some("access") => Err(access_refused(
                id,
                parse_id(r.get(1).ok_or_else(|| malformed("commit"))?)?,
            )),
            Some("conflict") => Err(StoreError::Conflict(parse_id(
                r.get(1).ok_or_else(|| malformed("commit"))?,
            )?)),
            _ => Err(refusal(id, r)),
        }
    }

    /// A script that writes what a commit writes (`script`: commit or commit-then-claim),
    /// followed by `WAIT` for the configured replicas.
    fn commit_call(
        &self,
        shard: u32,
        script: &super::scripts::Script,
        args: &[Vec<u8>],
        retry: Retry,
    ) -> Result<Value, StoreError> {
        self.durable_call(shard, script, args, retry)
    }
    /// A script that writes what a commit writes (a commit, a checkpoint), followed by `WAIT`
    /// for the configured replicas.
    pub(super) fn durable_call(
        &self,
        shard: u32,
        script: &super::scripts::Script,
        args: &[Vec<u8>],
        retry: Retry,
    ) -> Result<Value, StoreError> {
        if self.url.wait_replicas == 0 {
            return self.call(shard, script, args, retry);
        }
        let key = self.shard_key(shard);
        let (replicas, timeout) = (self.url.wait_replicas, self.url.wait_timeout);
        let (reply, acked) = self.with(retry, |c| {
            let reply = self.scripts.call(c, script, &key, args)?;
            let mut wait = redis::cmd("WAIT");
            wait.arg(replicas).arg(timeout.as_millis() as u64);
            let acked = c.on_node_of(&key, &wait)?;
            Ok((reply, acked))
        })?;
        let acked = int(&acked).unwrap_or(0);
        if acked < i64::from(replicas) {
            return Err(StoreError::Unavailable(format!(
                "Redis at {}: the commit reached {acked} of the {replicas} replica(s) asked for \
                 within {timeout:?} (it is applied on the master, but a failover now could lose \
                 it); check the replicas",
                self.url
            )));
        }
        Ok(reply)
    }

    pub(super) fn recover_expired(&self, now: Timestamp) -> Result<Vec<InvocationId>, StoreError> {
        let args = vec![
            time_arg(now),
            RECOVER_BATCH.to_string().into_bytes(),
            order_arg(),
        ];
        let mut recovered = Vec::new();
        for shard in 0..self.shards {
            loop {
                let reply = self.call(shard, &self.scripts.recover, &args, budget())?;
                let ids = array(&reply).ok_or_else(|| malformed("recover"))?;
                for v in ids {
                    recovered.push(parse_id(v)?);
                }
                if ids.len() < RECOVER_BATCH {
                    break;
                }
            }
        }
        Ok(recovered)
    }

    pub(super) fn cancel(
        &self,
        id: InvocationId,
        reason: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let shard = self.shard_of(id)?;
        let failure = codec::encode(&bounded_failure(Failure::new(
            FailureKind::Cancelled,
            reason,
        )))?;
        let args = vec![time_arg(now), id_arg(id), failure, order_arg()];
        let reply = self.call(shard, &self.scripts.cancel, &args, Retry::Once)?;
        let r = array(&reply).ok_or_else(|| malformed("cancel"))?;
        match r.first().and_then(text) {
            Some("ok") => Ok(()),
            _ => Err(refusal(id, r)),
        }
    }

    pub(super) fn retry(&self, id: InvocationId, now: Timestamp) -> Result<(), StoreError> {
        let shard = self.shard_of(id)?;
        let args = vec![time_arg(now), id_arg(id), order_arg()];
        let reply = self.call(shard, &self.scripts.retry, &args, Retry::Once)?;
        let r = array(&reply).ok_or_else(|| malformed("retry"))?;
        match r.first().and_then(text) {
            Some("ok") => Ok(()),
            Some("notretryable") => Err(StoreError::NotRetryable {
                invocation: id,
                reason: r.get(1).and_then(text).unwrap_or("").to_owned(),
            }),
            _ => Err(refusal(id, r)),
        }
    }

    /// The workflows a purge with `finished_before` would remove, in creation order (across
    /// shards as `workflows` orders roots).
    pub(super) fn purgeable(
        &self,
        finished_before: Timestamp,
    ) -> Result<Vec<InvocationId>, StoreError> {
        let replies = self.call_all(
            &self.scripts.purgeable,
            &[time_arg(finished_before)],
            budget(),
        )?;
        let mut all: Vec<(u64, u64, u32, u64, InvocationId)> = Vec::new();
        for (shard, reply) in replies.iter().enumerate() {
            for entry in array(reply).ok_or_else(|| malformed("purgeable"))? {
                let f = array(entry).ok_or_else(|| malformed("purgeable"))?;
                let n = |i: usize| {
                    f.get(i)
                        .and_then(int)
                        .and_then(|v| u64::try_from(v).ok())
                        .ok_or_else(|| malformed("purgeable"))
                };
                let id = parse_id(f.first().ok_or_else(|| malformed("purgeable"))?)?;
                all.push((n(1)?, n(2)?, shard as u32, n(3)?, id));
            }
        }
        all.sort_unstable();
        Ok(all.into_iter().map(|(.., id)| id).collect())
    }

    pub(super) fn purge_finished(&self, finished_before: Timestamp) -> Result<usize, StoreError> {
        let args = vec![
            time_arg(finished_before),
            PURGE_BATCH.to_string().into_bytes(),
        ];
        let mut removed = 0usize;
        for shard in 0..self.shards {
            loop {
                let reply = self.call(shard, &self.scripts.purge, &args, budget())?;
                let r = array(&reply).ok_or_else(|| malformed("purge"))?;
                let n = r.first().and_then(int).ok_or_else(|| malformed("purge"))?;
                let looked = r.get(1).and_then(int).ok_or_else(|| malformed("purge"))?;
                removed += usize::try_from(n).unwrap_or(0);
                if looked < PURGE_BATCH as i64 {
                    break;
                }
            }
        }
        Ok(removed)
    }
}
