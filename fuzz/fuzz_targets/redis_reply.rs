//! Bytes off the wire parsed as a Redis reply, then decoded as a record and as a journal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wf_store::fuzzing::redis_reply_bytes;

fuzz_target!(|data: &[u8]| {
    redis_reply_bytes(data);
});
