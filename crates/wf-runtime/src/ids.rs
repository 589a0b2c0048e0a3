//! Fresh ids for invocations started from outside any task, and worker names.

use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use wf_core::InvocationId;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A new random invocation id.
///
/// Entropy comes from std's randomly keyed SipHash (`RandomState`, seeded by the OS), mixed with
/// a process-wide counter, the process id and the clock, so ids are unique across threads,
/// processes and restarts without another dependency.
pub(crate) fn fresh_invocation_id() -> InvocationId {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut bytes = [0u8; 16];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        let mut h = std::hash::RandomState::new().build_hasher();
        h.write_u64(n);
        h.write_u128(nanos);
        h.write_u32(process_id());
        h.write_usize(i);
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    InvocationId::from_random_bytes(bytes)
}

/// This process's id, read once (each `std::process::id()` is a system call).
fn process_id() -> u32 {
    static PID: OnceLock<u32> = OnceLock::new();
    *PID.get_or_init(std::process::id)
}

/// A worker name unique in this process: `w<pid>-<n>`.
pub(crate) fn worker_name() -> String {
    format!(
        "w{}-{}",
        process_id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn fresh_ids_are_distinct() {
        let ids: HashSet<_> = (0..10_000).map(|_| fresh_invocation_id()).collect();
        assert_eq!(ids.len(), 10_000);
    }
}
