//! Steady-state receiving allocates nothing per packet.
//!
//! The built-in camera runs in its own process (`vigil camera`), so the
//! counting allocator of this test process sees only the client: the
//! stream thread and this test's thread, which only sleeps while counting.
//!
//! Over TCP the video is received by the ingest thread (`rtsp::ingest`),
//! which allocates nothing at all: the bound is a couple of allocations
//! in the whole window. Over UDP what remains is async-io's: its reactor
//! builds a small `Vec` of wakers on each wake-up that has something to
//! wake. A UDP stream wakes once per burst of packets (about once per
//! frame) and once per ticker tick, so the bound there is one and a half
//! allocations per frame plus one per tick; a single allocation per
//! packet in Vigil's own path (an MJPEG frame is about 30 packets) breaks
//! it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vigil::config::Transport;
use vigil::daemon::{spawn_stream, StreamSpec};
use vigil::stream::{DiscardSink, StopSource, StreamStatus};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.realloc(p, l, n)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

struct Camera(Child);

impl Drop for Camera {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `vigil camera` on a free port and returns its base URL.
fn start_camera() -> (Camera, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["camera", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vigil camera");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(i) = line.find("rtsp://") {
                let url = line[i..]
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .trim_end_matches('/')
                    .to_owned();
                let _ = tx.send(url);
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("camera did not report its address");
    (Camera(child), url)
}

struct Window {
    packets: u64,
    frames: u64,
    allocations: usize,
    seconds: f64,
}

fn measure(transport: Transport, path: &str) -> Window {
    let (_camera, base) = start_camera();
    let spec = StreamSpec::for_url("alloc", &format!("{base}/{path}"), transport);
    let status = Arc::new(StreamStatus::new("alloc", spec.kind));
    let stop = StopSource::new();
    let t = spawn_stream(
        spec,
        status.clone(),
        Box::new(DiscardSink),
        stop.token(),
        Duration::ZERO,
    )
    .unwrap();
    // Warm up: connected, parameters known, buffers grown to their size.
    let deadline = Instant::now() + Duration::from_secs(15);
    while status.snapshot().key_frames < 2 {
        assert!(
            Instant::now() < deadline,
            "no key frames: {:?}",
            status.snapshot()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let s1 = status.snapshot();
    let start = Instant::now();
    let a1 = ALLOCATIONS.load(Ordering::SeqCst);
    // The measuring window; this thread does nothing meanwhile.
    std::thread::sleep(Duration::from_secs(3));
    let a2 = ALLOCATIONS.load(Ordering::SeqCst);
    let seconds = start.elapsed().as_secs_f64();
    let s2 = status.snapshot();
    stop.stop();
    let _ = t.join();
    Window {
        packets: s2.packets - s1.packets,
        frames: s2.frames - s1.frames,
        allocations: a2 - a1,
        seconds,
    }
}

#[test]
fn receiving_allocates_nothing_per_packet() {
    for (transport, path) in [
        (Transport::Tcp, "h264/a"),
        (Transport::Udp, "h264/b"),
        (Transport::Tcp, "h265/c"),
        (Transport::Tcp, "mjpeg/d"),
    ] {
        let w = measure(transport, path);
        let ticks = w.seconds / vigil::stream::ticker::TICK.as_secs_f64();
        println!(
            "{path} over {transport:?}: {} packets, {} frames, {} allocations in {:.1} s: \
             {:.3} per packet, {:.3} per frame",
            w.packets,
            w.frames,
            w.allocations,
            w.seconds,
            w.allocations as f64 / w.packets.max(1) as f64,
            w.allocations as f64 / w.frames.max(1) as f64,
        );
        assert!(
            w.packets > 50,
            "{path}: too few packets to judge ({})",
            w.packets
        );
        let bound = match transport {
            Transport::Tcp => 2,
            _ => (w.frames as f64 * 1.5 + ticks * 1.2 + 10.0) as usize,
        };
        assert!(
            w.allocations <= bound,
            "{path} over {transport:?}: {} allocations for {} packets, {} frames (bound {bound})",
            w.allocations,
            w.packets,
            w.frames
        );
    }
}
