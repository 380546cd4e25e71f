//! The RTSP client session: OPTIONS, DESCRIBE, SETUP, PLAY, keep-alive and
//! TEARDOWN for one video stream, feeding RTP into a depacketizer.
//!
//! [`run_session`] runs one session from connect to failure (or stop); the
//! caller (`daemon::stream`) reconnects with backoff. While a TCP session
//! plays, its video is received by the shared ingest thread
//! (`rtsp::ingest`); the session comes back here for keep-alives, RTSP
//! messages, stop and failure. One video track is set
//! up per session: Vigil records video, and one track keeps the camera's
//! session count (often limited to 2-3) as low as it can be.
//!
//! Camera quirks handled here, each marked `Quirk:` where it is handled:
//! - redirects (3xx with Location) to another URL or host;
//! - 401 on DESCRIBE after an unauthenticated OPTIONS, stale nonces;
//! - OPTIONS refused (an error status): go on with DESCRIBE;
//! - DESCRIBE without Content-Type;
//! - responses without CSeq;
//! - a session id that changes between SETUPs: each SETUP answer's id is
//!   taken (with one track per session, there is one SETUP);
//! - a session left behind when a connection dies (cameras allowing only
//!   2-3 sessions): torn down first thing on the next connection;
//! - Transport replies with other interleaved channels than we asked for;
//! - RTP arriving before the PLAY response;
//! - data on channels we never set up, RTCP from unknown SSRCs;
//! - bogus RTP-Info (ignored: sequence and timestamps come from the packets);
//! - keep-alive methods a server ignores or rejects;
//! - stray bytes between interleaved frames;
//! - servers that never send RTCP (nothing depends on it).

use crate::config::Transport;
use crate::media::Depacketizer;
use crate::rtsp::auth::{AuthError, Authenticator, Credentials};
use crate::rtsp::conn::{Conn, ConnError, Incoming};
use crate::rtsp::ingest;
use crate::rtsp::rtcp;
use crate::rtsp::rtp::{ReorderBuffer, SeqResult, SequenceTracker, TimestampUnwrapper};
use crate::rtsp::sdp::{self, SdpError};
use crate::rtsp::url as rurl;
use crate::stream::rtp::RtpPacket;
use crate::stream::ticker::Ticks;
use crate::stream::{DiscardSink, Frame, FrameSink, StopToken, StreamStatus};
use async_io::{Async, Timer};
use futures_lite::future;
use rtsp_types::{headers, Method, Request, Response, StatusCode, Version};
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::RawFd;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};
use url::Url;

mod error;
mod lease;
mod messages;
mod play;
mod receive;
mod setup;
#[cfg(test)]
mod tests;

pub use error::SessionError;
use lease::{Lease, LeaseEnd};
use messages::{header_str, method_name, reply_to_server};
pub use messages::{parse_session_header, parse_transport, TransportReply};

/// How one stream connects; owned, cheap to clone.
#[derive(Clone, Debug)]
pub struct SessionOptions {
    /// `rtsp://[user:pass@]host[:port]/path`.
    pub url: String,
    /// Credentials; when absent, those in the URL (if any) are used.
    pub username: Option<String>,
    pub password: Option<String>,
    pub transport: Transport,
    /// Largest access unit accepted; larger ones are dropped and counted.
    pub max_frame_bytes: u32,
    /// `camera/main`, for logs.
    pub label: String,
    /// Connect and per-request timeout.
    pub request_timeout: Duration,
    /// No video packet for this long ends the session (and reconnects).
    pub data_timeout: Duration,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            url: String::new(),
            username: None,
            password: None,
            transport: Transport::Tcp,
            max_frame_bytes: 2 << 20,
            label: String::new(),
            request_timeout: Duration::from_secs(10),
            data_timeout: Duration::from_secs(10),
        }
    }
}

const MAX_REDIRECTS: u32 = 5;
/// Attempts per request: the first, one after a challenge, one after a
/// stale nonce.
const MAX_AUTH_ATTEMPTS: u32 = 3;
const USER_AGENT: &str = concat!("vigil/", env!("CARGO_PKG_VERSION"));
const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(60);
/// UDP reorder window: enough for a burst of a few ms at 10 Mbit/s.
const REORDER_SLOTS: usize = 16;
const UDP_SLOT_BYTES: usize = 4096;
/// How long a UDP gap may wait for a late packet before it counts as lost;
/// without it a low-rate sub stream would stall behind one lost packet.
const REORDER_WAIT: Duration = Duration::from_millis(100);
/// A camera sending faster than it is read keeps the connection's buffer
/// full; ticks and the stop request are still looked at every this many
/// packets (UDP sessions).
const TIMERS_EVERY: u32 = 64;
/// The ingest thread reads a TCP session on its tick, or as soon as this
/// much is queued: 16 ms of a 16 Mbit/s camera, well within a camera's
/// small send buffer (a camera whose buffer fills drops frames), while a
/// 2 Mbit/s stream is read on the tick alone.
const PACED_LOW_WATER: i32 = 32 * 1024;
/// Packets one TCP session may hand over per turn of the ingest thread.
const DRAIN_BUDGET: u32 = 256;

/// What one session leaves for the next one of the same stream.
#[derive(Debug, Default)]
pub struct SessionMemory {
    /// A session the camera may still hold because its connection died
    /// before TEARDOWN could be sent: the next session tears it down first.
    /// Quirk: cameras that allow only 2-3 sessions, and servers that keep
    /// sending (UDP) on a session we abandoned.
    stale_session: Option<(Url, String)>,
}

/// Runs one session until it fails (`Err`) or `stop` is requested (`Ok`).
/// `memory` carries what a session must tell the next (see
/// [`SessionMemory`]); keep one per stream across reconnects.
pub async fn run_session(
    opts: &SessionOptions,
    status: &Arc<StreamStatus>,
    sink: &mut Box<dyn FrameSink>,
    stop: &StopToken,
    memory: &mut SessionMemory,
) -> Result<(), SessionError> {
    let parsed = Url::parse(&opts.url).map_err(|e| {
        SessionError::BadUrl(format!("{e}: {}", crate::config::redact_url(&opts.url)))
    })?;
    let (mut url, url_creds) = rurl::strip_credentials(&parsed);
    let creds = match &opts.username {
        Some(u) => Some(Credentials {
            username: u.clone(),
            password: opts.password.clone().unwrap_or_default(),
        }),
        None => url_creds.map(|(username, password)| Credentials { username, password }),
    };
    let mut auth = Authenticator::new(creds);
    for _ in 0..=MAX_REDIRECTS {
        let setup = future::or(
            async { Some(Session::establish(&url, opts, &mut auth, status, memory).await) },
            async {
                stop.stopped().await;
                None
            },
        )
        .await;
        match setup {
            None => return Ok(()),
            Some(Err(e)) => return Err(e),
            Some(Ok(Established::Redirect(to))) => {
                log::info!(
                    "{}: redirected to {}",
                    opts.label,
                    crate::config::redact_url(to.as_str())
                );
                let (stripped, _) = rurl::strip_credentials(&to);
                url = stripped;
            }
            Some(Ok(Established::Playing(mut session))) => {
                return if session.udp.is_none() {
                    session.stream_tcp(status, sink, stop, memory).await
                } else {
                    session
                        .stream_udp(status, sink.as_mut(), stop, memory)
                        .await
                };
            }
        }
    }
    Err(SessionError::TooManyRedirects)
}

enum Established {
    Playing(Box<Session>),
    Redirect(Url),
}

/// The video track being received.
struct Track {
    rtp_channel: u8,
    rtcp_channel: u8,
    payload_type: u8,
    clock_rate: u32,
    depacketizer: Depacketizer,
}

struct UdpPair {
    rtp: Async<UdpSocket>,
    rtcp: Async<UdpSocket>,
    server_ip: IpAddr,
    rtp_buf: Box<[u8]>,
    rtcp_buf: Box<[u8]>,
    reorder: ReorderBuffer,
}

struct Session {
    /// A copy: a playing session is lent to the ingest thread, which needs
    /// it owned.
    opts: SessionOptions,
    conn: Conn,
    cseq: u32,
    /// Authorization state, moved in from `run_session` for the session.
    auth: Authenticator,
    session_id: Option<String>,
    session_timeout: Duration,
    /// Quirk: many cameras ignore or reject GET_PARAMETER; use it only
    /// when OPTIONS listed it, and fall back to OPTIONS if it is refused.
    keepalive_get_parameter: bool,
    /// The CSeq of the keep-alive sent last, until it is answered.
    keepalive_in_flight: Option<u32>,
    presentation_url: Url,
    track: Option<Track>,
    /// The UDP sockets, when the transport is UDP.
    udp: Option<UdpPair>,
    rx: Receiver,
}

/// Per-packet state: sequence, clock, SSRC, counters. Kept apart from the
/// connection so a packet can be handled while the connection's buffer is
/// borrowed.
struct Receiver {
    label: String,
    seq: SequenceTracker,
    clock: TimestampUnwrapper,
    ssrc: Option<u32>,
    /// Consecutive packets from another SSRC than the latched one.
    foreign_ssrc_run: u32,
    last_packet_at: Instant,
    /// A frame reached the sink since the last tick; the tick then moves
    /// `last_frame_at` (no clock read per frame).
    frame_seen: bool,
    last_frame_at: Instant,
    /// Frames dropped since the last frame delivered.
    dropped_since_frame: u64,
    drops_logged: u32,
    last_sender_report: Option<rtcp::SenderReport>,
    /// The camera sent RTCP BYE for our source: the session ends.
    bye: bool,
    params_known: bool,
}

async fn with_timeout<T>(d: Duration, f: impl std::future::Future<Output = T>) -> Option<T> {
    future::or(async { Some(f.await) }, async {
        Timer::after(d).await;
        None
    })
    .await
}

/// Binds an even RTP port and the odd RTCP port above it (RFC 3550 §11).
fn bind_udp_pair(ip: IpAddr) -> std::io::Result<(Async<UdpSocket>, Async<UdpSocket>, u16)> {
    let mut last_err = None;
    for _ in 0..16 {
        let rtp = UdpSocket::bind((ip, 0))?;
        let port = rtp.local_addr()?.port();
        if port % 2 != 0 || port == u16::MAX {
            continue;
        }
        match UdpSocket::bind((ip, port + 1)) {
            Ok(rtcp) => return Ok((Async::new(rtp)?, Async::new(rtcp)?, port)),
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.unwrap_or_else(|| std::io::Error::other("no free even/odd UDP port pair")))
}
