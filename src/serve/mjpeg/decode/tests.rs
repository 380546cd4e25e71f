// The helpers below serve the decoder's tests, which need the feature.
#![cfg_attr(not(feature = "h264-snapshots"), allow(dead_code))]

use super::*;
use crate::media::Depacketizer;
use crate::stream::rtp::RtpPacket;
use crate::stream::{Codec, VideoParams};

static H264_CLIP: &[u8] = include_bytes!("../../../camera/clips/h264.264");

/// The NAL units of an Annex B stream.
fn nal_units(mut b: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let start = |b: &[u8]| b.windows(3).position(|w| w == [0, 0, 1]);
    let Some(s) = start(b) else {
        return out;
    };
    b = &b[s + 3..];
    loop {
        match start(b) {
            Some(e) => {
                // A 4-byte start code leaves its leading zero behind.
                let nal = &b[..e];
                out.push(nal.strip_suffix(&[0]).unwrap_or(nal));
                b = &b[e + 3..];
            }
            None => {
                out.push(b);
                return out;
            }
        }
    }
}

/// The frames of the built-in H.264 clip exactly as the recorder stores
/// them: each access unit through the real depacketizer, one RTP packet
/// per NAL unit.
pub(crate) fn clip_frames() -> Vec<(VideoParams, Vec<u8>, bool)> {
    let out = frames_of(H264_CLIP);
    assert_eq!(out.len(), 100, "the clip has 100 frames");
    out
}

/// The frames of an Annex B H.264 stream, as the recorder stores them.
fn frames_of(annexb: &[u8]) -> Vec<(VideoParams, Vec<u8>, bool)> {
    // Group into access units: a new one starts at a parameter set, SEI
    // or delimiter after a slice, or at a slice with first_mb_in_slice 0
    // (its first bit set) after a slice.
    let mut aus: Vec<Vec<&[u8]>> = Vec::new();
    let mut has_slice = false;
    for nal in nal_units(annexb) {
        let t = nal[0] & 0x1f;
        let slice = t == 1 || t == 5;
        let starts = match t {
            6..=9 => has_slice,
            1 | 5 => has_slice && nal.get(1).is_some_and(|b| b & 0x80 != 0),
            _ => false,
        };
        if starts || aus.is_empty() {
            aus.push(Vec::new());
            has_slice = false;
        }
        aus.last_mut().unwrap().push(nal);
        has_slice |= slice;
    }
    let mut d = Depacketizer::new(Codec::H264, None, 1 << 20);
    let mut out = Vec::new();
    let mut seq = 0u16;
    for (i, au) in aus.iter().enumerate() {
        let ts = i as i64 * 3600;
        for (j, nal) in au.iter().enumerate() {
            seq = seq.wrapping_add(1);
            let pkt = RtpPacket {
                sequence: seq,
                timestamp: ts as u32,
                ssrc: 1,
                marker: j + 1 == au.len(),
                payload_type: 96,
                payload: nal,
            };
            d.push(&pkt, ts, false, &mut |f| {
                out.push((f.params.clone(), f.data.to_vec(), f.key))
            })
            .unwrap();
        }
    }
    out
}

/// Width and height from a JPEG's start-of-frame marker, checking that
/// it is a whole JFIF image (SOI first, EOI last).
pub(crate) fn jpeg_size(j: &[u8]) -> Option<(u16, u16)> {
    if !j.starts_with(&[0xff, 0xd8]) || !j.ends_with(&[0xff, 0xd9]) {
        return None;
    }
    let mut i = 2;
    while let (Some(&0xff), Some(&m)) = (j.get(i), j.get(i + 1)) {
        let len = usize::from(u16::from_be_bytes([*j.get(i + 2)?, *j.get(i + 3)?]));
        if matches!(m, 0xc0..=0xc2) {
            let h = u16::from_be_bytes([*j.get(i + 5)?, *j.get(i + 6)?]);
            let w = u16::from_be_bytes([*j.get(i + 7)?, *j.get(i + 8)?]);
            return Some((w, h));
        }
        i += 2 + len;
    }
    None
}

#[test]
fn avcc_to_annexb() {
    // version 1, profile, compat, level, 0xff, one SPS of 3 bytes, one PPS of 2.
    let avcc = [
        1, 0x4d, 0x40, 0x1e, 0xff, 0xe1, 0, 3, 0x67, 1, 2, 1, 0, 2, 0x68, 9,
    ];
    let mut out = vec![7];
    annexb_from_avcc(&avcc, false, &mut out).unwrap();
    assert_eq!(out, [7, 0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x68, 9]);
    // Every truncation is an error, never a panic.
    for n in 0..avcc.len() {
        assert!(
            annexb_from_avcc(&avcc[..n], false, &mut Vec::new()).is_err(),
            "{n}"
        );
    }
    let mut v0 = avcc;
    v0[0] = 0;
    assert!(annexb_from_avcc(&v0, false, &mut Vec::new()).is_err());
    let no_sps = [1, 0x4d, 0x40, 0x1e, 0xff, 0xe0, 1, 0, 2, 0x68, 9];
    assert!(annexb_from_avcc(&no_sps, false, &mut Vec::new()).is_err());
}

#[test]
fn length_prefixed_to_annexb() {
    let frame = [0, 0, 0, 2, 0x65, 1, 0, 0, 0, 1, 0x41];
    let mut out = Vec::new();
    annexb_from_frame(&frame, &mut out).unwrap();
    assert_eq!(out, [0, 0, 0, 1, 0x65, 1, 0, 0, 0, 1, 0x41]);
    assert_eq!(out.len(), frame.len());
    for bad in [
        &[0, 0, 0][..],
        &[0, 0, 0, 3, 0x65, 1],
        &[0, 0, 0, 0],
        &[0xff, 0xff, 0xff, 0xff, 1],
    ] {
        assert!(annexb_from_frame(bad, &mut Vec::new()).is_err(), "{bad:?}");
    }
}

#[cfg(feature = "h264-snapshots")]
#[test]
fn key_frames_of_the_clip_become_jpegs() {
    let frames = clip_frames();
    let keys: Vec<_> = frames.iter().filter(|f| f.2).collect();
    assert_eq!(keys.len(), 2);
    let mut d = H264Decoder::new().unwrap();
    let mut out = Vec::new();
    // The same decoder for each, in any order, with P-frames and garbage in
    // between: each key frame stands alone.
    for (params, data, _) in [keys[1], keys[0], keys[1]] {
        assert_eq!(params.codec, crate::stream::Codec::H264);
        let (w, h) = d
            .key_frame_to_jpeg(&params.decoder_config, data, QUALITY, &mut out)
            .unwrap();
        assert_eq!((w, h), (640, 360));
        assert_eq!(jpeg_size(&out), Some((640, 360)));
        assert!(out.len() > 5_000 && out.len() < 200_000, "{}", out.len());
        let (p, pdata, _) = &frames[10];
        // A P-frame alone has no reference: an error or a picture, but no
        // crash; likewise garbage.
        let _ = d.key_frame_to_jpeg(&p.decoder_config, pdata, QUALITY, &mut Vec::new());
        let junk: Vec<u8> = (0..2000u32).map(|i| (i * 7919 % 251) as u8).collect();
        let mut framed = (junk.len() as u32).to_be_bytes().to_vec();
        framed.extend_from_slice(&junk);
        let _ = d.key_frame_to_jpeg(&p.decoder_config, &framed, QUALITY, &mut Vec::new());
    }
    assert!(
        !with_decoder::full_range(&keys[0].0.decoder_config),
        "x264's default is limited range"
    );
}

#[cfg(feature = "h264-snapshots")]
#[test]
fn limited_range_is_expanded() {
    let l = with_decoder::Levels::expand();
    assert_eq!(
        (l.luma[16], l.luma[235], l.luma[0], l.luma[255]),
        (0, 255, 0, 255)
    );
    // -127.5 rounds up: 0 and 1 are equally right.
    assert!(l.chroma[16] <= 1);
    assert_eq!((l.chroma[128], l.chroma[240]), (128, 255));
    assert!(l.luma.windows(2).all(|w| w[0] <= w[1]));
}

#[cfg(not(feature = "h264-snapshots"))]
#[test]
fn without_the_feature_the_decoder_says_so() {
    assert_eq!(H264Decoder::new().err(), Some(DecodeError::NotBuilt));
    const { assert!(!AVAILABLE) };
}
