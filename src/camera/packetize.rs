//! RTP packetizers for the simulated camera: H.264 (RFC 6184), H.265
//! (RFC 7798) and JPEG (RFC 2435).
//!
//! A [`Packetizer`] walks one frame and writes one packet at a time into a
//! caller's buffer, so a session needs a single packet-sized buffer however
//! large the frame, and nothing is allocated per packet.

use super::clip::JpegFrame;

/// RTP fixed header size (no CSRCs, no extension).
pub(crate) const RTP_HEADER: usize = 12;
/// Payload bytes per packet, payload-format headers included: keeps a
/// packet under a 1500-byte MTU with IP/UDP headers to spare.
pub(crate) const MAX_PAYLOAD: usize = 1400;
/// The largest packet a packetizer writes.
pub(crate) const MAX_PACKET: usize = RTP_HEADER + MAX_PAYLOAD;

/// The sending state of one RTP stream.
#[derive(Clone, Debug)]
pub(crate) struct RtpState {
    pub ssrc: u32,
    /// The sequence number of the next packet.
    pub seq: u16,
    pub payload_type: u8,
    /// RTCP sender report counters (wrap, as RFC 3550 allows).
    pub packets: u32,
    pub octets: u32,
}

impl RtpState {
    /// Writes the header of a packet whose `payload_len` payload bytes are
    /// already at `out[RTP_HEADER..]`; returns the packet length.
    fn finish(
        &mut self,
        out: &mut [u8],
        marker: bool,
        timestamp: u32,
        payload_len: usize,
    ) -> usize {
        out[0] = 0x80; // V=2, no padding, no extension, no CSRC.
        out[1] = (u8::from(marker) << 7) | (self.payload_type & 0x7f);
        out[2..4].copy_from_slice(&self.seq.to_be_bytes());
        out[4..8].copy_from_slice(&timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        self.seq = self.seq.wrapping_add(1);
        self.packets = self.packets.wrapping_add(1);
        self.octets = self.octets.wrapping_add(payload_len as u32);
        RTP_HEADER + payload_len
    }
}

/// What to packetize.
#[derive(Clone, Copy, Debug)]
pub(crate) enum FrameRef<'a> {
    /// The NAL units of one H.264 access unit.
    H264(&'a [&'a [u8]]),
    /// The NAL units of one H.265 access unit.
    H265(&'a [&'a [u8]]),
    Jpeg(&'a JpegFrame<'a>),
}

/// Walks one frame, producing its packets in order.
#[derive(Clone, Debug)]
pub(crate) struct Packetizer<'a> {
    frame: FrameRef<'a>,
    /// The current NAL unit (H.26x).
    nal: usize,
    /// Bytes of the current NAL unit (or of the JPEG scan) already sent;
    /// 0 means nothing sent yet.
    offset: usize,
    done: bool,
}

impl<'a> Packetizer<'a> {
    pub(crate) fn new(frame: FrameRef<'a>) -> Self {
        Packetizer {
            frame,
            nal: 0,
            offset: 0,
            done: false,
        }
    }

    /// Writes the next packet of the frame into `out` and returns its
    /// length, or `None` when the frame is finished. The last packet of the
    /// frame has the marker bit set.
    pub(crate) fn next(
        &mut self,
        rtp: &mut RtpState,
        timestamp: u32,
        out: &mut [u8; MAX_PACKET],
    ) -> Option<usize> {
        if self.done {
            return None;
        }
        let (payload_len, last) = match self.frame {
            FrameRef::H264(nals) => self.next_nal(nals, 1, out)?,
            FrameRef::H265(nals) => self.next_nal(nals, 2, out)?,
            FrameRef::Jpeg(jpeg) => self.next_jpeg(jpeg, out),
        };
        if last {
            self.done = true;
        }
        Some(rtp.finish(out, last, timestamp, payload_len))
    }

    /// H.264 / H.265: a NAL unit that fits goes whole (single NAL unit
    /// packet); a larger one is cut into fragmentation units (FU-A, type 28,
    /// for H.264; FU, type 49, for H.265). `hdr` is the NAL header size.
    fn next_nal(
        &mut self,
        nals: &[&[u8]],
        hdr: usize,
        out: &mut [u8; MAX_PACKET],
    ) -> Option<(usize, bool)> {
        // Units too short to have a header cannot be sent; skip them.
        while nals.get(self.nal).is_some_and(|n| n.len() <= hdr) {
            self.nal += 1;
        }
        let nal = *nals.get(self.nal)?;
        let is_last_nal = nals
            .get(self.nal + 1..)
            .is_none_or(|rest| rest.iter().all(|n| n.len() <= hdr));
        let payload = &mut out[RTP_HEADER..];
        if self.offset == 0 && nal.len() <= MAX_PAYLOAD {
            payload[..nal.len()].copy_from_slice(nal);
            self.nal += 1;
            return Some((nal.len(), is_last_nal));
        }
        // The FU headers replace the NAL header, which the receiver rebuilds
        // from them.
        let fu_hdr = hdr + 1;
        let start = self.offset == 0;
        if start {
            self.offset = hdr;
        }
        let remaining = nal.len() - self.offset;
        let chunk = remaining.min(MAX_PAYLOAD - fu_hdr);
        let end = chunk == remaining;
        if hdr == 1 {
            let nal_type = nal[0] & 0x1f;
            payload[0] = (nal[0] & 0xe0) | 28;
            payload[1] = (u8::from(start) << 7) | (u8::from(end) << 6) | nal_type;
        } else {
            let nal_type = (nal[0] >> 1) & 0x3f;
            // Keeps F and the LayerId's top bit; type 49; TID byte as is.
            payload[0] = (nal[0] & 0x81) | (49 << 1);
            payload[1] = nal[1];
            payload[2] = (u8::from(start) << 7) | (u8::from(end) << 6) | nal_type;
        }
        payload[fu_hdr..fu_hdr + chunk].copy_from_slice(&nal[self.offset..self.offset + chunk]);
        if end {
            self.nal += 1;
            self.offset = 0;
        } else {
            self.offset += chunk;
        }
        Some((fu_hdr + chunk, end && is_last_nal))
    }

    /// JPEG: type 1 (4:2:0), Q=255 so the quantisation tables travel
    /// in-band, in the first packet's quantisation table header.
    fn next_jpeg(&mut self, jpeg: &JpegFrame<'_>, out: &mut [u8; MAX_PACKET]) -> (usize, bool) {
        let payload = &mut out[RTP_HEADER..];
        let offset = self.offset as u32;
        payload[0] = 0; // type-specific
        payload[1..4].copy_from_slice(&offset.to_be_bytes()[1..]);
        payload[4] = 1; // type 1: 4:2:0
        payload[5] = 255; // Q: tables in-band
        payload[6] = (jpeg.width / 8) as u8;
        payload[7] = (jpeg.height / 8) as u8;
        let mut at = 8;
        if self.offset == 0 {
            payload[8] = 0; // MBZ
            payload[9] = 0; // precision: both tables 8-bit
            let len = (jpeg.qtables[0].len() + jpeg.qtables[1].len()) as u16;
            payload[10..12].copy_from_slice(&len.to_be_bytes());
            at = 12;
            for t in jpeg.qtables {
                payload[at..at + t.len()].copy_from_slice(t);
                at += t.len();
            }
        }
        let remaining = jpeg.scan.len() - self.offset;
        let chunk = remaining.min(MAX_PAYLOAD - at);
        payload[at..at + chunk].copy_from_slice(&jpeg.scan[self.offset..self.offset + chunk]);
        self.offset += chunk;
        (at + chunk, chunk == remaining)
    }
}

/// Writes an RTCP compound packet: a sender report (RFC 3550 6.4.1) with no
/// report blocks, then the SDES with the CNAME every compound packet must
/// carry. Returns its length.
pub(crate) fn sender_report(
    rtp: &RtpState,
    ntp: u64,
    rtp_timestamp: u32,
    cname: &[u8],
    out: &mut [u8; 128],
) -> usize {
    out[0] = 0x80; // V=2, RC=0
    out[1] = 200; // SR
    out[2..4].copy_from_slice(&6u16.to_be_bytes()); // 28 bytes = 7 words
    out[4..8].copy_from_slice(&rtp.ssrc.to_be_bytes());
    out[8..16].copy_from_slice(&ntp.to_be_bytes());
    out[16..20].copy_from_slice(&rtp_timestamp.to_be_bytes());
    out[20..24].copy_from_slice(&rtp.packets.to_be_bytes());
    out[24..28].copy_from_slice(&rtp.octets.to_be_bytes());
    let cname = &cname[..cname.len().min(64)];
    // SDES chunk: SSRC, CNAME item, END item, padded to a 32-bit boundary.
    let items = 2 + cname.len() + 1;
    let chunk = 4 + items.div_ceil(4) * 4;
    let sdes = &mut out[28..28 + 4 + chunk];
    sdes.fill(0);
    sdes[0] = 0x81; // V=2, SC=1
    sdes[1] = 202; // SDES
    sdes[2..4].copy_from_slice(&((chunk / 4) as u16).to_be_bytes());
    sdes[4..8].copy_from_slice(&rtp.ssrc.to_be_bytes());
    sdes[8] = 1; // CNAME
    sdes[9] = cname.len() as u8;
    sdes[10..10 + cname.len()].copy_from_slice(cname);
    28 + 4 + chunk
}

/// Writes an RTCP compound packet announcing the end of the stream: an
/// empty receiver report (a compound packet must start with a report) and
/// a BYE (RFC 3550 6.6) for our SSRC. Returns its length.
pub(crate) fn goodbye(rtp: &RtpState, out: &mut [u8; 128]) -> usize {
    out[0] = 0x80; // V=2, RC=0
    out[1] = 201; // RR
    out[2..4].copy_from_slice(&1u16.to_be_bytes());
    out[4..8].copy_from_slice(&rtp.ssrc.to_be_bytes());
    out[8] = 0x81; // V=2, SC=1
    out[9] = 203; // BYE
    out[10..12].copy_from_slice(&1u16.to_be_bytes());
    out[12..16].copy_from_slice(&rtp.ssrc.to_be_bytes());
    16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> RtpState {
        RtpState {
            ssrc: 0x1234_5678,
            seq: 0xfffe,
            payload_type: 96,
            packets: 0,
            octets: 0,
        }
    }

    fn packets(frame: FrameRef<'_>, rtp: &mut RtpState) -> Vec<Vec<u8>> {
        let mut p = Packetizer::new(frame);
        let mut out = [0u8; MAX_PACKET];
        let mut v = Vec::new();
        while let Some(n) = p.next(rtp, 0xdead_beef, &mut out) {
            assert!(n <= MAX_PACKET);
            v.push(out[..n].to_vec());
        }
        v
    }

    fn marker(p: &[u8]) -> bool {
        p[1] & 0x80 != 0
    }

    /// Rebuilds H.264 NAL units from single-NAL and FU-A packets.
    fn depacketize_h264(pkts: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut nals = Vec::new();
        let mut cur: Option<Vec<u8>> = None;
        for p in pkts {
            let pl = &p[RTP_HEADER..];
            if pl[0] & 0x1f == 28 {
                let (s, e) = (pl[1] & 0x80 != 0, pl[1] & 0x40 != 0);
                if s {
                    assert!(cur.is_none());
                    cur = Some(vec![(pl[0] & 0xe0) | (pl[1] & 0x1f)]);
                }
                cur.as_mut().unwrap().extend_from_slice(&pl[2..]);
                if e {
                    nals.push(cur.take().unwrap());
                }
            } else {
                assert!(cur.is_none());
                nals.push(pl.to_vec());
            }
        }
        nals
    }

    #[test]
    fn h264_small_nals_go_whole_with_marker_on_the_last() {
        let sps = [0x67u8, 1, 2, 3];
        let pps = [0x68u8, 4];
        let idr = vec![0x65u8; 1000];
        let nals: Vec<&[u8]> = vec![&sps, &pps, &idr];
        let mut rtp = state();
        let pkts = packets(FrameRef::H264(&nals), &mut rtp);
        assert_eq!(pkts.len(), 3);
        assert_eq!(pkts[0][RTP_HEADER..], sps);
        assert_eq!(
            pkts.iter().map(|p| marker(p)).collect::<Vec<_>>(),
            [false, false, true]
        );
        // Sequence numbers wrap; timestamp, SSRC and PT are in place.
        let seqs: Vec<u16> = pkts
            .iter()
            .map(|p| u16::from_be_bytes([p[2], p[3]]))
            .collect();
        assert_eq!(seqs, [0xfffe, 0xffff, 0]);
        assert_eq!(pkts[2][..2], [0x80, 0x80 | 96]);
        assert_eq!(
            pkts[2][4..12],
            [0xde, 0xad, 0xbe, 0xef, 0x12, 0x34, 0x56, 0x78]
        );
        assert_eq!(rtp.seq, 1);
        assert_eq!(rtp.packets, 3);
        assert_eq!(rtp.octets, 4 + 2 + 1000);
    }

    #[test]
    fn h264_large_nals_are_fragmented_fu_a() {
        // 1 header byte + 3000 payload bytes, NRI bits set.
        let mut big = vec![0x65u8];
        big.extend((0..3000u32).map(|i| (i % 251) as u8));
        let exact = vec![0x41u8; MAX_PAYLOAD]; // fits exactly: single NAL
        let over = vec![0x41u8; MAX_PAYLOAD + 1]; // one byte too many: FU-A
        let nals: Vec<&[u8]> = vec![&big, &exact, &over];
        let mut rtp = state();
        let pkts = packets(FrameRef::H264(&nals), &mut rtp);
        // 3000 bytes / 1398 per FU = 3 packets, then 1, then 2.
        assert_eq!(pkts.len(), 3 + 1 + 2);
        assert_eq!(pkts[0][RTP_HEADER], 0x60 | 28);
        assert_eq!(pkts[0][RTP_HEADER + 1], 0x80 | 5); // S, type 5
        assert_eq!(pkts[1][RTP_HEADER + 1], 5);
        assert_eq!(pkts[2][RTP_HEADER + 1], 0x40 | 5); // E
        assert_eq!(pkts[0].len(), MAX_PACKET);
        assert_eq!(pkts[3].len(), RTP_HEADER + MAX_PAYLOAD);
        assert_eq!(pkts[3][RTP_HEADER], 0x41);
        let marks: Vec<bool> = pkts.iter().map(|p| marker(p)).collect();
        assert_eq!(marks, [false, false, false, false, false, true]);
        assert_eq!(depacketize_h264(&pkts), vec![big, exact, over]);
    }

    #[test]
    fn h264_clip_round_trips() {
        let clips = super::super::clip::clips().unwrap();
        let clip = clips.iter().find(|c| c.info.name == "h264").unwrap();
        let mut rtp = state();
        for f in &clip.frames {
            let super::super::clip::ClipFrame::Nals { nals, .. } = f else {
                panic!()
            };
            let pkts = packets(FrameRef::H264(nals), &mut rtp);
            assert!(marker(pkts.last().unwrap()));
            assert_eq!(pkts.iter().filter(|p| marker(p)).count(), 1);
            let got = depacketize_h264(&pkts);
            let want: Vec<Vec<u8>> = nals.iter().map(|n| n.to_vec()).collect();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn h265_fragments_use_fu_type_49() {
        let mut big = vec![0x26u8, 0x01]; // IDR_W_RADL, TID 1
        big.extend((0..2000u32).map(|i| (i % 253) as u8));
        let vps = [0x40u8, 0x01, 7, 7];
        let nals: Vec<&[u8]> = vec![&vps, &big];
        let mut rtp = state();
        let pkts = packets(FrameRef::H265(&nals), &mut rtp);
        assert_eq!(pkts.len(), 3);
        assert_eq!(pkts[0][RTP_HEADER..], vps);
        let fu = |p: &Vec<u8>| (p[RTP_HEADER], p[RTP_HEADER + 1], p[RTP_HEADER + 2]);
        assert_eq!(fu(&pkts[1]), (49 << 1, 0x01, 0x80 | 19));
        assert_eq!(fu(&pkts[2]), (49 << 1, 0x01, 0x40 | 19));
        assert!(!marker(&pkts[1]) && marker(&pkts[2]));
        let mut rebuilt = vec![0x26, 0x01];
        for p in &pkts[1..] {
            rebuilt.extend_from_slice(&p[RTP_HEADER + 3..]);
        }
        assert_eq!(rebuilt, big);
        assert_eq!(pkts[1].len(), MAX_PACKET);
    }

    #[test]
    fn degenerate_nals_are_skipped_without_panicking() {
        let empty: Vec<&[u8]> = vec![];
        let mut rtp = state();
        assert!(packets(FrameRef::H264(&empty), &mut rtp).is_empty());
        let tiny: Vec<&[u8]> = vec![&[0x65], &[0x41, 1], &[]];
        let pkts = packets(FrameRef::H264(&tiny), &mut rtp);
        assert_eq!(pkts.len(), 1);
        assert!(marker(&pkts[0]));
        let tiny265: Vec<&[u8]> = vec![&[0x26, 1], &[0x02]];
        assert!(packets(FrameRef::H265(&tiny265), &mut rtp).is_empty());
    }

    #[test]
    fn jpeg_headers_and_fragments() {
        let luma = [16u8; 64];
        let chroma = [17u8; 64];
        let scan: Vec<u8> = (0..3000u32).map(|i| (i % 255) as u8).collect();
        let jpeg = JpegFrame {
            width: 640,
            height: 360,
            qtables: [&luma, &chroma],
            scan: &scan,
        };
        let mut rtp = state();
        rtp.payload_type = 26;
        let pkts = packets(FrameRef::Jpeg(&jpeg), &mut rtp);
        // First: 8 + 4 + 128 header bytes, 1260 scan bytes; then 1392, 348.
        assert_eq!(pkts.len(), 3);
        let first = &pkts[0][RTP_HEADER..];
        assert_eq!(first[..8], [0, 0, 0, 0, 1, 255, 80, 45]);
        assert_eq!(first[8..12], [0, 0, 0, 128]);
        assert_eq!(first[12..76], luma);
        assert_eq!(first[76..140], chroma);
        assert_eq!(pkts[0].len(), MAX_PACKET);
        let offset = |p: &Vec<u8>| u32::from_be_bytes([0, p[13], p[14], p[15]]);
        assert_eq!(offset(&pkts[1]), 1260);
        assert_eq!(offset(&pkts[2]), 1260 + 1392);
        assert_eq!(pkts[1][RTP_HEADER + 4..RTP_HEADER + 8], [1, 255, 80, 45]);
        assert_eq!(
            pkts.iter().map(|p| marker(p)).collect::<Vec<_>>(),
            [false, false, true]
        );
        assert_eq!(pkts[0][1] & 0x7f, 26);
        let mut rebuilt = first[140..].to_vec();
        for p in &pkts[1..] {
            rebuilt.extend_from_slice(&p[RTP_HEADER + 8..]);
        }
        assert_eq!(rebuilt, scan);
    }

    #[test]
    fn sender_report_layout() {
        let mut rtp = state();
        rtp.packets = 10;
        rtp.octets = 12345;
        let mut out = [0u8; 128];
        let n = sender_report(&rtp, 0x0102_0304_0506_0708, 99, b"vigil", &mut out);
        assert_eq!(n % 4, 0);
        assert_eq!(out[..4], [0x80, 200, 0, 6]);
        assert_eq!(out[8..16], [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(out[16..20], 99u32.to_be_bytes());
        assert_eq!(out[20..24], 10u32.to_be_bytes());
        assert_eq!(out[24..28], 12345u32.to_be_bytes());
        assert_eq!(out[28..30], [0x81, 202]);
        let sdes_words = u16::from_be_bytes([out[30], out[31]]) as usize;
        assert_eq!(28 + 4 + sdes_words * 4, n);
        assert_eq!(&out[36..36 + 2 + 5], b"\x01\x05vigil");
        assert_eq!(out[43], 0); // END
    }
}
