//! One stream's thread: a smol `LocalExecutor` running the RTSP session,
//! restarted with exponential backoff and jitter when it fails.

use crate::config::{Camera, Config, StreamKind, Transport};
use crate::rtsp::client::{run_session, SessionError, SessionMemory, SessionOptions};
use crate::stream::{FrameSink, StopSource, StopToken, StreamState, StreamStatus};
use futures_lite::future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Everything a stream thread needs, owned (no reference to the config).
#[derive(Clone, Debug)]
pub struct StreamSpec {
    pub camera: String,
    pub kind: StreamKind,
    pub session: SessionOptions,
    pub enabled: bool,
}

impl StreamSpec {
    pub fn new(config: &Config, cam: &Camera, kind: StreamKind, url: &str) -> Self {
        StreamSpec {
            camera: cam.name.clone(),
            kind,
            session: SessionOptions {
                url: url.to_owned(),
                username: cam.username.clone(),
                password: cam.password.clone(),
                transport: cam.transport,
                max_frame_bytes: config.memory.max_frame_kb.saturating_mul(1024),
                label: format!("{}/{}", cam.name, kind.name()),
                ..SessionOptions::default()
            },
            enabled: cam.enabled,
        }
    }

    /// A spec for tests and tools: one URL, defaults for the rest.
    pub fn for_url(camera: &str, url: &str, transport: Transport) -> Self {
        StreamSpec {
            camera: camera.to_owned(),
            kind: StreamKind::Main,
            session: SessionOptions {
                url: url.to_owned(),
                transport,
                label: format!("{camera}/main"),
                ..SessionOptions::default()
            },
            enabled: true,
        }
    }
}

/// Reconnect delays. The backoff grows only across consecutive attempts
/// that failed (refused, 401, 404, no data); a session that delivered
/// video resets it, so a camera that drops every 25 s is back each time
/// within a second, not after an ever longer wait.
///
/// - After a session that delivered video: `BACKOFF_FIRST`.
/// - Failed attempts while the outage is young (the stream delivered video
///   less than `PATIENT_FOR` ago): doubling from `BACKOFF_MIN` to
///   `BACKOFF_SHORT_MAX`, so a camera that reboots is recorded again within
///   a few seconds of it being back.
/// - Failed attempts after that, or for a camera that never delivered:
///   doubling up to `BACKOFF_MAX`, polite to a camera that keeps refusing.
///
/// Each delay has up to 25 % jitter, so that cameras behind one switch do
/// not all retry at once.
pub(crate) struct Backoff {
    failures: u32,
    rng: u32,
}

pub(crate) const BACKOFF_FIRST: Duration = Duration::from_millis(300);
pub(crate) const BACKOFF_MIN: Duration = Duration::from_secs(1);
pub(crate) const BACKOFF_SHORT_MAX: Duration = Duration::from_secs(3);
pub(crate) const BACKOFF_MAX: Duration = Duration::from_secs(60);
const PATIENT_FOR: Duration = Duration::from_secs(120);

impl Backoff {
    pub(crate) fn new(seed: u32) -> Self {
        Backoff {
            failures: 0,
            rng: seed | 1,
        }
    }

    /// The wait before the next attempt. `delivered`: the session that
    /// just ended delivered video. `since_video`: how long ago the stream
    /// last delivered video (`None`: never).
    pub(crate) fn next_delay(
        &mut self,
        delivered: bool,
        since_video: Option<Duration>,
    ) -> Duration {
        // xorshift32: plenty for jitter, no dependency.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 17;
        self.rng ^= self.rng << 5;
        let base = if delivered {
            self.failures = 0;
            BACKOFF_FIRST
        } else {
            self.failures = self.failures.saturating_add(1);
            let cap = match since_video {
                Some(d) if d < PATIENT_FOR => BACKOFF_SHORT_MAX,
                _ => BACKOFF_MAX,
            };
            let doubled = BACKOFF_MIN.saturating_mul(1u32 << (self.failures - 1).min(16));
            doubled.min(cap)
        };
        let jitter_permille = self.rng % 251; // 0..=25%
        base + base * jitter_permille / 1000
    }
}

/// Starts the stream's thread. It waits `start_delay` (staggered start-up),
/// then keeps a session running until `stop`.
pub fn spawn_stream(
    spec: StreamSpec,
    status: Arc<StreamStatus>,
    sink: Box<dyn FrameSink>,
    stop: StopToken,
    start_delay: Duration,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    spawn(spec, move |spec| {
        drop(run_thread(spec, status, sink, stop, start_delay));
    })
}

/// [`spawn_stream`], whose thread hands the sink back when it ends (so
/// that a restarted stream can keep its ring).
pub fn spawn_stream_keeping_sink(
    spec: StreamSpec,
    status: Arc<StreamStatus>,
    sink: Box<dyn FrameSink>,
    stop: StopToken,
    start_delay: Duration,
) -> std::io::Result<std::thread::JoinHandle<Box<dyn FrameSink>>> {
    spawn(spec, move |spec| {
        run_thread(spec, status, sink, stop, start_delay)
    })
}

fn spawn<T: Send + 'static>(
    spec: StreamSpec,
    body: impl FnOnce(StreamSpec) -> T + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<T>> {
    let name = format!("stream {}", spec.session.label);
    std::thread::Builder::new()
        // Small stacks: 16 streams must fit next to everything else on a
        // 256 MB board; the session keeps its buffers on the heap.
        .stack_size(256 * 1024)
        .name(name)
        .spawn(move || body(spec))
}

fn run_thread(
    spec: StreamSpec,
    status: Arc<StreamStatus>,
    mut sink: Box<dyn FrameSink>,
    stop: StopToken,
    start_delay: Duration,
) -> Box<dyn FrameSink> {
    let ex = smol::LocalExecutor::new();
    // async_io::block_on: this thread drives the reactor itself while it
    // waits, rather than being woken by async-io's driver thread.
    async_io::block_on(ex.run(run_stream(spec, status, &mut sink, stop, start_delay)));
    sink
}

async fn sleep_or_stop(d: Duration, stop: &StopToken) {
    future::or(
        async {
            async_io::Timer::after(d).await;
        },
        stop.stopped(),
    )
    .await;
}

async fn run_stream(
    spec: StreamSpec,
    status: Arc<StreamStatus>,
    // Owned (boxed) because a playing TCP session takes it along to the
    // ingest thread (`rtsp::ingest`) and brings it back.
    sink: &mut Box<dyn FrameSink>,
    stop: StopToken,
    start_delay: Duration,
) {
    let label = &spec.session.label;
    if !spec.enabled {
        status.set_state(StreamState::Disabled);
        log::info!("{label}: disabled");
        stop.stopped().await;
        return;
    }
    if !start_delay.is_zero() {
        sleep_or_stop(start_delay, &stop).await;
    }
    let seed = label
        .bytes()
        .fold(0x9e37_79b9u32, |h, b| h.rotate_left(5) ^ u32::from(b))
        ^ Instant::now().elapsed().subsec_nanos();
    let mut backoff = Backoff::new(seed);
    let mut attempt = 0u32;
    let mut last_video: Option<Instant> = None;
    let mut memory = SessionMemory::default();
    while !stop.is_stopped() {
        if attempt > 0 {
            status.count_reconnect();
        }
        attempt += 1;
        let frames_before = status.snapshot().frames;
        // The session has a stop of its own, which the stream's stop and
        // the watchdog's kick both trigger (see `daemon::watchdog`).
        let kicks = status.kicks();
        while kicks.try_recv().is_ok() {}
        let session_stop = StopSource::new();
        let session_token = session_stop.token();
        let watch = async {
            future::or(stop.stopped(), async {
                let _ = kicks.recv().await;
            })
            .await;
            session_stop.stop();
            future::pending::<Result<(), SessionError>>().await
        };
        let result = future::or(
            run_session(&spec.session, &status, sink, &session_token, &mut memory),
            watch,
        )
        .await;
        sink.discontinuity();
        if stop.is_stopped() {
            break;
        }
        let err = match result {
            // Only a stop ends a session without an error, and this one
            // was the watchdog's kick.
            Ok(()) => "restarted by the watchdog: streaming, but no frame".to_owned(),
            Err(e) => e.to_string(),
        };
        let streamed = status.snapshot().frames > frames_before;
        if streamed {
            last_video = Some(Instant::now());
        }
        // A stream that was delivering and broke is reconnecting; one that
        // never got going (refused, auth, garbage) is in error.
        let state = if streamed {
            StreamState::Reconnecting
        } else {
            StreamState::Error
        };
        let delay = backoff.next_delay(streamed, last_video.map(|t| t.elapsed()));
        log::warn!(
            "{label}: {err}; reconnecting in {:.1} s",
            delay.as_secs_f32()
        );
        status.set_error(
            state,
            format!("{err}; next attempt in {:.0} s", delay.as_secs_f32().ceil()),
        );
        sleep_or_stop(delay, &stop).await;
    }
    log::info!("{label}: stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_that_delivered_resets_the_backoff() {
        let mut b = Backoff::new(12345);
        for _ in 0..10 {
            let d = b.next_delay(true, Some(Duration::ZERO));
            assert!(d >= BACKOFF_FIRST && d <= BACKOFF_FIRST + BACKOFF_FIRST / 4);
        }
    }

    #[test]
    fn a_young_outage_is_retried_every_few_seconds() {
        let mut b = Backoff::new(7);
        let mut base = BACKOFF_MIN;
        for i in 0..20 {
            let d = b.next_delay(false, Some(Duration::from_secs(i * 3)));
            assert!(d >= base && d <= base + base / 4, "{d:?} vs {base:?}");
            base = (base * 2).min(BACKOFF_SHORT_MAX);
        }
    }

    #[test]
    fn a_camera_that_keeps_refusing_is_retried_up_to_a_minute_apart() {
        let mut b = Backoff::new(99);
        let mut base = BACKOFF_MIN;
        for _ in 0..12 {
            let d = b.next_delay(false, None);
            assert!(d >= base && d <= base + base / 4, "{d:?} vs {base:?}");
            base = (base * 2).min(BACKOFF_MAX);
        }
        // Once it delivers, the next wait is short again.
        assert!(b.next_delay(true, None) < Duration::from_millis(400));
        assert!(b.next_delay(false, Some(Duration::from_secs(1))) < Duration::from_millis(1300));
    }
}
