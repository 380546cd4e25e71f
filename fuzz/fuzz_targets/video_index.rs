//! Fuzzes the `video_index` decoder with arbitrary blobs (a corrupt or
//! foreign database): it must never panic, and what it accepts must
//! re-encode to exactly the bytes it consumed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil::store::video_index::{decode, totals, IndexFrame, VideoIndexEncoder};

fuzz_target!(|data: &[u8]| {
    let mut it = decode(data);
    let mut frames: Vec<IndexFrame> = Vec::new();
    let mut failed = false;
    for f in it.by_ref() {
        match f {
            Ok(f) => {
                assert!(f.duration_90k >= 0 && f.bytes >= 0);
                frames.push(f);
            }
            Err(_) => failed = true,
        }
    }
    // Each frame takes at least two bytes.
    assert!(frames.len() * 2 <= data.len());
    let consumed = it.position();
    assert!(consumed <= data.len());
    assert_eq!(failed, consumed < data.len());

    let mut e = VideoIndexEncoder::new();
    for f in &frames {
        e.push(f.duration_90k, f.bytes, f.key);
    }
    assert_eq!(e.as_bytes(), &data[..consumed]);
    let again: Vec<IndexFrame> = decode(e.as_bytes())
        .collect::<Result<_, _>>()
        .expect("re-encoded index decodes");
    assert_eq!(again, frames);
    assert_eq!(totals(data).is_ok(), !failed);
});
