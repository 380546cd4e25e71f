//! The daemon: one thread per stream, each running a smol `LocalExecutor`
//! with the RTSP session in it, restarted with backoff when it fails; and
//! the `run` / `demo` commands that start them.

pub mod control;
pub mod recorder;
pub mod running;
pub mod shutdown;
mod stream;
pub mod swap;
pub mod watchdog;

pub use control::Control;
pub use running::{Running, RunningStream};
pub use stream::{spawn_stream, spawn_stream_keeping_sink, StreamSpec};

use crate::config::{Config, StreamKind};
use crate::stream::{FrameSink, StopSource, StreamState, StreamStatus};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Running streams of one process, each with its own stop signal so that
/// one camera's streams can stop while the others go on.
#[derive(Default)]
pub struct Streams {
    /// Every running stream's status, in start order.
    pub statuses: Vec<Arc<StreamStatus>>,
    handles: Vec<Handle>,
}

struct Handle {
    camera: String,
    kind: StreamKind,
    thread: Option<JoinHandle<Box<dyn FrameSink>>>,
    stop: StopSource,
}

impl Streams {
    /// Starts every stream with its own status and sink, staggered by
    /// `spacing` so start-up never spikes.
    pub fn start(
        sinks: Vec<(StreamSpec, Arc<StreamStatus>, Box<dyn FrameSink>)>,
        spacing: Duration,
    ) -> Streams {
        let mut s = Streams::default();
        s.add(sinks, spacing);
        s
    }

    /// Starts more streams, staggered by `spacing` among themselves.
    pub fn add(
        &mut self,
        sinks: Vec<(StreamSpec, Arc<StreamStatus>, Box<dyn FrameSink>)>,
        spacing: Duration,
    ) {
        for (i, (spec, status, sink)) in sinks.into_iter().enumerate() {
            let delay = spacing * u32::try_from(i).unwrap_or(u32::MAX);
            let stop = StopSource::new();
            let (camera, kind) = (spec.camera.clone(), spec.kind);
            let thread =
                match spawn_stream_keeping_sink(spec, status.clone(), sink, stop.token(), delay) {
                    Ok(t) => Some(t),
                    Err(e) => {
                        status.set_error(StreamState::Error, format!("cannot start thread: {e}"));
                        None
                    }
                };
            self.handles.push(Handle {
                camera,
                kind,
                thread,
                stop,
            });
            self.statuses.push(status);
        }
    }

    /// Stops the streams of `camera` and waits (bounded) for their
    /// threads: each one's kind and sink, `None` for a thread that did not
    /// end in time (left running, stopped; its sink goes when it ends).
    pub fn stop_camera(
        &mut self,
        camera: &str,
        timeout: Duration,
    ) -> Vec<(StreamKind, Option<Box<dyn FrameSink>>)> {
        let mut mine = Vec::new();
        let mut i = 0;
        while i < self.handles.len() {
            if self.handles[i].camera == camera {
                mine.push(self.handles.remove(i));
                self.statuses.remove(i);
            } else {
                i += 1;
            }
        }
        for h in &mine {
            h.stop.stop();
        }
        let deadline = Instant::now() + timeout;
        mine.into_iter()
            .map(|h| (h.kind, join_until(h.thread, deadline, timeout)))
            .collect()
    }

    /// Stops every stream and waits (bounded) for their threads; returns
    /// how many did not end in time (left running, stopped).
    pub fn shutdown(self, timeout: Duration) -> usize {
        for h in &self.handles {
            h.stop.stop();
        }
        let deadline = Instant::now() + timeout;
        let mut left = 0;
        for h in self.handles {
            let had_thread = h.thread.is_some();
            if join_until(h.thread, deadline, timeout).is_none() && had_thread {
                left += 1;
            }
        }
        left
    }
}

/// The thread's result, if it ends before `deadline`.
fn join_until<T>(t: Option<JoinHandle<T>>, deadline: Instant, timeout: Duration) -> Option<T> {
    let t = t?;
    while !t.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    if t.is_finished() {
        t.join().ok()
    } else {
        log::warn!("a stream thread did not stop within {timeout:?}; leaving it");
        None
    }
}

/// Logs one summary line per stream.
pub fn log_summary(statuses: &[Arc<StreamStatus>]) {
    for s in statuses {
        let n = s.snapshot();
        let last_error = n
            .last_error
            .as_ref()
            .map(|e| format!(", last error: {e}"))
            .unwrap_or_default();
        if n.codec.is_none() {
            // Nothing received yet: no size, rate or bitrate to show.
            log::info!(
                "{}: {}, no video yet{last_error}",
                s.label(),
                n.state.name()
            );
            continue;
        }
        let fps = n
            .fps_milli
            .map(|f| format!("{:.1} fps", f64::from(f) / 1000.0));
        log::info!(
            "{}: {} {} {}x{} {} {} kbit/s, {} frames ({} key), {} lost packets, {} dropped frames{last_error}",
            s.label(),
            n.state.name(),
            n.codec.map_or("-", |c| c.name()),
            n.width,
            n.height,
            fps.as_deref().unwrap_or("? fps"),
            n.bitrate_bps / 1000,
            n.frames,
            n.key_frames,
            n.packets_lost,
            n.frames_dropped,
        );
    }
}

/// The config of `vigil demo`: the built-in camera's three clips.
pub fn demo_config(
    camera_addr: std::net::SocketAddr,
    data: &std::path::Path,
) -> Result<Config, crate::config::ConfigError> {
    let text = format!(
        r#"
[storage]
path = {path}
pool_size_mb = 16
pools = 8
sync_interval_ms = 1000

[http]
listen = "127.0.0.1:8080"
auth = false

[system]
stream_start_spacing_ms = 100

[[camera]]
name = "demo"
url = "rtsp://{a}/h264/demo"
sub_url = "rtsp://{a}/mjpeg/demo"
record = "both"

[[camera]]
name = "demo-hevc"
url = "rtsp://{a}/h265/demo"
"#,
        path = toml_edit::Value::from(data.to_string_lossy().as_ref()),
        a = camera_addr,
    );
    // Fixed text but for the user's --data path (escaped as a TOML string).
    crate::config::parse_str(&text, std::path::Path::new("."))
}
