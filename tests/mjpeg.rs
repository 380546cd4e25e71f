//! `mjpeg` and `snapshot.jpg` end to end, in one process: the built-in
//! camera (H.264, H.265 and MJPEG clips), a recorder, and the HTTP server
//! with every route, read by a small client written here that undoes the
//! chunked encoding and the multipart framing. The tests marked `#[ignore]`
//! also decode what is served with ffmpeg (`make test` runs them).

mod common;

use common::http::{get, request, Resp};
use common::{temp_dir, wait_for};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vigil::camera::{CameraServer, ServerOptions};
use vigil::config::{self, Config};
use vigil::daemon::recorder::Recorder;
use vigil::serve::HttpServer;
use vigil::store;

const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// `[http] mjpeg_fps` of these tests.
const FPS: u32 = 4;

/// Camera `a`: H.264 main, MJPEG sub (not recorded, still live). Camera
/// `h`: H.265 only.
fn config(dir: &Path, camera: &CameraServer) -> Config {
    let text = format!(
        "[storage]\npath = \"data\"\npool_size_mb = 4\npools = 4\nsync_interval_ms = 300\n\
         [memory]\narena_mb = 4\n[system]\nstream_start_spacing_ms = 0\n\
         [http]\nlisten = \"127.0.0.1:0\"\nauth = false\nmjpeg_fps = {FPS}\n\
         [[camera]]\nname = \"a\"\nurl = \"{}\"\nsub_url = \"{}\"\nsegment_seconds = 5\n\
         [[camera]]\nname = \"h\"\nurl = \"{}\"\nsegment_seconds = 5\n",
        camera.url("h264/a"),
        camera.url("mjpeg/asub"),
        camera.url("h265/h"),
    );
    config::parse_str(&text, dir).unwrap()
}

struct Setup {
    dir: PathBuf,
    cam: CameraServer,
    rec: Recorder,
    http: HttpServer,
    addr: SocketAddr,
}

fn setup(name: &str) -> Setup {
    let dir = temp_dir(name);
    let cam = CameraServer::start(ServerOptions {
        listen: ([127, 0, 0, 1], 0).into(),
        auth: None,
        bitrate_kbps: None,
    })
    .unwrap();
    let cfg = config(&dir, &cam);
    let storage = store::open::open_for_writing(&cfg.storage).unwrap();
    let rec = Recorder::start(&cfg, storage).unwrap();
    let ctx = Arc::new(vigil::serve::context(&cfg, &rec));
    let http = HttpServer::start(cfg.http.listen, ctx, cfg.http.max_clients).unwrap();
    let addr = http.local_addr();
    Setup {
        dir,
        cam,
        rec,
        http,
        addr,
    }
}

impl Setup {
    fn finish(self) {
        self.http.stop();
        self.rec.shutdown(Duration::from_secs(5)).unwrap();
        self.cam.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A snapshot, once the stream has a frame (503 until then).
fn snapshot(addr: SocketAddr, target: &str) -> Resp {
    wait_for(Duration::from_secs(20), target, || {
        let r = get(addr, target);
        (r.status != 503).then_some(r)
    })
}

/// Width and height of a whole baseline JPEG (SOI first, EOI last).
fn jpeg_size(j: &[u8]) -> Option<(u16, u16)> {
    if !j.starts_with(&[0xff, 0xd8]) || !j.ends_with(&[0xff, 0xd9]) {
        return None;
    }
    let mut i = 2;
    while let (Some(&0xff), Some(&m)) = (j.get(i), j.get(i + 1)) {
        let len = usize::from(u16::from_be_bytes([*j.get(i + 2)?, *j.get(i + 3)?]));
        if matches!(m, 0xc0..=0xc2) {
            let h = u16::from_be_bytes([*j.get(i + 5)?, *j.get(i + 6)?]);
            let w = u16::from_be_bytes([*j.get(i + 7)?, *j.get(i + 8)?]);
            return Some((w, h));
        }
        i += 2 + len;
    }
    None
}

/// An mjpeg response being read: parts taken out one by one as bytes
/// come. The body has no length; it ends when the server closes.
struct MjpegClient {
    sock: TcpStream,
    /// Body bytes not yet parsed into parts.
    body: Vec<u8>,
    boundary: String,
    /// The server closed the connection (rather than the read timing out).
    ended: bool,
}

impl MjpegClient {
    fn open(addr: SocketAddr, target: &str) -> MjpegClient {
        let mut sock = TcpStream::connect_timeout(&addr, IO_TIMEOUT).unwrap();
        sock.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        write!(sock, "GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut c = MjpegClient {
            sock,
            body: Vec::new(),
            boundary: String::new(),
            ended: false,
        };
        while !c.body.windows(4).any(|w| w == b"\r\n\r\n") {
            assert!(c.fill(), "no response head");
        }
        let split = c.body.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8(c.body[..split].to_vec()).unwrap();
        c.body.drain(..split + 4);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let resp = Resp {
            status: 200,
            head,
            body: Vec::new(),
        };
        let ctype = resp.header("Content-Type").unwrap();
        c.boundary = ctype
            .strip_prefix("multipart/x-mixed-replace; boundary=")
            .unwrap_or_else(|| panic!("{ctype}"))
            .to_owned();
        // Delimited by the connection's end: no length, no chunking.
        assert_eq!(resp.header("Content-Length"), None);
        assert_eq!(resp.header("Transfer-Encoding"), None);
        c
    }

    /// Reads more from the socket; false at its end or on a timeout.
    fn fill(&mut self) -> bool {
        let mut buf = [0u8; 16384];
        match self.sock.read(&mut buf) {
            Ok(0) => {
                self.ended = true;
                false
            }
            Err(_) => false,
            Ok(n) => {
                self.body.extend_from_slice(&buf[..n]);
                true
            }
        }
    }

    /// The next part's JPEG, once its closing boundary has arrived (what a
    /// browser waits for); `None` when the response ends.
    fn next_part(&mut self) -> Option<Vec<u8>> {
        let delim = format!("--{}\r\n", self.boundary);
        loop {
            if let Some(part) = self.parse_part(&delim) {
                return Some(part);
            }
            if !self.fill() {
                return None;
            }
        }
    }

    fn parse_part(&mut self, delim: &str) -> Option<Vec<u8>> {
        let b = &self.body;
        let mut at = 0;
        if b.starts_with(delim.as_bytes()) {
            at = delim.len();
        }
        let head_end = at + b[at..].windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = std::str::from_utf8(&b[at..head_end]).unwrap();
        let mut len = None;
        for line in head.split("\r\n") {
            let (k, v) = line.split_once(": ").unwrap();
            match k {
                "Content-Length" => len = Some(v.parse::<usize>().unwrap()),
                "Content-Type" => assert_eq!(v, "image/jpeg"),
                _ => {}
            }
        }
        let len = len.expect("Content-Length");
        let start = head_end + 4;
        let closing = format!("\r\n{delim}");
        if b.len() < start + len + closing.len() {
            return None;
        }
        assert_eq!(
            &b[start + len..start + len + closing.len()],
            closing.as_bytes()
        );
        let jpeg = b[start..start + len].to_vec();
        self.body.drain(..start + len + closing.len());
        Some(jpeg)
    }
}

#[test]
fn snapshots_mjpeg_and_errors() {
    let s = setup("mjpeg-e2e");
    let addr = s.addr;

    // snapshot.jpg of an H.264 stream (decoded) and of an MJPEG one
    // (passed through): whole JPEGs of the camera's size.
    let r = snapshot(addr, "/api/cameras/a/snapshot.jpg?stream=main");
    if cfg!(feature = "h264-snapshots") {
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.header("Content-Type").unwrap(), "image/jpeg");
        assert_eq!(jpeg_size(&r.body), Some((640, 360)));
        assert_eq!(
            r.header("Content-Length").unwrap(),
            r.body.len().to_string()
        );
    } else {
        assert_eq!(r.status, 415);
        assert!(r.error().contains("h264-snapshots"), "{}", r.error());
    }
    let r = snapshot(addr, "/api/cameras/a/snapshot.jpg?stream=sub");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(jpeg_size(&r.body), Some((640, 360)));
    // Without `stream`, the sub stream (live, cheaper) is chosen.
    let r = get(addr, "/api/cameras/a/snapshot.jpg");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("X-Vigil-Stream").as_deref(), Some("sub"));
    assert!(jpeg_size(&r.body).is_some());

    // H.265: refused, saying why.
    let r = snapshot(addr, "/api/cameras/h/snapshot.jpg");
    assert_eq!(r.status, 415);
    assert!(r.error().contains("H.265"), "{}", r.error());
    let r = get(addr, "/api/cameras/h/mjpeg");
    assert_eq!(r.status, 415);
    assert!(r.error().contains("H.265"), "{}", r.error());

    // Errors as JSON.
    for (target, status, needle) in [
        ("/api/cameras/nope/snapshot.jpg", 404, "nope"),
        ("/api/cameras/nope/mjpeg", 404, "nope"),
        ("/api/cameras/a/snapshot.jpg?stream=third", 400, "stream"),
        ("/api/cameras/a/mjpeg?stream=third", 400, "stream"),
        (
            "/api/cameras/h/snapshot.jpg?stream=sub",
            404,
            "no sub stream",
        ),
        ("/api/cameras/h/mjpeg?stream=sub", 404, "no sub stream"),
    ] {
        let r = get(addr, target);
        assert_eq!(r.status, status, "{target}");
        assert!(r.error().contains(needle), "{target}: {}", r.error());
    }
    let r = request(addr, "HEAD", "/api/cameras/a/mjpeg?stream=sub");
    assert_eq!(r.status, 200);
    assert!(r
        .header("Content-Type")
        .unwrap()
        .starts_with("multipart/x-mixed-replace"));
    assert!(r.body.is_empty());

    // mjpeg of the MJPEG sub stream (10 fps at the camera): FPS parts a
    // second, each a whole JPEG, counted over a measured window.
    let mut c = MjpegClient::open(addr, "/api/cameras/a/mjpeg?stream=sub");
    let first = c.next_part().expect("a first part");
    assert_eq!(jpeg_size(&first), Some((640, 360)));
    let t0 = Instant::now();
    let mut parts = 0u32;
    let mut repeats = 0;
    let mut prev = first;
    while t0.elapsed() < Duration::from_secs(3) {
        let p = c.next_part().expect("parts keep coming");
        assert_eq!(jpeg_size(&p), Some((640, 360)));
        repeats += u32::from(p == prev);
        prev = p;
        parts += 1;
    }
    let rate = f64::from(parts) / t0.elapsed().as_secs_f64();
    assert!(
        rate > f64::from(FPS) * 0.7 && rate < f64::from(FPS) * 1.3,
        "{parts} parts in {:?}: {rate:.2}/s, configured {FPS}",
        t0.elapsed()
    );
    // A source faster than FPS: a new picture every time (but for a rare
    // tick that came before the camera's next frame).
    assert!(repeats <= 1, "{repeats} repeats in {parts} parts");

    // mjpeg of the H.264 main stream: the same rate, the newest decoded
    // key frame each time (the clip has one every 2 s).
    if cfg!(feature = "h264-snapshots") {
        let mut c = MjpegClient::open(addr, "/api/cameras/a/mjpeg?stream=main");
        c.next_part().expect("a first part");
        let t0 = Instant::now();
        let mut parts = 0u32;
        let mut distinct = std::collections::HashSet::new();
        while t0.elapsed() < Duration::from_secs(4) {
            let p = c.next_part().expect("parts keep coming");
            assert_eq!(jpeg_size(&p), Some((640, 360)));
            distinct.insert(p);
            parts += 1;
        }
        let rate = f64::from(parts) / t0.elapsed().as_secs_f64();
        assert!(
            rate > f64::from(FPS) * 0.7 && rate < f64::from(FPS) * 1.3,
            "{parts} parts: {rate:.2}/s, configured {FPS}"
        );
        assert!(
            (2..=4).contains(&distinct.len()),
            "{} distinct pictures in 4 s of a 2 s GOP",
            distinct.len()
        );
    }

    // Stopping the server ends an open mjpeg response promptly: no more
    // parts come.
    let Setup {
        dir,
        cam,
        rec,
        http,
        ..
    } = s;
    let t = Instant::now();
    http.stop();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "stop took {:?}",
        t.elapsed()
    );
    c.sock
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut after = 0;
    while c.next_part().is_some() {
        after += 1;
        // What was already in the socket buffers (the client read nothing
        // for 4 s), and no more.
        assert!(after < 4 * FPS as usize + 20, "still streaming");
    }
    assert!(c.ended, "the connection was not closed");
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
    rec.shutdown(Duration::from_secs(5)).unwrap();
    cam.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_camera_that_stops_ends_the_response() {
    let s = setup("mjpeg-dead");
    let r = snapshot(s.addr, "/api/cameras/a/snapshot.jpg?stream=sub");
    assert_eq!(r.status, 200);
    // The scenario is the passing time itself: the producer the snapshot
    // started sits idle, without looking at the ring, longer than a
    // camera may be silent; a viewer coming then still gets parts.
    std::thread::sleep(Duration::from_secs(11));
    let mut c = MjpegClient::open(s.addr, "/api/cameras/a/mjpeg?stream=sub");
    let t = Instant::now();
    let mut parts = 0;
    while t.elapsed() < Duration::from_secs(2) {
        c.next_part().expect("parts keep coming");
        parts += 1;
    }
    assert!(parts >= FPS, "{parts} parts in 2 s");
    let Setup {
        dir,
        cam,
        rec,
        http,
        ..
    } = s;
    cam.stop();
    let t = Instant::now();
    c.sock
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    while c.next_part().is_some() {
        assert!(t.elapsed() < Duration::from_secs(20), "still streaming");
    }
    // The server ended it (closed), the client did not time out.
    assert!(c.ended, "not closed after {:?}", t.elapsed());
    let took = t.elapsed();
    assert!(
        took > Duration::from_secs(8) && took < Duration::from_secs(16),
        "ended after {took:?}"
    );
    http.stop();
    rec.shutdown(Duration::from_secs(5)).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs ffprobe on `bytes` (written to `dir/name`): width and height of
/// its first video stream, and the frames it decoded.
fn ffprobe(bytes: &[u8], dir: &Path, name: &str) -> (u32, u32, u32) {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=width,height,nb_read_frames"])
        .args(["-of", "csv=p=0"])
        .arg(&path)
        .output()
        .expect("ffprobe (make test installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.trim().is_empty(),
        "{name}: {err}"
    );
    let v: Vec<u32> = text.trim().split(',').map(|x| x.parse().unwrap()).collect();
    (v[0], v[1], v[2])
}

/// PSNR (dB, RGB average) of the JPEG at `jpeg` against frame `n` of the
/// built-in H.264 clip as ffmpeg decodes it.
fn psnr_against_clip_frame(jpeg: &Path, n: u32) -> f64 {
    let clip = concat!(env!("CARGO_MANIFEST_DIR"), "/src/camera/clips/h264.264");
    let out = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-i"])
        .arg(jpeg)
        .args(["-i", clip, "-lavfi"])
        .arg(format!(
            "[1:v]select=eq(n\\,{n}),format=rgb24[r];[0:v]format=rgb24[j];[j][r]psnr"
        ))
        .args(["-frames:v", "1", "-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    let err = String::from_utf8_lossy(&out.stderr);
    let avg = err
        .split("average:")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .unwrap_or_else(|| panic!("no PSNR in {err}"));
    if avg == "inf" {
        return f64::INFINITY;
    }
    avg.parse().unwrap()
}

#[test]
#[ignore = "needs ffmpeg (run by make test)"]
fn ffmpeg_decodes_snapshots_and_the_mjpeg_stream() {
    let s = setup("mjpeg-ffmpeg");
    let addr = s.addr;
    let mut targets = vec![("sub", "mjpeg.jpg")];
    if cfg!(feature = "h264-snapshots") {
        targets.push(("main", "h264.jpg"));
    }
    for (stream, name) in targets {
        let r = snapshot(
            addr,
            &format!("/api/cameras/a/snapshot.jpg?stream={stream}"),
        );
        assert_eq!(r.status, 200);
        assert_eq!(ffprobe(&r.body, &s.dir, name), (640, 360, 1));
        if stream == "main" {
            // The picture is right, colours and levels too: close to
            // ffmpeg's own decoding of one of the clip's two key frames.
            let best = [0, 50]
                .iter()
                .map(|n| psnr_against_clip_frame(&s.dir.join(name), *n))
                .fold(0.0, f64::max);
            assert!(best > 30.0, "PSNR {best:.1} dB");
        }
    }
    // ffmpeg's own multipart demuxer reads the live stream over HTTP.
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-f", "mpjpeg", "-i"])
        .arg(format!("http://{addr}/api/cameras/a/mjpeg?stream=sub"))
        .args(["-frames:v", "6", "-f", "framecrc", "-"])
        .output()
        .expect("ffmpeg");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.trim().is_empty(), "{err}");
    let frames = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("0,"))
        .count();
    assert_eq!(frames, 6);
    s.finish();
}
