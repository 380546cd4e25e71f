//! H265 depacketizer.
// STUB: replaced by the media brief.

use super::{DepacketizeError, Depacketizer, Frame, VideoParams};
use crate::rtsp::rtp::RtpPacket;

pub struct H265Depacketizer {
    _max_frame_bytes: u32,
}

impl H265Depacketizer {
    pub fn new(_fmtp: Option<&str>, max_frame_bytes: u32) -> Self {
        H265Depacketizer {
            _max_frame_bytes: max_frame_bytes,
        }
    }
}

impl Depacketizer for H265Depacketizer {
    fn push(
        &mut self,
        _pkt: &RtpPacket<'_>,
        _timestamp_90k: i64,
        _loss_before: bool,
        _emit: &mut dyn FnMut(Frame<'_>),
    ) -> Result<(), DepacketizeError> {
        Err(DepacketizeError::Malformed("not implemented"))
    }

    fn params(&self) -> Option<&VideoParams> {
        None
    }
}
