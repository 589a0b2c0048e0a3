//! The codec: every value `wf` stores or ships goes through here.
//!
//! Layout: one format-version byte, then the value in bincode 2 (serde, standard config with a
//! decode limit). Decoding checks the version first, refuses trailing bytes and never allocates
//! more than [`MAX_DECODE_BYTES`] on the word of the input, so truncated, garbage or newer-format
//! bytes give a [`CodecError`], never a panic or an out-of-memory abort.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The format version written in front of every encoded value.
pub const FORMAT_VERSION: u8 = 1;

/// The most bytes one decode may claim; also the largest value [`encode`] accepts.
pub const MAX_DECODE_BYTES: usize = 256 * 1024 * 1024;

type Config = bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<MAX_DECODE_BYTES>,
>;

const fn config() -> Config {
    bincode::config::standard().with_limit::<MAX_DECODE_BYTES>()
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
    let mut out = vec![FORMAT_VERSION];
    bincode::serde::encode_into_std_write(value, &mut out, config())
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
    bincode::serde::encode_into_writer(value, &mut size, config())
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
    let (value, used) = bincode::serde::decode_from_slice(body, config())
        .map_err(|e| CodecError::Decode(e.to_string()))?;
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
        assert!(matches!(
            decode::<Vec<u8>>(&bytes),
            Err(CodecError::Decode(_))
        ));
    }
}
