//! Writing records into the current pool, moving to the next pool
//! (reclaim before overwrite, invariant 4), and making what was written
//! durable: fdatasync, then commit the index rows (invariant 1).

use super::{err, Writer, WriterError};
use crate::store::db::{CommitBatch, RecordRow, WriterPosition};
use crate::store::db::{RECORDING_GAP, RECORDING_OPEN};
use crate::store::format::{RecordHeader, FLAG_FIRST, FLAG_GAP, POOL_HEADER_BYTES};
use std::time::Instant;

impl Writer {
    /// Writes the first `n` ring frames of stream `i` as the record
    /// `self.pending` describes.
    pub(super) fn write_record(&mut self, i: usize, n: usize) -> Result<(), WriterError> {
        let payload_len: u64 = self.pending.entries.iter().map(|e| u64::from(e.size)).sum();
        let st = &mut self.streams[i];
        let (Some(rec), Some(first)) = (st.rec.as_mut(), st.stream.ring.peek(0)) else {
            return Ok(());
        };
        let is_first = rec.next_sequence == 0;
        let header = RecordHeader {
            flags: if is_first { FLAG_FIRST } else { 0 }
                | if rec.gap_pending { FLAG_GAP } else { 0 },
            generation: self.pos.generation,
            stream_id: st.stream.stream_id,
            recording_id: u64::try_from(rec.row.id).unwrap_or(0),
            sequence: rec.next_sequence,
            media_start_90k: first.meta.timestamp_90k,
            start_wall_90k: rec.row.start_90k,
            // Lent to the header and handed back below: no copy per record.
            frames: std::mem::take(&mut self.pending.entries),
            params: is_first.then(|| rec.params.clone()),
            payload_len: u32::try_from(payload_len).unwrap_or(u32::MAX),
        };
        let mut iov: Vec<&[u8]> = Vec::with_capacity(n + 1);
        iov.push(&[]);
        iov.extend(
            (0..n)
                .filter_map(|k| st.stream.ring.peek(k))
                .map(|f| f.data),
        );
        header.encode(&iov[1..], &mut self.header_buf);
        self.pending.entries = header.frames;
        iov[0] = &self.header_buf;
        let header_len = self.header_buf.len() as u64;
        let total = header_len + payload_len;
        if total > self.pools.size() - POOL_HEADER_BYTES {
            // Cannot fit even an empty pool: drop the frames, count them.
            drop(iov);
            let st = &mut self.streams[i];
            st.stream.ring.release(n);
            self.stats.frames_too_large += n as u64;
            for _ in 0..n {
                st.stream.status.count_dropped();
            }
            return Ok(());
        }
        if self.pos.offset + total > self.pools.size() {
            // The record goes into the next pool; the caller plans it again
            // (its header carries the new pool's generation).
            drop(iov);
            return self.advance_pool();
        }
        self.pools
            .write_at(self.pos.pool, self.pos.offset, &iov)
            .map_err(err("writing a pool file"))?;
        drop(iov);
        let st = &mut self.streams[i];
        let Some(rec) = st.rec.as_mut() else {
            return Ok(());
        };
        self.pending_records.push(RecordRow {
            recording_id: rec.row.id,
            sequence: rec.next_sequence,
            pool: self.pos.pool,
            offset: self.pos.offset,
            header_len: u32::try_from(header_len).unwrap_or(u32::MAX),
            payload_len: u32::try_from(payload_len).unwrap_or(u32::MAX),
            frames: n as u32,
            generation: self.pos.generation,
        });
        rec.next_sequence += 1;
        rec.gap_pending = false;
        rec.carry = self.pending.carry;
        if self.pending.gap {
            rec.row.flags |= RECORDING_GAP;
        }
        st.last_duration = self.pending.last_duration;
        for e in &self.pending.entries {
            rec.index.push(e.duration_90k as i32, e.size as i32, e.key);
            rec.row.duration_90k += i64::from(e.duration_90k);
            rec.row.frames += 1;
            rec.row.key_frames += u32::from(e.key);
            rec.row.bytes += u64::from(e.size);
        }
        st.stream.ring.release(n);
        if !self.unsynced.contains(&self.pos.pool) {
            self.unsynced.push(self.pos.pool);
        }
        self.pos.offset += total;
        self.stats.records += 1;
        self.stats.bytes_written += total;
        self.stats.video_bytes += payload_len;
        if let Some(at) = self.pending.split.take() {
            // A long stall: the hole shows between this recording and the next.
            self.close_recording(i, false);
            self.streams[i].next_start = Some(at);
        }
        Ok(())
    }

    /// Moves to the next pool of the ring: make what is written durable
    /// and committed, reclaim the next pool, enter it, commit the position.
    pub(super) fn advance_pool(&mut self) -> Result<(), WriterError> {
        self.sync_and_commit()?;
        let next = (self.pos.pool + 1) % self.pools.count();
        let generation = self.pos.generation + 1;
        let reclaimed = self
            .db
            .reclaim_pool(next, generation)
            .map_err(err("reclaiming a pool"))?;
        self.stats.reclaimed_recordings += reclaimed.recordings;
        if reclaimed.recordings > 0 {
            log::info!(
                "writer: reclaimed pool {next}: {} recordings, {} bytes",
                reclaimed.recordings,
                reclaimed.bytes
            );
        }
        self.pools
            .enter(next, generation)
            .map_err(err("entering a pool"))?;
        self.pos = WriterPosition {
            pool: next,
            offset: POOL_HEADER_BYTES,
            generation,
        };
        // Committed before any record goes there, so recovery always
        // scans the pool that holds the newest records.
        self.commit()
    }

    /// fdatasync every pool written since the last sync, then commit.
    pub fn sync_and_commit(&mut self) -> Result<(), WriterError> {
        for p in std::mem::take(&mut self.unsynced) {
            self.pools.sync(p).map_err(err("syncing a pool file"))?;
        }
        self.last_sync = Instant::now();
        self.commit()
    }

    pub(super) fn commit(&mut self) -> Result<(), WriterError> {
        let mut recordings = std::mem::take(&mut self.closed);
        for st in &self.streams {
            if let Some(rec) = &st.rec {
                if rec.row.frames > 0 {
                    let mut row = rec.row.clone();
                    row.video_index = rec.index.as_bytes().to_vec();
                    recordings.push(row);
                }
            }
        }
        let batch = CommitBatch {
            recordings,
            records: std::mem::take(&mut self.pending_records),
            writer: self.pos,
        };
        if let Err(e) = self.db.commit(&batch) {
            // Keep what was not committed for the next attempt.
            self.pending_records = batch.records;
            self.closed = batch
                .recordings
                .into_iter()
                .filter(|r| r.flags & RECORDING_OPEN == 0)
                .collect();
            return Err(WriterError(format!("committing the index: {e}")));
        }
        self.stats.commits += 1;
        Ok(())
    }
}
