//! Pacing one RTP stream: frames on the server's grid, dropped (until the
//! next key frame) when the client cannot keep up, sender reports and the
//! end-of-stream BYE. Shared by the TCP and UDP transports.

use super::super::clip::{Clip, ClipFrame};
use super::super::packetize::{goodbye, sender_report, FrameRef, Packetizer, RtpState, MAX_PACKET};
use super::{random_u64, Faults, CNAME, NTP_UNIX_OFFSET, SR_INTERVAL};
use crate::stream::Codec;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One RTP stream being paced out: the clip position, the RTP state and
/// the frame being packetized. Shared by the TCP and UDP transports.
pub(super) struct Outgoing {
    pub(super) clip: &'static Clip,
    /// The server's start: the origin of the frame grid.
    pub(super) epoch: Instant,
    pub(super) rtp: RtpState,
    /// RTP timestamp of frame 0.
    pub(super) base_ts: u32,
    pub(super) play: Option<Playing>,
    pub(super) faults: Faults,
    /// [`Faults::ends`] when this stream was set up.
    pub(super) ends: u32,
}

pub(super) struct Playing {
    /// The grid tick of frame 0.
    pub(super) first: u64,
    /// Frames since PLAY, across loops of the clip: the next one due.
    pub(super) next_frame: u64,
    pub(super) next_sr: Instant,
    /// Set after a dropped frame: send nothing until a key frame, so the
    /// client never gets a frame whose reference it lacks.
    pub(super) need_key: bool,
    /// The frame being sent and its timestamp.
    pub(super) cursor: Option<(Packetizer<'static>, u32)>,
    pub(super) dropped: u32,
}

impl Outgoing {
    pub(super) fn new(clip: &'static Clip, epoch: Instant, faults: Faults) -> Self {
        let r = random_u64();
        Outgoing {
            clip,
            epoch,
            rtp: RtpState {
                ssrc: r as u32,
                seq: (r >> 32) as u16,
                payload_type: clip.payload_type,
                packets: 0,
                octets: 0,
            },
            base_ts: (random_u64() >> 16) as u32,
            play: None,
            ends: faults.ends(),
            faults,
        }
    }

    pub(super) fn fps(&self) -> u64 {
        u64::from(self.clip.info.fps.max(1))
    }

    /// When grid tick `tick` is.
    pub(super) fn tick_time(&self, tick: u64) -> Instant {
        let nanos = u128::from(tick) * 1_000_000_000 / u128::from(self.fps());
        self.epoch + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// When frame `k` (counted from PLAY) is due.
    pub(super) fn due(&self, first: u64, k: u64) -> Instant {
        self.tick_time(first.saturating_add(k))
    }

    pub(super) fn timestamp(&self, k: u64) -> u32 {
        self.base_ts
            .wrapping_add((k.wrapping_mul(90_000) / self.fps()) as u32)
            .wrapping_add(self.faults.clock_offset())
    }

    pub(super) fn start(&mut self, now: Instant) {
        if self.play.is_none() {
            let elapsed = now.saturating_duration_since(self.epoch).as_nanos();
            let tick = (elapsed * u128::from(self.fps())).div_ceil(1_000_000_000);
            let first = u64::try_from(tick).unwrap_or(u64::MAX / 2);
            self.play = Some(Playing {
                first,
                next_frame: 0,
                next_sr: self.tick_time(first) + Duration::from_millis(500),
                need_key: false,
                cursor: None,
                dropped: 0,
            });
        }
    }

    /// `seq` and `rtptime` for RTP-Info: those of the next packet sent.
    pub(super) fn rtp_info(&self) -> (u16, u32) {
        match &self.play {
            None => (self.rtp.seq, self.base_ts),
            Some(p) => (self.rtp.seq, self.timestamp(p.next_frame)),
        }
    }

    /// The next frame tick. (Sender reports ride on frame ticks rather
    /// than waking the session on their own.)
    pub(super) fn deadline(&self) -> Option<Instant> {
        let p = self.play.as_ref()?;
        Some(self.due(p.first, p.next_frame))
    }

    /// Starts the frame due now, if any. A frame is dropped (and the stream
    /// waits for the next key frame) when its predecessor is still being
    /// sent (`busy`, or its packets not all produced), or when the next one
    /// is already due too (we fell behind; catch up rather than burst).
    pub(super) fn on_time(&mut self, now: Instant, busy: bool) {
        let Some(p) = self.play.as_ref() else {
            return;
        };
        let (first, mut k) = (p.first, p.next_frame);
        let mut start_frame = None;
        let mut dropped = 0;
        let mut need_key = p.need_key;
        let busy = busy || p.cursor.is_some();
        let n = self.clip.frames.len() as u64;
        let paused = self.faults.paused(now);
        while n > 0 && self.due(first, k) <= now {
            let frame = &self.clip.frames[(k % n) as usize];
            let late = self.due(first, k + 1) <= now;
            if paused || late || busy || (need_key && !frame.is_key()) {
                dropped += 1;
                need_key = true;
            } else {
                need_key = false;
                start_frame = Some((frame_ref(self.clip, frame), self.timestamp(k)));
            }
            k += 1;
        }
        if let Some(p) = self.play.as_mut() {
            p.next_frame = k;
            p.dropped = p.dropped.wrapping_add(dropped);
            p.need_key = need_key;
            if let Some((f, ts)) = start_frame {
                self.faults.sending(now);
                p.cursor = Some((Packetizer::new(f), ts));
            }
        }
    }

    /// The next packet of the frame being sent.
    pub(super) fn next_packet(&mut self, out: &mut [u8; MAX_PACKET]) -> Option<usize> {
        let p = self.play.as_mut()?;
        let (cursor, ts) = p.cursor.as_mut()?;
        let n = cursor.next(&mut self.rtp, *ts, out);
        if n.is_none() {
            p.cursor = None;
        }
        if let Some(n) = n.filter(|_| self.faults.sending_random_payloads()) {
            // The 12-byte RTP header stays; the payload is noise.
            for chunk in out[12..n].chunks_mut(8) {
                let r = random_u64().to_le_bytes();
                chunk.copy_from_slice(&r[..chunk.len()]);
            }
        }
        n
    }

    /// The RTCP BYE ending this stream when the camera was told to end
    /// it (it then stops playing).
    pub(super) fn end_of_stream(&mut self, out: &mut [u8; 128]) -> Option<usize> {
        let ends = self.faults.ends();
        if ends == self.ends {
            return None;
        }
        self.ends = ends;
        self.play.take()?;
        Some(goodbye(&self.rtp, out))
    }

    pub(super) fn sending(&self) -> bool {
        self.play.as_ref().is_some_and(|p| p.cursor.is_some())
    }

    /// An RTCP sender report, when one is due.
    pub(super) fn sender_report(&mut self, now: Instant, out: &mut [u8; 128]) -> Option<usize> {
        let p = self.play.as_ref()?;
        if now < p.next_sr {
            return None;
        }
        let frame0 = self.tick_time(p.first);
        let p = self.play.as_mut()?;
        p.next_sr = (p.next_sr + SR_INTERVAL).max(now + SR_INTERVAL / 2);
        let elapsed = now.saturating_duration_since(frame0);
        let ticks = elapsed.as_secs() * 90_000 + u64::from(elapsed.subsec_nanos()) * 9 / 100_000;
        let rtp_ts = self.base_ts.wrapping_add(ticks as u32);
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let frac = (u64::from(wall.subsec_nanos()) << 32) / 1_000_000_000;
        let ntp = ((wall.as_secs() + NTP_UNIX_OFFSET) << 32) | frac;
        Some(sender_report(&self.rtp, ntp, rtp_ts, CNAME, out))
    }
}

pub(super) fn frame_ref(clip: &'static Clip, frame: &'static ClipFrame) -> FrameRef<'static> {
    match frame {
        ClipFrame::Nals { nals, .. } if clip.info.codec == Codec::H265 => FrameRef::H265(nals),
        ClipFrame::Nals { nals, .. } => FrameRef::H264(nals),
        ClipFrame::Jpeg(j) => FrameRef::Jpeg(j),
    }
}
