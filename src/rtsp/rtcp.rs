//! RTCP (RFC 3550 §6): sender reports, for mapping RTP time to wall clock.
// STUB: replaced by the rtcp brief.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SenderReport {
    pub ssrc: u32,
    /// 64-bit NTP timestamp (seconds since 1900 in the high 32 bits).
    pub ntp_timestamp: u64,
    pub rtp_timestamp: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtcpError(pub &'static str);

impl fmt::Display for RtcpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad RTCP packet: {}", self.0)
    }
}

impl std::error::Error for RtcpError {}

/// The first sender report of a compound RTCP packet, if any.
pub fn sender_report(_compound: &[u8]) -> Result<Option<SenderReport>, RtcpError> {
    Ok(None)
}
