//! Fuzzes the JPEG (RFC 2435) depacketizer; see `depack_common.rs` for the input
//! layout and what is checked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil::stream::Codec;

#[path = "depack_common.rs"]
mod depack_common;

/// Canned fmtp values, so the fuzzer reaches the frame paths without
/// having to invent valid parameter sets first.
const FMTPS: [&str; 3] = ["", "a=b", "x-dimensions=1920,1080"];

fuzz_target!(|data: &[u8]| depack_common::run(Codec::Jpeg, &FMTPS, data));
