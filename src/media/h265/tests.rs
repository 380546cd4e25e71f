use super::*;
use crate::media::testutil::{b64, hex, nals, sample, Harness};

/// Parameter sets of x265 encoding ffmpeg's testsrc at 640x360, 25 fps
/// (Main profile, level 2.1 x 3 = 63, VUI timing).
const VPS: &str = "40010c01ffff01600000030090000003000003003f959809";
const SPS: &str =
    "42010101600000030090000003000003003fa00502016965959a4932bc05a02000000300200000030321";
const PPS: &str = "4401c172b46240";
/// The same encoder at 636x358, 30 fps: a conformance window crops the
/// 640x360 coded picture.
const SPS_CROP: &str =
    "42010101600000030090000003000003003fa005020169dd65959a4932bc05a020000003002000000303c1";

const IDR: &[u8] = &[0x26, 0x01, 0xaf, 0x1d, 0x30];
const CRA: &[u8] = &[0x2a, 0x01, 0xaf, 0x09];
const TRAIL: &[u8] = &[0x02, 0x01, 0xd0, 0x11, 0x57];
const TRAIL2: &[u8] = &[0x02, 0x01, 0xd0, 0x22];
const SEI: &[u8] = &[0x4e, 0x01, 0x05, 0x01, 0x80];
const AUD: &[u8] = &[0x46, 0x01, 0x50];

fn fmtp() -> String {
    format!(
        "sprop-vps={};sprop-sps={};sprop-pps={}",
        b64(&hex(VPS)),
        b64(&hex(SPS)),
        b64(&hex(PPS))
    )
}

fn with_sdp() -> Harness<H265Depacketizer> {
    Harness::new(H265Depacketizer::new(Some(&fmtp()), 1 << 20))
}

fn ap(units: &[&[u8]], don: bool) -> Vec<u8> {
    let mut v = vec![0x60, 0x01];
    for (i, u) in units.iter().enumerate() {
        if don {
            v.extend_from_slice(if i == 0 { &[0, 7][..] } else { &[1][..] });
        }
        v.extend_from_slice(&(u.len() as u16).to_be_bytes());
        v.extend_from_slice(u);
    }
    v
}

/// FU packets carrying `nal` in `parts` fragments.
fn fu(nal: &[u8], parts: usize, don: bool) -> Vec<Vec<u8>> {
    let t = (nal[0] >> 1) & 0x3f;
    let body = &nal[2..];
    let chunk = body.len().div_ceil(parts);
    let chunks: Vec<&[u8]> = body.chunks(chunk).collect();
    assert_eq!(chunks.len(), parts);
    chunks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut h = t;
            if i == 0 {
                h |= 0x80;
            }
            if i == parts - 1 {
                h |= 0x40;
            }
            let mut v = vec![(nal[0] & 0x81) | (49 << 1), nal[1], h];
            if don && i == 0 {
                v.extend_from_slice(&[0, 9]);
            }
            v.extend_from_slice(c);
            v
        })
        .collect()
}

#[test]
fn real_parameter_sets() {
    let d = H265Depacketizer::new(Some(&fmtp()), 1 << 20);
    let p = d.params().expect("params from the SDP");
    assert_eq!(p.codec, Codec::H265);
    assert_eq!((p.width, p.height), (640, 360));
    assert_eq!(p.fps_milli, Some(25_000));
    assert_eq!(p.rfc6381_codec, "hvc1.1.6.L63.90");
    // Parse the hvcC back.
    let c = &p.decoder_config;
    assert_eq!(c[0], 1);
    assert_eq!(c[1], 0x01, "Main profile, tier L, space 0");
    assert_eq!(
        &c[2..6],
        &[0x60, 0, 0, 0],
        "compatible with Main and Main 10"
    );
    assert_eq!(&c[6..12], &[0x90, 0, 0, 0, 0, 0]);
    assert_eq!(c[12], 63);
    assert_eq!(&c[13..21], &[0xf0, 0x00, 0xfc, 0xfd, 0xf8, 0xf8, 0, 0]);
    assert_eq!(
        c[21],
        (1 << 3) | (1 << 2) | 3,
        "1 layer, nested, 4-byte lengths"
    );
    assert_eq!(c[22], 3);
    let mut r = &c[23..];
    for (t, want) in [(32, hex(VPS)), (33, hex(SPS)), (34, hex(PPS))] {
        assert_eq!(r[0], 0x80 | t);
        assert_eq!(&r[1..3], &[0, 1]);
        let len = u16::from_be_bytes([r[3], r[4]]) as usize;
        assert_eq!(&r[5..5 + len], &want[..]);
        r = &r[5 + len..];
    }
    assert!(r.is_empty());
}

#[test]
fn conformance_window_cropping() {
    let info = parse_sps(&hex(SPS_CROP)).expect("parses");
    assert_eq!((info.width, info.height), (636, 358));
    assert_eq!(info.fps_milli, Some(30_000));
}

#[test]
fn codec_strings() {
    let mut ptl = [0u8; 12];
    ptl[0] = 0x01;
    ptl[1] = 0x60;
    ptl[5] = 0xb0;
    ptl[11] = 93;
    assert_eq!(codec_string(&ptl), "hvc1.1.6.L93.B0");
    ptl[0] = 0x22; // tier H, Main 10
    ptl[1] = 0x20;
    ptl[5] = 0;
    ptl[7] = 0x01;
    ptl[11] = 120;
    assert_eq!(codec_string(&ptl), "hvc1.2.4.H120.0.0.1");
}

#[test]
fn single_nal_and_key_frames() {
    let mut h = with_sdp();
    h.ok(0, false, AUD);
    h.ok(0, false, SEI);
    h.ok(0, true, IDR);
    h.ok(3000, true, TRAIL);
    h.ok(6000, true, CRA);
    assert_eq!(h.frames.len(), 3);
    assert_eq!(h.frames[0].data, sample(&[SEI, IDR]));
    let keys: Vec<bool> = h.frames.iter().map(|f| f.key).collect();
    assert_eq!(keys, vec![true, false, true]);
    let changed: Vec<bool> = h.frames.iter().map(|f| f.changed).collect();
    assert_eq!(changed, vec![true, false, false]);
}

#[test]
fn aggregation_packet_with_in_band_parameter_sets() {
    let mut h = Harness::new(H265Depacketizer::new(None, 1 << 20));
    let (vps, sps, pps) = (hex(VPS), hex(SPS), hex(PPS));
    h.ok(0, true, &ap(&[&vps, &sps, &pps, SEI, IDR], false));
    assert_eq!(h.frames.len(), 1);
    assert_eq!(nals(&h.frames[0].data), vec![SEI.to_vec(), IDR.to_vec()]);
    assert!(h.frames[0].changed);
    assert_eq!(h.frames[0].params.width, 640);
}

#[test]
fn fragmentation_units_over_several_packets() {
    let mut h = with_sdp();
    // Layer 0, temporal id 2 in the header: must survive reassembly.
    // first_slice_segment_in_pic_flag, PPS 0.
    let nal: Vec<u8> = [0x26, 0x03, 0xa0]
        .into_iter()
        .chain((0..100).map(|i| i as u8 | 1))
        .collect();
    let pk = fu(&nal, 4, false);
    for (i, p) in pk.iter().enumerate() {
        h.ok(0, i == 3, p);
    }
    assert_eq!(h.frames.len(), 1);
    assert_eq!(nals(&h.frames[0].data), vec![nal]);
    assert!(h.frames[0].key);
}

#[test]
fn decoding_order_numbers_are_skipped() {
    let f = format!("{};sprop-max-don-diff=2", fmtp());
    let mut h = Harness::new(H265Depacketizer::new(Some(&f), 1 << 20));
    h.ok(0, true, &ap(&[SEI, IDR], true));
    let nal: Vec<u8> = [0x02, 0x01, 0xc0].into_iter().chain(1..=40).collect();
    for (i, p) in fu(&nal, 3, true).iter().enumerate() {
        h.ok(3000, i == 2, p);
    }
    assert_eq!(h.frames.len(), 2);
    assert_eq!(h.frames[0].data, sample(&[SEI, IDR]));
    assert_eq!(h.frames[1].data, sample(&[&nal]));
}

#[test]
fn paci_and_reserved_types_are_dropped() {
    let mut h = with_sdp();
    assert!(matches!(
        h.push(0, true, false, &[0x64, 0x01, 0, 0, 0x26, 0x01, 0xaa]),
        Err(DepacketizeError::Malformed(_))
    ));
    assert!(h.push(0, true, false, &[0x7e, 0x01, 0]).is_err());
    assert!(h.push(0, true, false, &[0x26]).is_err(), "one-byte payload");
    assert!(h.frames.is_empty());
}

#[test]
fn lost_fragments() {
    let mut h = with_sdp();
    h.ok(0, true, IDR);
    let nal: Vec<u8> = [0x02, 0x01, 0xc0].into_iter().chain(1..=40).collect();
    let pk = fu(&nal, 3, false);
    h.ok(3000, false, &pk[0]);
    // The middle fragment is lost: the partial NAL is dropped.
    assert!(h.push(3000, true, true, &pk[2]).is_err());
    h.ok(6000, true, TRAIL);
    h.ok(9000, true, CRA);
    let got: Vec<(i64, bool)> = h.frames.iter().map(|f| (f.ts, f.after_loss)).collect();
    assert_eq!(got, vec![(0, false), (6000, true), (9000, false)]);
}

#[test]
fn quirk_missing_marker_bits() {
    let mut h = with_sdp();
    h.ok(0, false, IDR);
    h.ok(3000, false, TRAIL);
    h.ok(3000, false, TRAIL2);
    h.ok(6000, false, TRAIL);
    let ts: Vec<i64> = h.frames.iter().map(|f| f.ts).collect();
    assert_eq!(ts, vec![0, 3000]);
    assert_eq!(h.frames[1].data, sample(&[TRAIL, TRAIL2]));
}

#[test]
fn quirk_marker_on_parameter_set_only_packet() {
    let mut h = Harness::new(H265Depacketizer::new(None, 1 << 20));
    let (vps, sps, pps) = (hex(VPS), hex(SPS), hex(PPS));
    h.ok(0, true, &ap(&[&vps, &sps, &pps], false));
    h.ok(0, true, SEI);
    assert!(h.frames.is_empty());
    h.ok(0, true, IDR);
    assert_eq!(h.frames.len(), 1);
    assert_eq!(h.frames[0].data, sample(&[SEI, IDR]));
}

#[test]
fn quirk_missing_or_invalid_sdp_parameter_sets() {
    for fmtp in [
        None,
        Some(format!(
            "sprop-vps={};sprop-pps={}",
            b64(&hex(VPS)),
            b64(&hex(PPS))
        )),
        Some(format!(
            "sprop-vps={};sprop-sps={};sprop-pps={}",
            b64(&hex(VPS)),
            b64(&hex(&SPS[..20])),
            b64(&hex(PPS))
        )),
        Some("sprop-sps=%%%;sprop-pps=".to_string()),
    ] {
        let mut h = Harness::new(H265Depacketizer::new(fmtp.as_deref(), 1 << 20));
        assert!(h.d.params().is_none(), "{fmtp:?}");
        assert_eq!(
            h.push(0, true, false, IDR),
            Err(DepacketizeError::NoParameters)
        );
        let (vps, sps, pps) = (hex(VPS), hex(SPS), hex(PPS));
        h.ok(3000, true, &ap(&[&vps, &sps, &pps, IDR], false));
        assert_eq!(h.frames.len(), 1);
        assert!(h.frames[0].changed);
    }
}

#[test]
fn quirk_annex_b_start_codes_in_payload() {
    let mut h = Harness::new(H265Depacketizer::new(None, 1 << 20));
    let mut p = Vec::new();
    for n in [hex(VPS), hex(SPS), hex(PPS), IDR.to_vec()] {
        p.extend_from_slice(&[0, 0, 0, 1]);
        p.extend_from_slice(&n);
    }
    h.ok(0, true, &p);
    assert_eq!(h.frames.len(), 1);
    assert_eq!(h.frames[0].data, sample(&[IDR]));
}

#[test]
fn quirk_trailing_bytes_after_sps() {
    for tail in [&[0u8, 0][..], &[0xff, 0xee, 0x00, 0x00, 0x03][..]] {
        let mut sps = hex(SPS);
        sps.extend_from_slice(tail);
        let info = parse_sps(&sps).expect("parses");
        assert_eq!(
            (info.width, info.height, info.fps_milli),
            (640, 360, Some(25_000))
        );
    }
    // Cut inside the VUI: the size is still usable, the rate unknown.
    let sps = hex(SPS);
    let info = parse_sps(&sps[..sps.len() - 8]).expect("parses");
    assert_eq!((info.width, info.height, info.fps_milli), (640, 360, None));
}

#[test]
fn quirk_fu_type_change_and_empty_fragments() {
    let mut h = with_sdp();
    let nal: Vec<u8> = [0x02, 0x01, 0xc0].into_iter().chain(1..=40).collect();
    let mut pk = fu(&nal, 3, false);
    pk[1][2] = (pk[1][2] & 0xc0) | 19;
    h.ok(0, false, &pk[0]);
    assert!(matches!(
        h.push(0, false, false, &pk[1]),
        Err(DepacketizeError::Malformed(_))
    ));
    assert!(h.push(0, true, false, &pk[2]).is_err());
    assert!(h.frames.is_empty());
    // Empty start and middle fragments, data only in the end one.
    h.ok(3000, false, &[0x62, 0x01, 0x80 | 19]);
    h.ok(3000, false, &[0x62, 0x01, 19]);
    h.ok(3000, true, &[0x62, 0x01, 0x40 | 19, 0xab]);
    assert_eq!(h.frames.len(), 1);
    assert_eq!(h.frames[0].data, sample(&[&[0x26, 0x01, 0xab]]));
    assert!(
        h.push(6000, true, false, &[0x62, 0x01]).is_err(),
        "no FU header"
    );
}

#[test]
fn params_change_mid_stream() {
    let mut h = with_sdp();
    h.ok(0, true, IDR);
    let (vps, sps, pps) = (hex(VPS), hex(SPS_CROP), hex(PPS));
    h.ok(3000, true, &ap(&[&vps, &sps, &pps, CRA], false));
    h.ok(6000, true, TRAIL);
    let changed: Vec<bool> = h.frames.iter().map(|f| f.changed).collect();
    assert_eq!(changed, vec![true, true, false]);
    assert_eq!(
        (h.frames[1].params.width, h.frames[1].params.height),
        (636, 358)
    );
}

#[test]
fn frame_too_large() {
    let mut h = Harness::new(H265Depacketizer::new(Some(&fmtp()), 40));
    let nal: Vec<u8> = [0x02, 0x01].into_iter().chain(1..=60).collect();
    let pk = fu(&nal, 3, false);
    h.ok(0, false, &pk[0]);
    assert_eq!(
        h.push(0, false, false, &pk[1]),
        Err(DepacketizeError::FrameTooLarge { limit: 40 })
    );
    h.ok(0, true, &pk[2]);
    h.ok(3000, true, IDR);
    assert_eq!(h.frames.len(), 1);
    assert_eq!(h.frames[0].ts, 3000);
}

#[test]
fn garbage_sps_never_panics() {
    let sps = hex(SPS);
    for cut in 0..sps.len() {
        let _ = parse_sps(&sps[..cut]);
    }
    let mut x: u32 = 1;
    for _ in 0..2000 {
        let mut v = vec![0x42, 0x01];
        for _ in 0..40 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            v.push(x as u8);
        }
        let _ = parse_sps(&v);
    }
}
