//! Helpers shared by Vigil's integration tests: a real camera (GStreamer's
//! RTSP server, `tests/gst/rtsp_server.py`) run as a child process, a frame
//! sink that records what a stream delivers and checks every sample against
//! the format `vigil::media` promises, child processes found by what they
//! log, fresh temporary directories, bounded waiting, and (in [`http`]) a
//! small HTTP client.
//!
//! Each integration test crate compiles this module separately (`mod
//! common;`) and uses only part of it.
#![allow(dead_code)]

pub mod http;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use vigil::daemon::{spawn_stream, StreamSpec};
use vigil::stream::{Codec, Frame, VideoParams};
use vigil::stream::{FrameSink, StopSource, StreamStatus};

/// Debian's Python: a `python3` earlier on PATH (pyenv, venv) cannot import
/// the distribution's `gi` bindings that the server needs.
pub const PYTHON: &str = "/usr/bin/python3";

/// How long the server may take to print its READY line.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// How often [`wait_until`] re-checks its condition.
const POLL: Duration = Duration::from_millis(10);

/// Polls `cond` until it holds or `timeout` passes; returns whether it held.
/// The condition is checked once more at the deadline.
pub fn wait_until(timeout: Duration, cond: impl FnMut() -> bool) -> bool {
    wait_until_every(timeout, POLL, cond)
}

/// [`wait_until`], checking every `every` (a costly condition less often).
pub fn wait_until_every(
    timeout: Duration,
    every: Duration,
    mut cond: impl FnMut() -> bool,
) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        std::thread::sleep(every.min(deadline - now));
    }
}

/// Polls `f` every 100 ms until it returns `Some`; panics naming `what`
/// after `limit`.
pub fn wait_for<T>(limit: Duration, what: &str, f: impl FnMut() -> Option<T>) -> T {
    wait_for_every(limit, Duration::from_millis(100), what, f)
}

/// [`wait_for`], polling every `every`.
pub fn wait_for_every<T>(
    limit: Duration,
    every: Duration,
    what: &str,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(every);
    }
}

/// A fresh, empty `vigil-{name}-{pid}` in the system's temporary directory.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vigil-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A child process, killed (and reaped) on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `vigil` (the binary under test) with `args` and no `RUST_LOG`.
pub fn vigil_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vigil"));
    c.args(args).env_remove("RUST_LOG");
    c
}

/// Starts `cmd` and returns it with the word that follows `prefix` the
/// first time its stderr has it (an address it listens on); waits at most
/// 20 s. All of stderr is copied to `log`, when given.
pub fn spawn_and_find(
    mut cmd: Command,
    prefix: &'static str,
    log: Option<PathBuf>,
) -> (Proc, String) {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut out = log.map(|l| std::fs::File::create(l).unwrap());
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(out) = &mut out {
                let _ = writeln!(out, "{line}");
            }
            if let Some(i) = line.find(prefix) {
                let word = line[i + prefix.len()..]
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_owned();
                let _ = tx.send(word);
            }
        }
    });
    let found = rx
        .recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("the process never logged {prefix:?}"));
    (Proc(child), found)
}

/// A running `tests/gst/rtsp_server.py`. Killed (and reaped) on drop.
pub struct GstServer {
    child: Child,
    url: String,
    port: u16,
}

impl GstServer {
    /// Starts the server with `args` (see `rtsp_server.py --help`) and waits
    /// for it to listen.
    ///
    /// Returns `None` when the server reports that this GStreamer lacks
    /// what was asked (an encoder, Digest auth): the caller skips its test.
    /// Any other failure panics, naming the fix, so that a broken harness is
    /// never mistaken for a skipped test.
    pub fn start(args: &[&str]) -> Option<GstServer> {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/gst/rtsp_server.py");
        let mut child = Command::new(PYTHON)
            .arg(script)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {PYTHON} {script}: {e}; run scripts/install-test-deps.sh")
            });
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no stdout pipe from {script}");
        };

        // A thread reads the server's stdout so that the wait for READY is
        // bounded; it keeps draining afterwards so the server never blocks
        // on a full pipe.
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(first)) = lines.next() {
                let _ = tx.send(first);
            }
            for _ in lines.by_ref() {}
        });

        let line = match rx.recv_timeout(READY_TIMEOUT) {
            Ok(line) => line,
            Err(e) => {
                let _ = child.kill();
                let status = child.wait();
                panic!(
                    "rtsp_server.py {args:?} did not become ready ({e:?}, exit {status:?}); \
                     its stderr is above; run scripts/install-test-deps.sh"
                );
            }
        };
        if let Some(reason) = line.strip_prefix("UNSUPPORTED ") {
            let _ = child.wait();
            eprintln!("skipped: this GStreamer cannot serve {args:?}: {reason}");
            return None;
        }
        let parsed = line.strip_prefix("READY ").and_then(|url| {
            let rest = url.strip_prefix("rtsp://127.0.0.1:")?;
            let port = rest.split('/').next()?.parse::<u16>().ok()?;
            Some((url.to_owned(), port))
        });
        let Some((url, port)) = parsed else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("unexpected first line from rtsp_server.py: {line:?}");
        };
        Some(GstServer { child, url, port })
    }

    /// `rtsp://127.0.0.1:PORT/PATH`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL with `user:password@` in its authority.
    pub fn url_with_credentials(&self, user: &str, password: &str) -> String {
        self.url
            .replacen("rtsp://", &format!("rtsp://{user}:{password}@"), 1)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server at once (SIGKILL: like a camera losing power) and
    /// reaps it, so its port is free when this returns.
    pub fn kill(self) {
        drop(self);
    }
}

impl Drop for GstServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How many timestamps and sizes a [`RecordingSink`] keeps (about a minute
/// at 30 fps); counters go on counting past it.
pub const MAX_KEPT: usize = 2048;

/// What a stream delivered to a [`RecordingSink`].
#[derive(Clone, Debug, Default)]
pub struct Recorded {
    pub frames: u64,
    pub key_frames: u64,
    pub empty_frames: u64,
    /// Frames whose bytes break the sample format of `vigil::media`.
    pub malformed_frames: u64,
    pub first_malformed: Option<String>,
    pub discontinuities: u32,
    /// Per frame, up to [`MAX_KEPT`].
    pub timestamps_90k: Vec<i64>,
    pub sizes: Vec<usize>,
    pub keys: Vec<bool>,
    /// Index into the per-frame vectors where each session (run of frames
    /// between discontinuities) starts; the first is always 0.
    pub session_starts: Vec<usize>,
    pub last_params: Option<VideoParams>,
}

impl Recorded {
    /// The kept frames of each session that delivered any, in order, as
    /// `(timestamps, keys)`.
    pub fn sessions(&self) -> Vec<(&[i64], &[bool])> {
        let n = self.timestamps_90k.len();
        let mut out = Vec::new();
        for (i, &start) in self.session_starts.iter().enumerate() {
            let end = self.session_starts.get(i + 1).copied().unwrap_or(n).min(n);
            if start < end {
                out.push((&self.timestamps_90k[start..end], &self.keys[start..end]));
            }
        }
        out
    }

    /// The timestamps of the latest session that delivered frames.
    pub fn last_session(&self) -> &[i64] {
        self.sessions().last().map_or(&[], |(ts, _)| *ts)
    }
}

/// Frames per second over `ts`, a session's 90 kHz timestamps.
pub fn measured_fps(ts: &[i64]) -> Option<f64> {
    let (first, last) = (ts.first()?, ts.last()?);
    let span = last - first;
    if ts.len() < 2 || span <= 0 {
        return None;
    }
    Some((ts.len() - 1) as f64 * 90_000.0 / span as f64)
}

/// Time covered by `ts`, a session's 90 kHz timestamps.
pub fn span(ts: &[i64]) -> Duration {
    match (ts.first(), ts.last()) {
        (Some(a), Some(b)) if b > a => Duration::from_micros(((b - a) as u64) * 100 / 9),
        _ => Duration::ZERO,
    }
}

/// A [`FrameSink`] that records into a shared [`Recorded`].
pub struct RecordingSink {
    rec: Arc<Mutex<Recorded>>,
}

impl RecordingSink {
    pub fn new() -> (RecordingSink, Arc<Mutex<Recorded>>) {
        let rec = Arc::new(Mutex::new(Recorded {
            session_starts: vec![0],
            ..Recorded::default()
        }));
        (RecordingSink { rec: rec.clone() }, rec)
    }
}

/// Locks, ignoring poison: a panicking test thread must not hide what the
/// stream thread recorded.
pub fn lock(rec: &Mutex<Recorded>) -> std::sync::MutexGuard<'_, Recorded> {
    rec.lock().unwrap_or_else(|e| e.into_inner())
}

impl FrameSink for RecordingSink {
    fn frame(&mut self, frame: &Frame<'_>) {
        let mut r = lock(&self.rec);
        r.frames += 1;
        r.key_frames += u64::from(frame.key);
        if frame.data.is_empty() {
            r.empty_frames += 1;
        }
        if let Err(why) = check_sample(frame.params.codec, frame.data, frame.key) {
            r.malformed_frames += 1;
            if r.first_malformed.is_none() {
                r.first_malformed = Some(format!("frame {}: {why}", r.frames));
            }
        }
        if r.timestamps_90k.len() < MAX_KEPT {
            r.timestamps_90k.push(frame.timestamp_90k);
            r.sizes.push(frame.data.len());
            r.keys.push(frame.key);
        }
        if r.last_params.as_ref() != Some(frame.params) {
            r.last_params = Some(frame.params.clone());
        }
    }

    fn discontinuity(&mut self) {
        let mut r = lock(&self.rec);
        r.discontinuities += 1;
        let at = r.timestamps_90k.len();
        if r.session_starts.last() != Some(&at) {
            r.session_starts.push(at);
        }
    }
}

/// Checks one sample against the format `vigil::media` documents:
/// H.264/H.265 as 4-byte big-endian length-prefixed NAL units with no
/// parameter sets or access unit delimiters, a key frame exactly when the
/// access unit holds an IDR (H.264) / IRAP (H.265) picture; JPEG as one
/// whole image (SOI .. EOI), always a key frame.
pub fn check_sample(codec: Codec, data: &[u8], key: bool) -> Result<(), String> {
    if data.is_empty() {
        return Err("empty".into());
    }
    match codec {
        Codec::Jpeg => {
            if !data.starts_with(&[0xff, 0xd8]) {
                return Err("JPEG does not start with SOI".into());
            }
            if !data.ends_with(&[0xff, 0xd9]) {
                return Err("JPEG does not end with EOI".into());
            }
            if !key {
                return Err("JPEG frame not flagged key".into());
            }
            Ok(())
        }
        Codec::H264 | Codec::H265 => {
            let mut rest = data;
            let mut has_random_access = false;
            let mut nals = 0;
            while !rest.is_empty() {
                let Some((len, tail)) = rest.split_first_chunk::<4>() else {
                    return Err(format!("{} trailing bytes after NAL {nals}", rest.len()));
                };
                let len = u32::from_be_bytes(*len) as usize;
                if len == 0 || len > tail.len() {
                    return Err(format!(
                        "NAL {nals} length {len} with {} bytes left",
                        tail.len()
                    ));
                }
                let (nal, after) = tail.split_at(len);
                rest = after;
                nals += 1;
                let header = nal[0];
                if codec == Codec::H264 {
                    let t = header & 0x1f;
                    if matches!(t, 7..=9) {
                        return Err(format!("H.264 NAL type {t} (SPS/PPS/AUD) in sample"));
                    }
                    has_random_access |= t == 5;
                } else {
                    let t = (header >> 1) & 0x3f;
                    if matches!(t, 32..=35) {
                        return Err(format!("H.265 NAL type {t} (VPS/SPS/PPS/AUD) in sample"));
                    }
                    has_random_access |= (16..=23).contains(&t);
                }
            }
            if key != has_random_access {
                return Err(format!(
                    "key flag {key} but random access picture present: {has_random_access}"
                ));
            }
            Ok(())
        }
    }
}

/// One stream running in its own thread against a [`RecordingSink`].
pub struct Running {
    pub status: Arc<StreamStatus>,
    pub rec: Arc<Mutex<Recorded>>,
    stop: StopSource,
    thread: Option<JoinHandle<()>>,
}

impl Running {
    pub fn start(spec: StreamSpec) -> Running {
        let status = Arc::new(StreamStatus::new(&spec.camera, spec.kind));
        let (sink, rec) = RecordingSink::new();
        let stop = StopSource::new();
        let thread = spawn_stream(
            spec,
            status.clone(),
            Box::new(sink),
            stop.token(),
            Duration::ZERO,
        )
        .unwrap_or_else(|e| panic!("cannot spawn the stream thread: {e}"));
        Running {
            status,
            rec,
            stop,
            thread: Some(thread),
        }
    }

    /// A copy of what was recorded so far.
    pub fn recorded(&self) -> Recorded {
        lock(&self.rec).clone()
    }

    /// Stops the stream and asserts its thread ends within `timeout`.
    pub fn stop(mut self, timeout: Duration) {
        self.stop.stop();
        if let Some(t) = self.thread.take() {
            assert!(
                wait_until(timeout, || t.is_finished()),
                "the stream thread did not stop within {timeout:?}"
            );
            if let Err(e) = t.join() {
                std::panic::resume_unwind(e);
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // On a failed assertion: ask the thread to stop, but do not wait
        // for it (the test is already failing; a hang would hide why).
        self.stop.stop();
    }
}
