//! Tests of the HTTP/1.1 layer: the parser on its own (every error
//! class, the bounds, pipelining), then a live server on loopback
//! (keep-alive, pipelining, HEAD, `100 Continue`, errors answered and
//! closed, the thread bound, stop).

use super::limits::{QUEUE_WAIT, SLOW_HEAD};
use super::response::http_date;
use super::*;
use std::io::{self, Read, Write};
use std::io::{BufRead, BufReader};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

fn parse(raw: &[u8]) -> Result<Option<(Request, usize)>, HttpError> {
    parse_request(raw, MAX_BODY)
}

fn status_of(raw: &[u8]) -> u16 {
    match parse(raw) {
        Err(e) => e.status,
        Ok(Some(_)) => 200,
        Ok(None) => 0,
    }
}

#[test]
fn parses_a_request_and_says_where_its_head_ends() {
    let raw = b"POST /api/login?x=1 HTTP/1.1\r\nHost: h:1\r\nContent-Length: 2\r\n\
                X-Empty:\r\nX-Pad:  a b \t\r\n\r\n{}";
    let (req, used) = parse(raw).unwrap().unwrap();
    assert_eq!(used, raw.len() - 2);
    assert_eq!(req.method, "POST");
    assert_eq!(req.target, "/api/login?x=1");
    assert_eq!(req.minor, 1);
    assert_eq!(req.content_length, 2);
    assert!(req.keep_alive);
    assert!(!req.expect_continue);
    assert_eq!(req.header("host"), Some("h:1"));
    assert_eq!(req.header("X-EMPTY"), Some(""));
    assert_eq!(req.header("x-pad"), Some("a b"));
    assert_eq!(req.header("missing"), None);
    // Every proper prefix of the head is incomplete, not an error.
    for n in 0..used {
        assert_eq!(parse(&raw[..n]), Ok(None), "prefix of {n} bytes");
    }
}

#[test]
fn keep_alive_follows_version_and_connection() {
    let ka = |raw: &[u8]| parse(raw).unwrap().unwrap().0.keep_alive;
    assert!(ka(b"GET / HTTP/1.1\r\n\r\n"));
    assert!(!ka(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n"));
    assert!(!ka(b"GET / HTTP/1.1\r\nConnection: TE, Close\r\n\r\n"));
    assert!(!ka(b"GET / HTTP/1.0\r\n\r\n"));
    assert!(ka(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    assert!(!ka(
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n"
    ));
}

#[test]
fn two_pipelined_requests_in_one_buffer() {
    let raw = b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\n\r\nGET /c";
    let (first, used) = parse(raw).unwrap().unwrap();
    assert_eq!(first.target, "/a");
    let body_end = used + first.content_length as usize;
    assert_eq!(&raw[used..body_end], b"hello");
    let (second, used2) = parse(&raw[body_end..]).unwrap().unwrap();
    assert_eq!(second.target, "/b");
    // The third has not arrived whole.
    assert_eq!(parse(&raw[body_end + used2..]), Ok(None));
}

#[test]
fn line_ends_bare_lf_accepted_bare_cr_refused() {
    let (req, used) = parse(b"GET /x HTTP/1.1\nHost: a\n\nrest").unwrap().unwrap();
    assert_eq!((req.target.as_str(), used), ("/x", 25));
    assert_eq!(req.header("Host"), Some("a"));
    assert_eq!(status_of(b"GET /x HTTP/1.1\rHost: a\r\n\r\n"), 400);
    assert_eq!(status_of(b"GET /x HTTP/1.1\r\nHost: a\rb\r\n\r\n"), 400);
    // A CR at the very end may yet get its LF; one before it may not.
    assert_eq!(status_of(b"GET /x HTTP/1.1\r\nHost: a\r"), 0);
    assert_eq!(status_of(b"GET /x HTTP/1.1\r\nHo\rst"), 400);
    // An empty line or two before the request line are skipped; more are junk.
    assert_eq!(status_of(b"\r\n\r\nGET / HTTP/1.1\r\n\r\n"), 200);
    assert_eq!(status_of(b"\r\n\r\n\r\n"), 400);
}

#[test]
fn request_line_errors() {
    for (raw, want) in [
        (&b"GET / HTTP/1.1\r\n\r\n"[..], 200),
        (b"GET / HTTP/1.0\r\n\r\n", 200),
        (b"BREW /pot HTTP/1.1\r\n\r\n", 200), // a method for the routes to refuse
        (b"GET / HTTP/2.0\r\n\r\n", 505),
        (b"GET / HTTP/3.0\r\n\r\n", 505),
        (b"GET / HTTP/1.2\r\n\r\n", 505),
        (b"GET / HTTP/0.9\r\n\r\n", 505),
        (b"GET / HTTP/9.9\r\n\r\n", 505),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
        (b"GET / HTTP/1.2.3\r\n\r\n", 400),
        (b"GET / HTTP/2\r\n\r\n", 400),
        (b"GET / http/1.1\r\n\r\n", 400),
        (b"GET /\r\n\r\n", 400),
        (b"GET\r\n\r\n", 400),
        (b"GET  / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1 \r\n\r\n", 400),
        (b"GET / x HTTP/1.1\r\n\r\n", 400),
        (b" GET / HTTP/1.1\r\n\r\n", 400),
        (b"G\0T / HTTP/1.1\r\n\r\n", 400),
        (b"GET /\xff HTTP/1.1\r\n\r\n", 400),
        (b"GET /a\tb HTTP/1.1\r\n\r\n", 400),
    ] {
        assert_eq!(status_of(raw), want, "{:?}", String::from_utf8_lossy(raw));
    }
}

#[test]
fn hopeless_request_lines_are_refused_before_they_end() {
    // A TLS handshake, binary junk, a bad target, a version going wrong.
    for raw in [
        &b"\x16\x03\x01\x02\x00\x01"[..],
        b"\0\0\0",
        b"GET /\xc3\xa9",
        b"GET / HTTQ",
        b"GET / HTTP/1.1.1",
    ] {
        assert_eq!(status_of(raw), 400, "{:?}", String::from_utf8_lossy(raw));
    }
    for raw in [
        &b"GE"[..],
        b"GET /api",
        b"GET / HT",
        b"GET / HTTP/1.",
        b"\r\n",
    ] {
        assert_eq!(status_of(raw), 0, "{:?}", String::from_utf8_lossy(raw));
    }
}

#[test]
fn header_field_errors() {
    for (raw, want) in [
        (&b"GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n"[..], 400), // obs-fold
        (b"GET / HTTP/1.1\r\n A: b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nA : b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n: b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nno colon\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nA(b): c\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nA: b\0c\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nA: b\x7fc\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nA: caf\xc3\xa9\r\n\r\n", 200), // obs-text
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ] {
        assert_eq!(status_of(raw), want, "{:?}", String::from_utf8_lossy(raw));
    }
}

#[test]
fn framing_errors_and_the_body_bound() {
    let cl =
        |v: &str| status_of(format!("POST / HTTP/1.1\r\nContent-Length: {v}\r\n\r\n").as_bytes());
    assert_eq!(cl("0"), 200);
    assert_eq!(cl(&MAX_BODY.to_string()), 200);
    assert_eq!(cl(&(MAX_BODY + 1).to_string()), 413);
    assert_eq!(cl("1000000000"), 413); // 1 GB
    assert_eq!(cl("100000000000000000000"), 413); // 10^20, beyond u64
    assert_eq!(cl("99999999999999999999999999999999999999"), 413);
    assert_eq!(cl("-1"), 400);
    assert_eq!(cl("+5"), 400);
    assert_eq!(cl("5 5"), 400);
    assert_eq!(cl(""), 400);
    assert_eq!(cl("0x10"), 400);
    assert_eq!(cl("5, 5"), 200);
    assert_eq!(cl("5, 6"), 400);
    let (req, _) = parse(b"POST / HTTP/1.1\r\nContent-Length: 7\r\nContent-Length: 7\r\n\r\n")
        .unwrap()
        .unwrap();
    assert_eq!(req.content_length, 7);
    assert_eq!(
        status_of(b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"),
        400
    );
    assert_eq!(
        status_of(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
        411
    );
    assert_eq!(
        status_of(
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n\r\n"
        ),
        411
    );
    assert_eq!(
        status_of(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"),
        501
    );
    assert_eq!(
        status_of(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
        400
    );
    // A smaller bound given to the parser is the one applied.
    assert_eq!(
        parse_request(b"POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", 10)
            .unwrap_err()
            .status,
        413
    );
}

#[test]
fn expect_100_continue() {
    let req = |raw: &[u8]| parse(raw).unwrap().unwrap().0;
    assert!(
        req(b"POST / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n")
            .expect_continue
    );
    // Nothing to wait for; and HTTP/1.0 clients cannot expect it.
    assert!(!req(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n").expect_continue);
    assert!(
        !req(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
            .expect_continue
    );
    assert_eq!(status_of(b"POST / HTTP/1.1\r\nExpect: coffee\r\n\r\n"), 417);
    // Too large: the 413 comes instead of the 100.
    assert_eq!(
        status_of(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 999999999\r\n\r\n"),
        413
    );
}

#[test]
fn head_bounds() {
    // Exactly at the bound is fine; one byte over is not.
    let head = |pad: usize| {
        let mut h = b"GET / HTTP/1.1\r\nX: ".to_vec();
        h.extend(std::iter::repeat_n(b'a', pad));
        h.extend_from_slice(b"\r\n\r\n");
        h
    };
    let at = head(MAX_HEAD - 23);
    assert_eq!(at.len(), MAX_HEAD);
    assert_eq!(status_of(&at), 200);
    assert_eq!(status_of(&head(MAX_HEAD - 22)), 431);
    // Incomplete and already at the bound: no more will be read.
    assert_eq!(status_of(&head(MAX_HEAD)[..MAX_HEAD]), 431);
    let mut long_target = b"GET /".to_vec();
    long_target.extend(std::iter::repeat_n(b'x', MAX_HEAD));
    assert_eq!(status_of(&long_target), 414);
    // Header fields: 64 are fine, 65 are not.
    let fields = |n: usize| {
        let mut h = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..n {
            h.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        h.extend_from_slice(b"\r\n");
        h
    };
    assert_eq!(status_of(&fields(MAX_HEADERS)), 200);
    assert_eq!(status_of(&fields(MAX_HEADERS + 1)), 431);
    // Bytes beyond the bound (a pipelined body) do not count.
    let mut with_more = fields(3);
    with_more.extend(std::iter::repeat_n(b'z', 3 * MAX_HEAD));
    assert_eq!(status_of(&with_more), 200);
}

#[test]
fn dates() {
    let at = |s: u64| http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(s));
    assert_eq!(at(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    // RFC 9110's own example.
    assert_eq!(at(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_eq!(at(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
    assert_eq!(at(4_102_444_799), "Thu, 31 Dec 2099 23:59:59 GMT");
}

// ---- a live server ----

/// Echoes requests; `/hold` streams forever (a stand-in for live video),
/// `/deep` parses its body as JSON.
struct Echo {
    permits: Permits,
    counted: Mutex<Vec<u16>>,
}

/// One byte every 10 ms, forever.
struct Trickle;

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        std::thread::sleep(Duration::from_millis(10));
        match buf.first_mut() {
            Some(b) => {
                *b = b'x';
                Ok(1)
            }
            None => Ok(0),
        }
    }
}

impl Handler for Echo {
    fn handle(&self, req: &Request, body: Vec<u8>, _peer: SocketAddr) -> Reply {
        match req.target.as_str() {
            "/hold" => match self.permits.try_acquire() {
                Some(permit) => Reply {
                    status: 200,
                    content_type: "text/plain",
                    headers: Vec::new(),
                    body: Body::Stream {
                        reader: Box::new(Trickle),
                        len: None,
                        permit,
                    },
                },
                None => self.permits.busy(),
            },
            "/deep" => match serde_json::from_slice::<serde_json::Value>(&body) {
                Ok(_) => Reply::json(200, &serde_json::json!({})),
                Err(e) => Reply::error(400, &e.to_string()),
            },
            "/nocontent" => Reply {
                status: 204,
                content_type: "text/plain",
                headers: Vec::new(),
                body: Body::Bytes(Vec::new()),
            },
            "/sized" => match self.permits.try_acquire() {
                Some(permit) => Reply {
                    status: 200,
                    content_type: "text/plain",
                    headers: vec![("X-Evil", "a\r\nSet-Cookie: x=1".to_owned())],
                    body: Body::Stream {
                        reader: Box::new(io::Cursor::new(vec![b'y'; 100_000])),
                        len: Some(100_000),
                        permit,
                    },
                },
                None => self.permits.busy(),
            },
            _ => Reply::json(
                200,
                &serde_json::json!({
                    "method": req.method,
                    "target": req.target,
                    "body": String::from_utf8_lossy(&body),
                }),
            ),
        }
    }

    fn count(&self, status: u16) {
        self.counted.lock().unwrap().push(status);
    }
}

fn start(max_threads: usize) -> (Server, Arc<Echo>) {
    let echo = Arc::new(Echo {
        permits: Permits::new(100),
        counted: Mutex::new(Vec::new()),
    });
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let server = Server::start(
        listener,
        echo.clone(),
        max_threads,
        Arc::new(AtomicBool::new(false)),
    )
    .unwrap();
    (server, echo)
}

fn connect(server: &Server) -> BufReader<TcpStream> {
    let s = TcpStream::connect(server.local_addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    BufReader::new(s)
}

struct Resp {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Reads one response (of a request that was not HEAD).
fn read_resp(c: &mut BufReader<TcpStream>) -> Resp {
    read_resp_to(c, false)
}

fn read_resp_to(c: &mut BufReader<TcpStream>, head_only: bool) -> Resp {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        let n = c.read_line(&mut line).unwrap();
        assert!(n > 0, "closed within a head: {head:?}");
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let mut r = Resp {
        status,
        head,
        body: Vec::new(),
    };
    if !head_only {
        if let Some(n) = r.header("Content-Length") {
            let mut body = vec![0; n.parse().unwrap()];
            c.read_exact(&mut body).unwrap();
            r.body = body;
        }
    }
    r
}

fn at_eof(c: &mut BufReader<TcpStream>) -> bool {
    let mut rest = Vec::new();
    matches!(c.read_to_end(&mut rest), Ok(0))
}

#[test]
fn keep_alive_pipelining_head_and_close() {
    let (mut server, echo) = start(4);
    let mut c = connect(&server);
    // Two requests in one write, the second with a body: two answers, in
    // order, on the same connection.
    c.get_mut()
        .write_all(
            b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
        )
        .unwrap();
    let a = read_resp(&mut c);
    assert_eq!(a.status, 200);
    assert!(String::from_utf8_lossy(&a.body).contains("\"/a\""));
    assert!(a.header("Date").unwrap().ends_with(" GMT"));
    assert_eq!(a.header("Connection"), None);
    let b = read_resp(&mut c);
    assert!(
        String::from_utf8_lossy(&b.body).contains("\"hello\""),
        "{:?}",
        b.body
    );
    // A body sent in pieces.
    c.get_mut()
        .write_all(b"PUT /c HTTP/1.1\r\nContent-Length: 6\r\n\r\nab")
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    c.get_mut().write_all(b"cdef").unwrap();
    assert!(String::from_utf8_lossy(&read_resp(&mut c).body).contains("\"abcdef\""));
    // HEAD: the length of a GET, no body.
    c.get_mut().write_all(b"HEAD /d HTTP/1.1\r\n\r\n").unwrap();
    let h = read_resp_to(&mut c, true);
    assert_eq!(h.status, 200);
    assert!(
        h.header("Content-Length")
            .unwrap()
            .parse::<usize>()
            .unwrap()
            > 10
    );
    // 204: neither body nor length.
    c.get_mut()
        .write_all(b"DELETE /nocontent HTTP/1.1\r\n\r\n")
        .unwrap();
    let n = read_resp_to(&mut c, true);
    assert_eq!(n.status, 204);
    assert_eq!(n.header("Content-Length"), None);
    // A long answer of known length, then the connection goes on; a route
    // header with a line break in it is dropped.
    c.get_mut()
        .write_all(b"GET /sized HTTP/1.1\r\n\r\n")
        .unwrap();
    let sized = read_resp(&mut c);
    assert_eq!(sized.body.len(), 100_000);
    assert_eq!(sized.header("X-Evil"), None);
    assert_eq!(sized.header("Set-Cookie"), None);
    // `Connection: close`: answered, then closed.
    c.get_mut()
        .write_all(b"GET /e HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let e = read_resp(&mut c);
    assert_eq!(e.header("Connection"), Some("close"));
    assert!(at_eof(&mut c));

    // HTTP/1.0 closes unless asked to keep alive.
    let mut c = connect(&server);
    c.get_mut().write_all(b"GET /f HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(read_resp(&mut c).status, 200);
    assert!(at_eof(&mut c));
    let mut c = connect(&server);
    c.get_mut()
        .write_all(b"GET /g HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /h HTTP/1.0\r\n\r\n")
        .unwrap();
    assert_eq!(read_resp(&mut c).header("Connection"), Some("keep-alive"));
    assert_eq!(read_resp(&mut c).status, 200);
    assert!(at_eof(&mut c));
    server.stop();
    assert_eq!(echo.counted.lock().unwrap().len(), 10);
}

#[test]
fn expect_100_continue_over_a_connection() {
    let (mut server, _echo) = start(2);
    let mut c = connect(&server);
    c.get_mut()
        .write_all(b"POST /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
        .unwrap();
    let cont = read_resp_to(&mut c, true);
    assert_eq!(cont.status, 100);
    c.get_mut().write_all(b"body").unwrap();
    let r = read_resp(&mut c);
    assert_eq!(r.status, 200);
    assert!(String::from_utf8_lossy(&r.body).contains("\"body\""));
    // Too large: 413 at once, no 100, and the connection closes.
    c.get_mut()
        .write_all(
            b"POST /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1000000000\r\n\r\n",
        )
        .unwrap();
    assert_eq!(read_resp(&mut c).status, 413);
    assert!(at_eof(&mut c));
    server.stop();
}

#[test]
fn bad_requests_are_answered_then_closed_at_once() {
    let (mut server, _echo) = start(4);
    for (raw, want) in [
        (&b"GET / HTTP/2.0\r\n\r\n"[..], 505),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
        (b"GET / HTTP/1.1\r\nContent-Length: 1000000000\r\n\r\n", 413),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 100000000000000000000\r\n\r\n",
            413,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            411,
        ),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400),
        (b"GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", 400),
    ] {
        let t = Instant::now();
        let mut c = connect(&server);
        c.get_mut().write_all(raw).unwrap();
        let r = read_resp(&mut c);
        assert_eq!(r.status, want, "{:?}", String::from_utf8_lossy(raw));
        assert_eq!(r.header("Connection"), Some("close"));
        assert!(at_eof(&mut c));
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    }
    // A head cut short by the client's end of sending.
    let mut c = connect(&server);
    c.get_mut().write_all(b"GET / HTTP/1.1\r\nHost").unwrap();
    c.get_mut().shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_resp(&mut c).status, 400);
    // A body cut short likewise.
    let mut c = connect(&server);
    c.get_mut()
        .write_all(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")
        .unwrap();
    c.get_mut().shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_resp(&mut c).status, 400);
    // Silence then a close: no answer, no trouble.
    let c = connect(&server);
    drop(c);
    let mut c = connect(&server);
    c.get_mut().write_all(b"GET /ok HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(read_resp(&mut c).status, 200);
    server.stop();
}

fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

#[test]
fn thread_bound_idle_connections_make_room_then_503() {
    let (mut server, _echo) = start(2);
    // A: answered, then left idle (keep-alive).
    let mut a = connect(&server);
    a.get_mut().write_all(b"GET /a HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(read_resp(&mut a).status, 200);
    // B: a long answer that holds its thread.
    let mut b = connect(&server);
    b.get_mut()
        .write_all(b"GET /hold HTTP/1.1\r\n\r\n")
        .unwrap();
    assert_eq!(read_resp_to(&mut b, true).status, 200);
    assert_eq!(server.threads(), 2);
    // C: both threads are taken, A is idle: A is closed to make room.
    let mut c = connect(&server);
    c.get_mut().write_all(b"GET /c HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(read_resp(&mut c).status, 200);
    assert!(at_eof(&mut a), "the idle connection was closed");
    // C now holds a long answer too: nothing is idle, so D waits for a
    // thread, and gets 503 from the accept thread when none came.
    c.get_mut()
        .write_all(b"GET /hold HTTP/1.1\r\n\r\n")
        .unwrap();
    assert_eq!(read_resp_to(&mut c, true).status, 200);
    let t = Instant::now();
    let mut d = connect(&server);
    d.get_mut().write_all(b"GET /d HTTP/1.1\r\n\r\n").unwrap();
    let r = read_resp(&mut d);
    assert_eq!(r.status, 503);
    assert_eq!(r.header("Retry-After"), Some("1"));
    assert!(at_eof(&mut d));
    let waited = t.elapsed();
    assert!(
        waited >= QUEUE_WAIT - Duration::from_millis(100) && waited < QUEUE_WAIT * 2,
        "{waited:?}"
    );
    assert_eq!(server.threads(), 2, "never a thread more");
    // B leaves: its thread serves the next one.
    drop(b);
    let served = wait_until(Duration::from_secs(5), || {
        let mut e = connect(&server);
        e.get_mut().write_all(b"GET /e HTTP/1.1\r\n\r\n").unwrap();
        read_resp(&mut e).status == 200
    });
    assert!(served);
    // Stopping ends the long answer and the idle connections, promptly.
    let t = Instant::now();
    server.stop();
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert_eq!(server.threads(), 0);
}

#[test]
fn idle_threads_end() {
    let (server, _echo) = start(4);
    let mut c = connect(&server);
    c.get_mut()
        .write_all(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert_eq!(read_resp(&mut c).status, 200);
    assert!(at_eof(&mut c));
    assert_eq!(server.threads(), 1);
    assert!(wait_until(POOL_IDLE + Duration::from_secs(5), || server
        .threads()
        == 0));
}

/// The deepest thing a route is known to do on a connection thread's
/// stack: parse a JSON body nested as deep as serde_json goes. (A stack
/// overflow would abort the test process.)
#[test]
fn connection_threads_have_room_on_their_stack() {
    let (mut server, _echo) = start(2);
    for body in ["[".repeat(MAX_BODY as usize), "{\"a\":".repeat(10_000)] {
        let mut c = connect(&server);
        let head = format!(
            "POST /deep HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        c.get_mut().write_all(head.as_bytes()).unwrap();
        c.get_mut().write_all(body.as_bytes()).unwrap();
        let r = read_resp(&mut c);
        assert_eq!(r.status, 400);
        assert!(String::from_utf8_lossy(&r.body).contains("recursion limit"));
    }
    server.stop();
}

#[test]
fn a_trickled_head_makes_room_when_threads_run_out() {
    let (mut server, _echo) = start(1);
    // A: a head begun and not finished, holding the one thread.
    let mut a = connect(&server);
    a.get_mut()
        .write_all(b"GET /a HTTP/1.1\r\nX-Slow: a")
        .unwrap();
    // A must hold the thread before B connects: under slow emulation
    // (qemu-user in `make test`) B could otherwise be accepted first.
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.threads() < 1 {
        assert!(Instant::now() < deadline, "A never got a thread");
        std::thread::sleep(Duration::from_millis(2));
    }
    // B, at once, waits: once A has been at it for SLOW_HEAD, A is closed
    // with a 503, and B is served.
    let t = Instant::now();
    let mut b = connect(&server);
    b.get_mut().write_all(b"GET /b HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(read_resp(&mut b).status, 200);
    let waited = t.elapsed();
    assert!(
        waited >= SLOW_HEAD - Duration::from_millis(100) && waited < QUEUE_WAIT,
        "{waited:?}"
    );
    let r = read_resp(&mut a);
    assert_eq!(r.status, 503);
    assert!(String::from_utf8_lossy(&r.body).contains("too slowly"));
    assert!(at_eof(&mut a));
    // A burst beyond the threads: each waits its turn, none is refused.
    let clients: Vec<_> = (0..10)
        .map(|_| {
            let mut c = connect(&server);
            c.get_mut()
                .write_all(b"GET /burst HTTP/1.1\r\nConnection: close\r\n\r\n")
                .unwrap();
            c
        })
        .collect();
    for mut c in clients {
        assert_eq!(read_resp(&mut c).status, 200);
    }
    assert_eq!(server.threads(), 1);
    server.stop();
}
