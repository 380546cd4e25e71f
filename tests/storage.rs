//! Recording through the whole path, in one process: the built-in camera,
//! stream threads, the arena, the writer, pool files and the index.

mod common;

use common::temp_dir;
use std::path::Path;
use std::time::{Duration, Instant};
use vigil::camera::{CameraServer, ServerOptions};
use vigil::config::{self, Config};
use vigil::daemon::recorder::Recorder;
use vigil::store::check::CheckLevel;
use vigil::store::{self, db::Db};

fn config(dir: &Path, camera: &CameraServer, pool_mb: u32, pools: u32, kbps_note: &str) -> Config {
    let text = format!(
        "# {kbps_note}\n[storage]\npath = \"data\"\npool_size_mb = {pool_mb}\npools = {pools}\nsync_interval_ms = 300\n\
         [memory]\narena_mb = 4\n[system]\nstream_start_spacing_ms = 0\n\
         [[camera]]\nname = \"a\"\nurl = \"{}\"\nsegment_seconds = 5\n\
         [[camera]]\nname = \"b\"\nurl = \"{}\"\nsub_url = \"{}\"\nrecord = \"both\"\nsegment_seconds = 5\n",
        camera.url("h264/a"),
        camera.url("h265/b"),
        camera.url("mjpeg/b"),
    );
    config::parse_str(&text, dir).unwrap()
}

fn record_for(cfg: &Config, d: Duration) {
    let storage = store::open::open_for_writing(&cfg.storage).unwrap();
    let rec = Recorder::start(cfg, storage).unwrap();
    std::thread::sleep(d);
    let stats = rec.shutdown(Duration::from_secs(5)).unwrap();
    assert_eq!(stats.last_error, None);
}

#[test]
fn records_every_stream_and_wraps_the_ring() {
    let dir = temp_dir("storage");
    let cam = CameraServer::start(ServerOptions {
        listen: ([127, 0, 0, 1], 0).into(),
        auth: None,
        bitrate_kbps: Some(1000),
    })
    .unwrap();
    // 3 streams, ~2.3 Mbit/s together: 1 MiB pools fill in ~4 s each.
    let cfg = config(&dir, &cam, 1, 4, "tiny pools");
    let started = vigil::time::now_90k();
    record_for(&cfg, Duration::from_secs(12));
    let pool_sizes: Vec<u64> = (0..4)
        .map(|i| {
            std::fs::metadata(dir.join(format!("data/pool-{i:03}.bin")))
                .unwrap()
                .len()
        })
        .collect();
    assert!(pool_sizes.iter().all(|&s| s == 1 << 20), "{pool_sizes:?}");

    let db = Db::open_read_only(&cfg.storage.db).unwrap();
    let streams = db.streams().unwrap();
    assert_eq!(streams.len(), 3, "{streams:?}");
    let gens = db.pool_generations().unwrap();
    assert!(
        gens.iter().any(|&g| g > 4),
        "the ring did not wrap: {gens:?}"
    );
    for s in &streams {
        let recs = db.recordings(s.id, 0, i64::MAX / 2).unwrap();
        assert!(!recs.is_empty(), "{s:?}");
        for w in recs.windows(2) {
            assert!(
                w[1].start_90k >= w[0].start_90k + w[0].duration_90k,
                "overlap: {w:?}"
            );
            // Reclaim took the oldest: what is left is contiguous in time
            // and in ids.
            assert!(w[1].id > w[0].id);
        }
        let newest = recs.last().unwrap();
        let end = newest.start_90k + newest.duration_90k;
        // The newest video is within a second or two of the stop.
        assert!(end > started + 8 * 90_000, "{s:?}: ends too early");
    }
    // Start again: nothing to recover after a clean stop, and check agrees.
    drop(db);
    let report = store::check::run(&cfg.storage, CheckLevel::Crc, false, false).unwrap();
    assert_eq!(report.remaining_problems(), 0, "{:?}", report.problems);
    let storage = store::open::open_for_writing(&cfg.storage).unwrap();
    assert_eq!(storage.recovery.records_indexed, 0);
    drop(storage);
    cam.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rebuild_index_restores_every_recording_and_flipped_bytes_are_found() {
    let dir = temp_dir("rebuild");
    let cam = CameraServer::start(ServerOptions {
        listen: ([127, 0, 0, 1], 0).into(),
        auth: None,
        bitrate_kbps: None,
    })
    .unwrap();
    let cfg = config(&dir, &cam, 4, 4, "no wrap");
    record_for(&cfg, Duration::from_secs(6));
    let before: Vec<(i64, i64, u32, u64)> = {
        let db = Db::open_read_only(&cfg.storage.db).unwrap();
        db.all_recordings()
            .unwrap()
            .into_iter()
            .map(|r| (r.start_90k, r.duration_90k, r.frames, r.bytes))
            .collect()
    };
    assert!(before.len() >= 3);
    // The database is lost; the pools alone give it back.
    std::fs::remove_file(&cfg.storage.db).unwrap();
    let _ = std::fs::remove_file(cfg.storage.db.with_extension("db-wal"));
    let _ = std::fs::remove_file(cfg.storage.db.with_extension("db-shm"));
    let report = store::check::run(&cfg.storage, CheckLevel::Crc, false, true).unwrap();
    assert_eq!(report.remaining_problems(), 0);
    let mut after: Vec<(i64, i64, u32, u64)> = Db::open_read_only(&cfg.storage.db)
        .unwrap()
        .all_recordings()
        .unwrap()
        .into_iter()
        .map(|r| (r.start_90k, r.duration_90k, r.frames, r.bytes))
        .collect();
    let mut before = before;
    before.sort();
    after.sort();
    assert_eq!(before, after);
    let report = store::check::run(&cfg.storage, CheckLevel::Crc, false, false).unwrap();
    assert_eq!(report.remaining_problems(), 0, "{:?}", report.problems);

    // Flip one byte in the middle of the first pool's data.
    let pool0 = dir.join("data/pool-000.bin");
    let mut bytes = std::fs::read(&pool0).unwrap();
    bytes[4096 + 20_000] ^= 0x40;
    std::fs::write(&pool0, &bytes).unwrap();
    let report = store::check::run(&cfg.storage, CheckLevel::Crc, false, false).unwrap();
    assert!(report.remaining_problems() >= 1, "flipped byte not found");
    assert!(
        report.problems.iter().any(|p| p.contains("CRC")),
        "{:?}",
        report.problems
    );
    // Presence does not read the bytes; size reads only headers.
    let report = store::check::run(&cfg.storage, CheckLevel::Presence, false, false).unwrap();
    assert_eq!(report.remaining_problems(), 0);
    // Repair truncates the damaged recording; then all is clean.
    let report = store::check::run(&cfg.storage, CheckLevel::Crc, true, false).unwrap();
    assert_eq!(report.remaining_problems(), 0);
    assert!(!report.repaired.is_empty());
    let report = store::check::run(&cfg.storage, CheckLevel::Crc, false, false).unwrap();
    assert_eq!(report.remaining_problems(), 0, "{:?}", report.problems);
    cam.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_foreign_database_is_refused() {
    let dir = temp_dir("foreign");
    let cam = CameraServer::start(ServerOptions {
        listen: ([127, 0, 0, 1], 0).into(),
        auth: None,
        bitrate_kbps: None,
    })
    .unwrap();
    let cfg_a = config(&dir.join("a"), &cam, 1, 2, "a");
    let cfg_b = config(&dir.join("b"), &cam, 1, 2, "b");
    std::fs::create_dir_all(dir.join("a")).unwrap();
    std::fs::create_dir_all(dir.join("b")).unwrap();
    store::open::init(&cfg_a.storage).unwrap();
    store::open::init(&cfg_b.storage).unwrap();
    // B's database restored over A's.
    std::fs::copy(&cfg_b.storage.db, &cfg_a.storage.db).unwrap();
    let err = store::open::open_for_writing(&cfg_a.storage)
        .err()
        .expect("refused");
    assert!(err.contains("does not belong"), "{err}");
    // A directory with other files in it is not taken over.
    let other = dir.join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("holiday.jpg"), b"x").unwrap();
    let cfg_o = config(&other, &cam, 1, 2, "o");
    let mut storage = cfg_o.storage.clone();
    storage.path = other.clone();
    storage.db = other.join("vigil.db");
    let err = store::open::init(&storage).unwrap_err();
    assert!(err.contains("not empty"), "{err}");
    cam.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_reader_racing_the_reclaim_gets_right_bytes_or_a_clean_error() {
    use vigil::store::format::RecordHeader;
    use vigil::store::pool::ReadError;
    let dir = temp_dir("race");
    let cam = CameraServer::start(ServerOptions {
        listen: ([127, 0, 0, 1], 0).into(),
        auth: None,
        bitrate_kbps: Some(2000),
    })
    .unwrap();
    // Three streams at ~5 Mbit/s into 1 MiB pools: a pool is reclaimed
    // every couple of seconds.
    let cfg = config(&dir, &cam, 1, 3, "racing");
    let storage = store::open::open_for_writing(&cfg.storage).unwrap();
    let rec = Recorder::start(&cfg, storage).unwrap();
    let reader = rec.pool_reader.clone();
    let (mut good, mut overwritten, mut wrong) = (0u32, 0u32, 0u32);
    let deadline = Instant::now() + Duration::from_secs(12);
    let mut buf = Vec::new();
    while Instant::now() < deadline {
        let Ok(db) = Db::open_read_only(&cfg.storage.db) else {
            continue;
        };
        // The oldest recordings: the ones about to be reclaimed.
        let mut recs = db.all_recordings().unwrap_or_default();
        recs.sort_by_key(|r| r.id);
        for r in recs.iter().take(3) {
            for rr in db.records(r.id).unwrap_or_default() {
                buf.resize((rr.header_len + rr.payload_len) as usize, 0);
                match reader.read_checked(rr.pool, rr.offset, &mut buf, rr.generation) {
                    Ok(()) => {
                        let (head, payload) = buf.split_at(rr.header_len as usize);
                        if RecordHeader::crc_matches(head, payload) {
                            good += 1;
                        } else {
                            wrong += 1;
                        }
                    }
                    Err(ReadError::Overwritten) => overwritten += 1,
                    Err(e) => panic!("read failed: {e:?}"),
                }
            }
        }
    }
    // And for certain, not by chance: a reader holding a record's place
    // while the writer comes round again gets a clean error.
    let db = Db::open_read_only(&cfg.storage.db).unwrap();
    let oldest = db
        .all_recordings()
        .unwrap()
        .into_iter()
        .min_by_key(|r| r.id)
        .unwrap();
    let rr = db.records(oldest.id).unwrap().remove(0);
    let deadline = Instant::now() + Duration::from_secs(20);
    while reader.generation(rr.pool) == rr.generation {
        assert!(
            Instant::now() < deadline,
            "the writer never came back to pool {}",
            rr.pool
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    buf.resize((rr.header_len + rr.payload_len) as usize, 0);
    assert!(matches!(
        reader.read_checked(rr.pool, rr.offset, &mut buf, rr.generation),
        Err(ReadError::Overwritten)
    ));
    rec.shutdown(Duration::from_secs(5)).unwrap();
    println!("{good} records read intact, {overwritten} found overwritten, {wrong} wrong");
    assert_eq!(wrong, 0, "a reader got bytes the index did not describe");
    assert!(good > 50, "too few reads to judge ({good})");
    cam.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
