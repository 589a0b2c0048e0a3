//! Fresh ids for invocations started from outside any task, and worker names.

use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use wf_core::InvocationId;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A new random invocation id.
///
/// Entropy comes from std's randomly keyed SipHash (`RandomState`, seeded by the OS), mixed with
/// the process id and the clock, drawn once per process as two 64-bit keys; each id mixes a
/// process-wide counter with them (the SplitMix64 finalizer, a bijection, so two ids of one
/// process never share both halves), so ids are unique across threads, processes and restarts
/// without another dependency, for a few dozen instructions each (two SipHash runs per id were
/// a twentieth of a memory-store burst).
pub(crate) fn fresh_invocation_id() -> InvocationId {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let [k0, k1] = *process_keys();
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&splitmix(n ^ k0).to_le_bytes());
    bytes[8..].copy_from_slice(&splitmix(n.wrapping_add(k1)).to_le_bytes());
    InvocationId::from_random_bytes(bytes)
}

/// The SplitMix64 finalizer: a bijection of `u64` that spreads every input bit.
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// This process's random keys for [`fresh_invocation_id`], drawn once.
fn process_keys() -> &'static [u64; 2] {
    static KEYS: OnceLock<[u64; 2]> = OnceLock::new();
    KEYS.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let mut keys = [0u64; 2];
        for (i, key) in keys.iter_mut().enumerate() {
            let mut h = std::hash::RandomState::new().build_hasher();
            h.write_u128(nanos);
            h.write_u32(process_id());
            h.write_usize(i);
            *key = h.finish();
        }
        keys
    })
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
