//! Serving under load, end to end against the real binary: `vigil run`
//! records four streams of the built-in camera (`vigil camera`, its own
//! process) while twenty clients download recorded ranges (`view.mp4`,
//! `export.ts`) and watch live (`live.mp4`, `mjpeg`) at once. Recording
//! must not drop a frame, every response must complete, and the recorder's
//! peak memory must stay bounded. Also: a download whose pool is reclaimed
//! under it is cut off, never handed other bytes.

mod common;

use common::http::{Resp, IO_TIMEOUT};
use common::{spawn_and_find, temp_dir, vigil_cmd, wait_for, Proc};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn start_camera(dir: &Path) -> (Proc, String) {
    let cmd = vigil_cmd(&[
        "camera",
        "--listen",
        "127.0.0.1:0",
        "--bitrate-kbps",
        "1000",
    ]);
    let (p, url) = spawn_and_find(cmd, "rtsp://", Some(dir.join("camera.log")));
    (p, format!("rtsp://{}", url.trim_end_matches('/')))
}

fn start_vigil(cfg: &Path, dir: &Path) -> (Proc, SocketAddr) {
    let cmd = vigil_cmd(&["-c", cfg.to_str().unwrap(), "run"]);
    let (p, addr) = spawn_and_find(cmd, "http: listening on ", Some(dir.join("vigil.log")));
    (p, addr.parse().unwrap())
}

/// How much of a body to read.
#[derive(Clone, Copy)]
enum Take {
    All,
    /// Until this much time has passed (live bodies never end).
    For(Duration),
}

/// GET `target`, reading the body as `take` says; a chunked body is
/// de-chunked. With the answer comes whether its body ended as the framing
/// said (Content-Length reached, or the last chunk), rather than by a
/// closed connection or a timeout.
fn get(addr: SocketAddr, target: &str, take: Take) -> (Resp, bool) {
    let mut s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut r = BufReader::with_capacity(64 * 1024, s);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut resp = Resp {
        status,
        head,
        body: Vec::new(),
    };
    let mut complete = false;
    let until = match take {
        Take::All => None,
        Take::For(d) => Some(Instant::now() + d),
    };
    let chunked = resp
        .header("Transfer-Encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let len: Option<usize> = resp.header("Content-Length").and_then(|v| v.parse().ok());
    let mut buf = vec![0u8; 64 * 1024];
    if chunked {
        loop {
            if until.is_some_and(|u| Instant::now() >= u) {
                break;
            }
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            let Ok(n) = usize::from_str_radix(line.trim(), 16) else {
                break;
            };
            if n == 0 {
                complete = true;
                break;
            }
            let at = resp.body.len();
            resp.body.resize(at + n, 0);
            if r.read_exact(&mut resp.body[at..]).is_err() {
                resp.body.truncate(at);
                break;
            }
            let mut crlf = [0u8; 2];
            if r.read_exact(&mut crlf).is_err() {
                break;
            }
        }
    } else {
        loop {
            if until.is_some_and(|u| Instant::now() >= u) {
                break;
            }
            if len.is_some_and(|l| resp.body.len() >= l) {
                break;
            }
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => resp.body.extend_from_slice(&buf[..n]),
            }
        }
        complete = len.is_some_and(|l| resp.body.len() == l);
    }
    (resp, complete)
}

fn status(addr: SocketAddr) -> Value {
    let (r, _) = get(addr, "/api/status", Take::All);
    assert_eq!(r.status, 200, "{}", r.head);
    r.json()
}

/// Every recorded stream's (camera/stream, frames, frames dropped).
fn stream_counts(addr: SocketAddr) -> Vec<(String, u64, u64)> {
    let st = status(addr);
    let mut out = Vec::new();
    for cam in st["cameras"].as_array().unwrap() {
        for s in cam["streams"].as_array().unwrap() {
            out.push((
                format!(
                    "{}/{}",
                    cam["name"].as_str().unwrap(),
                    s["stream"].as_str().unwrap()
                ),
                s["frames"].as_u64().unwrap_or(0),
                s["frames_dropped"].as_u64().unwrap_or(0),
            ));
        }
    }
    out
}

/// `VmHWM` (peak resident memory) of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// The recorded span of `camera/stream` as (start_90k, end_90k) over all
/// its recordings.
fn recorded_span(addr: SocketAddr, camera: &str, stream: &str) -> Option<(i64, i64)> {
    let (r, _) = get(
        addr,
        &format!("/api/cameras/{camera}/recordings?stream={stream}"),
        Take::All,
    );
    if r.status != 200 {
        return None;
    }
    let v = r.json();
    let recs = v.as_array()?;
    let start = recs.iter().filter_map(|r| r["start_90k"].as_i64()).min()?;
    let end = recs.iter().filter_map(|r| r["end_90k"].as_i64()).max()?;
    Some((start, end))
}

fn ffmpeg_decodes(bytes: &[u8], name: &str, dir: &Path) {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&path)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    let errors = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && errors.trim().is_empty(),
        "{name} does not decode cleanly: {errors}"
    );
}

#[test]
#[ignore = "needs ffmpeg (run by make test)"]
fn twenty_clients_while_recording_four_streams() {
    let dir = temp_dir("serve-load");
    let (_camera, base) = start_camera(&dir);
    let cfg = dir.join("vigil.toml");
    std::fs::write(
        &cfg,
        format!(
            "[storage]\npath = \"data\"\npool_size_mb = 16\npools = 4\nsync_interval_ms = 500\n\
             [memory]\narena_mb = 8\n\
             [http]\nlisten = \"127.0.0.1:0\"\nauth = false\nmax_clients = 24\n\
             [system]\nstream_start_spacing_ms = 0\n\
             [[camera]]\nname = \"a\"\nurl = \"{base}/h264/a\"\nsub_url = \"{base}/h264/asub\"\n\
             record = \"both\"\nsegment_seconds = 5\n\
             [[camera]]\nname = \"b\"\nurl = \"{base}/h265/b\"\nsub_url = \"{base}/mjpeg/bsub\"\n\
             record = \"both\"\nsegment_seconds = 5\n"
        ),
    )
    .unwrap();
    let (vigil, addr) = start_vigil(&cfg, &dir);
    let pid = vigil.0.id();

    // Several recordings of each stream before the clients come.
    let spans: Vec<(&str, &str, (i64, i64))> =
        [("a", "main"), ("a", "sub"), ("b", "main"), ("b", "sub")]
            .into_iter()
            .map(|(c, s)| {
                let span = wait_for(Duration::from_secs(40), "recordings", || {
                    recorded_span(addr, c, s).filter(|(a, b)| b - a >= 6 * 90_000)
                });
                (c, s, span)
            })
            .collect();
    let before = stream_counts(addr);
    assert_eq!(before.len(), 4, "{before:?}");
    let rss_before = peak_rss_kib(pid);

    let live = Duration::from_secs(5);
    let mut targets: Vec<(String, Take)> = Vec::new();
    for i in 0..5 {
        let (c, s, (a, b)) = spans[i % spans.len()];
        targets.push((
            format!(
                "/api/cameras/{c}/view.mp4?stream={s}&start={}&end={}",
                a / 90_000,
                b / 90_000
            ),
            Take::All,
        ));
        // MPEG-TS of the H.264/H.265 streams only (b/sub is MJPEG).
        let (c, s, (a, b)) = spans[i % 3];
        targets.push((
            format!(
                "/api/cameras/{c}/export.ts?stream={s}&start={}&end={}",
                a / 90_000,
                b / 90_000
            ),
            Take::All,
        ));
    }
    // Live fMP4 of the H.264/H.265 streams (JPEG does not go in fMP4).
    for (c, s) in [
        ("a", "main"),
        ("a", "sub"),
        ("b", "main"),
        ("b", "main"),
        ("a", "main"),
    ] {
        targets.push((
            format!("/api/cameras/{c}/live.mp4?stream={s}"),
            Take::For(live),
        ));
    }
    for (c, s) in [
        ("b", "sub"),
        ("b", "sub"),
        ("a", "sub"),
        ("a", "sub"),
        ("a", "main"),
    ] {
        targets.push((
            format!("/api/cameras/{c}/mjpeg?stream={s}"),
            Take::For(live),
        ));
    }
    assert_eq!(targets.len(), 20);

    let started = Instant::now();
    let results: Vec<(String, (Resp, bool))> = std::thread::scope(|s| {
        let handles: Vec<_> = targets
            .iter()
            .map(|(t, take)| s.spawn(move || (t.clone(), get(addr, t, *take))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let took = started.elapsed();

    for (target, (r, complete)) in &results {
        assert_eq!(r.status, 200, "{target}: {}", r.head);
        if target.contains("live.mp4") || target.contains("mjpeg") {
            // Live bodies never end; they must have flowed the whole time.
            assert!(
                r.body.len() > 50_000,
                "{target}: only {} bytes in {live:?}",
                r.body.len()
            );
        } else {
            assert!(
                *complete,
                "{target}: {} of {:?} bytes",
                r.body.len(),
                r.header("Content-Length")
            );
        }
    }
    // A sample of each kind decodes cleanly.
    for (kind, name) in [
        ("view.mp4", "load.mp4"),
        ("export.ts", "load.ts"),
        ("live.mp4", "live.mp4"),
    ] {
        let (_, (r, _)) = results.iter().find(|(t, _)| t.contains(kind)).unwrap();
        ffmpeg_decodes(&r.body, name, &dir);
    }

    let after = stream_counts(addr);
    for ((name, frames_before, _), (_, frames_after, dropped)) in before.iter().zip(&after) {
        assert_eq!(*dropped, 0, "{name} dropped frames while serving");
        assert!(frames_after > frames_before, "{name} stopped recording");
    }
    let rss_after = peak_rss_kib(pid);
    let bytes: usize = results.iter().map(|(_, (r, _))| r.body.len()).sum();
    eprintln!(
        "20 clients: {:.1} MiB served in {took:?}; vigil peak RSS {rss_before} KiB before, \
         {rss_after} KiB after",
        bytes as f64 / 1048576.0
    );
    // Bounded: each client may hold a frame or two and a copy buffer.
    assert!(
        rss_after < rss_before + 20 * 1024,
        "peak RSS grew from {rss_before} to {rss_after} KiB"
    );
}

#[test]
fn a_download_whose_pool_is_reclaimed_is_cut_off() {
    let dir = temp_dir("serve-reclaim");
    let (_camera, base) = start_camera(&dir);
    let cfg = dir.join("vigil.toml");
    // Three 1 MiB pools filled at about 1 Mbit/s: the ring wraps every
    // 24 s or so.
    std::fs::write(
        &cfg,
        format!(
            "[storage]\npath = \"data\"\npool_size_mb = 1\npools = 3\nsync_interval_ms = 500\n\
             [http]\nlisten = \"127.0.0.1:0\"\nauth = false\n\
             [system]\nstream_start_spacing_ms = 0\n\
             [[camera]]\nname = \"a\"\nurl = \"{base}/h264/a\"\nsegment_seconds = 5\n"
        ),
    )
    .unwrap();
    let (_vigil, addr) = start_vigil(&cfg, &dir);
    // A range of about 1.5 pools from the start of the ring.
    let (start, end) = wait_for(Duration::from_secs(60), "recordings", || {
        recorded_span(addr, "a", "main").filter(|(a, b)| b - a >= 12 * 90_000)
    });
    let target = format!(
        "/api/cameras/a/view.mp4?start={}&end={}",
        start / 90_000 + 1,
        end / 90_000
    );
    let (whole, complete) = get(addr, &target, Take::All);
    assert!(complete && whole.status == 200, "{}", whole.head);
    let etag = whole.header("ETag").unwrap();

    // The same download, read slowly: a small receive window and a pause
    // until the ring has come round to the range's pool.
    let sock = {
        let s = socket_with_small_rcvbuf(addr);
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s
    };
    let mut w = &sock;
    write!(
        w,
        "GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut r = BufReader::with_capacity(4096, &sock);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    assert!(head.contains(&etag), "the same file: {head}");
    let mut got = vec![0u8; 8192];
    r.read_exact(&mut got).unwrap();
    wait_for(
        Duration::from_secs(90),
        "the range's first recording to be reclaimed",
        || {
            recorded_span(addr, "a", "main")
                .filter(|(a, _)| *a >= end)
                .map(|_| ())
        },
    );
    // Whatever still arrives is the file's bytes, and the connection ends
    // before the file does.
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    assert!(
        got.len() < whole.body.len(),
        "the whole file ({} bytes) was sent after its pool was reclaimed",
        whole.body.len()
    );
    assert_eq!(&got[..], &whole.body[..got.len()], "wrong bytes were sent");
    eprintln!(
        "reclaimed mid-download: {} of {} bytes sent, then the connection closed",
        got.len(),
        whole.body.len()
    );
}

/// A client socket with a 4 KiB receive buffer, set before connecting so
/// the window it offers stays small.
fn socket_with_small_rcvbuf(addr: SocketAddr) -> TcpStream {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket calls on a descriptor we create and own; the
    // TcpStream takes ownership of it.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let size: libc::c_int = 4096;
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        let SocketAddr::V4(v4) = addr else {
            panic!("IPv4 expected")
        };
        let sin = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: v4.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*v4.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        let rc = libc::connect(
            fd,
            (&sin as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        assert_eq!(rc, 0, "connect: {}", std::io::Error::last_os_error());
        TcpStream::from_raw_fd(fd)
    }
}
