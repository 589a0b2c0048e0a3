//! A file store's log (`wf.log`) as it is on disk, and the same bytes with every record's tag
//! and checksum recomputed (as anyone who can write the file can), replayed as opening does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wf_store::fuzzing::{replay_log, reseal_log};

fuzz_target!(|data: &[u8]| {
    let _ = replay_log(data);
    let mut resealed = data.to_vec();
    reseal_log(&mut resealed);
    let _ = replay_log(&resealed);
});
