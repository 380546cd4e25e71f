//! The RTSP server of the simulated camera: one thread, one smol
//! `LocalExecutor`, one task per control connection and one per UDP
//! session, so hundreds of streams cost a few kilobytes each.
//!
//! Every task is a loop around "do what is due now, flush what can be
//! written without blocking, then sleep until the socket or the next
//! deadline wakes us". Frames are scheduled on a grid that starts when the
//! server does (tick n at epoch + n/fps), so the pace never drifts, and all
//! sessions of one frame rate wake up together: one reactor wake-up serves
//! them all, instead of one per session per frame. A session's frame 0 is
//! the first tick after PLAY. The RTP timestamp of frame k is
//! base + k * 90000/fps whether the frame was sent or dropped, so the clip
//! loops with continuous timestamps.

use super::auth::Authenticator;
use super::clip::{clips_at_bitrate, Clip, ClipFrame, BITRATE_RANGE};
use super::faults::Faults;
use super::packetize::{goodbye, sender_report, FrameRef, Packetizer, RtpState, MAX_PACKET};
use crate::stream::Codec;
use async_io::{Async, Timer};
use futures_lite::future;
use rtsp_types::{headers, HeaderName, Message, Method, Response, StatusCode, Url, Version};
use smol::{channel, LocalExecutor};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Largest RTSP request accepted; a connection sending more is closed.
pub(crate) const MAX_REQUEST: usize = 64 * 1024;
/// Advertised in `Session: ...;timeout=60`; a UDP session without any
/// keep-alive for this long ends.
pub(crate) const SESSION_TIMEOUT: Duration = Duration::from_secs(60);
/// A control connection with no request and nothing playing over it is
/// closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A TCP client that has not accepted a single byte for this long is gone.
const STALL_TIMEOUT: Duration = Duration::from_secs(20);
const SR_INTERVAL: Duration = Duration::from_secs(5);
const MAX_CONNECTIONS: u32 = 1024;
const MAX_SESSIONS: u32 = 1024;
/// Requests are not read while this much control output is unsent, so a
/// client that pipelines requests without reading replies cannot make the
/// server buffer without bound.
const CTRL_SOFT_LIMIT: usize = 8 * 1024;
/// SO_SNDBUF of a control connection (Linux doubles it for bookkeeping):
/// about half a second of the clips' bitrate.
const SEND_BUFFER: libc::c_int = 32 * 1024;
/// Bytes of interleaved packets handed to one write call: a few packets
/// per system call instead of one, for 8 KiB per playing TCP session.
const WRITE_BATCH: usize = 8 * 1024;
const CNAME: &[u8] = b"vigil-camera";
/// How soon a sleeping task notices a fault it was told to cause.
const FAULT_CHECK: Duration = Duration::from_millis(200);
const SERVER: &str = "Vigil simulated camera";
const PUBLIC: &str = "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER, SET_PARAMETER";
/// Seconds from 1900 (NTP epoch) to 1970 (Unix epoch).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// A random number that differs on every call: SSRCs, initial sequence
/// numbers and timestamps, session ids, the Digest nonce. Not
/// cryptographic, which a loopback test camera does not need.
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(COUNTER.fetch_add(1, Ordering::Relaxed));
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.write_u128(nanos);
    h.finish()
}

/// State shared by every task of one server.
struct Shared {
    clips: &'static [Clip],
    auth: Option<Authenticator>,
    /// To spawn UDP session tasks. Weak, so that the tasks (which hold the
    /// `Shared`) do not keep their own executor alive.
    executor: Weak<LocalExecutor<'static>>,
    /// When the server started: the origin of every session's frame grid.
    epoch: Instant,
    faults: Faults,
    /// [`SESSION_TIMEOUT`], shorter in tests.
    session_timeout: Duration,
    connections: Cell<u32>,
    sessions: Cell<u32>,
    udp_sessions: RefCell<HashMap<String, UdpHandle>>,
}

/// Counts a connection or session for its lifetime.
struct Slot {
    shared: Rc<Shared>,
    session: bool,
}

impl Slot {
    fn take(shared: &Rc<Shared>, session: bool) -> Option<Slot> {
        let (count, limit) = if session {
            (&shared.sessions, MAX_SESSIONS)
        } else {
            (&shared.connections, MAX_CONNECTIONS)
        };
        if count.get() >= limit {
            return None;
        }
        count.set(count.get() + 1);
        Some(Slot {
            shared: shared.clone(),
            session,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let count = if self.session {
            &self.shared.sessions
        } else {
            &self.shared.connections
        };
        count.set(count.get().saturating_sub(1));
    }
}

/// Runs the server until `stop` is closed. Called on the server thread.
pub(crate) fn run(
    listener: Async<TcpListener>,
    clips: &'static [Clip],
    auth: Option<Authenticator>,
    session_timeout: Duration,
    faults: Faults,
    stop: channel::Receiver<()>,
) {
    let executor = Rc::new(LocalExecutor::new());
    let shared = Rc::new(Shared {
        clips,
        auth,
        executor: Rc::downgrade(&executor),
        epoch: Instant::now(),
        faults,
        session_timeout,
        connections: Cell::new(0),
        sessions: Cell::new(0),
        udp_sessions: RefCell::new(HashMap::new()),
    });
    // The accept loop is a task of its own: as part of the future passed
    // to run() it would be polled on every wake-up of any task, and
    // async-io's accept retries the system call on every poll.
    executor.spawn(accept_loop(listener, shared)).detach();
    let main = async {
        // Closed (the sender dropped) or signalled: either way, stop.
        let _ = stop.recv().await;
    };
    // async-io's block_on: this thread drives the reactor itself, rather
    // than being woken by async-io's fallback thread for every event.
    async_io::block_on(executor.run(main));
    // Dropping the executor cancels every task, closing their sockets.
    drop(executor);
}

async fn accept_loop(listener: Async<TcpListener>, shared: Rc<Shared>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of descriptors and the like: back off instead of
                // spinning on a listener that stays readable.
                log::warn!("camera: accept: {e}");
                Timer::after(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(slot) = Slot::take(&shared, false) else {
            log::warn!("camera: {MAX_CONNECTIONS} connections open, refusing {peer}");
            continue;
        };
        let Some(executor) = shared.executor.upgrade() else {
            return;
        };
        let _ = stream.get_ref().set_nodelay(true);
        limit_send_buffer(stream.get_ref());
        let conn = Conn::new(shared.clone(), stream, peer);
        executor
            .spawn(async move {
                let _slot = slot;
                conn.serve().await;
            })
            .detach();
    }
}

/// Caps the kernel's send buffer of a connection. Linux grows it up to
/// megabytes on loopback, which would hide a client that cannot keep up
/// for tens of seconds (and cost that much kernel memory per stream in a
/// large benchmark); a camera has small buffers and drops frames instead.
fn limit_send_buffer(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    // Failure only leaves the default in place.
    let _ = crate::sockopt::set(stream.as_raw_fd(), libc::SO_SNDBUF, SEND_BUFFER);
}

/// A timer that is only re-registered with the reactor when its deadline
/// changes (each registration costs the reactor a wake-up).
struct ArmedTimer {
    timer: Timer,
    armed: Option<Instant>,
}

impl ArmedTimer {
    fn new() -> Self {
        ArmedTimer {
            timer: Timer::never(),
            armed: None,
        }
    }

    fn set_at(&mut self, deadline: Instant, now: Instant) {
        // A deadline still in the future has not fired yet, so the timer is
        // still armed for it; one in the past may have fired: re-arm.
        if self.armed != Some(deadline) || deadline <= now {
            self.timer.set_at(deadline);
            self.armed = Some(deadline);
        }
    }
}

/// Sleeps until `stream` is readable (if `read`), writable (if `write`) or
/// `timer` fires; true if it is readable. The caller then retries
/// everything else.
async fn wait_io<T>(stream: &Async<T>, read: bool, write: bool, timer: &mut Timer) -> bool {
    let readable = async {
        if read {
            let _ = stream.readable().await;
            true
        } else {
            future::pending().await
        }
    };
    let writable = async {
        if write {
            let _ = stream.writable().await;
            false
        } else {
            future::pending().await
        }
    };
    future::or(
        readable,
        future::or(writable, async {
            timer.await;
            false
        }),
    )
    .await
}

/// One RTP stream being paced out: the clip position, the RTP state and
/// the frame being packetized. Shared by the TCP and UDP transports.
struct Outgoing {
    clip: &'static Clip,
    /// The server's start: the origin of the frame grid.
    epoch: Instant,
    rtp: RtpState,
    /// RTP timestamp of frame 0.
    base_ts: u32,
    play: Option<Playing>,
    faults: Faults,
    /// [`Faults::ends`] when this stream was set up.
    ends: u32,
}

struct Playing {
    /// The grid tick of frame 0.
    first: u64,
    /// Frames since PLAY, across loops of the clip: the next one due.
    next_frame: u64,
    next_sr: Instant,
    /// Set after a dropped frame: send nothing until a key frame, so the
    /// client never gets a frame whose reference it lacks.
    need_key: bool,
    /// The frame being sent and its timestamp.
    cursor: Option<(Packetizer<'static>, u32)>,
    dropped: u32,
}

impl Outgoing {
    fn new(clip: &'static Clip, epoch: Instant, faults: Faults) -> Self {
        let r = random_u64();
        Outgoing {
            clip,
            epoch,
            rtp: RtpState {
                ssrc: r as u32,
                seq: (r >> 32) as u16,
                payload_type: clip.payload_type,
                packets: 0,
                octets: 0,
            },
            base_ts: (random_u64() >> 16) as u32,
            play: None,
            ends: faults.ends(),
            faults,
        }
    }

    fn fps(&self) -> u64 {
        u64::from(self.clip.info.fps.max(1))
    }

    /// When grid tick `tick` is.
    fn tick_time(&self, tick: u64) -> Instant {
        let nanos = u128::from(tick) * 1_000_000_000 / u128::from(self.fps());
        self.epoch + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// When frame `k` (counted from PLAY) is due.
    fn due(&self, first: u64, k: u64) -> Instant {
        self.tick_time(first.saturating_add(k))
    }

    fn timestamp(&self, k: u64) -> u32 {
        self.base_ts
            .wrapping_add((k.wrapping_mul(90_000) / self.fps()) as u32)
            .wrapping_add(self.faults.clock_offset())
    }

    fn start(&mut self, now: Instant) {
        if self.play.is_none() {
            let elapsed = now.saturating_duration_since(self.epoch).as_nanos();
            let tick = (elapsed * u128::from(self.fps())).div_ceil(1_000_000_000);
            let first = u64::try_from(tick).unwrap_or(u64::MAX / 2);
            self.play = Some(Playing {
                first,
                next_frame: 0,
                next_sr: self.tick_time(first) + Duration::from_millis(500),
                need_key: false,
                cursor: None,
                dropped: 0,
            });
        }
    }

    /// `seq` and `rtptime` for RTP-Info: those of the next packet sent.
    fn rtp_info(&self) -> (u16, u32) {
        match &self.play {
            None => (self.rtp.seq, self.base_ts),
            Some(p) => (self.rtp.seq, self.timestamp(p.next_frame)),
        }
    }

    /// The next frame tick. (Sender reports ride on frame ticks rather
    /// than waking the session on their own.)
    fn deadline(&self) -> Option<Instant> {
        let p = self.play.as_ref()?;
        Some(self.due(p.first, p.next_frame))
    }

    /// Starts the frame due now, if any. A frame is dropped (and the stream
    /// waits for the next key frame) when its predecessor is still being
    /// sent (`busy`, or its packets not all produced), or when the next one
    /// is already due too (we fell behind; catch up rather than burst).
    fn on_time(&mut self, now: Instant, busy: bool) {
        let Some(p) = self.play.as_ref() else {
            return;
        };
        let (first, mut k) = (p.first, p.next_frame);
        let mut start_frame = None;
        let mut dropped = 0;
        let mut need_key = p.need_key;
        let busy = busy || p.cursor.is_some();
        let n = self.clip.frames.len() as u64;
        let paused = self.faults.paused(now);
        while n > 0 && self.due(first, k) <= now {
            let frame = &self.clip.frames[(k % n) as usize];
            let late = self.due(first, k + 1) <= now;
            if paused || late || busy || (need_key && !frame.is_key()) {
                dropped += 1;
                need_key = true;
            } else {
                need_key = false;
                start_frame = Some((frame_ref(self.clip, frame), self.timestamp(k)));
            }
            k += 1;
        }
        if let Some(p) = self.play.as_mut() {
            p.next_frame = k;
            p.dropped = p.dropped.wrapping_add(dropped);
            p.need_key = need_key;
            if let Some((f, ts)) = start_frame {
                self.faults.sending(now);
                p.cursor = Some((Packetizer::new(f), ts));
            }
        }
    }

    /// The next packet of the frame being sent.
    fn next_packet(&mut self, out: &mut [u8; MAX_PACKET]) -> Option<usize> {
        let p = self.play.as_mut()?;
        let (cursor, ts) = p.cursor.as_mut()?;
        let n = cursor.next(&mut self.rtp, *ts, out);
        if n.is_none() {
            p.cursor = None;
        }
        if let Some(n) = n.filter(|_| self.faults.sending_random_payloads()) {
            // The 12-byte RTP header stays; the payload is noise.
            for chunk in out[12..n].chunks_mut(8) {
                let r = random_u64().to_le_bytes();
                chunk.copy_from_slice(&r[..chunk.len()]);
            }
        }
        n
    }

    /// The RTCP BYE ending this stream when the camera was told to end
    /// it (it then stops playing).
    fn end_of_stream(&mut self, out: &mut [u8; 128]) -> Option<usize> {
        let ends = self.faults.ends();
        if ends == self.ends {
            return None;
        }
        self.ends = ends;
        self.play.take()?;
        Some(goodbye(&self.rtp, out))
    }

    fn sending(&self) -> bool {
        self.play.as_ref().is_some_and(|p| p.cursor.is_some())
    }

    /// An RTCP sender report, when one is due.
    fn sender_report(&mut self, now: Instant, out: &mut [u8; 128]) -> Option<usize> {
        let p = self.play.as_ref()?;
        if now < p.next_sr {
            return None;
        }
        let frame0 = self.tick_time(p.first);
        let p = self.play.as_mut()?;
        p.next_sr = (p.next_sr + SR_INTERVAL).max(now + SR_INTERVAL / 2);
        let elapsed = now.saturating_duration_since(frame0);
        let ticks = elapsed.as_secs() * 90_000 + u64::from(elapsed.subsec_nanos()) * 9 / 100_000;
        let rtp_ts = self.base_ts.wrapping_add(ticks as u32);
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let frac = (u64::from(wall.subsec_nanos()) << 32) / 1_000_000_000;
        let ntp = ((wall.as_secs() + NTP_UNIX_OFFSET) << 32) | frac;
        Some(sender_report(&self.rtp, ntp, rtp_ts, CNAME, out))
    }
}

fn frame_ref(clip: &'static Clip, frame: &'static ClipFrame) -> FrameRef<'static> {
    match frame {
        ClipFrame::Nals { nals, .. } if clip.info.codec == Codec::H265 => FrameRef::H265(nals),
        ClipFrame::Nals { nals, .. } => FrameRef::H264(nals),
        ClipFrame::Jpeg(j) => FrameRef::Jpeg(j),
    }
}

/// What the client asked for in SETUP's Transport header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Requested {
    /// RTP/AVP/TCP;interleaved=a-b
    Tcp(u8, u8),
    /// RTP/AVP;unicast;client_port=a-b
    Udp(u16, u16),
}

/// Picks the first transport we can serve from a Transport header (which
/// may list several, comma-separated). Multicast is declined.
///
/// Parsed here rather than with rtsp-types' typed header, whose parser
/// panics on some malformed `dest_addr` values.
pub(crate) fn parse_transport(value: &str) -> Option<Requested> {
    fn pair(v: &str) -> Option<(u32, u32)> {
        let (a, b) = match v.split_once('-') {
            Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
            None => {
                let a: u32 = v.trim().parse().ok()?;
                (a, a + 1)
            }
        };
        Some((a, b))
    }
    for spec in value.split(',') {
        let mut parts = spec.split(';').map(str::trim);
        let tcp = match parts.next().map(str::to_ascii_uppercase).as_deref() {
            Some("RTP/AVP" | "RTP/AVP/UDP") => false,
            Some("RTP/AVP/TCP") => true,
            _ => continue,
        };
        let mut multicast = false;
        let mut interleaved = None;
        let mut client_port = None;
        for p in parts {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            match k.trim().to_ascii_lowercase().as_str() {
                "multicast" => multicast = true,
                "interleaved" => interleaved = Some(pair(v)),
                "client_port" => client_port = Some(pair(v)),
                _ => {}
            }
        }
        if multicast {
            continue;
        }
        if tcp {
            // No interleaved parameter: the server may choose (RFC 2326 12.39).
            let (a, b) = interleaved.unwrap_or(Some((0, 1)))?;
            if let (Ok(a), Ok(b)) = (u8::try_from(a), u8::try_from(b)) {
                return Some(Requested::Tcp(a, b));
            }
        } else if let Some(Some((a, b))) = client_port {
            if let (Ok(a), Ok(b)) = (u16::try_from(a), u16::try_from(b)) {
                if a != 0 && b != 0 {
                    return Some(Requested::Udp(a, b));
                }
            }
        }
    }
    None
}

/// The path of a request URL: the clip its first segment names, at the
/// bitrate a later `kbps=N` segment asks for (else the server's), and the
/// URL to give as Content-Base (credentials, query and the track's
/// `trackID=0` removed, with a trailing slash). The bitrate is a path
/// segment rather than a query because clients build the SETUP and PLAY
/// URLs from the Content-Base, which keeps the path but not the query.
fn route(clips: &'static [Clip], url: Option<&Url>) -> Result<(&'static Clip, String), StatusCode> {
    let url = url.ok_or(StatusCode::NotFound)?;
    let mut segments: Vec<&str> = url
        .path_segments()
        .ok_or(StatusCode::NotFound)?
        .filter(|s| !s.is_empty())
        .collect();
    if segments.last() == Some(&"trackID=0") {
        segments.pop();
    }
    let name = *segments.first().ok_or(StatusCode::NotFound)?;
    let mut clip = clips
        .iter()
        .find(|c| c.info.name == name)
        .ok_or(StatusCode::NotFound)?;
    for kbps in segments
        .iter()
        .skip(1)
        .filter_map(|s| s.strip_prefix("kbps="))
    {
        let kbps = kbps
            .parse::<u32>()
            .ok()
            .filter(|k| BITRATE_RANGE.contains(k))
            .ok_or(StatusCode::BadRequest)?;
        let set = clips_at_bitrate(kbps).map_err(|e| {
            log::warn!("camera: {e}");
            StatusCode::NotEnoughBandwidth
        })?;
        clip = set
            .iter()
            .find(|c| c.info.name == name)
            .ok_or(StatusCode::NotFound)?;
    }
    let mut base = url.clone();
    let _ = base.set_username("");
    let _ = base.set_password(None);
    base.set_query(None);
    base.set_fragment(None);
    base.set_path(&format!("/{}/", segments.join("/")));
    Ok((clip, base.to_string()))
}

/// The `Session` header's id (without `;timeout=`).
fn session_id(value: &str) -> &str {
    value.split(';').next().unwrap_or("").trim()
}

struct Reply {
    status: StatusCode,
    headers: Vec<(HeaderName, String)>,
    body: String,
}

impl Reply {
    fn new(status: StatusCode) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: String::new(),
        }
    }

    fn header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// An RTP-over-TCP session, owned by its control connection.
struct TcpSession {
    id: String,
    rtp_channel: u8,
    rtcp_channel: u8,
    out: Outgoing,
    _slot: Slot,
}

/// The control connection's handle on a UDP session task.
struct UdpHandle {
    control: channel::Sender<UdpControl>,
    state: Rc<UdpState>,
}

enum UdpControl {
    Play,
}

/// What a UDP session task publishes for RTP-Info and reads for
/// keep-alive.
struct UdpState {
    last_alive: Cell<Instant>,
    rtp_info: Cell<(u16, u32)>,
}

/// One control connection.
struct Conn {
    shared: Rc<Shared>,
    stream: Async<TcpStream>,
    peer: SocketAddr,
    inbuf: Vec<u8>,
    in_len: usize,
    /// Bytes of an interleaved binary packet from the client still to skip.
    skip: usize,
    /// Control output (responses, RTCP), written at packet boundaries.
    ctrl: Vec<u8>,
    ctrl_pos: usize,
    /// Interleaved packets (`$`, channel, length, packet) being written,
    /// batched so one write call carries several. Allocated on first use,
    /// so connections that never play over TCP do not pay for it.
    wbuf: Box<[u8]>,
    wpos: usize,
    wlen: usize,
    tcp: Option<TcpSession>,
    last_request: Instant,
    last_progress: Instant,
    /// After a fatal protocol error: send what is queued, then close.
    closing: bool,
    /// [`Faults::kicks`] when the connection was accepted.
    kicks: u32,
}

impl Conn {
    fn new(shared: Rc<Shared>, stream: Async<TcpStream>, peer: SocketAddr) -> Self {
        let now = Instant::now();
        Conn {
            stream,
            peer,
            inbuf: vec![0; 2048],
            in_len: 0,
            skip: 0,
            ctrl: Vec::new(),
            ctrl_pos: 0,
            wbuf: Box::default(),
            wpos: 0,
            wlen: 0,
            tcp: None,
            last_request: now,
            last_progress: now,
            closing: false,
            kicks: shared.faults.kicks(),
            shared,
        }
    }

    async fn serve(mut self) {
        log::debug!("camera: connection from {}", self.peer);
        let mut timer = ArmedTimer::new();
        let faults = self.shared.faults.clone();
        let reason = loop {
            let now = Instant::now();
            if faults.kicks() != self.kicks {
                break "kicked (fault)".into();
            }
            if let Some(until) = faults.frozen(now) {
                timer.set_at(until, now);
                (&mut timer.timer).await;
                continue;
            }
            self.on_time(now);
            if let Err(e) = self.flush(now) {
                break e.to_string();
            }
            let pending = self.has_output();
            if self.closing && !pending {
                break "closed after a bad request".into();
            }
            if pending && now.saturating_duration_since(self.last_progress) >= STALL_TIMEOUT {
                break "client stopped reading".into();
            }
            let playing = self.tcp.as_ref().is_some_and(|s| s.out.play.is_some());
            if !playing && now.saturating_duration_since(self.last_request) >= IDLE_TIMEOUT {
                break "idle".into();
            }
            let mut deadline = now + IDLE_TIMEOUT;
            if !playing {
                deadline = deadline.min(self.last_request + IDLE_TIMEOUT);
            }
            if pending {
                deadline = deadline.min(self.last_progress + STALL_TIMEOUT);
            }
            if let Some(d) = self.tcp.as_ref().and_then(|s| s.out.deadline()) {
                deadline = deadline.min(d);
            }
            // Faults (kick, freeze) are noticed within this.
            deadline = deadline.min(now + FAULT_CHECK);
            timer.set_at(deadline, now);
            let read = !self.closing && self.ctrl.len() - self.ctrl_pos < CTRL_SOFT_LIMIT;
            if wait_io(&self.stream, read, pending, &mut timer.timer).await {
                match self.read() {
                    Ok(true) => {}
                    Ok(false) => break "closed by the client".into(),
                    Err(e) => break e.to_string(),
                }
            }
        };
        log::debug!("camera: connection from {} ends: {reason}", self.peer);
    }

    fn has_output(&self) -> bool {
        self.wpos < self.wlen
            || self.ctrl_pos < self.ctrl.len()
            || self.tcp.as_ref().is_some_and(|s| s.out.sending())
    }

    fn on_time(&mut self, now: Instant) {
        let busy = self.wpos < self.wlen;
        let backlog = self.ctrl.len() - self.ctrl_pos;
        let Some(s) = self.tcp.as_mut() else {
            return;
        };
        s.out.on_time(now, busy);
        let mut sr = [0u8; 128];
        if let Some(n) = s.out.end_of_stream(&mut sr) {
            self.ctrl.extend_from_slice(&[b'$', s.rtcp_channel]);
            self.ctrl.extend_from_slice(&(n as u16).to_be_bytes());
            self.ctrl.extend_from_slice(&sr[..n]);
        }
        if let Some(n) = s.out.sender_report(now, &mut sr) {
            // A report is worth less than the control replies: skip it if
            // the client is not reading those.
            if backlog < CTRL_SOFT_LIMIT {
                self.ctrl.extend_from_slice(&[b'$', s.rtcp_channel]);
                self.ctrl.extend_from_slice(&(n as u16).to_be_bytes());
                self.ctrl.extend_from_slice(&sr[..n]);
            }
        }
    }

    /// Writes what it can without blocking: the batch of packets in
    /// progress, then control output (which waits for a packet boundary),
    /// then the next batch of the current frame's packets.
    fn flush(&mut self, now: Instant) -> io::Result<()> {
        loop {
            let (buf, pos) = if self.wpos < self.wlen {
                (&self.wbuf[self.wpos..self.wlen], &mut self.wpos)
            } else if self.ctrl_pos < self.ctrl.len() {
                (&self.ctrl[self.ctrl_pos..], &mut self.ctrl_pos)
            } else {
                self.ctrl.clear();
                self.ctrl_pos = 0;
                if !self.fill_batch() {
                    self.last_progress = now;
                    return Ok(());
                }
                continue;
            };
            match self.stream.get_ref().write(buf) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.last_progress = now;
                    *pos += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Packetizes as much of the current frame as fits in the batch
    /// buffer; false if there was nothing to send.
    fn fill_batch(&mut self) -> bool {
        let Some(s) = self.tcp.as_mut().filter(|s| s.out.sending()) else {
            return false;
        };
        if self.wbuf.is_empty() {
            self.wbuf = vec![0; WRITE_BATCH].into_boxed_slice();
        }
        self.wpos = 0;
        self.wlen = 0;
        while let Some(room) = self.wbuf.get_mut(self.wlen..self.wlen + 4 + MAX_PACKET) {
            let (head, body) = room.split_at_mut(4);
            let Some(n) = <&mut [u8; MAX_PACKET]>::try_from(body)
                .ok()
                .and_then(|body| s.out.next_packet(body))
            else {
                break;
            };
            head[0] = b'$';
            head[1] = s.rtp_channel;
            head[2..4].copy_from_slice(&(n as u16).to_be_bytes());
            self.wlen += 4 + n;
        }
        self.wlen > 0
    }

    /// Reads and handles what the client sent. `Ok(false)` at end of
    /// stream.
    fn read(&mut self) -> io::Result<bool> {
        loop {
            if self.in_len == self.inbuf.len() {
                if self.inbuf.len() >= MAX_REQUEST {
                    // process() leaves a full buffer only for an
                    // incomplete request that can never fit.
                    self.bad_request();
                    return Ok(true);
                }
                let len = (self.inbuf.len() * 2).min(MAX_REQUEST);
                self.inbuf.resize(len, 0);
            }
            let mut stream = self.stream.get_ref();
            match stream.read(&mut self.inbuf[self.in_len..]) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.in_len += n;
                    self.process();
                    if self.closing || self.ctrl.len() - self.ctrl_pos >= CTRL_SOFT_LIMIT {
                        return Ok(true);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn consume(&mut self, n: usize) {
        let n = n.min(self.in_len);
        self.inbuf.copy_within(n..self.in_len, 0);
        self.in_len -= n;
    }

    fn bad_request(&mut self) {
        self.write_reply(None, Reply::new(StatusCode::BadRequest));
        self.closing = true;
        self.in_len = 0;
    }

    /// Handles every complete message in the input buffer.
    fn process(&mut self) {
        while self.in_len > 0 && !self.closing {
            if self.skip > 0 {
                let n = self.skip.min(self.in_len);
                self.consume(n);
                self.skip -= n;
                continue;
            }
            let first = self.inbuf[0];
            if first == b'$' {
                // Interleaved binary data from the client (RTCP receiver
                // reports): skipped, even when larger than our buffer.
                if self.in_len < 4 {
                    return;
                }
                self.skip = 4 + usize::from(u16::from_be_bytes([self.inbuf[2], self.inbuf[3]]));
                continue;
            }
            if first == b'\r' || first == b'\n' {
                // Quirk: some clients send bare CRLFs between requests as
                // keep-alives. Ignore them.
                self.consume(1);
                continue;
            }
            let buf = std::mem::take(&mut self.inbuf);
            let used = match Message::<&[u8]>::parse(&buf[..self.in_len]) {
                Ok((Message::Request(req), used)) => {
                    self.handle(&req);
                    Some(used)
                }
                Ok((_, used)) => Some(used),
                Err(rtsp_types::ParseError::Incomplete(_)) => None,
                Err(rtsp_types::ParseError::Error) => {
                    self.inbuf = buf;
                    self.bad_request();
                    return;
                }
            };
            self.inbuf = buf;
            match used {
                Some(n) => self.consume(n.max(1)),
                None => return,
            }
        }
    }

    fn write_reply(&mut self, cseq: Option<&str>, reply: Reply) {
        let mut b = Response::builder(Version::V1_0, reply.status);
        if let Some(c) = cseq {
            b = b.header(headers::CSEQ, c);
        }
        b = b.header(headers::SERVER, SERVER);
        for (name, value) in reply.headers {
            b = b.header(name, value);
        }
        let response = b.build(reply.body.as_bytes());
        if let Err(e) = response.write(&mut self.ctrl) {
            log::warn!("camera: cannot serialize a response: {e}");
        }
    }

    fn handle(&mut self, req: &rtsp_types::Request<&[u8]>) {
        let now = Instant::now();
        self.last_request = now;
        let cseq = req.header(&headers::CSEQ).map(|v| v.as_str());
        let session = req
            .header(&headers::SESSION)
            .map(|v| session_id(v.as_str()));
        let method = req.method();
        // Any request naming a UDP session keeps it alive.
        if let Some(id) = session {
            if let Some(h) = self.shared.udp_sessions.borrow().get(id) {
                h.state.last_alive.set(now);
            }
        }
        let reply = match method {
            Method::Options => Reply::new(StatusCode::Ok).header(headers::PUBLIC, PUBLIC),
            Method::Describe
            | Method::Setup
            | Method::Play
            | Method::Teardown
            | Method::GetParameter
            | Method::SetParameter => {
                // As many cameras do: OPTIONS is open, the rest needs
                // credentials.
                let authorized = self.shared.auth.as_ref().is_none_or(|a| {
                    let name: &str = method.into();
                    a.check(
                        name,
                        req.header(&headers::AUTHORIZATION).map(|v| v.as_str()),
                    )
                });
                if !authorized {
                    let challenge = self.shared.auth.as_ref().map(|a| a.challenge());
                    Reply::new(StatusCode::Unauthorized)
                        .header(headers::WWW_AUTHENTICATE, challenge.unwrap_or_default())
                } else {
                    match method {
                        Method::Describe => self.describe(req),
                        Method::Setup => self.setup(req, session),
                        Method::Play => self.play(req, session, now),
                        Method::Teardown => self.teardown(session),
                        _ => self.keep_alive(session),
                    }
                }
            }
            _ => Reply::new(StatusCode::NotImplemented).header(headers::PUBLIC, PUBLIC),
        };
        self.write_reply(cseq, reply);
    }

    fn describe(&mut self, req: &rtsp_types::Request<&[u8]>) -> Reply {
        let (clip, base) = match route(self.shared.clips, req.request_uri()) {
            Ok(r) => r,
            Err(status) => return Reply::new(status),
        };
        let origin = random_u64() >> 1;
        let sdp = format!(
            "v=0\r\n\
             o=- {origin} 1 IN IP4 127.0.0.1\r\n\
             s={SERVER}\r\n\
             c=IN IP4 0.0.0.0\r\n\
             t=0 0\r\n\
             a=control:*\r\n\
             a=range:npt=0-\r\n\
             m=video 0 RTP/AVP {pt}\r\n\
             {media}\
             a=framerate:{fps}\r\n\
             a=control:trackID=0\r\n",
            pt = clip.payload_type,
            media = clip.sdp_media,
            fps = clip.info.fps,
        );
        let mut reply = Reply::new(StatusCode::Ok)
            .header(headers::CONTENT_BASE, base)
            .header(headers::CONTENT_TYPE, "application/sdp");
        reply.body = sdp;
        reply
    }

    fn setup(&mut self, req: &rtsp_types::Request<&[u8]>, session: Option<&str>) -> Reply {
        let (clip, _) = match route(self.shared.clips, req.request_uri()) {
            Ok(r) => r,
            Err(status) => return Reply::new(status),
        };
        if session.is_some() || self.tcp.is_some() {
            // One track per session, one RTP/TCP session per connection.
            return Reply::new(StatusCode::MethodNotValidInThisState);
        }
        let transport = req
            .header(&headers::TRANSPORT)
            .map(|v| v.as_str())
            .unwrap_or("");
        let Some(requested) = parse_transport(transport) else {
            return Reply::new(StatusCode::UnsupportedTransport);
        };
        let Some(slot) = Slot::take(&self.shared, true) else {
            return Reply::new(StatusCode::NotEnoughBandwidth);
        };
        let id = format!("{:016x}", random_u64());
        let out = Outgoing::new(clip, self.shared.epoch, self.shared.faults.clone());
        let ssrc = out.rtp.ssrc;
        let transport = match requested {
            Requested::Tcp(a, b) => {
                self.tcp = Some(TcpSession {
                    id: id.clone(),
                    rtp_channel: a,
                    rtcp_channel: b,
                    out,
                    _slot: slot,
                });
                format!("RTP/AVP/TCP;unicast;interleaved={a}-{b};ssrc={ssrc:08X}")
            }
            Requested::Udp(a, b) => {
                let (rtp, rtcp) = match bind_udp_pair(self.peer.ip()) {
                    Ok(p) => p,
                    Err(e) => {
                        log::warn!("camera: cannot bind UDP ports: {e}");
                        return Reply::new(StatusCode::InternalServerError);
                    }
                };
                let ports = (local_port(&rtp), local_port(&rtcp));
                let Some(executor) = self.shared.executor.upgrade() else {
                    return Reply::new(StatusCode::ServiceUnavailable);
                };
                let (tx, rx) = channel::bounded(4);
                let state = Rc::new(UdpState {
                    last_alive: Cell::new(Instant::now()),
                    rtp_info: Cell::new(out.rtp_info()),
                });
                self.shared.udp_sessions.borrow_mut().insert(
                    id.clone(),
                    UdpHandle {
                        control: tx,
                        state: state.clone(),
                    },
                );
                let task = UdpSession {
                    id: id.clone(),
                    out,
                    rtp,
                    rtcp,
                    dest_rtp: SocketAddr::new(self.peer.ip(), a),
                    dest_rtcp: SocketAddr::new(self.peer.ip(), b),
                    state,
                    control: rx,
                    slot,
                };
                executor.spawn(task.run()).detach();
                format!(
                    "RTP/AVP;unicast;client_port={a}-{b};server_port={}-{};ssrc={ssrc:08X}",
                    ports.0, ports.1
                )
            }
        };
        log::debug!(
            "camera: {} set up session {id} ({})",
            self.peer,
            clip.info.name
        );
        Reply::new(StatusCode::Ok)
            .header(headers::TRANSPORT, transport)
            .header(
                headers::SESSION,
                format!("{id};timeout={}", self.shared.session_timeout.as_secs()),
            )
    }

    fn play(
        &mut self,
        req: &rtsp_types::Request<&[u8]>,
        session: Option<&str>,
        now: Instant,
    ) -> Reply {
        let Some(id) = session else {
            return Reply::new(StatusCode::SessionNotFound);
        };
        let (seq, rtptime) = if let Some(s) = self.tcp.as_mut().filter(|s| s.id == id) {
            s.out.start(now);
            s.out.rtp_info()
        } else if let Some(h) = self.shared.udp_sessions.borrow().get(id) {
            let _ = h.control.try_send(UdpControl::Play);
            h.state.rtp_info.get()
        } else {
            return Reply::new(StatusCode::SessionNotFound);
        };
        let base = route(self.shared.clips, req.request_uri())
            .ok()
            .map(|(_, b)| b);
        let mut reply = Reply::new(StatusCode::Ok)
            .header(headers::SESSION, id.to_owned())
            .header(headers::RANGE, "npt=0.000-");
        if let Some(base) = base {
            reply = reply.header(
                headers::RTP_INFO,
                format!("url={base}trackID=0;seq={seq};rtptime={rtptime}"),
            );
        }
        reply
    }

    fn teardown(&mut self, session: Option<&str>) -> Reply {
        let Some(id) = session else {
            return Reply::new(StatusCode::SessionNotFound);
        };
        if self.tcp.as_ref().is_some_and(|s| s.id == id) {
            self.tcp = None;
        } else if self.shared.udp_sessions.borrow_mut().remove(id).is_none() {
            // Dropping the handle closes its channel, which ends the task.
            return Reply::new(StatusCode::SessionNotFound);
        }
        log::debug!("camera: {} tore down session {id}", self.peer);
        Reply::new(StatusCode::Ok)
    }

    fn keep_alive(&mut self, session: Option<&str>) -> Reply {
        match session {
            None => Reply::new(StatusCode::Ok),
            Some(id)
                if self.tcp.as_ref().is_some_and(|s| s.id == id)
                    || self.shared.udp_sessions.borrow().contains_key(id) =>
            {
                Reply::new(StatusCode::Ok).header(headers::SESSION, id.to_owned())
            }
            Some(_) => Reply::new(StatusCode::SessionNotFound),
        }
    }
}

fn local_port(s: &Async<UdpSocket>) -> u16 {
    s.get_ref().local_addr().map_or(0, |a| a.port())
}

/// Binds the RTP and RTCP sockets of a UDP session on the loopback
/// address the client came from: an even port and the next one, as RFC
/// 3550 prefers, or any two if that keeps failing.
fn bind_udp_pair(ip: IpAddr) -> io::Result<(Async<UdpSocket>, Async<UdpSocket>)> {
    for _ in 0..16 {
        let rtp = UdpSocket::bind((ip, 0))?;
        let port = rtp.local_addr()?.port();
        if port % 2 != 0 || port == u16::MAX {
            continue;
        }
        if let Ok(rtcp) = UdpSocket::bind((ip, port + 1)) {
            return Ok((Async::new(rtp)?, Async::new(rtcp)?));
        }
    }
    Ok((
        Async::new(UdpSocket::bind((ip, 0))?)?,
        Async::new(UdpSocket::bind((ip, 0))?)?,
    ))
}

/// An RTP-over-UDP session: its own task, so it outlives its control
/// connection (RTSP 1.0 sessions do) until TEARDOWN or the timeout.
struct UdpSession {
    id: String,
    out: Outgoing,
    rtp: Async<UdpSocket>,
    rtcp: Async<UdpSocket>,
    dest_rtp: SocketAddr,
    dest_rtcp: SocketAddr,
    state: Rc<UdpState>,
    control: channel::Receiver<UdpControl>,
    slot: Slot,
}

impl UdpSession {
    async fn run(mut self) {
        let mut timer = ArmedTimer::new();
        let mut pkt = [0u8; MAX_PACKET];
        let faults = self.slot.shared.faults.clone();
        let kicks = faults.kicks();
        let reason = loop {
            let now = Instant::now();
            if faults.kicks() != kicks {
                break "kicked (fault)";
            }
            if let Some(until) = faults.frozen(now) {
                timer.set_at(until, now);
                (&mut timer.timer).await;
                continue;
            }
            let alive_until = self.state.last_alive.get() + self.slot.shared.session_timeout;
            if now >= alive_until {
                break "timed out";
            }
            self.out.on_time(now, false);
            while let Some(n) = self.out.next_packet(&mut pkt) {
                // UDP is lossy anyway: a full socket buffer drops the packet.
                let _ = self.rtp.get_ref().send_to(&pkt[..n], self.dest_rtp);
            }
            let mut sr = [0u8; 128];
            if let Some(n) = self.out.end_of_stream(&mut sr) {
                let _ = self.rtcp.get_ref().send_to(&sr[..n], self.dest_rtcp);
            }
            if let Some(n) = self.out.sender_report(now, &mut sr) {
                let _ = self.rtcp.get_ref().send_to(&sr[..n], self.dest_rtcp);
            }
            self.state.rtp_info.set(self.out.rtp_info());
            let deadline = self
                .out
                .deadline()
                .map_or(alive_until, |d| d.min(alive_until))
                .min(now + FAULT_CHECK);
            timer.set_at(deadline, now);
            enum Event {
                Control(Result<UdpControl, channel::RecvError>),
                Received,
                Timer,
            }
            let control = async { Event::Control(self.control.recv().await) };
            let received = async {
                future::or(self.rtp.readable(), self.rtcp.readable())
                    .await
                    .ok();
                Event::Received
            };
            let timer = async {
                (&mut timer.timer).await;
                Event::Timer
            };
            match future::or(control, future::or(received, timer)).await {
                Event::Control(Ok(UdpControl::Play)) => self.out.start(Instant::now()),
                Event::Control(Err(_)) => break "torn down",
                Event::Received => {
                    // RTCP receiver reports (and the NAT-punching packets
                    // clients send to both ports) prove the client alive.
                    let mut buf = [0u8; 1500];
                    for sock in [&self.rtp, &self.rtcp] {
                        for _ in 0..64 {
                            if sock.get_ref().recv_from(&mut buf).is_err() {
                                break;
                            }
                            self.state.last_alive.set(Instant::now());
                        }
                    }
                }
                Event::Timer => {}
            }
        };
        self.slot.shared.udp_sessions.borrow_mut().remove(&self.id);
        log::debug!("camera: UDP session {} ends: {reason}", self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_header_parsing() {
        use Requested::*;
        assert_eq!(
            parse_transport("RTP/AVP/TCP;unicast;interleaved=0-1"),
            Some(Tcp(0, 1))
        );
        assert_eq!(
            parse_transport("RTP/AVP/TCP;unicast;interleaved=4"),
            Some(Tcp(4, 5))
        );
        assert_eq!(parse_transport("RTP/AVP/TCP;unicast"), Some(Tcp(0, 1)));
        assert_eq!(
            parse_transport("RTP/AVP;unicast;client_port=5000-5001"),
            Some(Udp(5000, 5001))
        );
        assert_eq!(
            parse_transport("rtp/avp/udp;unicast;client_port=6000"),
            Some(Udp(6000, 6001))
        );
        // Multicast declined, the next offer taken.
        assert_eq!(
            parse_transport("RTP/AVP;multicast, RTP/AVP/TCP;interleaved=2-3"),
            Some(Tcp(2, 3))
        );
        assert_eq!(parse_transport("RTP/AVP;unicast"), None);
        assert_eq!(parse_transport("RTP/AVP/TCP;interleaved=255"), None);
        assert_eq!(parse_transport("RTP/AVP/TCP;interleaved=300-301"), None);
        assert_eq!(parse_transport("RTP/SAVP;unicast;client_port=1-2"), None);
        assert_eq!(parse_transport(""), None);
        assert_eq!(parse_transport(";;;,,=,-"), None);
        // The value that makes rtsp-types' typed parser panic.
        assert_eq!(
            parse_transport("RTP/AVP/TCP;dest_addr=\";interleaved=0-1"),
            Some(Tcp(0, 1))
        );
    }

    #[test]
    fn routes_by_first_segment() {
        let clips = super::super::clip::clips().unwrap();
        let url = |s: &str| Url::parse(s).unwrap();
        let (c, base) =
            route(clips, Some(&url("rtsp://u:p@127.0.0.1:8554/h264/cam7?x=1"))).unwrap();
        assert_eq!(c.info.name, "h264");
        assert_eq!(base, "rtsp://127.0.0.1:8554/h264/cam7/");
        let (c, base) = route(clips, Some(&url("rtsp://127.0.0.1:8554/mjpeg/trackID=0"))).unwrap();
        assert_eq!(c.info.name, "mjpeg");
        assert_eq!(base, "rtsp://127.0.0.1:8554/mjpeg/");
        let nf = Some(StatusCode::NotFound);
        assert_eq!(
            route(clips, Some(&url("rtsp://127.0.0.1:8554/h266"))).err(),
            nf
        );
        assert_eq!(route(clips, Some(&url("rtsp://127.0.0.1:8554/"))).err(), nf);
        assert_eq!(route(clips, None).err(), nf);
    }

    /// Mean bytes per frame of a clip's H.26x NAL units.
    fn bytes_per_frame(clip: &Clip) -> u64 {
        let total: u64 = clip
            .frames
            .iter()
            .map(|f| match f {
                ClipFrame::Nals { nals, .. } => nals.iter().map(|n| n.len() as u64).sum(),
                ClipFrame::Jpeg(_) => 0,
            })
            .sum();
        total / clip.frames.len() as u64
    }

    #[test]
    fn a_kbps_segment_sets_the_stream_bitrate() {
        let clips = super::super::clip::clips().unwrap();
        let url = |s: &str| Url::parse(s).unwrap();
        let at = |s: &str| route(clips, Some(&url(s))).unwrap();
        // 2000 and 500 kbit/s at 25 fps: 10000 and 2500 bytes per frame.
        let (main, base) = at("rtsp://127.0.0.1:8554/h264/cam1/kbps=2000");
        assert_eq!(base, "rtsp://127.0.0.1:8554/h264/cam1/kbps=2000/");
        let (sub, _) = at("rtsp://127.0.0.1:8554/h264/cam1-sub/kbps=500/trackID=0");
        let (plain, _) = at("rtsp://127.0.0.1:8554/h264/cam1");
        assert_eq!(main.info.name, "h264");
        assert!(
            (9990..=10010).contains(&bytes_per_frame(main)),
            "{}",
            bytes_per_frame(main)
        );
        assert!(
            (2490..=2510).contains(&bytes_per_frame(sub)),
            "{}",
            bytes_per_frame(sub)
        );
        assert!(bytes_per_frame(plain) < 2490);
        // The same bitrate is the same clips, built once.
        let (again, _) = at("rtsp://127.0.0.1:8554/h264/other/kbps=2000/");
        assert!(std::ptr::eq(main, again));
        // The SETUP URL built from the Content-Base routes to the same clip.
        let (setup, _) = at(&format!("{base}trackID=0"));
        assert!(std::ptr::eq(main, setup));
        for bad in ["kbps=0", "kbps=100001", "kbps=x", "kbps=", "kbps=-5"] {
            let u = url(&format!("rtsp://127.0.0.1:8554/h264/cam1/{bad}"));
            assert_eq!(
                route(clips, Some(&u)).err(),
                Some(StatusCode::BadRequest),
                "{bad}"
            );
        }
        let u = url("rtsp://127.0.0.1:8554/h266/kbps=500");
        assert_eq!(route(clips, Some(&u)).err(), Some(StatusCode::NotFound));
    }

    #[test]
    fn pacing_drops_when_busy_or_late_and_resumes_on_a_key_frame() {
        let clips = super::super::clip::clips().unwrap();
        let clip = clips.iter().find(|c| c.info.name == "h264").unwrap();
        let epoch = Instant::now();
        let mut out = Outgoing::new(clip, epoch, Faults::default());
        // PLAY between two ticks of the 25 fps grid: frame 0 is at the next.
        out.start(epoch + Duration::from_millis(70));
        let t0 = out.deadline().unwrap();
        assert_eq!(t0, epoch + Duration::from_millis(80));
        let period = Duration::from_millis(40);
        let mut pkt = [0u8; MAX_PACKET];
        // Frame 0 at t0.
        out.on_time(t0, false);
        assert!(out.sending());
        assert_eq!(out.deadline(), Some(t0 + period));
        // Frame 1 is due while frame 0 is still being sent: dropped.
        out.on_time(t0 + period, false);
        assert_eq!(out.play.as_ref().unwrap().dropped, 1);
        while out.next_packet(&mut pkt).is_some() {}
        // Frame 2 is a P frame: skipped until the key frame at 50.
        out.on_time(t0 + period * 2, false);
        assert!(!out.sending());
        // A long stall: everything up to frame 50 is late; frame 50 (key)
        // is sent when its own time comes.
        out.on_time(t0 + period * 50, false);
        assert!(out.sending());
        let p = out.play.as_ref().unwrap();
        assert_eq!(p.next_frame, 51);
        assert!(!p.need_key);
        assert_eq!(p.cursor.as_ref().unwrap().1, out.timestamp(50));
        assert_eq!(out.timestamp(50).wrapping_sub(out.base_ts), 50 * 3600);
        // Timestamps continue across the loop of the 100-frame clip.
        assert_eq!(out.timestamp(100).wrapping_sub(out.timestamp(99)), 3600);
    }
}
