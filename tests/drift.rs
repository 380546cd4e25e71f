//! The writer driven with synthetic frames: recovery of records written
//! but never committed, and a camera whose clock runs 0.1% fast or slow: over 24 hours, recordings
//! must stay within 1 s of wall-clock time and never overlap. Durations
//! come from the camera's clock and start times from ours, so this is the
//! writer's limited-rate correction at work. Frames are synthetic (one per
//! second, tiny), driven through the real arena, writer, pools and index.

use std::sync::Arc;
use std::time::Duration;
use vigil::arena::{self, FrameMeta, Push};
use vigil::config::{self, StreamKind};
use vigil::store::{self, db::Db, format, writer::Writer, writer::WriterStream};
use vigil::stream::StreamStatus;
use vigil::stream::{Codec, VideoParams};

const TICKS: i64 = 90_000;

/// A writer over fresh storage in `dir`, fed by one synthetic stream.
struct Synthetic {
    cfg: vigil::config::Config,
    ring: arena::RingWriter,
    writer: Writer,
    stream_id: u32,
    /// Serialized parameters, for the first frame.
    params: Vec<u8>,
    start_offset: u64,
    lock: std::fs::File,
}

fn synthetic(dir: &std::path::Path, pool_mb: u32, segment_s: i64) -> Synthetic {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let cfg = config::parse_str(
        &format!("[storage]\npath = \"d\"\npool_size_mb = {pool_mb}\npools = 2\n"),
        dir,
    )
    .unwrap();
    let storage = store::open::open_for_writing(&cfg.storage).unwrap();
    let start_offset = storage.position.offset;
    let mut rings = arena::carve(1 << 20, &[1]).unwrap();
    let (ring, r) = rings.remove(0);
    let mut db = storage.db;
    let stream_id = db.stream_id("cam", "main").unwrap();
    let writer = Writer::new(
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
            segment_90k: segment_s * TICKS,
            stagger_90k: 0,
            ring: r,
            status: Arc::new(StreamStatus::new("cam", StreamKind::Main)),
        }],
        Duration::from_secs(3600),
    )
    .unwrap();
    let p = VideoParams {
        codec: Codec::H264,
        width: 640,
        height: 360,
        fps_milli: None,
        rfc6381_codec: "avc1.4d401e".into(),
        decoder_config: vec![1, 0x4d, 0x40, 0x1e, 0xff, 0xe0, 0],
    };
    let mut params = Vec::new();
    format::encode_params(&p, &mut params);
    Synthetic {
        cfg,
        ring,
        writer,
        stream_id,
        params,
        start_offset,
        lock: storage.lock,
    }
}

fn run(ppm: i64) -> (i64, usize) {
    let dir = std::env::temp_dir().join(format!("vigil-drift-{}-{ppm}", std::process::id()));
    let Synthetic {
        cfg,
        ring: mut w,
        mut writer,
        stream_id,
        params: blob,
        ..
    } = synthetic(&dir, 16, 60);
    let wall0 = 1_795_255_200 * TICKS;
    let frames = 24 * 3600;
    for k in 0..frames {
        // The camera's second is 1 + ppm/1e6 of ours.
        let media = k * (TICKS + TICKS * ppm / 1_000_000);
        let meta = FrameMeta {
            timestamp_90k: media,
            wall_90k: wall0 + k * TICKS,
            key: true,
            discontinuity: false,
        };
        let extra: &[u8] = if k == 0 { &blob } else { &[] };
        assert_eq!(
            w.push(&meta, extra, &[0x65, 0x88, 0x84, 0x00]),
            Push::Stored
        );
        if k % 100 == 99 {
            writer.write_available(false).unwrap();
        }
        if k % 1000 == 999 {
            writer.sync_and_commit().unwrap();
        }
    }
    writer.write_available(true).unwrap();
    writer.sync_and_commit().unwrap();
    drop(writer);
    let db = Db::open_read_only(&cfg.storage.db).unwrap();
    let recs = db.recordings(stream_id, 0, i64::MAX / 2).unwrap();
    let mut worst = 0;
    let mut frame = 0i64;
    for (i, r) in recs.iter().enumerate() {
        // The wall-clock time its first frame arrived.
        let wall = wall0 + frame * TICKS;
        worst = worst.max((r.start_90k - wall).abs());
        frame += i64::from(r.frames);
        if let Some(next) = recs.get(i + 1) {
            assert!(
                next.start_90k >= r.start_90k + r.duration_90k,
                "overlap at {i}"
            );
        }
    }
    assert_eq!(frame, frames, "every frame recorded");
    let _ = std::fs::remove_dir_all(&dir);
    (worst, recs.len())
}

#[test]
fn recordings_track_wall_clock_when_the_camera_clock_drifts() {
    for ppm in [1000, -1000] {
        let (worst, n) = run(ppm);
        println!(
            "camera {ppm:+} ppm: {n} recordings over 24 h, worst start error {} ms",
            worst / 90
        );
        assert!(
            worst <= TICKS,
            "camera {ppm:+} ppm: start {} ms off wall clock",
            worst / 90
        );
    }
}

#[test]
fn recovery_indexes_uncommitted_records_and_stops_at_a_damaged_one() {
    let dir = std::env::temp_dir().join(format!("vigil-recover-{}", std::process::id()));
    let Synthetic {
        cfg,
        ring: mut w,
        mut writer,
        params: blob,
        start_offset: start,
        lock,
        ..
    } = synthetic(&dir, 4, 600);
    // Three records of 10 frames each, written but never committed: as if
    // the process died before its sync.
    for k in 0..31i64 {
        let meta = FrameMeta {
            timestamp_90k: k * 3600,
            wall_90k: 1_795_255_200 * TICKS + k * 3600,
            key: k % 10 == 0,
            discontinuity: false,
        };
        let extra: &[u8] = if k == 0 { &blob } else { &[] };
        assert_eq!(w.push(&meta, extra, &[0x41; 1000]), Push::Stored);
        if k % 10 == 9 || k == 30 {
            writer.write_available(false).unwrap();
        }
    }
    drop(writer);
    // The process is gone: so is its lock.
    drop(lock);
    // Damage the second record's payload.
    let pool = dir.join("d/pool-000.bin");
    let mut bytes = std::fs::read(&pool).unwrap();
    let at = start as usize;
    let (first, h1) = format::RecordHeader::decode(&bytes[at..]).unwrap();
    let second_at = at + h1 as usize + first.payload_len as usize;
    let (_, h2) = format::RecordHeader::decode(&bytes[second_at..]).unwrap();
    let second = second_at + h2 as usize + 500;
    bytes[second] ^= 1;
    std::fs::write(&pool, &bytes).unwrap();

    let storage = store::open::open_for_writing(&cfg.storage).unwrap();
    let rec = &storage.recovery;
    assert_eq!(rec.records_indexed, 1, "{rec:?}");
    assert!(
        rec.stopped.as_deref().unwrap_or("").contains("CRC"),
        "{rec:?}"
    );
    // New writes go where the damage was, after the last good record.
    assert!(storage.position.offset < second as u64);
    let recs = storage.db.all_recordings().unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].frames as usize, first.frames.len());
    assert_eq!(recs[0].flags & store::db::RECORDING_OPEN, 0, "left open");
    drop(storage);
    let report = store::check::run(
        &cfg.storage,
        vigil::store::check::CheckLevel::Crc,
        false,
        false,
    )
    .unwrap();
    assert_eq!(report.remaining_problems(), 0, "{:?}", report.problems);
    let _ = std::fs::remove_dir_all(&dir);
}
