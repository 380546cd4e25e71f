//! A small blocking HTTP/1.1 client for the integration tests: one request
//! per connection (`Connection: close`), the answer read until the server
//! closes, every step bounded by [`IO_TIMEOUT`]. Tests that read answers by
//! their framing (live bodies, servers that keep the connection) keep their
//! own readers and share only [`Resp`].

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long connecting, one write or one read may take.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// An answer: its status, its head (status line and headers, without the
/// blank line) and its body.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Resp {
    /// The value of header `name` (case-insensitive), trimmed.
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }

    /// The body as JSON; panics with the whole answer when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.dump()))
    }

    /// The `error` message of a JSON error body.
    pub fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error message: {}", self.dump()))
            .to_owned()
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Head and body as text, for messages and for searching the whole answer.
    pub fn dump(&self) -> String {
        format!("{}\r\n\r\n{}", self.head, self.text())
    }

    /// The `name=value` pair of its Set-Cookie.
    pub fn cookie(&self) -> String {
        let c = self.header("Set-Cookie").expect("Set-Cookie");
        c.split(';').next().unwrap_or("").trim().to_owned()
    }
}

/// Sends `raw` on a new connection and reads until the server closes.
pub fn exchange(addr: SocketAddr, raw: &[u8]) -> std::io::Result<Vec<u8>> {
    exchange_within(addr, raw, IO_TIMEOUT)
}

/// [`exchange`] with `timeout` for connecting and for each write and read.
pub fn exchange_within(
    addr: SocketAddr,
    raw: &[u8],
    timeout: Duration,
) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.write_all(raw)?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    Ok(out)
}

/// Splits a whole answer into status, head and body; panics without a head.
pub fn parse(raw: &[u8]) -> Resp {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8(raw[..split].to_vec())
        .unwrap_or_else(|_| panic!("head not UTF-8: {:?}", String::from_utf8_lossy(raw)));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line: {head}"));
    Resp {
        status,
        head,
        body: raw[split + 4..].to_vec(),
    }
}

/// `method target` with `Host: x` and the header lines `extra` (each ending
/// in CRLF), no body.
pub fn request_with(addr: SocketAddr, method: &str, target: &str, extra: &str) -> Resp {
    let raw = format!("{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n");
    parse(&exchange(addr, raw.as_bytes()).unwrap())
}

/// `method target` with no extra headers and no body.
pub fn request(addr: SocketAddr, method: &str, target: &str) -> Resp {
    request_with(addr, method, target, "")
}

/// `GET target`.
pub fn get(addr: SocketAddr, target: &str) -> Resp {
    request(addr, "GET", target)
}

/// `GET target` with the header lines `extra` (each ending in CRLF).
pub fn get_with(addr: SocketAddr, target: &str, extra: &str) -> Resp {
    request_with(addr, "GET", target, extra)
}

/// `method target` with the header lines `headers` and `body` with its
/// Content-Length, as the page sends them: `Host: h:1`, the host that an
/// `Origin: http://h:1` header matches.
pub fn send(addr: SocketAddr, method: &str, target: &str, headers: &str, body: &str) -> Resp {
    let raw = format!(
        "{method} {target} HTTP/1.1\r\nHost: h:1\r\nConnection: close\r\n{headers}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    parse(&exchange(addr, raw.as_bytes()).unwrap())
}

/// Asserts that the body is as long as its Content-Length says (a HEAD
/// answer announces the length of a body it does not send).
pub fn assert_length(method: &str, r: &Resp) {
    if let Some(len) = r.header("Content-Length") {
        if method != "HEAD" {
            assert_eq!(len.parse::<usize>().unwrap(), r.body.len(), "{}", r.head);
        }
    }
}

/// `GET target`'s body as JSON, or `None` on any failure (the server may
/// not be up yet, or be going down): for polling a child process.
pub fn get_json(addr: SocketAddr, target: &str) -> Option<Value> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let req = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    let split = out.windows(4).position(|w| w == b"\r\n\r\n")?;
    serde_json::from_slice(&out[split + 4..]).ok()
}

/// A free TCP port on loopback (free when asked: another may take it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
