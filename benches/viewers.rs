//! `make bench` part: what a live viewer costs. The real `vigil run`
//! records one camera of the built-in simulated camera (`vigil camera`,
//! 2 Mbit/s H.264 main stream and an MJPEG sub stream); then ten clients
//! watch `live.mp4`, then ten more watch `mjpeg` of the MJPEG stream, then ten more `mjpeg`
//! decoded from the H.264 stream. Printed: the recorder's
//! resident memory before and with them, per viewer, and its CPU.

#[path = "../tests/common/mod.rs"]
mod common;

use common::{spawn_and_find, vigil_cmd};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const VIEWERS: usize = 10;
const SETTLE: Duration = Duration::from_secs(6);

/// (resident KiB, CPU ticks used so far) of a process.
fn usage(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    (rss, ticks)
}

/// Reads a long response until `stop`, counting body bytes.
fn viewer(addr: SocketAddr, target: String, stop: Arc<AtomicBool>, bytes: Arc<AtomicU64>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut first = true;
    while !stop.load(Ordering::Relaxed) {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if first {
                    assert!(
                        buf.starts_with(b"HTTP/1.1 200"),
                        "{target}: {}",
                        String::from_utf8_lossy(&buf[..n.min(200)])
                    );
                    first = false;
                }
                bytes.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
    }
}

fn main() {
    let dir = std::env::temp_dir().join(format!("vigil-bench-viewers-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (_camera, url) = spawn_and_find(
        vigil_cmd(&[
            "camera",
            "--listen",
            "127.0.0.1:0",
            "--bitrate-kbps",
            "2000",
        ]),
        "rtsp://",
        None,
    );
    let base = format!("rtsp://{}", url.trim_end_matches('/'));
    let cfg = dir.join("vigil.toml");
    std::fs::write(
        &cfg,
        format!(
            "[storage]\npath = \"data\"\npool_size_mb = 64\npools = 4\n\
             [http]\nlisten = \"127.0.0.1:0\"\nauth = false\nmax_clients = 32\n\
             [system]\nstream_start_spacing_ms = 0\n\
             [[camera]]\nname = \"a\"\nurl = \"{base}/h264/a\"\nsub_url = \"{base}/mjpeg/asub\"\n\
             record = \"main\"\n"
        ),
    )
    .unwrap();
    let (vigil, addr) = spawn_and_find(
        vigil_cmd(&["-c", cfg.to_str().unwrap(), "run"]),
        "http: listening on ",
        None,
    );
    let addr: SocketAddr = addr.parse().unwrap();
    let pid = vigil.0.id();
    std::thread::sleep(SETTLE);
    let tick_hz = 100.0; // USER_HZ on Linux
    let measure = |label: &str, before: (u64, u64), viewers: usize, bytes: Option<&AtomicU64>| {
        let t = Instant::now();
        let b0 = bytes.map(|b| b.load(Ordering::Relaxed));
        let (_, ticks0) = usage(pid);
        std::thread::sleep(SETTLE);
        let (rss, ticks1) = usage(pid);
        let cpu = (ticks1 - ticks0) as f64 / tick_hz / t.elapsed().as_secs_f64() * 100.0;
        let rate = bytes
            .zip(b0)
            .map(|(b, b0)| {
                (b.load(Ordering::Relaxed) - b0) as f64 / t.elapsed().as_secs_f64() / 1e6
            })
            .unwrap_or(0.0);
        let per = if viewers > 0 {
            format!(
                ", {:.0} KiB per viewer, {rate:.1} MB/s sent",
                (rss as f64 - before.0 as f64) / viewers as f64
            )
        } else {
            String::new()
        };
        println!("{label}: RSS {rss} KiB, CPU {cpu:.1}% of a core{per}");
        (rss, ticks1)
    };
    let idle = measure("recording, no viewers", (0, 0), 0, None);

    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for (route, stream, label) in [
        ("live.mp4", "main", "+10 live.mp4 viewers (H.264 main)"),
        (
            "mjpeg",
            "sub",
            "+10 mjpeg viewers (MJPEG sub, passed through)",
        ),
        ("mjpeg", "main", "+10 mjpeg viewers (H.264 main, decoded)"),
    ] {
        let before = usage(pid);
        let bytes = Arc::new(AtomicU64::new(0));
        for _ in 0..VIEWERS {
            let (stop, bytes) = (stop.clone(), bytes.clone());
            let target = format!("/api/cameras/a/{route}?stream={stream}");
            threads.push(std::thread::spawn(move || {
                viewer(addr, target, stop, bytes)
            }));
        }
        measure(label, before, VIEWERS, Some(&bytes));
    }
    let _ = idle;
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    let _ = std::fs::remove_dir_all(&dir);
}
