//! Bytes decoded as every type a backend stores with the codec, and as one log record.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wf_store::fuzzing::{decode_stored_value, log_of, replay_log};

fuzz_target!(|data: &[u8]| {
    decode_stored_value(data);
    let _ = replay_log(&log_of(&[data.to_vec()]));
});
