//! Tests of `live.mp4`'s body: the timeline, and the reader over a real
//! ring (fragments, skipping after an overrun, parameter changes, a dead
//! camera), decoded by ffmpeg where it matters (ignored unless asked for,
//! as `make test` does).

use super::*;
use crate::arena::{self, FrameMeta, RingReader, RingWriter};
use crate::serve::fmp4::tests::{boxes, builtin_h264, decode_and_probe, parse_fragment, Clip};
use crate::stream::VideoParams;

#[test]
fn timeline_at_a_steady_rate() {
    let mut t = Timeline::new(3600);
    for i in 0..100i64 {
        let (seq, dts, dur) = t.next(1_000_000 + i * 3600);
        assert_eq!((seq, dts, dur), (i as u32 + 1, i as u64 * 3600, 3600));
    }
}

#[test]
fn timeline_is_contiguous_and_follows_the_clock() {
    // Irregular frame times: the declared timeline has no holes and stays
    // within one frame duration of the camera's clock.
    let mut t = Timeline::new(3000);
    let mut ts = 500i64;
    let mut prev: Option<(u64, u32)> = None;
    let mut seed = 7u64;
    for _ in 0..1000 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ts += 2000 + (seed >> 33) as i64 % 3000;
        let (_, dts, dur) = t.next(ts);
        if let Some((pd, pdur)) = prev {
            assert_eq!(dts, pd + u64::from(pdur), "contiguous");
        }
        let real = (ts - 500) as u64;
        assert!(dts.abs_diff(real) <= 5000 + 3000, "dts {dts}, clock {real}");
        prev = Some((dts, dur));
    }
}

#[test]
fn timeline_runs_on_across_jumps() {
    let mut t = Timeline::new(3600);
    t.next(0);
    t.next(3600);
    // The camera's clock restarts (a reconnection): no negative duration.
    t.jump();
    let (_, dts, dur) = t.next(-50_000);
    assert_eq!((dts, dur), (7200, 3600));
    let (_, dts, dur) = t.next(-50_000 + 3000);
    assert_eq!((dts, dur), (10_800, 3000));
    // A huge or backwards step without a flagged jump is no duration either.
    let (_, dts, dur) = t.next(1_000_000_000);
    assert_eq!((dts, dur), (13_800, 3000));
    let (_, _, dur) = t.next(999_000_000);
    assert_eq!(dur, 3000);
}

fn params_of(c: &Clip) -> Vec<u8> {
    let mut out = Vec::new();
    format::encode_params(
        &VideoParams {
            codec: c.entry.codec,
            width: c.entry.width,
            height: c.entry.height,
            fps_milli: Some(25_000),
            rfc6381_codec: "avc1.64001e".into(),
            decoder_config: c.entry.decoder_config.clone(),
        },
        &mut out,
    );
    out
}

struct Cam {
    w: RingWriter,
    r: RingReader,
    n: i64,
}

impl Cam {
    fn new(ring_bytes: usize) -> Cam {
        let (w, r) = arena::carve(ring_bytes, &[1]).unwrap().pop().unwrap();
        Cam { w, r, n: 0 }
    }

    /// Pushes a frame 40 ms after the last, and releases it at once (as the
    /// writer would once persisted): it stays readable by viewers.
    fn push(&mut self, data: &[u8], key: bool, extra: &[u8]) {
        let meta = FrameMeta {
            timestamp_90k: 10_000 + self.n * 3600,
            wall_90k: 0,
            key,
            discontinuity: false,
        };
        self.n += 1;
        assert_eq!(self.w.push(&meta, extra, data), arena::Push::Stored);
        self.r.release(self.r.len());
    }
}

fn reader(cam: &Cam, params: Vec<u8>, clip: &Clip) -> LiveReader {
    let tap = cam.w.tap();
    let cursor = tap.latest_key().expect("a key frame");
    let mut r = LiveReader::new(tap, cursor, params, &clip.entry, 3600).unwrap();
    r.poll = Duration::from_millis(20);
    r.dead_after = Duration::from_millis(300);
    r
}

/// Reads until the reader has sent `fragments` more fragments, or a `free`
/// box (nothing came within a poll), or the end; small reads on purpose.
fn read_some(r: &mut LiveReader, out: &mut Vec<u8>) -> io::Result<usize> {
    let mut buf = [0u8; 777];
    loop {
        let n = r.read(&mut buf)?;
        out.extend_from_slice(&buf[..n]);
        if n == 0 || out.ends_with(&FREE_BOX) {
            return Ok(n);
        }
    }
}

/// The fragments of a live.mp4 body: init segment checked, `free` boxes
/// skipped; per frame (sequence, decode time, duration, key, mdat bytes).
fn fragments(body: &[u8]) -> Vec<(u32, u64, u32, bool, Vec<u8>)> {
    let top = boxes(body);
    assert_eq!(&top[0].0, b"ftyp");
    assert_eq!(&top[1].0, b"moov");
    let mut out = Vec::new();
    let mut i = 2;
    while i < top.len() {
        match &top[i].0 {
            b"free" => i += 1,
            b"moof" => {
                let (moof, mdat) = (top[i].1, top[i + 1].1);
                let mut both = moof.to_vec();
                both.extend_from_slice(mdat);
                let f = parse_fragment(&both);
                assert_eq!(f.samples.len(), 1, "one frame per fragment");
                let (dur, size, flags) = f.samples[0];
                assert_eq!(size as usize, f.mdat.len());
                out.push((
                    f.sequence,
                    f.decode_90k,
                    dur,
                    flags == 0x0200_0000,
                    f.mdat.to_vec(),
                ));
                i += 2;
            }
            other => panic!("unexpected box {:?}", String::from_utf8_lossy(other)),
        }
    }
    out
}

#[test]
fn streams_from_the_newest_key_frame_then_follows_the_camera() {
    let clip = builtin_h264();
    let params = params_of(&clip);
    let mut cam = Cam::new(4 << 20);
    for (i, (data, key)) in clip.frames.iter().enumerate() {
        cam.push(data, *key, if i == 0 { &params } else { &[] });
    }
    let mut r = reader(&cam, params.clone(), &clip);
    let mut body = Vec::new();
    read_some(&mut r, &mut body).unwrap();
    let got = fragments(&body);
    // From the newest key frame (50) to the end of what is there.
    assert_eq!(got.len(), 50);
    for (k, f) in got.iter().enumerate() {
        assert_eq!(f.0, k as u32 + 1);
        assert_eq!((f.1, f.2), (k as u64 * 3600, 3600));
        assert_eq!(f.3, clip.frames[50 + k].1);
        assert_eq!(f.4, clip.frames[50 + k].0);
    }
    // New frames as they come (the same parameters again are no change).
    for (i, (data, key)) in clip.frames.iter().enumerate().take(30) {
        cam.push(data, *key, if i == 0 { &params } else { &[] });
    }
    read_some(&mut r, &mut body).unwrap();
    let got = fragments(&body);
    assert_eq!(got.len(), 80);
    assert_eq!(got[50].1, 50 * 3600);
    assert!(got[50].3);
    // Memory: the frame buffer holds the largest frame; the header buffer
    // is the init segment's allocation, reused.
    let largest = clip.frames.iter().map(|f| f.0.len()).max().unwrap();
    assert!(r.data.capacity() <= 2 * largest);
    assert!(r.head.capacity() < 2048);
}

#[test]
#[ignore = "needs ffmpeg (run by make test)"]
fn live_body_decodes_with_ffmpeg() {
    let clip = builtin_h264();
    let params = params_of(&clip);
    let mut cam = Cam::new(4 << 20);
    for (i, (data, key)) in clip.frames.iter().enumerate() {
        cam.push(data, *key, if i == 0 { &params } else { &[] });
    }
    let mut r = reader(&cam, params.clone(), &clip);
    let mut body = Vec::new();
    read_some(&mut r, &mut body).unwrap();
    for (data, key) in clip.frames.iter().chain(&clip.frames) {
        cam.push(data, *key, &[]);
    }
    read_some(&mut r, &mut body).unwrap();
    let packets = decode_and_probe(&body, "live.mp4");
    assert_eq!(packets.len(), 250);
    assert!(packets[0].1, "starts with a key frame");
    assert!(packets.windows(2).all(|w| w[1].0 - w[0].0 == 3600));
}

#[test]
fn a_viewer_a_ring_behind_skips_to_the_newest_key_frame() {
    let clip = builtin_h264();
    let params = params_of(&clip);
    // Synthetic frames: 8 KB, a key frame every 10, in a 256 KB ring.
    let frame = |i: usize| vec![(i % 251) as u8; 8 * 1024];
    let mut cam = Cam::new(256 << 10);
    for i in 0..10 {
        cam.push(&frame(i), i % 10 == 0, if i == 0 { &params } else { &[] });
    }
    let mut r = reader(&cam, params, &clip);
    let mut body = Vec::new();
    read_some(&mut r, &mut body).unwrap();
    assert_eq!(fragments(&body).len(), 10);
    // The viewer reads nothing while 100 frames (3 rings) go by.
    for i in 10..110 {
        cam.push(&frame(i), i % 10 == 0, &[]);
    }
    read_some(&mut r, &mut body).unwrap();
    let got = fragments(&body);
    // It went on at the newest key frame (100), with no hole in time.
    assert_eq!(got.len(), 20, "{}", got.len());
    assert!(got[10].3);
    assert_eq!(got[10].4, frame(100));
    for w in got.windows(2) {
        assert_eq!(w[1].1, w[0].1 + u64::from(w[0].2));
        assert_eq!(w[1].0, w[0].0 + 1);
    }
}

#[test]
fn new_parameters_end_the_response() {
    let clip = builtin_h264();
    let params = params_of(&clip);
    let mut cam = Cam::new(4 << 20);
    cam.push(&clip.frames[0].0, true, &params);
    cam.push(&clip.frames[1].0, false, &[]);
    let mut r = reader(&cam, params.clone(), &clip);
    let mut body = Vec::new();
    read_some(&mut r, &mut body).unwrap();
    assert_eq!(fragments(&body).len(), 2);
    let mut other = params.clone();
    *other.last_mut().unwrap() ^= 1;
    cam.push(&clip.frames[0].0, true, &other);
    let mut buf = [0u8; 100];
    assert_eq!(r.read(&mut buf).unwrap(), 0, "the body ends");
    assert_eq!(r.read(&mut buf).unwrap(), 0);
}

#[test]
fn a_silent_camera_ends_the_response_and_reads_return_meanwhile() {
    let clip = builtin_h264();
    let params = params_of(&clip);
    let mut cam = Cam::new(4 << 20);
    cam.push(&clip.frames[0].0, true, &params);
    let mut r = reader(&cam, params, &clip);
    let mut body = Vec::new();
    read_some(&mut r, &mut body).unwrap();
    assert_eq!(fragments(&body).len(), 1);
    let t = Instant::now();
    let mut buf = [0u8; 64];
    let mut frees = 0;
    let err = loop {
        match r.read(&mut buf) {
            Ok(n) => {
                // Only keep-alive boxes while nothing comes, never the end.
                assert_eq!(&buf[..n], &FREE_BOX);
                frees += 1;
            }
            Err(e) => break e,
        }
    };
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert!(frees >= 3, "{frees} reads returned meanwhile");
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[test]
fn mjpeg_parameters_are_refused() {
    let mut p = Vec::new();
    format::encode_params(
        &VideoParams {
            codec: Codec::Jpeg,
            width: 640,
            height: 480,
            fps_milli: None,
            rfc6381_codec: "jpeg".into(),
            decoder_config: Vec::new(),
        },
        &mut p,
    );
    assert!(sample_entry(&p).unwrap_err().contains("mjpeg"));
    assert!(sample_entry(&[1, 2, 3]).is_err());
}
