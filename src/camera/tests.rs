//! End-to-end tests of the simulated camera over real sockets on
//! 127.0.0.1: a small blocking RTSP client here, and (ignored unless
//! `--include-ignored`, as `make test` runs them) the real ffmpeg/ffprobe.

use super::*;
use crate::camera::auth::md5_hex;
use crate::camera::clip::{clips, ClipFrame};
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const IO_TIMEOUT: Duration = Duration::from_secs(5);

fn server(auth: Option<CameraAuth>) -> CameraServer {
    CameraServer::start(ServerOptions {
        listen: ([127, 0, 0, 1], 0).into(),
        auth,
        bitrate_kbps: None,
    })
    .expect("camera starts")
}

/// A parsed RTSP response.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A minimal blocking RTSP client with bounded reads.
struct Client {
    s: TcpStream,
    buf: Vec<u8>,
    cseq: u32,
    /// Interleaved packets received while waiting for a response.
    packets: Vec<(u8, Vec<u8>)>,
}

impl Client {
    fn connect(server: &CameraServer) -> Client {
        let s = TcpStream::connect(server.local_addr()).unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        Client {
            s,
            buf: Vec::new(),
            cseq: 0,
            packets: Vec::new(),
        }
    }

    fn fill(&mut self) -> bool {
        let mut tmp = [0u8; 16384];
        match self.s.read(&mut tmp) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                true
            }
        }
    }

    /// The next interleaved packet, or `None` at EOF / timeout.
    fn packet(&mut self) -> Option<(u8, Vec<u8>)> {
        if !self.packets.is_empty() {
            return Some(self.packets.remove(0));
        }
        loop {
            if self.buf.len() >= 4 {
                assert_eq!(self.buf[0], b'$', "expected interleaved data");
                let len = u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize;
                if self.buf.len() >= 4 + len {
                    let p = (self.buf[1], self.buf[4..4 + len].to_vec());
                    self.buf.drain(..4 + len);
                    return Some(p);
                }
            }
            if !self.fill() {
                return None;
            }
        }
    }

    fn response(&mut self) -> Resp {
        loop {
            // Interleaved packets may precede the response.
            while self.buf.first() == Some(&b'$') && self.buf.len() >= 4 {
                let len = u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize;
                if self.buf.len() < 4 + len {
                    break;
                }
                self.packets
                    .push((self.buf[1], self.buf[4..4 + len].to_vec()));
                self.buf.drain(..4 + len);
            }
            if self.buf.first() != Some(&b'$') {
                if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8(self.buf[..end].to_vec()).unwrap();
                    let mut lines = head.split("\r\n");
                    let status_line = lines.next().unwrap();
                    assert!(status_line.starts_with("RTSP/1.0 "), "{status_line}");
                    let status = status_line[9..12].parse().unwrap();
                    let headers: Vec<(String, String)> = lines
                        .map(|l| {
                            let (n, v) = l.split_once(':').unwrap();
                            (n.trim().to_owned(), v.trim().to_owned())
                        })
                        .collect();
                    let len: usize = headers
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                        .map_or(0, |(_, v)| v.parse().unwrap());
                    if self.buf.len() >= end + 4 + len {
                        let body =
                            String::from_utf8(self.buf[end + 4..end + 4 + len].to_vec()).unwrap();
                        self.buf.drain(..end + 4 + len);
                        return Resp {
                            status,
                            headers,
                            body,
                        };
                    }
                }
            }
            assert!(
                self.fill(),
                "connection closed or timed out waiting for a response"
            );
        }
    }

    fn request(&mut self, method: &str, url: &str, extra: &[(&str, &str)]) -> Resp {
        self.cseq += 1;
        let mut req = format!("{method} {url} RTSP/1.0\r\nCSeq: {}\r\n", self.cseq);
        for (n, v) in extra {
            req.push_str(&format!("{n}: {v}\r\n"));
        }
        req.push_str("\r\n");
        self.s.write_all(req.as_bytes()).unwrap();
        let r = self.response();
        assert_eq!(r.header("CSeq"), Some(self.cseq.to_string().as_str()));
        r
    }

    /// DESCRIBE, SETUP (TCP interleaved 0-1), PLAY; returns the session id
    /// and RTP-Info's seq and rtptime.
    fn play_tcp(&mut self, url: &str) -> (String, u16, u32) {
        let r = self.request("DESCRIBE", url, &[("Accept", "application/sdp")]);
        assert_eq!(r.status, 200);
        let base = r.header("Content-Base").unwrap().to_owned();
        let r = self.request(
            "SETUP",
            &format!("{base}trackID=0"),
            &[("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1")],
        );
        assert_eq!(r.status, 200, "{r:?}");
        assert!(r.header("Transport").unwrap().contains("interleaved=0-1"));
        let session = r.header("Session").unwrap();
        assert!(session.ends_with(";timeout=60"));
        let id = session_id(session);
        let r = self.request("PLAY", &base, &[("Session", &id)]);
        assert_eq!(r.status, 200);
        let (seq, ts) = rtp_info(r.header("RTP-Info").unwrap());
        (id, seq, ts)
    }
}

fn session_id(v: &str) -> String {
    v.split(';').next().unwrap().to_owned()
}

fn rtp_info(v: &str) -> (u16, u32) {
    let field = |k: &str| {
        v.split(';')
            .find_map(|p| p.strip_prefix(k))
            .unwrap_or_else(|| panic!("no {k} in {v}"))
            .to_owned()
    };
    assert!(field("url=").ends_with("/trackID=0"));
    (
        field("seq=").parse().unwrap(),
        field("rtptime=").parse().unwrap(),
    )
}

struct Rtp {
    marker: bool,
    pt: u8,
    seq: u16,
    ts: u32,
    ssrc: u32,
    payload: Vec<u8>,
}

fn rtp(p: &[u8]) -> Rtp {
    assert!(p.len() > 12);
    assert_eq!(p[0], 0x80);
    Rtp {
        marker: p[1] & 0x80 != 0,
        pt: p[1] & 0x7f,
        seq: u16::from_be_bytes([p[2], p[3]]),
        ts: u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
        ssrc: u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
        payload: p[12..].to_vec(),
    }
}

#[test]
fn refuses_non_loopback_addresses() {
    let err = CameraServer::start(ServerOptions {
        listen: ([0, 0, 0, 0], 0).into(),
        auth: None,
        bitrate_kbps: None,
    })
    .err()
    .expect("0.0.0.0 is refused");
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn describe_every_clip() {
    let srv = server(None);
    let mut c = Client::connect(&srv);
    let r = c.request("OPTIONS", "*", &[]);
    assert_eq!(r.status, 200);
    assert!(r.header("Public").unwrap().contains("GET_PARAMETER"));
    for (path, needle) in [
        ("h264/cam7", "a=rtpmap:96 H264/90000"),
        ("h265", "a=rtpmap:96 H265/90000"),
        ("mjpeg/x/y", "m=video 0 RTP/AVP 26"),
    ] {
        let url = srv.url(path);
        let r = c.request("DESCRIBE", &url, &[]);
        assert_eq!(r.status, 200);
        assert_eq!(r.header("Content-Type"), Some("application/sdp"));
        assert_eq!(r.header("Content-Base"), Some(format!("{url}/").as_str()));
        assert!(r.body.contains(needle), "{}", r.body);
        assert!(r.body.contains("a=control:trackID=0"));
        assert!(r.body.starts_with("v=0\r\n"));
    }
    let r = c.request("DESCRIBE", &srv.url("h264/cam7"), &[]);
    assert!(
        r.body.contains("packetization-mode=1;profile-level-id=4d"),
        "{}",
        r.body
    );
    assert!(r.body.contains("sprop-parameter-sets=Z01A"), "{}", r.body);
    let r = c.request("DESCRIBE", &srv.url("h265"), &[]);
    assert!(r.body.contains("sprop-vps=QAEM"), "{}", r.body);
    assert!(r.body.contains("sprop-sps="));
    assert!(r.body.contains("sprop-pps="));
    srv.stop();
}

#[test]
fn errors_404_501_454_400() {
    let srv = server(None);
    let mut c = Client::connect(&srv);
    assert_eq!(c.request("DESCRIBE", &srv.url("h266"), &[]).status, 404);
    assert_eq!(c.request("DESCRIBE", &srv.url(""), &[]).status, 404);
    assert_eq!(c.request("RECORD", &srv.url("h264"), &[]).status, 501);
    assert_eq!(c.request("FOO", &srv.url("h264"), &[]).status, 501);
    assert_eq!(
        c.request("PLAY", &srv.url("h264"), &[("Session", "nope")])
            .status,
        454
    );
    assert_eq!(c.request("PLAY", &srv.url("h264"), &[]).status, 454);
    assert_eq!(
        c.request("GET_PARAMETER", &srv.url("h264"), &[]).status,
        200
    );
    let r = c.request(
        "SETUP",
        &srv.url("h264/trackID=0"),
        &[("Transport", "RTP/AVP;multicast")],
    );
    assert_eq!(r.status, 461);
    // A bare CRLF between requests is tolerated.
    c.s.write_all(b"\r\n").unwrap();
    assert_eq!(c.request("OPTIONS", "*", &[]).status, 200);
    // Garbage gets a 400 and the connection is closed.
    c.s.write_all(b"\x16\x03\x01 hello\r\n\r\n").unwrap();
    let r = c.response();
    assert_eq!(r.status, 400);
    assert!(!c.fill(), "connection should be closed");
    srv.stop();
}

#[test]
fn oversized_requests_close_the_connection() {
    let srv = server(None);
    let mut c = Client::connect(&srv);
    let mut req = format!("DESCRIBE {} RTSP/1.0\r\nCSeq: 1\r\n", srv.url("h264"));
    while req.len() < 70_000 {
        req.push_str(
            "X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
        );
    }
    // The server may close before reading it all; a write error is fine.
    let _ = c.s.write_all(req.as_bytes());
    let r = c.response();
    assert_eq!(r.status, 400);
    assert!(!c.fill());
    srv.stop();
}

/// Plays over TCP and checks the RTP stream: continuous sequence numbers
/// from RTP-Info's, timestamps stepping by 90000/fps, one marker per
/// frame, and the access units equal to the clip's frames.
#[test]
fn tcp_stream_carries_the_clip() {
    let srv = server(None);
    let mut c = Client::connect(&srv);
    let (_, seq0, ts0) = c.play_tcp(&srv.url("h264/a"));
    let clip = clips()
        .unwrap()
        .iter()
        .find(|c| c.info.name == "h264")
        .unwrap();
    let mut expect_seq = seq0;
    let mut ssrc = None;
    let mut frame = 0usize;
    let mut nals: Vec<Vec<u8>> = Vec::new();
    let mut fu: Option<Vec<u8>> = None;
    let started = Instant::now();
    while frame < 8 {
        let (ch, p) = c.packet().expect("packets keep coming");
        if ch == 1 {
            assert_eq!(p[1], 200, "RTCP on channel 1 is a sender report");
            continue;
        }
        assert_eq!(ch, 0);
        let r = rtp(&p);
        assert_eq!(r.pt, 96);
        assert_eq!(r.seq, expect_seq);
        expect_seq = expect_seq.wrapping_add(1);
        assert_eq!(*ssrc.get_or_insert(r.ssrc), r.ssrc);
        assert_eq!(r.ts, ts0.wrapping_add(3600 * frame as u32));
        match r.payload[0] & 0x1f {
            28 => {
                if r.payload[1] & 0x80 != 0 {
                    fu = Some(vec![(r.payload[0] & 0xe0) | (r.payload[1] & 0x1f)]);
                }
                fu.as_mut().unwrap().extend_from_slice(&r.payload[2..]);
                if r.payload[1] & 0x40 != 0 {
                    nals.push(fu.take().unwrap());
                }
            }
            _ => nals.push(r.payload.clone()),
        }
        if r.marker {
            let ClipFrame::Nals { nals: want, .. } = &clip.frames[frame] else {
                panic!()
            };
            assert_eq!(nals.len(), want.len(), "frame {frame}");
            for (g, w) in nals.iter().zip(want) {
                assert_eq!(g.as_slice(), *w, "frame {frame}");
            }
            nals.clear();
            frame += 1;
        }
    }
    // 8 frames at 25 fps: frame 7 is sent 280 ms after PLAY. Real-time
    // pacing, not a burst.
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(250), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    srv.stop();
}

/// RTP payload bytes of the first `frames` frames played from `path`.
fn payload_bytes(srv: &CameraServer, path: &str, frames: usize) -> usize {
    let mut c = Client::connect(srv);
    c.play_tcp(&srv.url(path));
    let (mut bytes, mut seen) = (0, 0);
    while seen < frames {
        let (ch, p) = c.packet().expect("packets keep coming");
        if ch == 0 {
            let r = rtp(&p);
            bytes += r.payload.len();
            seen += usize::from(r.marker);
        }
    }
    bytes
}

#[test]
fn a_kbps_path_segment_sets_one_streams_bitrate() {
    let srv = server(None);
    // Two streams of one server, each at its own bitrate, through the
    // Content-Base the SETUP and PLAY URLs are built from. Every frame
    // gets the same filler, the clip's mean frame short of the target:
    // at 25 fps 10,000 bytes a frame for 2000 kbit/s, 2,500 for 500, so
    // the same 10 frames differ by 75,000 bytes (FU-A headers add a few).
    let main = payload_bytes(&srv, "h264/cam1/kbps=2000", 10);
    let sub = payload_bytes(&srv, "h264/cam1-sub/kbps=500", 10);
    let plain = payload_bytes(&srv, "h264/cam1-plain", 10);
    assert!(
        (75_000..76_000).contains(&main.saturating_sub(sub)),
        "{main} {sub}"
    );
    assert!((90_000..110_000).contains(&main), "{main}");
    assert!(plain < sub, "{plain} {sub}");
    let mut c = Client::connect(&srv);
    let r = c.request("DESCRIBE", &srv.url("h264/cam1/kbps=0"), &[]);
    assert_eq!(r.status, 400);
    srv.stop();
}

#[test]
fn jpeg_packets_have_rfc2435_headers() {
    let srv = server(None);
    let mut c = Client::connect(&srv);
    let (_, _, ts0) = c.play_tcp(&srv.url("mjpeg"));
    let mut first = true;
    let mut frames = 0;
    let mut expect_offset = 0u32;
    while frames < 2 {
        let (ch, p) = c.packet().expect("packets");
        if ch != 0 {
            continue;
        }
        let r = rtp(&p);
        assert_eq!(r.pt, 26);
        assert_eq!(r.ts, ts0.wrapping_add(9000 * frames));
        let h = &r.payload;
        let offset = u32::from_be_bytes([0, h[1], h[2], h[3]]);
        assert_eq!(offset, expect_offset);
        assert_eq!(&h[4..8], &[1, 255, 80, 45]); // type 1, Q 255, 640x360
        let mut data = h.len() - 8;
        if first {
            assert_eq!(offset, 0);
            assert_eq!(&h[8..12], &[0, 0, 0, 128]);
            data -= 4 + 128;
        }
        expect_offset += data as u32;
        first = r.marker;
        if r.marker {
            expect_offset = 0;
            frames += 1;
        }
    }
    srv.stop();
}

fn udp_setup(c: &mut Client, srv: &CameraServer, path: &str) -> (UdpSocket, UdpSocket, String) {
    let rtp_sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let rtcp_sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    rtp_sock.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    rtcp_sock
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let ports = format!(
        "RTP/AVP;unicast;client_port={}-{}",
        rtp_sock.local_addr().unwrap().port(),
        rtcp_sock.local_addr().unwrap().port()
    );
    let r = c.request(
        "SETUP",
        &srv.url(&format!("{path}/trackID=0")),
        &[("Transport", &ports)],
    );
    assert_eq!(r.status, 200, "{r:?}");
    let t = r.header("Transport").unwrap();
    assert!(t.contains("server_port="), "{t}");
    (
        rtp_sock,
        rtcp_sock,
        session_id(r.header("Session").unwrap()),
    )
}

#[test]
fn udp_session_plays_reports_and_tears_down() {
    let srv = server(None);
    let mut c = Client::connect(&srv);
    let (rtp_sock, rtcp_sock, id) = udp_setup(&mut c, &srv, "h265/u");
    let r = c.request("PLAY", &srv.url("h265/u"), &[("Session", &id)]);
    assert_eq!(r.status, 200);
    let (seq0, ts0) = rtp_info(r.header("RTP-Info").unwrap());
    let mut buf = [0u8; 2000];
    let n = rtp_sock.recv(&mut buf).expect("an RTP packet");
    let p = rtp(&buf[..n]);
    assert_eq!((p.seq, p.ts), (seq0, ts0));
    // The first sender report comes half a second after PLAY.
    let n = rtcp_sock.recv(&mut buf).expect("a sender report");
    assert_eq!(buf[1], 200);
    assert_eq!(u32::from_be_bytes(buf[4..8].try_into().unwrap()), p.ssrc);
    assert!(n >= 28);
    assert_eq!(
        c.request("GET_PARAMETER", &srv.url("h265/u"), &[("Session", &id)])
            .status,
        200
    );
    assert_eq!(
        c.request("TEARDOWN", &srv.url("h265/u"), &[("Session", &id)])
            .status,
        200
    );
    // After TEARDOWN the packets stop: drain what was in flight, then
    // nothing for a while.
    rtp_sock
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while rtp_sock.recv(&mut buf).is_ok() {
        assert!(
            Instant::now() < deadline,
            "packets keep coming after TEARDOWN"
        );
    }
    assert_eq!(
        c.request("TEARDOWN", &srv.url("h265/u"), &[("Session", &id)])
            .status,
        454
    );
    srv.stop();
}

#[test]
fn udp_session_outlives_its_control_connection() {
    let srv = server(None);
    let mut c = Client::connect(&srv);
    let (rtp_sock, _rtcp, id) = udp_setup(&mut c, &srv, "mjpeg");
    assert_eq!(
        c.request("PLAY", &srv.url("mjpeg"), &[("Session", &id)])
            .status,
        200
    );
    drop(c);
    let mut buf = [0u8; 2000];
    // Packets sent after the connection closed still arrive.
    let until = Instant::now() + Duration::from_millis(300);
    while Instant::now() < until {
        rtp_sock.recv(&mut buf).expect("packets");
    }
    rtp_sock
        .recv(&mut buf)
        .expect("packets after the control connection closed");
    // Another connection can tear it down.
    let mut c2 = Client::connect(&srv);
    assert_eq!(
        c2.request("TEARDOWN", &srv.url("mjpeg"), &[("Session", &id)])
            .status,
        200
    );
    srv.stop();
}

#[test]
fn auth_basic_options_open_describe_closed() {
    let srv = server(Some(CameraAuth {
        digest: false,
        user: "admin".into(),
        password: "pw".into(),
    }));
    let mut c = Client::connect(&srv);
    assert_eq!(c.request("OPTIONS", &srv.url("h264"), &[]).status, 200);
    let r = c.request("DESCRIBE", &srv.url("h264"), &[]);
    assert_eq!(r.status, 401);
    assert!(r
        .header("WWW-Authenticate")
        .unwrap()
        .starts_with("Basic realm="));
    let wrong = c.request(
        "DESCRIBE",
        &srv.url("h264"),
        &[("Authorization", "Basic YWRtaW46eA==")],
    );
    assert_eq!(wrong.status, 401);
    // base64("admin:pw")
    let ok = c.request(
        "DESCRIBE",
        &srv.url("h264"),
        &[("Authorization", "Basic YWRtaW46cHc=")],
    );
    assert_eq!(ok.status, 200);
    srv.stop();
}

#[test]
fn auth_digest() {
    let srv = server(Some(CameraAuth {
        digest: true,
        user: "admin".into(),
        password: "pw".into(),
    }));
    let mut c = Client::connect(&srv);
    let url = srv.url("h264");
    let r = c.request("DESCRIBE", &url, &[]);
    assert_eq!(r.status, 401);
    let challenge = r.header("WWW-Authenticate").unwrap().to_owned();
    assert!(challenge.contains("qop=\"auth\""), "{challenge}");
    let param = |k: &str| {
        let start = challenge.find(&format!("{k}=\"")).unwrap() + k.len() + 2;
        challenge[start..start + challenge[start..].find('"').unwrap()].to_owned()
    };
    let (realm, nonce) = (param("realm"), param("nonce"));
    let ha1 = md5_hex(&["admin", &realm, "pw"]);
    let ha2 = md5_hex(&["DESCRIBE", &url]);
    let resp = md5_hex(&[&ha1, &nonce, "00000001", "c0ffee", "auth", &ha2]);
    let header = format!(
        "Digest username=\"admin\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{url}\", \
         response=\"{resp}\", qop=auth, nc=00000001, cnonce=\"c0ffee\""
    );
    assert_eq!(
        c.request("DESCRIBE", &url, &[("Authorization", &header)])
            .status,
        200
    );
    let bad = header.replace(&resp, &md5_hex(&["x"]));
    assert_eq!(
        c.request("DESCRIBE", &url, &[("Authorization", &bad)])
            .status,
        401
    );
    srv.stop();
}

#[test]
fn many_concurrent_sessions() {
    let srv = server(None);
    let paths = ["h264", "h265", "mjpeg"];
    let mut clients: Vec<Client> = (0..60)
        .map(|i| {
            let mut c = Client::connect(&srv);
            c.play_tcp(&srv.url(&format!("{}/cam{i}", paths[i % 3])));
            c
        })
        .collect();
    let mut ssrcs = std::collections::HashSet::new();
    for c in &mut clients {
        // The first RTP packet (even channel): under slow emulation
        // (qemu-user) a sender report may come first, whose bytes 8..12
        // are a timestamp, not an SSRC.
        let p = loop {
            let (ch, p) = c.packet().expect("every session streams");
            if ch % 2 == 0 {
                break p;
            }
        };
        ssrcs.insert(rtp(&p).ssrc);
    }
    // Each session has its own SSRC (random: a collision among 60 is
    // vanishingly unlikely).
    assert_eq!(ssrcs.len(), clients.len());
    srv.stop();
}

#[test]
fn stop_is_prompt_and_closes_connections() {
    let srv = server(None);
    let mut c = Client::connect(&srv);
    c.play_tcp(&srv.url("h264"));
    c.packet().expect("streaming");
    let t = Instant::now();
    srv.stop();
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "stop took {:?}",
        t.elapsed()
    );
    // The connection is closed: reading reaches EOF (after what was in
    // flight), well before the read timeout.
    let t = Instant::now();
    while c.fill() {}
    assert!(t.elapsed() < IO_TIMEOUT);
}

// ---- with the real ffmpeg / ffprobe ----

/// Kills the child on drop, so a failing test leaves nothing behind.
struct Killer(Child);

impl Drop for Killer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs a command to completion within `limit`; returns status, stdout,
/// stderr.
fn run(cmd: &mut Command, limit: Duration) -> (bool, String, String) {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffmpeg/ffprobe installed");
    let mut k = Killer(child);
    let mut out = k.0.stdout.take().unwrap();
    let mut err = k.0.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(st) = k.0.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "{cmd:?} did not finish in {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    (
        status.success(),
        out_t.join().unwrap(),
        err_t.join().unwrap(),
    )
}

/// Decodes 5 s (across the loop seam of the 4 s clips) with ffmpeg.
fn ffmpeg_plays(url: &str, transport: &str) {
    let (ok, _, err) = run(
        Command::new("ffmpeg").args([
            "-hide_banner",
            "-nostdin",
            "-v",
            "error",
            "-rtsp_transport",
            transport,
            "-i",
            url,
            "-t",
            "5",
            "-f",
            "null",
            "-",
        ]),
        Duration::from_secs(30),
    );
    assert!(ok, "ffmpeg failed on {url} over {transport}: {err}");
    assert!(
        err.trim().is_empty(),
        "ffmpeg complained on {url} over {transport}: {err}"
    );
}

fn ffprobe_sees(url: &str, transport: &str) -> String {
    let (ok, out, err) = run(
        Command::new("ffprobe").args([
            "-v",
            "error",
            "-rtsp_transport",
            transport,
            "-show_entries",
            "stream=codec_name,width,height",
            "-of",
            "csv=p=0",
            url,
        ]),
        Duration::from_secs(30),
    );
    assert!(ok, "ffprobe failed on {url}: {err}");
    out.trim().to_owned()
}

fn ffmpeg_codec(info: &ClipInfo) -> &'static str {
    match info.codec {
        Codec::H264 => "h264",
        Codec::H265 => "hevc",
        Codec::Jpeg => "mjpeg",
    }
}

#[test]
#[ignore = "needs ffmpeg (run by make test)"]
fn ffmpeg_plays_every_clip_over_tcp_and_udp() {
    let srv = server(None);
    std::thread::scope(|s| {
        for info in CLIPS {
            for transport in ["tcp", "udp"] {
                let url = srv.url(&format!("{}/{transport}", info.name));
                s.spawn(move || ffmpeg_plays(&url, transport));
            }
        }
    });
    srv.stop();
}

#[test]
#[ignore = "needs ffmpeg (run by make test)"]
fn ffprobe_reports_codec_and_size() {
    let srv = server(None);
    for info in CLIPS {
        for transport in ["udp", "tcp"] {
            let got = ffprobe_sees(&srv.url(info.name), transport);
            assert_eq!(
                got,
                format!("{},{},{}", ffmpeg_codec(info), info.width, info.height),
                "{} over {transport}",
                info.name
            );
        }
    }
    srv.stop();
}

#[test]
#[ignore = "needs ffmpeg (run by make test)"]
fn ffmpeg_authenticates_with_basic_and_digest() {
    for digest in [false, true] {
        let srv = server(Some(CameraAuth {
            digest,
            user: "viewer".into(),
            password: "pa55".into(),
        }));
        let addr = srv.local_addr();
        let good = format!("rtsp://viewer:pa55@{addr}/h264/auth");
        let got = ffprobe_sees(&good, "tcp");
        assert_eq!(got, "h264,640,360", "digest={digest}");
        ffmpeg_plays(&format!("rtsp://viewer:pa55@{addr}/mjpeg/auth"), "udp");
        // Wrong password: ffprobe fails with a 401.
        let (ok, _, err) = run(
            Command::new("ffprobe").args([
                "-v",
                "error",
                "-rtsp_transport",
                "tcp",
                &format!("rtsp://viewer:wrong@{addr}/h264"),
            ]),
            Duration::from_secs(30),
        );
        assert!(!ok);
        assert!(err.contains("401"), "{err}");
        srv.stop();
    }
}

#[test]
fn udp_session_times_out_without_keep_alive() {
    let srv = CameraServer::start_with_timeout(
        ServerOptions {
            listen: ([127, 0, 0, 1], 0).into(),
            auth: None,
            bitrate_kbps: None,
        },
        Duration::from_secs(1),
    )
    .unwrap();
    let mut c = Client::connect(&srv);
    let (rtp_sock, _rtcp, id) = udp_setup(&mut c, &srv, "h264/t");
    assert_eq!(
        c.request("PLAY", &srv.url("h264/t"), &[("Session", &id)])
            .status,
        200
    );
    let mut buf = [0u8; 2000];
    // Keep-alives (GET_PARAMETER with the session) hold it past its
    // 1 s timeout: packets keep arriving for 2.5 s.
    let started = Instant::now();
    let mut last_keep_alive = started;
    while started.elapsed() < Duration::from_millis(2500) {
        rtp_sock.recv(&mut buf).expect("packets while kept alive");
        if last_keep_alive.elapsed() > Duration::from_millis(300) {
            let r = c.request("GET_PARAMETER", &srv.url("h264/t"), &[("Session", &id)]);
            assert_eq!(r.status, 200);
            last_keep_alive = Instant::now();
        }
    }
    // Without them (and without RTCP from the client) it ends.
    drop(c);
    rtp_sock
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while rtp_sock.recv(&mut buf).is_ok() {
        assert!(Instant::now() < deadline, "the session did not time out");
    }
    let mut c = Client::connect(&srv);
    assert_eq!(
        c.request("TEARDOWN", &srv.url("h264/t"), &[("Session", &id)])
            .status,
        454
    );
    srv.stop();
}

/// A TCP client that stops reading gets frames dropped, not buffered:
/// when it reads again, the timestamps jump forward, sequence numbers stay
/// continuous, and the stream resumes on a key frame (SPS first).
#[test]
fn slow_tcp_client_gets_frames_dropped_up_to_a_key_frame() {
    let srv = server(None);
    let mut c = Client::connect(&srv);
    let (_, seq0, ts0) = c.play_tcp(&srv.url("h264/slow"));
    // The stall being simulated, not a synchronisation: 5 s of video is
    // more than the server's capped send buffer and our receive buffer
    // hold together.
    std::thread::sleep(Duration::from_secs(5));
    let mut expect_seq = seq0;
    let mut frame_start = true;
    let mut prev_ts = ts0.wrapping_sub(3600);
    let mut jumps = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        let (ch, p) = c.packet().expect("packets");
        if ch != 0 {
            continue;
        }
        let r = rtp(&p);
        assert_eq!(r.seq, expect_seq);
        expect_seq = expect_seq.wrapping_add(1);
        if frame_start {
            let step = r.ts.wrapping_sub(prev_ts);
            assert_eq!(step % 3600, 0);
            if step != 3600 {
                let nal_type = r.payload[0] & 0x1f;
                jumps.push((step / 3600, nal_type));
            }
            prev_ts = r.ts;
        }
        frame_start = r.marker;
    }
    assert!(!jumps.is_empty(), "no frames were dropped");
    for (frames, nal_type) in jumps {
        assert!(frames > 1);
        assert_eq!(
            nal_type, 7,
            "resumed on a non-key frame after {frames} frames"
        );
    }
    srv.stop();
}
