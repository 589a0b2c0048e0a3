//! Identifiers and the timestamp type shared by every layer.

use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The name a task was registered under. Unique within an app. Cheap to clone (shared); stored
/// as the plain name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TaskId(Arc<str>);

impl TaskId {
    /// Wraps a task name.
    pub fn new(name: impl Into<String>) -> Self {
        Self(Arc::from(name.into()))
    }

    /// The task name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for TaskId {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

/// A fast hasher for maps keyed by [`InvocationId`] (random or derived UUIDs) or [`TaskId`]
/// (names the app registered), neither chosen by an adversary: a multiply-rotate mix of 8-byte
/// words instead of SipHash. Use it through [`IdHashing`]: `HashMap<InvocationId, V, IdHashing>`.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

impl IdHasher {
    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for IdHasher {
    /// The state, avalanched (the SplitMix64 finalizer): the mix only carries bits upwards, and
    /// ids that differ only in their high bytes (small numbers, big-endian) must still land in
    /// different buckets, which hash tables pick by the low bits.
    fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in words.by_ref() {
            let mut w = [0u8; 8];
            w.copy_from_slice(word);
            self.mix(u64::from_le_bytes(w));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            // Byte by byte: a copy of an unknown length into a buffer is a `memcpy` call, which
            // costs more than hashing the word.
            let w = rest
                .iter()
                .rev()
                .fold(0u64, |w, &b| (w << 8) | u64::from(b));
            self.mix(w);
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.mix(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.mix(u64::from(n));
    }

    /// Two words: how [`InvocationId`] hashes (its 16 bytes as one number).
    fn write_u128(&mut self, n: u128) {
        self.mix(n as u64);
        self.mix((n >> 64) as u64);
    }

    fn write_u64(&mut self, n: u64) {
        self.mix(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }
}

/// The `BuildHasher` of [`IdHasher`], for `HashMap<InvocationId, V, IdHashing>`.
pub type IdHashing = BuildHasherDefault<IdHasher>;

/// One call of a task: a UUID, unique across all apps and runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct InvocationId(uuid::Uuid);

/// One 128-bit number, not the UUID's derived hash (a length and 16 bytes): id-keyed maps hash
/// ids on every store operation, and [`IdHasher`] takes the number as two words.
impl std::hash::Hash for InvocationId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u128(self.0.as_u128());
    }
}

impl InvocationId {
    /// Wraps a UUID.
    pub const fn from_uuid(id: uuid::Uuid) -> Self {
        Self(id)
    }

    /// Builds an id from a number; handy in tests.
    pub const fn from_u128(n: u128) -> Self {
        Self(uuid::Uuid::from_u128(n))
    }

    /// A fresh id from 16 random bytes supplied by the caller (the core has no entropy source).
    pub fn from_random_bytes(bytes: [u8; 16]) -> Self {
        Self(uuid::Builder::from_random_bytes(bytes).into_uuid())
    }

    /// The id of the invocation that app `app_id` starts for task `task` under the caller's
    /// idempotency key `key`: the same three give the same id in every process and run, so a
    /// second start with the same key finds the first instead of starting again.
    ///
    /// Algorithm (a stored format; never change it without a migration): SHA-256 over
    /// `b"wf-key-v1" ‖ u64_le(len(app_id)) ‖ app_id ‖ u64_le(len(task)) ‖ task ‖ u64_le(len(key)) ‖ key`;
    /// the first 16 bytes become a version-8 (custom) UUID, so a keyed id never equals a random
    /// (version-4) one.
    ///
    /// ```
    /// use wf_core::{InvocationId, TaskId};
    ///
    /// let a = InvocationId::keyed("shop", &TaskId::new("order"), "order-1042");
    /// assert_eq!(a, InvocationId::keyed("shop", &TaskId::new("order"), "order-1042"));
    /// assert_ne!(a, InvocationId::keyed("shop", &TaskId::new("order"), "order-1043"));
    /// assert_ne!(a, InvocationId::keyed("other-app", &TaskId::new("order"), "order-1042"));
    /// assert_eq!(a.as_uuid().get_version_num(), 8);
    /// ```
    pub fn keyed(app_id: &str, task: &TaskId, key: &str) -> Self {
        let mut h = Sha256::new();
        h.update(b"wf-key-v1");
        for part in [app_id, task.as_str(), key] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        let digest = h.finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Self(uuid::Builder::from_custom_bytes(bytes).into_uuid())
    }

    /// The UUID.
    pub const fn as_uuid(&self) -> &uuid::Uuid {
        &self.0
    }

    /// The id as a 128-bit number.
    pub const fn as_u128(&self) -> u128 {
        self.0.as_u128()
    }
}

impl fmt::Display for InvocationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::str::FromStr for InvocationId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s).map(Self)
    }
}

/// A stable hash of (task id, canonical encoded arguments).
///
/// Algorithm (a stored format; never change it without a migration): SHA-256 over
/// `b"wf-call-v1" ‖ u64_le(len(task)) ‖ task ‖ u64_le(len(args)) ‖ args`, where `args` are the
/// bytes [`crate::codec::encode`] produced for the arguments; the id is the first 16 bytes.
/// The same arguments give the same id in every process and run, provided their `Serialize`
/// output is itself deterministic (a `HashMap` argument is not: use a `BTreeMap`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CallId([u8; 16]);

impl CallId {
    /// Computes the call id of a task called with already encoded arguments.
    pub fn of(task: &TaskId, encoded_args: &[u8]) -> Self {
        let mut h = Sha256::new();
        h.update(b"wf-call-v1");
        h.update((task.as_str().len() as u64).to_le_bytes());
        h.update(task.as_str().as_bytes());
        h.update((encoded_args.len() as u64).to_le_bytes());
        h.update(encoded_args);
        let digest = h.finalize();
        let mut out = [0u8; 16];
        out.copy_from_slice(&digest[..16]);
        Self(out)
    }

    /// The raw 16 bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A worker: one thread pool in one process. Leases are held in its name. Cheap to clone
/// (shared); stored as the plain name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WorkerId(Arc<str>);

impl WorkerId {
    /// Wraps a worker name.
    pub fn new(name: impl Into<String>) -> Self {
        Self(Arc::from(name.into()))
    }

    /// The worker name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Wall-clock milliseconds since the Unix epoch, as stored (lease expiry, not-before, ages).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Converts a `SystemTime` (times before the epoch clamp to zero).
    pub fn from_system_time(t: std::time::SystemTime) -> Self {
        let ms = t
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        Self(u64::try_from(ms).unwrap_or(u64::MAX))
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// This time plus a duration, saturating.
    pub fn saturating_add(self, d: std::time::Duration) -> Self {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Self(self.0.saturating_add(ms))
    }

    /// The first whole millisecond at or after `nanos` nanoseconds since the epoch (times before
    /// the epoch clamp to zero), so a time converted with it is never earlier than asked.
    pub fn ceil_from_nanos(nanos: i128) -> Self {
        let nanos = nanos.max(0);
        let ms = nanos / 1_000_000 + i128::from(nanos % 1_000_000 > 0);
        Self(u64::try_from(ms).unwrap_or(u64::MAX))
    }

    /// This time as nanoseconds since the epoch.
    pub fn as_nanos(self) -> i128 {
        i128::from(self.0) * 1_000_000
    }

    /// How long from `self` until `later` (zero if `later` is not later).
    pub fn until(self, later: Timestamp) -> std::time::Duration {
        std::time::Duration::from_millis(later.0.saturating_sub(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    /// Sequential ids (as tests and `from_u128` make them) differ only in their last bytes; the
    /// hasher must still spread them over a table's low bits, or lookups degrade to scans.
    #[test]
    fn id_hashes_spread_sequential_ids_over_the_low_bits() {
        let hashing = IdHashing::default();
        let buckets: std::collections::HashSet<u64> = (0..4096u128)
            .map(|n| hashing.hash_one(InvocationId::from_u128(n)) & 4095)
            .collect();
        assert!(
            buckets.len() > 2000,
            "{} distinct buckets of 4096",
            buckets.len()
        );
    }

    #[test]
    fn call_id_is_stable_and_separates_task_from_args() {
        let a = CallId::of(&TaskId::new("charge"), b"\x01\x02");
        assert_eq!(a, CallId::of(&TaskId::new("charge"), b"\x01\x02"));
        assert_ne!(a, CallId::of(&TaskId::new("charge"), b"\x01\x03"));
        // Length prefixes keep "ab"+"c" apart from "a"+"bc".
        assert_ne!(
            CallId::of(&TaskId::new("ab"), b"c"),
            CallId::of(&TaskId::new("a"), b"bc")
        );
        // Pinned value: the algorithm is a stored format.
        assert_eq!(
            CallId::of(&TaskId::new("t"), b"").to_string().len(),
            32,
            "hex of 16 bytes"
        );
    }

    #[test]
    fn nanos_round_up_to_the_next_millisecond() {
        assert_eq!(Timestamp::ceil_from_nanos(0), Timestamp(0));
        assert_eq!(Timestamp::ceil_from_nanos(1), Timestamp(1));
        assert_eq!(Timestamp::ceil_from_nanos(2_000_000), Timestamp(2));
        assert_eq!(Timestamp::ceil_from_nanos(2_000_001), Timestamp(3));
        assert_eq!(Timestamp::ceil_from_nanos(-5), Timestamp(0));
        assert_eq!(Timestamp::ceil_from_nanos(i128::MAX), Timestamp(u64::MAX));
        assert_eq!(Timestamp(7).as_nanos(), 7_000_000);
    }

    #[test]
    fn keyed_ids_are_stable_and_keep_their_parts_apart() {
        let t = TaskId::new("order");
        let a = InvocationId::keyed("shop", &t, "k");
        // Pinned value: the algorithm is a stored format (ids of started invocations).
        assert_eq!(a.to_string(), "84631e43-c754-8d6c-9c5a-f16b9e04db95");
        assert_eq!(a.as_uuid().get_version_num(), 8);
        // Length prefixes keep "ab"+"c" apart from "a"+"bc", in every pair of parts.
        assert_ne!(
            InvocationId::keyed("ab", &t, "c"),
            InvocationId::keyed("a", &TaskId::new("border"), "c")
        );
        assert_ne!(
            InvocationId::keyed("s", &TaskId::new("ab"), "c"),
            InvocationId::keyed("s", &TaskId::new("a"), "bc")
        );
        assert_ne!(a, InvocationId::keyed("shop", &TaskId::new("refund"), "k"));
    }

    #[test]
    fn timestamp_arithmetic_saturates() {
        let t = Timestamp(u64::MAX - 1);
        assert_eq!(
            t.saturating_add(std::time::Duration::from_secs(5)).0,
            u64::MAX
        );
        assert_eq!(Timestamp(10).until(Timestamp(5)), std::time::Duration::ZERO);
        assert_eq!(Timestamp(5).until(Timestamp(10)).as_millis(), 5);
    }
}
