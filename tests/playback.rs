//! Recorded video back out as .mp4, checked by the real ffprobe/ffmpeg:
//! a range starting mid-GOP plays from exactly its start, a range spliced
//! across several recordings decodes with no error, and durations and
//! frame counts match what the index says.

mod common;

use common::temp_dir;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use vigil::camera::{CameraServer, ServerOptions};
use vigil::config::{self, Config};
use vigil::daemon::recorder::Recorder;
use vigil::store::{self, db::Db};

/// Frames of a/main whose start lies in `[start, end)`, from the index.
fn indexed_frames(cfg: &Config, start: i64, end: i64) -> u64 {
    let db = Db::open_read_only(&cfg.storage.db).unwrap();
    let id = db
        .streams()
        .unwrap()
        .into_iter()
        .find(|s| s.camera == "a" && s.kind == "main")
        .unwrap()
        .id;
    let plan = vigil::serve::view::plan_frames(&db, id, start, end).unwrap();
    let mut t: i64 = -i64::from(plan.skip_90k);
    let mut n = 0;
    for f in plan.segments.iter().flat_map(|s| &s.frames) {
        if t >= 0 && t < end - start {
            n += 1;
        }
        t += i64::from(f.duration_90k);
    }
    n
}

/// (duration in seconds, decoded frame count) by ffprobe, after ffmpeg
/// decoded the whole file with no error output.
fn probe(file: &Path) -> (f64, u64) {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(file)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    assert!(out.status.success(), "ffmpeg failed");
    assert!(
        out.stderr.is_empty(),
        "decode errors: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name,width,height,nb_read_frames:format=duration",
            "-of",
            "default=noprint_wrappers=1",
        ])
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
    assert_eq!(get("codec_name"), "h264", "{text}");
    assert_eq!((get("width"), get("height")), ("640".into(), "360".into()));
    (
        get("duration").parse().unwrap(),
        get("nb_read_frames").parse().unwrap(),
    )
}

fn record(dir: &Path, seconds: u64) -> Config {
    let cam = CameraServer::start(ServerOptions {
        listen: ([127, 0, 0, 1], 0).into(),
        auth: None,
        bitrate_kbps: None,
    })
    .unwrap();
    let text = format!(
        "[storage]\npath = \"data\"\npool_size_mb = 16\npools = 2\nsync_interval_ms = 500\n\
         [system]\nstream_start_spacing_ms = 0\n\
         [[camera]]\nname = \"a\"\nurl = \"{}\"\nsegment_seconds = 5\n",
        cam.url("h264/a")
    );
    let cfg = config::parse_str(&text, dir).unwrap();
    let storage = store::open::open_for_writing(&cfg.storage).unwrap();
    let rec = Recorder::start(&cfg, storage).unwrap();
    std::thread::sleep(Duration::from_secs(seconds));
    rec.shutdown(Duration::from_secs(5)).unwrap();
    cam.stop();
    cfg
}

#[test]
#[ignore = "needs ffmpeg (run by make test)"]
fn exported_ranges_play_exactly() {
    let dir = temp_dir("playback");
    let cfg = record(&dir, 16);
    let db = Db::open_read_only(&cfg.storage.db).unwrap();
    let recs = db.all_recordings().unwrap();
    assert!(recs.len() >= 3, "{} recordings", recs.len());
    let first = &recs[0];
    let last = recs.last().unwrap();
    const FRAME: f64 = 1.0 / 25.0;

    // Mid-GOP: 1.3 s into the first recording (key frames every 2 s), 3 s long.
    let start = first.start_90k + 117_000;
    let end = start + 270_000;
    let out = dir.join("mid.mp4");
    vigil::serve::export::export(&cfg, "a", "main", start, end, &out, "mp4").unwrap();
    let (duration, frames) = probe(&out);
    assert!(
        (duration - 3.0).abs() <= FRAME + 1e-6,
        "duration {duration}"
    );
    // ffmpeg decodes the frames the edit list skips too (it needs them)
    // but outputs from the start: the frames the index has in the range
    // (75 at 25 fps, fewer if the camera skipped some), give or take one
    // at each edge.
    let want = indexed_frames(&cfg, start, end);
    assert!(
        frames + 2 >= want && frames <= want + 2,
        "{frames} frames, the index has {want}"
    );

    // Spliced across every recording: from inside the first to inside the last.
    let start = first.start_90k + 45_000;
    let end = last.start_90k + last.duration_90k - 45_000;
    let out = dir.join("spliced.mp4");
    vigil::serve::export::export(&cfg, "a", "main", start, end, &out, "mp4").unwrap();
    let (duration, _) = probe(&out);
    // Recordings are contiguous here, so the file covers the whole span.
    let want = (end - start) as f64 / 90_000.0;
    assert!(
        (duration - want).abs() <= FRAME + 1e-6,
        "duration {duration}, want {want}"
    );

    // Nothing recorded there: a clear error, not an empty file.
    let err =
        vigil::serve::export::export(&cfg, "a", "main", 0, 90_000, &dir.join("none.mp4"), "mp4")
            .unwrap_err();
    assert!(err.contains("no video"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
