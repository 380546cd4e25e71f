//! One ring of the arena: what its two ends share, the record format, and
//! making rings out of the arena's buffer. The `unsafe` of the ring
//! protocol is here: the functions that copy bytes into and borrow bytes
//! out of a ring (the allocation itself is in `buffer`).

use super::buffer::Buffer;
use super::{ArenaError, FrameMeta, RingReader, RingStats, RingWriter};
use std::ptr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Length of a record's fixed header; see the module documentation.
pub(super) const HEADER_LEN: usize = 32;
/// `kind` of a frame record ("FRM1" read as little-endian).
pub(super) const KIND_FRAME: u32 = u32::from_le_bytes(*b"FRM1");
/// `kind` of a wrap marker ("WRAP"): the rest of the ring up to its end is
/// padding, and the next record is at offset 0.
pub(super) const KIND_WRAP: u32 = u32::from_le_bytes(*b"WRAP");
/// The marker is a whole 8-byte slot, so it fits at any aligned offset.
pub(super) const WRAP_LEN: usize = 8;

/// Room kept for a stream's codec parameters (an hvcC with its VPS, SPS
/// and PPS is a few hundred bytes).
pub(super) const PARAMS_CAPACITY: usize = 1024;

pub(super) const FLAG_KEY: u32 = 1;
pub(super) const FLAG_DISCONTINUITY: u32 = 2;
pub(super) const FLAG_GAP_BEFORE: u32 = 4;

/// Written by the producer only. Aligned apart from the consumer's side so
/// that the two threads do not bounce one cache line.
#[repr(align(64))]
#[derive(Default)]
pub(super) struct ProducerSide {
    /// Offset where the next record goes; published for `stats().used` only.
    pub(super) head: AtomicU32,
    /// Frames stored since the start. Its `Release` store publishes the
    /// records; the consumer counts what it may read from it.
    pub(super) stored: AtomicU32,
    pub(super) dropped: AtomicU32,
    pub(super) drop_events: AtomicU32,
}

/// Written by the consumer only.
#[repr(align(64))]
#[derive(Default)]
pub(super) struct ConsumerSide {
    /// Offset of the oldest unreleased record (or of the wrap marker before
    /// it). Its `Release` store gives the bytes before it back.
    pub(super) tail: AtomicU32,
}

/// What live viewers need to find and check frames, guarded by `Ring::live`.
///
/// Positions here are absolute: bytes the producer has moved its head by
/// since the start, padding before a wrap included, so that a position
/// modulo the ring size is its offset. 64-bit, and behind a mutex rather
/// than in an atomic (32-bit MIPS has no 64-bit atomics).
#[derive(Default)]
pub(super) struct LiveState {
    /// Where the next record goes. Every byte in `head - cap .. head` is the
    /// last thing written there, and all of it is whole records.
    pub head: u64,
    /// The newest key frame's record.
    pub last_key: Option<u64>,
    /// The newest non-empty `extra` stored (the codec parameters).
    pub params: Vec<u8>,
    /// Viewers waiting in `LiveTap::read` for the next frame.
    pub waiters: u32,
}

/// What both ends of one ring share.
pub(super) struct Ring {
    pub(super) buf: Arc<Buffer>,
    /// Where this ring starts in the buffer.
    pub(super) start: usize,
    /// Ring size in bytes: a multiple of 8, at most `MAX_RING_BYTES`.
    pub(super) cap: u32,
    pub(super) prod: ProducerSide,
    pub(super) cons: ConsumerSide,
    /// Held by the producer while it writes into the ring, and by a live
    /// viewer while it copies a frame out: that, and the viewer's check
    /// that the frame is still within the last `cap` bytes written, is what
    /// lets viewers read frames the writer has already released.
    pub(super) live: Mutex<LiveState>,
    /// Signalled after a record is stored while viewers wait.
    pub(super) arrived: Condvar,
}

impl Drop for Ring {
    fn drop(&mut self) {
        // Nothing refers to this ring any more (no end, no tap): its bytes
        // may become another ring's.
        self.buf.give_back(self.start, self.cap as usize);
    }
}

impl Ring {
    /// Copies `src` into the ring at `off`.
    ///
    /// # Safety
    ///
    /// `off .. off + src.len()` must be producer-owned space: not between
    /// the consumer's `tail` (as last loaded with `Acquire`) and `head`, so
    /// the consumer holds no reference into it and reads no byte of it
    /// until a later `Release` store of `stored` publishes it. The caller
    /// holds `live`, so no viewer is copying from there either.
    pub(super) unsafe fn write(&self, off: u32, src: &[u8]) {
        let off = off as usize;
        // A violation would be a bug here, not bad input; never write
        // outside the ring whatever happens.
        assert!(off <= self.cap as usize && src.len() <= self.cap as usize - off);
        // SAFETY: in bounds of this ring (checked above), which lies inside
        // the allocation (`build`); nobody else accesses these bytes (the
        // caller's contract); `src` is a different object than the arena.
        unsafe {
            let dst = self.buf.ptr().add(self.start + off);
            ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len());
        }
    }

    /// Borrows `len` bytes of the ring at `off`.
    ///
    /// # Safety
    ///
    /// The bytes must lie in a record (or marker) the producer published
    /// with its `Release` store of `stored`, loaded by the caller with
    /// `Acquire`, and the borrow must end before the consumer releases them
    /// (stores a `tail` past them): until then the producer does not write
    /// there.
    pub(super) unsafe fn bytes(&self, off: u32, len: usize) -> &[u8] {
        let off = off as usize;
        assert!(off <= self.cap as usize && len <= self.cap as usize - off);
        // SAFETY: in bounds (checked above); the bytes were initialized
        // (the buffer is zeroed, then written by the producer) and the
        // producer does not write them while the borrow lasts (the caller's
        // contract).
        unsafe { std::slice::from_raw_parts(self.buf.ptr().add(self.start + off), len) }
    }

    pub(super) fn lock_live(&self) -> MutexGuard<'_, LiveState> {
        // A panic while holding it cannot leave the state half-updated in a
        // way that matters more than losing live video: carry on.
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn cap(&self) -> u32 {
        self.cap
    }

    pub(super) fn frames_stored(&self) -> u32 {
        self.prod.stored.load(Ordering::Relaxed)
    }

    /// Waits (at most until `deadline`) for the producer to store a record,
    /// with the lock held before and after. False when the time is up.
    pub(super) fn wait_arrival<'a>(
        &'a self,
        live: &mut Option<MutexGuard<'a, LiveState>>,
        deadline: Instant,
    ) -> bool {
        let Some(guard) = live.take() else {
            return false;
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            *live = Some(guard);
            return false;
        }
        let mut guard = guard;
        guard.waiters += 1;
        let (mut guard, _) = self
            .arrived
            .wait_timeout(guard, left.min(Duration::from_secs(3600)))
            .unwrap_or_else(|e| e.into_inner());
        guard.waiters -= 1;
        *live = Some(guard);
        true
    }

    /// Copies the record at absolute position `at` out for a viewer: its
    /// header, `extra` and data into the buffers (cleared first). `None`
    /// when `at` is not within the last `cap` bytes written (overwritten)
    /// or is the head itself (nothing there yet). Otherwise the record's
    /// header and the absolute position of the record after it.
    ///
    /// `at` must be a record boundary (a position the producer's head once
    /// had), which viewers guarantee by only ever using positions from
    /// `LiveState`, or ones returned here.
    pub(super) fn copy_out(
        &self,
        live: &LiveState,
        at: u64,
        extra: &mut Vec<u8>,
        data: &mut Vec<u8>,
    ) -> Option<(Header, u64)> {
        let cap = u64::from(self.cap);
        if at >= live.head || live.head - at > cap {
            return None;
        }
        let off = (at % cap) as u32;
        // SAFETY: the caller holds `live` (the guard it passes), so the
        // producer is not writing; every byte of `head - cap .. head` is
        // the last one written there and belongs to a whole record (or a
        // wrap marker whose record follows at the next multiple of `cap`,
        // also before `head`), and `at` is a record boundary in that span.
        // The borrows end within this function.
        let header = unsafe { self.header_at(off) }?;
        // A wrap marker at `off`: the record is at offset 0 of the next lap.
        let record_at = if header.off == off {
            at
        } else {
            at + (cap - u64::from(off))
        };
        let body = header.off + HEADER_LEN as u32;
        extra.clear();
        data.clear();
        // SAFETY: as above; `header_at` checked the lengths against the ring.
        unsafe {
            extra.extend_from_slice(self.bytes(body, header.extra_len as usize));
            data.extend_from_slice(self.bytes(body + header.extra_len, header.data_len as usize));
        }
        Some((header, record_at + header.total_len() as u64))
    }

    pub(super) fn stats(&self) -> RingStats {
        let head = self.prod.head.load(Ordering::Relaxed);
        let tail = self.cons.tail.load(Ordering::Relaxed);
        RingStats {
            capacity: self.cap,
            used: if head >= tail {
                head - tail
            } else {
                self.cap - tail + head
            },
            frames_stored: self.prod.stored.load(Ordering::Relaxed),
            frames_dropped: self.prod.dropped.load(Ordering::Relaxed),
            drop_events: self.prod.drop_events.load(Ordering::Relaxed),
        }
    }

    /// The decoded header of the record whose slot starts at `off` (which
    /// may hold a wrap marker, then the record is at 0). `None` only if the
    /// ring were corrupt, which the protocol rules out.
    ///
    /// # Safety
    ///
    /// As for [`Ring::bytes`]: `off` is the slot of a published record that
    /// has not been released.
    pub(super) unsafe fn header_at(&self, off: u32) -> Option<Header> {
        let mut off = if off == self.cap { 0 } else { off };
        // SAFETY (both blocks): the marker or record at `off` is published
        // and unreleased (the caller's contract), and so is the record at 0
        // that follows a marker. The borrows end within this function.
        let kind = unsafe { self.bytes(off, 4) };
        if u32::from_le_bytes(kind.try_into().ok()?) == KIND_WRAP {
            off = 0;
        }
        let h = unsafe { self.bytes(off, HEADER_LEN) };
        let word = |i: usize| -> Option<u32> {
            Some(u32::from_le_bytes(h.get(i..i + 4)?.try_into().ok()?))
        };
        let long = |i: usize| -> Option<i64> {
            Some(i64::from_le_bytes(h.get(i..i + 8)?.try_into().ok()?))
        };
        if word(0)? != KIND_FRAME {
            debug_assert!(false, "arena ring corrupt at {off}");
            return None;
        }
        let header = Header {
            off,
            flags: word(4)?,
            extra_len: word(8)?,
            data_len: word(12)?,
            timestamp_90k: long(16)?,
            wall_90k: long(24)?,
        };
        if header.total_len() > (self.cap - off) as usize {
            debug_assert!(false, "arena record overruns its ring at {off}");
            return None;
        }
        Some(header)
    }
}

/// A record's header as read back by the consumer.
#[derive(Clone, Copy)]
pub(super) struct Header {
    /// Offset of the record itself (after any wrap marker).
    pub(super) off: u32,
    pub(super) flags: u32,
    pub(super) extra_len: u32,
    pub(super) data_len: u32,
    pub(super) timestamp_90k: i64,
    pub(super) wall_90k: i64,
}

impl Header {
    pub(super) fn total_len(&self) -> usize {
        record_len(self.extra_len as usize, self.data_len as usize).unwrap_or(usize::MAX)
    }

    pub(super) fn meta(&self) -> FrameMeta {
        FrameMeta {
            timestamp_90k: self.timestamp_90k,
            wall_90k: self.wall_90k,
            key: self.flags & FLAG_KEY != 0,
            discontinuity: self.flags & FLAG_DISCONTINUITY != 0,
        }
    }

    pub(super) fn gap_before(&self) -> bool {
        self.flags & FLAG_GAP_BEFORE != 0
    }
}

/// Bytes a record takes in the ring, padding included.
pub(super) fn record_len(extra: usize, data: usize) -> Option<usize> {
    let raw = HEADER_LEN.checked_add(extra)?.checked_add(data)?;
    Some(raw.checked_add(7)? & !7)
}

/// Where a record of `need` bytes goes, with `head` and `tail` as given:
/// `Some((offset, wrapped))`, `wrapped` meaning that a marker goes at `head`
/// and the record at 0. Space is left so that `head` never catches up with
/// `tail` (that would read as empty).
pub(super) fn place(cap: u32, head: u32, tail: u32, need: u32) -> Option<(u32, bool)> {
    if head >= tail {
        // Free: head..cap, then 0..tail.
        let end_room = cap - head;
        if need < end_room || (need == end_room && tail != 0) {
            Some((head, false))
        } else if need < tail {
            Some((0, true))
        } else {
            None
        }
    } else if need < tail - head {
        Some((head, false))
    } else {
        None
    }
}

/// Allocates the arena and makes the rings, of the given sizes (each a
/// multiple of 8, at least the minimum), in order. The buffer comes back
/// too, for rings made later from regions given back.
pub(super) fn build(sizes: &[usize]) -> Result<(Option<Arc<Buffer>>, Vec<Ends>), ArenaError> {
    let total: usize = sizes.iter().sum();
    if sizes.is_empty() {
        return Ok((None, Vec::new()));
    }
    let buf = Arc::new(Buffer::new(total)?);
    let mut start = 0;
    let mut out = Vec::with_capacity(sizes.len());
    for &size in sizes {
        debug_assert!(size % 8 == 0 && size <= super::MAX_RING_BYTES);
        out.push(make_ring(&buf, start, size));
        start += size;
    }
    Ok((Some(buf), out))
}

/// Both ends of one ring.
pub(super) type Ends = (RingWriter, RingReader);

/// A new ring of `size` bytes at `start` of `buf`, whose bytes no other
/// ring uses (carved fresh, or a region given back).
fn make_ring(buf: &Arc<Buffer>, start: usize, size: usize) -> (RingWriter, RingReader) {
    let ring = Arc::new(Ring {
        buf: buf.clone(),
        start,
        cap: size as u32,
        prod: ProducerSide::default(),
        cons: ConsumerSide::default(),
        // Room for any real parameter set up front: storing new
        // parameters then never allocates.
        live: Mutex::new(LiveState {
            params: Vec::with_capacity(PARAMS_CAPACITY),
            ..LiveState::default()
        }),
        arrived: Condvar::new(),
    });
    (RingWriter::new(ring.clone()), RingReader::new(ring))
}

/// A ring made from a region of `buf` no ring uses any more, if one of
/// at least `min` bytes is free (see [`Buffer::take`]). The region's old
/// bytes stay as they were: a new ring reads only records it wrote itself
/// (from its own `stored` count and live `head`), and they are
/// initialized memory.
pub(super) fn reuse(
    buf: &Arc<Buffer>,
    want: usize,
    min: usize,
) -> Option<(RingWriter, RingReader)> {
    let (start, size) = buf.take(want, min)?;
    Some(make_ring(buf, start, size))
}
