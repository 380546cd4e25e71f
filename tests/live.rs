//! `live.mp4` end to end: the built-in camera, a recorder, the HTTP server
//! on loopback, and a few seconds of the body decoded by the real
//! ffmpeg: it starts with a key frame, decodes with no error, and decode
//! times run on without a hole. A stream that is not recorded is watched
//! live all the same; a stopping server ends the response.

mod common;

use common::temp_dir;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vigil::camera::{CameraServer, ServerOptions};
use vigil::config;
use vigil::daemon::recorder::Recorder;
use vigil::serve::HttpServer;
use vigil::store;

const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens `target` and reads for `duration` (or until the server closes):
/// returns the response head and the body so far.
fn read_for(addr: SocketAddr, target: &str, duration: Duration) -> (String, Vec<u8>) {
    let mut s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let deadline = Instant::now() + duration;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("{e}"),
        }
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    (head, raw[split + 4..].to_vec())
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

/// The top-level box types of `b`, up to the last complete box; and the
/// length up to the end of the last complete `mdat` (where a player has
/// whole frames).
fn top_boxes(b: &[u8]) -> (Vec<String>, usize) {
    let mut names = Vec::new();
    let mut at = 0;
    let mut whole = 0;
    while at + 8 <= b.len() {
        let size = be32(b, at) as usize;
        assert!(size >= 8, "box size {size} at {at}");
        if at + size > b.len() {
            break;
        }
        let name = String::from_utf8_lossy(&b[at + 4..at + 8]).into_owned();
        at += size;
        if name == "mdat" {
            whole = at;
        }
        names.push(name);
    }
    (names, whole)
}

/// ffmpeg decodes `file` with no error; ffprobe's packets: (dts, key).
fn decode(file: &std::path::Path) -> Vec<(i64, bool)> {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(file)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.is_empty(), "ffmpeg: {err}");
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["packet=dts,flags", "-of", "csv=p=0"])
        .arg(file)
        .output()
        .expect("ffprobe");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (dts, flags) = l.split_once(',').unwrap();
            (dts.parse().unwrap(), flags.starts_with('K'))
        })
        .collect()
}

#[test]
#[ignore = "needs ffmpeg (run by make test)"]
fn live_mp4_plays_from_a_key_frame() {
    let dir = temp_dir("live-mp4");
    let cam = CameraServer::start(ServerOptions {
        listen: ([127, 0, 0, 1], 0).into(),
        auth: None,
        bitrate_kbps: None,
    })
    .unwrap();
    let text = format!(
        "[storage]\npath = \"data\"\npool_size_mb = 8\npools = 2\nsync_interval_ms = 500\n\
         [system]\nstream_start_spacing_ms = 0\n\
         [http]\nlisten = \"127.0.0.1:0\"\nauth = false\n\
         [[camera]]\nname = \"a\"\nurl = \"{}\"\n\
         [[camera]]\nname = \"b\"\nurl = \"{}\"\nsub_url = \"{}\"\nrecord = \"none\"\n",
        cam.url("h264/a"),
        cam.url("h265/b"),
        cam.url("mjpeg/b"),
    );
    let cfg = config::parse_str(&text, &dir).unwrap();
    let storage = store::open::open_for_writing(&cfg.storage).unwrap();
    let rec = Recorder::start(&cfg, storage).unwrap();
    let ctx = Arc::new(vigil::serve::context(&cfg, &rec));
    let http = HttpServer::start(cfg.http.listen, ctx, cfg.http.max_clients).unwrap();
    let addr = http.local_addr();
    // Wait for video in the rings: until then, a clear 503.
    for target in ["/api/cameras/a/live.mp4", "/api/cameras/b/live.mp4"] {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (head, body) = read_for(addr, target, Duration::from_millis(300));
            if head.starts_with("HTTP/1.1 200") {
                break;
            }
            assert!(head.starts_with("HTTP/1.1 503"), "{head}");
            assert!(String::from_utf8_lossy(&body).contains("error"));
            assert!(Instant::now() < deadline, "no live video");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    // A second's worth more in the rings.
    std::thread::sleep(Duration::from_secs(1));

    // a/main (recorded, H.264) and b/main (not recorded, H.265): three
    // seconds of each.
    for (target, name) in [
        ("/api/cameras/a/live.mp4", "a.mp4"),
        ("/api/cameras/b/live.mp4?stream=main", "b.mp4"),
    ] {
        let (head, body) = read_for(addr, target, Duration::from_secs(3));
        assert!(head.starts_with("HTTP/1.1 200"), "{target}: {head}");
        assert!(head.contains("Content-Type: video/mp4"), "{head}");
        // Delimited by the end of the connection, so that every frame goes
        // out at once (no length, no chunking).
        assert!(!head.contains("Content-Length"), "{head}");
        assert!(!head.contains("Transfer-Encoding"), "{head}");
        let (boxes, complete) = top_boxes(&body);
        assert_eq!(boxes[..2], ["ftyp", "moov"], "{target}");
        assert_eq!(boxes[2], "moof");
        let fragments = boxes.iter().filter(|b| *b == "moof").count();
        assert!(fragments >= 50, "{target}: {fragments} fragments in 3 s");
        // Cut at the last whole box, as a player would have it so far.
        let file = dir.join(name);
        std::fs::write(&file, &body[..complete]).unwrap();
        let packets = decode(&file);
        assert!(packets.len() + 1 >= fragments, "{} packets", packets.len());
        assert!(packets.len() >= 50);
        assert!(packets[0].1, "{target}: starts with a key frame");
        assert_eq!(packets[0].0, 0);
        for w in packets.windows(2) {
            let d = w[1].0 - w[0].0;
            assert!((1..=9000).contains(&d), "{target}: dts step {d}");
        }
    }

    // Errors are short JSON answers.
    let (head, body) = read_for(
        addr,
        "/api/cameras/b/live.mp4?stream=sub",
        Duration::from_secs(2),
    );
    assert!(head.starts_with("HTTP/1.1 409"), "{head}");
    assert!(String::from_utf8_lossy(&body).contains("mjpeg"));
    let (head, _) = read_for(
        addr,
        "/api/cameras/a/live.mp4?stream=sub",
        Duration::from_secs(2),
    );
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    let (head, _) = read_for(
        addr,
        "/api/cameras/a/live.mp4?stream=x",
        Duration::from_secs(2),
    );
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");

    // A viewer still watching when the server stops: its response ends.
    let mut viewer = TcpStream::connect(addr).unwrap();
    viewer
        .write_all(b"GET /api/cameras/a/live.mp4 HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    viewer.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut buf = [0u8; 4096];
    assert!(viewer.read(&mut buf).unwrap() > 0);
    let t = Instant::now();
    http.stop();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "stop took {:?}",
        t.elapsed()
    );
    let t = Instant::now();
    loop {
        match viewer.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => assert!(t.elapsed() < Duration::from_secs(5), "still streaming"),
        }
    }
    rec.shutdown(Duration::from_secs(5)).unwrap();
    cam.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
