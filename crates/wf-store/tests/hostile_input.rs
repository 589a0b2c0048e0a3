//! Hostile input: crafted length prefixes in log records (behind valid checksums) are typed
//! errors, and a bounded property-based fuzz (random bytes, mutated valid logs, values and Redis
//! replies) finds no panic in the decoders. `PROPTEST_CASES=N` runs the fuzz longer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod file_common;

use std::fs;
use std::sync::OnceLock;

use file_common::*;
use proptest::prelude::*;
use redis::Value;
use wf_core::{CodecError, InvocationId, codec};
use wf_store::conformance::fixtures;
use wf_store::fuzzing::{
    control_frame, control_frame_samples, decode_stored_value, log_of, parse_redis_journal,
    parse_redis_record, redis_reply_bytes, redis_spec_field, replay_log, reseal_log,
};
use wf_store::tables::Change;
use wf_store::{FileStore, StoreError};

/// A varint length prefix as bincode writes one that needs 64 bits: `0xfd`, then the u64.
fn varint(n: u64) -> Vec<u8> {
    let mut v = vec![0xfd];
    v.extend_from_slice(&n.to_le_bytes());
    v
}

/// The log of a real store: submissions, claims and commits with journals, data and results.
fn real_log() -> &'static [u8] {
    static LOG: OnceLock<Vec<u8>> = OnceLock::new();
    LOG.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path()).unwrap();
        for n in 0..4 {
            run_one(&store, n, at(1 + n));
        }
        drop(store);
        fs::read(log_path(dir.path())).unwrap()
    })
}

/// The payloads of every record in `log`.
fn payloads(log: &[u8]) -> Vec<Vec<u8>> {
    let offsets = record_offsets(log);
    offsets
        .windows(2)
        .map(|w| log[w[0] + FRAME_LEN..w[1]].to_vec())
        .collect()
}

/// A record's payload holding `changes` (encoded), after a watermark (format 3).
fn with_watermark(changes: &[u8]) -> Vec<u8> {
    let mut payload = 0u64.to_le_bytes().to_vec();
    payload.extend_from_slice(changes);
    payload
}

fn assert_corrupt(result: Result<u64, StoreError>, what: &str) -> String {
    match result {
        Err(e @ StoreError::Corrupt { .. }) => e.to_string(),
        other => panic!("{what}: expected Corrupt, got {other:?}"),
    }
}

#[test]
fn a_frame_claiming_an_impossible_length_is_corruption_not_an_allocation() {
    let p = payloads(real_log());
    let mut log = log_of(&p);
    // The second record's length field says u32::MAX (its checksum covers the length, so it is
    // bad); a valid record follows, so this is damage in the middle of the log.
    let second = record_offsets(&log)[1];
    log[second..second + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let message = assert_corrupt(replay_log(&log), "u32::MAX length");
    assert!(message.contains("impossibly large"), "{message}");
}

#[test]
fn a_crafted_length_inside_a_checksummed_record_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    run_one(&store, 0, at(1));
    drop(store);
    let mut bytes = fs::read(log_path(dir.path())).unwrap();
    let last = *record_offsets(&bytes).iter().rev().nth(1).unwrap();
    // The payload is the codec's version byte, then the number of changes: claim 2^60 of them,
    // and give the record a valid checksum, as anyone who can write the file can.
    bytes[last + CHANGES_AT + 1..last + CHANGES_AT + 10].copy_from_slice(&varint(1 << 60));
    reseal_log(&mut bytes);
    fs::write(log_path(dir.path()), &bytes).unwrap();
    for opened in [
        FileStore::open(dir.path()).map(|_| ()),
        FileStore::snapshot(dir.path()).map(|_| ()),
    ] {
        match opened {
            Err(StoreError::Corrupt { offset, reason, .. }) => {
                assert_eq!(offset, last as u64);
                assert!(reason.contains("intact"), "{reason}");
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }
    assert_eq!(
        fs::read(log_path(dir.path())).unwrap(),
        bytes,
        "an intact record is never cut"
    );
}

#[test]
fn crafted_lengths_nested_in_a_record_are_typed_errors() {
    let id = InvocationId::from_u128(7);
    let payload = codec::encode(&vec![
        Change::Data(id, "KEYMARK".into(), b"VALUE".to_vec()),
        Change::Journal(id, fixtures::entries(0, 2)),
    ])
    .unwrap();
    let key = payload.windows(7).position(|w| w == b"KEYMARK").unwrap();
    let value = payload.windows(5).position(|w| w == b"VALUE").unwrap();
    for claimed in [1u64 << 60, u64::MAX, 200 << 20] {
        // The length byte in front of the key (a string), of the value (bytes) and of the
        // journal (a Vec of entries: the byte after the Journal variant's id).
        for (at, what) in [(key - 1, "key"), (value - 1, "value")] {
            let mut crafted = payload[..at].to_vec();
            crafted.extend(varint(claimed));
            crafted.extend_from_slice(&payload[at + 1..]);
            let direct = codec::decode::<Vec<Change>>(&crafted);
            assert!(
                matches!(
                    direct,
                    Err(CodecError::OverLimit { .. } | CodecError::Decode(_))
                ),
                "{what} {claimed}: {direct:?}"
            );
            let log = log_of(&[payloads(real_log())[0].clone(), with_watermark(&crafted)]);
            assert_corrupt(replay_log(&log), what);
        }
    }
    // A string length far beyond a small record is refused by the limit, before allocating.
    let mut crafted = payload[..key - 1].to_vec();
    crafted.extend(varint(200 << 20));
    crafted.extend_from_slice(&payload[key..]);
    assert!(matches!(
        codec::decode::<Vec<Change>>(&crafted),
        Err(CodecError::OverLimit { limit: 65536, .. })
    ));
    let log = log_of(&[with_watermark(&crafted)]);
    let message = assert_corrupt(replay_log(&log), "over the limit");
    assert!(message.contains("claims more than"), "{message}");
}

/// Ways to damage bytes.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Set(usize, u8),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let big = prop_oneof![
        Just(1u64 << 60),
        Just(u64::MAX),
        Just(200u64 << 20),
        Just(u64::from(u32::MAX)),
        any::<u64>(),
    ];
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, bit)| Mutation::Flip(at, bit)),
        (any::<usize>(), any::<u8>()).prop_map(|(at, v)| Mutation::Set(at, v)),
        (any::<usize>(), big).prop_map(|(at, n)| Mutation::Insert(at, varint(n))),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(at, b)| Mutation::Insert(at, b)),
        (any::<usize>(), 1..16usize).prop_map(|(at, n)| Mutation::Remove(at, n)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

/// Applies `m` to `bytes`, positions taken modulo the length; `skip` bytes at the front stay.
fn apply(bytes: &mut Vec<u8>, m: &Mutation, skip: usize) {
    let span = bytes.len().saturating_sub(skip).max(1);
    let pos = |at: usize| skip + at % span;
    match m {
        Mutation::Flip(at, bit) => {
            if let Some(b) = bytes.get_mut(pos(*at)) {
                *b ^= bit;
            }
        }
        Mutation::Set(at, v) => {
            if let Some(b) = bytes.get_mut(pos(*at)) {
                *b = *v;
            }
        }
        Mutation::Insert(at, new) => {
            let at = pos(*at).min(bytes.len());
            bytes.splice(at..at, new.iter().copied());
        }
        Mutation::Remove(at, n) => {
            let at = pos(*at).min(bytes.len());
            let end = (at + n).min(bytes.len());
            bytes.drain(at..end);
        }
        Mutation::Truncate(at) => bytes.truncate(pos(*at)),
    }
}

/// What decoding a log may give: anything but a panic, and errors of the kinds opening gives.
fn check_replay(log: &[u8]) -> Result<(), TestCaseError> {
    match replay_log(log) {
        Ok(_)
        | Err(
            StoreError::Corrupt { .. }
            | StoreError::NewerFormat { .. }
            | StoreError::OlderFormat { .. },
        ) => Ok(()),
        Err(other) => Err(TestCaseError::fail(format!("unexpected error {other:?}"))),
    }
}

/// A Redis reply of any shape.
fn reply() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Nil),
        Just(Value::Okay),
        any::<i64>().prop_map(Value::Int),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::BulkString),
        "[0-9a-z:-]{0,12}".prop_map(Value::SimpleString),
    ];
    leaf.prop_recursive(3, 64, 16, |inner| {
        proptest::collection::vec(inner, 0..18).prop_map(Value::Array)
    })
}

/// A record reply as the scripts return one, with a valid spec blob.
fn valid_record_fields() -> Vec<Value> {
    let spec = redis_spec_field(&fixtures::root(3, "t", b"args")).unwrap();
    let failure = codec::encode(&fixtures::failure("boom")).unwrap();
    let text = |s: &str| Value::BulkString(s.as_bytes().to_vec());
    vec![
        Value::BulkString(spec),
        text("1000"),
        text("3"),
        text("failed"),
        text("2"),
        text("1"),
        text("0"),
        text("w1"),
        text("2000"),
        Value::Nil,
        text("1500"),
        Value::BulkString(b"result".to_vec()),
        Value::BulkString(failure),
        Value::Nil,
        Value::Array(vec![text("00000000-0000-0000-0000-000000000002")]),
    ]
}

proptest! {
    #[test]
    fn random_bytes_never_panic_a_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        decode_stored_value(&bytes);
        check_replay(&bytes)?;
        let mut log = log_of(&[]);
        log.extend_from_slice(&bytes);
        check_replay(&log)?;
        reseal_log(&mut log);
        check_replay(&log)?;
        // As one record's payload, checksum and all.
        check_replay(&log_of(&[bytes]))?;
    }

    #[test]
    fn mutated_valid_logs_never_panic(
        mutations in proptest::collection::vec(mutation(), 1..6),
        reseal in any::<bool>(),
    ) {
        let mut log = real_log().to_vec();
        for m in &mutations {
            // Mostly past the header, so the records are reached.
            apply(&mut log, m, usize::from(mutations.len() % 4 != 0) * HEADER_LEN);
        }
        if reseal {
            reseal_log(&mut log);
        }
        check_replay(&log)?;
    }

    #[test]
    fn mutated_values_never_panic(
        record in 0..16usize,
        mutations in proptest::collection::vec(mutation(), 1..5),
    ) {
        let all = payloads(real_log());
        let mut payload = all[record % all.len()].clone();
        for m in &mutations {
            apply(&mut payload, m, 0);
        }
        decode_stored_value(&payload);
        check_replay(&log_of(&[payload]))?;
    }

    #[test]
    fn control_socket_frames_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        sample in 0..3usize,
        mutations in proptest::collection::vec(mutation(), 1..5),
    ) {
        control_frame(&bytes);
        let mut frame = control_frame_samples(&fixtures::root(9, "t", b"args"))[sample].clone();
        for m in &mutations {
            apply(&mut frame, m, 0);
        }
        // Mostly with a length that matches what follows, so the payload reaches the decoder.
        if let Some(len) = frame.len().checked_sub(4).and_then(|l| u32::try_from(l).ok())
            && mutations.len() % 3 != 0
        {
            frame[..4].copy_from_slice(&len.to_le_bytes());
        }
        control_frame(&frame);
    }

    #[test]
    fn random_redis_replies_never_panic(v in reply()) {
        let _ = parse_redis_record(&v);
        let _ = parse_redis_journal(&v);
    }

    #[test]
    fn mutated_resp_bytes_never_panic(
        head in prop_oneof![Just(&b"*"[..]), Just(&b"$"[..]), Just(&b":"[..]), Just(&b"%"[..])],
        n in prop_oneof![Just(u64::MAX), Just(1u64 << 60), Just(16u64), any::<u64>()],
        tail in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        // A reply header that claims a huge array, string or map, then a little data.
        let mut bytes = head.to_vec();
        bytes.extend_from_slice(format!("{n}\r\n").as_bytes());
        bytes.extend_from_slice(&tail);
        redis_reply_bytes(&bytes);
        redis_reply_bytes(&tail);
    }

    #[test]
    fn mutated_redis_records_never_panic(
        field in 0..15usize,
        replacement in reply(),
        mutations in proptest::collection::vec(mutation(), 0..4),
        which_blob in any::<bool>(),
    ) {
        let mut fields = valid_record_fields();
        let blob = if which_blob { 0 } else { 12 };
        if let Value::BulkString(b) = &mut fields[blob] {
            for m in &mutations {
                apply(b, m, 0);
            }
        }
        if mutations.is_empty() {
            fields[field] = replacement;
        }
        let reply = Value::Array(fields);
        match parse_redis_record(&reply) {
            Ok(_) | Err(StoreError::Backend { .. } | StoreError::Codec(_)) => {}
            Err(other) => prop_assert!(false, "unexpected error {other:?}"),
        }
        let journal = Value::Array(vec![Value::BulkString(
            codec::encode(&fixtures::entries(0, 3)).unwrap(),
        )]);
        let _ = parse_redis_journal(&journal);
    }
}

#[test]
fn valid_control_frames_decode() {
    let frames = control_frame_samples(&fixtures::root(9, "t", b"args"));
    assert_eq!(
        frames.iter().map(|f| control_frame(f)).collect::<Vec<_>>(),
        [1, 1, 1],
        "each sample decodes as its side's message"
    );
}

#[test]
fn the_valid_record_reply_decodes() {
    let record = parse_redis_record(&Value::Array(valid_record_fields())).unwrap();
    assert_eq!(record.state.attempts, 2);
    assert_eq!(record.state.waiting_on.len(), 1);
}
