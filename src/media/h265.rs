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
mod tests {
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
}
