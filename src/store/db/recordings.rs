//! The `recording` and `record` tables: rows, how they are read back
//! (range-checked), and the queries over them.

use rusqlite::{params, OptionalExtension, Row};

use super::convert::{get_u32, get_u64};
use super::error::corrupt;
use super::{Db, DbError, MAX_POOLS, RECORDING_OPEN};

#[derive(Clone, Debug, PartialEq)]
pub struct RecordingRow {
    pub id: i64,
    pub stream_id: u32,
    pub open_id: i64,
    pub start_90k: i64,
    pub duration_90k: i64,
    pub media_start_90k: i64,
    pub frames: u32,
    pub key_frames: u32,
    pub bytes: u64,
    pub sample_entry_id: i64,
    pub video_index: Vec<u8>,
    pub flags: u32,
}

impl RecordingRow {
    /// The end of the recording, wall clock, 90 kHz (saturating: a value
    /// read back from a corrupt row must not panic).
    pub fn end_90k(&self) -> i64 {
        self.start_90k.saturating_add(self.duration_90k)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordRow {
    pub recording_id: i64,
    pub sequence: u32,
    pub pool: u32,
    pub offset: u64,
    pub header_len: u32,
    pub payload_len: u32,
    pub frames: u32,
    pub generation: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub recordings: u64,
    pub bytes: u64,
    pub oldest_start_90k: Option<i64>,
    pub newest_end_90k: Option<i64>,
}

pub(super) const RECORDING_COLUMNS: &str = "id, stream_id, open_id, start_90k, duration_90k, \
     media_start_90k, frames, key_frames, bytes, sample_entry_id, video_index, flags";

pub(super) fn recording_from_row(row: &Row<'_>) -> Result<RecordingRow, DbError> {
    Ok(RecordingRow {
        id: row.get(0)?,
        stream_id: get_u32(row, 1, "recording.stream_id")?,
        open_id: row.get(2)?,
        start_90k: row.get(3)?,
        duration_90k: row.get(4)?,
        media_start_90k: row.get(5)?,
        frames: get_u32(row, 6, "recording.frames")?,
        key_frames: get_u32(row, 7, "recording.key_frames")?,
        bytes: get_u64(row, 8, "recording.bytes")?,
        sample_entry_id: row.get(9)?,
        video_index: row.get(10)?,
        flags: get_u32(row, 11, "recording.flags")?,
    })
}

pub(super) const RECORD_COLUMNS: &str =
    r#"recording_id, sequence, pool, "offset", header_len, payload_len, frames, generation"#;

pub(super) fn record_from_row(row: &Row<'_>) -> Result<RecordRow, DbError> {
    let pool = get_u32(row, 2, "record.pool")?;
    if pool >= MAX_POOLS {
        return Err(corrupt("record.pool", pool));
    }
    Ok(RecordRow {
        recording_id: row.get(0)?,
        sequence: get_u32(row, 1, "record.sequence")?,
        pool,
        offset: get_u64(row, 3, "record.offset")?,
        header_len: get_u32(row, 4, "record.header_len")?,
        payload_len: get_u32(row, 5, "record.payload_len")?,
        frames: get_u32(row, 6, "record.frames")?,
        generation: get_u64(row, 7, "record.generation")?,
    })
}

pub(super) fn summary_from_row(row: &Row<'_>) -> Result<Summary, DbError> {
    Ok(Summary {
        recordings: get_u64(row, 0, "count of recordings")?,
        bytes: get_u64(row, 1, "sum of recording bytes")?,
        oldest_start_90k: row.get(2)?,
        newest_end_90k: row.get(3)?,
    })
}

impl Db {
    /// The id for the next new recording: above every id ever used (the
    /// `autoincrement` sequence remembers deleted ones), at least 1.
    pub fn next_recording_id(&self) -> Result<i64, DbError> {
        let max: Option<i64> = self
            .conn
            .query_row("select max(id) from recording", [], |r| r.get(0))?;
        let seq: Option<i64> = self
            .conn
            .query_row(
                "select seq from sqlite_sequence where name = 'recording'",
                [],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        let top = max.unwrap_or(0).max(seq.unwrap_or(0)).max(0);
        top.checked_add(1)
            .ok_or_else(|| corrupt("highest recording id", top))
    }

    /// Clears the open flag of every recording (end of recovery or of a
    /// clean shutdown); returns how many were open.
    pub fn close_open_recordings(&mut self) -> Result<usize, DbError> {
        let n = self.conn.execute(
            "update recording set flags = flags & ~?1 where flags & ?1 != 0",
            [i64::from(RECORDING_OPEN)],
        )?;
        Ok(n)
    }
    /// The recordings of `stream_id` overlapping [`start_90k`, `end_90k`),
    /// by start time. A recording of zero duration counts as the instant it
    /// starts. Relies on invariant 6 (a stream's recordings do not overlap):
    /// of those starting at or before `start_90k`, only the latest is looked
    /// at, which keeps the query an index range scan however long the
    /// history.
    pub fn recordings(
        &self,
        stream_id: u32,
        start_90k: i64,
        end_90k: i64,
    ) -> Result<Vec<RecordingRow>, DbError> {
        if end_90k <= start_90k {
            return Ok(Vec::new());
        }
        let sql = format!(
            "select {RECORDING_COLUMNS} from recording \
             where stream_id = ?1 and start_90k < ?3 \
             and start_90k >= (select coalesce(max(start_90k), ?2) from recording \
                               where stream_id = ?1 and start_90k <= ?2) \
             and (start_90k >= ?2 or start_90k + duration_90k > ?2) \
             order by start_90k, id"
        );
        self.query_recordings(&sql, params![i64::from(stream_id), start_90k, end_90k])
    }

    /// One recording by id.
    pub fn recording(&self, id: i64) -> Result<Option<RecordingRow>, DbError> {
        let sql = format!("select {RECORDING_COLUMNS} from recording where id = ?1");
        Ok(self.query_recordings(&sql, [id])?.pop())
    }

    /// Every recording, by stream then start (for `check`).
    pub fn all_recordings(&self) -> Result<Vec<RecordingRow>, DbError> {
        let sql =
            format!("select {RECORDING_COLUMNS} from recording order by stream_id, start_90k, id");
        self.query_recordings(&sql, [])
    }

    fn query_recordings(
        &self,
        sql: &str,
        p: impl rusqlite::Params,
    ) -> Result<Vec<RecordingRow>, DbError> {
        let mut stmt = self.conn.prepare(sql)?;
        let mut rows = stmt.query(p)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(recording_from_row(row)?);
        }
        Ok(out)
    }

    /// The records of a recording, by sequence.
    pub fn records(&self, recording_id: i64) -> Result<Vec<RecordRow>, DbError> {
        let sql = format!(
            "select {RECORD_COLUMNS} from record where recording_id = ?1 order by sequence"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = stmt.query([recording_id])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(record_from_row(row)?);
        }
        Ok(out)
    }

    /// Totals over every recording.
    pub fn summary(&self) -> Result<Summary, DbError> {
        let mut stmt = self.conn.prepare(
            "select count(*), coalesce(sum(bytes), 0), min(start_90k), \
             max(start_90k + duration_90k) from recording",
        )?;
        let mut rows = stmt.query([])?;
        match rows.next()? {
            Some(row) => summary_from_row(row),
            None => Ok(Summary::default()),
        }
    }

    /// Totals over one stream's recordings.
    pub fn stream_summary(&self, stream_id: u32) -> Result<Summary, DbError> {
        let mut stmt = self.conn.prepare(
            "select count(*), coalesce(sum(bytes), 0), min(start_90k), \
             max(start_90k + duration_90k) from recording where stream_id = ?1",
        )?;
        let mut rows = stmt.query([i64::from(stream_id)])?;
        match rows.next()? {
            Some(row) => summary_from_row(row),
            None => Ok(Summary::default()),
        }
    }

    /// Deletes one recording and its records (`check --repair`).
    pub fn delete_recording(&mut self, id: i64) -> Result<(), DbError> {
        let n = self
            .conn
            .execute("delete from recording where id = ?1", [id])?;
        if n == 0 {
            return Err(DbError::NotFound(format!("recording {id}")));
        }
        Ok(())
    }
}
