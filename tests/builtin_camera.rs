//! The client against the built-in camera: every clip over TCP and UDP,
//! received across the clip's loop point with continuous timestamps, the
//! resolution and frame rate the clip has, and a padded 2 Mbit/s stream
//! arriving at that rate.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vigil::camera::{CameraServer, ServerOptions, CLIPS};
use vigil::config::Transport;
use vigil::daemon::{spawn_stream, StreamSpec};
use vigil::stream::{Codec, Frame};
use vigil::stream::{FrameSink, StopSource, StreamStatus};

#[derive(Clone, Default, Debug)]
struct Got {
    frames: u32,
    keys: u32,
    codec: Option<Codec>,
    size: (u16, u16),
    first_ts: Option<i64>,
    last_ts: Option<i64>,
    bad_steps: u32,
    discontinuities: u32,
    bytes: u64,
}

struct Sink(Arc<Mutex<Got>>, i64);

impl FrameSink for Sink {
    fn frame(&mut self, f: &Frame<'_>) {
        let mut g = self.0.lock().unwrap();
        if let Some(prev) = g.last_ts {
            // One frame interval exactly, also across the loop of the clip.
            if f.timestamp_90k - prev != self.1 {
                g.bad_steps += 1;
            }
        }
        g.first_ts.get_or_insert(f.timestamp_90k);
        g.last_ts = Some(f.timestamp_90k);
        g.frames += 1;
        g.keys += u32::from(f.key);
        g.codec = Some(f.params.codec);
        g.size = (f.params.width, f.params.height);
        g.bytes += f.data.len() as u64;
    }
    fn discontinuity(&mut self) {
        self.0.lock().unwrap().discontinuities += 1;
    }
}

fn receive(
    server: &CameraServer,
    path: &str,
    transport: Transport,
    frames: u32,
    step: i64,
) -> (Got, vigil::stream::StreamSnapshot) {
    let spec = StreamSpec::for_url("builtin", &server.url(path), transport);
    let status = Arc::new(StreamStatus::new("builtin", spec.kind));
    let got = Arc::new(Mutex::new(Got::default()));
    let stop = StopSource::new();
    let t = spawn_stream(
        spec,
        status.clone(),
        Box::new(Sink(got.clone(), step)),
        stop.token(),
        Duration::ZERO,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.lock().unwrap().frames < frames {
        assert!(
            Instant::now() < deadline,
            "{path} {transport:?}: {:?} {:?}",
            got.lock().unwrap(),
            status.snapshot()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Taken before stopping: stopping itself ends the recording, which the
    // sink hears as one more discontinuity.
    let snap = status.snapshot();
    let g = got.lock().unwrap().clone();
    stop.stop();
    t.join().unwrap();
    (g, snap)
}

#[test]
fn every_clip_over_tcp_and_udp_across_the_loop() {
    let server = CameraServer::start(ServerOptions {
        listen: ([127, 0, 0, 1], 0).into(),
        auth: None,
        bitrate_kbps: None,
    })
    .unwrap();
    // All at once, as a camera with several viewers would be.
    let results = std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for clip in CLIPS {
            for transport in [Transport::Tcp, Transport::Udp] {
                let server = &server;
                handles.push(scope.spawn(move || {
                    let path = format!("{}/{:?}", clip.name, transport).to_lowercase();
                    let step = 90_000 / i64::from(clip.fps);
                    // A little over one loop of the clip.
                    let (g, snap) = receive(server, &path, transport, clip.frames + 5, step);
                    (clip, transport, g, snap)
                }));
            }
        }
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    assert_eq!(results.len(), 2 * CLIPS.len());
    for (clip, transport, g, snap) in results {
        let what = format!("{} over {transport:?}", clip.name);
        assert_eq!(g.codec, Some(clip.codec), "{what}");
        assert_eq!(g.size, (clip.width, clip.height), "{what}");
        assert_eq!(g.bad_steps, 0, "{what}: timestamps not continuous: {g:?}");
        assert_eq!(snap.packets_lost, 0, "{what}");
        assert_eq!(snap.frames_dropped, 0, "{what}");
        assert!(g.keys >= 2, "{what}: {g:?}");
        assert_eq!(g.discontinuities, 0, "{what}");
    }
}

#[test]
fn padded_stream_arrives_at_the_requested_bitrate() {
    let server = CameraServer::start(ServerOptions {
        listen: ([127, 0, 0, 1], 0).into(),
        auth: None,
        bitrate_kbps: Some(2000),
    })
    .unwrap();
    for (path, fps) in [("h264/rate", 25), ("h265/rate", 25)] {
        let (g, _) = receive(&server, path, Transport::Tcp, 101, 90_000 / fps);
        // Rate from the media clock, over exactly 100 frame intervals (4 s).
        let seconds = (g.last_ts.unwrap() - g.first_ts.unwrap()) as f64 / 90_000.0;
        let kbps = g.bytes as f64 * 8.0 / 1000.0 / (seconds + 1.0 / f64::from(fps as u32));
        assert!((1800.0..2200.0).contains(&kbps), "{path}: {kbps:.0} kbit/s");
    }
}
