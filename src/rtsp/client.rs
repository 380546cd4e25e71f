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

use super::auth::{AuthError, Authenticator, Credentials};
use super::conn::{Conn, ConnError, Incoming};
use super::ingest;
use super::rtcp;
use super::rtp::{ReorderBuffer, SeqResult, SequenceTracker, TimestampUnwrapper};
use super::sdp::{self, SdpError};
use super::url as rurl;
use crate::config::Transport;
use crate::media::{self, Depacketizer};
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

/// Why a session ended.
#[derive(Debug)]
pub enum SessionError {
    BadUrl(String),
    Connect(String),
    Conn(ConnError),
    Auth(AuthError),
    /// A request answered with an error status.
    Status {
        method: &'static str,
        status: u16,
        reason: String,
    },
    Timeout(&'static str),
    TooManyRedirects,
    Sdp(SdpError),
    NoVideoTrack(String),
    /// The camera's answers break the protocol in a way we cannot work around.
    Protocol(String),
    NoData(Duration),
    /// Packets came, but nothing in them was video (every frame dropped):
    /// this many frames in that time.
    NotVideo(Duration, u64),
    /// The camera said goodbye (RTCP BYE): its stream ended.
    Bye,
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::BadUrl(s) => write!(f, "bad camera URL: {s}"),
            SessionError::Connect(s) => write!(f, "cannot connect: {s}"),
            SessionError::Conn(e) => e.fmt(f),
            SessionError::Auth(e) => e.fmt(f),
            SessionError::Status {
                method,
                status,
                reason,
            } => write!(f, "{method} refused by the camera: {status} {reason}"),
            SessionError::Timeout(what) => write!(f, "no answer from the camera to {what}"),
            SessionError::TooManyRedirects => f.write_str("too many redirects"),
            SessionError::Sdp(e) => e.fmt(f),
            SessionError::NoVideoTrack(found) => {
                write!(
                    f,
                    "the camera offers no H.264, H.265 or JPEG video track ({found})"
                )
            }
            SessionError::Protocol(s) => write!(f, "protocol error: {s}"),
            SessionError::NoData(d) => write!(f, "no video data for {} s", d.as_secs()),
            SessionError::NotVideo(d, n) => write!(
                f,
                "the camera sends data but no valid video: {n} frames dropped in {} s",
                d.as_secs()
            ),
            SessionError::Bye => f.write_str("the camera ended the stream (RTCP BYE)"),
        }
    }
}

impl std::error::Error for SessionError {}

impl From<ConnError> for SessionError {
    fn from(e: ConnError) -> Self {
        SessionError::Conn(e)
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
    depacketizer: Box<dyn Depacketizer + Send>,
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

impl Session {
    async fn establish(
        url: &Url,
        opts: &SessionOptions,
        auth: &mut Authenticator,
        status: &StreamStatus,
        memory: &mut SessionMemory,
    ) -> Result<Established, SessionError> {
        let addrs = url.socket_addrs(|| Some(554)).map_err(|e| {
            SessionError::Connect(format!(
                "cannot resolve {:?}: {e}",
                url.host_str().unwrap_or("")
            ))
        })?;
        let addr = *addrs
            .first()
            .ok_or_else(|| SessionError::Connect("host has no address".into()))?;
        let conn = with_timeout(opts.request_timeout, Conn::connect(addr))
            .await
            .ok_or(SessionError::Timeout("the connection attempt"))?
            .map_err(|e| SessionError::Connect(format!("{addr}: {e}")))?;
        log::debug!("{}: connected to {addr}", opts.label);
        let mut s = Box::new(Session {
            opts: opts.clone(),
            conn,
            cseq: 0,
            auth: std::mem::replace(auth, Authenticator::new(None)),
            session_id: None,
            session_timeout: DEFAULT_SESSION_TIMEOUT,
            keepalive_get_parameter: false,
            keepalive_in_flight: None,
            presentation_url: url.clone(),
            track: None,
            udp: None,
            rx: Receiver::new(&opts.label),
        });
        if let Some((stale_url, id)) = memory.stale_session.take() {
            s.teardown_stale(&stale_url, id).await;
        }
        let result = s.setup_and_play(status).await;
        // Hand the authenticator back (with its nonce) for a redirect or retry.
        match result {
            Ok(None) => Ok(Established::Playing(s)),
            Ok(Some(to)) => {
                *auth = std::mem::replace(&mut s.auth, Authenticator::new(None));
                Ok(Established::Redirect(to))
            }
            Err(e) => {
                s.release(&e, memory).await;
                *auth = std::mem::replace(&mut s.auth, Authenticator::new(None));
                Err(e)
            }
        }
    }

    /// OPTIONS, DESCRIBE, SETUP, PLAY. `Some(url)` is a redirect.
    async fn setup_and_play(&mut self, status: &StreamStatus) -> Result<Option<Url>, SessionError> {
        let url = self.presentation_url.clone();
        // Quirk: some cameras reject OPTIONS or answer it badly; it only
        // tells us whether GET_PARAMETER is available, so go on regardless.
        match self.request(Method::Options, &url, &[], status).await {
            Ok(Reply::Redirect(to)) => return Ok(Some(to)),
            Ok(Reply::Ok(resp)) => {
                self.keepalive_get_parameter =
                    header_str(&resp, &headers::PUBLIC).is_some_and(|p| {
                        p.split(',')
                            .any(|m| m.trim().eq_ignore_ascii_case("GET_PARAMETER"))
                    });
            }
            Err(e @ (SessionError::Auth(_) | SessionError::Conn(_) | SessionError::Timeout(_))) => {
                return Err(e)
            }
            Err(e) => log::debug!("{}: OPTIONS failed ({e}); going on", self.opts.label),
        }

        let resp = match self
            .request(
                Method::Describe,
                &url,
                &[(headers::ACCEPT, "application/sdp")],
                status,
            )
            .await?
        {
            Reply::Redirect(to) => return Ok(Some(to)),
            Reply::Ok(r) => r,
        };
        // Quirk: DESCRIBE answers without Content-Type (or a wrong one);
        // try the body as SDP anyway and let the parser decide.
        if let Some(ct) = header_str(&resp, &headers::CONTENT_TYPE) {
            if !ct.to_ascii_lowercase().contains("application/sdp") {
                log::debug!(
                    "{}: DESCRIBE Content-Type is {ct:?}; parsing as SDP anyway",
                    self.opts.label
                );
            }
        }
        let sdp = sdp::parse(resp.body()).map_err(SessionError::Sdp)?;
        let base = rurl::base_url(
            &url,
            header_str(&resp, &headers::CONTENT_BASE),
            header_str(&resp, &headers::CONTENT_LOCATION),
        );
        let track = sdp.first_video().ok_or_else(|| {
            let found: Vec<String> = sdp
                .media
                .iter()
                .map(|m| {
                    let names: Vec<&str> =
                        m.formats.iter().map(|f| f.encoding_name.as_str()).collect();
                    format!("{} {}", m.kind, names.join("/"))
                })
                .collect();
            SessionError::NoVideoTrack(if found.is_empty() {
                "no media at all".into()
            } else {
                found.join(", ")
            })
        })?;
        let session_base = match sdp.session_control.as_deref() {
            Some(c) if c != "*" => rurl::resolve_control(&base, Some(c)),
            _ => base.clone(),
        };
        let control = rurl::resolve_control(&session_base, track.media.control.as_deref());
        let codec = track.codec;
        let payload_type = track.format.payload_type;
        let clock_rate = track.format.clock_rate;
        let depacketizer = media::new_depacketizer(
            codec,
            track.format.fmtp.as_deref(),
            self.opts.max_frame_bytes,
        );
        log::debug!(
            "{}: {codec} track, payload type {payload_type}, control {control}",
            self.opts.label
        );
        self.rx.clock = TimestampUnwrapper::new(clock_rate);
        if let Some(p) = depacketizer.params() {
            status.set_params(p);
        }

        self.setup(&control, payload_type, clock_rate, depacketizer, status)
            .await?;

        // PLAY the aggregate URL when the SDP has a session-level control,
        // else the track itself (what servers with one track expect).
        let play_url = if sdp.session_control.is_some() {
            session_base
        } else {
            control
        };
        // From PLAY on, data flows: stray bytes between frames are skipped.
        self.conn.resync = true;
        let resp = match self
            .request(
                Method::Play,
                &play_url,
                &[(headers::RANGE, "npt=0.000-")],
                status,
            )
            .await?
        {
            Reply::Redirect(_) => {
                return Err(SessionError::Protocol("redirect in answer to PLAY".into()));
            }
            Reply::Ok(r) => r,
        };
        // Quirk: bogus RTP-Info (seq=0, unparseable rtptime) is common; we
        // take sequence numbers and timestamps from the packets themselves.
        if let Some(info) = header_str(&resp, &headers::RTP_INFO) {
            log::debug!("{}: RTP-Info {info} (not used)", self.opts.label);
        }
        self.rx.last_packet_at = Instant::now();
        self.rx.last_frame_at = Instant::now();
        log::info!(
            "{}: playing {codec} over {}",
            self.opts.label,
            self.opts.transport.name()
        );
        Ok(None)
    }

    async fn setup(
        &mut self,
        control: &Url,
        payload_type: u8,
        clock_rate: u32,
        depacketizer: Box<dyn Depacketizer + Send>,
        status: &StreamStatus,
    ) -> Result<(), SessionError> {
        let (transport, udp) = match self.opts.transport {
            Transport::Tcp => ("RTP/AVP/TCP;unicast;interleaved=0-1".to_owned(), None),
            Transport::Udp => {
                let local = self
                    .conn
                    .local_addr()
                    .map_err(|e| SessionError::Connect(e.to_string()))?;
                let peer = self
                    .conn
                    .peer_addr()
                    .map_err(|e| SessionError::Connect(e.to_string()))?;
                let (rtp, rtcp, port) = bind_udp_pair(local.ip())
                    .map_err(|e| SessionError::Connect(format!("cannot bind UDP ports: {e}")))?;
                let udp = UdpPair {
                    rtp,
                    rtcp,
                    server_ip: peer.ip(),
                    rtp_buf: vec![0; 65536].into_boxed_slice(),
                    rtcp_buf: vec![0; 2048].into_boxed_slice(),
                    reorder: ReorderBuffer::new(REORDER_SLOTS, UDP_SLOT_BYTES),
                };
                (
                    format!("RTP/AVP;unicast;client_port={}-{}", port, port + 1),
                    Some(udp),
                )
            }
        };
        let resp = match self
            .request(
                Method::Setup,
                control,
                &[(headers::TRANSPORT, transport.as_str())],
                status,
            )
            .await?
        {
            Reply::Redirect(_) => {
                return Err(SessionError::Protocol("redirect in answer to SETUP".into()))
            }
            Reply::Ok(r) => r,
        };
        let (id, timeout) = header_str(&resp, &headers::SESSION)
            .and_then(parse_session_header)
            .ok_or_else(|| SessionError::Protocol("SETUP answer has no Session header".into()))?;
        // Quirk: a session id that changes between SETUPs; the newest wins.
        if let Some(old) = &self.session_id {
            if *old != id {
                log::debug!("{}: session id changed from {old} to {id}", self.opts.label);
            }
        }
        self.session_id = Some(id);
        self.session_timeout = timeout.unwrap_or(DEFAULT_SESSION_TIMEOUT);
        let mut rtp_channel = 0;
        let mut rtcp_channel = 1;
        if let Some(t) = header_str(&resp, &headers::TRANSPORT) {
            let t = parse_transport(t);
            if self.opts.transport == Transport::Tcp {
                // Quirk: servers may assign other channels than we asked for.
                if let Some((a, b)) = t.interleaved {
                    rtp_channel = a;
                    rtcp_channel = b;
                }
                if t.udp {
                    return Err(SessionError::Protocol(
                        "asked for RTP over TCP, the camera answered with UDP".into(),
                    ));
                }
            }
            if let Some(ssrc) = t.ssrc {
                self.rx.ssrc = Some(ssrc);
            }
        }
        self.udp = udp;
        self.track = Some(Track {
            rtp_channel,
            rtcp_channel,
            payload_type,
            clock_rate,
            depacketizer,
        });
        Ok(())
    }

    /// Sends a request and waits for its answer, handling authentication
    /// challenges and redirects. Non-2xx answers are errors.
    async fn request(
        &mut self,
        method: Method,
        url: &Url,
        extra: &[(headers::HeaderName, &str)],
        status: &StreamStatus,
    ) -> Result<Reply, SessionError> {
        let name = method_name(&method);
        for _ in 0..MAX_AUTH_ATTEMPTS {
            let cseq = self.send_request(method.clone(), url, extra).await?;
            let resp = self.wait_response(cseq, name, status).await?;
            let code = u16::from(resp.status());
            if code == 401 {
                // rtsp-types joins repeated WWW-Authenticate headers with
                // ", "; the authenticator parses such a list whole.
                let challenges = header_str(&resp, &headers::WWW_AUTHENTICATE).unwrap_or("");
                self.auth
                    .on_unauthorized(&[challenges])
                    .map_err(SessionError::Auth)?;
                continue;
            }
            if (300..400).contains(&code) {
                if let Some(loc) = header_str(&resp, &headers::LOCATION) {
                    let to = Url::parse(loc.trim())
                        .or_else(|_| url.join(loc.trim()))
                        .map_err(|_| {
                            SessionError::Protocol(format!("bad redirect Location {loc:?}"))
                        })?;
                    return Ok(Reply::Redirect(to));
                }
            }
            if !(200..300).contains(&code) {
                return Err(SessionError::Status {
                    method: name,
                    status: code,
                    reason: resp.reason_phrase().to_owned(),
                });
            }
            return Ok(Reply::Ok(resp));
        }
        Err(SessionError::Auth(AuthError::Rejected))
    }

    async fn send_request(
        &mut self,
        method: Method,
        url: &Url,
        extra: &[(headers::HeaderName, &str)],
    ) -> Result<u32, SessionError> {
        self.cseq = self.cseq.wrapping_add(1);
        let name = method_name(&method);
        let mut b = Request::builder(method, Version::V1_0)
            .request_uri(url.clone())
            .header(headers::CSEQ, self.cseq.to_string())
            .header(headers::USER_AGENT, USER_AGENT);
        if let Some(id) = &self.session_id {
            b = b.header(headers::SESSION, id.as_str());
        }
        if let Some(a) = self.auth.authorization(name, url.as_str()) {
            b = b.header(headers::AUTHORIZATION, a);
        }
        for (h, v) in extra {
            b = b.header(h.clone(), *v);
        }
        let req = b.build(Vec::<u8>::new());
        let mut bytes = Vec::with_capacity(256);
        req.write(&mut bytes)
            .map_err(|e| SessionError::Protocol(format!("cannot encode request: {e:?}")))?;
        self.conn
            .send(&bytes)
            .await
            .map_err(|e| SessionError::Conn(ConnError::Io(e)))?;
        log::trace!("{}: sent {name} CSeq {}", self.opts.label, self.cseq);
        Ok(self.cseq)
    }

    /// Waits for the answer with `cseq`, handling whatever else arrives
    /// meanwhile (interleaved data, requests from the server).
    async fn wait_response(
        &mut self,
        cseq: u32,
        what: &'static str,
        status: &StreamStatus,
    ) -> Result<Response<Vec<u8>>, SessionError> {
        let deadline = Instant::now() + self.opts.request_timeout;
        loop {
            let next = future::or(async { Some(self.conn.next().await) }, async {
                Timer::at(deadline).await;
                None
            })
            .await;
            let incoming = next.ok_or(SessionError::Timeout(what))??;
            match incoming {
                Incoming::Response(resp) => {
                    match header_str(&resp, &headers::CSEQ).map(|v| v.trim().parse::<u32>()) {
                        Some(Ok(n)) if n == cseq => return Ok(resp),
                        // Quirk: answers without CSeq. We have one request
                        // outstanding at this point, so it must be ours.
                        None => return Ok(resp),
                        _ => log::debug!(
                            "{}: ignoring a late answer (CSeq mismatch)",
                            self.opts.label
                        ),
                    }
                }
                Incoming::Request(req) => self.answer(&req).await?,
                // Quirk: RTP arriving before the PLAY response.
                Incoming::Data { channel, payload } => match &mut self.track {
                    Some(track) => self
                        .rx
                        .on_interleaved(track, channel, payload, status, None),
                    None => status.count_ignored(),
                },
            }
        }
    }

    /// Receives over UDP until failure or stop; keeps the session alive
    /// meanwhile. The TCP connection carries only RTSP messages then.
    async fn stream_udp(
        &mut self,
        status: &StreamStatus,
        sink: &mut dyn FrameSink,
        stop: &StopToken,
        memory: &mut SessionMemory,
    ) -> Result<(), SessionError> {
        let keepalive_every = self.keepalive_every();
        let mut next_keepalive = Instant::now() + keepalive_every;
        // When the UDP reorder window started waiting for a missing packet.
        let mut gap_since: Option<Instant> = None;
        // No async-io timer while streaming (see `daemon::ticker`): deadlines
        // are checked on ticks, and the stop future is created once, so the
        // steady state allocates nothing.
        let mut ticks =
            Ticks::subscribe().map_err(|e| SessionError::Connect(format!("ticker: {e}")))?;
        let mut stopped = std::pin::pin!(stop.stopped());
        // Events handled since the ticks and the stop request were last
        // looked at first.
        let mut since_timers: u32 = 0;
        let result = loop {
            let Some(track) = self.track.as_mut() else {
                break Err(SessionError::Protocol("playing without a track".into()));
            };
            let conn = &mut self.conn;
            let rx = &mut self.rx;
            let udp_pair = &mut self.udp;
            let ev = {
                let tcp = async {
                    match conn.next().await {
                        Err(e) => Event::Failed(e.into()),
                        Ok(Incoming::Data { channel, payload }) => {
                            rx.on_interleaved(track, channel, payload, status, Some(&mut *sink));
                            Event::Handled
                        }
                        Ok(Incoming::Response(r)) => Event::Response(r),
                        Ok(Incoming::Request(r)) => Event::Request(r),
                    }
                };
                let udp = async {
                    match udp_pair {
                        None => future::pending().await,
                        Some(u) => {
                            let UdpPair {
                                rtp,
                                rtcp,
                                rtp_buf,
                                rtcp_buf,
                                ..
                            } = u;
                            future::or(
                                async { Event::UdpRtp(rtp.recv_from(rtp_buf).await) },
                                async { Event::UdpRtcp(rtcp.recv_from(rtcp_buf).await) },
                            )
                            .await
                        }
                    }
                };
                let timers = async {
                    future::or(
                        async {
                            stopped.as_mut().await;
                            Event::Stop
                        },
                        async {
                            match ticks.next().await {
                                Ok(()) => Event::Tick,
                                Err(e) => {
                                    Event::Failed(SessionError::Connect(format!("ticker: {e}")))
                                }
                            }
                        },
                    )
                    .await
                };
                // The packets first: while the connection has buffered
                // data, polling the tick socket too would cost a system
                // call per packet (a read that finds nothing). Ticks and
                // the stop request are looked at whenever the camera's
                // data runs dry, and at least every `TIMERS_EVERY` events.
                let timers_first = since_timers >= TIMERS_EVERY;
                let mut packets = std::pin::pin!(future::or(tcp, udp));
                let mut timers = std::pin::pin!(timers);
                future::poll_fn(|cx| {
                    if timers_first {
                        if let Poll::Ready(ev) = timers.as_mut().poll(cx) {
                            return Poll::Ready(ev);
                        }
                    }
                    if let Poll::Ready(ev) = packets.as_mut().poll(cx) {
                        return Poll::Ready(ev);
                    }
                    timers.as_mut().poll(cx)
                })
                .await
            };
            since_timers = match ev {
                Event::Handled | Event::UdpRtp(_) | Event::UdpRtcp(_) => since_timers + 1,
                _ => 0,
            };
            match ev {
                Event::Handled => {}
                Event::Stop => break Ok(()),
                Event::Failed(e) => break Err(e),
                Event::Tick => {
                    let now = Instant::now();
                    if gap_since.is_some_and(|t| now >= t + REORDER_WAIT) {
                        if let (Some(track), Some(udp)) = (self.track.as_mut(), self.udp.as_mut()) {
                            self.rx.flush_udp_gap(track, udp, status, sink);
                        }
                        gap_since = None;
                    }
                    if now >= self.rx.last_packet_at + self.opts.data_timeout {
                        break Err(SessionError::NoData(self.opts.data_timeout));
                    }
                    if let Some(e) = self.rx.not_video(now, self.opts.data_timeout) {
                        break Err(e);
                    }
                    if now >= next_keepalive {
                        if let Err(e) = self.keep_alive().await {
                            break Err(e);
                        }
                        next_keepalive = now + keepalive_every;
                    }
                }
                Event::Response(resp) => self.on_streaming_response(&resp),
                Event::Request(req) => {
                    if let Err(e) = self.answer(&req).await {
                        break Err(e);
                    }
                }
                Event::UdpRtp(Err(e)) | Event::UdpRtcp(Err(e)) => {
                    break Err(SessionError::Connect(format!("UDP receive failed: {e}")));
                }
                Event::UdpRtp(Ok((n, from))) => {
                    if let (Some(track), Some(udp)) = (self.track.as_mut(), self.udp.as_mut()) {
                        self.rx.on_udp_rtp(track, udp, n, from, status, sink);
                        if !udp.reorder.is_waiting() {
                            gap_since = None;
                        } else if gap_since.is_none() {
                            gap_since = Some(Instant::now());
                        }
                    }
                }
                Event::UdpRtcp(Ok((n, from))) => {
                    if let Some(udp) = self.udp.as_mut() {
                        self.rx.on_udp_rtcp(udp, n, from, status);
                    }
                }
            }
            if self.rx.bye {
                break Err(SessionError::Bye);
            }
        };
        self.end(result, memory).await
    }

    /// After streaming: TEARDOWN on stop, or release after a failure.
    async fn end(
        &mut self,
        result: Result<(), SessionError>,
        memory: &mut SessionMemory,
    ) -> Result<(), SessionError> {
        match &result {
            Ok(()) => {
                self.teardown().await;
            }
            Err(e) => {
                log::debug!("{}: session ended: {e}", self.opts.label);
                self.release(e, memory).await;
            }
        }
        result
    }

    /// Half the session timeout, within 1 s and [`MAX_KEEPALIVE_INTERVAL`].
    fn keepalive_every(&self) -> Duration {
        (self.session_timeout / 2).clamp(Duration::from_secs(1), MAX_KEEPALIVE_INTERVAL)
    }

    /// Receives over TCP (interleaved) until failure or stop. The session
    /// is lent to the ingest thread (`rtsp::ingest`), which receives the
    /// video of every TCP session on one clock; it comes back here only
    /// for what is not video: a keep-alive to send, an RTSP message from
    /// the camera, stop, or failure. This thread sleeps meanwhile.
    async fn stream_tcp(
        mut self: Box<Self>,
        status: &Arc<StreamStatus>,
        sink: &mut Box<dyn FrameSink>,
        stop: &StopToken,
        memory: &mut SessionMemory,
    ) -> Result<(), SessionError> {
        if let Err(e) = self.conn.set_read_low_water(PACED_LOW_WATER) {
            // The ingest thread then wakes per packet for this stream.
            log::debug!("{}: SO_RCVLOWAT: {e}", self.opts.label);
        }
        let keepalive_every = self.keepalive_every();
        let mut keepalive_at = Instant::now() + keepalive_every;
        let (back_tx, back_rx) = smol::channel::bounded::<Box<Lease>>(1);
        let result = loop {
            let lease = Box::new(Lease {
                session: self,
                // The recorder's sink goes along; a placeholder stays.
                sink: std::mem::replace(sink, Box::new(DiscardSink)),
                status: status.clone(),
                stop: stop.clone(),
                keepalive_at,
                ended: None,
                back: back_tx.clone(),
            });
            ingest::lend(lease);
            let Ok(lease) = back_rx.recv().await else {
                // Cannot happen: the ingest thread gives every job back,
                // even one that panicked or that it could not take.
                return Err(SessionError::Connect(
                    "the ingest thread lost the session".into(),
                ));
            };
            let Lease {
                session,
                sink: s,
                ended,
                ..
            } = *lease;
            self = session;
            *sink = s;
            match ended {
                None => {
                    break Err(SessionError::Protocol(
                        "session returned without a reason".into(),
                    ))
                }
                Some(LeaseEnd::Stop) => break Ok(()),
                Some(LeaseEnd::Failed(e)) => break Err(e),
                Some(LeaseEnd::KeepaliveDue) => {
                    if let Err(e) = self.keep_alive().await {
                        break Err(e);
                    }
                    keepalive_at = Instant::now() + keepalive_every;
                }
                Some(LeaseEnd::Response(resp)) => self.on_streaming_response(&resp),
                Some(LeaseEnd::Request(req)) => {
                    if let Err(e) = self.answer(&req).await {
                        break Err(e);
                    }
                }
            }
        };
        self.end(result, memory).await
    }

    /// Sends a keep-alive and notes its CSeq for the answer.
    async fn keep_alive(&mut self) -> Result<(), SessionError> {
        if self.keepalive_in_flight.is_some() {
            // Quirk: servers that ignore keep-alives; that is fine as long
            // as data flows.
            log::debug!("{}: previous keep-alive unanswered", self.opts.label);
        }
        self.keepalive_in_flight = Some(self.send_keepalive().await?);
        Ok(())
    }

    /// A response while streaming: the keep-alive's answer, or a stale one
    /// (ignored).
    fn on_streaming_response(&mut self, resp: &Response<Vec<u8>>) {
        let cseq = header_str(resp, &headers::CSEQ).and_then(|v| v.trim().parse::<u32>().ok());
        if cseq.is_some() && cseq == self.keepalive_in_flight {
            self.keepalive_in_flight = None;
            self.on_keepalive_answer(resp);
        }
    }

    /// A request from the camera (a keep-alive of its own, mostly),
    /// answered at once.
    async fn answer(&mut self, req: &Request<Vec<u8>>) -> Result<(), SessionError> {
        let reply = reply_to_server(req);
        self.conn
            .send(&reply)
            .await
            .map_err(|e| SessionError::Conn(ConnError::Io(e)))
    }

    async fn send_keepalive(&mut self) -> Result<u32, SessionError> {
        let url = self.presentation_url.clone();
        let method = if self.keepalive_get_parameter {
            Method::GetParameter
        } else {
            Method::Options
        };
        self.send_request(method, &url, &[]).await
    }

    fn on_keepalive_answer(&mut self, resp: &Response<Vec<u8>>) {
        let code = u16::from(resp.status());
        if (200..300).contains(&code) {
            return;
        }
        if code == 401 {
            let challenges = header_str(resp, &headers::WWW_AUTHENTICATE).unwrap_or("");
            // A stale nonce: take the new one for the next keep-alive.
            if let Err(e) = self.auth.on_unauthorized(&[challenges]) {
                log::warn!("{}: keep-alive refused: {e}", self.opts.label);
            }
            return;
        }
        if self.keepalive_get_parameter {
            // Quirk: GET_PARAMETER listed but refused; OPTIONS instead.
            log::info!(
                "{}: camera refused GET_PARAMETER keep-alive ({code}); using OPTIONS",
                self.opts.label
            );
            self.keepalive_get_parameter = false;
        } else {
            log::debug!("{}: keep-alive answered {code}", self.opts.label);
        }
    }

    /// Best effort: tells the camera we are gone, so that it frees the
    /// session at once (cameras allow only a few) and stops sending.
    /// Returns whether the request went out.
    async fn teardown(&mut self) -> bool {
        if self.session_id.is_none() {
            return true;
        }
        let url = self.presentation_url.clone();
        let sent = with_timeout(
            Duration::from_secs(1),
            self.send_request(Method::Teardown, &url, &[]),
        )
        .await;
        self.session_id = None;
        let ok = matches!(sent, Some(Ok(_)));
        if ok {
            log::debug!("{}: sent TEARDOWN", self.opts.label);
        }
        ok
    }

    /// After a failure: TEARDOWN on this connection if it still works,
    /// else leave the session for the next connection to tear down.
    async fn release(&mut self, ended_by: &SessionError, memory: &mut SessionMemory) {
        let Some(id) = self.session_id.clone() else {
            return;
        };
        let dead = matches!(
            ended_by,
            SessionError::Conn(ConnError::Closed | ConnError::Io(_))
        );
        if !dead && self.teardown().await {
            return;
        }
        self.session_id = None;
        memory.stale_session = Some((self.presentation_url.clone(), id));
    }

    /// Tears down a session an earlier connection left behind. Its answer
    /// is not awaited: a late one is ignored like any stale answer.
    async fn teardown_stale(&mut self, url: &Url, id: String) {
        self.session_id = Some(id);
        let sent = self.send_request(Method::Teardown, url, &[]).await;
        self.session_id = None;
        if sent.is_ok() {
            log::debug!(
                "{}: sent TEARDOWN for the session the last connection left",
                self.opts.label
            );
        }
    }
}

enum Reply {
    Ok(Response<Vec<u8>>),
    Redirect(Url),
}

enum Event {
    Handled,
    Stop,
    Tick,
    Failed(SessionError),
    Response(Response<Vec<u8>>),
    Request(Request<Vec<u8>>),
    UdpRtp(std::io::Result<(usize, SocketAddr)>),
    UdpRtcp(std::io::Result<(usize, SocketAddr)>),
}

/// A playing TCP session while the ingest thread has it.
struct Lease {
    session: Box<Session>,
    sink: Box<dyn FrameSink>,
    status: Arc<StreamStatus>,
    stop: StopToken,
    keepalive_at: Instant,
    /// Why it came back.
    ended: Option<LeaseEnd>,
    back: smol::channel::Sender<Box<Lease>>,
}

enum LeaseEnd {
    Stop,
    Failed(SessionError),
    KeepaliveDue,
    Response(Response<Vec<u8>>),
    Request(Request<Vec<u8>>),
}

impl Lease {
    fn end(&mut self, why: LeaseEnd) -> bool {
        self.ended = Some(why);
        true
    }
}

impl ingest::Job for Lease {
    fn fd(&self) -> RawFd {
        self.session.conn.raw_fd()
    }

    fn service(&mut self, tick: bool) -> bool {
        let s = &mut *self.session;
        // Readable, or the tick: the socket may be read again.
        s.conn.rearm();
        // A camera sending faster than it is read gets a bounded turn; the
        // rest is read on its next readiness, after the other cameras.
        for _ in 0..DRAIN_BUDGET {
            let Some(track) = s.track.as_mut() else {
                let e = SessionError::Protocol("playing without a track".into());
                return self.end(LeaseEnd::Failed(e));
            };
            match s.conn.next_now() {
                Err(e) => return self.end(LeaseEnd::Failed(e.into())),
                Ok(Some(Incoming::Data { channel, payload })) => {
                    s.rx.on_interleaved(
                        track,
                        channel,
                        payload,
                        &self.status,
                        Some(&mut *self.sink),
                    );
                }
                Ok(Some(Incoming::Response(r))) => return self.end(LeaseEnd::Response(r)),
                Ok(Some(Incoming::Request(r))) => return self.end(LeaseEnd::Request(r)),
                Ok(None) => break,
            }
        }
        if s.rx.bye {
            return self.end(LeaseEnd::Failed(SessionError::Bye));
        }
        if !tick {
            return false;
        }
        if self.stop.is_stopped() {
            return self.end(LeaseEnd::Stop);
        }
        let now = Instant::now();
        if now >= s.rx.last_packet_at + s.opts.data_timeout {
            let e = SessionError::NoData(s.opts.data_timeout);
            return self.end(LeaseEnd::Failed(e));
        }
        if let Some(e) = s.rx.not_video(now, s.opts.data_timeout) {
            return self.end(LeaseEnd::Failed(e));
        }
        if now >= self.keepalive_at {
            return self.end(LeaseEnd::KeepaliveDue);
        }
        false
    }

    fn fail(&mut self, why: String) {
        self.ended = Some(LeaseEnd::Failed(SessionError::Protocol(why)));
    }

    fn give_back(self: Box<Self>) {
        let back = self.back.clone();
        // Only fails if the stream thread is gone; then so is the session.
        let _ = back.try_send(self);
    }
}

impl Receiver {
    fn new(label: &str) -> Self {
        Receiver {
            label: label.to_owned(),
            seq: SequenceTracker::new(),
            clock: TimestampUnwrapper::new(90_000),
            ssrc: None,
            foreign_ssrc_run: 0,
            last_packet_at: Instant::now(),
            frame_seen: false,
            last_frame_at: Instant::now(),
            dropped_since_frame: 0,
            drops_logged: 0,
            last_sender_report: None,
            params_known: false,
            bye: false,
        }
    }

    /// On a tick: the session's error when packets keep coming but none of
    /// them made a frame for twice the data timeout (garbage, or a codec we
    /// cannot read): the stream is in error, saying so, not `streaming`.
    /// Twice: a camera without parameter sets in its SDP sends them with
    /// its next key frame, which may be many seconds away.
    fn not_video(&mut self, now: Instant, data_timeout: Duration) -> Option<SessionError> {
        if std::mem::take(&mut self.frame_seen) {
            self.last_frame_at = now;
            self.dropped_since_frame = 0;
            return None;
        }
        let timeout = data_timeout * 2;
        (now >= self.last_frame_at + timeout && self.dropped_since_frame > 0)
            .then_some(SessionError::NotVideo(timeout, self.dropped_since_frame))
    }

    fn on_interleaved(
        &mut self,
        track: &mut Track,
        channel: u8,
        payload: &[u8],
        status: &StreamStatus,
        sink: Option<&mut dyn FrameSink>,
    ) {
        if channel == track.rtp_channel {
            self.on_rtp(track, payload, status, sink);
        } else if channel == track.rtcp_channel {
            self.on_rtcp(payload, status);
        } else {
            // Quirk: data on channels we never set up (e.g. a second track
            // the camera sends anyway). Ignored and counted.
            status.count_ignored();
        }
    }

    fn on_udp_rtp(
        &mut self,
        track: &mut Track,
        udp: &mut UdpPair,
        n: usize,
        from: SocketAddr,
        status: &StreamStatus,
        sink: &mut dyn FrameSink,
    ) {
        if from.ip() != udp.server_ip {
            status.count_ignored();
            return;
        }
        let bytes = &udp.rtp_buf[..n.min(udp.rtp_buf.len())];
        if udp.reorder.push(bytes).is_err() {
            status.count_ignored();
            return;
        }
        // Packets come back out in sequence order; the sequence tracker
        // counts what the window gave up on as lost.
        while let Some((pkt, _lost)) = udp.reorder.pop() {
            self.on_rtp(track, pkt, status, Some(&mut *sink));
        }
    }

    /// Gives up on the missing packet the reorder window waits for.
    fn flush_udp_gap(
        &mut self,
        track: &mut Track,
        udp: &mut UdpPair,
        status: &StreamStatus,
        sink: &mut dyn FrameSink,
    ) {
        if let Some((pkt, _lost)) = udp.reorder.pop_forced() {
            self.on_rtp(track, pkt, status, Some(&mut *sink));
        }
        while let Some((pkt, _lost)) = udp.reorder.pop() {
            self.on_rtp(track, pkt, status, Some(&mut *sink));
        }
    }

    fn on_udp_rtcp(
        &mut self,
        udp: &mut UdpPair,
        n: usize,
        from: SocketAddr,
        status: &StreamStatus,
    ) {
        if from.ip() != udp.server_ip {
            status.count_ignored();
            return;
        }
        let bytes = &udp.rtcp_buf[..n.min(udp.rtcp_buf.len())];
        self.on_rtcp(bytes, status);
    }

    fn on_rtcp(&mut self, bytes: &[u8], status: &StreamStatus) {
        if rtcp::is_bye(bytes, self.ssrc) {
            log::info!("{}: the camera sent RTCP BYE: its stream ended", self.label);
            self.bye = true;
        }
        match rtcp::sender_report(bytes) {
            Ok(Some(sr)) => {
                if self.ssrc.is_some_and(|s| s != sr.ssrc) {
                    // Quirk: RTCP from an SSRC that is not our video's.
                    status.count_ignored();
                    return;
                }
                if self.last_sender_report.is_none() {
                    log::debug!("{}: first RTCP sender report", self.label);
                }
                self.last_sender_report = Some(sr);
            }
            Ok(None) => {}
            Err(e) => {
                log::debug!("{}: {e}", self.label);
                status.count_ignored();
            }
        }
    }

    fn on_rtp(
        &mut self,
        track: &mut Track,
        bytes: &[u8],
        status: &StreamStatus,
        mut sink: Option<&mut dyn FrameSink>,
    ) {
        let pkt = match RtpPacket::parse(bytes) {
            Ok(p) => p,
            Err(e) => {
                log::debug!("{}: {e}", self.label);
                status.count_ignored();
                return;
            }
        };
        if pkt.payload_type != track.payload_type {
            status.count_ignored();
            return;
        }
        match self.ssrc {
            None => self.ssrc = Some(pkt.ssrc),
            Some(s) if s != pkt.ssrc => {
                // Quirk: a stale stream still arriving after a reconnect, or
                // a camera that restarted its encoder. Ignore strangers, but
                // follow a new SSRC that persists.
                self.foreign_ssrc_run += 1;
                if self.foreign_ssrc_run < 25 {
                    status.count_ignored();
                    return;
                }
                log::warn!(
                    "{}: camera switched RTP SSRC {s:08x} -> {:08x}",
                    self.label,
                    pkt.ssrc
                );
                self.ssrc = Some(pkt.ssrc);
                self.seq = SequenceTracker::new();
                self.clock = TimestampUnwrapper::new(track.clock_rate);
                status.count_discontinuity();
            }
            Some(_) => self.foreign_ssrc_run = 0,
        }
        let lost = match self.seq.observe(pkt.sequence) {
            SeqResult::Next { lost } => lost,
            SeqResult::Stale => {
                status.count_ignored();
                return;
            }
        };
        self.last_packet_at = Instant::now();
        status.count_packet();
        if lost > 0 {
            status.count_lost(u64::from(lost));
        }
        let ts = self.clock.unwrap(pkt.timestamp);
        if ts.jumped {
            // Quirk: camera clocks jump (a camera setting its clock, VLC
            // looping a file). The unwrapper rebases the media time so the
            // stream reads on; the recording goes on too, and the writer's
            // timeline places the frames by the wall clock (docs/storage.md,
            // "The timeline"). Ending the recording here would drop the
            // frames up to the next key frame.
            log::info!(
                "{}: RTP timestamp jumped; the wall clock places the frames",
                self.label
            );
            status.count_discontinuity();
        }
        let label = &self.label;
        let params_known = &mut self.params_known;
        let frame_seen = &mut self.frame_seen;
        let mut emit = |f: Frame<'_>| {
            *frame_seen = true;
            if f.params_changed || !*params_known {
                *params_known = true;
                status.set_params(f.params);
                log::info!(
                    "{label}: {} {}x{}{}",
                    f.params.codec,
                    f.params.width,
                    f.params.height,
                    f.params
                        .fps_milli
                        .map(|v| format!(" {:.2} fps", f64::from(v) / 1000.0))
                        .unwrap_or_default()
                );
            }
            status.count_frame(f.data.len(), f.key);
            if let Some(s) = sink.as_deref_mut() {
                s.frame(&f);
            }
        };
        if let Err(e) = track
            .depacketizer
            .push(&pkt, ts.ts_90k, lost > 0, &mut emit)
        {
            status.count_dropped();
            self.dropped_since_frame += 1;
            self.drops_logged += 1;
            // The first few at warn, then every thousandth: a camera that
            // sends garbage at 30 fps must not flood the log.
            if self.drops_logged <= 5 || self.drops_logged.is_multiple_of(1000) {
                log::warn!(
                    "{}: dropped: {e} ({} so far)",
                    self.label,
                    self.drops_logged
                );
            } else {
                log::debug!("{}: dropped: {e}", self.label);
            }
        }
    }
}

/// An answer to a request the server sent us (some send GET_PARAMETER or
/// OPTIONS as their own keep-alive).
fn reply_to_server(req: &Request<Vec<u8>>) -> Vec<u8> {
    let cseq = req
        .header(&headers::CSEQ)
        .map(|v| v.as_str().trim().to_owned())
        .unwrap_or_else(|| "0".into());
    let status = match req.method() {
        Method::Options | Method::GetParameter | Method::SetParameter => StatusCode::Ok,
        _ => StatusCode::NotImplemented,
    };
    let resp = Response::builder(Version::V1_0, status)
        .header(headers::CSEQ, cseq)
        .build(Vec::<u8>::new());
    let mut out = Vec::with_capacity(64);
    // Writing to a Vec cannot fail.
    let _ = resp.write(&mut out);
    out
}

fn method_name(m: &Method) -> &'static str {
    match m {
        Method::Options => "OPTIONS",
        Method::Describe => "DESCRIBE",
        Method::Setup => "SETUP",
        Method::Play => "PLAY",
        Method::Teardown => "TEARDOWN",
        Method::GetParameter => "GET_PARAMETER",
        Method::SetParameter => "SET_PARAMETER",
        _ => "request",
    }
}

fn header_str<'a>(resp: &'a Response<Vec<u8>>, name: &headers::HeaderName) -> Option<&'a str> {
    resp.header(name).map(|v| v.as_str())
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

/// `Session: <id>[;timeout=<seconds>]`.
/// Quirk: trailing semicolons and whitespace are tolerated.
pub fn parse_session_header(v: &str) -> Option<(String, Option<Duration>)> {
    let mut parts = v.split(';');
    let id = parts.next()?.trim();
    if id.is_empty() {
        return None;
    }
    let mut timeout = None;
    for p in parts {
        if let Some((k, val)) = p.split_once('=') {
            if k.trim().eq_ignore_ascii_case("timeout") {
                timeout = val
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|&s| s > 0)
                    .map(Duration::from_secs);
            }
        }
    }
    Some((id.to_owned(), timeout))
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct TransportReply {
    pub interleaved: Option<(u8, u8)>,
    pub ssrc: Option<u32>,
    pub udp: bool,
}

/// The parts of a SETUP answer's Transport header we use.
pub fn parse_transport(v: &str) -> TransportReply {
    let mut out = TransportReply::default();
    // Several transports may be listed, comma-separated; the first counts.
    let first = v.split(',').next().unwrap_or("");
    for (i, p) in first.split(';').enumerate() {
        let p = p.trim();
        if i == 0 {
            out.udp = p.eq_ignore_ascii_case("RTP/AVP") || p.eq_ignore_ascii_case("RTP/AVP/UDP");
            continue;
        }
        let (k, val) = p.split_once('=').unwrap_or((p, ""));
        match k.trim().to_ascii_lowercase().as_str() {
            "interleaved" => {
                let mut it = val.split('-').map(|x| x.trim().parse::<u8>());
                if let Some(Ok(a)) = it.next() {
                    let b = match it.next() {
                        Some(Ok(b)) => b,
                        _ => a.wrapping_add(1),
                    };
                    out.interleaved = Some((a, b));
                }
            }
            "ssrc" => out.ssrc = u32::from_str_radix(val.trim(), 16).ok(),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_header_forms() {
        assert_eq!(
            parse_session_header("12345678;timeout=60"),
            Some(("12345678".into(), Some(Duration::from_secs(60))))
        );
        // Quirk: trailing semicolon and whitespace.
        assert_eq!(parse_session_header("abc; "), Some(("abc".into(), None)));
        assert_eq!(
            parse_session_header(" abc ;timeout = 30;"),
            Some(("abc".into(), Some(Duration::from_secs(30))))
        );
        assert_eq!(parse_session_header(";timeout=3"), None);
        assert_eq!(
            parse_session_header("x;timeout=bogus"),
            Some(("x".into(), None))
        );
    }

    #[test]
    fn transport_reply_forms() {
        let t = parse_transport("RTP/AVP/TCP;unicast;interleaved=2-3;ssrc=DEADBEEF;mode=\"PLAY\"");
        assert_eq!(t.interleaved, Some((2, 3)));
        assert_eq!(t.ssrc, Some(0xdead_beef));
        assert!(!t.udp);
        let t = parse_transport("RTP/AVP;unicast;client_port=5000-5001;server_port=6970-6971;");
        assert!(t.udp);
        assert_eq!(t.interleaved, None);
        assert_eq!(
            parse_transport("RTP/AVP/TCP;interleaved=4").interleaved,
            Some((4, 5))
        );
        assert_eq!(parse_transport("garbage;;;=").interleaved, None);
    }

    #[test]
    fn server_requests_get_answers() {
        let req = Request::builder(Method::GetParameter, Version::V1_0)
            .request_uri(Url::parse("rtsp://h/").unwrap())
            .header(headers::CSEQ, "7 ")
            .build(Vec::new());
        let out = String::from_utf8(reply_to_server(&req)).unwrap();
        assert!(out.starts_with("RTSP/1.0 200"), "{out}");
        assert!(out.contains("CSeq: 7\r\n"), "{out}");
        let req = Request::builder(Method::Announce, Version::V1_0)
            .request_uri(Url::parse("rtsp://h/").unwrap())
            .build(Vec::new());
        let out = String::from_utf8(reply_to_server(&req)).unwrap();
        assert!(out.starts_with("RTSP/1.0 501"), "{out}");
    }
}
