//! Fuzzes the record header and video-parameter decoders with what a damaged
//! or foreign pool file might hold.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil::store::format::{decode_params, encode_params, RecordHeader};

fuzz_target!(|data: &[u8]| {
    if let Ok((h, len)) = RecordHeader::decode(data) {
        assert!(len as usize <= data.len());
        assert_eq!(len, h.encoded_len());
        // Re-encoding gives a header that decodes to the same thing. The CRC
        // is not part of `RecordHeader`, so an empty payload stands in.
        let sizes: u64 = h.frames.iter().map(|f| u64::from(f.size)).sum();
        assert_eq!(sizes, u64::from(h.payload_len));
        if h.payload_len <= 1 << 20 {
            let payload = vec![0u8; h.payload_len as usize];
            let mut out = Vec::new();
            h.encode(&[&payload], &mut out);
            assert_eq!(out.len() as u32, len);
            let (again, len2) = RecordHeader::decode(&out).expect("re-encoded header decodes");
            assert_eq!(again, h);
            assert_eq!(len2, len);
            assert!(RecordHeader::crc_matches(&out, &payload));
        }
    }
    if let Ok(p) = decode_params(data) {
        let mut out = Vec::new();
        encode_params(&p, &mut out);
        assert_eq!(out, data);
        assert_eq!(decode_params(&out).ok(), Some(p));
    }
});
