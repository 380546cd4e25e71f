//! Start-up recovery (docs/storage.md, invariant 3): index the valid
//! records written after the last commit, then close open recordings.
//!
//! The same indexing rebuilds the whole index from the pools
//! (`vigil check --rebuild-index`): a record is self-describing, and the
//! first record of each recording carries its parameters.

use super::db::{CommitBatch, Db, RecordRow, RecordingRow, SampleEntry, WriterPosition};
use super::db::{RECORDING_GAP, RECORDING_OPEN};
use super::format::{self, FLAG_FIRST, FLAG_GAP, POOL_HEADER_BYTES};
use super::pool::{Pools, ScannedRecord};
use super::video_index::{self, VideoIndexEncoder};
use std::collections::HashMap;

/// What recovery did, for the log and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryStats {
    pub records_indexed: u64,
    pub recordings_touched: u64,
    pub bytes_indexed: u64,
    pub recordings_closed: u64,
    /// Why the scan stopped, when not at a clean end.
    pub stopped: Option<String>,
    pub skipped_records: u64,
}

/// Recordings built or extended from records, in memory until committed.
pub struct Indexer {
    open_id: i64,
    rows: HashMap<i64, (RecordingRow, VideoIndexEncoder, u32)>,
    records: Vec<RecordRow>,
    pub stats: RecoveryStats,
}

impl Indexer {
    pub fn new(open_id: i64) -> Indexer {
        Indexer {
            open_id,
            rows: HashMap::new(),
            records: Vec::new(),
            stats: RecoveryStats::default(),
        }
    }

    /// Adds one valid record at `pool`. Returns false (and skips it) when
    /// it does not continue its recording.
    pub fn add(&mut self, db: &mut Db, pool: u32, r: &ScannedRecord) -> Result<bool, String> {
        let h = &r.header;
        let id =
            i64::try_from(h.recording_id).map_err(|_| "recording id out of range".to_string())?;
        if !self.rows.contains_key(&id) {
            if h.flags & FLAG_FIRST != 0 {
                let (camera, kind, params) = h
                    .params
                    .as_deref()
                    .ok_or("first record without parameters")
                    .map_err(str::to_string)
                    .and_then(|p| format::decode_first_params(p).map_err(|e| e.to_string()))?;
                db.ensure_stream(h.stream_id, &camera, &kind)
                    .map_err(|e| e.to_string())?;
                let sample_entry_id = db
                    .sample_entry_id(&SampleEntry {
                        codec: params.codec.name().to_owned(),
                        width: params.width,
                        height: params.height,
                        rfc6381: params.rfc6381_codec.clone(),
                        decoder_config: params.decoder_config.clone(),
                    })
                    .map_err(|e| e.to_string())?;
                let row = RecordingRow {
                    id,
                    stream_id: h.stream_id,
                    open_id: self.open_id,
                    start_90k: h.start_wall_90k,
                    duration_90k: 0,
                    media_start_90k: h.media_start_90k,
                    frames: 0,
                    key_frames: 0,
                    bytes: 0,
                    sample_entry_id,
                    video_index: Vec::new(),
                    flags: if h.flags & FLAG_GAP != 0 {
                        RECORDING_GAP
                    } else {
                        0
                    },
                };
                self.rows.insert(id, (row, VideoIndexEncoder::new(), 0));
            } else if let Some(row) = db.recording(id).map_err(|e| e.to_string())? {
                let records = db.records(id).map_err(|e| e.to_string())?;
                let mut enc = VideoIndexEncoder::new();
                for f in video_index::decode(&row.video_index) {
                    let f = f.map_err(|e| format!("recording {id}: {e}"))?;
                    enc.push(f.duration_90k, f.bytes, f.key);
                }
                let next = u32::try_from(records.len()).unwrap_or(u32::MAX);
                self.rows.insert(id, (row, enc, next));
            } else {
                self.stats.skipped_records += 1;
                return Ok(false);
            }
        }
        let Some((row, enc, next_seq)) = self.rows.get_mut(&id) else {
            return Ok(false);
        };
        if h.sequence != *next_seq || h.stream_id != row.stream_id {
            self.stats.skipped_records += 1;
            return Ok(false);
        }
        for f in &h.frames {
            let d = i32::try_from(f.duration_90k).unwrap_or(i32::MAX);
            let s = i32::try_from(f.size).unwrap_or(i32::MAX);
            enc.push(d, s, f.key);
            row.duration_90k += i64::from(f.duration_90k);
            row.frames += 1;
            row.key_frames += u32::from(f.key);
            row.bytes += u64::from(f.size);
        }
        if h.flags & FLAG_GAP != 0 {
            row.flags |= RECORDING_GAP;
        }
        *next_seq += 1;
        self.records.push(RecordRow {
            recording_id: id,
            sequence: h.sequence,
            pool,
            offset: r.offset,
            header_len: r.header_len,
            payload_len: r.payload_len,
            frames: u32::try_from(h.frames.len()).unwrap_or(u32::MAX),
            generation: h.generation,
        });
        self.stats.records_indexed += 1;
        self.stats.bytes_indexed += u64::from(r.header_len) + u64::from(r.payload_len);
        Ok(true)
    }

    /// Commits everything indexed, with the writer position `writer`.
    pub fn commit(self, db: &mut Db, writer: WriterPosition) -> Result<RecoveryStats, String> {
        let mut stats = self.stats;
        stats.recordings_touched = self.rows.len() as u64;
        let recordings = self
            .rows
            .into_values()
            .map(|(mut row, enc, _)| {
                row.video_index = enc.as_bytes().to_vec();
                row.flags &= !RECORDING_OPEN;
                row
            })
            .collect();
        db.commit(&CommitBatch {
            recordings,
            records: self.records,
            writer,
        })
        .map_err(|e| e.to_string())?;
        Ok(stats)
    }
}

/// Brings the index up to date with the pools after a crash (or a clean
/// stop: then there is nothing to do) and returns where to write next.
pub fn recover(
    pools: &mut Pools,
    db: &mut Db,
    open_id: i64,
) -> Result<(WriterPosition, RecoveryStats), String> {
    let pos = match db.writer_position().map_err(|e| e.to_string())? {
        Some(p) if pools.generation(p.pool) == p.generation && p.pool < pools.count() => p,
        other => {
            // A fresh store, or the header and index disagree about the
            // pool being written (a crash between reclaim and enter):
            // start cleanly in a pool entered now.
            let pool = other.map_or(0, |p| p.pool % pools.count().max(1));
            let generation = (0..pools.count())
                .map(|p| pools.generation(p))
                .max()
                .unwrap_or(0)
                .max(other.map_or(0, |p| p.generation))
                + 1;
            db.reclaim_pool(pool, generation)
                .map_err(|e| e.to_string())?;
            pools.enter(pool, generation).map_err(|e| e.to_string())?;
            let p = WriterPosition {
                pool,
                offset: POOL_HEADER_BYTES,
                generation,
            };
            db.commit(&CommitBatch {
                recordings: Vec::new(),
                records: Vec::new(),
                writer: p,
            })
            .map_err(|e| e.to_string())?;
            p
        }
    };
    let mut indexer = Indexer::new(open_id);
    let mut scan = pools.scan(pos.pool, pos.offset);
    let mut scanned = Vec::new();
    for r in &mut scan {
        scanned.push(r);
    }
    let (end, why) = scan.end();
    for r in &scanned {
        if !indexer.add(db, pos.pool, r)? {
            log::warn!(
                "recovery: record at pool {} offset {} does not continue its recording; skipped",
                pos.pool,
                r.offset
            );
        }
    }
    let mut stats = indexer.commit(
        db,
        WriterPosition {
            pool: pos.pool,
            offset: end,
            generation: pos.generation,
        },
    )?;
    stats.stopped = why;
    stats.recordings_closed = db.close_open_recordings().map_err(|e| e.to_string())? as u64;
    Ok((
        WriterPosition {
            pool: pos.pool,
            offset: end,
            generation: pos.generation,
        },
        stats,
    ))
}
