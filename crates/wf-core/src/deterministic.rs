//! Seeded draws behind `random()`, `uuid()` and child invocation ids.
//!
//! Each draw uses a PCG-64 generator seeded from (invocation id, journal sequence), so the value at
//! a given position of a given invocation is the same in every process. Values are also recorded
//! in the journal, so a replay returns the recorded value even if this scheme ever changes.

use rand_core::RngCore;
use rand_pcg::Pcg64;

use crate::ids::InvocationId;

const MIX: u128 = 0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835;

fn generator(invocation: InvocationId, seq: u32) -> Pcg64 {
    let seq = u128::from(seq);
    let state = invocation.as_u128() ^ seq.wrapping_add(1).wrapping_mul(MIX);
    let mut rng = Pcg64::new(state, seq);
    // One step mixes the seed before the first output.
    rng.next_u64();
    rng
}

/// The `random()` value at position `seq` of `invocation`: uniform in [0, 1).
pub fn random_at(invocation: InvocationId, seq: u32) -> f64 {
    let bits = generator(invocation, seq).next_u64() >> 11;
    // 53 random bits scaled by 2^-53: always < 1.0.
    bits as f64 * (1.0 / (1u64 << 53) as f64)
}

/// The `uuid()` value at position `seq` of `invocation`: a version-4 (random) UUID.
pub fn uuid_at(invocation: InvocationId, seq: u32) -> uuid::Uuid {
    let mut bytes = [0u8; 16];
    generator(invocation, seq).fill_bytes(&mut bytes);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// The id of the child started at position `seq` of `invocation`.
///
/// Deterministic, so a re-run that starts the same child submits the same id, which the store
/// deduplicates.
pub fn child_id_at(invocation: InvocationId, seq: u32) -> InvocationId {
    InvocationId::from_uuid(uuid_at(invocation, seq))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    proptest! {
        #[test]
        fn random_is_in_unit_interval(inv in any::<u128>(), seq in any::<u32>()) {
            let r = random_at(InvocationId::from_u128(inv), seq);
            prop_assert!((0.0..1.0).contains(&r), "{}", r);
        }

        #[test]
        fn draws_are_reproducible(inv in any::<u128>(), seq in any::<u32>()) {
            let id = InvocationId::from_u128(inv);
            prop_assert_eq!(random_at(id, seq).to_bits(), random_at(id, seq).to_bits());
            prop_assert_eq!(uuid_at(id, seq), uuid_at(id, seq));
        }
    }

    #[test]
    fn uuids_are_distinct_within_and_across_invocations() {
        let mut seen = HashSet::new();
        for inv in 0..50u128 {
            for seq in 0..200 {
                let u = uuid_at(InvocationId::from_u128(inv), seq);
                assert_eq!(u.get_version_num(), 4);
                assert!(seen.insert(u), "duplicate uuid at inv {inv} seq {seq}");
            }
        }
    }

    #[test]
    fn random_values_spread_over_the_interval() {
        let id = InvocationId::from_u128(42);
        let draws: Vec<f64> = (0..10_000).map(|s| random_at(id, s)).collect();
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        assert!((0.45..0.55).contains(&mean), "mean {mean}");
        let low = draws.iter().filter(|&&d| d < 0.1).count();
        assert!((800..1200).contains(&low), "{low} of 10000 below 0.1");
    }
}
