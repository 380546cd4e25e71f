//! Storage faults while recording, in-process: writes that fail (as on a
//! full disk) must show in every stream's state, drop frames whole GOPs at
//! a time (counted) while the arena is full, keep memory flat, never panic,
//! and recording must resume by itself once writes work again.
//!
//! The fault is real: `RLIMIT_FSIZE` makes the kernel refuse writes past
//! the limit (EFBIG), even inside the pre-allocated pool files. The limit
//! is process-wide, so this file holds one test.

use std::time::{Duration, Instant};
use vigil::camera::{CameraServer, ServerOptions};
use vigil::config;
use vigil::daemon::recorder::Recorder;
use vigil::store::check::CheckLevel;
use vigil::store::{self, db::Db};

fn set_fsize(limit: libc::rlim_t) {
    let r = libc::rlimit {
        rlim_cur: limit,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit with a valid struct.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &r) }, 0);
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn wait(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn failing_writes_show_drop_whole_gops_and_recording_resumes() {
    // A failed write past the limit would otherwise kill the process.
    // SAFETY: ignoring a signal.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let dir = std::env::temp_dir().join(format!("vigil-faults-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cam = CameraServer::start(ServerOptions {
        listen: ([127, 0, 0, 1], 0).into(),
        auth: None,
        bitrate_kbps: Some(2000),
    })
    .unwrap();
    let text = format!(
        "[storage]\npath = \"data\"\npool_size_mb = 8\npools = 2\nsync_interval_ms = 300\n\
         [memory]\narena_mb = 1\n[system]\nstream_start_spacing_ms = 0\n\
         [[camera]]\nname = \"a\"\nurl = \"{}\"\nsegment_seconds = 5\n",
        cam.url("h264/a")
    );
    let cfg = config::parse_str(&text, &dir).unwrap();
    let storage = store::open::open_for_writing(&cfg.storage).unwrap();
    let rec = Recorder::start(&cfg, storage).unwrap();
    let status = rec.running.statuses()[0].clone();
    wait("frames", Duration::from_secs(10), || {
        status.snapshot().frames > 50
    });
    std::thread::sleep(Duration::from_secs(1));

    // The disk "fills": every write fails from now on.
    set_fsize(4096);
    let fault_at = vigil::time::now_90k();
    wait(
        "the storage error in the stream state",
        Duration::from_secs(10),
        || status.snapshot().storage_error.is_some(),
    );
    let err = status.snapshot().storage_error.unwrap();
    assert!(err.contains("pool"), "{err}");
    // The 1 MiB arena fills within a few seconds at 2 Mbit/s; from then on
    // frames are dropped, whole GOPs at a time, while the network side goes on.
    let rss_before = rss_kib();
    let dropped_before = status.snapshot().frames_dropped;
    wait("dropped frames", Duration::from_secs(15), || {
        status.snapshot().frames_dropped > dropped_before + 50
    });
    std::thread::sleep(Duration::from_secs(2));
    let rss_after = rss_kib();
    assert!(
        rss_after < rss_before + 2048,
        "RSS grew from {rss_before} to {rss_after} KiB under arena pressure"
    );
    let snap = status.snapshot();
    assert_eq!(snap.state.name(), "streaming", "{snap:?}");

    // The fault clears: recording resumes by itself.
    set_fsize(libc::RLIM_INFINITY);
    wait(
        "the storage error to clear",
        Duration::from_secs(10),
        || status.snapshot().storage_error.is_none(),
    );
    let resumed_at = vigil::time::now_90k();
    std::thread::sleep(Duration::from_secs(3));
    let stats = rec.shutdown(Duration::from_secs(5)).unwrap();
    assert!(stats.errors > 0);

    let db = Db::open_read_only(&cfg.storage.db).unwrap();
    let recs = db.all_recordings().unwrap();
    assert!(
        recs.iter()
            .any(|r| r.start_90k + r.duration_90k > resumed_at),
        "nothing recorded after the fault cleared"
    );
    // What was dropped is a gap: the recording after it says so.
    assert!(
        recs.iter()
            .any(|r| r.start_90k >= fault_at && r.flags & store::db::RECORDING_GAP != 0),
        "no recording marks the gap: {recs:?}"
    );
    drop(db);
    let report = store::check::run(&cfg.storage, CheckLevel::Crc, false, false).unwrap();
    assert_eq!(report.remaining_problems(), 0, "{:?}", report.problems);
    cam.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
