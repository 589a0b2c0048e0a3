//! The codec: every value `wf` stores or ships goes through here.
//!
//! Layout: one format-version byte, then the value in bincode 2 (serde, standard config with a
//! decode limit). Decoding checks the version first, refuses trailing bytes and never allocates
//! more than [`decode_limit`] bytes on the word of the input: a small multiple of the input's
//! own size, and never more than [`MAX_DECODE_BYTES`]. So truncated, garbage, crafted (a length
//! prefix of 2^60, or of 200 MB in a 20-byte input) or newer-format bytes give a [`CodecError`],
//! never a panic, an out-of-memory abort or an allocation far larger than the input.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The format version written in front of every encoded value.
pub const FORMAT_VERSION: u8 = 1;

/// The most bytes one decode may claim; also the largest value [`encode`] accepts.
pub const MAX_DECODE_BYTES: usize = 256 * 1024 * 1024;

/// How many bytes a decode may claim per input byte. bincode claims a value's in-memory size
/// as it decodes it: a varint-encoded `u128` claims 16 bytes for one input byte, an enum tag 4,
/// bytes and strings one per byte; so no well-formed input claims more than 16 per byte.
pub const CLAIM_PER_INPUT_BYTE: usize = 16;

/// The decode limits, smallest first: a const generic in bincode, so a few fixed steps.
const LIMITS: [usize; 5] = [64 << 10, 1 << 20, 16 << 20, 64 << 20, MAX_DECODE_BYTES];

type Config<const N: usize> = bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<N>,
>;

const fn config<const N: usize>() -> Config<N> {
    bincode::config::standard().with_limit::<N>()
}

/// The most bytes decoding `input_len` bytes may claim (allocate on the word of the input): the
/// smallest step of 64 KiB, 1 MiB, 16 MiB, 64 MiB and [`MAX_DECODE_BYTES`] that is at least
/// [`CLAIM_PER_INPUT_BYTE`] times the input.
pub const fn decode_limit(input_len: usize) -> usize {
    let need = input_len.saturating_mul(CLAIM_PER_INPUT_BYTE);
    let mut i = 0;
    while i + 1 < LIMITS.len() && LIMITS[i] < need {
        i += 1;
    }
    LIMITS[i]
}

/// Encoding or decoding a stored value failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The value could not be encoded (for example a map whose length is unknown up front).
    #[error("cannot encode value: {0}; use plain serde types (structs, enums, Vec, BTreeMap)")]
    Encode(String),
    /// The encoded value is larger than the codec accepts.
    #[error(
        "value is {size} bytes, over the {limit}-byte limit; store large blobs elsewhere and pass a reference"
    )]
    TooLarge {
        /// Encoded size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// No bytes at all.
    #[error("empty input: expected a format-version byte")]
    Empty,
    /// Written by a newer `wf` than this one.
    #[error(
        "value has format version {found}, this build reads up to {supported}: upgrade wf before reading this store"
    )]
    NewerVersion {
        /// Version found.
        found: u8,
        /// Highest version this build reads.
        supported: u8,
    },
    /// The version byte is not one this build ever wrote.
    #[error("unknown format version {0}: the bytes are not a wf value or are corrupt")]
    UnknownVersion(u8),
    /// The bytes do not decode as the expected type.
    #[error("cannot decode value: {0}; the bytes are corrupt or were written for another type")]
    Decode(String),
    /// The bytes claim more memory than their size allows (a length prefix far beyond the
    /// input): refused before allocating it.
    #[error(
        "value of {input} bytes claims more than {limit} bytes of memory: the bytes are corrupt or crafted"
    )]
    OverLimit {
        /// Size of the input.
        input: usize,
        /// The limit it exceeded ([`decode_limit`] of the input's size).
        limit: usize,
    },
    /// The value decoded but bytes were left over.
    #[error(
        "{0} trailing bytes after the value: the bytes are corrupt or were written for another type"
    )]
    Trailing(usize),
}

/// Encodes a value: version byte, then bincode.
///
/// # Errors
///
/// [`CodecError::Encode`] when serde cannot encode the value (for example a map with non-string
/// keys in a format that needs them); [`CodecError::TooLarge`] when the encoding exceeds the
/// decode limit, so it could never be read back.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    // Sized first (a walk that writes nothing): one allocation of the exact size, instead of
    // growing from one byte through several reallocations, and no spare capacity kept by
    // whoever stores the bytes.
    let mut out = Vec::with_capacity(encoded_len(value)?);
    out.push(FORMAT_VERSION);
    bincode::serde::encode_into_std_write(value, &mut out, config::<MAX_DECODE_BYTES>())
        .map_err(|e| CodecError::Encode(e.to_string()))?;
    if out.len() > MAX_DECODE_BYTES {
        return Err(CodecError::TooLarge {
            size: out.len(),
            limit: MAX_DECODE_BYTES,
        });
    }
    Ok(out)
}

/// The length [`encode`] would give `value`, measured without writing it anywhere (so a
/// caller can refuse an oversized record before anything depends on it).
///
/// # Errors
///
/// [`CodecError::Encode`] when serde cannot encode the value.
pub fn encoded_len<T: Serialize + ?Sized>(value: &T) -> Result<usize, CodecError> {
    let mut size = bincode::enc::write::SizeWriter::default();
    bincode::serde::encode_into_writer(value, &mut size, config::<MAX_DECODE_BYTES>())
        .map_err(|e| CodecError::Encode(e.to_string()))?;
    Ok(size.bytes_written + 1)
}

/// Decodes a value written by [`encode`].
///
/// # Errors
///
/// A [`CodecError`] for empty, truncated, oversized, trailing or garbage bytes, and for a
/// format version this build does not read; never a panic.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (&version, body) = bytes.split_first().ok_or(CodecError::Empty)?;
    match version {
        FORMAT_VERSION => {}
        0 => return Err(CodecError::UnknownVersion(0)),
        v if v > FORMAT_VERSION => {
            return Err(CodecError::NewerVersion {
                found: v,
                supported: FORMAT_VERSION,
            });
        }
        v => return Err(CodecError::UnknownVersion(v)),
    }
    let limit = decode_limit(body.len());
    let decoded = match limit {
        l if l == LIMITS[0] => bincode::serde::decode_from_slice(body, config::<{ LIMITS[0] }>()),
        l if l == LIMITS[1] => bincode::serde::decode_from_slice(body, config::<{ LIMITS[1] }>()),
        l if l == LIMITS[2] => bincode::serde::decode_from_slice(body, config::<{ LIMITS[2] }>()),
        l if l == LIMITS[3] => bincode::serde::decode_from_slice(body, config::<{ LIMITS[3] }>()),
        _ => bincode::serde::decode_from_slice(body, config::<MAX_DECODE_BYTES>()),
    };
    let (value, used) = decoded.map_err(|e| match e {
        bincode::error::DecodeError::LimitExceeded => CodecError::OverLimit {
            input: body.len(),
            limit,
        },
        e => CodecError::Decode(e.to_string()),
    })?;
    if used != body.len() {
        return Err(CodecError::Trailing(body.len() - used));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Order {
        id: u64,
        items: Vec<(String, u32)>,
        note: Option<String>,
        tags: BTreeMap<String, i64>,
        price: f64,
    }

    fn order() -> impl Strategy<Value = Order> {
        (
            any::<u64>(),
            proptest::collection::vec((".{0,12}", any::<u32>()), 0..8),
            proptest::option::of(".{0,20}"),
            proptest::collection::btree_map(".{0,6}", any::<i64>(), 0..4),
            any::<f64>().prop_filter("NaN breaks equality", |f| !f.is_nan()),
        )
            .prop_map(|(id, items, note, tags, price)| Order {
                id,
                items,
                note,
                tags,
                price,
            })
    }

    proptest! {
        #[test]
        fn encoded_len_is_the_encoded_length(o in order()) {
            prop_assert_eq!(encoded_len(&o).unwrap(), encode(&o).unwrap().len());
        }

        #[test]
        fn round_trips(o in order()) {
            let bytes = encode(&o).unwrap();
            prop_assert_eq!(bytes[0], FORMAT_VERSION);
            prop_assert_eq!(decode::<Order>(&bytes).unwrap(), o);
        }

        #[test]
        fn every_truncation_is_an_error(o in order()) {
            let bytes = encode(&o).unwrap();
            for cut in 0..bytes.len() {
                prop_assert!(decode::<Order>(&bytes[..cut]).is_err(), "cut at {}", cut);
            }
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            // Any outcome but a panic or an abort is fine; a huge claimed length must not allocate.
            let _ = decode::<Order>(&bytes);
            let _ = decode::<Vec<String>>(&bytes);
            let _ = decode::<crate::journal::JournalEntry>(&bytes);
        }
    }

    #[test]
    fn version_errors_are_typed() {
        assert_eq!(decode::<u32>(&[]), Err(CodecError::Empty));
        assert_eq!(
            decode::<u32>(&[FORMAT_VERSION + 1, 0]),
            Err(CodecError::NewerVersion {
                found: FORMAT_VERSION + 1,
                supported: FORMAT_VERSION
            })
        );
        assert_eq!(decode::<u32>(&[0, 0]), Err(CodecError::UnknownVersion(0)));
        let mut bytes = encode(&5u32).unwrap();
        bytes.push(9);
        assert_eq!(decode::<u32>(&bytes), Err(CodecError::Trailing(1)));
    }

    #[test]
    fn huge_claimed_length_is_refused_without_allocating() {
        // version, then a varint length of u64::MAX for a Vec<u8>.
        let bytes = [FORMAT_VERSION, 253, 255, 255, 255, 255, 255, 255, 255, 255];
        assert!(decode::<Vec<u8>>(&bytes).is_err());
    }

    /// A varint length prefix: bincode's `0xfd` marker, then a u64.
    fn varint_u64(n: u64) -> Vec<u8> {
        let mut v = vec![0xfd];
        v.extend_from_slice(&n.to_le_bytes());
        v
    }

    #[test]
    fn crafted_lengths_are_typed_errors_at_every_depth() {
        for claimed in [1u64 << 60, u64::MAX, 200 << 20, 1 << 20] {
            // A top-level string, a string inside a struct inside a Vec, a collection's length.
            let mut bytes = vec![FORMAT_VERSION];
            bytes.extend(varint_u64(claimed));
            bytes.extend_from_slice(b"tiny");
            let top = decode::<String>(&bytes);
            assert!(
                matches!(
                    top,
                    Err(CodecError::OverLimit {
                        input: 13,
                        limit: 65536
                    })
                ),
                "{claimed}: {top:?}"
            );
            let mut nested = vec![FORMAT_VERSION, 5, 1]; // id 5, one item
            nested.extend(varint_u64(claimed)); // the item's String length
            nested.extend_from_slice(b"tiny");
            let nested = decode::<Order>(&nested);
            assert!(
                matches!(nested, Err(CodecError::OverLimit { .. })),
                "{claimed}: {nested:?}"
            );
            let mut collection = vec![FORMAT_VERSION];
            collection.extend(varint_u64(claimed)); // a Vec<String> of that many strings
            collection.extend_from_slice(&[1, b'a']);
            let collection = decode::<Vec<String>>(&collection);
            assert!(
                matches!(
                    collection,
                    Err(CodecError::OverLimit { .. } | CodecError::Decode(_))
                ),
                "{claimed}: {collection:?}"
            );
        }
    }

    #[test]
    fn the_limit_follows_the_input_and_legitimate_values_fit_it() {
        assert_eq!(decode_limit(0), 64 << 10);
        assert_eq!(decode_limit(4096), 64 << 10);
        assert_eq!(decode_limit(4097), 1 << 20);
        assert_eq!(decode_limit(MAX_DECODE_BYTES), MAX_DECODE_BYTES);
        // The densest claims per input byte: varint u128s and u64s of small values.
        let wide = vec![0u128; 100_000];
        assert_eq!(decode::<Vec<u128>>(&encode(&wide).unwrap()).unwrap(), wide);
        let words = vec![7u64; 300_000];
        assert_eq!(decode::<Vec<u64>>(&encode(&words).unwrap()).unwrap(), words);
        let blob = vec![9u8; 5 << 20];
        assert_eq!(decode::<Vec<u8>>(&encode(&blob).unwrap()).unwrap(), blob);
    }
}
