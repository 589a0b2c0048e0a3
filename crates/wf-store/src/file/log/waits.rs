//! Who waits for the log, and waking only the waiters a change concerns.
//!
//! A thread that waits for a write or an fsync registers here (under the queue's lock) and
//! parks. Whoever changes what the log has written or synced (a leader ending its write or its
//! sync, a compaction, a failure) calls [`Waiters::wake`] under the same lock: it wakes every
//! waiter the change satisfies, and at most **one** of the others that may now lead the next
//! flush (the longest waiting). The rest stay parked. One condition variable woken with
//! `notify_all` woke every waiter at the end of every write and every sync: under 16 threads
//! most of them woke only to fight for the lock and sleep again, which cost the file store's
//! workflow row more CPU than the operations themselves.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::Thread;

/// What a waiter waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Want {
    /// Record `n` handed to the OS (or leading the write that hands it over).
    Written(u64),
    /// Record `n` durable (or leading the write and sync that make it so).
    Durable(u64),
    /// No write and no sync running: a compaction about to replace the file.
    Idle,
}

/// Where the log stands, as far as its waiters are concerned.
#[derive(Debug, Clone, Copy)]
pub(super) struct Progress {
    /// The last record handed to the OS.
    pub(super) written: u64,
    /// The last record known durable.
    pub(super) durable: u64,
    /// A leader (or a compaction) is writing.
    pub(super) writing: bool,
    /// A leader (or a compaction) is syncing.
    pub(super) syncing: bool,
    /// The log failed: every waiter must learn it.
    pub(super) failed: bool,
}

struct Waiter {
    want: Want,
    thread: Thread,
    woken: Arc<AtomicBool>,
}

/// The threads waiting for the log, in the order they came.
#[derive(Default)]
pub(super) struct Waiters {
    list: Vec<Waiter>,
}

/// A registered wait: [`Ticket::wait`] blocks until [`Waiters::wake`] picked it.
#[must_use]
pub(super) struct Ticket(Arc<AtomicBool>);

impl Ticket {
    /// Parks the calling thread until it is woken (a stray `unpark` of the thread is absorbed).
    pub(super) fn wait(&self) {
        while !self.0.load(Ordering::Acquire) {
            std::thread::park();
        }
    }
}

impl Waiters {
    /// Registers the calling thread as waiting for `want`. Call with the queue's lock held, and
    /// park (with [`Ticket::wait`]) after releasing it.
    pub(super) fn add(&mut self, want: Want) -> Ticket {
        let woken = Arc::new(AtomicBool::new(false));
        self.list.push(Waiter {
            want,
            thread: std::thread::current(),
            woken: Arc::clone(&woken),
        });
        Ticket(woken)
    }

    /// Wakes every waiter that `now` satisfies (all of them once the log failed), the
    /// compactions waiting for an idle log if it is idle, and the longest waiting of the others
    /// that may lead what it waits for (a write when none runs, a sync when neither runs).
    /// Call with the queue's lock held, after every change of `now`.
    pub(super) fn wake(&mut self, now: Progress) {
        if self.list.is_empty() {
            return;
        }
        let idle = !now.writing && !now.syncing;
        let mut leader = false;
        self.list.retain(|w| {
            let wake = match w.want {
                _ if now.failed => true,
                Want::Written(n) if n <= now.written => true,
                Want::Durable(n) if n <= now.durable => true,
                Want::Idle => idle,
                Want::Written(_) if !now.writing && !leader => {
                    leader = true;
                    true
                }
                Want::Durable(_) if idle && !leader => {
                    leader = true;
                    true
                }
                Want::Written(_) | Want::Durable(_) => false,
            };
            if wake {
                w.woken.store(true, Ordering::Release);
                w.thread.unpark();
            }
            !wake
        });
    }

    /// How many threads wait.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.list.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn woken(t: &Ticket) -> bool {
        t.0.load(Ordering::Acquire)
    }

    fn at(written: u64, durable: u64, writing: bool, syncing: bool) -> Progress {
        Progress {
            written,
            durable,
            writing,
            syncing,
            failed: false,
        }
    }

    #[test]
    fn a_sync_wakes_whom_it_covers_and_one_next_leader() {
        let mut w = Waiters::default();
        let covered = w.add(Want::Durable(3));
        let later = [w.add(Want::Durable(5)), w.add(Want::Durable(6))];
        let idle = w.add(Want::Idle);
        // A leader wrote 5 and syncs: nobody's durability changed, no leader can start a sync.
        w.wake(at(5, 2, false, true));
        assert!(!woken(&covered) && !later.iter().any(woken) && !woken(&idle));
        // The sync covered 3: its waiter, and the first of the others to lead the next one.
        w.wake(at(5, 3, false, false));
        assert!(woken(&covered));
        assert!(woken(&later[0]), "the longest waiting leads next");
        assert!(!woken(&later[1]), "only one leader is woken");
        assert!(woken(&idle), "a compaction may start on an idle log");
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn a_write_wakes_written_waiters_and_one_writer_while_a_sync_runs() {
        let mut w = Waiters::default();
        let durable = w.add(Want::Durable(4));
        let written = w.add(Want::Written(4));
        let next = [w.add(Want::Written(7)), w.add(Want::Written(8))];
        w.wake(at(4, 2, true, true));
        assert!(woken(&written), "written through 4");
        assert!(!next.iter().any(woken), "a write runs: nobody may lead one");
        w.wake(at(4, 2, false, true));
        assert!(woken(&next[0]), "a write may run beside the sync");
        assert!(!woken(&next[1]));
        assert!(!woken(&durable), "no sync may start while one runs");
        assert_eq!(w.len(), 2);
    }

    #[test]
    fn a_failure_wakes_everyone() {
        let mut w = Waiters::default();
        let all = [
            w.add(Want::Durable(9)),
            w.add(Want::Written(9)),
            w.add(Want::Idle),
        ];
        w.wake(Progress {
            failed: true,
            ..at(0, 0, true, true)
        });
        assert!(all.iter().all(woken));
        assert_eq!(w.len(), 0);
    }

    #[test]
    fn a_woken_ticket_does_not_park() {
        let mut w = Waiters::default();
        let t = w.add(Want::Durable(1));
        w.wake(at(1, 1, false, false));
        t.wait();
    }
}
