//! H.265 depacketizer (RFC 7798).
//!
//! Single NAL unit packets, aggregation packets (AP) and fragmentation
//! units (FU) are reassembled into access units by the shared
//! [`super::nal`] machinery; PACI packets are dropped. This module knows
//! the H.265 payload headers and NAL unit types, keeps the current
//! VPS/SPS/PPS (from `sprop-vps/sps/pps` and in-band), parses the SPS
//! itself (profile/tier/level, picture size with the conformance window,
//! VUI frame rate) and builds the hvcC record.

use super::bits::{BitReader, BitsError};
use super::nal::{
    fmtp_param, for_each_sprop, fps_milli, trim_trailing_zeros, NalClass, NalCodec,
    NalDepacketizer, Payload, MAX_PARAM_SET_BYTES,
};
use super::{Depacketize, DepacketizeError};
use crate::stream::rtp::RtpPacket;
use crate::stream::{Codec, Frame, VideoParams};

const NAL_VPS: u8 = 32;
const NAL_SPS: u8 = 33;
const NAL_PPS: u8 = 34;
const NAL_AUD: u8 = 35;
const AP: u8 = 48;
const FU: u8 = 49;
const PACI: u8 = 50;

/// Turns RTP/H.265 packets into length-prefixed access units.
pub struct H265Depacketizer {
    inner: NalDepacketizer<H265Codec>,
}

impl H265Depacketizer {
    /// `fmtp` may carry `sprop-vps`, `sprop-sps`, `sprop-pps` (and
    /// `sprop-max-don-diff`); without usable parameter sets, frames are
    /// dropped (`NoParameters`) until they arrive in-band.
    pub fn new(fmtp: Option<&str>, max_frame_bytes: u32) -> Self {
        let mut codec = H265Codec::default();
        if let Some(fmtp) = fmtp {
            // With a non-zero sprop-max-don-diff, APs and FUs carry
            // decoding order numbers that must be skipped.
            codec.don = fmtp_param(fmtp, "sprop-max-don-diff")
                .and_then(|v| v.parse::<u32>().ok())
                .is_some_and(|v| v > 0);
            let (mut bad, mut unusable) = (0, 0);
            for key in ["sprop-vps", "sprop-sps", "sprop-pps"] {
                if let Some(sets) = fmtp_param(fmtp, key) {
                    bad += for_each_sprop(sets, |nal| {
                        let ok = match H265Codec::nal_type(nal) {
                            Some(NAL_VPS..=NAL_PPS) => codec.param_set(nal).is_ok(),
                            _ => false,
                        };
                        unusable += usize::from(!ok);
                    });
                }
            }
            let problems = bad + unusable;
            if problems > 0 {
                // Quirk: broken sprop-vps/sps/pps. Not fatal: the in-band
                // parameter sets will do.
                log::warn!(
                    "H.265: {problems} unusable sprop parameter sets; waiting for in-band ones"
                );
            }
        }
        H265Depacketizer {
            inner: NalDepacketizer::new(codec, max_frame_bytes),
        }
    }
}

impl Depacketize for H265Depacketizer {
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
    /// general_profile_space/tier/profile_idc, the 32 compatibility flags,
    /// the 48 constraint indicator bits and general_level_idc, as coded.
    ptl: [u8; 12],
    chroma_format_idc: u8,
    bit_depth_luma_minus8: u8,
    bit_depth_chroma_minus8: u8,
    max_sub_layers_minus1: u8,
    temporal_id_nesting: bool,
}

/// The H.265 half: NAL types, payload headers and parameter sets.
#[derive(Default)]
pub(crate) struct H265Codec {
    /// DONL/DOND fields present (sprop-max-don-diff > 0).
    don: bool,
    /// Current parameter sets, whole NAL units; empty when not known yet.
    vps: Vec<u8>,
    sps: Vec<u8>,
    pps: Vec<u8>,
    sps_info: Option<SpsInfo>,
    /// The last SPS that failed to parse (see the H.264 twin).
    rejected_sps: Vec<u8>,
    params: Option<VideoParams>,
    /// `params` changed since the last emitted frame.
    changed: bool,
}

fn replace(dst: &mut Vec<u8>, src: &[u8]) -> bool {
    if dst.as_slice() == src {
        return false;
    }
    dst.clear();
    dst.extend_from_slice(src);
    true
}

impl NalCodec for H265Codec {
    const HEADER_LEN: usize = 2;

    fn nal_type(nal: &[u8]) -> Option<u8> {
        if nal.len() < 2 {
            return None;
        }
        nal.first().map(|b| (b >> 1) & 0x3f)
    }

    fn classify(nal_type: u8) -> NalClass {
        match nal_type {
            // IRAP pictures (BLA, IDR, CRA and the reserved IRAP types).
            16..=23 => NalClass::Slice { key: true },
            0..=31 => NalClass::Slice { key: false },
            NAL_VPS..=NAL_PPS => NalClass::ParamSet,
            NAL_AUD => NalClass::Aud,
            _ => NalClass::Other,
        }
    }

    fn parse_payload<'a>(&self, payload: &'a [u8]) -> Result<Payload<'a>, DepacketizeError> {
        let [h0, h1, rest @ ..] = payload else {
            return Err(DepacketizeError::Malformed(
                "payload shorter than the payload header",
            ));
        };
        if h0 & 0x80 != 0 {
            return Err(DepacketizeError::Malformed("forbidden_zero_bit set"));
        }
        match (h0 >> 1) & 0x3f {
            // Includes type 0 read from an Annex B start code (quirk,
            // split later by the start code splitter).
            0..=47 => Ok(Payload::Single(payload)),
            AP => Ok(Payload::Aggregate {
                body: rest,
                first_don: if self.don { 2 } else { 0 },
                next_don: if self.don { 1 } else { 0 },
            }),
            FU => {
                let Some((&fu, data)) = rest.split_first() else {
                    return Err(DepacketizeError::Malformed("FU without FU header"));
                };
                let start = fu & 0x80 != 0;
                let data = if start && self.don {
                    data.get(2..)
                        .ok_or(DepacketizeError::Malformed("FU without DONL"))?
                } else {
                    data
                };
                let nal_type = fu & 0x3f;
                Ok(Payload::Fragment {
                    start,
                    end: fu & 0x40 != 0,
                    header: [(h0 & 0x81) | (nal_type << 1), *h1],
                    nal_type,
                    data,
                })
            }
            PACI => Err(DepacketizeError::Malformed("PACI packets unsupported")),
            _ => Err(DepacketizeError::Malformed("reserved payload type")),
        }
    }

    fn param_set(&mut self, nal: &[u8]) -> Result<(), DepacketizeError> {
        // Quirk: trailing zero bytes (padding) after a parameter set.
        let nal = trim_trailing_zeros(nal);
        if nal.len() > MAX_PARAM_SET_BYTES {
            return Err(DepacketizeError::Malformed("parameter set too large"));
        }
        if nal.len() < 3 {
            return Err(DepacketizeError::BadParameters(
                "H.265 parameter set: empty".into(),
            ));
        }
        let changed = match Self::nal_type(nal) {
            Some(NAL_VPS) => replace(&mut self.vps, nal),
            Some(NAL_SPS) => {
                if nal == self.sps.as_slice() || nal == self.rejected_sps.as_slice() {
                    return Ok(());
                }
                match parse_sps(nal) {
                    Ok(info) => {
                        replace(&mut self.sps, nal);
                        self.sps_info = Some(info);
                        true
                    }
                    Err(why) => {
                        replace(&mut self.rejected_sps, nal);
                        return Err(DepacketizeError::BadParameters(format!("H.265 SPS: {why}")));
                    }
                }
            }
            Some(NAL_PPS) => replace(&mut self.pps, nal),
            _ => false,
        };
        if changed {
            self.rebuild();
        }
        Ok(())
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
        _thorough: bool,
    ) -> Result<(), &'static str> {
        let [h0, h1, body @ ..] = nal else {
            return Err("slice shorter than its header");
        };
        if h0 & 0x80 != 0 {
            return Err("slice with the forbidden bit set");
        }
        if h1 & 0x07 == 0 {
            return Err("nuh_temporal_id_plus1 of 0");
        }
        let nal_type = (h0 >> 1) & 0x3f;
        if matches!(nal_type, 10..=15 | 22..=31) {
            return Err("reserved slice NAL unit type");
        }
        let mut r = BitReader::new(body);
        let first_in_picture = r.flag()?;
        if (16..=23).contains(&nal_type) {
            r.skip(1)?; // no_output_of_prior_pics_flag
        }
        r.ue_max(63, "slice_pic_parameter_set_id out of range")?;
        if starts_picture && !first_in_picture {
            return Err("picture not starting with its first slice segment");
        }
        Ok(())
    }
}

impl H265Codec {
    /// Rebuilds the parameters after a parameter set changed (only then:
    /// this allocates).
    fn rebuild(&mut self) {
        let Some(info) = &self.sps_info else {
            return;
        };
        if self.vps.is_empty() || self.pps.is_empty() {
            return;
        }
        let new = VideoParams {
            codec: Codec::H265,
            width: info.width,
            height: info.height,
            fps_milli: info.fps_milli,
            rfc6381_codec: codec_string(&info.ptl),
            decoder_config: hvcc(&self.vps, &self.sps, &self.pps, info),
        };
        if self.params.as_ref() != Some(&new) {
            self.params = Some(new);
            self.changed = true;
        }
    }
}

/// The RFC 6381 / ISO 14496-15 Annex E string, e.g. `hvc1.1.6.L93.B0`.
fn codec_string(ptl: &[u8; 12]) -> String {
    use std::fmt::Write;
    let [p, c0, c1, c2, c3, k0, k1, k2, k3, k4, k5, level] = *ptl;
    let space = ["", "A", "B", "C"][usize::from(p >> 6)];
    let tier = if p & 0x20 != 0 { 'H' } else { 'L' };
    // The compatibility flags are written with flag 0 in the lowest bit.
    let compat = u32::from_be_bytes([c0, c1, c2, c3]).reverse_bits();
    let mut s = format!("hvc1.{space}{}.{compat:X}.{tier}{level}", p & 0x1f);
    let constraints = [k0, k1, k2, k3, k4, k5];
    // Trailing zero bytes of the constraint flags are omitted.
    let n = constraints
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |i| i + 1);
    for b in constraints.iter().take(n) {
        let _ = write!(s, ".{b:X}");
    }
    s
}

/// Builds the HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 8.3.3.1).
fn hvcc(vps: &[u8], sps: &[u8], pps: &[u8], info: &SpsInfo) -> Vec<u8> {
    let mut v = Vec::with_capacity(23 + 3 * 5 + vps.len() + sps.len() + pps.len());
    v.push(1); // configurationVersion
    v.extend_from_slice(&info.ptl); // profile, compatibility, constraints, level
    v.extend_from_slice(&[0xf0, 0x00]); // reserved + min_spatial_segmentation_idc 0
    v.push(0xfc); // reserved + parallelismType 0 (unknown)
    v.push(0xfc | (info.chroma_format_idc & 3));
    v.push(0xf8 | (info.bit_depth_luma_minus8 & 7));
    v.push(0xf8 | (info.bit_depth_chroma_minus8 & 7));
    v.extend_from_slice(&[0, 0]); // avgFrameRate: unspecified
    v.push(
        ((info.max_sub_layers_minus1 + 1) & 7) << 3 // numTemporalLayers
            | u8::from(info.temporal_id_nesting) << 2
            | 3, // lengthSizeMinusOne: 4-byte lengths
    );
    v.push(3); // numOfArrays
    for (nal_type, nal) in [(NAL_VPS, vps), (NAL_SPS, sps), (NAL_PPS, pps)] {
        v.push(0x80 | nal_type); // array_completeness + NAL_unit_type
        v.extend_from_slice(&1u16.to_be_bytes());
        // Lengths fit: param sets are capped at MAX_PARAM_SET_BYTES.
        v.extend_from_slice(&(nal.len() as u16).to_be_bytes());
        v.extend_from_slice(nal);
    }
    v
}

/// Parses what Vigil needs from an SPS NAL unit (header included).
fn parse_sps(nal: &[u8]) -> Result<SpsInfo, BitsError> {
    let mut r = BitReader::new(nal.get(2..).ok_or("truncated")?);
    r.skip(4)?; // sps_video_parameter_set_id
    let max_sub_layers_minus1 = r.bits(3)?;
    if max_sub_layers_minus1 > 6 {
        return Err("sps_max_sub_layers_minus1 over 6");
    }
    let temporal_id_nesting = r.flag()?;
    let mut ptl = [0u8; 12];
    r.bytes(&mut ptl)?;
    skip_sub_layer_ptl(&mut r, max_sub_layers_minus1)?;
    r.ue_max(15, "sps_seq_parameter_set_id over 15")?;
    let chroma_format_idc = r.ue_max(3, "chroma_format_idc over 3")?;
    let separate_colour_plane = chroma_format_idc == 3 && r.flag()?;
    let pic_width = r.ue()?;
    let pic_height = r.ue()?;
    let (sub_w, sub_h) = match (chroma_format_idc, separate_colour_plane) {
        (1, _) => (2, 2),
        (2, _) => (2, 1),
        _ => (1, 1),
    };
    let (mut width, mut height) = (u64::from(pic_width), u64::from(pic_height));
    if r.flag()? {
        // conformance_window_flag: crop, in chroma sample units.
        let left = u64::from(r.ue()?);
        let right = u64::from(r.ue()?);
        let top = u64::from(r.ue()?);
        let bottom = u64::from(r.ue()?);
        width = width
            .checked_sub(sub_w * (left + right))
            .ok_or("conformance window wider than the picture")?;
        height = height
            .checked_sub(sub_h * (top + bottom))
            .ok_or("conformance window taller than the picture")?;
    }
    let width = u16::try_from(width).map_err(|_| "picture too wide")?;
    let height = u16::try_from(height).map_err(|_| "picture too tall")?;
    if width == 0 || height == 0 {
        return Err("zero picture size");
    }
    let bit_depth_luma_minus8 = r.ue_max(8, "bit_depth_luma_minus8 over 8")?;
    let bit_depth_chroma_minus8 = r.ue_max(8, "bit_depth_chroma_minus8 over 8")?;
    // The frame rate sits far down in the VUI; an SPS we cannot follow that
    // far (extensions, trailing junk, a misparse) still gives a usable size.
    let fps_milli = parse_sps_tail(&mut r, max_sub_layers_minus1).unwrap_or(None);
    Ok(SpsInfo {
        width,
        height,
        fps_milli,
        ptl,
        chroma_format_idc: chroma_format_idc as u8,
        bit_depth_luma_minus8: bit_depth_luma_minus8 as u8,
        bit_depth_chroma_minus8: bit_depth_chroma_minus8 as u8,
        max_sub_layers_minus1: max_sub_layers_minus1 as u8,
        temporal_id_nesting,
    })
}

/// The sub-layer part of profile_tier_level(1, max_sub_layers_minus1).
fn skip_sub_layer_ptl(r: &mut BitReader<'_>, max_sub_layers_minus1: u32) -> Result<(), BitsError> {
    let n = max_sub_layers_minus1 as usize;
    let mut present = [(false, false); 7];
    for p in present.iter_mut().take(n) {
        *p = (r.flag()?, r.flag()?);
    }
    if n > 0 {
        r.skip(2 * (8 - n as u32))?; // reserved_zero_2bits
    }
    for &(profile, level) in present.iter().take(n) {
        if profile {
            r.skip(88)?;
        }
        if level {
            r.skip(8)?;
        }
    }
    Ok(())
}

/// From log2_max_pic_order_cnt_lsb_minus4 to the VUI timing info.
fn parse_sps_tail(
    r: &mut BitReader<'_>,
    max_sub_layers_minus1: u32,
) -> Result<Option<u32>, BitsError> {
    let log2_max_poc_lsb = r.ue_max(12, "log2_max_pic_order_cnt_lsb_minus4 over 12")? + 4;
    let ordering_info_present = r.flag()?;
    let first = if ordering_info_present {
        0
    } else {
        max_sub_layers_minus1
    };
    for _ in first..=max_sub_layers_minus1 {
        r.ue()?; // sps_max_dec_pic_buffering_minus1
        r.ue()?; // sps_max_num_reorder_pics
        r.ue()?; // sps_max_latency_increase_plus1
    }
    for _ in 0..6 {
        // log2 coding/transform block sizes, transform hierarchy depths
        r.ue()?;
    }
    if r.flag()? && r.flag()? {
        // scaling_list_enabled_flag && sps_scaling_list_data_present_flag
        skip_scaling_list_data(r)?;
    }
    r.skip(2)?; // amp_enabled_flag, sample_adaptive_offset_enabled_flag
    if r.flag()? {
        // pcm_enabled_flag
        r.skip(8)?;
        r.ue()?;
        r.ue()?;
        r.skip(1)?;
    }
    let num_sets = r.ue_max(64, "num_short_term_ref_pic_sets over 64")? as usize;
    let mut num_delta_pocs = [0u32; 64];
    for idx in 0..num_sets {
        let n = st_ref_pic_set(r, idx, &num_delta_pocs)?;
        if let Some(slot) = num_delta_pocs.get_mut(idx) {
            *slot = n;
        }
    }
    if r.flag()? {
        // long_term_ref_pics_present_flag
        let n = r.ue_max(32, "num_long_term_ref_pics_sps over 32")?;
        for _ in 0..n {
            r.skip(log2_max_poc_lsb + 1)?;
        }
    }
    r.skip(2)?; // sps_temporal_mvp_enabled_flag, strong_intra_smoothing_enabled_flag
    if !r.flag()? {
        return Ok(None); // no VUI
    }
    if r.flag()? {
        // aspect_ratio_info_present_flag
        if r.bits(8)? == 255 {
            r.skip(32)?; // sar_width, sar_height
        }
    }
    if r.flag()? {
        r.skip(1)?; // overscan_appropriate_flag
    }
    if r.flag()? {
        // video_signal_type_present_flag
        r.skip(4)?;
        if r.flag()? {
            r.skip(24)?; // colour description
        }
    }
    if r.flag()? {
        r.ue()?; // chroma_sample_loc_type_top_field
        r.ue()?;
    }
    r.skip(3)?; // neutral_chroma_indication, field_seq, frame_field_info_present
    if r.flag()? {
        for _ in 0..4 {
            r.ue()?; // default display window
        }
    }
    if !r.flag()? {
        return Ok(None); // no timing info
    }
    let num_units_in_tick = r.bits(32)?;
    let time_scale = r.bits(32)?;
    Ok(fps_milli(time_scale, u64::from(num_units_in_tick)))
}

fn skip_scaling_list_data(r: &mut BitReader<'_>) -> Result<(), BitsError> {
    for size_id in 0..4u32 {
        let matrices = if size_id == 3 { 2 } else { 6 };
        for _ in 0..matrices {
            if !r.flag()? {
                r.ue()?; // scaling_list_pred_matrix_id_delta
            } else {
                let coefs = 64.min(1u32 << (4 + (size_id << 1)));
                if size_id > 1 {
                    r.se()?; // scaling_list_dc_coef_minus8
                }
                for _ in 0..coefs {
                    r.se()?;
                }
            }
        }
    }
    Ok(())
}

/// st_ref_pic_set(idx) as found in an SPS; returns NumDeltaPocs[idx].
fn st_ref_pic_set(
    r: &mut BitReader<'_>,
    idx: usize,
    num_delta_pocs: &[u32; 64],
) -> Result<u32, BitsError> {
    let inter = idx != 0 && r.flag()?;
    if inter {
        // In an SPS the reference set is always the previous one.
        r.skip(1)?; // delta_rps_sign
        r.ue()?; // abs_delta_rps_minus1
        let reference = idx
            .checked_sub(1)
            .and_then(|i| num_delta_pocs.get(i))
            .copied()
            .unwrap_or(0);
        let mut n = 0;
        for _ in 0..=reference {
            let used = r.flag()?;
            if used || r.flag()? {
                n += 1;
            }
        }
        if n > 32 {
            return Err("short-term reference picture set too large");
        }
        Ok(n)
    } else {
        let negative = r.ue_max(16, "num_negative_pics over 16")?;
        let positive = r.ue_max(16, "num_positive_pics over 16")?;
        for _ in 0..negative + positive {
            r.ue()?; // delta_poc_minus1
            r.skip(1)?; // used_by_curr_pic_flag
        }
        Ok(negative + positive)
    }
}

#[cfg(test)]
mod tests;
