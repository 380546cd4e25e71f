//! Tests of the on-disk formats: pool headers, records, parameters and
//! `meta` round-trip, and damaged bytes are refused.

use super::*;

fn params() -> VideoParams {
    VideoParams {
        codec: Codec::H264,
        width: 1920,
        height: 1080,
        fps_milli: Some(25000),
        rfc6381_codec: "avc1.4d401e".to_owned(),
        decoder_config: vec![1, 0x4d, 0, 0x1e, 0xff, 0xe1, 0, 2, 0x67, 0x4d],
    }
}

fn header(first: bool) -> RecordHeader {
    let mut p = Vec::new();
    encode_params(&params(), &mut p);
    RecordHeader {
        flags: if first { FLAG_FIRST | FLAG_GAP } else { 0 },
        generation: 0x1_0000_0002,
        stream_id: 7,
        recording_id: 0x1234_5678_9abc,
        sequence: 3,
        media_start_90k: -5,
        start_wall_90k: 1_700_000_000 * 90_000,
        frames: vec![
            FrameEntry {
                duration_90k: 3000,
                size: 5,
                key: true,
            },
            FrameEntry {
                duration_90k: 3003,
                size: 3,
                key: false,
            },
        ],
        params: first.then_some(p),
        payload_len: 8,
    }
}

const PAYLOAD: &[u8] = b"abcdefgh";

fn encoded(h: &RecordHeader) -> Vec<u8> {
    let mut out = Vec::new();
    h.encode(&[&PAYLOAD[..5], &PAYLOAD[5..]], &mut out);
    out
}

#[test]
fn first_params_carry_the_stream() {
    let p = crate::stream::VideoParams {
        codec: crate::stream::Codec::H264,
        width: 640,
        height: 360,
        fps_milli: Some(25_000),
        rfc6381_codec: "avc1.4d401e".into(),
        decoder_config: vec![1, 2, 3],
    };
    let mut params = Vec::new();
    encode_params(&p, &mut params);
    let mut out = Vec::new();
    encode_first_params("front", "main", &params, &mut out);
    let (c, k, q) = decode_first_params(&out).unwrap();
    assert_eq!((c.as_str(), k.as_str(), q), ("front", "main", p));
    for n in 0..out.len() {
        assert!(decode_first_params(&out[..n]).is_err());
    }
}

#[test]
fn pool_header_round_trip() {
    let h = PoolHeader {
        uuid: *b"0123456789abcdef",
        index: 12,
        generation: 0x0102_0304_0506_0708,
    };
    let b = h.encode();
    assert_eq!(b.len(), 4096);
    assert_eq!(&b[0..8], b"VIGILPL1");
    assert!(b[44..].iter().all(|&x| x == 0));
    assert_eq!(PoolHeader::decode(&b), Ok(h));
    assert_eq!(
        PoolHeader::decode(&b[..43]),
        Err(FormatError::Truncated { need: 44 })
    );
}

#[test]
fn pool_header_damage() {
    let h = PoolHeader {
        uuid: [9; 16],
        index: 1,
        generation: 5,
    };
    let good = h.encode();
    let mut b = good.to_vec();
    b[33] ^= 1;
    assert_eq!(
        PoolHeader::decode(&b),
        Err(FormatError::BadCrc {
            what: "pool header"
        })
    );
    let mut b = good.to_vec();
    b[0] = b'X';
    assert!(matches!(
        PoolHeader::decode(&b),
        Err(FormatError::BadMagic { .. })
    ));
    let mut b = good.to_vec();
    b[8] = 2;
    assert!(matches!(
        PoolHeader::decode(&b),
        Err(FormatError::BadVersion { version: 2, .. })
    ));
}

#[test]
fn record_round_trip() {
    for first in [false, true] {
        let h = header(first);
        let b = encoded(&h);
        assert_eq!(b.len() as u32, h.encoded_len());
        let (d, len) = RecordHeader::decode(&b).unwrap();
        assert_eq!(d, h);
        assert_eq!(len as usize, b.len());
        assert!(RecordHeader::crc_matches(&b, PAYLOAD));
        if first {
            assert_eq!(decode_params(d.params.as_ref().unwrap()), Ok(params()));
        }
        // With the payload and more after it.
        let mut more = b.clone();
        more.extend_from_slice(PAYLOAD);
        more.extend_from_slice(b"VGLR garbage");
        assert_eq!(RecordHeader::decode(&more).unwrap(), (h, len));
    }
}

#[test]
fn encode_reuses_capacity() {
    let h = header(true);
    let mut out = Vec::with_capacity(4096);
    let ptr = out.as_ptr();
    h.encode(&[PAYLOAD], &mut out);
    h.encode(&[PAYLOAD], &mut out);
    assert_eq!(out.as_ptr(), ptr);
}

#[test]
fn crc_detects_flips() {
    let h = header(true);
    let b = encoded(&h);
    for i in 0..b.len() {
        if (RECORD_CRC_AT..RECORD_CRC_AT + 4).contains(&i) {
            continue;
        }
        let mut c = b.clone();
        c[i] ^= 0x10;
        assert!(!RecordHeader::crc_matches(&c, PAYLOAD), "byte {i}");
    }
    let mut c = b.clone();
    c[RECORD_CRC_AT] ^= 1;
    assert!(!RecordHeader::crc_matches(&c, PAYLOAD));
    for i in 0..PAYLOAD.len() {
        let mut p = PAYLOAD.to_vec();
        p[i] ^= 0x80;
        assert!(!RecordHeader::crc_matches(&b, &p));
    }
    assert!(!RecordHeader::crc_matches(&b, &PAYLOAD[..7]));
    assert!(!RecordHeader::crc_matches(&b[..10], PAYLOAD));
    // Incremental in odd pieces agrees.
    let mut c = RecordCrc::new(&b);
    for piece in PAYLOAD.chunks(3) {
        c.update(piece);
    }
    assert!(c.matches());
}

#[test]
fn truncated_asks_for_more() {
    let b = encoded(&header(true));
    for n in 0..68 {
        assert_eq!(
            RecordHeader::decode(&b[..n]),
            Err(FormatError::Truncated { need: 68 })
        );
    }
    for n in 68..b.len() {
        assert_eq!(
            RecordHeader::decode(&b[..n]),
            Err(FormatError::Truncated {
                need: b.len() as u32
            })
        );
    }
}

fn set_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn is_invalid(b: &[u8]) -> bool {
    matches!(
        RecordHeader::decode(b),
        Err(FormatError::Invalid { .. }
            | FormatError::BadMagic { .. }
            | FormatError::BadVersion { .. })
    )
}

#[test]
fn bounds_violations_are_errors() {
    let good = encoded(&header(true));
    let plain = encoded(&header(false));
    let mut cases: Vec<Vec<u8>> = Vec::new();
    let mut m = |base: &Vec<u8>, f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = base.clone();
        f(&mut b);
        cases.push(b);
    };
    m(&good, &|b| b[0] = b'X'); // magic
    m(&good, &|b| b[4] = 2); // version
    m(&good, &|b| b[5] |= 4); // unknown flag
    m(&good, &|b| b[6] = 1); // reserved
    m(&good, &|b| set_u32(b, 8, 1000)); // H disagrees
    m(&good, &|b| set_u32(b, 8, u32::MAX));
    m(&good, &|b| set_u32(b, 12, 9)); // P vs sizes
    m(&good, &|b| set_u32(b, 12, u32::MAX)); // P too big
    m(&good, &|b| set_u32(b, 56, 0)); // no frames
    m(&good, &|b| set_u32(b, 56, 65537)); // F too big
    m(&good, &|b| set_u32(b, 56, u32::MAX));
    m(&good, &|b| set_u32(b, 60, 65537)); // Q too big
    m(&good, &|b| set_u32(b, 60, u32::MAX));
    m(&good, &|b| b[5] = 0); // params without FLAG_FIRST
    m(&plain, &|b| b[5] = FLAG_FIRST); // FLAG_FIRST without params
    m(&good, &|b| set_u32(b, 72, u32::MAX)); // frame size overflow
    m(&good, &|b| set_u32(b, 72, 6)); // sizes don't sum
    for (i, c) in cases.iter().enumerate() {
        assert!(is_invalid(c), "case {i}: {:?}", RecordHeader::decode(c));
    }
    // A header claiming the maximal sizes yet consistent needs more bytes,
    // and asks for them rather than allocating.
    let mut b = good[..68].to_vec();
    set_u32(&mut b, 8, 68 + 8 * 65536 + 65536);
    set_u32(&mut b, 12, 0);
    set_u32(&mut b, 56, 65536);
    set_u32(&mut b, 60, 65536);
    assert_eq!(
        RecordHeader::decode(&b),
        Err(FormatError::Truncated {
            need: 68 + 8 * 65536 + 65536
        })
    );
    // ... and fully present, with all-zero frame sizes and P = 0, decodes.
    b.resize(68 + 8 * 65536 + 65536, 0);
    let (h, len) = RecordHeader::decode(&b).unwrap();
    assert_eq!(h.frames.len(), 65536);
    assert_eq!(len, 68 + 8 * 65536 + 65536);
}

/// The fuzz target's property over every single-byte mutation of a
/// valid header: never a panic; what decodes re-encodes to itself.
#[test]
fn mutations_never_panic() {
    let good = encoded(&header(true));
    for i in 0..good.len() {
        for v in [0, 1, 0x7f, 0x80, 0xff, good[i] ^ 1] {
            let mut b = good.clone();
            b[i] = v;
            if let Ok((h, len)) = RecordHeader::decode(&b) {
                let payload = vec![0u8; h.payload_len as usize];
                let mut out = Vec::new();
                h.encode(&[&payload], &mut out);
                assert_eq!(RecordHeader::decode(&out), Ok((h, len)));
            }
            if let Some(q) = b.get(84..) {
                if let Ok(p) = decode_params(q) {
                    let mut out = Vec::new();
                    encode_params(&p, &mut out);
                    assert_eq!(out, q);
                }
            }
        }
    }
}

#[test]
fn params_round_trip_and_errors() {
    let mut b = Vec::new();
    for p in [
        params(),
        VideoParams {
            codec: Codec::Jpeg,
            width: 640,
            height: 480,
            fps_milli: None,
            rfc6381_codec: "jpeg".to_owned(),
            decoder_config: Vec::new(),
        },
        VideoParams {
            codec: Codec::H265,
            width: 0,
            height: u16::MAX,
            fps_milli: Some(u32::MAX),
            rfc6381_codec: String::new(),
            decoder_config: vec![0; 1000],
        },
    ] {
        encode_params(&p, &mut b);
        assert_eq!(decode_params(&b), Ok(p));
        // Every strict prefix and any trailing byte is refused.
        for n in 0..b.len() {
            assert!(decode_params(&b[..n]).is_err(), "prefix {n}");
        }
        let mut longer = b.clone();
        longer.push(0);
        assert!(decode_params(&longer).is_err());
    }
    assert!(params_encodable(&params()));
    let mut big = params();
    big.decoder_config = vec![0; 65536];
    assert!(!params_encodable(&big));
    big.decoder_config.clear();
    big.rfc6381_codec = "a".repeat(257);
    assert!(!params_encodable(&big));
    encode_params(&params(), &mut b);
    let mut c = b.clone();
    c[0] = 9;
    assert!(matches!(
        decode_params(&c),
        Err(FormatError::BadVersion { .. })
    ));
    let mut c = b.clone();
    c[1] = 4;
    assert!(decode_params(&c).is_err());
    let mut c = b.clone();
    c[10] = 0xff;
    c[11] = 0xff; // codec string length
    assert!(decode_params(&c).is_err());
    let mut c = b.clone();
    c[12] = 0xff; // not UTF-8
    assert!(decode_params(&c).is_err());
    assert!(decode_params(&vec![0u8; 70_000]).is_err());
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "vigil-format-{name}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn uuid_and_meta() {
    let a = new_uuid().unwrap();
    let b = new_uuid().unwrap();
    assert_ne!(a, b);
    assert_eq!(a[6] >> 4, 4);
    assert_eq!(a[8] >> 6, 2);
    let hex = uuid_hex(&a);
    assert_eq!(hex.len(), 32);
    assert_eq!(parse_uuid_hex(&hex), Some(a));

    let d = temp_dir("meta");
    let err = read_meta(&d).unwrap_err().to_string();
    assert!(err.contains("meta") && err.contains("missing"), "{err}");
    write_meta(&d, &a).unwrap();
    assert_eq!(
        std::fs::read_to_string(d.join("meta")).unwrap(),
        format!("vigil-meta 1\nuuid {hex}\n")
    );
    assert_eq!(read_meta(&d), Ok(a));
    write_meta(&d, &b).unwrap();
    assert_eq!(read_meta(&d), Ok(b));
    assert!(!d.join("meta.tmp").exists());

    for (text, want) in [
        ("", "does not start"),
        ("hello\n", "does not start"),
        ("vigil-meta 2\nuuid 00\n", "another version"),
        ("vigil-meta 1\n", "no uuid"),
        ("vigil-meta 1\nuuid 0123\n", "32 hex"),
        (
            "vigil-meta 1\nuuid 0123456789abcdef0123456789abcdeg\n",
            "32 hex",
        ),
    ] {
        std::fs::write(d.join("meta"), text).unwrap();
        let e = read_meta(&d).unwrap_err().to_string();
        assert!(e.contains(want) && e.contains("meta"), "{text:?}: {e}");
    }
    std::fs::write(d.join("meta"), vec![b'x'; 5000]).unwrap();
    assert!(read_meta(&d).is_err());
    std::fs::remove_dir_all(&d).unwrap();
}
