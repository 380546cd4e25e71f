//! SDP (RFC 8866) as cameras write it: parsed tolerantly, bounded in size.
// STUB: replaced by the sdp brief.

use crate::media::Codec;
use std::fmt;

pub const MAX_SDP_BYTES: usize = 64 * 1024;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sdp {
    /// Session-level `a=control`.
    pub session_control: Option<String>,
    pub media: Vec<MediaDesc>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaDesc {
    /// `video`, `audio`, `application`, ...
    pub kind: String,
    /// Media-level `a=control`.
    pub control: Option<String>,
    pub formats: Vec<RtpFormat>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtpFormat {
    pub payload_type: u8,
    pub encoding_name: String,
    pub clock_rate: u32,
    /// The `a=fmtp:<pt>` value without the payload type.
    pub fmtp: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SdpError(pub String);

impl fmt::Display for SdpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad SDP: {}", self.0)
    }
}

impl std::error::Error for SdpError {}

/// The video track Vigil will record from a description.
#[derive(Clone, Copy, Debug)]
pub struct VideoTrack<'a> {
    pub media: &'a MediaDesc,
    pub format: &'a RtpFormat,
    pub codec: Codec,
}

pub fn parse(_text: &[u8]) -> Result<Sdp, SdpError> {
    Err(SdpError("not implemented".into()))
}

impl Sdp {
    /// The first video media with a format Vigil can depacketize.
    pub fn first_video(&self) -> Option<VideoTrack<'_>> {
        None
    }
}
