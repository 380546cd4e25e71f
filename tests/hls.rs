//! HLS end to end: the built-in camera (and a GStreamer camera for a
//! resolution change) recorded, served over HTTP on loopback, and played
//! by the real ffmpeg: `vod.m3u8` spliced across recordings decodes with no
//! error and exactly the index's frames, its segments are stable and their
//! decode times continuous; `live.m3u8` slides with stable sequence
//! numbers and plays.

mod common;

use common::http::{self, Resp};
use common::{temp_dir, wait_for};
use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vigil::camera::{CameraServer, ServerOptions};
use vigil::config::{self, Config};
use vigil::daemon::recorder::Recorder;
use vigil::serve::HttpServer;
use vigil::store::{self, db::Db};

/// The longest an ffmpeg run may take.
const FFMPEG_TIMEOUT: Duration = Duration::from_secs(60);

/// GET, asserting that the body is as long as its Content-Length says.
fn get(addr: SocketAddr, target: &str) -> Resp {
    let r = http::get(addr, target);
    http::assert_length("GET", &r);
    r
}

/// Runs a command with a deadline; returns (success, stdout, stderr).
fn run(cmd: &mut Command) -> (bool, String, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffmpeg/ffprobe installed (make test-deps)");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + FFMPEG_TIMEOUT;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish in {FFMPEG_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (
        status.success(),
        t_out.join().unwrap(),
        t_err.join().unwrap(),
    )
}

/// Decodes `url` with ffmpeg (extra input options first); asserts success
/// and no error output.
fn decode_clean(url: &str, input_opts: &[&str]) {
    let (ok, _, err) = run(Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error"])
        .args(input_opts)
        .args(["-i", url, "-f", "null", "-"]));
    assert!(ok && err.is_empty(), "ffmpeg {url}: {err}");
}

/// Frames ffprobe decodes from `url`, and their sizes (`WxH`) in order.
fn decoded_frames(url: &str) -> Vec<String> {
    let (ok, out, err) = run(Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["frame=width,height", "-of", "csv=p=0", url]));
    assert!(ok && err.is_empty(), "ffprobe {url}: {err}");
    // Side data adds empty fields and lines: keep width,height.
    out.lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').take(2).collect::<Vec<_>>().join("x"))
        .collect()
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

/// The payload of the first box `name` directly in `b`.
fn child<'a>(b: &'a [u8], name: &[u8; 4]) -> &'a [u8] {
    let mut at = 0;
    while at + 8 <= b.len() {
        let size = be32(b, at) as usize;
        assert!(size >= 8 && at + size <= b.len(), "bad box at {at}");
        if &b[at + 4..at + 8] == name {
            return &b[at + 8..at + size];
        }
        at += size;
    }
    panic!("no {}", String::from_utf8_lossy(name));
}

/// A media segment: its tfdt, and per frame (duration, size, key).
struct Fragment {
    decode_90k: u64,
    frames: Vec<(u32, u32, bool)>,
}

fn parse_segment(b: &[u8]) -> Fragment {
    let moof_len = be32(b, 0) as usize;
    assert_eq!(&b[4..8], b"moof");
    let moof = &b[8..moof_len];
    let traf = child(moof, b"traf");
    let tfdt = child(traf, b"tfdt");
    let trun = child(traf, b"trun");
    let n = be32(trun, 4) as usize;
    let frames: Vec<(u32, u32, bool)> = (0..n)
        .map(|i| {
            let at = 12 + 12 * i;
            (
                be32(trun, at),
                be32(trun, at + 4),
                be32(trun, at + 8) & 0x0001_0000 == 0,
            )
        })
        .collect();
    // The mdat follows and holds exactly the frames.
    assert_eq!(&b[moof_len + 4..moof_len + 8], b"mdat");
    let mdat_len = be32(b, moof_len) as usize;
    assert_eq!(moof_len + mdat_len, b.len());
    let sizes: usize = frames.iter().map(|f| f.1 as usize).sum();
    assert_eq!(mdat_len - 8, sizes);
    assert_eq!(be32(trun, 8) as usize, moof_len + 8, "data offset");
    Fragment {
        decode_90k: u64::from_be_bytes(tfdt[4..12].try_into().unwrap()),
        frames,
    }
}

/// A playlist's lines: tags with their values, and segment URIs with the
/// EXTINF duration before them and the URI of their EXT-X-MAP.
struct Playlist {
    tags: Vec<(String, String)>,
    segments: Vec<(f64, String)>,
    segment_maps: Vec<String>,
}

impl Playlist {
    fn parse(text: &str) -> Playlist {
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("#EXTM3U"));
        let mut tags = Vec::new();
        let mut segments = Vec::new();
        let mut segment_maps = Vec::new();
        let mut extinf = None;
        let mut map = None;
        for l in lines {
            if let Some(t) = l.strip_prefix('#') {
                let (k, v) = t.split_once(':').unwrap_or((t, ""));
                if k == "EXTINF" {
                    extinf = Some(v.trim_end_matches(',').parse::<f64>().unwrap());
                }
                if k == "EXT-X-MAP" {
                    map = v
                        .strip_prefix("URI=\"")
                        .and_then(|v| v.strip_suffix('"'))
                        .map(str::to_owned);
                }
                tags.push((k.to_owned(), v.to_owned()));
            } else if !l.is_empty() {
                segments.push((extinf.take().expect("EXTINF before a URI"), l.to_owned()));
                segment_maps.push(map.clone().expect("EXT-X-MAP before a segment"));
            }
        }
        Playlist {
            tags,
            segments,
            segment_maps,
        }
    }

    fn tag(&self, k: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(t, _)| t == k)
            .map(|(_, v)| v.as_str())
    }

    fn count(&self, k: &str) -> usize {
        self.tags.iter().filter(|(t, _)| t == k).count()
    }

    /// The URIs of the EXT-X-MAP tags.
    fn maps(&self) -> Vec<String> {
        let mut m = self.segment_maps.clone();
        m.dedup();
        m
    }

    /// The init segment `map` followed by its segments: one fragmented
    /// file, as a player would feed it to its demuxer.
    fn part(&self, addr: SocketAddr, dir: &str, map: &str) -> Vec<u8> {
        let mut out = get(addr, &format!("{dir}/{map}")).body;
        for ((_, uri), m) in self.segments.iter().zip(&self.segment_maps) {
            if m == map {
                out.extend(get(addr, &format!("{dir}/{uri}")).body);
            }
        }
        out
    }

    /// Checks what every playlist must satisfy, fetches every segment and
    /// init segment, and checks the fragments: each starts with a key frame,
    /// its decode time follows on from the one before (when `continuous`),
    /// its duration is its EXTINF. Returns the frames' (dts, duration,
    /// key), in order.
    fn check(&self, addr: SocketAddr, dir: &str, continuous: bool) -> Vec<(u64, u32, bool)> {
        assert_eq!(self.tag("EXT-X-VERSION"), Some("7"));
        let target: f64 = self.tag("EXT-X-TARGETDURATION").unwrap().parse().unwrap();
        assert!(!self.segments.is_empty());
        for m in self.maps() {
            let r = get(addr, &format!("{dir}/{m}"));
            assert_eq!(r.status, 200, "{m}: {}", r.text());
            assert_eq!(&r.body[4..8], b"ftyp");
        }
        let mut out: Vec<(u64, u32, bool)> = Vec::new();
        for (dur, uri) in &self.segments {
            assert!(dur.round() <= target, "{dur} > target {target}");
            let r = get(addr, &format!("{dir}/{uri}"));
            assert_eq!(r.status, 200, "{uri}: {}", r.text());
            assert_eq!(r.header("Content-Type").unwrap(), "video/mp4");
            let f = parse_segment(&r.body);
            assert!(f.frames[0].2, "{uri} starts with a key frame");
            if let (true, Some(last)) = (continuous, out.last()) {
                assert_eq!(f.decode_90k, last.0 + u64::from(last.1), "{uri}");
            }
            let total: u32 = f.frames.iter().map(|x| x.0).sum();
            assert!(
                (f64::from(total) / 90_000.0 - dur).abs() < 1e-5,
                "{uri}: EXTINF {dur}, frames {total}"
            );
            let mut t = f.decode_90k;
            for (d, _, key) in f.frames {
                out.push((t, d, key));
                t += u64::from(d);
            }
        }
        out
    }
}

fn config_text(dir: &Path, cameras: &str) -> Config {
    let text = format!(
        "[storage]\npath = \"data\"\npool_size_mb = 16\npools = 3\nsync_interval_ms = 500\n\
         [system]\nstream_start_spacing_ms = 0\n\
         [http]\nlisten = \"127.0.0.1:0\"\nauth = false\n{cameras}"
    );
    config::parse_str(&text, dir).unwrap()
}

fn serve(cfg: &Config, rec: &Recorder) -> HttpServer {
    let ctx = Arc::new(vigil::serve::context(cfg, rec));
    HttpServer::start(cfg.http.listen, ctx, cfg.http.max_clients).unwrap()
}

/// The id of `camera`'s main stream in the index.
fn stream_id(db: &Db, camera: &str, kind: &str) -> u32 {
    db.streams()
        .unwrap()
        .into_iter()
        .find(|s| s.camera == camera && s.kind == kind)
        .unwrap()
        .id
}

/// Recordings of a/main, once `n` are closed.
fn closed_recordings(cfg: &Config, camera: &str, n: usize) -> Vec<vigil::store::db::RecordingRow> {
    wait_for(Duration::from_secs(40), "closed recordings", || {
        let db = Db::open_read_only(&cfg.storage.db).ok()?;
        let id = db
            .streams()
            .ok()?
            .into_iter()
            .find(|s| s.camera == camera && s.kind == "main")?
            .id;
        let recs: Vec<_> = db
            .recordings(id, 0, i64::MAX / 2)
            .ok()?
            .into_iter()
            .filter(|r| r.flags & vigil::store::db::RECORDING_OPEN == 0)
            .collect();
        (recs.len() >= n).then_some(recs)
    })
}

#[test]
#[ignore = "needs ffmpeg (run by make test)"]
fn vod_and_live_playlists_play() {
    let dir = temp_dir("hls");
    let cam = CameraServer::start(ServerOptions {
        listen: ([127, 0, 0, 1], 0).into(),
        auth: None,
        bitrate_kbps: None,
    })
    .unwrap();
    let cfg = config_text(
        &dir,
        &format!(
            "[[camera]]\nname = \"a\"\nurl = \"{}\"\nsegment_seconds = 5\n\
             [[camera]]\nname = \"b\"\nurl = \"{}\"\nsub_url = \"{}\"\nrecord = \"both\"\nsegment_seconds = 5\n",
            cam.url("h264/a"),
            cam.url("h265/b"),
            cam.url("mjpeg/b"),
        ),
    );
    let storage = store::open::open_for_writing(&cfg.storage).unwrap();
    let rec = Recorder::start(&cfg, storage).unwrap();
    let http = serve(&cfg, &rec);
    let addr = http.local_addr();
    let base = format!("http://{addr}");

    // Three closed recordings of a: a range from inside the first to
    // inside the third.
    let recs = closed_recordings(&cfg, "a", 3);
    let start = recs[0].start_90k + 45_000;
    let end = recs[2].end_90k() - 45_000;
    let target = format!(
        "/api/cameras/a/vod.m3u8?start={}&end={}",
        vigil::time::format_90k(start),
        vigil::time::format_90k(end)
    )
    .replace('+', "%2B");
    let r = get(addr, &target);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("Content-Type").unwrap(),
        "application/vnd.apple.mpegurl"
    );
    let pl = Playlist::parse(&r.text());
    assert_eq!(pl.tag("EXT-X-PLAYLIST-TYPE"), Some("VOD"));
    assert_eq!(pl.count("EXT-X-ENDLIST"), 1);
    assert_eq!(pl.maps().len(), 1);
    assert_eq!(pl.count("EXT-X-DISCONTINUITY"), 0);
    assert!(pl.segments.len() >= 4, "{}", r.text());
    // Segments are 2-6 s (2 s GOPs), whole GOPs.
    for (d, uri) in &pl.segments[..pl.segments.len() - 1] {
        assert!((1.9..=6.1).contains(d), "{d} s: {uri}");
    }
    let frames = pl.check(addr, "/api/cameras/a", true);
    assert_eq!(frames[0].0, 0, "decode times start at 0");
    // Exactly the frames the index has for the range (from the key frame
    // at or before `start`).
    let db = Db::open_read_only(&cfg.storage.db).unwrap();
    let plan =
        vigil::serve::view::plan_frames(&db, stream_id(&db, "a", "main"), start, end).unwrap();
    assert_eq!(frames.len(), plan.frames());
    let want: Vec<(u32, bool)> = plan
        .segments
        .iter()
        .flat_map(|s| s.frames.iter().map(|f| (f.duration_90k, f.key)))
        .collect();
    let got: Vec<(u32, bool)> = frames.iter().map(|f| (f.1, f.2)).collect();
    assert_eq!(got, want);
    // The same segment asked again is the same bytes.
    let seg = format!("/api/cameras/a/{}", pl.segments[1].1);
    assert_eq!(get(addr, &seg).body, get(addr, &seg).body);
    // ffmpeg plays the playlist: no error, every frame.
    let url = format!("{base}{target}");
    decode_clean(&url, &[]);
    let sizes = decoded_frames(&url);
    assert_eq!(sizes.len(), plan.frames());
    assert!(sizes.iter().all(|s| s == "640x360"), "{sizes:?}");

    // H.265 too.
    let recs_b = closed_recordings(&cfg, "b", 2);
    let target_b = format!(
        "/api/cameras/b/vod.m3u8?start={}&end={}",
        recs_b[0].start_90k / 90_000,
        recs_b[1].end_90k() / 90_000
    );
    let r = get(addr, &target_b);
    assert_eq!(r.status, 200, "{}", r.text());
    Playlist::parse(&r.text()).check(addr, "/api/cameras/b", true);
    decode_clean(&format!("{base}{target_b}"), &[]);

    // Errors: clear, as JSON.
    let r = get(addr, &target_b.replace("vod.m3u8?", "vod.m3u8?stream=sub&"));
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.error().contains("mjpeg"), "{}", r.error());
    let r = get(addr, "/api/cameras/a/live.m3u8?stream=sub");
    assert_eq!(r.status, 404);
    assert!(r.error().contains("live.mp4"), "{}", r.error());
    let r = get(addr, "/api/cameras/a/vod.m3u8?start=1&end=2");
    assert_eq!(r.status, 404);
    let r = get(addr, "/api/cameras/a/vod.m3u8?start=1&end=999999");
    assert_eq!(r.status, 400);
    assert!(r.error().starts_with("end"));
    let r = get(addr, "/api/cameras/a/vod.m3u8?start=later&end=2");
    assert_eq!(r.status, 400);
    let (_, first_uri) = &pl.segments[0];
    // One frame after a segment's key frame: not a segment.
    let s0: i64 = first_uri
        .split('&')
        .find_map(|p| p.strip_prefix("start_90k="))
        .unwrap()
        .parse()
        .unwrap();
    let bad_start = first_uri.replace(
        &format!("start_90k={s0}"),
        &format!("start_90k={}", s0 + 3600),
    );
    let r = get(addr, &format!("/api/cameras/a/{bad_start}"));
    assert_eq!(r.status, 404, "{}", r.text());
    let r = get(
        addr,
        "/api/cameras/a/segment.m4s?start_90k=5&end_90k=4&dts=0&seq=1",
    );
    assert_eq!(r.status, 400);
    let r = get(addr, "/api/cameras/a/segment.m4s?start_90k=5");
    assert_eq!(r.status, 400);
    let r = get(addr, "/api/cameras/a/init.mp4?entry=99999");
    assert_eq!(r.status, 404);
    let r = get(addr, "/api/cameras/nope/vod.m3u8?start=1&end=2");
    assert_eq!(r.status, 404);

    // live.m3u8: a window over the newest recordings, without an end.
    let live_target = "/api/cameras/a/live.m3u8";
    let first = wait_for(Duration::from_secs(20), "a live playlist", || {
        let r = get(addr, live_target);
        (r.status == 200).then(|| Playlist::parse(&r.text()))
    });
    assert_eq!(first.count("EXT-X-ENDLIST"), 0);
    assert!(first.segments.len() >= 3);
    let msn0: u64 = first.tag("EXT-X-MEDIA-SEQUENCE").unwrap().parse().unwrap();
    first.check(addr, "/api/cameras/a", false);
    // A later refresh: new segments, and every segment still listed keeps
    // its sequence number.
    let later = wait_for(Duration::from_secs(20), "a new live segment", || {
        let r = get(addr, live_target);
        assert_eq!(r.status, 200, "{}", r.text());
        let p = Playlist::parse(&r.text());
        (p.segments.last() != first.segments.last()).then_some(p)
    });
    let msn1: u64 = later.tag("EXT-X-MEDIA-SEQUENCE").unwrap().parse().unwrap();
    assert!(msn1 >= msn0);
    let mut common = 0;
    for (i, (_, uri)) in first.segments.iter().enumerate() {
        if let Some(j) = later.segments.iter().position(|(_, u)| u == uri) {
            assert_eq!(msn0 + i as u64, msn1 + j as u64, "{uri}");
            common += 1;
        }
    }
    assert!(common > 0, "the windows overlap");
    // Within a recording, decode times follow on.
    later.check(addr, "/api/cameras/a", false);
    decode_clean(&format!("{base}{live_target}"), &["-t", "3"]);

    http.stop();
    rec.shutdown(Duration::from_secs(5)).unwrap();
    cam.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "needs ffmpeg and GStreamer (run by make test)"]
fn vod_across_a_resolution_change() {
    let dir = temp_dir("hls-switch");
    // First 640x360 from the built-in camera...
    let cam = CameraServer::start(ServerOptions {
        listen: ([127, 0, 0, 1], 0).into(),
        auth: None,
        bitrate_kbps: None,
    })
    .unwrap();
    let camera =
        |url: &str| format!("[[camera]]\nname = \"a\"\nurl = \"{url}\"\nsegment_seconds = 5\n");
    let cfg = config_text(&dir, &camera(&cam.url("h264/a")));
    let storage = store::open::open_for_writing(&cfg.storage).unwrap();
    let rec = Recorder::start(&cfg, storage).unwrap();
    closed_recordings(&cfg, "a", 1);
    rec.shutdown(Duration::from_secs(5)).unwrap();
    cam.stop();
    let before = Db::open_read_only(&cfg.storage.db)
        .unwrap()
        .all_recordings()
        .unwrap()
        .len();
    // ...then 320x240 from a GStreamer camera, in the same storage.
    let Some(gst) = common::GstServer::start(&[
        "--codec", "h264", "--width", "320", "--height", "240", "--fps", "25",
    ]) else {
        println!("no H.264 encoder in this GStreamer: skipped");
        return;
    };
    let cfg = config_text(&dir, &camera(gst.url()));
    let storage = store::open::open_for_writing(&cfg.storage).unwrap();
    let rec = Recorder::start(&cfg, storage).unwrap();
    let http = serve(&cfg, &rec);
    let addr = http.local_addr();
    let recs = closed_recordings(&cfg, "a", before + 1);
    let start = recs[0].start_90k;
    let end = recs.last().unwrap().end_90k();
    let target = format!(
        "/api/cameras/a/vod.m3u8?start={}&end={}",
        start / 90_000,
        end / 90_000 + 1
    );
    let r = get(addr, &target);
    assert_eq!(r.status, 200, "{}", r.text());
    let pl = Playlist::parse(&r.text());
    // A new init segment where the sample entry changes, after a
    // discontinuity; decode times run on.
    assert_eq!(pl.maps().len(), 2, "{}", r.text());
    assert_eq!(pl.count("EXT-X-DISCONTINUITY"), 1);
    let frames = pl.check(addr, "/api/cameras/a", true);
    // ffmpeg's HLS demuxer (5.1) keeps the first init segment's decoder
    // configuration across EXT-X-MAP changes (browsers' players
    // re-initialise), so each side of the change is played as the init
    // segment and its segments would be fed to a demuxer.
    let mut decoded = 0;
    for (map, size) in pl.maps().iter().zip(["640x360", "320x240"]) {
        let file = dir.join("part.mp4");
        std::fs::write(&file, pl.part(addr, "/api/cameras/a", map)).unwrap();
        let path = file.to_str().unwrap();
        decode_clean(path, &[]);
        let sizes = decoded_frames(path);
        assert!(!sizes.is_empty());
        assert!(sizes.iter().all(|s| s == size), "{map}: {sizes:?}");
        decoded += sizes.len();
    }
    assert_eq!(decoded, frames.len());
    http.stop();
    rec.shutdown(Duration::from_secs(5)).unwrap();
    drop(gst);
    let _ = std::fs::remove_dir_all(&dir);
}
