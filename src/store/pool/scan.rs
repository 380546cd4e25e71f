//! Scanning a pool for the valid records it holds, from a given offset
//! (recovery, index rebuild): each header read whole, each payload streamed
//! through a bounded buffer for its CRC.

use super::{Pools, Shared};
use crate::store::format::{FormatError, RecordCrc, RecordHeader, MAX_HEADER_BYTES};
use crate::store::format::{POOL_HEADER_BYTES, RECORD_FIXED_BYTES};
use std::os::unix::fs::FileExt;

impl Pools {
    /// Iterates the valid records of `pool` from `from` (recovery): see
    /// [`Scan`].
    pub fn scan(&self, pool: u32, from: u64) -> Scan<'_> {
        Scan {
            shared: &self.shared,
            pool,
            generation: self.generation(pool),
            pos: from,
            buf: Vec::new(),
            buf_off: 0,
            buf_len: 0,
            why: None,
        }
    }
}

/// A record found by [`Pools::scan`]: valid CRC and of the pool's current
/// generation. Its bytes are `[offset, offset + header_len + payload_len)`.
#[derive(Clone, Debug)]
pub struct ScannedRecord {
    pub offset: u64,
    pub header: RecordHeader,
    pub header_len: u32,
    pub payload_len: u32,
}

/// Scan buffer: holds any record header whole (the largest is under
/// 600 KiB); payloads stream through it for the CRC.
pub(super) const SCAN_BUF: usize = 1 << 20;
const _: () = assert!(MAX_HEADER_BYTES as usize <= SCAN_BUF);
/// The scan buffer's size unless a longer header needs more (it then
/// grows, up to `SCAN_BUF`): every start-up scans, and a whole megabyte
/// read ahead there was the idle process's peak memory.
pub(super) const SCAN_CHUNK: usize = 64 * 1024;

/// Iterator over the valid records of a pool from a given offset; stops at
/// the first offset that does not hold one. Then [`end`](Scan::end) says
/// where and why.
pub struct Scan<'a> {
    shared: &'a Shared,
    pool: u32,
    generation: u64,
    /// The next offset to look at.
    pos: u64,
    /// Allocated on first use, `SCAN_CHUNK` long or as long as the longest
    /// header seen (at most `SCAN_BUF`); holds the file bytes
    /// `[buf_off, buf_off + buf_len)`.
    pub(super) buf: Vec<u8>,
    buf_off: u64,
    buf_len: usize,
    why: Option<String>,
}

impl Scan<'_> {
    /// The offset just past the last valid record (the end of the written
    /// data) and, once iteration has ended, why it stopped there.
    pub fn end(&self) -> (u64, Option<String>) {
        (self.pos, self.why.clone())
    }

    /// Makes the buffer hold at least `[pos, pos + n)` (n ≤ SCAN_BUF, within
    /// the pool), reading as much beyond as fits.
    fn fill(&mut self, pos: u64, n: usize) -> Result<(), String> {
        let have_end = self.buf_off + self.buf_len as u64;
        if pos >= self.buf_off && pos + n as u64 <= have_end {
            return Ok(());
        }
        let need = n.clamp(SCAN_CHUNK, SCAN_BUF);
        if self.buf.len() < need {
            self.buf.resize(need, 0);
        }
        if pos >= self.buf_off && pos < have_end {
            let start = (pos - self.buf_off) as usize;
            self.buf.copy_within(start..self.buf_len, 0);
            self.buf_len -= start;
        } else {
            self.buf_len = 0;
        }
        self.buf_off = pos;
        let read_from = pos + self.buf_len as u64;
        let read_end = (pos + self.buf.len() as u64).min(self.shared.size);
        let want = read_end.saturating_sub(read_from) as usize;
        let file = self.shared.file(self.pool).map_err(|e| e.to_string())?;
        let dst = self
            .buf
            .get_mut(self.buf_len..self.buf_len + want)
            .ok_or("scan buffer overrun")?;
        if let Err(e) = file.read_exact_at(dst, read_from) {
            self.buf_len = 0;
            return Err(format!("I/O error reading offset {read_from}: {e}"));
        }
        self.buf_len += want;
        if self.buf_len < n {
            return Err(format!("end of pool at offset {}", self.shared.size));
        }
        Ok(())
    }

    /// The buffered bytes from `pos` on (empty if not buffered).
    fn window(&self, pos: u64) -> &[u8] {
        if pos < self.buf_off {
            return &[];
        }
        let start = (pos - self.buf_off) as usize;
        self.buf.get(start..self.buf_len).unwrap_or(&[])
    }

    fn step(&mut self) -> Result<ScannedRecord, String> {
        let pos = self.pos;
        let size = self.shared.size;
        if self.pool as usize >= self.shared.files.len() {
            return Err(format!("no pool {}", self.pool));
        }
        if pos < POOL_HEADER_BYTES {
            return Err(format!("offset {pos} is inside the pool header"));
        }
        if pos >= size {
            return Err("end of pool".to_owned());
        }
        let room = size - pos;
        if room < u64::from(RECORD_FIXED_BYTES) {
            return Err(format!("end of pool ({room} bytes left at offset {pos})"));
        }
        let past_end = || format!("record at offset {pos} runs past the end of the pool");
        self.fill(pos, RECORD_FIXED_BYTES as usize)?;
        let (header, h) = match RecordHeader::decode(self.window(pos)) {
            Err(FormatError::Truncated { need }) => {
                if u64::from(need) > room {
                    return Err(past_end());
                }
                self.fill(pos, need as usize)?;
                RecordHeader::decode(self.window(pos))
            }
            r => r,
        }
        .map_err(|e| format!("{e} at offset {pos}"))?;
        if header.generation != self.generation {
            return Err(format!(
                "stale record at offset {pos} (generation {}, the pool's is {})",
                header.generation, self.generation
            ));
        }
        let p = header.payload_len;
        let end = pos + u64::from(h) + u64::from(p);
        if end > size {
            return Err(past_end());
        }
        let mut crc = RecordCrc::new(self.window(pos).get(..h as usize).unwrap_or(&[]));
        let mut cur = pos + u64::from(h);
        while cur < end {
            let w = self.window(cur);
            if w.is_empty() {
                self.fill(cur, 1)?;
                continue;
            }
            let n = w.len().min((end - cur) as usize);
            crc.update(&w[..n]);
            cur += n as u64;
        }
        if !crc.matches() {
            return Err(format!("CRC mismatch at offset {pos}"));
        }
        self.pos = end;
        Ok(ScannedRecord {
            offset: pos,
            header,
            header_len: h,
            payload_len: p,
        })
    }
}

impl Iterator for Scan<'_> {
    type Item = ScannedRecord;

    fn next(&mut self) -> Option<ScannedRecord> {
        if self.why.is_some() {
            return None;
        }
        match self.step() {
            Ok(r) => Some(r),
            Err(why) => {
                self.why = Some(why);
                // The scan buffer is a megabyte; recovery is over with it.
                self.buf = Vec::new();
                None
            }
        }
    }
}
