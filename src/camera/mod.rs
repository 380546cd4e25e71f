//! The built-in simulated camera: an RTSP server inside the binary that
//! serves short clips shipped in it, looped forever.
// STUB: replaced by the camera brief.

use crate::cli::CameraAuth;
use crate::media::Codec;
use std::io;
use std::net::SocketAddr;

pub struct ServerOptions {
    /// Where to listen; must be a loopback address. Port 0 picks one.
    pub listen: SocketAddr,
    pub auth: Option<CameraAuth>,
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

pub const CLIPS: &[ClipInfo] = &[];

pub struct CameraServer {
    addr: SocketAddr,
}

impl CameraServer {
    pub fn start(opts: ServerOptions) -> io::Result<CameraServer> {
        Ok(CameraServer { addr: opts.listen })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `rtsp://127.0.0.1:PORT/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("rtsp://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    /// Stops serving and waits for the server thread.
    pub fn stop(self) {}
}
