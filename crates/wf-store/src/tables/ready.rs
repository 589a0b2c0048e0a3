//! The ready queue of one task: its claimable invocations without a not-before time, by ticket
//! (the order they became ready).
//!
//! Tickets come from one counter, so an invocation almost always joins at the back, and a
//! claim always takes the front: a sorted double-ended queue does both in O(1), where a
//! B-tree searched from its root and allocated a node every few entries (a fifth of a burst
//! task's instructions under the store's lock were its insert and remove). An invocation that
//! leaves from the middle (cancelled, purged while pending) is marked gone and skipped; the
//! marks are swept once they outnumber the live entries, so the queue stays O(live) in size
//! and every operation O(log n) amortized at worst.

use std::collections::VecDeque;

use wf_core::InvocationId;

/// One queued invocation, or the mark of one that left from the middle of the queue.
#[derive(Clone, Copy)]
struct Entry {
    ticket: u64,
    id: InvocationId,
    live: bool,
}

/// See the module docs. Invariant: the front entry, if any, is live.
#[derive(Default)]
#[cfg_attr(test, derive(Clone))]
pub(super) struct ReadyQueue {
    /// In ticket order, tickets unique.
    entries: VecDeque<Entry>,
    /// How many entries are live.
    live: usize,
}

/// How many gone marks a queue keeps before it sweeps them (at least; also never more than it
/// has live entries).
const SWEEP_AFTER: usize = 64;

/// The capacity a queue keeps however empty it gets (a few KiB).
const KEEP_CAPACITY: usize = 256;

impl ReadyQueue {
    /// Queues `id` under `ticket` (replacing what is queued under it, as a map would).
    pub(super) fn insert(&mut self, ticket: u64, id: InvocationId) {
        let entry = Entry {
            ticket,
            id,
            live: true,
        };
        if self.entries.back().is_none_or(|last| last.ticket < ticket) {
            self.entries.push_back(entry);
            self.live += 1;
            return;
        }
        let at = self.entries.partition_point(|e| e.ticket < ticket);
        match self.entries.get_mut(at) {
            Some(e) if e.ticket == ticket => {
                self.live += usize::from(!e.live);
                *e = entry;
            }
            _ => {
                self.entries.insert(at, entry);
                self.live += 1;
            }
        }
    }

    /// Takes the invocation queued under `ticket` out; says whether one was.
    pub(super) fn remove(&mut self, ticket: u64) -> bool {
        if self.entries.front().is_some_and(|e| e.ticket == ticket) {
            self.entries.pop_front();
            self.live -= 1;
            self.drop_gone_front();
            return true;
        }
        let at = self.entries.partition_point(|e| e.ticket < ticket);
        let Some(e) = self
            .entries
            .get_mut(at)
            .filter(|e| e.ticket == ticket && e.live)
        else {
            return false;
        };
        e.live = false;
        self.live -= 1;
        let gone = self.entries.len() - self.live;
        if gone > SWEEP_AFTER && gone > self.live {
            self.entries.retain(|e| e.live);
        }
        true
    }

    /// Restores the invariant after the front left, and gives memory back once the queue has
    /// drained to a quarter of its capacity (a burst's queue grows to its size, then drains).
    fn drop_gone_front(&mut self) {
        while self.entries.front().is_some_and(|e| !e.live) {
            self.entries.pop_front();
        }
        let capacity = self.entries.capacity();
        if capacity > KEEP_CAPACITY && self.entries.len() < capacity / 4 {
            self.entries.shrink_to(capacity / 2);
        }
    }

    /// The first queued invocation and its ticket.
    pub(super) fn first(&self) -> Option<(u64, InvocationId)> {
        self.entries.front().map(|e| (e.ticket, e.id))
    }

    /// Whether nothing is queued.
    pub(super) fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// The queued invocations in ticket order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (u64, InvocationId)> + '_ {
        self.entries
            .iter()
            .filter(|e| e.live)
            .map(|e| (e.ticket, e.id))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn id(n: u64) -> InvocationId {
        InvocationId::from_u128(u128::from(n) + 1)
    }

    /// Every operation agrees with a `BTreeMap`, the queue's former implementation, over a
    /// long pseudo-random sequence of inserts (mostly at the back, some before it, some
    /// replacing), removals (front, middle, unknown) and reads.
    #[test]
    fn behaves_as_an_ordered_map() {
        let mut queue = ReadyQueue::default();
        let mut model: BTreeMap<u64, InvocationId> = BTreeMap::new();
        let mut next = 0u64;
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut draw = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for step in 0..200_000u64 {
            match draw(10) {
                0..=3 => {
                    queue.insert(next, id(step));
                    model.insert(next, id(step));
                    next += 1;
                }
                4 => {
                    // Put back before the back (an undone change), or replace.
                    let ticket = draw(next + 1);
                    queue.insert(ticket, id(step));
                    model.insert(ticket, id(step));
                    next = next.max(ticket + 1);
                }
                5..=7 => {
                    let front = model.first_key_value().map(|(t, _)| *t);
                    if let Some(t) = front {
                        assert!(queue.remove(t));
                        model.remove(&t);
                    }
                }
                _ => {
                    let ticket = draw(next + 2);
                    assert_eq!(queue.remove(ticket), model.remove(&ticket).is_some());
                }
            }
            assert_eq!(
                queue.first(),
                model.first_key_value().map(|(t, i)| (*t, *i))
            );
            assert_eq!(queue.is_empty(), model.is_empty());
            if step % 997 == 0 {
                assert!(queue.iter().eq(model.iter().map(|(t, i)| (*t, *i))));
                assert!(queue.entries.len() <= 2 * model.len() + SWEEP_AFTER + 1);
            }
        }
    }

    /// Marks left by removals from the middle are swept: a queue whose head stays while
    /// everything behind it leaves holds O(live) entries.
    #[test]
    fn marks_are_swept() {
        let mut queue = ReadyQueue::default();
        for t in 0..10_000 {
            queue.insert(t, id(t));
        }
        for t in 1..10_000 {
            assert!(queue.remove(t));
        }
        assert_eq!(queue.first(), Some((0, id(0))));
        assert!(queue.entries.len() <= SWEEP_AFTER + 2);
        assert!(queue.remove(0));
        assert!(queue.is_empty() && queue.first().is_none());
        assert_eq!(queue.entries.len(), 0);
    }

    /// A queue that grew (a burst) and drained gives its memory back.
    #[test]
    fn a_drained_queue_shrinks() {
        let mut queue = ReadyQueue::default();
        for t in 0..20_000 {
            queue.insert(t, id(t));
        }
        assert!(queue.entries.capacity() >= 20_000);
        for t in 0..20_000 {
            assert_eq!(queue.first(), Some((t, id(t))));
            assert!(queue.remove(t));
        }
        assert!(queue.is_empty());
        assert!(queue.entries.capacity() <= 2 * KEEP_CAPACITY);
    }
}
