//! One connection, request after request: reading the head and the body
//! within their deadlines, answering, keeping it alive or closing it
//! gently (so that the last answer is not lost to a reset).

use super::limits::*;
use super::parse::{err, parse_request, HttpError, Request};
use super::response::{response_head, Body, Framing, Reply};
use super::server::{register, Phase, Registration, Shared};
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Sets `SO_SNDBUF` (which also stops the kernel growing it).
fn set_send_buffer(s: &TcpStream, bytes: libc::c_int) -> io::Result<()> {
    crate::sockopt::set(s.as_raw_fd(), libc::SO_SNDBUF, bytes)
}

/// Reads what is there, waiting no later than `deadline`.
fn read_by(s: &TcpStream, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        s.set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
        match (&*s).read(buf) {
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted
                        | io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                ) => {}
            r => return r,
        }
    }
}

/// Writes `a` then `b` with as few system calls (and packets) as may be.
fn write_both(s: &TcpStream, mut a: &[u8], mut b: &[u8]) -> io::Result<()> {
    while !a.is_empty() || !b.is_empty() {
        let n = match (&*s).write_vectored(&[IoSlice::new(a), IoSlice::new(b)]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let from_a = n.min(a.len());
        a = a.get(from_a..).unwrap_or_default();
        b = b.get(n - from_a..).unwrap_or_default();
    }
    Ok(())
}

/// What became of reading a request.
enum Incoming {
    Request(Request, usize),
    /// Closed, or idle too long, between requests: close quietly.
    Gone,
    /// Answer this, then close.
    Error(HttpError),
    /// Chosen to make room while its head trickled in: answer 503, then
    /// hand the connection to the accept thread to close.
    Evicted,
}

/// Reads until `buf[..*filled]` starts with a whole request head.
fn read_head(
    s: &TcpStream,
    reg: &Registration<'_>,
    buf: &mut [u8],
    filled: &mut usize,
    first: bool,
) -> Incoming {
    let mut head_deadline = (*filled > 0).then(|| Instant::now() + HEAD_TIMEOUT);
    let idle_deadline = Instant::now() + IDLE_TIMEOUT;
    // A new connection is never idle *between* requests: its request is
    // on its way (closing it would answer nothing), so it may only be made
    // room from as a slow head, with a 503.
    reg.set_phase(if *filled == 0 && !first {
        Phase::Idle
    } else {
        Phase::Head
    });
    loop {
        if *filled > 0 {
            match parse_request(buf.get(..*filled).unwrap_or_default(), MAX_BODY) {
                Ok(Some((req, used))) => return Incoming::Request(req, used),
                Ok(None) => {}
                Err(e) => return Incoming::Error(e),
            }
        }
        let Some(space) = buf.get_mut(*filled..).filter(|b| !b.is_empty()) else {
            // Cannot happen: the parser refuses a full buffer.
            return Incoming::Error(err(431, "request head too large"));
        };
        let in_head = first || head_deadline.is_some();
        if in_head && reg.evicted() {
            return Incoming::Evicted;
        }
        let deadline = match head_deadline {
            Some(head) => head.min(Instant::now() + EVICT_POLL),
            None if first => idle_deadline.min(Instant::now() + EVICT_POLL),
            None => idle_deadline,
        };
        match read_by(s, space, deadline) {
            Ok(0) if *filled == 0 => return Incoming::Gone,
            Ok(0) => return Incoming::Error(err(400, "request cut short")),
            Ok(n) => {
                if head_deadline.is_none() {
                    reg.set_phase(Phase::Head);
                    head_deadline = Some(Instant::now() + HEAD_TIMEOUT);
                }
                *filled += n;
            }
            Err(e)
                if e.kind() == io::ErrorKind::TimedOut
                    && head_deadline.unwrap_or(idle_deadline) > Instant::now() => {}
            Err(e) if e.kind() == io::ErrorKind::TimedOut && *filled > 0 => {
                return Incoming::Error(err(408, "request head too slow"))
            }
            Err(_) => return Incoming::Gone,
        }
    }
}

/// Serves one connection until it closes.
pub(super) fn serve(shared: &Shared, s: TcpStream, peer: SocketAddr, buf: &mut [u8]) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_nodelay(true);
    let _ = s.set_write_timeout(Some(WRITE_TIMEOUT));
    if let Err(e) = set_send_buffer(&s, SEND_BUFFER) {
        log::debug!("http: SO_SNDBUF: {e}");
    }
    // Declared after `s`, so dropped (unregistered) before it closes.
    let Some(reg) = register(shared, &s) else {
        return;
    };
    let mut filled = 0;
    let mut first = true;
    loop {
        let (req, used) = match read_head(&s, &reg, buf, &mut filled, first) {
            Incoming::Request(req, used) => (req, used),
            Incoming::Gone => return,
            Incoming::Evicted => {
                // Its thread is wanted now: the accept thread closes it
                // gently (see `EVICT_POLL`).
                let e = err(
                    503,
                    "too many connections, and this request head came too slowly",
                );
                answer_error(shared, &s, e, 1);
                drop(reg);
                if s.shutdown(Shutdown::Write).is_ok() {
                    shared
                        .handed_off
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(s);
                }
                return;
            }
            Incoming::Error(e) => {
                answer_error(shared, &s, e, 1);
                return linger_close(&s);
            }
        };
        reg.set_phase(Phase::Busy);
        first = false;
        let body = match read_body(&s, &req, buf, &mut filled, used) {
            Ok(body) => body,
            Err(e) => {
                answer_error(shared, &s, e, req.minor);
                return linger_close(&s);
            }
        };
        let reply = shared.handler.handle(&req, body, peer);
        let keep_alive = req.keep_alive && !shared.stopping();
        match send(shared, &s, &req, reply, keep_alive) {
            Sent::KeepAlive => {}
            Sent::Close => return linger_close(&s),
            Sent::Closed => return,
        }
    }
}

/// The body of `req`: what of it already is in `buf` (after the head's
/// `used` bytes), then the rest from the socket. Leaves in `buf` what
/// follows it (a pipelined request).
fn read_body(
    s: &TcpStream,
    req: &Request,
    buf: &mut [u8],
    filled: &mut usize,
    used: usize,
) -> Result<Vec<u8>, HttpError> {
    // The parser bounds it by MAX_BODY.
    let len = usize::try_from(req.content_length).unwrap_or(usize::MAX);
    let have = filled.saturating_sub(used).min(len);
    let mut body = Vec::new();
    body.extend_from_slice(buf.get(used..used + have).unwrap_or_default());
    buf.copy_within(used + have..*filled, 0);
    *filled -= used + have;
    if body.len() == len {
        return Ok(body);
    }
    if req.expect_continue {
        write_both(s, b"HTTP/1.1 100 Continue\r\n\r\n", b"")
            .map_err(|_| err(400, "connection failed"))?;
    }
    let deadline = Instant::now() + HEAD_TIMEOUT;
    let mut got = body.len();
    body.resize(len, 0);
    while got < len {
        let Some(space) = body.get_mut(got..) else {
            break;
        };
        match read_by(s, space, deadline) {
            Ok(0) => return Err(err(400, "request body cut short")),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                return Err(err(408, "request body too slow"))
            }
            Err(_) => return Err(err(400, "request body could not be read")),
        }
    }
    Ok(body)
}

fn answer_error(shared: &Shared, s: &TcpStream, e: HttpError, minor: u8) {
    shared.handler.count(e.status);
    let body = serde_json::json!({ "error": e.message }).to_string();
    let head = response_head(
        e.status,
        "application/json",
        &[],
        Framing::Length(body.len() as u64),
        false,
        minor,
    );
    let _ = write_both(s, &head, body.as_bytes());
}

/// Closes gently: no more from us, then what the client still sends is
/// read (bounded) until it closes, so that our last answer is not lost
/// to a reset.
fn linger_close(s: &TcpStream) {
    if s.shutdown(Shutdown::Write).is_err() {
        return;
    }
    let deadline = Instant::now() + LINGER;
    let mut scratch = [0u8; 2048];
    let mut left = LINGER_BYTES;
    while left > 0 {
        match read_by(s, &mut scratch, deadline) {
            Ok(0) | Err(_) => break,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
}

/// How an answer went.
enum Sent {
    KeepAlive,
    /// Sent whole; now close, gently.
    Close,
    /// Over (not sent whole, or a close-delimited body): close at once.
    Closed,
}

fn send(shared: &Shared, s: &TcpStream, req: &Request, reply: Reply, keep_alive: bool) -> Sent {
    shared.handler.count(reply.status);
    let Reply {
        status,
        content_type,
        headers,
        body,
    } = reply;
    let no_body =
        req.method == "HEAD" || status == 204 || status == 304 || (100..200).contains(&status);
    // A route that frames its own body: the connection's end delimits it.
    let own_framing = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("transfer-encoding"));
    let ok = |keep_alive: bool| {
        if keep_alive {
            Sent::KeepAlive
        } else {
            Sent::Close
        }
    };
    match body {
        Body::Bytes(b) => {
            let framing = if status == 204 || status == 304 || (100..200).contains(&status) {
                Framing::None
            } else if own_framing {
                Framing::Close
            } else {
                Framing::Length(b.len() as u64)
            };
            let keep_alive = keep_alive && (framing != Framing::Close || no_body);
            let head = response_head(
                status,
                content_type,
                &headers,
                framing,
                keep_alive,
                req.minor,
            );
            let body = if no_body { &[][..] } else { &b[..] };
            match write_both(s, &head, body) {
                Ok(()) => ok(keep_alive),
                Err(_) => Sent::Closed,
            }
        }
        Body::Stream {
            reader,
            len,
            permit,
        } => {
            let _permit = permit;
            let mut headers = headers;
            let framing = match len {
                _ if status == 204 || status == 304 => Framing::None,
                Some(n) if !own_framing => Framing::Length(n),
                _ => {
                    if !headers
                        .iter()
                        .any(|(k, _)| k.eq_ignore_ascii_case("cache-control"))
                    {
                        headers.push(("Cache-Control", "no-store".to_owned()));
                    }
                    Framing::Close
                }
            };
            let keep_alive = keep_alive && (framing != Framing::Close || no_body);
            let head = response_head(
                status,
                content_type,
                &headers,
                framing,
                keep_alive,
                req.minor,
            );
            if write_both(s, &head, b"").is_err() {
                return Sent::Closed;
            }
            if no_body {
                return ok(keep_alive);
            }
            let mut reader = StopReader {
                inner: reader,
                stop: &shared.stop,
            };
            let limit = match framing {
                Framing::Length(n) => Some(n),
                _ => None,
            };
            match copy_body(&mut reader, s, limit) {
                Ok(()) if framing == Framing::Close => {
                    // The end of a close-delimited body is the close.
                    let _ = s.shutdown(Shutdown::Both);
                    Sent::Closed
                }
                Ok(()) => ok(keep_alive),
                Err(e) => {
                    log::debug!("http: a long answer ended early: {e}");
                    Sent::Closed
                }
            }
        }
    }
}

/// Copies a long answer's body: exactly `limit` bytes when given (fewer
/// is an error: the client would wait for the rest), else to the end.
/// Every piece read is written at once: live video leaves frame by frame.
fn copy_body(reader: &mut impl Read, s: &TcpStream, limit: Option<u64>) -> io::Result<()> {
    let mut buf = vec![0u8; COPY_BUFFER];
    let mut left = limit;
    loop {
        let want = match left {
            Some(0) => return Ok(()),
            Some(n) => usize::try_from(n).map_or(buf.len(), |n| n.min(buf.len())),
            None => buf.len(),
        };
        let n = match reader.read(buf.get_mut(..want).unwrap_or_default()) {
            Ok(0) if left.is_some() => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the body ended before its length",
                ))
            }
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        write_both(s, buf.get(..n).unwrap_or_default(), b"")?;
        if let Some(l) = left.as_mut() {
            *l = l.saturating_sub(n as u64);
        }
    }
}

/// Ends a long answer's body when the server stops.
struct StopReader<'a> {
    inner: Box<dyn Read + Send>,
    stop: &'a AtomicBool,
}

impl Read for StopReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.stop.load(Ordering::Acquire) {
            return Err(io::Error::other("server stopping"));
        }
        self.inner.read(buf).inspect_err(|e| {
            log::info!("http: ending a response early: {e}");
        })
    }
}
