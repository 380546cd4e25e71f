//! Fuzzes what an HTTP client sends: request heads as the connection
//! walks its buffer (pipelined requests, each followed by its body), and
//! that the parser's answer on a prefix agrees with its answer on the
//! whole (the connection parses as bytes arrive).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil::serve::http::{parse_request, MAX_BODY, MAX_HEAD, MAX_HEADERS};

fuzz_target!(|data: &[u8]| {
    let mut off = 0;
    let mut requests = 0;
    while off < data.len() && requests < 1000 {
        let rest = &data[off..];
        match parse_request(rest, MAX_BODY) {
            Ok(Some((req, used))) => {
                // Progress, inside the input and the bounds.
                assert!(used > 0 && used <= rest.len() && used <= MAX_HEAD);
                assert!(req.headers.len() <= MAX_HEADERS);
                assert!(req.content_length <= MAX_BODY);
                assert!(matches!(req.minor, 0 | 1));
                assert!(!req.method.is_empty() && !req.target.is_empty());
                // Any shorter prefix of the head is still incomplete.
                assert_eq!(parse_request(&rest[..used - 1], MAX_BODY), Ok(None));
                let body = (req.content_length as usize).min(rest.len() - used);
                off += used + body;
            }
            Ok(None) => {
                assert!(rest.len() < MAX_HEAD);
                break;
            }
            Err(e) => {
                assert!((400..=505).contains(&e.status));
                // An error seen early stays that error with more bytes.
                let half = rest.len() / 2;
                if let Err(early) = parse_request(&rest[..half], MAX_BODY) {
                    assert_eq!(early.status, e.status);
                }
                break;
            }
        }
        requests += 1;
    }
});
