//! Fuzzes what a camera sends on the RTSP connection: the framing of RTSP
//! messages and interleaved data (as the connection walks its buffer), and
//! the header values the session parses itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil::rtsp::client::{parse_session_header, parse_transport};
use vigil::rtsp::conn::parse_frame;

fuzz_target!(|data: &[u8]| {
    for resync in [false, true] {
        let mut off = 0;
        let mut frames = 0;
        while off < data.len() && frames < 10_000 {
            match parse_frame(&data[off..], resync) {
                Ok((skipped, Some((len, _)))) => {
                    // Progress is guaranteed and stays inside the input.
                    assert!(len > 0);
                    assert!(skipped + len <= data.len() - off);
                    off += skipped + len;
                }
                Ok((skipped, None)) => {
                    assert!(skipped <= data.len() - off);
                    break;
                }
                Err(_) => break,
            }
            frames += 1;
        }
    }
    let text = String::from_utf8_lossy(data);
    let _ = parse_session_header(&text);
    let _ = parse_transport(&text);
});
