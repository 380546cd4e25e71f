//! Fuzzes the H.265 depacketizer; see `depack_common.rs` for the input
//! layout and what is checked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil::stream::Codec;

#[path = "depack_common.rs"]
mod depack_common;

/// Canned fmtp values, so the fuzzer reaches the frame paths without
/// having to invent valid parameter sets first.
const FMTPS: [&str; 3] = [
    "sprop-vps=QAEMAf//AWAAAAMAkAAAAwAAAwA/lZgJ;sprop-sps=QgEBAWAAAAMAkAAAAwAAAwA/oAUCAWlllZpJMrwFoCAAAAMAIAAAAwMh;sprop-pps=RAHBcrRiQA==",
    "sprop-max-don-diff=1;sprop-vps=QAEMAf//AWAAAAMAkAAAAwAAAwA/lZgJ;sprop-sps=QgEBAWAAAAMAkAAAAwAAAwA/oAUCAWlllZpJMrwFoCAAAAMAIAAAAwMh;sprop-pps=RAHBcrRiQA==",
    "sprop-sps=QgEBAWAAAAMAkAAAAwAAAwA;sprop-pps=%%",
];

fuzz_target!(|data: &[u8]| depack_common::run(Codec::H265, &FMTPS, data));
