//! The built-in simulated camera: an RTSP server inside the binary that
//! serves short clips shipped in it, looped forever.
//!
//! It is the camera of `vigil demo`, of the tests and of the load
//! benchmarks. `rtsp://HOST:PORT/<clip>[/<anything>]` plays the clip named
//! by the first path segment (`h264`, `h265`, `mjpeg`); the rest of the
//! path names an independent stream, so a benchmark can open
//! `/h264/cam1` ... `/h264/cam500`; a segment `kbps=N` pads that stream to
//! N kbit/s (`/h264/cam1/kbps=500`). RTP goes over TCP (interleaved) or
//! UDP, with continuous timestamps and sequence numbers across loops of
//! the clip. It listens on loopback only.
//!
//! Layout: `clip` indexes the embedded clips into frames, `packetize`
//! turns a frame into RTP packets, `server` is the RTSP server, `auth` its
//! optional Basic/Digest check. The clips are made by
//! `scripts/make-clips.sh`.

mod auth;
pub(crate) mod clip;
mod faults;
mod packetize;
mod server;

pub use auth::CameraAuth;
pub use faults::Faults;

use crate::stream::Codec;
use async_io::Async;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::thread::JoinHandle;

pub struct ServerOptions {
    /// Where to listen; must be a loopback address. Port 0 picks one.
    pub listen: SocketAddr,
    pub auth: Option<CameraAuth>,
    /// Pad H.264/H.265 frames with filler data up to this bitrate (kbit/s),
    /// for load tests; `None` serves the clips as they are.
    pub bitrate_kbps: Option<u32>,
}

/// What one clip is, so tests can compare what a client received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClipInfo {
    /// First path segment that selects it: `h264`, `h265`, `mjpeg`.
    pub name: &'static str,
    pub codec: Codec,
    pub width: u16,
    pub height: u16,
    pub fps: u32,
    pub frames: u32,
}

/// The clips served; `scripts/make-clips.sh` makes them to this
/// description (a test checks the embedded files agree).
pub const CLIPS: &[ClipInfo] = &[
    ClipInfo {
        name: "h264",
        codec: Codec::H264,
        width: 640,
        height: 360,
        fps: 25,
        frames: 100,
    },
    ClipInfo {
        name: "h265",
        codec: Codec::H265,
        width: 640,
        height: 360,
        fps: 25,
        frames: 100,
    },
    ClipInfo {
        name: "mjpeg",
        codec: Codec::Jpeg,
        width: 640,
        height: 360,
        fps: 10,
        frames: 30,
    },
];

/// A running simulated camera. Dropping it stops it, as [`stop`] does.
///
/// [`stop`]: CameraServer::stop
pub struct CameraServer {
    addr: SocketAddr,
    faults: Faults,
    /// Closing this channel tells the server thread to stop.
    stop: Option<smol::channel::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl CameraServer {
    /// Binds the listener (an error if the address is not loopback or is
    /// taken) and starts serving on a thread of its own.
    pub fn start(opts: ServerOptions) -> io::Result<CameraServer> {
        Self::start_with_timeout(opts, server::SESSION_TIMEOUT)
    }

    /// [`start`](CameraServer::start) with another UDP session timeout, so
    /// tests need not wait a minute.
    pub(crate) fn start_with_timeout(
        opts: ServerOptions,
        session_timeout: std::time::Duration,
    ) -> io::Result<CameraServer> {
        if !opts.listen.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the built-in camera listens on loopback only, not {}",
                    opts.listen
                ),
            ));
        }
        let clips = match opts.bitrate_kbps {
            Some(kbps) => clip::clips_at_bitrate(kbps),
            None => clip::clips(),
        }
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let listener = TcpListener::bind(opts.listen)?;
        let addr = listener.local_addr()?;
        let listener = Async::new(listener)?;
        let auth = opts
            .auth
            .map(|a| auth::CredentialCheck::new(a, format!("{:016x}", server::random_u64())));
        let (stop, stopped) = smol::channel::bounded(1);
        let faults = Faults::default();
        let server_faults = faults.clone();
        let thread = std::thread::Builder::new()
            .name("vigil-camera".into())
            .spawn(move || {
                server::run(
                    listener,
                    clips,
                    auth,
                    session_timeout,
                    server_faults,
                    stopped,
                )
            })?;
        Ok(CameraServer {
            addr,
            faults,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The faults this camera can be told to cause (tests).
    pub fn faults(&self) -> Faults {
        self.faults.clone()
    }

    /// `rtsp://127.0.0.1:PORT/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("rtsp://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    /// Stops serving and waits for the server thread. Every connection and
    /// session is closed; the thread never blocks, so this is prompt.
    pub fn stop(self) {}

    fn shutdown(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                log::error!("camera: the server thread panicked");
            }
        }
    }
}

impl Drop for CameraServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests;
