//! The request-head parser (RFC 9112, 2-3 and 5-6): pure, bytes in and a
//! [`Request`] or an [`HttpError`] out, so it can be fuzzed. The choices
//! it makes where the RFC leaves one are listed in `mod.rs`.

use super::limits::{MAX_EMPTY_LINES, MAX_HEAD, MAX_HEADERS};

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

pub(super) fn err(status: u16, message: &'static str) -> HttpError {
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
