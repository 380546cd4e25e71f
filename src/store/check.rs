//! `vigil check`: the fsck of the storage. It verifies the index against
//! the pool files at three levels (presence, size, crc) and the ordering
//! invariants (no overlapping recordings); `--repair` truncates a
//! recording to its records that verify (deleting it only when none do),
//! and `--rebuild-index` rebuilds every recording from the pools' own
//! record headers (docs/storage.md).

use super::db::{Db, RecordRow, RecordingRow, WriterPosition};
use super::format::{self, RecordHeader};
use super::pool::Pools;
use super::recover::Indexer;
use super::video_index;
use crate::config::Storage as StorageConfig;

/// How deep `check` looks at each record: each level does what the one
/// before does, and more.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CheckLevel {
    /// Each record lies inside an existing pool that was not overwritten
    /// since (its generation); nothing is read.
    Presence,
    /// Also each record's header, read back, agrees with the index.
    Size,
    /// Also the whole record is read and its CRC verified.
    Crc,
}

#[derive(Debug, Default)]
pub struct Report {
    pub level: &'static str,
    pub recordings: u64,
    pub records: u64,
    pub problems: Vec<String>,
    pub repaired: Vec<String>,
    /// Problems that --repair fixed (so they no longer count).
    fixed: usize,
}

impl Report {
    pub fn remaining_problems(&self) -> usize {
        self.problems.len() - self.fixed
    }
}

pub fn run(
    cfg: &StorageConfig,
    level: CheckLevel,
    repair: bool,
    rebuild: bool,
) -> Result<Report, String> {
    let lock = super::open::lock(&cfg.path)?;
    let uuid = format::read_meta(&cfg.path).map_err(|e| e.to_string())?;
    let pool_bytes = u64::from(cfg.pool_size_mb) * 1024 * 1024;
    let mut pools =
        Pools::open(&cfg.path, &uuid, cfg.pools, pool_bytes).map_err(|e| e.to_string())?;
    if rebuild {
        let r = rebuild_index(cfg, &uuid, &mut pools);
        drop(lock);
        return r;
    }
    let mut db = Db::open(&cfg.db).map_err(|e| format!("{}: {e}", cfg.db.display()))?;
    if db.uuid() != uuid {
        return Err(format!(
            "the database {} does not belong to the storage in {}",
            cfg.db.display(),
            cfg.path.display()
        ));
    }
    let mut report = Report {
        level: match level {
            CheckLevel::Presence => "presence",
            CheckLevel::Size => "size",
            CheckLevel::Crc => "crc",
        },
        ..Report::default()
    };
    let recordings = db.all_recordings().map_err(|e| e.to_string())?;
    report.recordings = recordings.len() as u64;
    let mut buf = Vec::new();
    let mut truncations: Vec<(RecordingRow, Vec<RecordRow>)> = Vec::new();
    for rec in &recordings {
        let records = db.records(rec.id).map_err(|e| e.to_string())?;
        report.records += records.len() as u64;
        let mut good = 0usize;
        let mut bad: Option<String> = None;
        for (i, r) in records.iter().enumerate() {
            match check_record(&pools, rec, r, i, level, &mut buf) {
                Ok(()) => good += 1,
                Err(why) => {
                    bad = Some(format!("recording {} record {}: {why}", rec.id, r.sequence));
                    break;
                }
            }
        }
        if bad.is_none() {
            if let Err(why) = check_totals(rec, &records) {
                bad = Some(format!("recording {}: {why}", rec.id));
                good = 0;
            }
        }
        if let Some(why) = bad {
            report.problems.push(why);
            truncations.push((rec.clone(), records[..good].to_vec()));
        }
    }
    // No overlap between a stream's consecutive recordings.
    let mut by_stream = recordings.clone();
    by_stream.sort_by_key(|r| (r.stream_id, r.start_90k));
    for w in by_stream.windows(2) {
        if w[0].stream_id == w[1].stream_id && w[1].start_90k < w[0].start_90k + w[0].duration_90k {
            report.problems.push(format!(
                "recordings {} and {} of stream {} overlap by {} ms",
                w[0].id,
                w[1].id,
                w[0].stream_id,
                (w[0].start_90k + w[0].duration_90k - w[1].start_90k) / 90
            ));
        }
    }
    if repair {
        let writer = db.writer_position().map_err(|e| e.to_string())?;
        for (rec, keep) in truncations {
            let what = truncate(&mut db, &pools, &rec, &keep, writer)?;
            report.repaired.push(what);
            report.fixed += 1;
        }
    }
    drop(lock);
    Ok(report)
}

fn check_record(
    pools: &Pools,
    rec: &RecordingRow,
    r: &RecordRow,
    index: usize,
    level: CheckLevel,
    buf: &mut Vec<u8>,
) -> Result<(), String> {
    if r.sequence as usize != index {
        return Err(format!(
            "sequence {} where {index} was expected",
            r.sequence
        ));
    }
    if r.pool >= pools.count() {
        return Err(format!("pool {} does not exist", r.pool));
    }
    let end = r.offset + u64::from(r.header_len) + u64::from(r.payload_len);
    if r.offset < format::POOL_HEADER_BYTES || end > pools.size() {
        return Err(format!(
            "lies outside pool {} ({}..{end})",
            r.pool, r.offset
        ));
    }
    if pools.generation(r.pool) != r.generation {
        return Err(format!(
            "pool {} was overwritten (generation {} now, {} indexed)",
            r.pool,
            pools.generation(r.pool),
            r.generation
        ));
    }
    if level == CheckLevel::Presence {
        return Ok(());
    }
    let len = if level == CheckLevel::Crc {
        r.header_len + r.payload_len
    } else {
        r.header_len
    };
    buf.resize(len as usize, 0);
    pools
        .read_at(r.pool, r.offset, buf)
        .map_err(|e| format!("cannot read: {e}"))?;
    let (h, hl) = RecordHeader::decode(buf).map_err(|e| format!("header: {e}"))?;
    if hl != r.header_len || h.payload_len != r.payload_len || h.frames.len() as u32 != r.frames {
        return Err("header disagrees with the index about its size".into());
    }
    if h.recording_id != u64::try_from(rec.id).unwrap_or(0)
        || h.stream_id != rec.stream_id
        || h.sequence != r.sequence
        || h.generation != r.generation
    {
        return Err("header belongs to another recording".into());
    }
    if level == CheckLevel::Crc {
        let (head, payload) = buf.split_at(r.header_len as usize);
        if !RecordHeader::crc_matches(head, payload) {
            return Err("CRC mismatch: the bytes on disk are damaged".into());
        }
    }
    Ok(())
}

/// The recording's totals agree with its records and its video index.
fn check_totals(rec: &RecordingRow, records: &[RecordRow]) -> Result<(), String> {
    let frames: u64 = records.iter().map(|r| u64::from(r.frames)).sum();
    let bytes: u64 = records.iter().map(|r| u64::from(r.payload_len)).sum();
    if frames != u64::from(rec.frames) || bytes != rec.bytes {
        return Err(format!(
            "records hold {frames} frames / {bytes} bytes, the recording says {} / {}",
            rec.frames, rec.bytes
        ));
    }
    let (mut n, mut b, mut d) = (0u64, 0u64, 0i64);
    for f in video_index::decode(&rec.video_index) {
        let f = f.map_err(|e| format!("video index: {e}"))?;
        n += 1;
        b += u64::try_from(f.bytes).unwrap_or(0);
        d += i64::from(f.duration_90k);
    }
    if n != frames || b != bytes || d != rec.duration_90k {
        return Err("video index disagrees with the recording".into());
    }
    Ok(())
}

/// Replaces a recording by the prefix of its records that verify.
fn truncate(
    db: &mut Db,
    pools: &Pools,
    rec: &RecordingRow,
    keep: &[RecordRow],
    writer: Option<WriterPosition>,
) -> Result<String, String> {
    db.delete_recording(rec.id).map_err(|e| e.to_string())?;
    if keep.is_empty() {
        return Ok(format!(
            "recording {}: deleted from the index (no record verifies)",
            rec.id
        ));
    }
    let mut indexer = Indexer::new(rec.open_id);
    let mut buf = Vec::new();
    for r in keep {
        buf.resize(r.header_len as usize, 0);
        pools
            .read_at(r.pool, r.offset, &mut buf)
            .map_err(|e| e.to_string())?;
        let (header, header_len) = RecordHeader::decode(&buf).map_err(|e| e.to_string())?;
        let scanned = super::pool::ScannedRecord {
            offset: r.offset,
            header,
            header_len,
            payload_len: r.payload_len,
        };
        indexer.add(db, r.pool, &scanned)?;
    }
    let writer = match writer {
        Some(w) => w,
        None => return Err("the index has no writer position".into()),
    };
    indexer.commit(db, writer)?;
    Ok(format!(
        "recording {}: truncated to its first {} records",
        rec.id,
        keep.len()
    ))
}

/// Rebuilds the recordings of the index from the pools, oldest pool
/// (lowest generation) first.
fn rebuild_index(
    cfg: &StorageConfig,
    uuid: &[u8; 16],
    pools: &mut Pools,
) -> Result<Report, String> {
    let mut db = if cfg.db.exists() {
        let db = Db::open(&cfg.db).map_err(|e| format!("{}: {e}", cfg.db.display()))?;
        if db.uuid() != *uuid {
            return Err(format!(
                "{} belongs to another install; move it away and run --rebuild-index again",
                cfg.db.display()
            ));
        }
        db
    } else {
        Db::create(&cfg.db, uuid).map_err(|e| format!("{}: {e}", cfg.db.display()))?
    };
    for r in db.all_recordings().map_err(|e| e.to_string())? {
        db.delete_recording(r.id).map_err(|e| e.to_string())?;
    }
    let open_id = db
        .begin_open(env!("CARGO_PKG_VERSION"), crate::time::now_90k())
        .map_err(|e| e.to_string())?;
    let mut order: Vec<u32> = (0..pools.count())
        .filter(|&p| pools.generation(p) > 0)
        .collect();
    order.sort_by_key(|&p| pools.generation(p));
    let mut report = Report {
        level: "rebuild",
        ..Report::default()
    };
    let mut indexer = Indexer::new(open_id);
    let mut writer = None;
    for p in order {
        let mut scan = pools.scan(p, format::POOL_HEADER_BYTES);
        let found: Vec<_> = (&mut scan).collect();
        let (end, _) = scan.end();
        for r in &found {
            if indexer.add(&mut db, p, r)? {
                report.records += 1;
            }
        }
        writer = Some(WriterPosition {
            pool: p,
            offset: end,
            generation: pools.generation(p),
        });
    }
    let writer = writer.unwrap_or(WriterPosition {
        pool: 0,
        offset: format::POOL_HEADER_BYTES,
        generation: pools.generation(0),
    });
    // The pools' generations, as the headers say.
    for p in 0..pools.count() {
        let g = pools.generation(p);
        if g > 0 {
            db.set_pool_generation(p, g).map_err(|e| e.to_string())?;
        }
    }
    let stats = indexer.commit(&mut db, writer)?;
    report.recordings = stats.recordings_touched;
    report.repaired.push(format!(
        "index rebuilt: {} recordings from {} records",
        stats.recordings_touched, stats.records_indexed
    ));
    Ok(report)
}
