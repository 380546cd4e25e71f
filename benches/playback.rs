//! `make bench` part: serving recorded video. One hour of a 2 Mbit/s,
//! 30 fps stream is written through the real arena, writer, pools and
//! index (synthetic frames, as fast as the disk takes them), then
//! `view.mp4` of the whole hour is fetched over HTTP from 127.0.0.1:
//! printed are the time to first byte (planning from the index and
//! building the `moov` happen before it, since `Content-Length` is sent
//! first), the throughput of the body, and a one-minute range for
//! comparison.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vigil::arena::{self, FrameMeta, Push};
use vigil::config::{self, StreamKind};
use vigil::serve::router::ServeContext;
use vigil::serve::HttpServer;
use vigil::store::{self, format, pool::Pools, writer::Writer, writer::WriterStream};
use vigil::stream::StreamStatus;
use vigil::stream::{Codec, VideoParams};

const TICKS: i64 = 90_000;
const FPS: i64 = 30;
const SECONDS: i64 = 3600;
const BITRATE: i64 = 2_000_000;
const GOP: i64 = 30;

fn main() {
    let dir = std::env::temp_dir().join(format!("vigil-bench-playback-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = config::parse_str(
        "[storage]\npath = \"d\"\npool_size_mb = 128\npools = 8\n[http]\nauth = false\n",
        &dir,
    )
    .unwrap();

    let t = Instant::now();
    let start_90k = write_hour(&cfg);
    let wrote = t.elapsed();
    let data_mb = (BITRATE / 8 * SECONDS) as f64 / 1e6;
    println!(
        "wrote 1 h of {} kbit/s video ({data_mb:.0} MB, {} frames) in {:.1} s",
        BITRATE / 1000,
        FPS * SECONDS,
        wrote.as_secs_f64()
    );

    let uuid = format::read_meta(&cfg.storage.path).unwrap();
    let pools = Pools::open(
        &cfg.storage.path,
        &uuid,
        cfg.storage.pools,
        u64::from(cfg.storage.pool_size_mb) << 20,
    )
    .unwrap();
    let ctx = Arc::new(ServeContext {
        running: Default::default(),
        db_path: cfg.storage.db.clone(),
        storage: cfg.storage.clone(),
        started: Instant::now(),
        arena_bytes: 0,
        route_hooks: vec![vigil::serve::view::hook(
            cfg.storage.db.clone(),
            pools.reader(),
        )],
        auth: None,
        counters: Default::default(),
    });
    let http = HttpServer::start(([127, 0, 0, 1], 0).into(), ctx, 4).unwrap();
    let addr = http.local_addr();

    let secs = |s: i64| (start_90k / TICKS) + s;
    for (label, from, to) in [
        ("1 minute", secs(1800), secs(1860)),
        ("1 hour", secs(0), secs(SECONDS)),
    ] {
        let mut runs = Vec::new();
        for _ in 0..3 {
            runs.push(fetch(
                addr,
                &format!("/api/cameras/cam/view.mp4?start={from}&end={to}"),
            ));
        }
        runs.sort_by_key(|r| r.0);
        let (ttfb, total, bytes) = runs[1];
        let body_s = (total - ttfb).as_secs_f64();
        println!(
            "view.mp4, {label}: {:.1} MB; time to first byte {:.1} ms (median of 3); \
             body at {:.0} MB/s; whole response {:.2} s",
            bytes as f64 / 1e6,
            ttfb.as_secs_f64() * 1000.0,
            bytes as f64 / 1e6 / body_s.max(1e-9),
            total.as_secs_f64()
        );
    }
    // From disk rather than the page cache, where the kernel lets us drop it.
    let from = secs(0);
    let to = secs(SECONDS);
    if drop_caches() {
        let (ttfb, total, bytes) = fetch(
            addr,
            &format!("/api/cameras/cam/view.mp4?start={from}&end={to}"),
        );
        println!(
            "view.mp4, 1 hour, cold page cache: time to first byte {:.1} ms; body at {:.0} MB/s",
            ttfb.as_secs_f64() * 1000.0,
            bytes as f64 / 1e6 / (total - ttfb).as_secs_f64().max(1e-9)
        );
    } else {
        println!("(no cold-cache run: cannot write /proc/sys/vm/drop_caches)");
    }
    http.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

fn drop_caches() -> bool {
    let synced = std::process::Command::new("sync")
        .status()
        .is_ok_and(|s| s.success());
    synced && std::fs::write("/proc/sys/vm/drop_caches", "3\n").is_ok()
}

/// GET over a fresh connection: (time to the first byte of the answer,
/// time to its last byte, body bytes).
fn fetch(addr: std::net::SocketAddr, target: &str) -> (Duration, Duration, u64) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let t = Instant::now();
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = vec![0u8; 256 * 1024];
    let mut first = None;
    let mut total: u64 = 0;
    let mut head = Vec::new();
    loop {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        first.get_or_insert_with(|| t.elapsed());
        if head.len() < 4096 {
            head.extend_from_slice(&buf[..n.min(4096)]);
        }
        total += n as u64;
    }
    let done = t.elapsed();
    let head_text = String::from_utf8_lossy(&head);
    assert!(head_text.starts_with("HTTP/1.1 200"), "{head_text}");
    let head_len = head_text.find("\r\n\r\n").unwrap() as u64 + 4;
    (first.unwrap(), done, total - head_len)
}

/// Writes one hour of synthetic frames; returns the first frame's wall time.
fn write_hour(cfg: &config::Config) -> i64 {
    let storage = store::open::open_for_writing(&cfg.storage).unwrap();
    let mut rings = arena::carve(8 << 20, &[1]).unwrap();
    let (mut ring, reader) = rings.remove(0);
    let mut db = storage.db;
    let stream_id = db.stream_id("cam", "main").unwrap();
    let mut writer = Writer::new(
        storage.pools,
        db,
        storage.open_id,
        storage.position,
        vec![WriterStream {
            stream_id,
            camera: "cam".into(),
            kind: "main",
            label: "cam/main".into(),
            priority: 1,
            segment_90k: 60 * TICKS,
            stagger_90k: 0,
            ring: reader,
            status: Arc::new(StreamStatus::new("cam", StreamKind::Main)),
        }],
        Duration::from_secs(3600),
    )
    .unwrap();
    let p = VideoParams {
        codec: Codec::H264,
        width: 1280,
        height: 720,
        fps_milli: Some(30_000),
        rfc6381_codec: "avc1.4d401f".into(),
        decoder_config: vec![1, 0x4d, 0x40, 0x1f, 0xff, 0xe0, 0],
    };
    let mut params = Vec::new();
    format::encode_params(&p, &mut params);
    // Key frames five times the size of the others, 2 Mbit/s on average.
    let per_gop = BITRATE / 8 * GOP / FPS;
    let small = (per_gop / (GOP + 4)) as usize;
    let key = small * 5;
    let mut frame = vec![0u8; key];
    let wall0 = 1_795_255_200 * TICKS;
    for k in 0..FPS * SECONDS {
        let is_key = k % GOP == 0;
        let len = if is_key { key } else { small };
        // One length-prefixed NAL unit (a filler: the bytes do not matter).
        frame[..4].copy_from_slice(&(len as u32 - 4).to_be_bytes());
        frame[4] = 12;
        let meta = FrameMeta {
            timestamp_90k: k * TICKS / FPS,
            wall_90k: wall0 + k * TICKS / FPS,
            key: is_key,
            discontinuity: false,
        };
        let extra: &[u8] = if k == 0 { &params } else { &[] };
        assert_eq!(ring.push(&meta, extra, &frame[..len]), Push::Stored);
        if k % 30 == 29 {
            writer.write_available(false).unwrap();
        }
        if k % 600 == 599 {
            writer.sync_and_commit().unwrap();
        }
    }
    writer.write_available(true).unwrap();
    writer.sync_and_commit().unwrap();
    drop(writer);
    drop(storage.lock);
    wall0
}
