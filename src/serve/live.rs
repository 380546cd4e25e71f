//! `live.mp4`: fragmented MP4 from a stream's ring, chunked, for Media
//! Source Extensions.
//!
//! `GET /api/cameras/{name}/live.mp4?stream=` answers an init segment made
//! from the stream's current codec parameters, then one fragment (`moof` +
//! `mdat`) per frame as frames arrive, starting at the newest key frame in
//! the ring: a player shows a picture at once and then runs a frame behind
//! the camera (plus the HTTP layer's output buffering).
//!
//! The timeline: decode times start at 0 and each fragment starts where
//! the one before ended. A frame's duration is only known when the next
//! one arrives, so a fragment declares the duration between the two frames
//! before it (the first, the stream's measured frame rate): the declared
//! timeline stays within one frame of the camera's clock and never has a
//! hole or an overlap, which is what MSE wants. When frames are skipped (a
//! viewer that fell a whole ring behind starts again at the newest key
//! frame; the camera dropped frames or reconnected) the timeline runs on
//! without a break: the picture jumps, playback does not stall.
//!
//! New codec parameters mid-stream (a resolution change) end the response
//! cleanly: the client reconnects and gets a new init segment. A camera
//! that sends nothing for [`DEAD_AFTER`] ends it with an error. While no
//! frame comes, `read` still returns every [`POLL`] with an 8-byte `free`
//! box, which MP4 readers skip, so that the server's stop flag is seen.
//!
//! Memory per viewer: one frame buffer (it grows to the largest frame seen,
//! which the ring bounds to half its size), the codec parameters twice (a
//! few hundred bytes) and one header buffer (the init segment, then each
//! fragment's ~100-byte header, in the same allocation). Nothing is
//! allocated per frame once the buffers have grown.

use super::fmp4::{self, FragSample};
use super::http::{Body, Reply};
use super::mp4::Mp4SampleEntry;
use super::router::{params as route, CameraFile, RouteHook};
use crate::arena::{LiveCursor, LiveRead, LiveTap};
use crate::daemon::Running;
use crate::store::format;
use crate::stream::Codec;
use crate::time::TICKS;
use std::io::{self, Read};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `read` returns at least this often, so that a stopping server is seen.
pub const POLL: Duration = Duration::from_secs(1);
/// No frame for this long: the camera is gone; the response ends.
pub const DEAD_AFTER: Duration = Duration::from_secs(10);
/// A gap between two frames' timestamps longer than this (or not positive)
/// is a jump, not a duration.
const MAX_FRAME_DURATION: i64 = 5 * TICKS;
/// The first frame's duration when the stream's frame rate is unknown.
const DEFAULT_DURATION: u32 = (TICKS / 25) as u32;
/// What `read` sends when there is nothing else: an empty `free` box.
const FREE_BOX: [u8; 8] = [0, 0, 0, 8, b'f', b'r', b'e', b'e'];

/// The decode timeline of one viewer.
#[derive(Debug)]
struct Timeline {
    /// `mfhd` sequence number of the next fragment (from 1).
    sequence: u32,
    /// Decode time of the next frame.
    next_decode: u64,
    /// The duration the next frame declares: the last one measured.
    duration: u32,
    /// The previous frame's timestamp, unless the stream jumped after it.
    last_timestamp: Option<i64>,
}

impl Timeline {
    fn new(first_duration: u32) -> Timeline {
        Timeline {
            sequence: 1,
            next_decode: 0,
            duration: first_duration.max(1),
            last_timestamp: None,
        }
    }

    /// The frame stamped `timestamp_90k` (the camera's clock) is next:
    /// returns its sequence number, decode time and declared duration.
    fn next(&mut self, timestamp_90k: i64) -> (u32, u64, u32) {
        if let Some(prev) = self.last_timestamp {
            let d = timestamp_90k.saturating_sub(prev);
            if d > 0 && d <= MAX_FRAME_DURATION {
                // d <= MAX_FRAME_DURATION fits u32.
                self.duration = d as u32;
            }
        }
        self.last_timestamp = Some(timestamp_90k);
        let out = (self.sequence, self.next_decode, self.duration);
        self.sequence = self.sequence.wrapping_add(1).max(1);
        self.next_decode += u64::from(self.duration);
        out
    }

    /// Frames were skipped: the next frame's timestamp says nothing about
    /// the last one's duration.
    fn jump(&mut self) {
        self.last_timestamp = None;
    }
}

/// Why a stream's parameters cannot start a `live.mp4`.
fn sample_entry(params: &[u8]) -> Result<Mp4SampleEntry, String> {
    let p = format::decode_params(params).map_err(|e| format!("stored parameters: {e}"))?;
    if p.codec == Codec::Jpeg {
        return Err("MJPEG video cannot be put in MP4: use mjpeg".into());
    }
    Ok(Mp4SampleEntry {
        codec: p.codec,
        width: p.width,
        height: p.height,
        decoder_config: p.decoder_config,
    })
}

/// The body of a `live.mp4`: reads frames from the ring as fMP4.
struct LiveReader {
    tap: LiveTap,
    cursor: LiveCursor,
    /// The encoded parameters the init segment was made from.
    params: Vec<u8>,
    extra: Vec<u8>,
    /// The frame being sent; `data[data_pos..]` is still to go.
    data: Vec<u8>,
    data_pos: usize,
    /// Header bytes to send before it: `head[head_pos..]`.
    head: Vec<u8>,
    head_pos: usize,
    timeline: Timeline,
    /// Skipping to a key frame (after an overrun).
    need_key: bool,
    last_frame: Instant,
    ended: bool,
    /// [`POLL`] and [`DEAD_AFTER`] (shorter in tests).
    poll: Duration,
    dead_after: Duration,
}

impl LiveReader {
    /// Starts at `cursor` (a key frame) with the init segment for `params`.
    fn new(
        tap: LiveTap,
        cursor: LiveCursor,
        params: Vec<u8>,
        entry: &Mp4SampleEntry,
        first_duration: u32,
    ) -> Result<LiveReader, String> {
        let head = fmp4::init_segment(entry).map_err(|e| e.to_string())?;
        Ok(LiveReader {
            tap,
            cursor,
            extra: Vec::with_capacity(params.len()),
            params,
            data: Vec::new(),
            data_pos: 0,
            head,
            head_pos: 0,
            timeline: Timeline::new(first_duration),
            need_key: true,
            last_frame: Instant::now(),
            ended: false,
            poll: POLL,
            dead_after: DEAD_AFTER,
        })
    }

    /// Copies pending bytes into `buf`: 0 when there are none.
    fn drain(&mut self, buf: &mut [u8]) -> usize {
        let pending = if self.head_pos < self.head.len() {
            (&self.head[self.head_pos..], &mut self.head_pos)
        } else {
            (
                &self.data[self.data_pos.min(self.data.len())..],
                &mut self.data_pos,
            )
        };
        let n = pending.0.len().min(buf.len());
        buf[..n].copy_from_slice(&pending.0[..n]);
        *pending.1 += n;
        n
    }

    /// Waits (at most [`POLL`]) for the next frame and queues its bytes.
    fn next_frame(&mut self) -> io::Result<()> {
        self.head.clear();
        self.head_pos = 0;
        self.data_pos = 0;
        match self
            .tap
            .read(&mut self.cursor, &mut self.extra, &mut self.data, self.poll)
        {
            LiveRead::Frame { meta, gap_before } => {
                self.last_frame = Instant::now();
                if !self.extra.is_empty() && self.extra != self.params {
                    // New parameters need a new init segment: the client
                    // reconnects for it.
                    self.ended = true;
                    self.data.clear();
                    return Ok(());
                }
                if self.need_key && !meta.key {
                    self.data.clear();
                    return Ok(());
                }
                self.need_key = false;
                if gap_before || meta.discontinuity {
                    self.timeline.jump();
                }
                let (sequence, decode, duration) = self.timeline.next(meta.timestamp_90k);
                let sample = FragSample {
                    duration_90k: duration,
                    // A frame is at most half a ring, under 1 GiB.
                    size: u32::try_from(self.data.len()).unwrap_or(u32::MAX),
                    key: meta.key,
                };
                fmp4::write_fragment_head(&mut self.head, sequence, decode, [sample])
                    .map_err(|e| io::Error::other(e.to_string()))?;
                Ok(())
            }
            LiveRead::Timeout => {
                self.data.clear();
                if self.last_frame.elapsed() >= self.dead_after {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no video from the camera",
                    ));
                }
                self.head.extend_from_slice(&FREE_BOX);
                Ok(())
            }
            LiveRead::Overrun => {
                // A whole ring behind: on to the newest key frame.
                self.data.clear();
                self.cursor = self.tap.latest_key().unwrap_or_else(|| self.tap.newest());
                self.need_key = true;
                self.timeline.jump();
                Ok(())
            }
        }
    }
}

impl Read for LiveReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let n = self.drain(buf);
            if n > 0 {
                return Ok(n);
            }
            if self.ended {
                return Ok(0);
            }
            self.next_frame()?;
        }
    }
}

/// The `live.mp4` route.
pub fn hook(running: Running) -> RouteHook {
    Arc::new(move |req| {
        let camera = route::camera_route(req, CameraFile::LiveMp4)?;
        let kind = match route::stream_param(req) {
            Ok(k) => k,
            Err(r) => return Some(r),
        };
        let Some(src) = running.live(camera, kind) else {
            return Some(Reply::error(
                404,
                &format!(
                    "{camera}/{} has no live video: not configured, or disabled",
                    kind.name()
                ),
            ));
        };
        let not_yet = || {
            Reply::error(
                503,
                "no video from the camera yet: try again in a few seconds",
            )
        };
        let mut params = Vec::new();
        if !src.tap.params(&mut params) {
            return Some(not_yet());
        }
        let entry = match sample_entry(&params) {
            Ok(e) => e,
            Err(e) => return Some(Reply::error(409, &e)),
        };
        let Some(cursor) = src.tap.latest_key() else {
            return Some(not_yet());
        };
        let first_duration = src
            .status
            .snapshot()
            .fps_milli
            .filter(|&f| f > 0)
            .map_or(DEFAULT_DURATION, |f| {
                u32::try_from(TICKS * 1000 / i64::from(f)).unwrap_or(DEFAULT_DURATION)
            });
        let reader: Box<dyn Read + Send> = if req.head {
            Box::new(io::empty())
        } else {
            match LiveReader::new(src.tap.clone(), cursor, params, &entry, first_duration) {
                Ok(r) => Box::new(r),
                Err(e) => return Some(Reply::error(500, &e)),
            }
        };
        let permit = req.permit.take()?;
        Some(Reply {
            status: 200,
            content_type: "video/mp4",
            headers: vec![("Cache-Control", "no-store".to_owned())],
            body: Body::Stream {
                reader,
                len: None,
                permit,
            },
        })
    })
}

#[cfg(test)]
mod tests;
