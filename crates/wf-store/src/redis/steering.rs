//! Steering on Redis: events sent to invocations, and the cancellation of workflow trees. Each
//! is one script call on the shard holding the invocation (its whole tree lives there).

use std::time::Instant;

use redis::Value;
use wf_core::{Failure, FailureKind, InvocationId, Timestamp, codec};

use super::fields::{array, bytes, id_arg, int, malformed, parse_id, parse_status, text, time_arg};
use super::{RETRY_BUDGET, Retry, Shared, order_arg};
use crate::error::StoreError;
use crate::limits::{MAX_RECORD_BYTES, MAX_VALUE_BYTES};
use crate::steering::{CancelReport, EventInbox, EventSent, NewEvent, StoredEvent};

fn budget() -> Retry {
    Retry::Until(Instant::now() + RETRY_BUDGET)
}

/// Refuses an event too large to store, before anything is sent.
fn check_event_size(event: &NewEvent) -> Result<(), StoreError> {
    let payload = event.payload.len();
    if payload > MAX_VALUE_BYTES {
        return Err(StoreError::TooLarge {
            what: "an event's payload".to_owned(),
            size: payload,
            limit: MAX_VALUE_BYTES,
        });
    }
    let total = payload + event.name.len() + event.key.as_ref().map_or(0, String::len);
    if total > MAX_RECORD_BYTES {
        return Err(StoreError::TooLarge {
            what: "an event".to_owned(),
            size: total,
            limit: MAX_RECORD_BYTES,
        });
    }
    Ok(())
}

fn seq_of(v: Option<&Value>, what: &str) -> Result<u64, StoreError> {
    v.and_then(int)
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| malformed(what))
}

fn ids(v: Option<&Value>, what: &str) -> Result<Vec<InvocationId>, StoreError> {
    array(v.ok_or_else(|| malformed(what))?)
        .ok_or_else(|| malformed(what))?
        .iter()
        .map(parse_id)
        .collect()
}

impl Shared {
    pub(super) fn send_event(
        &self,
        to: InvocationId,
        event: NewEvent,
        now: Timestamp,
    ) -> Result<EventSent, StoreError> {
        check_event_size(&event)?;
        let shard = self.locate(to)?.ok_or(StoreError::InvocationNotFound(to))?;
        let key = event.key.clone();
        let args = vec![
            time_arg(now),
            id_arg(to),
            event.name.into_bytes(),
            event.payload,
            if key.is_some() {
                b"1".to_vec()
            } else {
                b"0".to_vec()
            },
            key.clone().unwrap_or_default().into_bytes(),
            order_arg(),
        ];
        // Without a key a repeat would store the event twice: repeat only a call that never
        // reached the server. With one, repeating is what the key is for.
        let retry = if key.is_some() { budget() } else { Retry::Once };
        let reply = self.call(shard, &self.scripts.send_event, &args, retry)?;
        let r = array(&reply).ok_or_else(|| malformed("send_event"))?;
        match r.first().and_then(text) {
            Some("stored") => Ok(EventSent::Stored {
                seq: seq_of(r.get(1), "send_event")?,
            }),
            Some("already") => Ok(EventSent::AlreadyStored {
                seq: seq_of(r.get(1), "send_event")?,
            }),
            Some("conflict") => Err(StoreError::EventConflict {
                invocation: to,
                key: key.unwrap_or_default(),
            }),
            Some("final") => Err(StoreError::AlreadyFinished {
                invocation: to,
                status: parse_status(r.get(1).ok_or_else(|| malformed("send_event"))?)?,
            }),
            _ => Err(super::work::refusal(to, r)),
        }
    }

    pub(super) fn events(&self, id: InvocationId) -> Result<EventInbox, StoreError> {
        let shard = self.locate(id)?.ok_or(StoreError::InvocationNotFound(id))?;
        let reply = self.call(shard, &self.scripts.events, &[id_arg(id)], budget())?;
        let r = array(&reply).ok_or_else(|| malformed("events"))?;
        match r.first().and_then(text) {
            Some("ok") => {}
            Some("notfound") => return Err(StoreError::InvocationNotFound(id)),
            _ => return Err(malformed("events")),
        }
        let status = parse_status(r.get(1).ok_or_else(|| malformed("events"))?)?;
        let awaiting = r.get(2).and_then(text).map(str::to_owned);
        let events = r
            .iter()
            .skip(3)
            .enumerate()
            .map(|(seq, e)| {
                let f = array(e).ok_or_else(|| malformed("an event"))?;
                let field = |i: usize| f.get(i).ok_or_else(|| malformed("an event"));
                Ok(StoredEvent {
                    seq: seq as u64,
                    name: text(field(0)?)
                        .ok_or_else(|| malformed("an event's name"))?
                        .to_owned(),
                    payload: bytes(field(1)?)
                        .ok_or_else(|| malformed("an event's payload"))?
                        .to_vec(),
                    key: text(field(2)?).map(str::to_owned),
                    sent_at: Timestamp(seq_of(Some(field(3)?), "an event's time")?),
                    consumed: bytes(field(4)?).is_some(),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(EventInbox {
            events,
            waiting_for: awaiting.filter(|_| status == wf_core::Status::Waiting),
        })
    }

    pub(super) fn cancel_tree(
        &self,
        id: InvocationId,
        reason: &str,
        now: Timestamp,
    ) -> Result<CancelReport, StoreError> {
        let shard = self.locate(id)?.ok_or(StoreError::InvocationNotFound(id))?;
        let failure = codec::encode(&Failure::new(FailureKind::Cancelled, reason))?;
        let args = vec![
            time_arg(now),
            id_arg(id),
            reason.as_bytes().to_vec(),
            failure,
            order_arg(),
        ];
        // Harmless to repeat: a second walk finds the members cancelled or stopping.
        let reply = self.call(shard, &self.scripts.cancel_tree, &args, budget())?;
        let r = array(&reply).ok_or_else(|| malformed("cancel_tree"))?;
        match r.first().and_then(text) {
            Some("ok") => Ok(CancelReport {
                invocation: id,
                status_before: parse_status(r.get(1).ok_or_else(|| malformed("cancel_tree"))?)?,
                cancelled: ids(r.get(2), "cancel_tree")?,
                stopping: ids(r.get(3), "cancel_tree")?,
                already_stopping: ids(r.get(4), "cancel_tree")?,
            }),
            Some("notfound") => Err(StoreError::InvocationNotFound(id)),
            _ => Err(malformed("cancel_tree")),
        }
    }

    pub(super) fn cancel_requests(
        &self,
        wanted: &[InvocationId],
    ) -> Result<Vec<(InvocationId, String)>, StoreError> {
        let mut by_shard: Vec<Vec<InvocationId>> = vec![Vec::new(); self.shards as usize];
        for id in wanted {
            if let Some(shard) = self.locate(*id)? {
                by_shard[shard as usize].push(*id);
            }
        }
        let mut found = Vec::new();
        for (shard, ids) in by_shard.iter().enumerate() {
            if ids.is_empty() {
                continue;
            }
            let args: Vec<Vec<u8>> = ids.iter().map(|id| id_arg(*id)).collect();
            let reply = self.call(shard as u32, &self.scripts.requests, &args, budget())?;
            for entry in array(&reply).ok_or_else(|| malformed("cancel_requests"))? {
                let f = array(entry).ok_or_else(|| malformed("cancel_requests"))?;
                let id = parse_id(f.first().ok_or_else(|| malformed("cancel_requests"))?)?;
                let reason = f.get(1).and_then(text).unwrap_or("").to_owned();
                found.push((id, reason));
            }
        }
        // In the order asked.
        found.sort_by_key(|(id, _)| wanted.iter().position(|w| w == id));
        Ok(found)
    }
}
