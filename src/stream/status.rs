//! Per-stream state, written by the stream's thread and read by everyone
//! else (status command, HTTP API, metrics, tests).
//!
//! One uncontended mutex per stream: the writer locks it once per frame,
//! which costs tens of nanoseconds and keeps 64-bit counters portable to
//! MIPS32, which has no 64-bit atomics.

use crate::config::StreamKind;
use crate::stream::{Codec, VideoParams};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamState {
    Connecting,
    Streaming,
    Reconnecting,
    Error,
    Disabled,
}

impl StreamState {
    pub fn name(self) -> &'static str {
        match self {
            StreamState::Connecting => "connecting",
            StreamState::Streaming => "streaming",
            StreamState::Reconnecting => "reconnecting",
            StreamState::Error => "error",
            StreamState::Disabled => "disabled",
        }
    }
}

/// A copy of a stream's state at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamSnapshot {
    pub state: StreamState,
    pub codec: Option<Codec>,
    pub width: u16,
    pub height: u16,
    /// From the bitstream's timing info when present, else measured.
    pub fps_milli: Option<u32>,
    /// Measured over the last completed 10-second window.
    pub bitrate_bps: u32,
    pub frames: u64,
    pub key_frames: u64,
    pub bytes: u64,
    /// RTP packets of the video track accepted.
    pub packets: u64,
    pub packets_lost: u64,
    /// Frames dropped whole: malformed, too large, or before parameters.
    pub frames_dropped: u64,
    /// Packets ignored: unknown channel, unknown SSRC, bad RTP.
    pub packets_ignored: u64,
    /// Timestamp jumps that split the recording.
    pub discontinuities: u64,
    pub reconnects: u32,
    /// Why the stream last failed; cleared (moved to `previous_error`)
    /// as soon as it streams again.
    pub last_error: Option<String>,
    /// The error the stream recovered from most recently.
    pub previous_error: Option<String>,
    /// The writer's error while storage fails (disk full, unwritable);
    /// cleared when writing works again.
    pub storage_error: Option<String>,
    /// Times the video parameters changed mid-stream.
    pub param_changes: u32,
    /// Sessions the software watchdog ended because the stream was
    /// streaming but delivered no frame (see `daemon::watchdog`).
    pub watchdog_restarts: u32,
}

impl Default for StreamSnapshot {
    fn default() -> Self {
        StreamSnapshot {
            state: StreamState::Connecting,
            codec: None,
            width: 0,
            height: 0,
            fps_milli: None,
            bitrate_bps: 0,
            frames: 0,
            key_frames: 0,
            bytes: 0,
            packets: 0,
            packets_lost: 0,
            frames_dropped: 0,
            packets_ignored: 0,
            discontinuities: 0,
            reconnects: 0,
            last_error: None,
            previous_error: None,
            storage_error: None,
            param_changes: 0,
            watchdog_restarts: 0,
        }
    }
}

#[derive(Default)]
struct Inner {
    snap: StreamSnapshot,
    /// Start of the current rate window and what arrived in it.
    window_start: Option<Instant>,
    window_bytes: u64,
    window_frames: u32,
    measured_fps_milli: Option<u32>,
    last_frame_at: Option<Instant>,
    /// When `snap.state` last changed.
    state_since: Option<Instant>,
    /// When the watchdog last asked the stream to restart its session.
    kicked_at: Option<Instant>,
}

impl Inner {
    fn set_state(&mut self, state: StreamState) {
        if self.snap.state != state || self.state_since.is_none() {
            self.state_since = Some(Instant::now());
        }
        self.snap.state = state;
    }
}

/// The shared state of one stream.
pub struct StreamStatus {
    pub camera: String,
    pub kind: StreamKind,
    inner: Mutex<Inner>,
    /// The watchdog's requests to end the current session (see
    /// [`StreamStatus::kick`]); the stream's thread receives them.
    kick_tx: smol::channel::Sender<()>,
    kick_rx: smol::channel::Receiver<()>,
}

/// Long enough to hold several GOPs: a window of one GOP swings with whether
/// the (large) key frame fell inside it.
const RATE_WINDOW: Duration = Duration::from_secs(10);

impl StreamStatus {
    pub fn new(camera: &str, kind: StreamKind) -> Self {
        // One pending request is enough: a second before the first was
        // acted on asks for the same thing.
        let (kick_tx, kick_rx) = smol::channel::bounded(1);
        StreamStatus {
            camera: camera.to_owned(),
            kind,
            inner: Mutex::new(Inner {
                state_since: Some(Instant::now()),
                ..Inner::default()
            }),
            kick_tx,
            kick_rx,
        }
    }

    /// Asks the stream's thread to end its current session and connect
    /// again (the software watchdog's restart); counted. Never blocks.
    pub fn kick(&self) {
        self.with(|i| {
            i.kicked_at = Some(Instant::now());
            i.snap.watchdog_restarts = i.snap.watchdog_restarts.saturating_add(1);
        });
        let _ = self.kick_tx.try_send(());
    }

    /// Where the stream's thread receives [`StreamStatus::kick`]s.
    pub fn kicks(&self) -> smol::channel::Receiver<()> {
        self.kick_rx.clone()
    }

    /// Time since the watchdog last kicked this stream, if it ever did.
    pub fn since_kick(&self) -> Option<Duration> {
        self.with(|i| i.kicked_at.map(|t| t.elapsed()))
    }

    /// The state, and how long the stream has been in it.
    pub fn state_for(&self) -> (StreamState, Duration) {
        self.with(|i| {
            (
                i.snap.state,
                i.state_since.map(|t| t.elapsed()).unwrap_or_default(),
            )
        })
    }

    /// `camera/main` or `camera/sub`, as used in logs.
    pub fn label(&self) -> String {
        format!("{}/{}", self.camera, self.kind.name())
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        // A poisoned lock only means another thread panicked mid-update of
        // counters; the numbers are still the best we have.
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g)
    }

    pub fn snapshot(&self) -> StreamSnapshot {
        self.with(|i| {
            let mut s = i.snap.clone();
            let mut fps = i.measured_fps_milli;
            // Until a whole window has passed, a provisional rate from the
            // part that has (after 2 s, to see at least one key frame).
            if i.measured_fps_milli.is_none() {
                if let Some(start) = i.window_start {
                    let secs = start.elapsed().as_secs_f64();
                    if secs >= 2.0 {
                        s.bitrate_bps =
                            (i.window_bytes as f64 * 8.0 / secs).min(f64::from(u32::MAX)) as u32;
                        fps = Some((f64::from(i.window_frames) * 1000.0 / secs) as u32);
                    }
                }
            }
            if s.fps_milli.is_none() {
                s.fps_milli = fps;
            }
            s
        })
    }

    /// Time since the last frame arrived, if one ever did.
    pub fn since_last_frame(&self) -> Option<Duration> {
        self.with(|i| i.last_frame_at.map(|t| t.elapsed()))
    }

    pub fn set_state(&self, state: StreamState) {
        self.with(|i| i.set_state(state));
    }

    pub fn set_error(&self, state: StreamState, error: String) {
        self.with(|i| {
            i.set_state(state);
            i.snap.last_error = Some(error);
        });
    }

    pub fn set_storage_error(&self, error: Option<String>) {
        self.with(|i| i.snap.storage_error = error);
    }

    pub fn count_reconnect(&self) {
        self.with(|i| i.snap.reconnects = i.snap.reconnects.saturating_add(1));
    }

    pub fn set_params(&self, p: &VideoParams) {
        self.with(|i| {
            if i.snap.codec.is_some() && (i.snap.width, i.snap.height) != (p.width, p.height) {
                i.snap.param_changes = i.snap.param_changes.saturating_add(1);
            }
            i.snap.codec = Some(p.codec);
            i.snap.width = p.width;
            i.snap.height = p.height;
            i.snap.fps_milli = p.fps_milli;
        });
    }

    pub fn count_frame(&self, bytes: usize, key: bool) {
        let now = Instant::now();
        self.with(|i| {
            i.set_state(StreamState::Streaming);
            let s = &mut i.snap;
            if let Some(e) = s.last_error.take() {
                s.previous_error = Some(e);
            }
            s.frames += 1;
            s.key_frames += u64::from(key);
            s.bytes += bytes as u64;
            i.last_frame_at = Some(now);
            let start = *i.window_start.get_or_insert(now);
            i.window_bytes += bytes as u64;
            i.window_frames += 1;
            let elapsed = now.duration_since(start);
            if elapsed >= RATE_WINDOW {
                let secs = elapsed.as_secs_f64();
                s.bitrate_bps =
                    (i.window_bytes as f64 * 8.0 / secs).min(f64::from(u32::MAX)) as u32;
                i.measured_fps_milli = Some((f64::from(i.window_frames) * 1000.0 / secs) as u32);
                i.window_start = Some(now);
                i.window_bytes = 0;
                i.window_frames = 0;
            }
        });
    }

    pub fn count_packet(&self) {
        self.with(|i| i.snap.packets += 1);
    }

    pub fn count_lost(&self, packets: u64) {
        self.with(|i| i.snap.packets_lost += packets);
    }

    pub fn count_dropped(&self) {
        self.with(|i| i.snap.frames_dropped += 1);
    }

    pub fn count_ignored(&self) {
        self.with(|i| i.snap.packets_ignored += 1);
    }

    pub fn count_discontinuity(&self) {
        self.with(|i| i.snap.discontinuities += 1);
    }
}
