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
                    // Random bytes are taken for a PPS unless parsed (against
                    // the SPS, when there is one to judge it by).
                    if let Ok(sps) = read_sps(&self.sps) {
                        if parse_syntax(sps, nal).is_none() {
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
            self.syntax = read_sps(&self.sps)
                .ok()
                .and_then(|sps| parse_syntax(sps, &self.pps));
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

/// A parsing context holding `sps` and `pps`, when the PPS parses.
fn parse_syntax(sps: SeqParameterSet, pps: &[u8]) -> Option<h264_reader::Context> {
    let mut ctx = h264_reader::Context::new();
    ctx.put_seq_param_set(sps);
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
mod tests;
