//! Tests of the SQLite index, on temporary files.

use super::connect::BUSY_TIMEOUT;
use super::recordings::RECORDING_COLUMNS;
use super::schema::{migrate_0_to_1, Migration, APPLICATION_ID, MIGRATIONS};
use super::*;
use crate::store::video_index::VideoIndexEncoder;
use rusqlite::{params, Transaction};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

/// A database path under the temp dir, removed (with its WAL files) on drop.
struct TempDb(PathBuf);

impl TempDb {
    fn new(name: &str) -> TempDb {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!(
            "vigil-db-test-{}-{n}-{name}.db",
            std::process::id()
        ));
        let t = TempDb(p);
        t.remove();
        t
    }
    fn path(&self) -> &Path {
        &self.0
    }
    fn remove(&self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut s = self.0.clone().into_os_string();
            s.push(suffix);
            let _ = std::fs::remove_file(s);
        }
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        self.remove();
    }
}

const UUID: [u8; 16] = *b"0123456789abcdef";

fn raw(path: &Path) -> Connection {
    Connection::open(path).unwrap()
}

/// A created database with one open, one stream and one sample entry.
struct Fixture {
    _t: TempDb,
    db: Db,
    open: i64,
    stream: u32,
    entry: i64,
}

fn fixture(name: &str) -> Fixture {
    let t = TempDb::new(name);
    let mut db = Db::create(t.path(), &UUID).unwrap();
    let open = db.begin_open("test", 1).unwrap();
    let stream = db.stream_id("front", "main").unwrap();
    let entry = db.sample_entry_id(&entry()).unwrap();
    Fixture {
        _t: t,
        db,
        open,
        stream,
        entry,
    }
}

fn entry() -> SampleEntry {
    SampleEntry {
        codec: "h264".to_owned(),
        width: 1920,
        height: 1080,
        rfc6381: "avc1.640028".to_owned(),
        decoder_config: vec![1, 0x64, 0, 0x28, 0xff],
    }
}

fn index(frames: u32) -> Vec<u8> {
    let mut e = VideoIndexEncoder::new();
    for i in 0..frames {
        let key = i % 30 == 0;
        e.push(3000, if key { 50_000 } else { 4000 + (i % 7) as i32 }, key);
    }
    e.as_bytes().to_vec()
}

impl Fixture {
    fn recording(&self, id: i64, start: i64, duration: i64, frames: u32) -> RecordingRow {
        RecordingRow {
            id,
            stream_id: self.stream,
            open_id: self.open,
            start_90k: start,
            duration_90k: duration,
            media_start_90k: start * 2,
            frames,
            key_frames: frames.div_ceil(30),
            bytes: u64::from(frames) * 5000,
            sample_entry_id: self.entry,
            video_index: index(frames),
            flags: RECORDING_OPEN,
        }
    }
}

fn record(recording_id: i64, sequence: u32, pool: u32, offset: u64) -> RecordRow {
    RecordRow {
        recording_id,
        sequence,
        pool,
        offset,
        header_len: 100,
        payload_len: 1000,
        frames: 10,
        generation: 1,
    }
}

fn writer(pool: u32, offset: u64) -> WriterPosition {
    WriterPosition {
        pool,
        offset,
        generation: 1,
    }
}

#[test]
fn create_open_reopen() {
    let t = TempDb::new("create");
    {
        let db = Db::create(t.path(), &UUID).unwrap();
        assert_eq!(db.uuid(), UUID);
        assert_eq!(db.writer_position().unwrap(), None);
        assert_eq!(db.pool_generations().unwrap(), Vec::<u64>::new());
        assert_eq!(db.next_recording_id().unwrap(), 1);
    }
    let mode: String = raw(t.path())
        .query_row("pragma journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let created: i64 = raw(t.path())
        .query_row("select created_90k from meta", [], |r| r.get(0))
        .unwrap();
    // After 2020-01-01.
    assert!(created > 1_577_836_800 * 90_000, "{created}");
    for _ in 0..2 {
        let db = Db::open(t.path()).unwrap();
        assert_eq!(db.uuid(), UUID);
    }
    assert_eq!(Db::open_read_only(t.path()).unwrap().uuid(), UUID);
    let e = Db::create(t.path(), &[9; 16]).err().unwrap();
    assert!(matches!(e, DbError::Exists { .. }), "{e}");
    assert!(e.to_string().contains("refusing"), "{e}");
    // Still ours.
    assert_eq!(Db::open(t.path()).unwrap().uuid(), UUID);
}

/// One more migration for the test: a second run would fail (the table
/// exists), and it counts itself.
fn test_migrate_next(tx: &Transaction<'_>) -> Result<(), DbError> {
    tx.execute_batch("create table extra (x integer); insert into extra values (1);")?;
    Ok(())
}

#[test]
fn migrations_run_once_and_newer_is_refused() {
    let t = TempDb::new("migrate");
    Db::create(t.path(), &UUID).unwrap();
    let mut more: Vec<Migration> = MIGRATIONS.to_vec();
    more.push(test_migrate_next);
    let next = i64::from(SCHEMA_VERSION) + 1;
    for _ in 0..3 {
        let db = Db::open_with(t.path(), &more).unwrap();
        assert_eq!(db.uuid(), UUID);
        let n: i64 = db
            .conn
            .query_row("select count(*) from extra", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
        let v: i64 = db
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, next);
    }
    // This build does not know the last one.
    for e in [
        Db::open(t.path()).err().unwrap(),
        Db::open_read_only(t.path()).err().unwrap(),
    ] {
        assert!(
            matches!(
                e,
                DbError::TooNew {
                    found,
                    known: SCHEMA_VERSION,
                    ..
                } if found == next
            ),
            "{e}"
        );
        assert!(e.to_string().contains("newer"), "{e}");
    }
    raw(t.path())
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let e = Db::open(t.path()).err().unwrap();
    assert!(matches!(e, DbError::TooNew { found: 99, .. }), "{e}");
}

#[test]
fn foreign_files_are_refused_cleanly() {
    let t = TempDb::new("foreign");
    // Missing: an open must not create it.
    let e = Db::open(t.path()).err().unwrap();
    assert!(matches!(e, DbError::Open { .. }), "{e}");
    assert!(!t.path().exists());
    assert!(matches!(
        Db::open_read_only(t.path()).err().unwrap(),
        DbError::Open { .. }
    ));

    // Not SQLite at all.
    std::fs::write(t.path(), "vigil-meta 1\nuuid 00\n".repeat(300)).unwrap();
    for e in [
        Db::open(t.path()).err().unwrap(),
        Db::open_read_only(t.path()).err().unwrap(),
        Db::create(t.path(), &UUID).err().unwrap(),
    ] {
        assert!(matches!(e, DbError::NotADatabase { .. }), "{e}");
        assert!(e.to_string().contains("not an SQLite database"), "{e}");
        assert!(e.to_string().contains(&*t.path().to_string_lossy()), "{e}");
    }
    t.remove();

    // Another program's SQLite database.
    raw(t.path())
        .execute_batch("create table recording (id integer primary key);")
        .unwrap();
    for e in [
        Db::open(t.path()).err().unwrap(),
        Db::open_read_only(t.path()).err().unwrap(),
    ] {
        assert!(matches!(e, DbError::NotVigil { .. }), "{e}");
    }
    assert!(matches!(
        Db::create(t.path(), &UUID).err().unwrap(),
        DbError::Exists { .. }
    ));
    raw(t.path())
        .pragma_update(None, "user_version", 1)
        .unwrap();
    let e = Db::open(t.path()).err().unwrap();
    assert!(matches!(e, DbError::NotVigil { .. }), "{e}");
    assert!(e.to_string().contains("application id"), "{e}");
    t.remove();

    // An empty SQLite file: not initialised.
    std::fs::write(t.path(), b"").unwrap();
    let e = Db::open(t.path()).err().unwrap();
    assert!(matches!(e, DbError::NotVigil { .. }), "{e}");
    assert!(e.to_string().contains("vigil init"), "{e}");
    // ... which `create` may initialise.
    assert_eq!(Db::create(t.path(), &UUID).unwrap().uuid(), UUID);
}

#[test]
fn corrupt_values_are_errors() {
    let mut f = fixture("corrupt");
    f.db.commit(&CommitBatch {
        recordings: vec![f.recording(1, 0, 100, 30)],
        records: vec![record(1, 0, 0, 4096)],
        writer: writer(0, 5000),
    })
    .unwrap();
    let c = &f.db.conn;
    c.execute("update recording set frames = -1", []).unwrap();
    let e = f.db.all_recordings().err().unwrap();
    assert!(matches!(e, DbError::Corrupt(_)), "{e}");
    assert!(e.to_string().contains("recording.frames"), "{e}");
    c.execute("update recording set frames = 30, video_index = 'text'", [])
        .unwrap();
    assert!(matches!(
        f.db.recording(1).err().unwrap(),
        DbError::Corrupt(_)
    ));
    c.execute(r#"update record set "offset" = -5"#, []).unwrap();
    assert!(matches!(
        f.db.records(1).err().unwrap(),
        DbError::Corrupt(_)
    ));
    c.execute("insert into pool values (?1, 1)", [i64::from(u32::MAX)])
        .unwrap();
    assert!(matches!(
        f.db.pool_generations().err().unwrap(),
        DbError::Corrupt(_)
    ));
    c.execute(r#"update writer set pool = 1 << 40"#, [])
        .unwrap();
    assert!(matches!(
        f.db.writer_position().err().unwrap(),
        DbError::Corrupt(_)
    ));
    c.execute("update sample_entry set width = 70000", [])
        .unwrap();
    assert!(matches!(
        f.db.sample_entry(f.entry).err().unwrap(),
        DbError::Corrupt(_)
    ));
    c.execute("update meta set uuid = x'00'", []).unwrap_err(); // check constraint
    c.execute("delete from meta", []).unwrap();
    drop(f.db);
    let e = Db::open(f._t.path()).err().unwrap();
    assert!(matches!(e, DbError::Corrupt(_)), "{e}");
}

#[test]
fn streams_and_sample_entries_are_deduplicated() {
    let mut f = fixture("dedup");
    assert_eq!(f.db.stream_id("front", "main").unwrap(), f.stream);
    let sub = f.db.stream_id("front", "sub").unwrap();
    let back = f.db.stream_id("back", "main").unwrap();
    assert!(sub != f.stream && back != f.stream && sub != back);
    assert_eq!(
        f.db.streams().unwrap(),
        vec![
            StreamRow {
                id: f.stream,
                camera: "front".into(),
                kind: "main".into()
            },
            StreamRow {
                id: sub,
                camera: "front".into(),
                kind: "sub".into()
            },
            StreamRow {
                id: back,
                camera: "back".into(),
                kind: "main".into()
            },
        ]
    );
    assert_eq!(f.db.sample_entry_id(&entry()).unwrap(), f.entry);
    let mut other = entry();
    other.decoder_config.push(0);
    let other_id = f.db.sample_entry_id(&other).unwrap();
    assert_ne!(other_id, f.entry);
    assert_eq!(f.db.sample_entry_id(&other).unwrap(), other_id);
    assert_eq!(f.db.sample_entry(f.entry).unwrap(), entry());
    assert_eq!(f.db.sample_entry(other_id).unwrap(), other);
    assert!(matches!(
        f.db.sample_entry(999).err().unwrap(),
        DbError::NotFound(_)
    ));
    let o2 = f.db.begin_open("test", 2).unwrap();
    assert!(o2 > f.open);
}

#[test]
fn commit_upserts_a_growing_recording_and_replays_idempotently() {
    let mut f = fixture("commit");
    let id = f.db.next_recording_id().unwrap();
    assert_eq!(id, 1);
    let b1 = CommitBatch {
        recordings: vec![f.recording(id, 1000, 90_000, 30)],
        records: vec![record(id, 0, 0, 4096)],
        writer: writer(0, 5192),
    };
    f.db.commit(&b1).unwrap();
    assert_eq!(f.db.recording(id).unwrap(), Some(b1.recordings[0].clone()));
    assert_eq!(f.db.writer_position().unwrap(), Some(b1.writer));

    let mut grown = f.recording(id, 1000, 180_000, 60);
    grown.flags |= RECORDING_GAP;
    let b2 = CommitBatch {
        recordings: vec![grown.clone()],
        records: vec![record(id, 1, 0, 5192)],
        writer: writer(0, 6288),
    };
    f.db.commit(&b2).unwrap();
    let got = f.db.recording(id).unwrap().unwrap();
    assert_eq!(got, grown);
    assert_eq!(got.video_index, index(60));
    assert_eq!(
        f.db.records(id).unwrap(),
        vec![record(id, 0, 0, 4096), record(id, 1, 0, 5192)]
    );
    assert_eq!(f.db.all_recordings().unwrap(), vec![grown.clone()]);

    // Recovery replays what it finds after an older position: the same
    // records again, the recording's state as rebuilt.
    let replay = CommitBatch {
        recordings: vec![grown.clone()],
        records: vec![record(id, 0, 0, 4096), record(id, 1, 0, 5192)],
        writer: writer(0, 6288),
    };
    f.db.commit(&replay).unwrap();
    f.db.commit(&b2).unwrap();
    assert_eq!(f.db.records(id).unwrap().len(), 2);
    assert_eq!(f.db.recording(id).unwrap(), Some(grown.clone()));

    // A different record at an indexed place is refused, and the whole
    // batch rolled back.
    let mut bad = b2.clone();
    bad.recordings[0].frames = 99;
    bad.records = vec![record(id, 2, 0, 6288), record(id, 1, 1, 4096)];
    bad.writer = writer(1, 9999);
    let e = f.db.commit(&bad).err().unwrap();
    assert!(matches!(e, DbError::Conflict(_)), "{e}");
    assert_eq!(f.db.records(id).unwrap().len(), 2);
    assert_eq!(f.db.recording(id).unwrap(), Some(grown.clone()));
    assert_eq!(f.db.writer_position().unwrap(), Some(b2.writer));

    // Values the schema cannot hold are refused before any write.
    let mut bad = b2.clone();
    bad.writer.offset = u64::MAX;
    assert!(matches!(
        f.db.commit(&bad).err().unwrap(),
        DbError::Invalid(_)
    ));
    let mut bad = b2.clone();
    bad.recordings[0].duration_90k = -1;
    assert!(matches!(
        f.db.commit(&bad).err().unwrap(),
        DbError::Invalid(_)
    ));
    // A record of an unknown recording violates the foreign key.
    let mut bad = b2.clone();
    bad.records = vec![record(77, 0, 0, 1)];
    assert!(f.db.commit(&bad).is_err());
    assert_eq!(f.db.writer_position().unwrap(), Some(b2.writer));

    assert_eq!(f.db.close_open_recordings().unwrap(), 1);
    assert_eq!(f.db.close_open_recordings().unwrap(), 0);
    let closed = f.db.recording(id).unwrap().unwrap();
    assert_eq!(closed.flags, RECORDING_GAP);
}

#[test]
fn next_recording_id_never_reuses() {
    let mut f = fixture("nextid");
    f.db.commit(&CommitBatch {
        recordings: vec![f.recording(5, 0, 10, 1)],
        records: vec![record(5, 0, 0, 4096)],
        writer: writer(0, 5192),
    })
    .unwrap();
    assert_eq!(f.db.next_recording_id().unwrap(), 6);
    f.db.delete_recording(5).unwrap();
    assert!(f.db.records(5).unwrap().is_empty());
    assert_eq!(f.db.recording(5).unwrap(), None);
    assert_eq!(f.db.next_recording_id().unwrap(), 6);
    assert!(matches!(
        f.db.delete_recording(5).err().unwrap(),
        DbError::NotFound(_)
    ));
}

#[test]
fn reclaim_deletes_exactly_the_recordings_touching_the_pool() {
    let mut f = fixture("reclaim");
    // 1: pool 2 only; 2: pools 2 and 3; 3: pool 3 only; 4: pool 4.
    let recs = vec![
        f.recording(1, 0, 100, 10),
        f.recording(2, 100, 100, 20),
        f.recording(3, 200, 100, 30),
        f.recording(4, 300, 100, 40),
    ];
    f.db.commit(&CommitBatch {
        recordings: recs.clone(),
        records: vec![
            record(1, 0, 2, 4096),
            record(2, 0, 2, 8192),
            record(2, 1, 3, 4096),
            record(3, 0, 3, 8192),
            record(3, 1, 3, 9192),
            record(4, 0, 4, 4096),
        ],
        writer: writer(4, 8192),
    })
    .unwrap();
    let stats = f.db.reclaim_pool(3, 7).unwrap();
    assert_eq!(
        stats,
        ReclaimStats {
            recordings: 2,
            bytes: recs[1].bytes + recs[2].bytes
        }
    );
    let left: Vec<i64> =
        f.db.all_recordings()
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
    assert_eq!(left, vec![1, 4]);
    assert_eq!(f.db.records(1).unwrap(), vec![record(1, 0, 2, 4096)]);
    assert!(f.db.records(2).unwrap().is_empty());
    assert!(f.db.records(3).unwrap().is_empty());
    assert_eq!(f.db.records(4).unwrap().len(), 1);
    let n: i64 =
        f.db.conn
            .query_row("select count(*) from record", [], |r| r.get(0))
            .unwrap();
    assert_eq!(n, 2);
    assert_eq!(f.db.pool_generations().unwrap(), vec![0, 0, 0, 7]);
    // The connection is back to NORMAL after the FULL reclaim.
    let sync: i64 =
        f.db.conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
    assert_eq!(sync, 1);

    assert_eq!(f.db.reclaim_pool(1, 5).unwrap(), ReclaimStats::default());
    assert_eq!(f.db.pool_generations().unwrap(), vec![0, 5, 0, 7]);
    assert_eq!(f.db.reclaim_pool(3, 8).unwrap(), ReclaimStats::default());
    assert_eq!(f.db.pool_generations().unwrap(), vec![0, 5, 0, 8]);
    assert_eq!(f.db.reclaim_pool(2, 9).unwrap().recordings, 1);
    assert_eq!(f.db.all_recordings().unwrap().len(), 1);
    assert!(matches!(
        f.db.reclaim_pool(MAX_POOLS, 1).err().unwrap(),
        DbError::Invalid(_)
    ));
}

#[test]
fn recordings_overlapping_a_range() {
    let mut f = fixture("overlap");
    let other = f.db.stream_id("back", "main").unwrap();
    let mut o = f.recording(10, 0, 1000, 5);
    o.stream_id = other;
    f.db.commit(&CommitBatch {
        recordings: vec![
            f.recording(1, 0, 100, 5),
            f.recording(2, 100, 100, 5),
            f.recording(3, 250, 50, 5),
            f.recording(4, 400, 0, 0),
            o,
        ],
        records: vec![],
        writer: writer(0, 4096),
    })
    .unwrap();
    let ids = |s: i64, e: i64| -> Vec<i64> {
        f.db.recordings(f.stream, s, e)
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect()
    };
    assert_eq!(ids(0, 1000), vec![1, 2, 3, 4]);
    assert_eq!(ids(-50, 0), Vec::<i64>::new()); // ends where 1 starts
    assert_eq!(ids(-50, 1), vec![1]);
    assert_eq!(ids(50, 150), vec![1, 2]);
    assert_eq!(ids(100, 101), vec![2]); // 1 ends at 100: not included
    assert_eq!(ids(99, 100), vec![1]);
    assert_eq!(ids(200, 250), Vec::<i64>::new()); // the gap
    assert_eq!(ids(210, 260), vec![3]);
    assert_eq!(ids(299, 400), vec![3]);
    assert_eq!(ids(300, 400), Vec::<i64>::new());
    assert_eq!(ids(400, 401), vec![4]); // zero length: the instant it starts
    assert_eq!(ids(350, 450), vec![4]);
    assert_eq!(ids(401, 500), Vec::<i64>::new());
    assert_eq!(ids(500, 100), Vec::<i64>::new());
    assert_eq!(ids(i64::MIN, i64::MAX), vec![1, 2, 3, 4]);
    assert_eq!(
        f.db.recordings(other, 500, 600).unwrap()[0].id,
        10,
        "the other stream's long recording"
    );
    assert!(f.db.recordings(999, 0, 1000).unwrap().is_empty());

    let s = f.db.stream_summary(f.stream).unwrap();
    assert_eq!(
        s,
        Summary {
            recordings: 4,
            bytes: 15 * 5000,
            oldest_start_90k: Some(0),
            newest_end_90k: Some(400)
        }
    );
    let all = f.db.summary().unwrap();
    assert_eq!(all.recordings, 5);
    assert_eq!(all.newest_end_90k, Some(1000));
    assert_eq!(f.db.stream_summary(999).unwrap(), Summary::default());
}

#[test]
fn recordings_query_uses_the_index() {
    let f = fixture("plan");
    let sql = format!(
        "explain query plan select {RECORDING_COLUMNS} from recording \
         where stream_id = ?1 and start_90k < ?3 \
         and start_90k >= (select coalesce(max(start_90k), ?2) from recording \
                           where stream_id = ?1 and start_90k <= ?2) \
         and (start_90k >= ?2 or start_90k + duration_90k > ?2) \
         order by start_90k, id"
    );
    let mut stmt = f.db.conn.prepare(&sql).unwrap();
    let plan: Vec<String> = stmt
        .query_map(params![1, 0, 1], |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let plan = plan.join("\n");
    assert!(!plan.contains("SCAN recording"), "{plan}");
    assert!(plan.contains("recording_stream_start"), "{plan}");
}

#[test]
fn read_only_works_while_the_writer_commits() {
    let mut f = fixture("wal");
    let ro = Db::open_read_only(f._t.path()).unwrap();
    assert_eq!(ro.summary().unwrap().recordings, 0);
    // A reader in the middle of a read transaction...
    ro.conn.execute_batch("begin").unwrap();
    let n: i64 = ro
        .conn
        .query_row("select count(*) from recording", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
    // ... does not block the writer (a rollback journal would: the commit
    // would wait out the busy timeout and fail).
    let t0 = Instant::now();
    f.db.commit(&CommitBatch {
        recordings: vec![f.recording(1, 0, 100, 30)],
        records: vec![record(1, 0, 0, 4096)],
        writer: writer(0, 5192),
    })
    .unwrap();
    assert!(t0.elapsed() < BUSY_TIMEOUT);
    // The reader keeps its snapshot until its transaction ends.
    let n: i64 = ro
        .conn
        .query_row("select count(*) from recording", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
    ro.conn.execute_batch("commit").unwrap();
    assert_eq!(ro.summary().unwrap().recordings, 1);
    assert_eq!(ro.writer_position().unwrap(), Some(writer(0, 5192)));
    assert_eq!(ro.records(1).unwrap().len(), 1);
    // Writes through it are refused.
    let mut ro = ro;
    let e = ro.begin_open("x", 0).err().unwrap();
    assert!(matches!(e, DbError::ReadOnly), "{e}");
    assert!(matches!(
        ro.reclaim_pool(0, 1).err().unwrap(),
        DbError::ReadOnly | DbError::Sqlite(_)
    ));
    // The writer's data is untouched by that.
    assert_eq!(f.db.pool_generations().unwrap(), Vec::<u64>::new());
}

#[test]
fn commit_of_32_growing_recordings_is_cheap() {
    let mut f = fixture("bench");
    let mut streams = Vec::new();
    for i in 0..32 {
        streams.push(f.db.stream_id(&format!("cam{i}"), "main").unwrap());
    }
    let mut offset = 4096u64;
    let mut times = Vec::new();
    for round in 0..5u32 {
        let frames = 300 * (round + 1);
        let mut batch = CommitBatch {
            recordings: Vec::new(),
            records: Vec::new(),
            writer: writer(0, 0),
        };
        for (i, &s) in streams.iter().enumerate() {
            let id = i as i64 + 1;
            let mut r = f.recording(id, 0, i64::from(frames) * 3000, frames);
            r.stream_id = s;
            batch.recordings.push(r);
            batch.records.push(record(id, round, 0, offset));
            offset += 1100;
        }
        batch.writer = writer(0, offset);
        let t0 = Instant::now();
        f.db.commit(&batch).unwrap();
        times.push(t0.elapsed());
    }
    eprintln!("commit of 32 recordings, 300..1500 frames each: {times:?}");
    let all = f.db.all_recordings().unwrap();
    assert_eq!(all.len(), 32);
    assert!(all.iter().all(|r| r.frames == 1500));
    assert_eq!(f.db.records(32).unwrap().len(), 5);
}

/// Schema version 1 as it was, to test the upgrade: an index made by the
/// first release.
#[test]
fn version_1_index_gains_users_on_open() {
    let t = TempDb::new("upgrade");
    {
        let conn = raw(t.path());
        conn.pragma_update(None, "page_size", 1024).unwrap();
        let mut conn = conn;
        let tx = conn.transaction().unwrap();
        migrate_0_to_1(&tx).unwrap();
        tx.execute(
            "insert into meta (id, uuid, created_90k) values (1, ?1, 0)",
            [&UUID[..]],
        )
        .unwrap();
        tx.execute(
            "insert into stream (camera, kind) values ('front', 'main')",
            [],
        )
        .unwrap();
        tx.pragma_update(None, "application_id", APPLICATION_ID)
            .unwrap();
        tx.pragma_update(None, "user_version", 1).unwrap();
        tx.commit().unwrap();
    }
    // Read-only cannot upgrade, and says how.
    let e = Db::open_read_only(t.path()).err().unwrap();
    assert!(matches!(e, DbError::NeedsUpgrade { found: 1, .. }), "{e}");
    let mut db = Db::open(t.path()).unwrap();
    assert_eq!(db.streams().unwrap().len(), 1);
    assert_eq!(db.count_users(None).unwrap(), 0);
    db.add_user("admin", "admin", "$argon2id$x", 1).unwrap();
    drop(db);
    let db = Db::open_read_only(t.path()).unwrap();
    assert_eq!(db.users().unwrap().len(), 1);
}

#[test]
fn users_add_change_delete_and_the_last_admin() {
    use super::users::UserError;
    let t = TempDb::new("users");
    let mut db = Db::create(t.path(), &UUID).unwrap();
    db.add_user("root", "admin", "phc-root", 10).unwrap();
    db.add_user("bob", "viewer", "phc-bob", 11).unwrap();
    assert!(matches!(
        db.add_user("bob", "admin", "x", 12),
        Err(UserError::Exists(_))
    ));
    // The schema refuses roles that are not ours.
    assert!(matches!(
        db.add_user("eve", "root", "x", 12),
        Err(UserError::Db(_))
    ));
    let names: Vec<String> = db.users().unwrap().into_iter().map(|u| u.name).collect();
    assert_eq!(names, ["bob", "root"]);
    assert_eq!(db.count_users(Some("admin")).unwrap(), 1);
    let root = db.user("root").unwrap().unwrap();
    assert_eq!(root.password, "phc-root");
    // Debug output never shows the hash.
    assert!(!format!("{root:?}").contains("phc-root"));

    // The last admin stays.
    assert!(matches!(
        db.delete_user("root"),
        Err(UserError::LastAdmin(_))
    ));
    assert!(matches!(
        db.set_user_role("root", "viewer", 13),
        Err(UserError::LastAdmin(_))
    ));
    assert_eq!(db.user("root").unwrap().unwrap().role, "admin");
    db.set_user_role("bob", "admin", 14).unwrap();
    db.set_user_role("root", "viewer", 15).unwrap();
    assert!(matches!(
        db.set_user_role("bob", "viewer", 16),
        Err(UserError::LastAdmin(_))
    ));
    db.delete_user("root").unwrap();
    assert!(matches!(
        db.delete_user("root"),
        Err(UserError::NotFound(_))
    ));
    assert!(matches!(
        db.set_user_password("root", "x", 17, None),
        Err(UserError::NotFound(_))
    ));
    db.set_user_password("bob", "phc-bob-2", 18, None).unwrap();
    assert_eq!(db.user("bob").unwrap().unwrap().password, "phc-bob-2");
}

#[test]
fn sessions_expire_and_go_with_their_user_or_password() {
    use super::users::UserError;
    let t = TempDb::new("sessions");
    let mut db = Db::create(t.path(), &UUID).unwrap();
    db.add_user("root", "admin", "p", 0).unwrap();
    db.add_user("bob", "viewer", "p", 0).unwrap();
    let h = |n: u8| [n; 32];
    db.add_session(&h(1), "bob", 100, 200, 16).unwrap();
    db.add_session(&h(2), "bob", 100, 200, 16).unwrap();
    db.add_session(&h(3), "root", 100, 200, 16).unwrap();
    assert!(matches!(
        db.add_session(&h(4), "nobody", 100, 200, 16),
        Err(UserError::NotFound(_))
    ));
    assert_eq!(
        db.session_user(&h(1), 150).unwrap(),
        Some(("bob".to_owned(), "viewer".to_owned()))
    );
    // Expired.
    assert_eq!(db.session_user(&h(1), 200).unwrap(), None);
    assert_eq!(db.session_user(&h(9), 150).unwrap(), None);
    // A role change shows at once.
    db.set_user_role("bob", "admin", 150).unwrap();
    assert_eq!(db.session_user(&h(2), 150).unwrap().unwrap().1, "admin");
    // A password change ends the user's sessions but the one kept.
    db.set_user_password("bob", "q", 150, Some(&h(2))).unwrap();
    assert_eq!(db.session_user(&h(1), 150).unwrap(), None);
    assert!(db.session_user(&h(2), 150).unwrap().is_some());
    db.set_user_password("bob", "r", 150, None).unwrap();
    assert_eq!(db.session_user(&h(2), 150).unwrap(), None);
    // Logout.
    assert!(db.delete_session(&h(3)).unwrap());
    assert!(!db.delete_session(&h(3)).unwrap());
    // Deleting the user ends their sessions.
    db.add_session(&h(5), "bob", 160, 260, 16).unwrap();
    db.delete_user("bob").unwrap();
    assert_eq!(db.count_sessions("bob").unwrap(), 0);
    // At most N per user: the oldest go; expired ones are purged.
    for n in 0..20u8 {
        db.add_session(&h(100 + n), "root", 300 + i64::from(n), 1000, 4)
            .unwrap();
    }
    assert_eq!(db.count_sessions("root").unwrap(), 4);
    assert!(db.session_user(&h(119), 400).unwrap().is_some());
    assert!(db.session_user(&h(115), 400).unwrap().is_none());
    db.add_session(&h(200), "root", 2000, 3000, 4).unwrap();
    assert_eq!(db.count_sessions("root").unwrap(), 1);
}

/// `vigil user` changes users while the server's connection and a
/// reader hold the database open (WAL).
#[test]
fn users_change_alongside_other_connections() {
    let t = TempDb::new("users-concurrent");
    let mut writer = Db::create(t.path(), &UUID).unwrap();
    let reader = Db::open_read_only(t.path()).unwrap();
    let mut cli = Db::open(t.path()).unwrap();
    cli.add_user("root", "admin", "p", 0).unwrap();
    writer.begin_open("test", 1).unwrap();
    assert_eq!(reader.users().unwrap().len(), 1);
    writer.add_session(&[7; 32], "root", 0, 10, 4).unwrap();
    cli.delete_user("root").err().unwrap();
    assert_eq!(reader.count_sessions("root").unwrap(), 1);
}
