//! Fuzzes the SDP parser with what a camera might answer to DESCRIBE.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil::rtsp::sdp;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = sdp::parse(data) {
        assert!(data.len() <= sdp::MAX_SDP_BYTES);
        if let Some(v) = s.first_video() {
            // The track is one of the parsed media, and the format one of
            // the payload types its m= line listed.
            assert!(v.media.kind.eq_ignore_ascii_case("video"));
            assert!(v
                .media
                .formats
                .iter()
                .any(|f| f.payload_type == v.format.payload_type));
            assert!(v.format.payload_type <= 127);
        }
    }
});
