//! RTCP (RFC 3550 §6): sender reports, for mapping RTP time to wall clock.
//!
//! Only what the recorder needs: find the sender report in a compound
//! packet. Every length is checked against the buffer; nothing allocates.

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

/// Packet type of a sender report.
const PT_SR: u8 = 200;
/// Packet type of a goodbye (RFC 3550 §6.6).
const PT_BYE: u8 = 203;
/// Common header (4) + SSRC (4) + sender info (20).
const SR_MIN_LEN: usize = 28;

fn be32(buf: &[u8], at: usize) -> Option<u32> {
    let b = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// The packets of a compound RTCP packet, each checked against the
/// buffer: (packet type, count field, the whole packet). A packet that is
/// not version 2 or runs past the end is an error, and ends the walk.
fn packets(compound: &[u8]) -> impl Iterator<Item = Result<(u8, u8, &[u8]), RtcpError>> {
    let mut rest = Some(compound);
    std::iter::from_fn(move || {
        let buf = rest.take().filter(|b| !b.is_empty())?;
        let Some(header) = buf.get(..4) else {
            return Some(Err(RtcpError("truncated header in compound packet")));
        };
        if header[0] >> 6 != 2 {
            return Some(Err(RtcpError("not RTCP version 2")));
        }
        let words = usize::from(u16::from_be_bytes([header[2], header[3]]));
        let Some(packet) = buf.get(..(words + 1) * 4) else {
            return Some(Err(RtcpError("length field past the end of the packet")));
        };
        rest = Some(&buf[packet.len()..]);
        Some(Ok((header[1], header[0] & 0x1f, packet)))
    })
}

/// The first sender report of a compound RTCP packet, if any.
///
/// The packets before it are walked by their length fields (32-bit words
/// minus one); a packet that is not version 2 or that runs past the end of
/// the buffer is an error. Packets after the first SR are not examined.
pub fn sender_report(compound: &[u8]) -> Result<Option<SenderReport>, RtcpError> {
    if compound.len() < 4 {
        return Err(RtcpError("shorter than an RTCP header"));
    }
    for p in packets(compound) {
        let (packet_type, _, packet) = p?;
        if packet_type == PT_SR {
            if packet.len() < SR_MIN_LEN {
                return Err(RtcpError("sender report too short"));
            }
            let field = |at| be32(packet, at).ok_or(RtcpError("sender report too short"));
            let ntp_hi = field(8)?;
            let ntp_lo = field(12)?;
            return Ok(Some(SenderReport {
                ssrc: field(4)?,
                ntp_timestamp: (u64::from(ntp_hi) << 32) | u64::from(ntp_lo),
                rtp_timestamp: field(16)?,
            }));
        }
    }
    Ok(None)
}

/// Whether a compound RTCP packet holds a BYE for `ssrc` (for any source
/// when `ssrc` is `None`: the media's SSRC is not known yet). A camera
/// sends BYE when its stream ends (GStreamer on end of stream), often
/// keeping the connection open; the session must end at once, not after
/// the no-data timeout. Malformed packets are no BYE.
pub fn is_bye(compound: &[u8], ssrc: Option<u32>) -> bool {
    packets(compound)
        .map_while(Result::ok)
        .any(|(packet_type, sources, packet)| {
            packet_type == PT_BYE
                && ssrc.is_none_or(|want| {
                    (0..usize::from(sources)).any(|k| be32(packet, 4 + 4 * k) == Some(want))
                })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bye(ssrcs: &[u32]) -> Vec<u8> {
        let mut b = vec![0x80 | ssrcs.len() as u8, PT_BYE, 0, ssrcs.len() as u8];
        for s in ssrcs {
            b.extend_from_slice(&s.to_be_bytes());
        }
        b
    }

    #[test]
    fn bye_for_our_source_after_a_receiver_report() {
        let mut c = rr();
        c.extend(bye(&[7, 0x1234_5678]));
        assert!(is_bye(&c, Some(0x1234_5678)));
        assert!(is_bye(&c, None));
        assert!(!is_bye(&c, Some(9)));
        assert!(!is_bye(&sr(), None));
    }

    #[test]
    fn truncated_or_foreign_bye_is_no_bye() {
        let b = bye(&[5]);
        assert!(!is_bye(&b[..6], Some(5)));
        let mut bad = b.clone();
        bad[0] = 0x41; // version 1
        assert!(!is_bye(&bad, Some(5)));
        assert!(!is_bye(&[], None));
    }

    fn sr() -> Vec<u8> {
        let mut p = vec![0x80, 200, 0, 6];
        p.extend_from_slice(&0x1122_3344u32.to_be_bytes()); // SSRC
        p.extend_from_slice(&0xe000_0001u32.to_be_bytes()); // NTP seconds
        p.extend_from_slice(&0x8000_0000u32.to_be_bytes()); // NTP fraction
        p.extend_from_slice(&123_456u32.to_be_bytes()); // RTP timestamp
        p.extend_from_slice(&10u32.to_be_bytes()); // packet count
        p.extend_from_slice(&1000u32.to_be_bytes()); // octet count
        p
    }

    fn rr() -> Vec<u8> {
        // Receiver report with no report blocks.
        let mut p = vec![0x80, 201, 0, 1];
        p.extend_from_slice(&7u32.to_be_bytes());
        p
    }

    fn sdes() -> Vec<u8> {
        // SDES with one chunk: SSRC, CNAME "ab", end, padded to a word.
        let mut p = vec![0x81, 202, 0, 2];
        p.extend_from_slice(&0x1122_3344u32.to_be_bytes());
        p.extend_from_slice(&[1, 2, b'a', b'b']);
        p
    }

    fn expected() -> SenderReport {
        SenderReport {
            ssrc: 0x1122_3344,
            ntp_timestamp: 0xe000_0001_8000_0000,
            rtp_timestamp: 123_456,
        }
    }

    #[test]
    fn lone_sender_report() {
        assert_eq!(sender_report(&sr()), Ok(Some(expected())));
    }

    #[test]
    fn sender_report_after_other_packets() {
        let mut c = rr();
        c.extend(sdes());
        c.extend(sr());
        assert_eq!(sender_report(&c), Ok(Some(expected())));
        let mut d = sr();
        d.extend(sdes());
        assert_eq!(sender_report(&d), Ok(Some(expected())));
    }

    #[test]
    fn sender_report_with_report_blocks() {
        let mut p = sr();
        p[0] = 0x81; // one report block
        p[3] = 12;
        p.extend_from_slice(&[0; 24]);
        assert_eq!(sender_report(&p), Ok(Some(expected())));
    }

    #[test]
    fn no_sender_report() {
        let mut c = rr();
        c.extend(sdes());
        assert_eq!(sender_report(&c), Ok(None));
    }

    #[test]
    fn truncated_and_garbage() {
        assert!(sender_report(&[]).is_err());
        assert!(sender_report(&[0x80, 200]).is_err());
        let full = sr();
        for n in 1..full.len() {
            assert!(sender_report(&full[..n]).is_err(), "length {n}");
        }
        // Length field claims more than present.
        let mut long = sr();
        long[3] = 7;
        assert!(sender_report(&long).is_err());
        // SR whose length is too short for the sender info.
        let short = [0x80, 200, 0, 1, 0, 0, 0, 1];
        assert!(sender_report(&short).is_err());
        // Wrong version.
        let mut v1 = sr();
        v1[0] = 0x40;
        assert!(sender_report(&v1).is_err());
        // Trailing bytes that do not form a header.
        let mut trail = rr();
        trail.extend_from_slice(&[0x80, 200]);
        assert!(sender_report(&trail).is_err());
        // Garbage after an RR.
        let mut junk = rr();
        junk.extend_from_slice(&[0xff; 40]);
        assert!(sender_report(&junk).is_err());
    }
}
