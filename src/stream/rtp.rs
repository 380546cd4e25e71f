//! RTP (RFC 3550) packets as every layer sees them: the parsed packet,
//! borrowing the bytes it came in, and why bytes are not one. The RTSP
//! client parses them off the wire; the depacketizers take them.
//!
//! The bytes come straight from the network: nothing panics on malformed
//! input, and parsing does not allocate.

use std::fmt;

/// One parsed RTP packet, borrowing the bytes it was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub marker: bool,
    pub payload_type: u8,
    /// The payload with CSRCs, header extension and padding removed.
    pub payload: &'a [u8],
}

/// Why bytes are not a usable RTP packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtpError(pub &'static str);

impl fmt::Display for RtpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad RTP packet: {}", self.0)
    }
}

impl std::error::Error for RtpError {}

/// The fixed part of the RTP header.
pub const FIXED_HEADER: usize = 12;

fn be16(buf: &[u8], at: usize) -> Option<u16> {
    let b = buf.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

fn be32(buf: &[u8], at: usize) -> Option<u32> {
    let b = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

impl<'a> RtpPacket<'a> {
    /// Parses a packet: version 2, CSRC list, header extension (skipped)
    /// and padding (removed) are handled.
    pub fn parse(buf: &'a [u8]) -> Result<Self, RtpError> {
        let (&b0, &b1) = match (buf.first(), buf.get(1)) {
            (Some(b0), Some(b1)) if buf.len() >= FIXED_HEADER => (b0, b1),
            _ => return Err(RtpError("shorter than the 12-byte header")),
        };
        if b0 >> 6 != 2 {
            return Err(RtpError("not RTP version 2"));
        }
        let has_padding = b0 & 0x20 != 0;
        let has_extension = b0 & 0x10 != 0;
        let csrc_count = usize::from(b0 & 0x0f);

        let mut header_len = FIXED_HEADER + 4 * csrc_count;
        if header_len > buf.len() {
            return Err(RtpError("CSRC list past the end of the packet"));
        }
        if has_extension {
            // RFC 3550 §5.3.1: 16-bit profile id, 16-bit length in 32-bit
            // words not counting this 4-byte header.
            let words = be16(buf, header_len + 2)
                .ok_or(RtpError("header extension past the end of the packet"))?;
            header_len += 4 + 4 * usize::from(words);
            if header_len > buf.len() {
                return Err(RtpError("header extension past the end of the packet"));
            }
        }
        let mut end = buf.len();
        if has_padding {
            // The last byte counts the padding bytes, itself included.
            let pad = usize::from(*buf.last().unwrap_or(&0));
            if pad == 0 || pad > end - header_len {
                return Err(RtpError("bad padding length"));
            }
            end -= pad;
        }
        let payload = buf
            .get(header_len..end)
            .ok_or(RtpError("header longer than the packet"))?;
        Ok(RtpPacket {
            sequence: be16(buf, 2).unwrap_or(0),
            timestamp: be32(buf, 4).unwrap_or(0),
            ssrc: be32(buf, 8).unwrap_or(0),
            marker: b1 & 0x80 != 0,
            payload_type: b1 & 0x7f,
            payload,
        })
    }
}
