use super::*;
use crate::media::testutil::{b64, hex, nals, sample, Harness};

/// SPS and PPS of x264 encoding ffmpeg's testsrc at 640x360, 25 fps
/// (High profile, level 3.0, frame cropping 368 -> 360, VUI timing).
const SPS: &str = "6764001eacd940a02ff97011000003000100000300320f162d96";
const PPS: &str = "68ebe3cb22c0";
/// The same encoder at 320x240, 30 fps.
const SPS_320: &str = "6764000dacd94141fb0110000003001000000303c0f1429960";

const IDR: &[u8] = &[0x65, 0x88, 0x84, 0x00, 0x2b, 0x11];
const IDR2: &[u8] = &[0x65, 0x88, 0x84, 0x07];
const P1: &[u8] = &[0x41, 0x9a, 0x22, 0x6c];
const P2: &[u8] = &[0x41, 0x9a, 0x44, 0x6d, 0x01];
const SEI: &[u8] = &[0x06, 0x05, 0x01, 0xaa, 0x80];
const AUD: &[u8] = &[0x09, 0xf0];

fn fmtp() -> String {
    format!(
        "packetization-mode=1;profile-level-id=64001e;sprop-parameter-sets={},{}",
        b64(&hex(SPS)),
        b64(&hex(PPS))
    )
}

fn with_sdp() -> Harness<H264Depacketizer> {
    Harness::new(H264Depacketizer::new(Some(&fmtp()), 1 << 20))
}

fn no_sdp() -> Harness<H264Depacketizer> {
    Harness::new(H264Depacketizer::new(None, 1 << 20))
}

fn stap_a(units: &[&[u8]]) -> Vec<u8> {
    let mut v = vec![0x18];
    for u in units {
        v.extend_from_slice(&(u.len() as u16).to_be_bytes());
        v.extend_from_slice(u);
    }
    v
}

/// FU-A packets carrying `nal` in `parts` fragments.
fn fu_a(nal: &[u8], parts: usize) -> Vec<Vec<u8>> {
    let body = &nal[1..];
    let chunk = body.len().div_ceil(parts);
    let chunks: Vec<&[u8]> = body.chunks(chunk).collect();
    assert_eq!(chunks.len(), parts, "test NAL too short to split");
    chunks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut fu = nal[0] & 0x1f;
            if i == 0 {
                fu |= 0x80;
            }
            if i == parts - 1 {
                fu |= 0x40;
            }
            let mut v = vec![(nal[0] & 0xe0) | 28, fu];
            v.extend_from_slice(c);
            v
        })
        .collect()
}

#[test]
fn random_bytes_are_not_taken_for_an_sps() {
    // xorshift: the same 20000 candidates every run.
    let mut x = 0x2545_f491_u32;
    let mut accepted = Vec::new();
    for _ in 0..20_000 {
        let mut nal = vec![0x67];
        for _ in 0..(8 + x % 24) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            nal.push(x as u8);
        }
        if let Ok(info) = parse_sps(&nal) {
            accepted.push((info.width, info.height));
        }
    }
    // Even behind a valid SPS header, fewer than 1 in 4000; with a
    // random header too, about one in a million. The session ends in
    // error when nothing it receives makes a frame (`NotVideo`).
    assert!(accepted.len() <= 5, "random SPS accepted: {accepted:?}");
    assert!(parse_sps(&hex(SPS)).is_ok());
}

/// The built-in camera's H.264 clip (x264 output): its first key
/// frame's NAL units (parameter sets first) and the P frame after it.
fn clip_frames() -> (Vec<&'static [u8]>, Vec<&'static [u8]>) {
    use crate::camera::clip::{clips, ClipFrame};
    let clip = clips()
        .unwrap()
        .iter()
        .find(|c| c.info.codec == Codec::H264)
        .unwrap();
    let nals = |f: &ClipFrame| match f {
        ClipFrame::Nals { nals, .. } => nals.clone(),
        ClipFrame::Jpeg(_) => unreachable!(),
    };
    (nals(&clip.frames[0]), nals(&clip.frames[1]))
}

fn push_nals(h: &mut Harness<H264Depacketizer>, ts: i64, nals: &[&[u8]]) -> bool {
    let mut ok = true;
    for (i, nal) in nals.iter().enumerate() {
        ok &= h.push(ts, i + 1 == nals.len(), false, nal).is_ok();
    }
    ok
}

#[test]
fn slices_no_encoder_writes_are_dropped_until_a_key_frame() {
    let (key, p) = clip_frames();
    let mut h = Harness::new(H264Depacketizer::new(None, 1 << 20));
    assert!(push_nals(&mut h, 0, &key));
    assert!(push_nals(&mut h, 3000, &p));
    // An IDR coded as a P slice; a picture starting mid-way; a slice
    // type past 9; a PPS id past 255.
    for bad in [
        &[0x65, 0x9a, 0x21][..],
        &[0x41, 0x5a, 0x21],
        &[0x41, 0x80, 0x00, 0x21],
        &[0x41, 0x9a, 0x00, 0x01],
    ] {
        assert!(
            matches!(
                h.push(6000, true, false, bad),
                Err(DepacketizeError::BadSlice(_))
            ),
            "{bad:02x?}"
        );
    }
    // A good P frame after a bad unit cannot decode: dropped too; so
    // is a key frame whose slice header passes only the quick checks.
    assert!(!push_nals(&mut h, 9000, &p));
    assert!(matches!(
        h.push(12000, true, false, &[0x65, 0x88, 0x84, 0x21]),
        Err(DepacketizeError::BadSlice(_))
    ));
    assert_eq!(h.frames.len(), 2);
    assert!(push_nals(&mut h, 15000, &key));
    assert!(push_nals(&mut h, 18000, &p));
    assert_eq!(h.frames.len(), 4);
    assert!(h.frames[2].key);
    // The second slice of a picture starts past macroblock 0.
    let mut h = with_sdp();
    h.ok(0, true, &[0x65, 0x88, 0x84, 0x21]);
    h.ok(3000, false, &[0x41, 0x9a, 0x21]);
    h.ok(3000, true, &[0x41, 0x5a, 0x21]);
    assert_eq!(h.frames.len(), 2);
}

#[test]
fn random_payloads_rarely_pass_for_slices() {
    let mut x = 0x2545_f491_u32;
    let mut h = with_sdp();
    let mut passed = 0;
    for i in 0..20_000 {
        let mut payload = Vec::new();
        for _ in 0..(4 + x % 60) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            payload.push(x as u8);
        }
        let before = h.frames.len();
        let _ = h.push(i * 3000, true, false, &payload);
        passed += h.frames.len() - before;
    }
    // Without the checks 1 in 12 passes (1619 here: payloads that are
    // a slice NAL unit, or carry one); with them, a bad unit costs
    // every unit until a key frame passes the whole slice header
    // parse: 18. What passes has a header an encoder could write;
    // only decoding it would tell more.
    assert!(passed <= 30, "{passed} random payloads taken for frames");
}

#[test]
fn real_sps_gives_size_rate_and_avcc() {
    let d = H264Depacketizer::new(Some(&fmtp()), 1 << 20);
    let p = d.params().expect("params from the SDP");
    assert_eq!(p.codec, Codec::H264);
    assert_eq!((p.width, p.height), (640, 360));
    assert_eq!(p.fps_milli, Some(25_000));
    assert_eq!(p.rfc6381_codec, "avc1.64001e");
    // Parse the avcC back.
    let c = &p.decoder_config;
    let (sps, pps) = (hex(SPS), hex(PPS));
    assert_eq!(&c[..4], &[1, 0x64, 0x00, 0x1e]);
    assert_eq!(c[4] & 3, 3, "4-byte NAL lengths");
    assert_eq!(c[5] & 0x1f, 1, "one SPS");
    let sps_len = u16::from_be_bytes([c[6], c[7]]) as usize;
    assert_eq!(&c[8..8 + sps_len], &sps[..]);
    let r = &c[8 + sps_len..];
    assert_eq!(r[0], 1, "one PPS");
    let pps_len = u16::from_be_bytes([r[1], r[2]]) as usize;
    assert_eq!(&r[3..3 + pps_len], &pps[..]);
    // High profile extension: 4:2:0, 8-bit, no SPS extensions.
    assert_eq!(&r[3 + pps_len..], &[0xfd, 0xf8, 0xf8, 0x00]);
}

#[test]
fn single_nal_packets_and_params_changed_once() {
    let mut h = with_sdp();
    h.ok(3000, false, SEI);
    h.ok(3000, true, IDR);
    h.ok(6000, true, P1);
    assert_eq!(h.frames.len(), 2);
    let f = &h.frames[0];
    assert_eq!(f.ts, 3000);
    assert!(f.key && f.changed && !f.after_loss);
    assert_eq!(f.data, sample(&[SEI, IDR]));
    assert_eq!((f.params.width, f.params.height), (640, 360));
    let f = &h.frames[1];
    assert!(!f.key && !f.changed && !f.after_loss);
    assert_eq!(f.data, sample(&[P1]));
}

#[test]
fn stap_a_params_and_aud_stay_out_of_the_sample() {
    let mut h = no_sdp();
    let (sps, pps) = (hex(SPS), hex(PPS));
    h.ok(0, true, &stap_a(&[AUD, &sps, &pps, SEI, IDR]));
    assert_eq!(h.frames.len(), 1);
    assert_eq!(nals(&h.frames[0].data), vec![SEI.to_vec(), IDR.to_vec()]);
    assert!(h.frames[0].changed);
    assert_eq!(h.frames[0].params.width, 640);
    // A truncated STAP-A is malformed, not a panic.
    let mut bad = stap_a(&[P1]);
    bad.extend_from_slice(&[0x00, 0x09, 0x41]);
    assert!(matches!(
        h.push(3000, true, false, &bad),
        Err(DepacketizeError::Malformed(_))
    ));
}

#[test]
fn fu_a_over_several_packets() {
    let mut h = with_sdp();
    // An I slice header (first_mb_in_slice 0, slice_type 7, PPS 0).
    let big: Vec<u8> = [0x65, 0x88, 0x84]
        .into_iter()
        .chain((0..200).map(|i| i as u8 | 1))
        .collect();
    let pkts = fu_a(&big, 4);
    for (i, p) in pkts.iter().enumerate() {
        h.ok(0, i == pkts.len() - 1, p);
    }
    assert_eq!(h.frames.len(), 1);
    assert_eq!(nals(&h.frames[0].data), vec![big.clone()]);
    assert!(h.frames[0].key);
    // A P frame of two fragmented slices.
    let mut p = big.clone();
    p[..2].copy_from_slice(&[0x41, 0x9a]); // a P slice
    let pk = fu_a(&p, 3);
    for f in pk.iter().chain(pk.iter()) {
        h.ok(3000, false, f);
    }
    h.ok(3000, true, &[]);
    assert_eq!(h.frames.len(), 2, "empty marker packet ends the unit");
    assert_eq!(nals(&h.frames[1].data), vec![p.clone(), p]);
}

#[test]
fn lost_fragment_drops_the_nal_and_flags_until_key_frame() {
    let mut h = with_sdp();
    h.ok(0, true, IDR);
    let p: Vec<u8> = [0x41].into_iter().chain(1..=30).collect();
    let pk = fu_a(&p, 3);
    h.ok(3000, false, &pk[0]);
    // The middle fragment is lost.
    assert_eq!(
        h.push(3000, true, true, &pk[2]),
        Err(DepacketizeError::Malformed(
            "fragment continuation without a start"
        ))
    );
    assert_eq!(h.frames.len(), 1, "nothing left of the damaged frame");
    h.ok(6000, true, P1);
    h.ok(9000, true, P2);
    h.ok(12000, true, IDR2);
    h.ok(15000, true, P1);
    let flags: Vec<bool> = h.frames.iter().map(|f| f.after_loss).collect();
    assert_eq!(flags, vec![false, true, true, false, false]);
}

#[test]
fn loss_inside_a_unit_flags_that_frame() {
    let mut h = with_sdp();
    h.ok(0, false, SEI);
    assert_eq!(h.push(0, true, true, IDR), Ok(()));
    assert_eq!(h.frames.len(), 1);
    assert!(h.frames[0].after_loss, "damaged key frame");
    h.ok(3000, true, P1);
    assert!(h.frames[1].after_loss, "refers to a damaged key frame");
}

#[test]
fn continuation_without_start_is_dropped() {
    let mut h = with_sdp();
    let pk = fu_a(&[0x41, 1, 2, 3, 4, 5, 6], 3);
    assert!(matches!(
        h.push(0, false, false, &pk[1]),
        Err(DepacketizeError::Malformed(_))
    ));
    assert!(matches!(
        h.push(0, true, false, &pk[2]),
        Err(DepacketizeError::Malformed(_))
    ));
    assert!(h.frames.is_empty());
    h.ok(3000, true, IDR);
    assert_eq!(h.frames.len(), 1);
}

#[test]
fn quirk_missing_marker_bits() {
    let mut h = with_sdp();
    h.ok(0, false, IDR);
    h.ok(3000, false, P1);
    h.ok(3000, false, P2);
    h.ok(6000, false, P1);
    let ts: Vec<i64> = h.frames.iter().map(|f| f.ts).collect();
    assert_eq!(ts, vec![0, 3000]);
    assert_eq!(h.frames[1].data, sample(&[P1, P2]));
    // A marked single-packet unit right after an unmarked one: at most
    // one emit per push, so it goes out on the next push.
    h.ok(9000, true, P2);
    assert_eq!(h.frames.len(), 3);
    assert_eq!(h.frames[2].ts, 6000);
    h.ok(12000, true, P1);
    assert_eq!(h.frames.len(), 4);
    assert_eq!(
        (h.frames[3].ts, h.frames[3].data.clone()),
        (9000, sample(&[P2]))
    );
    h.ok(15000, false, P1);
    h.ok(15000, true, P2);
    let ts: Vec<i64> = h.frames.iter().map(|f| f.ts).collect();
    assert_eq!(ts, vec![0, 3000, 6000, 9000, 12000, 15000]);
}

#[test]
fn quirk_marker_on_sei_or_parameter_set_only_packet() {
    let mut h = no_sdp();
    let (sps, pps) = (hex(SPS), hex(PPS));
    h.ok(0, true, &stap_a(&[&sps, &pps]));
    h.ok(0, true, SEI);
    assert!(h.frames.is_empty(), "no frame without a picture");
    h.ok(0, true, IDR);
    assert_eq!(h.frames.len(), 1);
    assert_eq!(h.frames[0].data, sample(&[SEI, IDR]));
    // SEI with its own timestamp and a marker: carried to the picture.
    h.ok(2000, true, SEI);
    h.ok(3000, true, P1);
    assert_eq!(h.frames.len(), 2);
    assert_eq!(
        (h.frames[1].ts, h.frames[1].data.clone()),
        (3000, sample(&[SEI, P1]))
    );
}

#[test]
fn quirk_missing_or_invalid_sdp_parameter_sets() {
    for fmtp in [
        None,
        Some("packetization-mode=1".to_string()),
        Some("sprop-parameter-sets=!!!,@@@".to_string()),
        // An SPS cut short, and no PPS.
        Some(format!("sprop-parameter-sets={}", b64(&hex(&SPS[..12])))),
    ] {
        let mut h = Harness::new(H264Depacketizer::new(fmtp.as_deref(), 1 << 20));
        assert!(h.d.params().is_none());
        assert_eq!(
            h.push(0, true, false, IDR),
            Err(DepacketizeError::NoParameters)
        );
        assert_eq!(
            h.push(3000, true, false, P1),
            Err(DepacketizeError::NoParameters)
        );
        let (sps, pps) = (hex(SPS), hex(PPS));
        h.ok(6000, true, &stap_a(&[&sps, &pps, IDR]));
        assert_eq!(h.frames.len(), 1, "{fmtp:?}");
        assert!(h.frames[0].changed && h.frames[0].key);
    }
}

#[test]
fn bad_in_band_sps_is_reported_once_and_ignored() {
    let mut h = with_sdp();
    let bad = [0x67, 0xff, 0xff, 0xff, 0xff];
    assert!(matches!(
        h.push(0, false, false, &bad),
        Err(DepacketizeError::BadParameters(_))
    ));
    h.ok(0, true, IDR);
    h.ok(3000, false, &bad);
    h.ok(3000, true, P1);
    assert_eq!(h.frames.len(), 2);
    assert_eq!(h.frames[1].params.width, 640);
}

#[test]
fn quirk_annex_b_start_codes_in_payload() {
    let mut h = no_sdp();
    let mut p = vec![0, 0, 0, 1];
    p.extend_from_slice(&hex(SPS));
    p.extend_from_slice(&[0, 0, 0, 1]);
    p.extend_from_slice(&hex(PPS));
    p.extend_from_slice(&[0, 0, 1]);
    p.extend_from_slice(SEI);
    p.extend_from_slice(&[0, 0, 1]);
    p.extend_from_slice(IDR);
    h.ok(0, true, &p);
    assert_eq!(h.frames.len(), 1);
    assert_eq!(h.frames[0].data, sample(&[SEI, IDR]));
    // Also inside a payload that starts with a proper NAL header.
    let mut p = P1.to_vec();
    p.extend_from_slice(&[0, 0, 0, 1]);
    p.extend_from_slice(P2);
    h.ok(3000, true, &p);
    assert_eq!(h.frames[1].data, sample(&[P1, P2]));
}

#[test]
fn quirk_trailing_bytes_after_sps() {
    for tail in [
        &[0u8, 0, 0][..],
        &[0x00, 0x00, 0x03, 0x00][..],
        &[0xff, 0x12, 0x34][..],
    ] {
        let mut sps = hex(SPS);
        sps.extend_from_slice(tail);
        let info = parse_sps(trim_trailing_zeros(&sps));
        assert!(info.is_ok(), "tail {tail:02x?}: {info:?}");
        let fmtp = format!("sprop-parameter-sets={},{}", b64(&sps), b64(&hex(PPS)));
        let d = H264Depacketizer::new(Some(&fmtp), 1 << 20);
        let p = d.params().expect("params");
        assert_eq!((p.width, p.height, p.fps_milli), (640, 360, Some(25_000)));
    }
}

#[test]
fn quirk_level_too_low_for_picture_size() {
    // 640x360 needs level 3.0 or so; claim level 1.0 (0x0a).
    let mut sps = hex(SPS);
    sps[3] = 0x0a;
    let info = parse_sps(&sps).expect("parsed despite the level");
    assert_eq!((info.width, info.height), (640, 360));
}

#[test]
fn quirk_fu_a_type_change_mid_nal() {
    let mut h = with_sdp();
    let nal: Vec<u8> = [0x41].into_iter().chain(1..=30).collect();
    let mut pk = fu_a(&nal, 3);
    pk[1][1] = (pk[1][1] & 0xe0) | 5; // now claims IDR
    h.ok(0, false, &pk[0]);
    assert!(matches!(
        h.push(0, false, false, &pk[1]),
        Err(DepacketizeError::Malformed(_))
    ));
    assert!(h.push(0, true, false, &pk[2]).is_err());
    assert!(h.frames.is_empty(), "nothing of the corrupt NAL survives");
    h.ok(3000, true, IDR);
    assert_eq!(h.frames.len(), 1);
    assert_eq!(h.frames[0].data, sample(&[IDR]));
}

#[test]
fn quirk_empty_fragments() {
    let mut h = with_sdp();
    h.ok(0, false, &[0x7c, 0x85]); // start, no payload
    h.ok(0, false, &[0x7c, 0x05]); // middle, no payload
    h.ok(0, true, &[0x7c, 0x45, 0x88, 0x99]);
    assert_eq!(h.frames.len(), 1);
    assert_eq!(h.frames[0].data, sample(&[&[0x65, 0x88, 0x99]]));
    // FU indicator without FU header, and a lone forbidden bit.
    assert!(h.push(3000, false, false, &[0x7c]).is_err());
    assert!(h.push(3000, false, false, &[0x80]).is_err());
    // An empty start-and-end fragment gives a header-only NAL unit:
    // a slice without a header is no video.
    assert!(matches!(
        h.push(3000, true, false, &[0x5c, 0xc1]),
        Err(DepacketizeError::BadSlice(_))
    ));
    assert_eq!(h.frames.len(), 1);
}

#[test]
fn params_change_mid_stream() {
    let mut h = with_sdp();
    h.ok(0, true, IDR);
    h.ok(3000, true, P1);
    let (sps, pps) = (hex(SPS_320), hex(PPS));
    // The same SPS again costs nothing and changes nothing.
    h.ok(6000, true, &stap_a(&[&hex(SPS), &pps, IDR2]));
    h.ok(9000, true, &stap_a(&[&sps, &pps, IDR2]));
    h.ok(12000, true, P1);
    let changed: Vec<bool> = h.frames.iter().map(|f| f.changed).collect();
    assert_eq!(changed, vec![true, false, false, true, false]);
    let p = &h.frames[3].params;
    assert_eq!((p.width, p.height, p.fps_milli), (320, 240, Some(30_000)));
    assert_eq!(p.rfc6381_codec, "avc1.64000d");
    assert_eq!(h.d.params(), Some(p));
}

#[test]
fn frame_too_large_is_dropped_once_then_resyncs() {
    let mut h = Harness::new(H264Depacketizer::new(Some(&fmtp()), 64));
    let big: Vec<u8> = [0x65].into_iter().chain(1..=90).collect();
    let pk = fu_a(&big, 3);
    h.ok(0, false, &pk[0]);
    assert_eq!(
        h.push(0, false, false, &pk[1]),
        Err(DepacketizeError::FrameTooLarge { limit: 64 })
    );
    h.ok(0, true, &pk[2]);
    assert!(h.frames.is_empty());
    h.ok(3000, true, P1);
    // A single NAL over the limit, then the stream goes on.
    assert!(matches!(
        h.push(6000, true, false, &big),
        Err(DepacketizeError::FrameTooLarge { .. })
    ));
    h.ok(9000, false, P2);
    h.ok(12000, true, IDR);
    // (12000 completes in the push that emitted 9000: it goes out next.)
    h.ok(15000, false, P1);
    let got: Vec<(i64, bool)> = h.frames.iter().map(|f| (f.ts, f.after_loss)).collect();
    assert_eq!(got, vec![(3000, true), (9000, true), (12000, false)]);
    assert!(h.frames.iter().all(|f| f.data.len() <= 64));
}

#[test]
fn interleaved_mode_packets_are_malformed() {
    let mut h = with_sdp();
    for t in [25u8, 26, 27, 29, 30, 31] {
        assert!(matches!(
            h.push(0, true, false, &[t, 0, 1, 2]),
            Err(DepacketizeError::Malformed(_))
        ));
    }
    assert!(h.frames.is_empty());
}

#[test]
fn steady_state_reuses_the_frame_buffer() {
    let mut h = with_sdp();
    let slice: Vec<u8> = [0x41, 0x9a]
        .into_iter()
        .chain((0..3000).map(|i| (i % 250) as u8 + 1))
        .collect();
    for i in 0..20i64 {
        for (j, p) in fu_a(&slice, 3).iter().enumerate() {
            h.ok(i * 3000, j == 2, p);
        }
    }
    assert_eq!(h.frames.len(), 20);
    let ptrs: Vec<usize> = h.frames.iter().skip(2).map(|f| f.ptr).collect();
    assert!(ptrs.windows(2).all(|w| w[0] == w[1]), "buffer reallocated");
}

#[test]
fn garbage_sps_never_panics() {
    let sps = hex(SPS);
    for cut in 0..sps.len() {
        let _ = parse_sps(&sps[..cut]);
    }
    let mut x: u32 = 7;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    for _ in 0..5000 {
        // Real SPS with a few bytes flipped, and pure noise.
        let mut v = sps.clone();
        for _ in 0..3 {
            let i = 1 + next() as usize % (v.len() - 1);
            v[i] ^= next() as u8;
        }
        let _ = parse_sps(&v);
        let noise: Vec<u8> = std::iter::once(0x67)
            .chain((0..30).map(|_| next() as u8))
            .collect();
        let _ = parse_sps(&noise);
    }
}
