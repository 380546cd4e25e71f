//! HTTP/1.1 connections: accepting them, reading requests, writing answers
//! (RFC 9112). Everything above (routes, the auth gate, permits) lives in
//! `http.rs` and sees a parsed [`Request`] and gives back a [`Reply`].
//!
//! Threads and memory are bounded for a 256 MB board:
//! - One accept thread. Each connection is served by one connection
//!   thread from a pool of at most `max_threads` (`http.max_clients` plus
//!   a few), with a small stack. Threads are started on demand and end
//!   after [`POOL_IDLE`] without work, so an idle server holds none.
//! - When every thread is taken, a new connection waits (at most
//!   [`MAX_QUEUE`] of them, for at most [`QUEUE_WAIT`]): for a thread to
//!   finish, or for room made by closing a connection idling between
//!   keep-alive requests (its client reconnects, as HTTP allows), else one
//!   that has been trickling its request head for over [`SLOW_HEAD`]
//!   (answered 503). Beyond, it gets a `503` from the accept thread and
//!   is closed. Never a thread more.
//! - A request head is at most [`MAX_HEAD`] bytes and [`MAX_HEADERS`]
//!   fields, read into one buffer per thread; a body at most [`MAX_BODY`]
//!   bytes (a larger declared one is refused with `413` unread).
//! - Timeouts set on our own sockets: [`IDLE_TIMEOUT`] waiting for a
//!   request, [`HEAD_TIMEOUT`] for a whole head (or body) once its first
//!   byte came, so a byte-a-second trickle is cut; [`WRITE_TIMEOUT`] for
//!   a client that takes nothing.
//!
//! The parser ([`parse_request`]) is pure, bytes in and a result out, so
//! it can be fuzzed; every error it finds is answered and then the
//! connection closes (after an error the rest of the stream cannot be
//! trusted to be framed).
//!
//! Decisions where RFC 9112 leaves a choice:
//! - A bare LF ends a line like CRLF (2.2 allows it; old scripts send it);
//!   a CR anywhere else in a line is refused (400).
//! - Line folding (obs-fold, 5.2) and whitespace before a field name are
//!   refused (400) rather than unfolded: no client of ours sends them.
//! - Any `Transfer-Encoding` in a request is refused: `411` for chunked,
//!   `501` for others (6.1); our API takes only small bodies with a
//!   length, and not decoding chunked bodies leaves no way to disagree
//!   with a proxy about where a request ends.
//! - `Content-Length` repeated (or as a list) with one value is accepted,
//!   with different values refused (400) (6.3).
//! - Versions: HTTP/1.0 and HTTP/1.1; any other well-formed `HTTP/x.y`
//!   (HTTP/2.0, the HTTP/2 preface, HTTP/0.9) is `505`, anything else 400.
//! - `Host` is not required (HTTP/1.0 clients and simple scripts omit it), but
//!   two of them are refused (400).
//! - `Expect: 100-continue` gets its `100 Continue` once the head passed
//!   (a body over the bound gets its 413 instead); other expectations 417.

use super::http::{Body, Reply};
use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// Longest request head (request line and fields) accepted.
pub const MAX_HEAD: usize = 8 * 1024;
/// Most header fields in a request.
pub const MAX_HEADERS: usize = 64;
/// Empty lines ignored before a request line.
const MAX_EMPTY_LINES: usize = 2;
/// Request bodies larger than this are refused (413) without being read:
/// our routes take small JSON documents.
pub const MAX_BODY: u64 = 64 * 1024;
/// How long a connection may wait for its next request (or its first).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a request head may take once its first byte came, and a body
/// once its head came.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// A client that takes no bytes for this long is cut off: its write fails
/// and its connection closes, freeing the thread and the permit.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(20);
/// The kernel send buffer of each client connection. Left to itself Linux
/// grows it to 4 MiB per connection; `max_clients` of those would be a
/// large part of a 256 MB board's memory. This is plenty for video on a
/// LAN (it allows 256 MB/s at 1 ms round trip).
const SEND_BUFFER: libc::c_int = 256 * 1024;
/// Stack of a connection thread. Measured (high-water mark, debug build):
/// every route of the integration tests, logins with Argon2id included,
/// under 22 KiB; the deepest, a JSON body nested as deep as serde_json
/// goes (128), 93 KiB. See `connection_threads_have_room_on_their_stack`.
pub const STACK_SIZE: usize = 256 * 1024;
/// When every thread is taken, a connection that has been reading a
/// request head for this long is closed (503) to make room: a client
/// sends its head at once; a slowloris client trickles it.
const SLOW_HEAD: Duration = Duration::from_secs(1);
/// How often a thread reading a request head looks whether it was chosen
/// to make room (it is not woken by a shutdown: a socket closed with the
/// client's bytes unread sends a reset, which can destroy our 503).
const EVICT_POLL: Duration = Duration::from_millis(100);
/// A connection thread without work for this long ends.
pub const POOL_IDLE: Duration = Duration::from_secs(10);
/// The copy buffer of a long answer.
const COPY_BUFFER: usize = 32 * 1024;
/// How often the accept thread looks at the stop flag and at refused
/// connections it is closing (`stop` wakes it at once; an idle recorder
/// should not wake for nothing); and at queued connections, when there
/// are.
const ACCEPT_POLL: Duration = Duration::from_secs(1);
const QUEUE_POLL: Duration = Duration::from_millis(20);
/// A new connection waits this long for a thread before it is refused
/// (503): bursts are served, not refused.
const QUEUE_WAIT: Duration = Duration::from_secs(2);
/// At most this many connections wait for a thread; beyond, 503 at once.
const MAX_QUEUE: usize = 64;
/// After its last answer, a connection we close is read (and discarded)
/// for at most this long or this many bytes, so that the client has the
/// answer before the close (closing with unread input sends a reset,
/// which can destroy the answer on its way).
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 256 * 1024;
/// Refused connections (503) being closed gently by the accept thread at
/// once; beyond, the oldest is closed outright. Room for a whole queue of
/// refusals plus every thread's evicted client.
const MAX_LINGERING: usize = 128;
/// How long `stop` waits for connection threads (long answers see the
/// stop flag on their next read).
const STOP_GRACE: Duration = Duration::from_secs(2);

/// A parsed request head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// As sent (methods are case-sensitive).
    pub method: String,
    /// The request target, visible ASCII.
    pub target: String,
    /// 0: HTTP/1.0; 1: HTTP/1.1.
    pub minor: u8,
    /// Field names and values (trimmed), in order.
    pub headers: Vec<(String, String)>,
    /// The body's length (at most the bound given to the parser).
    pub content_length: u64,
    /// The connection may carry another request after this one.
    pub keep_alive: bool,
    /// The client waits for `100 Continue` before sending its body.
    pub expect_continue: bool,
}

impl Request {
    /// The first field named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A request that cannot be served: answered with `status`, then the
/// connection is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpError {
    pub status: u16,
    pub message: &'static str,
}

fn err(status: u16, message: &'static str) -> HttpError {
    HttpError { status, message }
}

/// `tchar` of RFC 9110, 5.6.2: what method and field names are made of.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// What a request target may hold: visible ASCII.
fn is_target_char(b: u8) -> bool {
    (0x21..=0x7e).contains(&b)
}

/// What a field value may hold: visible characters, spaces, tabs and
/// `obs-text` (bytes >= 0x80); no control characters.
fn is_value_char(b: u8) -> bool {
    b == b'\t' || b == b' ' || is_target_char(b) || b >= 0x80
}

/// Lines of a head: CRLF or a bare LF ends one.
struct Lines<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Lines<'a> {
    /// The next complete line without its end; `None` when the buffer ends
    /// inside it. A CR not right before the LF is refused.
    fn next(&mut self) -> Result<Option<&'a [u8]>, HttpError> {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        let Some(lf) = rest.iter().position(|&b| b == b'\n') else {
            // A CR may yet be followed by its LF only at the very end.
            let body = rest.strip_suffix(b"\r").unwrap_or(rest);
            if body.contains(&b'\r') {
                return Err(err(400, "a bare CR in the request head"));
            }
            return Ok(None);
        };
        let line = rest.get(..lf).unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.contains(&b'\r') {
            return Err(err(400, "a bare CR in the request head"));
        }
        self.pos += lf + 1;
        Ok(Some(line))
    }

    fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }
}

/// Parses a request head at the start of `buf`: `Ok(None)` while it is
/// incomplete (more bytes may complete it), else the request and the
/// number of bytes its head took (the body, if any, follows). A request
/// line that can already be seen to be wrong is refused before it ends.
/// Bodies declared larger than `max_body` are refused (413).
pub fn parse_request(buf: &[u8], max_body: u64) -> Result<Option<(Request, usize)>, HttpError> {
    let full = buf.len() >= MAX_HEAD;
    let mut lines = Lines {
        buf: buf.get(..MAX_HEAD).unwrap_or(buf),
        pos: 0,
    };
    // An empty line or two before the request line are ignored (RFC 9112,
    // 2.2: some clients end a body with an extra CRLF); more are junk.
    let mut empty = 0;
    let request_line = loop {
        match lines.next()? {
            Some([]) if empty < MAX_EMPTY_LINES => empty += 1,
            Some([]) => return Err(err(400, "not an HTTP request")),
            Some(line) => break line,
            None => {
                check_partial_request_line(lines.rest())?;
                return if full {
                    Err(err(414, "request line too long"))
                } else {
                    Ok(None)
                };
            }
        }
    };
    let (method, target, minor) = parse_request_line(request_line)?;
    let mut headers = Vec::new();
    loop {
        let Some(line) = lines.next()? else {
            return if full {
                Err(err(431, "request head too large"))
            } else {
                Ok(None)
            };
        };
        if line.is_empty() {
            break;
        }
        if headers.len() >= MAX_HEADERS {
            return Err(err(431, "too many header fields"));
        }
        headers.push(parse_field(line)?);
    }
    let mut req = Request {
        method,
        target,
        minor,
        headers,
        content_length: 0,
        keep_alive: false,
        expect_continue: false,
    };
    interpret_fields(&mut req, max_body)?;
    Ok(Some((req, lines.pos)))
}

/// What can already be told of a request line that has not ended: its
/// method is a token, its target visible ASCII, and its version on its
/// way to `HTTP/x.y`. (Refuses TLS handshakes and binary junk at once.)
fn check_partial_request_line(line: &[u8]) -> Result<(), HttpError> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut parts = line.splitn(3, |&b| b == b' ');
    let method = parts.next().unwrap_or_default();
    if !method.iter().all(|&b| is_tchar(b)) {
        return Err(err(400, "not an HTTP request"));
    }
    let target = parts.next().unwrap_or_default();
    if !target.iter().all(|&b| is_target_char(b)) {
        return Err(err(400, "bad request target"));
    }
    if let Some(version) = parts.next() {
        let prefix = &b"HTTP/"[..version.len().min(5)];
        let tail = version.get(5..).unwrap_or_default();
        if !version.starts_with(prefix)
            || tail.len() > 3
            || !tail.iter().all(|&b| b.is_ascii_digit() || b == b'.')
        {
            return Err(err(400, "malformed request line"));
        }
    }
    Ok(())
}

fn parse_request_line(line: &[u8]) -> Result<(String, String, u8), HttpError> {
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(err(400, "malformed request line"));
    };
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err(err(400, "malformed request line: bad method"));
    }
    if target.is_empty() || !target.iter().all(|&b| is_target_char(b)) {
        return Err(err(400, "bad request target"));
    }
    let minor = match version {
        b"HTTP/1.1" => 1,
        b"HTTP/1.0" => 0,
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            return Err(err(505, "HTTP version not supported: use HTTP/1.1"));
        }
        _ => return Err(err(400, "malformed request line: bad version")),
    };
    // Both are ASCII (checked above).
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    Ok((text(method), text(target), minor))
}

fn parse_field(line: &[u8]) -> Result<(String, String), HttpError> {
    if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
        return Err(err(400, "folded header lines are not accepted"));
    }
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return Err(err(400, "a header field without a colon"));
    };
    let (name, value) = line.split_at(colon);
    // No whitespace between name and colon (RFC 9112, 5.1).
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        return Err(err(400, "bad header field name"));
    }
    let value = value.get(1..).unwrap_or_default();
    let value = value.trim_ascii();
    if !value.iter().all(|&b| is_value_char(b)) {
        return Err(err(400, "a control character in a header field"));
    }
    Ok((
        String::from_utf8_lossy(name).into_owned(),
        String::from_utf8_lossy(value).into_owned(),
    ))
}

/// The fields that frame the message and steer the connection.
fn interpret_fields(req: &mut Request, max_body: u64) -> Result<(), HttpError> {
    let mut length: Option<u64> = None;
    let mut transfer_encoding: Option<bool> = None;
    let mut hosts = 0;
    let (mut close, mut keep_alive) = (false, false);
    let mut unmet_expectation = false;
    let mut continue_expected = false;
    for (name, value) in &req.headers {
        let name = name.as_str();
        if name.eq_ignore_ascii_case("content-length") {
            for part in value.split(',') {
                let part = part.trim_matches([' ', '\t']);
                if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(err(400, "bad Content-Length"));
                }
                // Beyond u64 is beyond any bound: saturate.
                let n = part.bytes().fold(0u64, |n, d| {
                    n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
                });
                if length.is_some_and(|l| l != n) {
                    return Err(err(400, "conflicting Content-Length values"));
                }
                length = Some(n);
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            let last = value.rsplit(',').next().unwrap_or_default();
            transfer_encoding = Some(
                last.trim_matches([' ', '\t'])
                    .eq_ignore_ascii_case("chunked"),
            );
        } else if name.eq_ignore_ascii_case("host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(|t| t.trim_matches([' ', '\t'])) {
                close |= token.eq_ignore_ascii_case("close");
                keep_alive |= token.eq_ignore_ascii_case("keep-alive");
            }
        } else if name.eq_ignore_ascii_case("expect") {
            if value.eq_ignore_ascii_case("100-continue") {
                continue_expected = true;
            } else {
                unmet_expectation = true;
            }
        }
    }
    if let Some(chunked) = transfer_encoding {
        return Err(if req.minor == 0 {
            // RFC 9112, 6.1: faulty framing in an HTTP/1.0 message.
            err(400, "Transfer-Encoding in an HTTP/1.0 request")
        } else if chunked {
            err(
                411,
                "chunked request bodies are not accepted: send Content-Length",
            )
        } else {
            err(501, "unknown transfer coding")
        });
    }
    if hosts > 1 {
        return Err(err(400, "more than one Host field"));
    }
    let length = length.unwrap_or(0);
    if length > max_body {
        return Err(err(413, "request body too large"));
    }
    if unmet_expectation {
        return Err(err(417, "only Expect: 100-continue is understood"));
    }
    req.content_length = length;
    req.keep_alive = !close && (req.minor == 1 || keep_alive);
    // HTTP/1.0 clients cannot expect 100 (RFC 9110, 10.1.1).
    req.expect_continue = continue_expected && req.minor == 1 && length > 0;
    Ok(())
}

/// The standard reason phrase of a status.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// `Date` (RFC 9110, 5.6.7: IMF-fixdate) of `t`.
fn http_date(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (proleptic Gregorian), by
    // 400-year eras of 146,097 days counted from 0000-03-01.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let weekday = WEEKDAYS
        .get(days.rem_euclid(7) as usize)
        .copied()
        .unwrap_or("Thu");
    let month = MONTHS
        .get(usize::try_from(month - 1).unwrap_or(0))
        .copied()
        .unwrap_or("Jan");
    format!(
        "{weekday}, {day:02} {month} {year} {:02}:{:02}:{:02} GMT",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// How an answer's body is delimited.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Framing {
    /// `Content-Length`.
    Length(u64),
    /// No body may follow (HEAD, 204, 304), no `Content-Length` either.
    None,
    /// Ends when the connection closes (RFC 9112, 6.3): live video.
    Close,
}

/// A response head.
fn response_head(
    status: u16,
    content_type: &str,
    headers: &[(&'static str, String)],
    framing: Framing,
    keep_alive: bool,
    minor: u8,
) -> Vec<u8> {
    use std::fmt::Write as _;
    let mut h = String::with_capacity(256);
    let _ = write!(h, "HTTP/1.1 {status} {}\r\n", reason(status));
    let _ = write!(h, "Date: {}\r\n", http_date(SystemTime::now()));
    h.push_str("Server: vigil\r\n");
    let _ = write!(h, "Content-Type: {content_type}\r\n");
    h.push_str("X-Content-Type-Options: nosniff\r\n");
    for (name, value) in headers {
        // A value with a line break would let it write fields of its own.
        if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            log::warn!("http: dropped a {name} header with a line break in it");
            continue;
        }
        let _ = write!(h, "{name}: {value}\r\n");
    }
    if let Framing::Length(n) = framing {
        let _ = write!(h, "Content-Length: {n}\r\n");
    }
    if !keep_alive {
        h.push_str("Connection: close\r\n");
    } else if minor == 0 {
        h.push_str("Connection: keep-alive\r\n");
    }
    h.push_str("\r\n");
    h.into_bytes()
}

/// What the connection layer needs from the routes above.
pub trait Handler: Send + Sync + 'static {
    /// The answer to a request; `body` holds its whole body.
    fn handle(&self, req: &Request, body: Vec<u8>, peer: SocketAddr) -> Reply;
    /// Called with the status of every answer sent (for metrics).
    fn count(&self, status: u16);
    /// No connection thread is left: drop what was cached for them.
    fn quiet(&self) {}
}

/// What a connection is doing, for making room.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a request's first byte (between keep-alive requests).
    Idle,
    /// Reading a request head.
    Head,
    /// Reading a body, answering.
    Busy,
}

/// A connection being served, for `stop` and for making room.
struct Slot {
    id: u64,
    fd: RawFd,
    phase: Phase,
    /// Since when it is in `phase`.
    since: Instant,
    /// Shut down to make room; its thread takes a queued connection next.
    evicted: bool,
}

/// An accepted connection waiting for a thread.
struct Queued {
    stream: TcpStream,
    peer: SocketAddr,
    since: Instant,
}

#[derive(Default)]
struct State {
    /// Accepted connections waiting for a thread, oldest first.
    queue: VecDeque<Queued>,
    /// Connection threads alive.
    threads: usize,
    /// Of those, waiting for a connection.
    waiting: usize,
    conns: Vec<Slot>,
    next_id: u64,
}

struct Shared {
    handler: Arc<dyn Handler>,
    stop: Arc<AtomicBool>,
    max_threads: usize,
    state: Mutex<State>,
    /// Signalled when a connection is queued, a thread ends, or on stop.
    changed: Condvar,
    /// Evicted connections, answered (503) and shut down for writing, for
    /// the accept thread to close gently: their threads are wanted at once.
    handed_off: Mutex<Vec<TcpStream>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }
}

/// The server: an accept thread and the connection threads.
pub struct Server {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: Option<JoinHandle<()>>,
    /// The listening socket, shared with the accept thread so that it is
    /// open as long as the server is (shut down by `stop` to wake it).
    listener: Arc<TcpListener>,
}

impl Server {
    /// Serves `listener` with at most `max_threads` connection threads.
    /// `stop` is the server's stop flag (long answers end at it).
    pub fn start(
        listener: TcpListener,
        handler: Arc<dyn Handler>,
        max_threads: usize,
        stop: Arc<AtomicBool>,
    ) -> io::Result<Server> {
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let listener = Arc::new(listener);
        let accept_listener = listener.clone();
        let shared = Arc::new(Shared {
            handler,
            stop,
            max_threads: max_threads.max(1),
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            handed_off: Mutex::new(Vec::new()),
        });
        let s = shared.clone();
        let accept = std::thread::Builder::new()
            .name("http-accept".into())
            .stack_size(STACK_SIZE)
            .spawn(move || accept_loop(&s, &accept_listener))?;
        Ok(Server {
            shared,
            addr,
            accept: Some(accept),
            listener,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connection threads alive (for tests and measurements).
    pub fn threads(&self) -> usize {
        self.shared.lock().threads
    }

    /// Stops accepting, closes every connection (a request being answered
    /// finishes; a long answer ends at its next read) and waits, bounded,
    /// for the connection threads.
    pub fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(t) = self.accept.take() {
            // Wakes the accept thread from its wait (Linux wakes a poll on
            // a listening socket that is shut down).
            // SAFETY: the listener is open: `self` holds it.
            unsafe { libc::shutdown(self.listener.as_raw_fd(), libc::SHUT_RDWR) };
            let _ = t.join();
        }
        let deadline = Instant::now() + STOP_GRACE;
        let mut st = self.shared.lock();
        for c in &st.conns {
            // SAFETY: the descriptor is open: a slot is removed, under
            // this lock, before its connection is closed.
            unsafe { libc::shutdown(c.fd, libc::SHUT_RDWR) };
        }
        st.queue.clear();
        self.shared.changed.notify_all();
        while st.threads > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                log::warn!(
                    "http: {} connection thread(s) still busy at stop; leaving them",
                    st.threads
                );
                break;
            }
            st = self
                .shared
                .changed
                .wait_timeout(st, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.accept.is_some() {
            self.stop();
        }
    }
}

/// Waits (bounded) for the listener to have a connection.
fn wait_readable(fd: RawFd, timeout: Duration) {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: one valid pollfd, count 1.
    unsafe { libc::poll(&mut p, 1, ms) };
}

fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener) {
    // Refused connections, shut down for writing, read until their client
    // closes (or for `LINGER`), so that their 503 is not lost to a reset.
    let mut lingering: VecDeque<(TcpStream, Instant)> = VecDeque::new();
    let mut scratch_head = vec![0u8; MAX_HEAD];
    let mut last_error_log: Option<Instant> = None;
    while !shared.stopping() {
        // Queued connections are looked at often: room may be made.
        let queued = !shared.lock().queue.is_empty();
        let poll = if queued { QUEUE_POLL } else { ACCEPT_POLL };
        wait_readable(listener.as_raw_fd(), poll);
        loop {
            match listener.accept() {
                Ok((s, peer)) => {
                    let mut st = shared.lock();
                    if st.queue.len() >= MAX_QUEUE {
                        drop(st);
                        refuse(shared, s, &mut lingering);
                    } else {
                        st.queue.push_back(Queued {
                            stream: s,
                            peer,
                            since: Instant::now(),
                        });
                        drop(st);
                        balance(shared, &mut lingering, &mut scratch_head);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) if shared.stopping() => break,
                Err(e) => {
                    // Out of descriptors, mostly: wait rather than spin.
                    if last_error_log.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                        log::warn!("http: accept: {e}");
                        last_error_log = Some(Instant::now());
                    }
                    std::thread::sleep(Duration::from_millis(100));
                    break;
                }
            }
            if shared.stopping() {
                break;
            }
        }
        balance(shared, &mut lingering, &mut scratch_head);
        let handed: Vec<TcpStream> =
            std::mem::take(&mut *shared.handed_off.lock().unwrap_or_else(|e| e.into_inner()));
        for s in handed {
            linger_later(s, &mut lingering);
        }
        let mut scratch = [0u8; 1024];
        lingering.retain(|(s, since)| {
            if since.elapsed() > LINGER {
                return false;
            }
            loop {
                match (&*s).read(&mut scratch) {
                    Ok(0) => return false,
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return false,
                }
            }
        });
    }
}

/// Finds a thread for every queued connection: a waiting thread, a new
/// one (up to the bound), or the thread of a connection closed to make
/// room (one idle between requests, else one trickling its head for over
/// `SLOW_HEAD`). Connections queued for over `QUEUE_WAIT` are refused.
fn balance(
    shared: &Arc<Shared>,
    lingering: &mut VecDeque<(TcpStream, Instant)>,
    scratch: &mut [u8],
) {
    let mut st = shared.lock();
    loop {
        // Threads that will take a queued connection without more ado.
        let evicting = st.conns.iter().filter(|c| c.evicted).count();
        if st.queue.len() <= st.waiting + evicting {
            break;
        }
        if st.threads < shared.max_threads {
            let Some(first) = take_next(&mut st.queue, scratch) else {
                break;
            };
            st.threads += 1;
            let sh = shared.clone();
            // Taken back if the thread cannot be started, to be refused.
            let handoff = Arc::new(Mutex::new(Some(first)));
            let theirs = handoff.clone();
            let spawned = std::thread::Builder::new()
                .name("http-conn".into())
                .stack_size(STACK_SIZE)
                .spawn(move || {
                    let guard = ThreadGuard(sh);
                    let first = theirs.lock().unwrap_or_else(|e| e.into_inner()).take();
                    if let Some(first) = first {
                        connection_thread(&guard.0, first);
                    }
                });
            if let Err(e) = spawned {
                log::warn!("http: cannot start a connection thread: {e}");
                st.threads -= 1;
                let back = handoff.lock().unwrap_or_else(|e| e.into_inner()).take();
                if let Some(q) = back {
                    drop(st);
                    refuse(shared, q.stream, lingering);
                    st = shared.lock();
                }
                break;
            }
            continue;
        }
        if !evict_one(&mut st) {
            break;
        }
    }
    shared.changed.notify_all();
    let mut expired = Vec::new();
    while st
        .queue
        .front()
        .is_some_and(|q| q.since.elapsed() >= QUEUE_WAIT)
    {
        expired.extend(st.queue.pop_front());
    }
    drop(st);
    for q in expired {
        refuse(shared, q.stream, lingering);
    }
}

/// The queued connection to serve next: the oldest whose client has sent
/// a whole request head (or closed), else the oldest. So when clients
/// trickling their heads (slowloris) fill the queue, a client that sent
/// its request at once still gets the next free thread.
fn take_next(queue: &mut VecDeque<Queued>, scratch: &mut [u8]) -> Option<Queued> {
    let ready = queue.iter().position(|q| head_arrived(&q.stream, scratch));
    match ready {
        Some(i) => queue.remove(i),
        None => queue.pop_front(),
    }
}

/// Whether a whole request head (or the end of the stream) is waiting to
/// be read, looked at without reading it.
/// Whether the client has sent bytes not read yet (or closed).
fn bytes_waiting(fd: RawFd) -> bool {
    let mut one = [0u8; 1];
    // SAFETY: a socket descriptor kept open while registered (see
    // `Server::stop`) and a buffer of the length given; MSG_PEEK leaves
    // the byte queued.
    let n = unsafe {
        libc::recv(
            fd,
            one.as_mut_ptr().cast(),
            one.len(),
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    n >= 0
}

fn head_arrived(s: &TcpStream, scratch: &mut [u8]) -> bool {
    // SAFETY: a valid socket descriptor (borrowed for the call) and a
    // buffer of the length given; MSG_PEEK leaves the bytes queued.
    let n = unsafe {
        libc::recv(
            s.as_raw_fd(),
            scratch.as_mut_ptr().cast(),
            scratch.len(),
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    match usize::try_from(n) {
        Ok(0) => true,
        Ok(n) => {
            let got = scratch.get(..n).unwrap_or_default();
            got.windows(2).any(|w| w == b"\n\n") || got.windows(3).any(|w| w == b"\n\r\n")
        }
        Err(_) => false,
    }
}

/// Closes a connection to make room for a queued one: the one idle the
/// longest between requests, else the one trickling its request head the
/// longest, if for over `SLOW_HEAD` (slowloris). False when none may go.
fn evict_one(st: &mut State) -> bool {
    let now = Instant::now();
    let candidates = |phase: Phase, min_age: Duration| {
        move |c: &&mut Slot| {
            !c.evicted && c.phase == phase && now.saturating_duration_since(c.since) >= min_age
        }
    };
    // "Idle" until its thread has read a byte: one whose request is
    // already waiting is not idle, and closing it would answer nothing.
    let idle = st
        .conns
        .iter_mut()
        .filter(candidates(Phase::Idle, Duration::ZERO))
        .filter(|c| !bytes_waiting(c.fd))
        .min_by_key(|c| c.since);
    let victim = match idle {
        Some(c) => Some((c, Some(libc::SHUT_RDWR))),
        None => st
            .conns
            .iter_mut()
            .filter(candidates(Phase::Head, SLOW_HEAD))
            .min_by_key(|c| c.since)
            // Its thread sees the mark within `EVICT_POLL` and answers 503.
            .map(|c| (c, None)),
    };
    let Some((c, how)) = victim else {
        return false;
    };
    c.evicted = true;
    if let Some(how) = how {
        // SAFETY: the descriptor is open (see `Server::stop`).
        unsafe { libc::shutdown(c.fd, how) };
    }
    true
}

/// A quick 503 from the accept thread: never blocks, never a thread.
fn refuse(shared: &Shared, s: TcpStream, lingering: &mut VecDeque<(TcpStream, Instant)>) {
    shared.handler.count(503);
    let body = br#"{"error":"too many connections (http.max_clients): try again shortly"}"#;
    let mut out = response_head(
        503,
        "application/json",
        &[("Retry-After", "1".to_owned())],
        Framing::Length(body.len() as u64),
        false,
        1,
    );
    out.extend_from_slice(body);
    if s.set_nonblocking(true).is_err() {
        return;
    }
    // A new socket's send buffer takes this at once.
    let _ = (&s).write(&out);
    let _ = s.shutdown(Shutdown::Write);
    linger_later(s, lingering);
}

/// Adds a connection, answered and shut down for writing, to those the
/// accept thread reads until their clients close (see `LINGER`).
fn linger_later(s: TcpStream, lingering: &mut VecDeque<(TcpStream, Instant)>) {
    if s.set_nonblocking(true).is_err() {
        return;
    }
    if lingering.len() >= MAX_LINGERING {
        lingering.pop_front();
    }
    lingering.push_back((s, Instant::now()));
}

/// Ends the thread's bookkeeping however it ends (a panic included).
struct ThreadGuard(Arc<Shared>);

impl Drop for ThreadGuard {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        st.threads -= 1;
        let quiet = st.threads == 0;
        self.0.changed.notify_all();
        drop(st);
        if quiet {
            self.0.handler.quiet();
        }
    }
}

fn connection_thread(shared: &Shared, first: Queued) {
    // The thread's head buffer, kept across its connections.
    let mut buf = vec![0u8; MAX_HEAD];
    let mut next = Some(first);
    while let Some(Queued { stream, peer, .. }) = next.take() {
        serve(shared, stream, peer, &mut buf);
        next = next_connection(shared, &mut buf);
    }
}

/// A queued connection, or `None` after `POOL_IDLE` without one (or at
/// stop): the thread then ends.
fn next_connection(shared: &Shared, scratch: &mut [u8]) -> Option<Queued> {
    let deadline = Instant::now() + POOL_IDLE;
    let mut st = shared.lock();
    st.waiting += 1;
    let got = loop {
        if shared.stopping() {
            break None;
        }
        if let Some(c) = take_next(&mut st.queue, scratch) {
            break Some(c);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break None;
        }
        st = shared
            .changed
            .wait_timeout(st, left)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    };
    st.waiting -= 1;
    got
}

/// A connection's slot, removed (under the lock) before the socket closes.
struct Registration<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Registration<'_> {
    fn set_phase(&self, phase: Phase) {
        let mut st = self.shared.lock();
        if let Some(c) = st.conns.iter_mut().find(|c| c.id == self.id) {
            c.phase = phase;
            c.since = Instant::now();
        }
    }

    /// Whether it was shut down to make room.
    fn evicted(&self) -> bool {
        let st = self.shared.lock();
        st.conns.iter().any(|c| c.id == self.id && c.evicted)
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.shared.lock().conns.retain(|c| c.id != self.id);
    }
}

fn register<'a>(shared: &'a Shared, s: &TcpStream) -> Option<Registration<'a>> {
    let mut st = shared.lock();
    // Checked under the lock `stop` takes to close connections.
    if shared.stopping() {
        return None;
    }
    st.next_id += 1;
    let id = st.next_id;
    st.conns.push(Slot {
        id,
        fd: s.as_raw_fd(),
        phase: Phase::Idle,
        since: Instant::now(),
        evicted: false,
    });
    Some(Registration { shared, id })
}

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
fn serve(shared: &Shared, s: TcpStream, peer: SocketAddr, buf: &mut [u8]) {
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

#[cfg(test)]
mod tests;
