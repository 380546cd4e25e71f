//! `mjpeg` (multipart/x-mixed-replace) and `snapshot.jpg` of a live stream.
//!
//! Making a picture is the expensive part on a small board, so it is done
//! once per stream, not per viewer: a stream that someone is looking at
//! has one producer thread, which turns the newest key frame in the
//! stream's ring into a JPEG, at most `http.mjpeg_fps` times a second.
//! JPEG streams pass through as they are; H.264 key frames are decoded
//! (see [`decode`]); H.265 is refused with 415, as no decoder for it
//! builds for both target boards. Every viewer and snapshot reads the one
//! cached picture. The producer keeps its decoder while pictures are asked
//! for, and ends, dropping it, [`IDLE`] after the last request.
//!
//! An mjpeg response gets `mjpeg_fps` parts a second, each the newest
//! picture. Only key frames are decoded, so an H.264 stream has a new
//! picture once per GOP (cameras send a key frame every 1 to 4 s) and
//! repeats it in between; a JPEG stream at or above that rate has a new
//! picture every time.

mod decode;
mod viewer;

use super::http::{Body, Reply};
use super::router::params::{camera_route, stream_param};
use super::router::{CameraFile, Req, RouteHook};
use crate::arena::{LiveCursor, LiveRead, LiveTap};
use crate::config::{Config, StreamKind};
use crate::daemon::recorder::LiveSource;
use crate::daemon::Running;
use crate::store::format::decode_params;
use crate::stream::StreamState;
use crate::stream::{Codec, VideoParams};
use decode::{H264Decoder, MAX_PIXELS, QUALITY};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};
use viewer::Viewer;
#[cfg(test)]
use viewer::{part_head, part_tail};

/// The multipart boundary; never occurs in a JPEG's part headers, and a
/// JPEG's bytes are delimited by `Content-Length` as well.
const BOUNDARY: &str = "vigil-mjpeg-boundary";
const CONTENT_TYPE: &str = "multipart/x-mixed-replace; boundary=vigil-mjpeg-boundary";
/// A producer (and its decoder, tens of MB for a large picture) lives on
/// this long after the last viewer left or the last snapshot was taken.
const IDLE: Duration = Duration::from_secs(15);
/// How often a producer looks for a newer key frame while viewers wait.
const POLL: Duration = Duration::from_millis(40);
/// An mjpeg body hands control back to the server at least this often, so
/// that it ends promptly when the server stops.
const WAKE: Duration = Duration::from_secs(1);
/// An mjpeg response without a new picture for this long ends: the
/// camera is gone, and the client may retry.
const DEAD: Duration = Duration::from_secs(10);
/// How long a snapshot waits for a picture to be made.
const SNAPSHOT_WAIT: Duration = Duration::from_secs(5);
/// The `mjpeg` and `snapshot.jpg` routes of every live stream, paced by
/// `cfg.http.mjpeg_fps`.
pub fn hook(running: Running, cfg: &Config) -> RouteHook {
    let interval = Duration::from_secs(1) / cfg.http.mjpeg_fps.max(1);
    let hub = Hub {
        running,
        interval,
        streams: Mutex::new(Vec::new()),
    };
    Arc::new(move |req| hub.route(req))
}

/// Every live stream's picture cache; dropping it (with the server's
/// routes) ends the producers.
struct Hub {
    /// The streams running now; they change while serving (cameras added,
    /// changed, removed).
    running: Running,
    interval: Duration,
    /// The picture cache of each stream in use, made on first demand.
    /// Held weakly: a cache lives as long as its producer, viewers or
    /// waiting snapshots, so a stream that is removed leaves nothing here
    /// that keeps its ring. One whose stream restarted or went is closed
    /// (its producer and viewers end) on the next request.
    streams: Mutex<Vec<Weak<Stream>>>,
}

struct Stream {
    src: LiveSource,
    /// At most one picture per this.
    interval: Duration,
    state: Mutex<State>,
    /// Signalled on a new picture, a failure, a change of demand, close.
    changed: Condvar,
}

struct State {
    latest: Option<Arc<Picture>>,
    /// Pictures made so far (wrapping); `latest` has this number.
    seq: u32,
    /// mjpeg parts due so far (wrapping): each viewer sends `latest` when
    /// this changes.
    tick: u32,
    /// mjpeg responses being served.
    viewers: u32,
    /// Snapshot requests waiting for a picture.
    waiting: u32,
    /// Last time demand changed: the producer's idle clock.
    demand_at: Instant,
    /// When the producer last saw a new frame in the ring (or a viewer
    /// came): a camera that stopped sending for [`DEAD`] ends the mjpeg
    /// responses.
    frame_at: Instant,
    /// A producer thread is running.
    producer: bool,
    closed: bool,
    /// Why the last attempt made no picture; cleared by the next picture.
    failure: Option<Failure>,
    /// Failures so far (wrapping), so a waiter sees one that happened
    /// while it waited.
    failures: u32,
}

struct Picture {
    jpeg: Vec<u8>,
    seq: u32,
    /// The key frame it was made from.
    key: LiveCursor,
    made: Instant,
}

#[derive(Clone, Debug)]
struct Failure {
    status: u16,
    message: String,
    /// The stream cannot give pictures at all (codec, size): viewers stop.
    fatal: bool,
}

impl Failure {
    fn reply(&self) -> Reply {
        Reply::error(self.status, &self.message)
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        for s in self.lock_streams().iter().filter_map(Weak::upgrade) {
            s.close();
        }
    }
}

impl Hub {
    fn route(&self, req: &mut Req<'_>) -> Option<Reply> {
        let (camera, is_mjpeg) = match (
            camera_route(req, CameraFile::Mjpeg),
            camera_route(req, CameraFile::SnapshotJpg),
        ) {
            (Some(c), _) => (c.to_owned(), true),
            (None, Some(c)) => (c.to_owned(), false),
            (None, None) => return None,
        };
        let stream = match self.pick(req, &camera) {
            Ok(s) => s,
            Err(r) => return Some(r),
        };
        let mut reply = match stream.check_codec() {
            Err(f) => f.reply(),
            Ok(()) if is_mjpeg => start_mjpeg(req, &stream),
            Ok(()) => stream.snapshot(),
        };
        // Which stream was chosen, when the request left it to us.
        reply
            .headers
            .push(("X-Vigil-Stream", stream.src.kind.name().to_owned()));
        Some(reply)
    }

    fn lock_streams(&self) -> MutexGuard<'_, Vec<Weak<Stream>>> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The picture cache of the running stream (`camera`, `kind`), if it
    /// runs with a ring.
    fn stream(&self, camera: &str, kind: StreamKind) -> Option<Arc<Stream>> {
        let mut streams = self.lock_streams();
        streams.retain(|w| {
            let Some(s) = w.upgrade() else {
                return false;
            };
            let current = self.running.is_current(&s.src);
            if !current {
                s.close();
            }
            current
        });
        let src = self.running.live(camera, kind)?;
        if let Some(s) = streams
            .iter()
            .filter_map(Weak::upgrade)
            .find(|s| Arc::ptr_eq(&s.src.status, &src.status))
        {
            return Some(s);
        }
        let s = Arc::new(Stream {
            src,
            interval: self.interval,
            state: Mutex::new(State {
                latest: None,
                seq: 0,
                tick: 0,
                viewers: 0,
                waiting: 0,
                demand_at: Instant::now(),
                frame_at: Instant::now(),
                producer: false,
                closed: false,
                failure: None,
                failures: 0,
            }),
            changed: Condvar::new(),
        });
        streams.push(Arc::downgrade(&s));
        Some(s)
    }

    /// The stream asked for, or by default the sub stream when it is live
    /// (cheaper to decode), else the main stream.
    fn pick(&self, req: &Req<'_>, camera: &str) -> Result<Arc<Stream>, Reply> {
        let explicit = match req.param("stream") {
            None => None,
            Some(_) => Some(stream_param(req)?),
        };
        let (main, sub) = (
            self.stream(camera, StreamKind::Main),
            self.stream(camera, StreamKind::Sub),
        );
        if main.is_none() && sub.is_none() {
            return Err(if self.running.has_camera(camera) {
                Reply::error(
                    404,
                    &format!("camera {camera:?} is disabled: it has no live stream"),
                )
            } else {
                Reply::error(404, &format!("no camera named {camera:?}"))
            });
        }
        let streaming = |s: &Arc<Stream>| s.src.status.snapshot().state == StreamState::Streaming;
        let chosen = match explicit {
            Some(StreamKind::Main) => main,
            Some(StreamKind::Sub) => sub,
            None => sub.clone().filter(streaming).or(main).or(sub),
        };
        chosen.ok_or_else(|| {
            let kind = explicit.map_or("", StreamKind::name);
            Reply::error(404, &format!("camera {camera:?} has no {kind} stream"))
        })
    }
}

/// Starts an mjpeg response: the viewer counts as demand until it ends.
fn start_mjpeg(req: &mut Req<'_>, stream: &Arc<Stream>) -> Reply {
    let headers = vec![("Cache-Control", "no-cache, no-store".to_owned())];
    if req.head {
        return Reply {
            status: 200,
            content_type: CONTENT_TYPE,
            headers,
            body: Body::Bytes(Vec::new()),
        };
    }
    let Some(permit) = req.permit.take().or_else(|| req.permits.try_acquire()) else {
        return req.permits.busy();
    };
    let viewer = match Viewer::attach(stream.clone()) {
        Ok(v) => v,
        Err(f) => return f.reply(),
    };
    Reply {
        status: 200,
        content_type: CONTENT_TYPE,
        headers,
        body: Body::Stream {
            reader: Box::new(viewer),
            len: None,
            permit,
        },
    }
}

fn jpeg_reply(p: &Picture) -> Reply {
    Reply {
        status: 200,
        content_type: "image/jpeg",
        headers: vec![("Cache-Control", "no-cache, no-store".to_owned())],
        body: Body::Bytes(p.jpeg.clone()),
    }
}

impl Stream {
    /// Ends the producer and the viewers (the server stops, or the stream
    /// is no longer running).
    fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'a>(&self, st: MutexGuard<'a, State>, t: Duration) -> MutexGuard<'a, State> {
        match self.changed.wait_timeout(st, t) {
            Ok((st, _)) => st,
            Err(e) => e.into_inner().0,
        }
    }

    fn label(&self) -> String {
        format!("{}/{}", self.src.camera, self.src.kind.name())
    }

    /// The stream's current parameters, if it has stored any.
    fn params(&self) -> Option<VideoParams> {
        let mut buf = Vec::new();
        if !self.src.tap.params(&mut buf) {
            return None;
        }
        decode_params(&buf).ok()
    }

    /// Whether pictures can be made of this stream as it is now.
    fn check_codec(&self) -> Result<(), Failure> {
        match self.params() {
            None => Err(Failure {
                status: 503,
                message: format!("no frame from {} yet", self.label()),
                fatal: false,
            }),
            Some(p) => supported(&p, &self.label()),
        }
    }

    /// Whether `p` is as new as a picture can be: made from the newest key
    /// frame, or within the last interval.
    fn fresh(&self, p: &Picture) -> bool {
        p.made.elapsed() < self.interval || self.src.tap.latest_key() == Some(p.key)
    }

    /// Starts the producer thread unless one runs.
    fn ensure_producer(self: &Arc<Self>, st: &mut State) -> Result<(), Failure> {
        if st.producer {
            return Ok(());
        }
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("mjpeg-{}", self.src.camera))
            .spawn(move || produce(me));
        match spawned {
            Ok(_) => {
                st.producer = true;
                // The new producer's clock of frames starts now.
                st.frame_at = Instant::now();
                Ok(())
            }
            Err(e) => Err(Failure {
                status: 503,
                message: format!("cannot start a picture thread: {e}"),
                fatal: true,
            }),
        }
    }

    /// `snapshot.jpg`: the cached picture when fresh, else the next one
    /// made (the producer starts on the newest key frame at once).
    fn snapshot(self: &Arc<Self>) -> Reply {
        let mut st = self.lock();
        if let Some(p) = st.latest.as_ref().filter(|p| self.fresh(p)) {
            return jpeg_reply(p);
        }
        st.waiting += 1;
        st.demand_at = Instant::now();
        let started = self.ensure_producer(&mut st);
        let seq0 = st.latest.as_ref().map(|p| p.seq);
        let failures0 = st.failures;
        let deadline = Instant::now() + SNAPSHOT_WAIT;
        let reply = loop {
            if let Err(f) = &started {
                break f.reply();
            }
            if st.closed {
                break Reply::error(503, "server stopping");
            }
            if let Some(p) = st.latest.as_ref().filter(|p| Some(p.seq) != seq0) {
                break jpeg_reply(p);
            }
            if st.failures != failures0 {
                if let Some(f) = &st.failure {
                    break f.reply();
                }
            }
            let now = Instant::now();
            if now >= deadline {
                break Reply::error(
                    503,
                    &format!(
                        "no picture from {} within {} s",
                        self.label(),
                        SNAPSHOT_WAIT.as_secs()
                    ),
                );
            }
            st = self.wait(st, deadline - now);
        };
        st.waiting -= 1;
        st.demand_at = Instant::now();
        reply
    }
}

/// Whether pictures can be made of a stream with parameters `p`.
fn supported(p: &VideoParams, label: &str) -> Result<(), Failure> {
    let refuse = |message: String| {
        Err(Failure {
            status: 415,
            message,
            fatal: true,
        })
    };
    match p.codec {
        Codec::Jpeg => Ok(()),
        Codec::H265 => refuse(format!(
            "{label} is H.265, which Vigil cannot turn into JPEG (no H.265 decoder builds for its boards); \
             use an H.264 or MJPEG stream, such as the camera's sub stream"
        )),
        Codec::H264 if !decode::AVAILABLE => {
            refuse(format!("{label} is H.264, and {}", decode::DecodeError::NotBuilt))
        }
        Codec::H264 if u32::from(p.width) * u32::from(p.height) > MAX_PIXELS => refuse(format!(
            "{label} is {}x{}: decoding pictures larger than 1920x1080 costs a small board too much memory; \
             use the camera's sub stream",
            p.width, p.height
        )),
        Codec::H264 => Ok(()),
    }
}

/// The producer thread of one stream. While snapshots wait, it makes a
/// picture of each newer key frame as soon as there is one. While mjpeg
/// viewers watch, it ticks every interval: a picture of the newest key
/// frame if there is a newer one, and a tick that sends the newest picture
/// to every viewer (the last one again when the camera gave no newer key
/// frame, so the stream keeps its rate and its connections stay busy; not
/// when the camera has stopped sending). Ends after [`IDLE`] without
/// demand, or when the routes are dropped.
fn produce(stream: Arc<Stream>) {
    let tap = &stream.src.tap;
    let mut maker = Maker::default();
    let mut last_key: Option<LiveCursor> = None;
    let mut next_tick = Instant::now();
    let mut stored = tap.frames_stored();
    loop {
        let (viewers, waiting) = {
            let mut st = stream.lock();
            loop {
                if st.closed {
                    st.producer = false;
                    return;
                }
                let now = Instant::now();
                if st.viewers == 0 && st.waiting == 0 {
                    let idle = now.saturating_duration_since(st.demand_at);
                    if idle >= IDLE {
                        st.producer = false;
                        // Nobody looks: the picture goes with the decoder,
                        // rather than a JPEG per stream held for ever.
                        st.latest = None;
                        return;
                    }
                    st = stream.wait(st, IDLE - idle);
                    continue;
                }
                if st.waiting == 0 && now < next_tick {
                    st = stream.wait(st, next_tick - now);
                    continue;
                }
                break (st.viewers, st.waiting);
            }
        };
        let n = tap.frames_stored();
        if n != stored {
            stored = n;
            stream.lock().frame_at = Instant::now();
        }
        let mut made = false;
        if let Some(cursor) = tap.latest_key().filter(|c| Some(*c) != last_key) {
            let result = maker.picture(tap, cursor, &stream.label());
            let mut st = stream.lock();
            match result {
                Ok(Some(jpeg)) => {
                    st.seq = st.seq.wrapping_add(1);
                    st.latest = Some(Arc::new(Picture {
                        jpeg,
                        seq: st.seq,
                        key: cursor,
                        made: Instant::now(),
                    }));
                    st.failure = None;
                    last_key = Some(cursor);
                    made = true;
                }
                // Overwritten before it was read: a newer one will come.
                Ok(None) => {}
                Err(f) => {
                    log::debug!("mjpeg {}: {}", stream.label(), f.message);
                    st.failure = Some(f);
                    st.failures = st.failures.wrapping_add(1);
                    // Not retried: the next key frame is.
                    last_key = Some(cursor);
                }
            }
        }
        let now = Instant::now();
        if viewers > 0 && now >= next_tick {
            let mut st = stream.lock();
            let alive = now.saturating_duration_since(st.frame_at) < DEAD;
            if alive && st.latest.is_some() {
                st.tick = st.tick.wrapping_add(1);
            }
            drop(st);
            next_tick += stream.interval;
            if next_tick < now {
                // Fell behind (a slow decode): keep the rate from now on
                // rather than catch up in a burst.
                next_tick = now + stream.interval;
            }
            stream.changed.notify_all();
        } else if made {
            stream.changed.notify_all();
        } else if waiting > 0 {
            // A snapshot waits for a newer key frame than the last picture.
            let st = stream.lock();
            drop(stream.wait(st, POLL));
        }
    }
}

/// What a producer keeps between pictures: the decoder (made on first use)
/// and buffers reused from frame to frame.
#[derive(Default)]
struct Maker {
    decoder: Option<H264Decoder>,
    data: Vec<u8>,
    extra: Vec<u8>,
    params: Vec<u8>,
}

impl Drop for Maker {
    fn drop(&mut self) {
        // The decoder goes with the condition's temporary.
        if self.decoder.take().is_some() {
            // glibc raises its mmap threshold when big blocks are freed, so
            // a later decoder's buffers come from the heap, which keeps
            // them (16 MB at 1080p, measured) after they are freed: hand
            // them back to the system.
            #[cfg(all(target_os = "linux", target_env = "gnu"))]
            // SAFETY: malloc_trim has no preconditions.
            unsafe {
                libc::malloc_trim(0);
            }
        }
    }
}

impl Maker {
    /// The JPEG of the key frame under `cursor`; `None` if it is gone.
    fn picture(
        &mut self,
        tap: &LiveTap,
        cursor: LiveCursor,
        label: &str,
    ) -> Result<Option<Vec<u8>>, Failure> {
        let mut c = cursor;
        match tap.read(&mut c, &mut self.extra, &mut self.data, Duration::ZERO) {
            LiveRead::Frame { .. } => {}
            LiveRead::Timeout | LiveRead::Overrun => return Ok(None),
        }
        // The frame's own parameters when it brought new ones, else those
        // in force (from the newest key frame on: this one).
        let params = if self.extra.is_empty() {
            tap.params(&mut self.params);
            decode_params(&self.params)
        } else {
            decode_params(&self.extra)
        };
        let params = params.map_err(|e| Failure {
            status: 502,
            message: format!("{label}: unreadable codec parameters: {e}"),
            fatal: false,
        })?;
        supported(&params, label)?;
        let bad = |message: String| Failure {
            status: 502,
            message,
            fatal: false,
        };
        match params.codec {
            Codec::Jpeg => {
                // The depacketizer rebuilds complete JFIF images; anything
                // else would be a bug upstream, not a picture to send.
                if !self.data.starts_with(&[0xff, 0xd8]) {
                    return Err(bad(format!("{label}: frame is not a JPEG image")));
                }
                Ok(Some(self.data.clone()))
            }
            Codec::H264 => {
                if self.decoder.is_none() {
                    let d = H264Decoder::new().map_err(|e| bad(format!("{label}: {e}")))?;
                    self.decoder = Some(d);
                }
                let Some(d) = self.decoder.as_mut() else {
                    return Ok(None);
                };
                let mut out = Vec::with_capacity(self.data.len());
                d.key_frame_to_jpeg(&params.decoder_config, &self.data, QUALITY, &mut out)
                    .map_err(|e| bad(format!("{label}: {e}")))?;
                Ok(Some(out))
            }
            // Refused by `supported` above.
            Codec::H265 => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests;
