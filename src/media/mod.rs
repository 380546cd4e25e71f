//! Media: turning RTP payloads into whole access units ("frames").
//!
//! A [`Depacketizer`] is fed RTP packets in sequence order and hands each
//! finished access unit to a callback as a [`Frame`] that borrows the
//! depacketizer's own buffer, so steady-state operation allocates nothing.
//!
//! Sample format, chosen so the storage and the .mp4 muxer need no rewrite:
//! - H.264 / H.265: AVC/HVC style, every NAL unit prefixed by its length as
//!   a 4-byte big-endian integer. Parameter sets (SPS/PPS/VPS) and access
//!   unit delimiters are *not* part of the sample; they live in
//!   [`VideoParams`] (as an avcC / hvcC record) and a change of them is
//!   flagged on the first frame that uses the new ones.
//! - JPEG: one complete JFIF image per frame.

mod bits;
pub mod h264;
pub mod h265;
pub mod jpeg;
mod nal;
#[cfg(test)]
mod testutil;

use crate::stream::rtp::RtpPacket;
use crate::stream::{Codec, Frame, VideoParams};
use std::fmt;

/// Why a packet or frame was dropped. These are counted and logged, never
/// fatal to the stream: the stream goes on with the next packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DepacketizeError {
    /// The payload does not follow the payload format (RFC 6184 / 7798 / 2435).
    Malformed(&'static str),
    /// The frame would exceed the configured maximum size; it is dropped.
    FrameTooLarge { limit: u32 },
    /// Data before any usable parameter set; dropped until one arrives.
    NoParameters,
    /// Parameter sets present but unusable (unparseable SPS etc.).
    BadParameters(String),
    /// A slice header no encoder writes, or one that contradicts the
    /// stream's parameters: the unit is dropped, and the units after it
    /// until a key frame.
    BadSlice(&'static str),
}

impl fmt::Display for DepacketizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DepacketizeError::Malformed(why) => write!(f, "malformed payload: {why}"),
            DepacketizeError::FrameTooLarge { limit } => {
                write!(f, "frame larger than the {limit}-byte limit")
            }
            DepacketizeError::NoParameters => f.write_str("no parameter sets yet"),
            DepacketizeError::BadParameters(why) => write!(f, "bad parameter sets: {why}"),
            DepacketizeError::BadSlice(why) => write!(f, "not video: {why}"),
        }
    }
}

impl std::error::Error for DepacketizeError {}

/// What every codec's depacketizer does: turn RTP packets of one video
/// track into whole access units. [`Depacketizer`] picks the codec's.
pub(crate) trait Depacketize {
    /// Feeds one packet, in sequence order. `timestamp_90k` is the packet's
    /// RTP timestamp already unwrapped to 64 bits on the 90 kHz clock.
    /// `loss_before` is true when one or more packets were lost just before
    /// this one. If the packet completes an access unit (marker bit, or a
    /// timestamp change), `emit` is called with it before this returns;
    /// `emit` may be called at most once per `push`: when one packet both
    /// ends the unit in progress (new timestamp, no marker seen) and
    /// completes the next one (marker bit), that second unit is emitted at
    /// the start of the following `push`.
    ///
    /// An error means the packet (and possibly the access unit it belongs
    /// to) was dropped; the depacketizer stays usable.
    fn push(
        &mut self,
        pkt: &RtpPacket<'_>,
        timestamp_90k: i64,
        loss_before: bool,
        emit: &mut dyn FnMut(Frame<'_>),
    ) -> Result<(), DepacketizeError>;

    /// The current parameters, once known.
    fn params(&self) -> Option<&VideoParams>;
}

/// Makes room in a depacketizer's frame buffer for `extra` more bytes
/// without letting it pass `max`; false if the frame would be too large.
/// Grows geometrically (few reallocations while warming up), never past
/// the limit, so steady state allocates nothing.
pub(crate) fn reserve_bounded(buf: &mut Vec<u8>, extra: usize, max: usize) -> bool {
    let Some(need) = buf.len().checked_add(extra) else {
        return false;
    };
    if need > max {
        return false;
    }
    if need > buf.capacity() {
        let target = need.max(buf.capacity().saturating_mul(2)).min(max);
        buf.reserve_exact(target - buf.len());
    }
    true
}

/// The depacketizer of one track, for its codec: an enum, so the
/// per-packet call is a match the compiler can inline, not a virtual call.
pub enum Depacketizer {
    H264(h264::H264Depacketizer),
    H265(h265::H265Depacketizer),
    Jpeg(jpeg::JpegDepacketizer),
}

impl Depacketizer {
    /// The depacketizer for a track.
    ///
    /// `fmtp` is the SDP `a=fmtp` value for the payload type (without the
    /// payload type number), used for `sprop-parameter-sets` /
    /// `sprop-vps/sps/pps`; `max_frame_bytes` bounds one access unit.
    pub fn new(codec: Codec, fmtp: Option<&str>, max_frame_bytes: u32) -> Self {
        match codec {
            Codec::H264 => Depacketizer::H264(h264::H264Depacketizer::new(fmtp, max_frame_bytes)),
            Codec::H265 => Depacketizer::H265(h265::H265Depacketizer::new(fmtp, max_frame_bytes)),
            Codec::Jpeg => Depacketizer::Jpeg(jpeg::JpegDepacketizer::new(max_frame_bytes)),
        }
    }

    /// Feeds one packet, in sequence order; at most one frame is emitted
    /// per call (the depacketizers' shared contract, `Depacketize::push`).
    pub fn push(
        &mut self,
        pkt: &RtpPacket<'_>,
        timestamp_90k: i64,
        loss_before: bool,
        emit: &mut dyn FnMut(Frame<'_>),
    ) -> Result<(), DepacketizeError> {
        match self {
            Depacketizer::H264(d) => d.push(pkt, timestamp_90k, loss_before, emit),
            Depacketizer::H265(d) => d.push(pkt, timestamp_90k, loss_before, emit),
            Depacketizer::Jpeg(d) => d.push(pkt, timestamp_90k, loss_before, emit),
        }
    }

    /// The current parameters, once known.
    pub fn params(&self) -> Option<&VideoParams> {
        match self {
            Depacketizer::H264(d) => d.params(),
            Depacketizer::H265(d) => d.params(),
            Depacketizer::Jpeg(d) => d.params(),
        }
    }
}
