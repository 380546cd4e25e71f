//! The clips embedded in the binary, cut into frames once at start-up.
//!
//! H.264 and H.265 clips are Annex B elementary streams; they are split
//! into NAL units and grouped into access units (one per frame) here, so
//! the sessions only walk slices. The MJPEG clip is concatenated baseline
//! JPEGs; each is parsed into what RFC 2435 carries (size, quantisation
//! tables, entropy-coded scan). The parsers never panic: they also run in
//! unit tests on hostile input, and a broken clip must be an error, not a
//! crash of `vigil demo`.

use super::{ClipInfo, CLIPS};
use crate::stream::Codec;
use base64::Engine;
use std::sync::OnceLock;

// The clips are 835 KB, a fifth of a board's binary: the board builds
// leave them out (cargo feature `builtin-camera`, on by default).
#[cfg(feature = "builtin-camera")]
static H264_CLIP: &[u8] = include_bytes!("clips/h264.264");
#[cfg(feature = "builtin-camera")]
static H265_CLIP: &[u8] = include_bytes!("clips/h265.265");
#[cfg(feature = "builtin-camera")]
static MJPEG_CLIP: &[u8] = include_bytes!("clips/mjpeg.mjpeg");
#[cfg(not(feature = "builtin-camera"))]
static H264_CLIP: &[u8] = &[];
#[cfg(not(feature = "builtin-camera"))]
static H265_CLIP: &[u8] = &[];
#[cfg(not(feature = "builtin-camera"))]
static MJPEG_CLIP: &[u8] = &[];

/// Bounds what the index will accept, so a bad clip cannot make it
/// allocate without limit.
const MAX_FRAMES: usize = 10_000;
const MAX_NALS_PER_FRAME: usize = 64;
/// Distinct bitrates [`clips_at_bitrate`] builds clips for (each kept for
/// the life of the process, with a filler unit of up to 500 KB per codec).
pub(crate) const MAX_BITRATES: usize = 16;
/// The bitrates a stream may ask for, kbit/s (as `--bitrate-kbps`).
pub(crate) const BITRATE_RANGE: std::ops::RangeInclusive<u32> = 1..=100_000;

/// One frame of a clip, ready to packetize.
#[derive(Debug)]
pub(crate) enum ClipFrame {
    /// H.264 / H.265: the NAL units of one access unit, without start
    /// codes, in decoding order (parameter sets first on key frames).
    Nals {
        nals: Vec<&'static [u8]>,
        key: bool,
    },
    Jpeg(JpegFrame<'static>),
}

impl ClipFrame {
    pub(crate) fn is_key(&self) -> bool {
        match self {
            ClipFrame::Nals { key, .. } => *key,
            ClipFrame::Jpeg(_) => true,
        }
    }
}

/// One clip, indexed.
#[derive(Debug)]
pub(crate) struct Clip {
    pub info: &'static ClipInfo,
    pub frames: Vec<ClipFrame>,
    /// RTP payload type: dynamic 96 for H.26x, static 26 for JPEG.
    pub payload_type: u8,
    /// The SDP media section (after the `m=` line's own fields), without
    /// `a=control`.
    pub sdp_media: String,
}

/// The indexed clips, built on first use and shared by every server.
pub(crate) fn clips() -> Result<&'static [Clip], String> {
    static INDEX: OnceLock<Result<Vec<Clip>, String>> = OnceLock::new();
    match INDEX.get_or_init(build_index) {
        Ok(v) => Ok(v.as_slice()),
        Err(e) => Err(e.clone()),
    }
}

/// The clips with H.264/H.265 frames padded by filler-data NAL units up to
/// `kbps` (for load tests at a realistic bitrate; a clip already above it,
/// and the MJPEG clip, are served as they are). Built once per bitrate and
/// kept for the life of the process, so sessions stay allocation-free.
/// Clients choose the bitrate per stream (`/h264/cam1/kbps=500`), so the
/// number of distinct bitrates is bounded ([`MAX_BITRATES`]): past it,
/// an error rather than memory without bound.
pub(crate) fn clips_at_bitrate(kbps: u32) -> Result<&'static [Clip], String> {
    static PADDED: std::sync::Mutex<Vec<(u32, &'static [Clip])>> =
        std::sync::Mutex::new(Vec::new());
    let base = clips()?;
    let mut cache = PADDED.lock().unwrap_or_else(|e| e.into_inner());
    padded_from(&mut cache, base, kbps)
}

/// [`clips_at_bitrate`] with its cache given, so the bound can be tested.
fn padded_from(
    cache: &mut Vec<(u32, &'static [Clip])>,
    base: &[Clip],
    kbps: u32,
) -> Result<&'static [Clip], String> {
    if let Some((_, c)) = cache.iter().find(|(k, _)| *k == kbps) {
        return Ok(c);
    }
    if cache.len() >= MAX_BITRATES {
        return Err(format!(
            "at most {MAX_BITRATES} different bitrates per process; {kbps} kbit/s is one too many"
        ));
    }
    let padded: Vec<Clip> = base.iter().map(|c| pad_clip(c, kbps)).collect();
    let leaked: &'static [Clip] = Vec::leak(padded);
    cache.push((kbps, leaked));
    Ok(leaked)
}

fn pad_clip(clip: &Clip, kbps: u32) -> Clip {
    let frames = clip.frames.len().max(1) as u64;
    let bytes: u64 = clip
        .frames
        .iter()
        .map(|f| match f {
            ClipFrame::Nals { nals, .. } => nals.iter().map(|n| n.len() as u64).sum(),
            ClipFrame::Jpeg(_) => 0,
        })
        .sum();
    let fps = u64::from(clip.info.fps.max(1));
    let target_per_frame = u64::from(kbps) * 1000 / 8 / fps;
    let have_per_frame = bytes / frames;
    let filler: Option<&'static [u8]> = match clip.info.codec {
        Codec::Jpeg => None,
        _ if target_per_frame <= have_per_frame + 8 => None,
        codec => {
            let n = usize::try_from(target_per_frame - have_per_frame)
                .unwrap_or(0)
                .min(1 << 20);
            // Filler data: H.264 NAL type 12, H.265 FD_NUT (38); payload
            // 0xFF bytes ended by the RBSP stop bit.
            let mut nal: Vec<u8> = match codec {
                Codec::H264 => vec![0x0c],
                _ => vec![38 << 1, 0x01],
            };
            nal.resize(n.saturating_sub(1).max(nal.len()), 0xff);
            nal.push(0x80);
            Some(Vec::leak(nal))
        }
    };
    let frames = clip
        .frames
        .iter()
        .map(|f| match (f, filler) {
            (ClipFrame::Nals { nals, key }, Some(fill)) => {
                let mut nals = nals.clone();
                nals.push(fill);
                ClipFrame::Nals { nals, key: *key }
            }
            (ClipFrame::Nals { nals, key }, None) => ClipFrame::Nals {
                nals: nals.clone(),
                key: *key,
            },
            (ClipFrame::Jpeg(j), _) => ClipFrame::Jpeg(*j),
        })
        .collect();
    Clip {
        info: clip.info,
        frames,
        payload_type: clip.payload_type,
        sdp_media: clip.sdp_media.clone(),
    }
}

fn build_index() -> Result<Vec<Clip>, String> {
    if H264_CLIP.is_empty() {
        return Err(
            "this binary has no built-in camera: it was built without the \
                    cargo feature `builtin-camera` (left out of the board builds)"
                .into(),
        );
    }
    CLIPS
        .iter()
        .map(|info| {
            let clip = match info.codec {
                Codec::H264 => index_h26x(info, H264_CLIP),
                Codec::H265 => index_h26x(info, H265_CLIP),
                Codec::Jpeg => index_jpeg(info, MJPEG_CLIP),
            };
            clip.map_err(|e| format!("built-in clip {}: {e}", info.name))
        })
        .collect()
}

/// Splits an Annex B byte stream into NAL units (start codes removed).
/// Trailing zero bytes before the next start code (`trailing_zero_8bits`)
/// are not part of the NAL unit and are dropped; empty units are skipped.
pub(crate) fn split_annex_b(data: &[u8]) -> Vec<&[u8]> {
    let mut nals = Vec::new();
    let mut start: Option<usize> = None;
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            if let Some(s) = start {
                push_nal(&mut nals, &data[s..i]);
            }
            i += 3;
            start = Some(i);
        } else {
            i += 1;
        }
    }
    if let Some(s) = start {
        push_nal(&mut nals, &data[s..]);
    }
    nals
}

fn push_nal<'a>(nals: &mut Vec<&'a [u8]>, mut nal: &'a [u8]) {
    while let [rest @ .., 0] = nal {
        nal = rest;
    }
    if !nal.is_empty() {
        nals.push(nal);
    }
}

/// NAL unit classification, per codec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NalKind {
    /// A slice; `first` when it is the first slice of its picture.
    Vcl { first: bool, key: bool },
    /// A non-VCL unit that, after a VCL unit, begins a new access unit
    /// (parameter sets, AUD, prefix SEI, ...).
    AuStart,
    /// Anything else (suffix SEI, end of sequence, filler...).
    Other,
}

fn classify(codec: Codec, nal: &[u8]) -> NalKind {
    match codec {
        Codec::H264 => {
            let t = nal.first().map_or(0, |b| b & 0x1f);
            match t {
                // first_mb_in_slice is ue(v) and is 0 exactly when its first
                // bit is 1.
                1 | 5 => NalKind::Vcl {
                    first: nal.get(1).is_some_and(|b| b & 0x80 != 0),
                    key: t == 5,
                },
                6..=9 | 14..=18 => NalKind::AuStart,
                _ => NalKind::Other,
            }
        }
        _ => {
            let t = nal.first().map_or(63, |b| (b >> 1) & 0x3f);
            match t {
                // first_slice_segment_in_pic_flag is the first bit after
                // the two-byte header.
                0..=31 => NalKind::Vcl {
                    first: nal.get(2).is_some_and(|b| b & 0x80 != 0),
                    key: (16..=23).contains(&t),
                },
                32..=35 | 39 | 41..=44 | 48..=55 => NalKind::AuStart,
                _ => NalKind::Other,
            }
        }
    }
}

/// The NAL unit type, per codec.
fn nal_type(codec: Codec, nal: &[u8]) -> u8 {
    match codec {
        Codec::H264 => nal.first().map_or(0, |b| b & 0x1f),
        _ => nal.first().map_or(0, |b| (b >> 1) & 0x3f),
    }
}

/// The NAL units of one access unit, and whether it is a key frame.
pub(crate) type AccessUnit<'a> = (Vec<&'a [u8]>, bool);

/// Groups NAL units into access units.
pub(crate) fn group_access_units<'a>(
    codec: Codec,
    nals: &[&'a [u8]],
) -> Result<Vec<AccessUnit<'a>>, String> {
    let mut aus: Vec<AccessUnit<'a>> = Vec::new();
    let mut cur: Vec<&'a [u8]> = Vec::new();
    let mut cur_has_vcl = false;
    let mut cur_key = false;
    for &nal in nals {
        let kind = classify(codec, nal);
        let begins = cur_has_vcl
            && match kind {
                NalKind::Vcl { first, .. } => first,
                NalKind::AuStart => true,
                NalKind::Other => false,
            };
        if begins {
            if aus.len() >= MAX_FRAMES {
                return Err(format!("more than {MAX_FRAMES} frames"));
            }
            aus.push((std::mem::take(&mut cur), cur_key));
            cur_has_vcl = false;
            cur_key = false;
        }
        if cur.len() >= MAX_NALS_PER_FRAME {
            return Err(format!(
                "more than {MAX_NALS_PER_FRAME} NAL units in a frame"
            ));
        }
        cur.push(nal);
        if let NalKind::Vcl { key, .. } = kind {
            cur_has_vcl = true;
            cur_key |= key;
        }
    }
    if cur_has_vcl {
        aus.push((cur, cur_key));
    }
    Ok(aus)
}

fn index_h26x(info: &'static ClipInfo, data: &'static [u8]) -> Result<Clip, String> {
    let nals = split_annex_b(data);
    let aus = group_access_units(info.codec, &nals)?;
    // Parameter set NAL types, in the order they must precede a key frame.
    let ps_types: &[u8] = match info.codec {
        Codec::H264 => &[7, 8],
        _ => &[32, 33, 34],
    };
    let find = |t: u8| nals.iter().copied().find(|n| nal_type(info.codec, n) == t);
    let mut params: Vec<&'static [u8]> = Vec::new();
    for &t in ps_types {
        params.push(find(t).ok_or_else(|| format!("no parameter set of NAL type {t}"))?);
    }
    let mut frames = Vec::with_capacity(aus.len());
    for (mut au, key) in aus {
        // Clients joining (and the loop seam) need the parameter sets in-band
        // before every key frame, not only in the SDP: put them there if the
        // encoder did not.
        if key {
            for (i, &t) in ps_types.iter().enumerate().rev() {
                if !au.iter().any(|n| nal_type(info.codec, n) == t) {
                    au.insert(0, params[i]);
                }
            }
        }
        frames.push(ClipFrame::Nals { nals: au, key });
    }
    if frames.first().is_none_or(|f| !f.is_key()) {
        return Err("the clip does not start with a key frame".into());
    }
    let b64 = |n: &[u8]| base64::engine::general_purpose::STANDARD.encode(n);
    let sdp_media = match info.codec {
        Codec::H264 => {
            let sps = params[0];
            let profile = sps
                .get(1..4)
                .ok_or("SPS too short")?
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>();
            format!(
                "a=rtpmap:96 H264/90000\r\n\
                 a=fmtp:96 packetization-mode=1;profile-level-id={profile};sprop-parameter-sets={},{}\r\n",
                b64(sps),
                b64(params[1])
            )
        }
        _ => format!(
            "a=rtpmap:96 H265/90000\r\na=fmtp:96 sprop-vps={};sprop-sps={};sprop-pps={}\r\n",
            b64(params[0]),
            b64(params[1]),
            b64(params[2])
        ),
    };
    Ok(Clip {
        info,
        frames,
        payload_type: 96,
        sdp_media,
    })
}

fn index_jpeg(info: &'static ClipInfo, mut data: &'static [u8]) -> Result<Clip, String> {
    let mut frames = Vec::new();
    while !data.is_empty() {
        if frames.len() >= MAX_FRAMES {
            return Err(format!("more than {MAX_FRAMES} frames"));
        }
        let (frame, used) = parse_jpeg(data).map_err(|e| format!("frame {}: {e}", frames.len()))?;
        frames.push(ClipFrame::Jpeg(frame));
        data = data.get(used..).unwrap_or_default();
    }
    Ok(Clip {
        info,
        frames,
        payload_type: 26,
        sdp_media: "a=rtpmap:26 JPEG/90000\r\n".into(),
    })
}

/// What RFC 2435 needs of one baseline JPEG.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct JpegFrame<'a> {
    pub width: u16,
    pub height: u16,
    /// The luma and chroma quantisation tables, 64 bytes each, in the
    /// zig-zag order of the DQT segment (which is what RFC 2435 sends).
    pub qtables: [&'a [u8]; 2],
    /// The entropy-coded scan: from after the SOS header up to (not
    /// including) the EOI marker.
    pub scan: &'a [u8],
}

fn be16(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*data.get(at)?, *data.get(at + 1)?]))
}

/// Parses the first JPEG in `data`; returns it and the bytes it used (up
/// to and including EOI, plus any padding before the next SOI).
///
/// Only what RFC 2435 type 1 can carry is accepted: baseline (SOF0),
/// 8-bit quantisation tables, three components sampled 4:2:0, no restart
/// interval, dimensions multiples of 8 up to 2040. The Huffman tables are
/// not sent over RTP, so the clip must use the standard ones
/// (scripts/make-clips.sh asks ffmpeg for them).
pub(crate) fn parse_jpeg(data: &[u8]) -> Result<(JpegFrame<'_>, usize), &'static str> {
    if data.get(..2) != Some(&[0xff, 0xd8][..]) {
        return Err("no SOI marker");
    }
    let mut tables: [Option<&[u8]>; 4] = [None; 4];
    let mut size: Option<(u16, u16)> = None;
    let mut selectors = [0u8; 2];
    let mut pos = 2;
    loop {
        // Markers may be preceded by any number of 0xff fill bytes.
        if data.get(pos) != Some(&0xff) {
            return Err("expected a marker");
        }
        while data.get(pos) == Some(&0xff) {
            pos += 1;
        }
        let marker = *data.get(pos).ok_or("truncated before a marker")?;
        pos += 1;
        match marker {
            0x01 | 0xd0..=0xd7 => continue,
            0xd8 | 0xd9 => return Err("SOI/EOI before the scan"),
            _ => {}
        }
        let len = usize::from(be16(data, pos).ok_or("truncated segment length")?);
        let body = data
            .get(pos + 2..pos + len)
            .filter(|_| len >= 2)
            .ok_or("truncated segment")?;
        pos += len;
        match marker {
            0xc0 => {
                // SOF0: P, Y, X, Nf, then (id, HV, Tq) per component.
                if body.len() < 6 + 9 || body.first() != Some(&8) {
                    return Err("SOF0 is not 8-bit with three components");
                }
                let height = be16(body, 1).ok_or("short SOF0")?;
                let width = be16(body, 3).ok_or("short SOF0")?;
                if body.get(5) != Some(&3) {
                    return Err("not three components (RFC 2435 carries YCbCr only)");
                }
                let comp = |i: usize| body.get(6 + 3 * i..9 + 3 * i).unwrap_or(&[0, 0, 0]);
                if comp(0)[1] != 0x22 || comp(1)[1] != 0x11 || comp(2)[1] != 0x11 {
                    return Err("not 4:2:0 sampling (RFC 2435 type 1)");
                }
                if comp(1)[2] != comp(2)[2] {
                    return Err("Cb and Cr use different quantisation tables");
                }
                selectors = [comp(0)[2], comp(1)[2]];
                if width == 0 || height == 0 || width % 8 != 0 || height % 8 != 0 {
                    return Err("dimensions not a multiple of 8");
                }
                if width > 2040 || height > 2040 {
                    return Err("dimensions above RFC 2435's 2040");
                }
                size = Some((width, height));
            }
            0xc1..=0xcf if marker != 0xc4 && marker != 0xc8 && marker != 0xcc => {
                return Err("not a baseline JPEG");
            }
            0xdb => {
                let mut t = body;
                while let [pq_tq, rest @ ..] = t {
                    if pq_tq >> 4 != 0 {
                        return Err("16-bit quantisation table");
                    }
                    let table = rest.get(..64).ok_or("short DQT")?;
                    if let Some(slot) = tables.get_mut(usize::from(pq_tq & 0x0f)) {
                        *slot = Some(table);
                    }
                    t = rest.get(64..).unwrap_or_default();
                }
            }
            0xdd if be16(body, 0).ok_or("short DRI")? != 0 => {
                return Err("restart interval (needs RFC 2435 types 64+)");
            }
            0xda => break,
            _ => {} // APPn, COM, DHT: not carried.
        }
    }
    let (width, height) = size.ok_or("no SOF0 before the scan")?;
    let table = |s: u8| tables.get(usize::from(s)).copied().flatten();
    let qtables = [
        table(selectors[0]).ok_or("missing luma quantisation table")?,
        table(selectors[1]).ok_or("missing chroma quantisation table")?,
    ];
    // The scan runs to EOI. Inside entropy-coded data 0xff is followed by a
    // stuffed 0x00 or a restart marker; anything else ends the scan.
    let scan_start = pos;
    let mut i = pos;
    loop {
        let rel = data
            .get(i..)
            .and_then(|d| d.iter().position(|&b| b == 0xff))
            .ok_or("no EOI")?;
        i += rel;
        match data.get(i + 1) {
            Some(0x00) | Some(0xd0..=0xd7) | Some(0xff) => i += 1,
            Some(0xd9) => break,
            Some(_) => return Err("a second scan (not baseline sequential)"),
            None => return Err("no EOI"),
        }
    }
    let scan = data.get(scan_start..i).ok_or("no EOI")?;
    if scan.len() >= 1 << 24 {
        return Err("scan larger than RFC 2435's 24-bit fragment offset");
    }
    let mut used = i + 2;
    // Some concatenations leave padding between images.
    while data.get(used).is_some_and(|&b| b != 0xff) {
        used += 1;
    }
    Ok((
        JpegFrame {
            width,
            height,
            qtables,
            scan,
        },
        used,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_bitrates_are_bounded() {
        let base = clips().expect("clips index");
        let mut cache = Vec::new();
        // Bitrates below the clips' own: no filler, only the frame lists.
        for kbps in 1..=MAX_BITRATES as u32 {
            assert!(padded_from(&mut cache, base, kbps).is_ok(), "{kbps}");
        }
        let first = padded_from(&mut cache, base, 1).expect("a known bitrate");
        assert!(std::ptr::eq(first, cache[0].1), "built again");
        assert!(padded_from(&mut cache, base, MAX_BITRATES as u32 + 1).is_err());
        assert_eq!(cache.len(), MAX_BITRATES);
    }

    #[test]
    fn embedded_clips_match_their_info() {
        let clips = clips().expect("clips index");
        assert_eq!(clips.len(), CLIPS.len());
        for clip in clips {
            assert_eq!(
                clip.frames.len() as u32,
                clip.info.frames,
                "{}",
                clip.info.name
            );
            assert!(clip.frames[0].is_key());
            let keys = clip.frames.iter().filter(|f| f.is_key()).count();
            match clip.info.codec {
                // GOP 50 = 2 s at 25 fps, 100 frames.
                Codec::H264 | Codec::H265 => assert_eq!(keys, 2, "{}", clip.info.name),
                Codec::Jpeg => assert_eq!(keys, clip.frames.len()),
            }
        }
        let total = H264_CLIP.len() + H265_CLIP.len() + MJPEG_CLIP.len();
        assert!(total <= 1 << 20, "clips are {total} bytes, over 1 MiB");
    }

    #[test]
    fn key_frames_carry_parameter_sets_first() {
        for clip in clips().unwrap() {
            for f in &clip.frames {
                if let ClipFrame::Nals { nals, key: true } = f {
                    let types: Vec<u8> =
                        nals.iter().map(|n| nal_type(clip.info.codec, n)).collect();
                    match clip.info.codec {
                        Codec::H264 => assert_eq!(&types[..2], &[7, 8]),
                        _ => assert_eq!(&types[..3], &[32, 33, 34]),
                    }
                }
            }
        }
    }

    #[test]
    fn jpeg_clip_frames_have_the_clip_size() {
        let clips = clips().unwrap();
        let mjpeg = clips.iter().find(|c| c.info.codec == Codec::Jpeg).unwrap();
        for f in &mjpeg.frames {
            let ClipFrame::Jpeg(j) = f else { panic!() };
            assert_eq!((j.width, j.height), (640, 360));
            assert!(j.scan.len() > 1000);
            assert_ne!(j.scan.last(), Some(&0xff));
        }
    }

    #[test]
    fn annex_b_split_drops_start_codes_and_trailing_zeros() {
        let data = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 0, 1, 0x68, 3, 0, 0, 1, 0x65, 9, 0,
        ];
        let nals = split_annex_b(&data);
        assert_eq!(
            nals,
            vec![&[0x67, 1, 2][..], &[0x68, 3][..], &[0x65, 9][..]]
        );
        assert!(split_annex_b(&[0, 0, 1]).is_empty());
        assert!(split_annex_b(&[]).is_empty());
        assert!(split_annex_b(&[1, 2, 3]).is_empty());
    }

    #[test]
    fn h264_access_units_split_on_first_slice_and_sei() {
        let sps = [0x67u8, 0x4d];
        let pps = [0x68u8, 0xee];
        let idr0 = [0x65u8, 0x88]; // first_mb_in_slice = 0
        let idr1 = [0x65u8, 0x40]; // second slice of the same picture
        let p0 = [0x41u8, 0x9a];
        let p1 = [0x41u8, 0x20];
        let sei = [0x06u8, 0x05];
        let nals: Vec<&[u8]> = vec![&sps, &pps, &idr0, &idr1, &p0, &p1, &sei, &p0];
        let aus = group_access_units(Codec::H264, &nals).unwrap();
        assert_eq!(aus.len(), 3);
        assert_eq!(aus[0].0.len(), 4);
        assert!(aus[0].1);
        assert_eq!(aus[1].0.len(), 2);
        assert!(!aus[1].1);
        assert_eq!(aus[2].0, vec![&sei[..], &p0[..]]);
    }

    #[test]
    fn h265_access_units_split_on_first_slice_segment() {
        let vps = [0x40u8, 0x01, 0x0c];
        let idr = [0x26u8, 0x01, 0xaf]; // IDR_W_RADL, first slice segment
        let trail = [0x02u8, 0x01, 0xd0];
        let trail2 = [0x02u8, 0x01, 0x40]; // not first
        let suffix_sei = [0x50u8, 0x01, 0x80];
        let nals: Vec<&[u8]> = vec![&vps, &idr, &trail, &trail2, &suffix_sei, &trail];
        let aus = group_access_units(Codec::H265, &nals).unwrap();
        assert_eq!(aus.len(), 3);
        assert!(aus[0].1);
        assert_eq!(aus[1].0.len(), 3);
        assert!(!aus[2].1);
    }

    #[test]
    fn jpeg_parser_rejects_garbage_without_panicking() {
        assert!(parse_jpeg(&[]).is_err());
        assert!(parse_jpeg(&[0xff, 0xd8]).is_err());
        assert!(parse_jpeg(&[0xff, 0xd8, 0xff, 0xc0, 0x00]).is_err());
        assert!(parse_jpeg(&[0xff, 0xd8, 0xff, 0xc0, 0x00, 0x01]).is_err());
        assert!(parse_jpeg(&[0xff, 0xd8, 0xff, 0xda, 0x00, 0x02, 0xff]).is_err());
        // Every prefix of a real frame fails cleanly.
        let real = &MJPEG_CLIP[..parse_jpeg(MJPEG_CLIP).unwrap().1];
        for n in 0..real.len() - 2 {
            assert!(parse_jpeg(&real[..n]).is_err(), "prefix {n}");
        }
        // Flipping each header byte never panics.
        let header_len = real.len() - parse_jpeg(real).unwrap().0.scan.len();
        let mut copy = real.to_vec();
        for i in 0..header_len.min(700) {
            for v in [0x00, 0xff, 0x11, 0x22] {
                let old = copy[i];
                copy[i] = v;
                let _ = parse_jpeg(&copy);
                copy[i] = old;
            }
        }
    }

    #[test]
    fn jpeg_parser_rejects_what_rfc2435_type1_cannot_carry() {
        let (_, used) = parse_jpeg(MJPEG_CLIP).unwrap();
        let real = &MJPEG_CLIP[..used];
        let sof = real.windows(2).position(|w| w == [0xff, 0xc0]).unwrap();
        // Progressive.
        let mut p = real.to_vec();
        p[sof + 1] = 0xc2;
        assert_eq!(parse_jpeg(&p).unwrap_err(), "not a baseline JPEG");
        // 4:2:2 (luma 2x1).
        let mut p = real.to_vec();
        p[sof + 2 + 2 + 6 + 1] = 0x21;
        assert_eq!(
            parse_jpeg(&p).unwrap_err(),
            "not 4:2:0 sampling (RFC 2435 type 1)"
        );
    }
}
