//! Recorded video back out as MPEG-TS: the `export.ts` route (GET and
//! HEAD, errors), `vigil export` to a `.ts` file and to stdout, and, with
//! ffmpeg, ranges spliced across recordings and starting mid-GOP, in H.264
//! and H.265, decoded with no error.

mod common;

use common::http::request;
use common::{temp_dir, wait_for};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vigil::camera::{CameraServer, ServerOptions};
use vigil::config::{self, Config};
use vigil::daemon::recorder::Recorder;
use vigil::serve::router::ServeContext;
use vigil::serve::ts::{TsFile, PACKET};
use vigil::serve::view::plan_frames;
use vigil::serve::HttpServer;
use vigil::store::{self, db::Db, db::RecordingRow};

const FRAME_90K: i64 = 3600;

/// Camera `a` records H.264, camera `b` H.265 (main) and MJPEG (sub).
/// The config is also written to `dir/vigil.toml`, for the CLI.
fn config(dir: &Path, cam: &CameraServer) -> Config {
    let text = format!(
        "[storage]\npath = \"data\"\npool_size_mb = 16\npools = 2\nsync_interval_ms = 300\n\
         [system]\nstream_start_spacing_ms = 0\n\
         [http]\nlisten = \"127.0.0.1:0\"\nauth = false\n\
         [[camera]]\nname = \"a\"\nurl = \"{}\"\nsegment_seconds = 5\n\
         [[camera]]\nname = \"b\"\nurl = \"{}\"\nsub_url = \"{}\"\nrecord = \"both\"\nsegment_seconds = 5\n",
        cam.url("h264/a"),
        cam.url("h265/b"),
        cam.url("mjpeg/b"),
    );
    std::fs::write(dir.join("vigil.toml"), &text).unwrap();
    config::parse_str(&text, dir).unwrap()
}

fn camera() -> CameraServer {
    CameraServer::start(ServerOptions {
        listen: ([127, 0, 0, 1], 0).into(),
        auth: None,
        bitrate_kbps: None,
    })
    .unwrap()
}

/// The recordings of `camera/stream`, in order.
fn recordings(cfg: &Config, camera: &str, stream: &str) -> (u32, Vec<RecordingRow>) {
    let db = Db::open_read_only(&cfg.storage.db).unwrap();
    let id = db
        .streams()
        .unwrap()
        .into_iter()
        .find(|s| s.camera == camera && s.kind == stream)
        .map(|s| s.id);
    let Some(id) = id else { return (0, Vec::new()) };
    let recs = db
        .all_recordings()
        .unwrap()
        .into_iter()
        .filter(|r| r.stream_id == id)
        .collect();
    (id, recs)
}

fn range_query(start: i64, end: i64) -> String {
    format!(
        "start={}&end={}",
        vigil::time::format_90k(start),
        vigil::time::format_90k(end)
    )
}

/// Checks the packet structure a demuxer relies on first.
fn assert_ts(b: &[u8], stream_type: u8) {
    assert!(
        !b.is_empty() && b.len().is_multiple_of(PACKET),
        "{} bytes",
        b.len()
    );
    assert!(b.chunks(PACKET).all(|p| p[0] == 0x47), "sync bytes");
    // PAT, then the PMT naming the video's stream type.
    assert_eq!(&b[1..3], &[0x40, 0x00]);
    assert_eq!(&b[PACKET + 1..PACKET + 3], &[0x50, 0x00]);
    assert_eq!(b[PACKET + 5 + 12], stream_type);
}

fn vigil_cli(cfg_file: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg("-c")
        .arg(cfg_file)
        .arg("export")
        .args(args)
        .output()
        .expect("vigil runs")
}

#[test]
fn route_and_cli() {
    let dir = temp_dir("export-ts");
    let cam = camera();
    let cfg = config(&dir, &cam);
    let storage = store::open::open_for_writing(&cfg.storage).unwrap();
    let rec = Recorder::start(&cfg, storage).unwrap();
    let ctx = Arc::new(ServeContext {
        running: rec.running.clone(),
        db_path: cfg.storage.db.clone(),
        storage: cfg.storage.clone(),
        started: Instant::now(),
        arena_bytes: 0,
        route_hooks: vec![vigil::serve::ts::hook(
            cfg.storage.db.clone(),
            rec.pool_reader.clone(),
        )],
        auth: None,
        counters: Default::default(),
    });
    let http = HttpServer::start(cfg.http.listen, ctx, 4).unwrap();
    let addr = http.local_addr();

    // A closed recording of each main stream: the first of two.
    let closed = |camera: &str| {
        wait_for(Duration::from_secs(30), "two recordings", || {
            let (_, recs) = recordings(&cfg, camera, "main");
            (recs.len() >= 2).then(|| recs[0].clone())
        })
    };
    let a = closed("a");
    let b = closed("b");

    // From 1.3 s into the recording (mid-GOP) to its end.
    let (start, end) = (a.start_90k + 117_000, a.end_90k());
    let target = format!("/api/cameras/a/export.ts?{}", range_query(start, end));
    let r = request(addr, "GET", &target);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("Content-Type").unwrap(), "video/mp2t");
    let len: usize = r.header("Content-Length").unwrap().parse().unwrap();
    assert_eq!(len, r.body.len());
    assert_ts(&r.body, 0x1b);
    // Named after the first frame's time: the key frame at the
    // recording's start.
    let disposition = r.header("Content-Disposition").unwrap();
    let when: String = vigil::time::format_90k(a.start_90k)
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .take(15)
        .collect();
    assert_eq!(
        disposition,
        format!("attachment; filename=\"a-main-{when}Z.ts\"")
    );
    let head = request(addr, "HEAD", &target);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("Content-Length").unwrap(), len.to_string());
    assert!(head.body.is_empty());
    // The same bytes as `export` of the same range, in process.
    let file = dir.join("inproc.ts");
    let n = vigil::serve::export::export(&cfg, "a", "main", start, end, &file, "ts").unwrap();
    assert_eq!(n as usize, len);
    let inproc = std::fs::read(&file).unwrap();
    assert!(inproc == r.body);

    // H.265.
    let r = request(
        addr,
        "GET",
        &format!(
            "/api/cameras/b/export.ts?stream=main&{}",
            range_query(b.start_90k, b.end_90k())
        ),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.header("Content-Length").unwrap(),
        r.body.len().to_string()
    );
    assert_ts(&r.body, 0x24);

    // Errors, as JSON.
    let q = range_query(start, end);
    for (path, status, says) in [
        (
            format!("/api/cameras/a/export.ts?stream=third&{q}"),
            400,
            "stream",
        ),
        ("/api/cameras/a/export.ts?end=5".to_owned(), 400, "start"),
        (
            "/api/cameras/a/export.ts?start=9&end=5".to_owned(),
            400,
            "end",
        ),
        (
            "/api/cameras/a/export.ts?start=0&end=1".to_owned(),
            404,
            "no video",
        ),
        (format!("/api/cameras/nope/export.ts?{q}"), 404, "nope"),
        (
            format!(
                "/api/cameras/b/export.ts?stream=sub&{}",
                range_query(b.start_90k, b.end_90k())
            ),
            415,
            "jpeg",
        ),
    ] {
        let r = request(addr, "GET", &path);
        assert_eq!(r.status, status, "{path}: {}", r.head);
        assert!(r
            .header("Content-Type")
            .unwrap()
            .starts_with("application/json"));
        let e = r.error();
        assert!(e.contains(says), "{path}: {e}");
    }
    http.stop();
    rec.shutdown(Duration::from_secs(5)).unwrap();
    cam.stop();

    // The CLI: to a file named .ts, and to stdout with --format.
    let cfg_file = dir.join("vigil.toml");
    let (s, e) = (vigil::time::format_90k(start), vigil::time::format_90k(end));
    let out_file = dir.join("cli.ts");
    let out_path = out_file.to_str().unwrap();
    let common = ["--camera", "a", "--start", &s, "--end", &e];
    let o = vigil_cli(&cfg_file, &[&common[..], &["-o", out_path]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(std::fs::read(&out_file).unwrap() == inproc);
    let o = vigil_cli(
        &cfg_file,
        &[&common[..], &["-o", "-", "--format", "ts"]].concat(),
    );
    assert!(o.status.success());
    assert!(o.stdout == inproc, "stdout differs");
    // Bad usage: exit status 2.
    let o = vigil_cli(&cfg_file, &[&common[..], &["-o", "-"]].concat());
    assert_eq!(o.status.code(), Some(2));
    let o = vigil_cli(
        &cfg_file,
        &[&common[..], &["-o", "-", "--format", "avi"]].concat(),
    );
    assert_eq!(o.status.code(), Some(2));
    // MJPEG: refused, and no file left behind.
    let (bs, be) = (
        vigil::time::format_90k(b.start_90k),
        vigil::time::format_90k(b.end_90k()),
    );
    let jpeg_out = dir.join("sub.ts");
    let o = vigil_cli(
        &cfg_file,
        &[
            "--camera",
            "b",
            "--stream",
            "sub",
            "--start",
            &bs,
            "--end",
            &be,
            "-o",
            jpeg_out.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("jpeg"));
    assert!(!jpeg_out.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------
// With ffmpeg.

/// ffmpeg decodes the whole file with no error output.
fn decode_clean(file: &Path) {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(file)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.is_empty(), "ffmpeg: {err}");
}

/// (codec, duration in seconds, decoded frames) by ffprobe.
fn probe(file: &Path) -> (String, f64, usize) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args([
            "-show_entries",
            "stream=codec_name,nb_read_frames:format=duration",
        ])
        .args(["-of", "default=noprint_wrappers=1"])
        .arg(file)
        .output()
        .expect("ffprobe");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("no {k} in {text}"))
            .to_owned()
    };
    (
        get("codec_name"),
        get("duration").parse().unwrap(),
        get("nb_read_frames").parse().unwrap(),
    )
}

fn frame_md5s(file: &Path) -> Vec<String> {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(file)
        .args(["-f", "framemd5", "-"])
        .output()
        .expect("ffmpeg");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit(',').next())
        .map(|h| h.trim().to_owned())
        .collect()
}

#[test]
#[ignore = "needs ffmpeg (run by make test)"]
fn exported_ts_plays() {
    let dir = temp_dir("export-ts-play");
    let cam = camera();
    let cfg = config(&dir, &cam);
    let storage = store::open::open_for_writing(&cfg.storage).unwrap();
    let rec = Recorder::start(&cfg, storage).unwrap();
    // Four recordings of each: three closed ones (about 5 s each) and the
    // open one.
    for camera in ["a", "b"] {
        wait_for(Duration::from_secs(40), "four recordings", || {
            (recordings(&cfg, camera, "main").1.len() >= 4).then_some(())
        });
    }
    rec.shutdown(Duration::from_secs(5)).unwrap();
    cam.stop();

    for (camera, codec) in [("a", "h264"), ("b", "hevc")] {
        let (id, recs) = recordings(&cfg, camera, "main");
        let first = &recs[0];
        let last = &recs[2];
        let db = Db::open_read_only(&cfg.storage.db).unwrap();

        // Spliced across three recordings, from 0.5 s into the first
        // (mid-GOP) to 0.5 s before the end of the third.
        let start = first.start_90k + 45_000;
        let end = last.end_90k() - 45_000;
        let plan = plan_frames(&db, id, start, end).unwrap();
        assert_eq!(plan.segments.len(), 3);
        let frames = plan.frames();
        // The stream begins at the key frame at or before the start: here
        // the first recording's start.
        assert_eq!(plan.first_start_90k, first.start_90k);
        let ts = TsFile::new(plan).unwrap();
        let out = dir.join(format!("spliced-{camera}.ts"));
        vigil::serve::export::export(&cfg, camera, "main", start, end, &out, "ts").unwrap();
        assert_eq!(std::fs::metadata(&out).unwrap().len(), ts.len());
        decode_clean(&out);
        let (c, duration, n) = probe(&out);
        assert_eq!(c, codec);
        assert_eq!(n, frames, "{camera}: frames");
        // Recordings are contiguous here: the stream covers the key frame
        // to `end`, its last frame reaching at most one frame past it.
        let want = (end - first.start_90k) as f64 / 90_000.0;
        let frame = FRAME_90K as f64 / 90_000.0;
        assert!(
            duration >= want - frame - 1e-6 && duration <= want + frame + 1e-6,
            "{camera}: duration {duration}, want {want}"
        );
        assert!((duration - ts.duration_90k() as f64 / 90_000.0).abs() < frame);

        // Mid-GOP, 1.3 s into the second recording: the pictures are those of
        // the .mp4 of the same range begun at the key frame before it.
        let start = recs[1].start_90k + 117_000;
        let end = start + 270_000;
        let key = plan_frames(&db, id, start, end).unwrap().first_start_90k;
        assert!(key <= start && key > start - 5 * 90_000);
        let ts_out = dir.join(format!("mid-{camera}.ts"));
        vigil::serve::export::export(&cfg, camera, "main", start, end, &ts_out, "ts").unwrap();
        let mp4_out = dir.join(format!("mid-{camera}.mp4"));
        vigil::serve::export::export(&cfg, camera, "main", key, end, &mp4_out, "mp4").unwrap();
        decode_clean(&ts_out);
        let (_, duration, _) = probe(&ts_out);
        let want = (end - key) as f64 / 90_000.0;
        assert!(
            (duration - want).abs() <= frame + 1e-6,
            "{camera}: mid-GOP duration {duration}, want {want}"
        );
        let from_ts = frame_md5s(&ts_out);
        let from_mp4 = frame_md5s(&mp4_out);
        assert!(from_ts.len() >= from_mp4.len() && from_ts.len() <= from_mp4.len() + 1);
        assert_eq!(from_ts[..from_mp4.len()], from_mp4[..], "{camera}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
