//! Test helpers shared by the depacketizer tests: feeding crafted payloads
//! and collecting what comes out.

use super::{Depacketize, DepacketizeError, VideoParams};
use crate::stream::rtp::RtpPacket;

/// An emitted frame, copied out of the depacketizer's buffer.
#[derive(Clone, Debug)]
pub(crate) struct Got {
    pub ts: i64,
    pub key: bool,
    pub data: Vec<u8>,
    /// Address of the borrowed data: equal across frames when the buffer
    /// is reused rather than reallocated.
    pub ptr: usize,
    pub params: VideoParams,
    pub changed: bool,
    pub after_loss: bool,
}

pub(crate) struct Harness<D> {
    pub d: D,
    pub frames: Vec<Got>,
    seq: u16,
}

impl<D: Depacketize> Harness<D> {
    pub fn new(d: D) -> Self {
        Harness {
            d,
            frames: Vec::new(),
            seq: 0,
        }
    }

    /// Feeds one packet; asserts `emit` ran at most once.
    pub fn push(
        &mut self,
        ts: i64,
        marker: bool,
        loss: bool,
        payload: &[u8],
    ) -> Result<(), DepacketizeError> {
        self.seq = self.seq.wrapping_add(1);
        let pkt = RtpPacket {
            sequence: self.seq,
            timestamp: ts as u32,
            ssrc: 1,
            marker,
            payload_type: 96,
            payload,
        };
        let mut calls = 0;
        let frames = &mut self.frames;
        let r = self.d.push(&pkt, ts, loss, &mut |f| {
            calls += 1;
            frames.push(Got {
                ts: f.timestamp_90k,
                key: f.key,
                data: f.data.to_vec(),
                ptr: f.data.as_ptr() as usize,
                params: f.params.clone(),
                changed: f.params_changed,
                after_loss: f.after_loss,
            });
        });
        assert!(calls <= 1, "emit called {calls} times in one push");
        r
    }

    /// Feeds a packet that must be accepted.
    pub fn ok(&mut self, ts: i64, marker: bool, payload: &[u8]) {
        let r = self.push(ts, marker, false, payload);
        assert_eq!(r, Ok(()), "payload {payload:02x?}");
    }
}

pub(crate) fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("test hex"))
        .collect()
}

/// Splits a length-prefixed sample into its NAL units.
pub(crate) fn nals(mut data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let len = u32::from_be_bytes(data[..4].try_into().expect("prefix")) as usize;
        out.push(data[4..4 + len].to_vec());
        data = &data[4 + len..];
    }
    out
}

/// A length-prefixed sample made of `nals`.
pub(crate) fn sample(nals: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::new();
    for n in nals {
        v.extend_from_slice(&(n.len() as u32).to_be_bytes());
        v.extend_from_slice(n);
    }
    v
}

/// Base64 (standard alphabet, padded), for building SDP fmtp lines.
pub(crate) fn b64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Whether `ffmpeg` can be run; tests that need it print a note and pass
/// when it is absent.
pub(crate) fn have_ffmpeg() -> bool {
    std::process::Command::new("ffmpeg")
        .arg("-version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
