//! RTP (RFC 3550) packets: parsing, sequence tracking, a small reorder
//! window for UDP, and timestamp unwrapping to a 64-bit 90 kHz clock.

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

impl<'a> RtpPacket<'a> {
    /// Parses a packet: version 2, CSRC list, header extension (skipped)
    /// and padding (removed) are handled.
    pub fn parse(buf: &'a [u8]) -> Result<Self, RtpError> {
        todo_parse(buf)
    }
}

// Placeholder until the full parser lands (see the rtp module brief).
fn todo_parse(buf: &[u8]) -> Result<RtpPacket<'_>, RtpError> {
    if buf.len() < 12 {
        return Err(RtpError("shorter than the 12-byte header"));
    }
    Ok(RtpPacket {
        sequence: u16::from_be_bytes([buf[2], buf[3]]),
        timestamp: u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]),
        ssrc: u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]),
        marker: buf[1] & 0x80 != 0,
        payload_type: buf[1] & 0x7f,
        payload: &buf[12..],
    })
}

// TEMPORARY stubs with the contracted signatures, replaced by the parsers branch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeqResult {
    Next { lost: u16 },
    Stale,
}
#[derive(Default)]
pub struct SequenceTracker {
    last: Option<u16>,
}
impl SequenceTracker {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn observe(&mut self, seq: u16) -> SeqResult {
        let lost = self.last.map_or(0, |l| seq.wrapping_sub(l).wrapping_sub(1));
        self.last = Some(seq);
        SeqResult::Next {
            lost: if lost > 0x8000 { 0 } else { lost },
        }
    }
}
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unwrapped {
    pub ts_90k: i64,
    pub jumped: bool,
}
pub struct TimestampUnwrapper {
    last: Option<(u32, i64)>,
}
impl TimestampUnwrapper {
    pub fn new(_clock_rate: u32) -> Self {
        TimestampUnwrapper { last: None }
    }
    pub fn unwrap(&mut self, ts: u32) -> Unwrapped {
        let v = match self.last {
            None => i64::from(ts),
            Some((l, lv)) => lv + i64::from(ts.wrapping_sub(l) as i32),
        };
        self.last = Some((ts, v));
        Unwrapped {
            ts_90k: v,
            jumped: false,
        }
    }
}
pub struct ReorderBuffer {
    buf: Vec<u8>,
    full: bool,
}
impl ReorderBuffer {
    pub fn new(_slots: usize, slot_bytes: usize) -> Self {
        ReorderBuffer {
            buf: Vec::with_capacity(slot_bytes),
            full: false,
        }
    }
    pub fn push(&mut self, pkt: &[u8]) -> Result<(), RtpError> {
        self.buf.clear();
        self.buf.extend_from_slice(pkt);
        self.full = true;
        Ok(())
    }
    pub fn pop(&mut self) -> Option<(&[u8], u16)> {
        if std::mem::take(&mut self.full) {
            Some((&self.buf, 0))
        } else {
            None
        }
    }
}
