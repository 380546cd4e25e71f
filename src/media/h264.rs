//! H.264 depacketizer (RFC 6184, packetization modes 0 and 1).
//!
//! Single NAL unit packets, STAP-A and FU-A are reassembled into access
//! units by the shared [`super::nal`] machinery; this module knows the
//! H.264 payload headers and NAL unit types, keeps the current SPS/PPS
//! (from `sprop-parameter-sets` and in-band) and builds the avcC record,
//! the picture size and frame rate from them (SPS parsing by `h264-reader`).

use super::bits::BitReader;
use super::nal::{
    fmtp_param, for_each_sprop, fps_milli, trim_trailing_zeros, NalClass, NalCodec,
    NalDepacketizer, Payload, MAX_PARAM_SET_BYTES,
};
use super::{Depacketize, DepacketizeError};
use crate::stream::rtp::RtpPacket;
use crate::stream::{Codec, Frame, VideoParams};
use h264_reader::nal::pps::PicParameterSet;
use h264_reader::nal::slice::{SliceHeader, SliceHeaderError};
use h264_reader::nal::sps::{SeqParameterSet, SpsError};
use h264_reader::nal::NalHeader;
use h264_reader::rbsp::{self, BitRead, BitReaderError, ByteReader};

const NAL_IDR: u8 = 5;
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
const NAL_AUD: u8 = 9;
/// profile_idc of the Extended profile, the only one with data partitions
/// and SP/SI slices.
const PROFILE_EXTENDED: u8 = 88;
const STAP_A: u8 = 24;
const FU_A: u8 = 28;

/// Turns RTP/H.264 packets into length-prefixed access units.
pub struct H264Depacketizer {
    inner: NalDepacketizer<H264Codec>,
}

impl H264Depacketizer {
    /// `fmtp` may carry `sprop-parameter-sets`; without usable ones, frames
    /// are dropped (`NoParameters`) until SPS and PPS arrive in-band.
    pub fn new(fmtp: Option<&str>, max_frame_bytes: u32) -> Self {
        let mut codec = H264Codec::default();
        if let Some(sets) = fmtp.and_then(|f| fmtp_param(f, "sprop-parameter-sets")) {
            let mut problems = 0;
            let bad = for_each_sprop(sets, |nal| {
                let ok = match nal.first().map(|b| b & 0x1f) {
                    Some(NAL_SPS) | Some(NAL_PPS) => codec.param_set(nal).is_ok(),
                    _ => false,
                };
                problems += usize::from(!ok);
            });
            if bad + problems > 0 {
                // Quirk: broken sprop-parameter-sets. Not fatal: the
                // in-band parameter sets will do.
                log::warn!(
                    "H.264: {} unusable entries in sprop-parameter-sets; waiting for in-band SPS/PPS",
                    bad + problems
                );
            }
        }
        H264Depacketizer {
            inner: NalDepacketizer::new(codec, max_frame_bytes),
        }
    }
}

impl Depacketize for H264Depacketizer {
    fn push(
        &mut self,
        pkt: &RtpPacket<'_>,
        timestamp_90k: i64,
        loss_before: bool,
        emit: &mut dyn FnMut(Frame<'_>),
    ) -> Result<(), DepacketizeError> {
        self.inner
            .push(pkt.marker, pkt.payload, timestamp_90k, loss_before, emit)
    }

    fn params(&self) -> Option<&VideoParams> {
        self.inner.params()
    }
}

/// What the SPS says, once parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
struct SpsInfo {
    width: u16,
    height: u16,
    fps_milli: Option<u32>,
    /// For the avcC extension of the High profiles.
    chroma_format: u8,
    bit_depth_luma_minus8: u8,
    bit_depth_chroma_minus8: u8,
}

/// The H.264 half: NAL types, payload headers and parameter sets.
#[derive(Default)]
pub(crate) struct H264Codec {
    /// Current SPS and PPS, whole NAL units (header included); empty when
    /// not known yet.
    sps: Vec<u8>,
    pps: Vec<u8>,
    sps_info: Option<SpsInfo>,
    /// The last SPS that failed to parse, so a camera repeating it before
    /// every key frame costs neither a parse nor an allocation each time.
    rejected_sps: Vec<u8>,
    params: Option<VideoParams>,
    /// `params` changed since the last emitted frame.
    changed: bool,
    /// The SPS and PPS parsed, to parse slice headers with; `None` while
    /// either is missing or the PPS does not parse.
    syntax: Option<h264_reader::Context>,
}

impl NalCodec for H264Codec {
    const HEADER_LEN: usize = 1;

    fn nal_type(nal: &[u8]) -> Option<u8> {
        nal.first().map(|b| b & 0x1f)
    }

    fn classify(nal_type: u8) -> NalClass {
        match nal_type {
            1..=4 => NalClass::Slice { key: false },
            NAL_IDR => NalClass::Slice { key: true },
            NAL_SPS | NAL_PPS => NalClass::ParamSet,
            NAL_AUD => NalClass::Aud,
            _ => NalClass::Other,
        }
    }

    fn parse_payload<'a>(&self, payload: &'a [u8]) -> Result<Payload<'a>, DepacketizeError> {
        let Some((&indicator, rest)) = payload.split_first() else {
            return Err(DepacketizeError::Malformed("empty payload"));
        };
        if indicator & 0x80 != 0 {
            return Err(DepacketizeError::Malformed("forbidden_zero_bit set"));
        }
        match indicator & 0x1f {
            1..=23 => Ok(Payload::Single(payload)),
            // Quirk: a payload that starts with an Annex B start code
            // reads as NAL type 0; let the start code splitter handle it.
            0 if payload.starts_with(&[0, 0, 1]) || payload.starts_with(&[0, 0, 0, 1]) => {
                Ok(Payload::Single(payload))
            }
            STAP_A => Ok(Payload::Aggregate {
                body: rest,
                first_don: 0,
                next_don: 0,
            }),
            FU_A => {
                let Some((&fu, data)) = rest.split_first() else {
                    return Err(DepacketizeError::Malformed("FU-A without FU header"));
                };
                let nal_type = fu & 0x1f;
                Ok(Payload::Fragment {
                    start: fu & 0x80 != 0,
                    end: fu & 0x40 != 0,
                    header: [(indicator & 0xe0) | nal_type, 0],
                    nal_type,
                    data,
                })
            }
            25 => Err(DepacketizeError::Malformed(
                "STAP-B (interleaved mode) unsupported",
            )),
            26 | 27 => Err(DepacketizeError::Malformed(
                "MTAP (interleaved mode) unsupported",
            )),
            29 => Err(DepacketizeError::Malformed(
                "FU-B (interleaved mode) unsupported",
            )),
            _ => Err(DepacketizeError::Malformed("reserved NAL unit type")),
        }
    }

    fn param_set(&mut self, nal: &[u8]) -> Result<(), DepacketizeError> {
        // Quirk: trailing zero bytes (padding) after a parameter set.
        let nal = trim_trailing_zeros(nal);
        if nal.len() > MAX_PARAM_SET_BYTES {
            return Err(DepacketizeError::Malformed("parameter set too large"));
        }
        match Self::nal_type(nal) {
            Some(NAL_SPS) => {
                if nal == self.sps.as_slice() || nal == self.rejected_sps.as_slice() {
                    return Ok(());
                }
                match parse_sps(nal) {
                    Ok(info) => {
                        self.sps.clear();
                        self.sps.extend_from_slice(nal);
                        self.sps_info = Some(info);
                        self.rebuild();
                        Ok(())
                    }
                    Err(why) => {
                        self.rejected_sps.clear();
                        self.rejected_sps.extend_from_slice(nal);
                        Err(DepacketizeError::BadParameters(format!("H.264 SPS: {why}")))
                    }
                }
            }
            Some(NAL_PPS) => {
                if nal.len() < 2 {
                    return Err(DepacketizeError::BadParameters("H.264 PPS: empty".into()));
                }
                if nal != self.pps.as_slice() {
                    if let Ok(sps) = read_sps(&self.sps) {
                        // Random bytes are taken for a PPS unless parsed.
                        let mut ctx = h264_reader::Context::new();
                        ctx.put_seq_param_set(sps);
                        let reader =
                            Lenient(rbsp::BitReader::new(ByteReader::skipping_h264_header(nal)));
                        if PicParameterSet::from_bits(&ctx, reader).is_err() {
                            return Err(DepacketizeError::BadParameters(
                                "H.264 PPS does not parse".into(),
                            ));
                        }
                    }
                    self.pps.clear();
                    self.pps.extend_from_slice(nal);
                    self.rebuild();
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn ready_params(&mut self) -> Result<(&VideoParams, bool), DepacketizeError> {
        match &self.params {
            Some(p) => Ok((p, std::mem::take(&mut self.changed))),
            None => Err(DepacketizeError::NoParameters),
        }
    }

    fn params(&self) -> Option<&VideoParams> {
        self.params.as_ref()
    }

    fn check_slice(
        &self,
        nal: &[u8],
        starts_picture: bool,
        thorough: bool,
    ) -> Result<(), &'static str> {
        let (&header, body) = nal.split_first().ok_or("empty slice")?;
        if header & 0x80 != 0 {
            return Err("slice with the forbidden bit set");
        }
        let nal_type = header & 0x1f;
        // Data partitions and SP/SI slices belong to the Extended profile
        // alone, which camera encoders do not use.
        let extended = self.sps.get(1) == Some(&PROFILE_EXTENDED);
        if nal_type != 1 && nal_type != NAL_IDR {
            return if extended {
                Ok(())
            } else {
                Err("data partition outside the Extended profile")
            };
        }
        let idr = nal_type == NAL_IDR;
        if idr && header & 0x60 == 0 {
            return Err("IDR slice with nal_ref_idc 0");
        }
        let mut r = BitReader::new(body);
        let first_mb = r.ue()?;
        let slice_type = r.ue_max(9, "slice_type out of range")?;
        r.ue_max(255, "pic_parameter_set_id out of range")?;
        if idr && !matches!(slice_type % 5, 2 | 4) {
            return Err("IDR slice that is not intra");
        }
        if !extended && matches!(slice_type % 5, 3 | 4) {
            return Err("SP/SI slice outside the Extended profile");
        }
        if starts_picture && first_mb != 0 {
            // Slices out of order exist only in Baseline with arbitrary
            // slice order, which camera encoders do not use.
            return Err("picture not starting at its first macroblock");
        }
        if let Some(p) = &self.params {
            // The cropped size rounds up to at most the coded size.
            let mbs = u32::from(p.width).div_ceil(16) * u32::from(p.height).div_ceil(16);
            if first_mb >= mbs {
                return Err("first_mb_in_slice past the picture");
            }
        }
        if let Some(syntax) = self.syntax.as_ref().filter(|_| thorough) {
            let header = NalHeader::new(header).map_err(|_| "bad NAL header")?;
            let mut r = Lenient(rbsp::BitReader::new(ByteReader::skipping_h264_header(nal)));
            match SliceHeader::from_bits(syntax, &mut r, header, None) {
                // Quirk: cameras with several PPS send the others in-band
                // only; a slice of one we do not hold is not judged.
                Ok(_)
                | Err(SliceHeaderError::UndefinedPicParamSetId(_))
                | Err(SliceHeaderError::UnsupportedSyntax(_)) => {}
                Err(_) => return Err("slice header does not parse"),
            }
        }
        Ok(())
    }
}

impl H264Codec {
    /// Rebuilds the parameters after the SPS or PPS changed (only then:
    /// this allocates).
    fn rebuild(&mut self) {
        let (Some(info), false) = (&self.sps_info, self.pps.is_empty()) else {
            return;
        };
        let new = VideoParams {
            codec: Codec::H264,
            width: info.width,
            height: info.height,
            fps_milli: info.fps_milli,
            rfc6381_codec: codec_string(&self.sps),
            decoder_config: avcc(&self.sps, &self.pps, info),
        };
        if self.params.as_ref() != Some(&new) {
            self.params = Some(new);
            self.changed = true;
            self.syntax = parse_syntax(&self.sps, &self.pps);
        }
    }
}

/// `avc1.PPCCLL` from the SPS's profile, constraint flags and level bytes.
fn codec_string(sps: &[u8]) -> String {
    let b = |i: usize| sps.get(i).copied().unwrap_or(0);
    format!("avc1.{:02x}{:02x}{:02x}", b(1), b(2), b(3))
}

/// Builds the AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3.1).
fn avcc(sps: &[u8], pps: &[u8], info: &SpsInfo) -> Vec<u8> {
    let b = |i: usize| sps.get(i).copied().unwrap_or(0);
    let mut v = Vec::with_capacity(11 + sps.len() + pps.len() + 4);
    v.push(1); // configurationVersion
    v.push(b(1)); // AVCProfileIndication
    v.push(b(2)); // profile_compatibility
    v.push(b(3)); // AVCLevelIndication
    v.push(0xfc | 3); // reserved + lengthSizeMinusOne (4-byte lengths)
    v.push(0xe0 | 1); // reserved + numOfSequenceParameterSets
                      // Lengths fit: param sets are capped at MAX_PARAM_SET_BYTES.
    v.extend_from_slice(&(sps.len() as u16).to_be_bytes());
    v.extend_from_slice(sps);
    v.push(1); // numOfPictureParameterSets
    v.extend_from_slice(&(pps.len() as u16).to_be_bytes());
    v.extend_from_slice(pps);
    if matches!(b(1), 100 | 110 | 122 | 144) {
        v.push(0xfc | (info.chroma_format & 3));
        v.push(0xf8 | (info.bit_depth_luma_minus8 & 7));
        v.push(0xf8 | (info.bit_depth_chroma_minus8 & 7));
        v.push(0); // numOfSequenceParameterSetExt
    }
    v
}

/// The profile_idc values of H.264 (2016 edition, 7.4.2.1.1).
const KNOWN_PROFILES: [u8; 16] = [
    66, 77, 88, 100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135,
];
/// The level_idc values of H.264 (Table A-1; 9 is level 1b).
const KNOWN_LEVELS: [u8; 20] = [
    9, 10, 11, 12, 13, 20, 21, 22, 30, 31, 32, 40, 41, 42, 50, 51, 52, 60, 61, 62,
];
/// No camera stream is narrower or lower than this (QCIF is 176x144).
const MIN_SIDE: u16 = 32;

/// Parses an SPS NAL unit (header included) with `h264-reader`.
fn parse_sps(nal: &[u8]) -> Result<SpsInfo, String> {
    // Random bytes parse as an SPS surprisingly often ("16x32", "4x14"):
    // what no encoder writes is not taken for video (issue: a server
    // sending random payloads was shown as streaming).
    let header = nal.first().copied().unwrap_or(0);
    if header & 0x80 != 0 || header & 0x60 == 0 {
        return Err("bad NAL header (forbidden bit set or nal_ref_idc 0)".into());
    }
    let profile = nal.get(1).copied().unwrap_or(0);
    if !KNOWN_PROFILES.contains(&profile) {
        return Err(format!("unknown profile_idc {profile}"));
    }
    if nal.get(2).copied().unwrap_or(0) & 0x03 != 0 {
        return Err("reserved_zero_2bits set".into());
    }
    let level = nal.get(3).copied().unwrap_or(0);
    if !KNOWN_LEVELS.contains(&level) {
        return Err(format!("unknown level_idc {level}"));
    }
    let sps = match read_sps(nal) {
        Ok(sps) => sps,
        Err(SpsError::FieldValueTooLarge { .. }) | Err(SpsError::FieldValueTooSmall { .. })
            if nal.len() > 3 =>
        {
            // Quirk: cameras declaring a level too low for their picture
            // size (or DPB), which h264-reader checks against the level
            // limits. Decoders ignore that; retry as if at level 6.2.
            let mut patched = nal.to_vec();
            if let Some(level) = patched.get_mut(3) {
                *level = 62;
            }
            read_sps(&patched).map_err(|e| format!("{e:?}"))?
        }
        Err(e) => return Err(format!("{e:?}")),
    };
    let (w, h) = sps.pixel_dimensions().map_err(|e| format!("{e:?}"))?;
    let width = u16::try_from(w).map_err(|_| format!("width {w} too large"))?;
    let height = u16::try_from(h).map_err(|_| format!("height {h} too large"))?;
    if width < MIN_SIDE || height < MIN_SIDE {
        return Err(format!("picture {width}x{height} too small for a camera"));
    }
    let fps_milli = sps
        .vui_parameters
        .as_ref()
        .and_then(|v| v.timing_info.as_ref())
        .and_then(|t| fps_milli(t.time_scale, 2 * u64::from(t.num_units_in_tick)));
    Ok(SpsInfo {
        width,
        height,
        fps_milli,
        chroma_format: sps.chroma_info.chroma_format.to_u32() as u8,
        bit_depth_luma_minus8: sps.chroma_info.bit_depth_luma_minus8,
        bit_depth_chroma_minus8: sps.chroma_info.bit_depth_chroma_minus8,
    })
}

/// A parsing context holding `sps` and `pps`, when both parse.
fn parse_syntax(sps: &[u8], pps: &[u8]) -> Option<h264_reader::Context> {
    let mut ctx = h264_reader::Context::new();
    ctx.put_seq_param_set(read_sps(sps).ok()?);
    let reader = Lenient(rbsp::BitReader::new(ByteReader::skipping_h264_header(pps)));
    ctx.put_pic_param_set(PicParameterSet::from_bits(&ctx, reader).ok()?);
    Some(ctx)
}

fn read_sps(nal: &[u8]) -> Result<SeqParameterSet, SpsError> {
    SeqParameterSet::from_bits(Lenient(rbsp::BitReader::new(
        ByteReader::skipping_h264_header(nal),
    )))
}

/// Quirk: bytes after the SPS syntax (zero padding, junk after the RBSP
/// trailing bits). `h264-reader` insists on clean trailing bits; everything
/// we need has been read by then, so the end check is waived.
struct Lenient<R>(R);

impl<R: BitRead> BitRead for Lenient<R> {
    fn read_ue(&mut self, name: &'static str) -> Result<u32, BitReaderError> {
        self.0.read_ue(name)
    }
    fn read_se(&mut self, name: &'static str) -> Result<i32, BitReaderError> {
        self.0.read_se(name)
    }
    fn read_bit(&mut self, name: &'static str) -> Result<bool, BitReaderError> {
        self.0.read_bit(name)
    }
    fn read<const BITS: u32, I: rbsp::Integer>(
        &mut self,
        name: &'static str,
    ) -> Result<I, BitReaderError> {
        self.0.read::<BITS, I>(name)
    }
    fn read_var<I: rbsp::Integer>(
        &mut self,
        bit_count: u32,
        name: &'static str,
    ) -> Result<I, BitReaderError> {
        self.0.read_var(bit_count, name)
    }
    fn read_to<V: rbsp::Primitive>(&mut self, name: &'static str) -> Result<V, BitReaderError> {
        self.0.read_to(name)
    }
    fn skip(&mut self, bit_count: u32, name: &'static str) -> Result<(), BitReaderError> {
        self.0.skip(bit_count, name)
    }
    fn byte_aligned(&self) -> bool {
        self.0.byte_aligned()
    }
    fn has_more_rbsp_data(&mut self, name: &'static str) -> Result<bool, BitReaderError> {
        self.0.has_more_rbsp_data(name)
    }
    fn finish_rbsp(self) -> Result<(), BitReaderError> {
        Ok(())
    }
    fn finish_sei_payload(self) -> Result<(), BitReaderError> {
        self.0.finish_sei_payload()
    }
}

#[cfg(test)]
mod tests {
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
}
