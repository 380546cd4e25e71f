//! A scripted fake camera for the client's quirk tests: a blocking RTSP
//! server on 127.0.0.1 that misbehaves exactly as a test asks, records
//! every request it gets, and streams synthetic H.264 (a real SPS/PPS from
//! x264, slices of filler) over interleaved TCP.
#![allow(dead_code)]

use rtsp_types::{headers, Message, Method, Response, StatusCode, Version};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// x264 main profile 640x360, 25 fps (VUI timing present).
pub const SPS: &[u8] = &[
    0x67, 0x4d, 0x40, 0x1e, 0xd9, 0x00, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01,
    0x00, 0x00, 0x03, 0x00, 0x32, 0x0f, 0x16, 0x2e, 0x48,
];
pub const PPS: &[u8] = &[0x68, 0xeb, 0xc3, 0xcb, 0x20];

pub fn sprop() -> String {
    use base64::Engine;
    let b = base64::engine::general_purpose::STANDARD;
    format!("{},{}", b.encode(SPS), b.encode(PPS))
}

/// A standard SDP for one H.264 track; tests replace parts of it.
pub fn h264_sdp() -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=fake\r\nt=0 0\r\na=control:*\r\n\
         m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
         a=fmtp:96 packetization-mode=1;profile-level-id=4d401e;sprop-parameter-sets={}\r\n\
         a=control:trackID=1\r\n",
        sprop()
    )
}

#[derive(Clone)]
pub struct Script {
    pub sdp: String,
    /// `None`: no Content-Type header on DESCRIBE (a quirk).
    pub content_type: Option<String>,
    /// Raw Content-Base value; `{addr}` is replaced by the server address.
    pub content_base: Option<String>,
    /// Basic credentials required from DESCRIBE on (OPTIONS stays open).
    pub basic_auth: Option<(String, String)>,
    /// Channels answered in SETUP's Transport.
    pub interleaved: (u8, u8),
    pub session_header: String,
    pub public: String,
    pub reject_get_parameter: bool,
    /// Answer every request with these bytes instead of RTSP.
    pub garbage: Option<Vec<u8>>,
    /// Send this many frames before the PLAY response.
    pub frames_before_play_response: u32,
    /// Also send data on a channel that was never set up.
    pub data_on_unknown_channel: bool,
    /// Send RTCP sender reports from an SSRC that is not the video's.
    pub rtcp_unknown_ssrc: bool,
    /// Send no RTCP at all.
    pub no_rtcp: bool,
    /// Put stray bytes between interleaved frames.
    pub stray_bytes: bool,
    /// Leave CSeq out of every answer.
    pub no_cseq: bool,
    /// Never set the RTP marker bit.
    pub no_marker: bool,
    /// At this frame, the RTP timestamp jumps forward by an hour.
    pub timestamp_jump_at: Option<u32>,
    /// Answer DESCRIBE with 302 to this URL.
    pub redirect_to: Option<String>,
    /// Frames to send after PLAY (then keep the connection open, idle).
    pub frames: u32,
    /// Close the connection abruptly after this many frames (the first
    /// connection only), as a camera that reboots or a cable pulled.
    pub drop_after_frames: Option<u32>,
    pub frame_interval: Duration,
    /// Every frame is well-formed interleaved RTP with a random payload
    /// (a server that is no camera).
    pub random_payloads: bool,
    /// After this many frames, send RTCP BYE and go idle, the connection
    /// left open (GStreamer at end of stream); the first connection only.
    pub bye_after_frames: Option<u32>,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            sdp: h264_sdp(),
            content_type: Some("application/sdp".into()),
            content_base: Some("rtsp://{addr}/stream/".into()),
            basic_auth: None,
            interleaved: (0, 1),
            session_header: "F00D;timeout=60".into(),
            public: "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN".into(),
            reject_get_parameter: false,
            garbage: None,
            frames_before_play_response: 0,
            data_on_unknown_channel: false,
            rtcp_unknown_ssrc: false,
            no_rtcp: false,
            stray_bytes: false,
            no_cseq: false,
            no_marker: false,
            timestamp_jump_at: None,
            random_payloads: false,
            bye_after_frames: None,
            redirect_to: None,
            frames: 10_000,
            drop_after_frames: None,
            frame_interval: Duration::from_millis(10),
        }
    }
}

/// A request as the fake camera saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub uri: String,
    pub authorization: Option<String>,
    pub transport: Option<String>,
    pub session: Option<String>,
}

pub struct FakeCamera {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeCamera {
    pub fn start(script: Script) -> FakeCamera {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut conns = Vec::new();
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let (mut script, seen, stop) =
                            (script.clone(), seen2.clone(), stop2.clone());
                        if !conns.is_empty() {
                            script.drop_after_frames = None;
                            script.bye_after_frames = None;
                        }
                        conns.push(std::thread::spawn(move || {
                            let _ = serve(s, addr, &script, &seen, &stop);
                        }));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            for c in conns {
                let _ = c.join();
            }
        });
        FakeCamera {
            addr,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("rtsp://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn methods(&self) -> Vec<String> {
        self.seen().into_iter().map(|s| s.method).collect()
    }
}

impl Drop for FakeCamera {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Streamer {
    seq: u16,
    ts: u32,
    frame: u32,
    ssrc: u32,
    rng: u32,
    bye_sent: bool,
}

fn serve(
    mut s: TcpStream,
    addr: SocketAddr,
    script: &Script,
    seen: &Mutex<Vec<Seen>>,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    s.set_read_timeout(Some(Duration::from_millis(5)))?;
    s.set_nodelay(true)?;
    let mut buf = Vec::new();
    let mut playing = false;
    let mut st = Streamer {
        seq: 1000,
        ts: 90_000,
        frame: 0,
        ssrc: 0x1234_5678,
        rng: 0x9e37_79b9,
        bye_sent: false,
    };
    let mut next_frame = Instant::now();
    let mut last_sr = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e),
        }
        while let Ok((msg, used)) = Message::<Vec<u8>>::parse(&buf) {
            buf.drain(..used);
            let Message::Request(req) = msg else { continue };
            if let Some(g) = &script.garbage {
                s.write_all(g)?;
                continue;
            }
            let h = |n: &headers::HeaderName| req.header(n).map(|v| v.as_str().to_owned());
            let method = format!("{:?}", req.method()).to_uppercase();
            let method = match method.as_str() {
                "GETPARAMETER" => "GET_PARAMETER".to_owned(),
                _ => method,
            };
            seen.lock().unwrap().push(Seen {
                method: method.clone(),
                uri: req.request_uri().map(|u| u.to_string()).unwrap_or_default(),
                authorization: h(&headers::AUTHORIZATION),
                transport: h(&headers::TRANSPORT),
                session: h(&headers::SESSION),
            });
            let cseq = h(&headers::CSEQ).unwrap_or_default();
            let mut resp = Response::builder(Version::V1_0, StatusCode::Ok);
            if !script.no_cseq {
                resp = resp.header(headers::CSEQ, cseq.clone());
            }
            let mut body = Vec::new();
            if let Some((u, p)) = &script.basic_auth {
                use base64::Engine;
                let want = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
                );
                if *req.method() != Method::Options
                    && h(&headers::AUTHORIZATION).as_deref() != Some(&want)
                {
                    let mut r = Response::builder(Version::V1_0, StatusCode::Unauthorized)
                        .header(headers::WWW_AUTHENTICATE, "Basic realm=\"fake\"");
                    if !script.no_cseq {
                        r = r.header(headers::CSEQ, cseq);
                    }
                    r.build(Vec::<u8>::new()).write(&mut s).unwrap();
                    continue;
                }
            }
            match req.method() {
                Method::Options => resp = resp.header(headers::PUBLIC, script.public.as_str()),
                Method::Describe => {
                    if let Some(to) = &script.redirect_to {
                        let mut r = Response::builder(Version::V1_0, StatusCode::Found)
                            .header(headers::LOCATION, to.as_str());
                        if !script.no_cseq {
                            r = r.header(headers::CSEQ, cseq);
                        }
                        r.build(Vec::<u8>::new()).write(&mut s).unwrap();
                        continue;
                    }
                    if let Some(ct) = &script.content_type {
                        resp = resp.header(headers::CONTENT_TYPE, ct.as_str());
                    }
                    if let Some(cb) = &script.content_base {
                        resp = resp.header(
                            headers::CONTENT_BASE,
                            cb.replace("{addr}", &addr.to_string()),
                        );
                    }
                    body = script.sdp.clone().into_bytes();
                }
                Method::Setup => {
                    let (a, b) = script.interleaved;
                    resp = resp
                        .header(headers::SESSION, script.session_header.as_str())
                        .header(
                            headers::TRANSPORT,
                            format!("RTP/AVP/TCP;unicast;interleaved={a}-{b}"),
                        );
                }
                Method::Play => {
                    for _ in 0..script.frames_before_play_response {
                        send_frame(&mut s, script, &mut st)?;
                    }
                    resp = resp
                        .header(headers::SESSION, script.session_header.as_str())
                        .header(
                            headers::RTP_INFO,
                            "url=rtsp://bogus/;seq=0;rtptime=notanumber",
                        );
                    playing = true;
                }
                Method::GetParameter if script.reject_get_parameter => {
                    resp = Response::builder(Version::V1_0, StatusCode::NotImplemented)
                        .header(headers::CSEQ, cseq);
                }
                Method::Teardown => playing = false,
                _ => {}
            }
            resp.build(body).write(&mut s).unwrap();
        }
        if playing && script.drop_after_frames.is_some_and(|n| st.frame >= n) {
            return Ok(());
        }
        if playing && !st.bye_sent && script.bye_after_frames.is_some_and(|n| st.frame >= n) {
            let mut bye = vec![0x81, 203, 0, 1];
            bye.extend_from_slice(&st.ssrc.to_be_bytes());
            interleave(&mut s, script.interleaved.1, &bye)?;
            st.bye_sent = true;
            playing = false;
        }
        if playing && st.frame < script.frames && Instant::now() >= next_frame {
            send_frame(&mut s, script, &mut st)?;
            next_frame += script.frame_interval;
            if !script.no_rtcp && last_sr.elapsed() > Duration::from_millis(200) {
                last_sr = Instant::now();
                let ssrc = if script.rtcp_unknown_ssrc {
                    0x0bad_0bad
                } else {
                    st.ssrc
                };
                let mut sr = vec![0x80, 200, 0, 6];
                sr.extend_from_slice(&ssrc.to_be_bytes());
                sr.extend_from_slice(&[0; 8]);
                sr.extend_from_slice(&st.ts.to_be_bytes());
                sr.extend_from_slice(&[0; 8]);
                interleave(&mut s, script.interleaved.1, &sr)?;
            }
        }
    }
    Ok(())
}

fn interleave(s: &mut TcpStream, ch: u8, data: &[u8]) -> std::io::Result<()> {
    let mut out = vec![b'$', ch];
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(data);
    s.write_all(&out)
}

fn rtp(st: &mut Streamer, marker: bool, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 96 | if marker { 0x80 } else { 0 }];
    p.extend_from_slice(&st.seq.to_be_bytes());
    p.extend_from_slice(&st.ts.to_be_bytes());
    p.extend_from_slice(&st.ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    st.seq = st.seq.wrapping_add(1);
    p
}

/// One access unit: an IDR in three FU-A fragments every 25th frame, else
/// one P slice as a single NAL unit.
fn send_frame(s: &mut TcpStream, script: &Script, st: &mut Streamer) -> std::io::Result<()> {
    let ch = script.interleaved.0;
    let marker = !script.no_marker;
    if script.random_payloads {
        let mut payload = vec![0u8; 200 + (st.frame as usize * 37) % 900];
        for b in &mut payload {
            st.rng ^= st.rng << 13;
            st.rng ^= st.rng >> 17;
            st.rng ^= st.rng << 5;
            *b = st.rng as u8;
        }
        let pkt = rtp(st, marker, &payload);
        interleave(s, ch, &pkt)?;
    } else if st.frame.is_multiple_of(25) {
        // An I slice header (first_mb_in_slice 0, slice_type 7, PPS 0),
        // then filler.
        let mut body = vec![0xabu8; 3000];
        body[..2].copy_from_slice(&[0x88, 0x84]);
        for (i, part) in body.chunks(1000).enumerate() {
            let start = if i == 0 { 0x80 } else { 0 };
            let end = if i == 2 { 0x40 } else { 0 };
            let mut payload = vec![0x7c, start | end | 5];
            payload.extend_from_slice(part);
            let pkt = rtp(st, marker && i == 2, &payload);
            interleave(s, ch, &pkt)?;
            if script.stray_bytes && i == 0 {
                s.write_all(&[0, 0, 0x17, 0x42])?;
            }
        }
    } else {
        let mut payload = vec![0x41];
        payload.extend_from_slice(&[0x9a; 400]);
        let pkt = rtp(st, marker, &payload);
        interleave(s, ch, &pkt)?;
    }
    if script.data_on_unknown_channel {
        interleave(s, 6, &[0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xff])?;
    }
    st.frame += 1;
    st.ts = st.ts.wrapping_add(3600);
    if Some(st.frame) == script.timestamp_jump_at {
        st.ts = st.ts.wrapping_add(3600 * 90_000);
    }
    Ok(())
}
