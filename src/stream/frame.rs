//! A frame as every layer sees it: the codec, the parameters a decoder
//! needs, and one whole access unit borrowing its depacketizer's buffer.
//! The depacketizers (`media`) make them; the sinks (`arena`, `store`)
//! and the live views (`serve`) take them.
//!
//! Sample format, chosen so the storage and the .mp4 muxer need no rewrite:
//! - H.264 / H.265: AVC/HVC style, every NAL unit prefixed by its length as
//!   a 4-byte big-endian integer. Parameter sets (SPS/PPS/VPS) and access
//!   unit delimiters are *not* part of the sample; they live in
//!   [`VideoParams`] (as an avcC / hvcC record) and a change of them is
//!   flagged on the first frame that uses the new ones.
//! - JPEG: one complete JFIF image per frame.

use std::fmt;

/// Video codecs Vigil records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    H264,
    H265,
    Jpeg,
}

impl Codec {
    /// The lowercase name used in the API and logs.
    pub fn name(self) -> &'static str {
        match self {
            Codec::H264 => "h264",
            Codec::H265 => "h265",
            Codec::Jpeg => "jpeg",
        }
    }

    /// The codec of an SDP `rtpmap` encoding name (case-insensitive), or the
    /// static payload type 26 for JPEG.
    pub fn from_encoding_name(name: &str) -> Option<Codec> {
        if name.eq_ignore_ascii_case("H264") {
            Some(Codec::H264)
        } else if name.eq_ignore_ascii_case("H265") || name.eq_ignore_ascii_case("HEVC") {
            Some(Codec::H265)
        } else if name.eq_ignore_ascii_case("JPEG") {
            Some(Codec::Jpeg)
        } else {
            None
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a decoder needs to know about a video stream, as it stands now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VideoParams {
    pub codec: Codec,
    pub width: u16,
    pub height: u16,
    /// Frame rate in thousandths of a frame per second, when the bitstream
    /// says (H.264/H.265 VUI timing); `None` otherwise.
    pub fps_milli: Option<u32>,
    /// RFC 6381 codec string, e.g. `avc1.4d401e`, `hvc1.1.6.L93.B0`, `jpeg`.
    pub rfc6381_codec: String,
    /// The decoder configuration record: AVCDecoderConfigurationRecord
    /// (avcC) for H.264, HEVCDecoderConfigurationRecord (hvcC) for H.265,
    /// empty for JPEG.
    pub decoder_config: Vec<u8>,
}

/// One whole access unit, borrowed from the depacketizer until the
/// callback returns.
#[derive(Debug)]
pub struct Frame<'a> {
    /// Presentation time on the stream's unwrapped 90 kHz clock.
    pub timestamp_90k: i64,
    /// True for an IDR / IRAP picture (and for every JPEG).
    pub key: bool,
    /// The sample bytes, in the format described in the module doc.
    pub data: &'a [u8],
    /// The parameters this frame is decoded with.
    pub params: &'a VideoParams,
    /// True on the first frame after the parameters changed (or were first
    /// known): the recording must start a new sample entry here.
    pub params_changed: bool,
    /// True when packets were lost inside or just before this frame, so a
    /// decoder may show artefacts until the next key frame.
    pub after_loss: bool,
}
