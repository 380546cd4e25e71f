//! The writer's commit: everything made durable since the last one, in one
//! transaction (invariant 1: rows only for bytes already synced).

use rusqlite::{params, Transaction, TransactionBehavior};

use super::convert::store_u64;
use super::recordings::{record_from_row, RecordRow, RecordingRow, RECORD_COLUMNS};
use super::{Db, DbError, WriterPosition, MAX_POOLS};

/// What the writer commits every sync interval, in one transaction.
#[derive(Clone, Debug, PartialEq)]
pub struct CommitBatch {
    /// The full current state of every recording that changed.
    pub recordings: Vec<RecordingRow>,
    /// Records written since the last commit.
    pub records: Vec<RecordRow>,
    pub writer: WriterPosition,
}

pub(super) const UPSERT_RECORDING: &str =
    "insert into recording (id, stream_id, open_id, start_90k, \
     duration_90k, media_start_90k, frames, key_frames, bytes, sample_entry_id, video_index, \
     flags) values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) \
     on conflict (id) do update set stream_id = excluded.stream_id, \
     open_id = excluded.open_id, start_90k = excluded.start_90k, \
     duration_90k = excluded.duration_90k, media_start_90k = excluded.media_start_90k, \
     frames = excluded.frames, key_frames = excluded.key_frames, bytes = excluded.bytes, \
     sample_entry_id = excluded.sample_entry_id, video_index = excluded.video_index, \
     flags = excluded.flags";

pub(super) const INSERT_RECORD: &str = r#"insert into record (recording_id, sequence, pool, "offset",
     header_len, payload_len, frames, generation) values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
     on conflict (recording_id, sequence) do nothing"#;

pub(super) const SET_WRITER: &str = r#"insert into writer (id, pool, "offset", generation)
     values (1, ?1, ?2, ?3) on conflict (id) do update set pool = excluded.pool,
     "offset" = excluded."offset", generation = excluded.generation"#;

impl Db {
    /// Commits what the writer has made durable since its last commit: the
    /// current state of each changed recording, the new records, and the
    /// new writer position, in one transaction. Replaying a batch is
    /// harmless: recordings are overwritten with the same values, and a
    /// record identical to the one indexed at its (recording, sequence) is
    /// skipped; a different one there is a `Conflict`.
    pub fn commit(&mut self, batch: &CommitBatch) -> Result<(), DbError> {
        // Validate everything before touching the database.
        let writer = (
            i64::from(batch.writer.pool),
            store_u64(batch.writer.offset, "writer.offset")?,
            store_u64(batch.writer.generation, "writer.generation")?,
        );
        for r in &batch.recordings {
            check_recording(r)?;
        }
        for r in &batch.records {
            check_record(r)?;
        }
        // Statements are prepared once per transaction and reused for every
        // row (rusqlite's statement cache is not compiled in: it would pull
        // in a hash map crate for four statements every two seconds).
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut up = tx.prepare(UPSERT_RECORDING)?;
            for r in &batch.recordings {
                up.execute(params![
                    r.id,
                    i64::from(r.stream_id),
                    r.open_id,
                    r.start_90k,
                    r.duration_90k,
                    r.media_start_90k,
                    i64::from(r.frames),
                    i64::from(r.key_frames),
                    store_u64(r.bytes, "recording.bytes")?,
                    r.sample_entry_id,
                    r.video_index,
                    i64::from(r.flags),
                ])?;
            }
            if !batch.records.is_empty() {
                let mut ins = tx.prepare(INSERT_RECORD)?;
                for r in &batch.records {
                    let inserted = ins.execute(params![
                        r.recording_id,
                        i64::from(r.sequence),
                        i64::from(r.pool),
                        store_u64(r.offset, "record.offset")?,
                        i64::from(r.header_len),
                        i64::from(r.payload_len),
                        i64::from(r.frames),
                        store_u64(r.generation, "record.generation")?,
                    ])?;
                    if inserted == 0 {
                        let existing = record_at(&tx, r.recording_id, r.sequence)?;
                        if existing.as_ref() != Some(r) {
                            return Err(DbError::Conflict(format!(
                                "record {} of recording {} is already indexed as {:?}, \
                                 not {:?}",
                                r.sequence, r.recording_id, existing, r
                            )));
                        }
                    }
                }
            }
            tx.execute(SET_WRITER, params![writer.0, writer.1, writer.2])?;
        }
        tx.commit()?;
        Ok(())
    }
}

pub(super) fn record_at(
    tx: &Transaction<'_>,
    recording_id: i64,
    sequence: u32,
) -> Result<Option<RecordRow>, DbError> {
    let sql =
        format!("select {RECORD_COLUMNS} from record where recording_id = ?1 and sequence = ?2");
    let mut stmt = tx.prepare(&sql)?;
    let mut rows = stmt.query(params![recording_id, i64::from(sequence)])?;
    match rows.next()? {
        Some(row) => Ok(Some(record_from_row(row)?)),
        None => Ok(None),
    }
}

pub(super) fn check_recording(r: &RecordingRow) -> Result<(), DbError> {
    store_u64(r.bytes, "recording.bytes")?;
    if r.duration_90k < 0 || r.start_90k.checked_add(r.duration_90k).is_none() {
        return Err(DbError::Invalid(format!(
            "recording {}: start {} and duration {} do not make a time span",
            r.id, r.start_90k, r.duration_90k
        )));
    }
    if r.id <= 0 {
        return Err(DbError::Invalid(format!("recording id {}", r.id)));
    }
    Ok(())
}

pub(super) fn check_record(r: &RecordRow) -> Result<(), DbError> {
    if r.pool >= MAX_POOLS {
        return Err(DbError::Invalid(format!(
            "record in pool {} >= {MAX_POOLS}",
            r.pool
        )));
    }
    store_u64(r.offset, "record.offset")?;
    store_u64(r.generation, "record.generation")?;
    Ok(())
}
