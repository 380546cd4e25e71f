//! Fuzzes the RTP/RTCP helpers with network bytes: packet, sender report
//! and BYE parsing, the UDP reorder window, sequence tracking and
//! timestamp unwrapping.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil::rtsp::rtcp::{is_bye, sender_report};
use vigil::rtsp::rtp::{ReorderBuffer, SeqResult, SequenceTracker, TimestampUnwrapper};
use vigil::stream::rtp::RtpPacket;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = RtpPacket::parse(data) {
        assert!(p.payload.len() + 12 <= data.len());
        assert!(p.payload_type <= 127);
    }
    let _ = sender_report(data);
    // A BYE for some source is a BYE for any.
    if data.len() >= 4 && is_bye(data, Some(u32::from_be_bytes([data[0], data[1], data[2], data[3]]))) {
        assert!(is_bye(data, None));
    }

    // The input as a sequence of operations: a control byte choosing
    // push/pop/pop_forced and a length byte, then that many bytes (the
    // packet, for a push).
    let mut reorder = ReorderBuffer::new(8, 64);
    let mut tracker = SequenceTracker::new();
    let mut pkt = [0u8; 80];
    let mut rest = data;
    while let [ctl, len, tail @ ..] = rest {
        let len = usize::from(*len % 80).min(tail.len());
        let (body, next) = tail.split_at(len);
        rest = next;
        match ctl % 4 {
            0 | 1 => {
                // At least a header's worth; short bodies are zero-padded.
                let n = body.len().max(12);
                pkt[..n].fill(0);
                pkt[..body.len()].copy_from_slice(body);
                // Half the packets are forced to RTP version 2.
                if ctl % 4 == 0 {
                    pkt[0] = 0x80 | (pkt[0] & 0x3f);
                }
                let _ = reorder.push(&pkt[..n]);
            }
            2 => {
                while let Some((p, _lost)) = reorder.pop() {
                    let seq = RtpPacket::parse(p).map(|r| r.sequence);
                    assert!(seq.is_ok(), "only valid packets are stored");
                    if let Ok(seq) = seq {
                        // Released in order: never stale, except after a
                        // resync of the window.
                        let _: SeqResult = tracker.observe(seq);
                    }
                }
            }
            _ => {
                if let Some((p, _lost)) = reorder.pop_forced() {
                    assert!(p.len() >= 12 && p.len() <= 64);
                }
            }
        }
    }
    // Draining always terminates.
    let mut guard = 0;
    while reorder.pop_forced().is_some() {
        guard += 1;
        assert!(guard <= 9);
    }
    assert!(reorder.is_empty());

    // Timestamps: four bytes each, for two clock rates.
    for rate in [90_000, 8_000] {
        let mut u = TimestampUnwrapper::new(rate);
        let mut prev: Option<i64> = None;
        for chunk in data.chunks_exact(4) {
            let ts = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            let out = u.unwrap(ts);
            if let Some(p) = prev {
                // Continuity: no step larger than 10 s forward or 1 s back
                // (in 90 kHz units) ever reaches the output.
                let step = out.ts_90k - p;
                assert!((-90_000..=900_000).contains(&step), "step {step}");
            }
            prev = Some(out.ts_90k);
        }
    }
});
