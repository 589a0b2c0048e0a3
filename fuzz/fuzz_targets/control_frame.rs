//! Bytes a peer sends on a file store's control socket, read as a request and as a response.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wf_store::fuzzing::control_frame;

fuzz_target!(|data: &[u8]| {
    control_frame(data);
});
