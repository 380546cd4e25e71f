//! Fuzzes the H.264 depacketizer; see `depack_common.rs` for the input
//! layout and what is checked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil::stream::Codec;

#[path = "depack_common.rs"]
mod depack_common;

/// Canned fmtp values, so the fuzzer reaches the frame paths without
/// having to invent valid parameter sets first.
const FMTPS: [&str; 3] = [
    "packetization-mode=1;sprop-parameter-sets=Z2QAHqzZQKAv+XARAAADAAEAAAMAMg8WLZY=,aOvjyyLA",
    "sprop-parameter-sets=Z2QAHqzZQKAv+XARAAADAAEAAAMAMg8WLZY",
    "packetization-mode=1;sprop-parameter-sets=,!!,aOvjyyLA",
];

fuzz_target!(|data: &[u8]| depack_common::run(Codec::H264, &FMTPS, data));
