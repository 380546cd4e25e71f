//! The body shared by the depacketizer fuzz targets: the input picks an
//! SDP fmtp and a frame size limit, then is cut into pseudo RTP packets.
//! Nothing may panic, emit more than one frame per packet, or emit a frame
//! over the limit.
//!
//! Input layout: `sel` (bit 7 set: the next `sel & 63` bytes are a raw
//! fmtp; else `sel % 4` picks one of the target's canned ones, 3 = none),
//! `m` (limit = 64 + 64 * m bytes), then packets of `flags` (bit 0 marker,
//! bit 1 timestamp +3000, bit 2 loss before, bit 3 timestamp -3000), a
//! big-endian u16 length (clamped to what is left) and the payload.

use vigil::media::Depacketizer;
use vigil::stream::Codec;
use vigil::stream::rtp::RtpPacket;

pub fn run(codec: Codec, fmtps: &[&str; 3], data: &[u8]) {
    let Some((&sel, mut rest)) = data.split_first() else {
        return;
    };
    let raw_fmtp;
    let fmtp: Option<&str> = if sel & 0x80 != 0 {
        let n = usize::from(sel & 0x3f).min(rest.len());
        let (f, r) = rest.split_at(n);
        raw_fmtp = String::from_utf8_lossy(f).into_owned();
        rest = r;
        Some(raw_fmtp.as_str())
    } else {
        fmtps.get(usize::from(sel % 4)).copied()
    };
    let Some((&m, mut rest)) = rest.split_first() else {
        return;
    };
    let max = 64 + u32::from(m) * 64;
    let mut d = Depacketizer::new(codec, fmtp, max);
    let mut ts: i64 = 0;
    let mut seq: u16 = 0;
    while let [flags, l0, l1, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*l0, *l1])).min(tail.len());
        let (payload, next) = tail.split_at(len);
        rest = next;
        if flags & 2 != 0 {
            ts += 3000;
        }
        if flags & 8 != 0 {
            ts -= 3000;
        }
        seq = seq.wrapping_add(1);
        let pkt = RtpPacket {
            sequence: seq,
            timestamp: ts as u32,
            ssrc: 0,
            marker: flags & 1 != 0,
            payload_type: 96,
            payload,
        };
        let mut emits = 0;
        let _ = d.push(&pkt, ts, flags & 4 != 0, &mut |f| {
            emits += 1;
            assert!(f.data.len() <= max as usize, "frame over the limit");
            assert!(f.params.width > 0 && f.params.height > 0);
        });
        assert!(emits <= 1, "more than one frame per push");
    }
}
