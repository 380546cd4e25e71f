//! `make bench` part: latency of the `recordings` list. The index is
//! filled with 24 hours of 8 streams through the real arena, writer, pools
//! and index (60-second recordings, as `vigil run` makes them), then
//! `GET /api/cameras/{name}/recordings` is timed over HTTP on 127.0.0.1:
//! the whole day of one camera (1440 rows), one hour of it, and the whole
//! day of all eight cameras one after the other (what the page's timeline
//! asks for).
//!
//! The frames are tiny and come at 5 fps (a key frame every 2 s): what the
//! list costs depends on the number of recordings, not on the bytes of
//! video, and 24 h x 8 streams at a real bitrate would be 170 GB.
//! `VIGIL_BENCH_LIST_HOURS` shortens the day (the quick mode uses 6).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vigil::arena::{self, FrameMeta, Push};
use vigil::config::{self, StreamKind};
use vigil::serve::router::ServeContext;
use vigil::serve::HttpServer;
use vigil::store::{self, format, writer::Writer, writer::WriterStream};
use vigil::stream::StreamStatus;
use vigil::stream::{Codec, VideoParams};

const TICKS: i64 = 90_000;
const FPS: i64 = 5;
const GOP: i64 = 10;
const STREAMS: usize = 8;
const FRAME_BYTES: usize = 64;

fn main() {
    let hours: i64 = std::env::var("VIGIL_BENCH_LIST_HOURS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&h| h > 0 && h <= 24)
        .unwrap_or(24);
    let dir = std::env::temp_dir().join(format!("vigil-bench-list-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = config::parse_str(
        "[storage]\npath = \"d\"\npool_size_mb = 64\npools = 8\n[http]\nauth = false\n",
        &dir,
    )
    .unwrap();

    let t = Instant::now();
    let wall0 = fill(&cfg, hours);
    println!(
        "recordings list: filled {hours} h x {STREAMS} streams ({} recordings of 60 s, {} frames) in {:.1} s",
        hours * 60 * STREAMS as i64,
        hours * 3600 * FPS * STREAMS as i64,
        t.elapsed().as_secs_f64()
    );

    let ctx = Arc::new(ServeContext {
        running: Default::default(),
        db_path: cfg.storage.db.clone(),
        storage: cfg.storage.clone(),
        started: Instant::now(),
        arena_bytes: 0,
        route_hooks: Vec::new(),
        auth: None,
        counters: Default::default(),
    });
    let http = HttpServer::start(([127, 0, 0, 1], 0).into(), ctx, 4).unwrap();
    let addr = http.local_addr();
    let s0 = wall0 / TICKS;
    let day = format!("start={s0}&end={}", s0 + hours * 3600);
    let hour = format!("start={}&end={}", s0 + 1800, s0 + 1800 + 3600);

    for (label, query) in [("whole span, 1 camera", &day), ("1 hour, 1 camera", &hour)] {
        let mut runs: Vec<(Duration, usize)> = (0..7)
            .map(|_| get(addr, &format!("/api/cameras/cam1/recordings?{query}")))
            .collect();
        runs.sort();
        let (median, rows) = runs[3];
        println!(
            "recordings list, {label}: {rows} rows; median of 7 {:.2} ms, max {:.2} ms",
            median.as_secs_f64() * 1000.0,
            runs[6].0.as_secs_f64() * 1000.0
        );
    }
    let mut all = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let mut rows = 0;
        for c in 1..=STREAMS {
            rows += get(addr, &format!("/api/cameras/cam{c}/recordings?{day}")).1;
        }
        all.push((t.elapsed(), rows));
    }
    all.sort();
    println!(
        "recordings list, whole span, all {STREAMS} cameras in turn: {} rows; median of 5 {:.2} ms",
        all[2].1,
        all[2].0.as_secs_f64() * 1000.0
    );
    http.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// GET over a fresh connection: (time to the last byte, JSON rows).
fn get(addr: std::net::SocketAddr, target: &str) -> (Duration, usize) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let t = Instant::now();
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = Vec::new();
    s.read_to_end(&mut body).unwrap();
    let took = t.elapsed();
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.starts_with("HTTP/1.1 200"),
        "{}",
        &text[..text.len().min(300)]
    );
    (took, text.matches("\"start_90k\"").count())
}

/// Writes `hours` of 8 interleaved synthetic streams; returns the first
/// frame's wall time.
fn fill(cfg: &config::Config, hours: i64) -> i64 {
    let storage = store::open::open_for_writing(&cfg.storage).unwrap();
    let mut rings = arena::carve(8 << 20, &[1; STREAMS]).unwrap();
    let mut db = storage.db;
    let mut streams = Vec::new();
    let mut writers = Vec::new();
    for (i, (ring, reader)) in rings.drain(..).enumerate() {
        let name = format!("cam{}", i + 1);
        let stream_id = db.stream_id(&name, "main").unwrap();
        streams.push(WriterStream {
            stream_id,
            camera: name.clone(),
            kind: "main",
            label: format!("{name}/main"),
            priority: 1,
            segment_90k: 60 * TICKS,
            stagger_90k: 0,
            ring: reader,
            status: Arc::new(StreamStatus::new(&name, StreamKind::Main)),
        });
        writers.push(ring);
    }
    let mut writer = Writer::new(
        storage.pools,
        db,
        storage.open_id,
        storage.position,
        streams,
        Duration::from_secs(3600),
    )
    .unwrap();
    let p = VideoParams {
        codec: Codec::H264,
        width: 640,
        height: 360,
        fps_milli: Some(FPS as u32 * 1000),
        rfc6381_codec: "avc1.4d401e".into(),
        decoder_config: vec![1, 0x4d, 0x40, 0x1e, 0xff, 0xe0, 0],
    };
    let mut params = Vec::new();
    format::encode_params(&p, &mut params);
    let mut frame = [0u8; FRAME_BYTES];
    frame[..4].copy_from_slice(&(FRAME_BYTES as u32 - 4).to_be_bytes());
    frame[4] = 12;
    // Dated a year back, so that nothing the bench does is "now".
    let wall0 = 1_763_769_600 * TICKS;
    for k in 0..FPS * 3600 * hours {
        for ring in &mut writers {
            let meta = FrameMeta {
                timestamp_90k: k * TICKS / FPS,
                wall_90k: wall0 + k * TICKS / FPS,
                key: k % GOP == 0,
                discontinuity: false,
            };
            let extra: &[u8] = if k == 0 { &params } else { &[] };
            assert_eq!(ring.push(&meta, extra, &frame), Push::Stored);
        }
        if k % FPS == FPS - 1 {
            writer.write_available(false).unwrap();
        }
        if k % (FPS * 600) == FPS * 600 - 1 {
            writer.sync_and_commit().unwrap();
        }
    }
    writer.write_available(true).unwrap();
    writer.sync_and_commit().unwrap();
    drop(writer);
    drop(storage.lock);
    wall0
}
