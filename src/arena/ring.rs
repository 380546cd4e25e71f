//! One ring of the arena: the shared allocation, the record format and the
//! two ends, plus the live viewers' side door. All the `unsafe` of the arena
//! is here: the allocation itself, and the functions that copy bytes into,
//! borrow bytes out of, and copy bytes out of it.

use super::{ArenaError, FrameMeta, Push, RingStats};
use std::alloc::{self, Layout};
use std::cell::Cell;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Length of a record's fixed header; see the module documentation.
pub(super) const HEADER_LEN: usize = 32;
/// `kind` of a frame record ("FRM1" read as little-endian).
const KIND_FRAME: u32 = u32::from_le_bytes(*b"FRM1");
/// `kind` of a wrap marker ("WRAP"): the rest of the ring up to its end is
/// padding, and the next record is at offset 0.
const KIND_WRAP: u32 = u32::from_le_bytes(*b"WRAP");
/// The marker is a whole 8-byte slot, so it fits at any aligned offset.
const WRAP_LEN: usize = 8;

/// Room kept for a stream's codec parameters (an hvcC with its VPS, SPS
/// and PPS is a few hundred bytes).
const PARAMS_CAPACITY: usize = 1024;

const FLAG_KEY: u32 = 1;
const FLAG_DISCONTINUITY: u32 = 2;
const FLAG_GAP_BEFORE: u32 = 4;

/// The arena's bytes: one allocation, freed when the last ring end (and
/// the last [`super::Arena`] handle) is dropped.
pub(super) struct Buffer {
    ptr: NonNull<u8>,
    layout: Layout,
    /// Regions no ring uses any more, `(start, len)`, sorted by start and
    /// merged with their neighbours: a ring gives its region back when its
    /// last end or tap is dropped, and a ring made later may take it.
    free: Mutex<Vec<(usize, usize)>>,
}

impl Buffer {
    fn lock_free(&self) -> MutexGuard<'_, Vec<(usize, usize)>> {
        // The list is consistent after every single push or removal.
        self.free.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Returns a region to the free list, merging it with its neighbours.
    fn give_back(&self, start: usize, len: usize) {
        let mut free = self.lock_free();
        let i = free.partition_point(|&(s, _)| s < start);
        free.insert(i, (start, len));
        // Merge with the next, then with the previous.
        if let (Some(&(s, l)), Some(&(ns, nl))) = (free.get(i), free.get(i + 1)) {
            if s + l == ns {
                free[i] = (s, l + nl);
                free.remove(i + 1);
            }
        }
        if i > 0 {
            if let (Some(&(ps, pl)), Some(&(s, l))) = (free.get(i - 1), free.get(i)) {
                if ps + pl == s {
                    free[i - 1] = (ps, pl + l);
                    free.remove(i);
                }
            }
        }
    }

    /// Bytes in free regions.
    pub(super) fn free_bytes(&self) -> usize {
        self.lock_free().iter().map(|&(_, l)| l).sum()
    }

    /// Takes a region for a new ring of about `want` bytes out of the free
    /// list: the smallest region that holds `want`, else the largest one
    /// that holds at least `min` (a ring somewhat smaller than its share
    /// still records). A region larger than needed is split unless the
    /// rest would be too small to ever make a ring.
    fn take(&self, want: usize, min: usize) -> Option<(usize, usize)> {
        let mut free = self.lock_free();
        let fits = free
            .iter()
            .enumerate()
            .filter(|(_, &(_, l))| l >= want)
            .min_by_key(|(_, &(_, l))| l)
            .map(|(i, _)| i);
        let i = fits.or_else(|| {
            free.iter()
                .enumerate()
                .filter(|(_, &(_, l))| l >= min)
                .max_by_key(|(_, &(_, l))| l)
                .map(|(i, _)| i)
        })?;
        let (start, len) = *free.get(i)?;
        let size = want.min(len).min(super::MAX_RING_BYTES) & !7;
        if len - size >= super::MIN_RING_BYTES {
            free[i] = (start + size, len - size);
            Some((start, size))
        } else {
            free.remove(i);
            Some((start, len.min(super::MAX_RING_BYTES) & !7))
        }
    }
}

impl Buffer {
    /// Locks the allocation in memory (`mlock`), so that with swap on no
    /// frame ever waits on the disk (daemon::swap).
    pub(super) fn lock_in_memory(&self) -> std::io::Result<()> {
        // SAFETY: the range is this live allocation; mlock only pins it.
        let rc =
            unsafe { libc::mlock(self.ptr.as_ptr() as *const libc::c_void, self.layout.size()) };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
}

// SAFETY: `Buffer` is a plain owned allocation; which thread may touch which
// bytes of it is decided by the ring protocol, enforced in `Ring`.
unsafe impl Send for Buffer {}
// SAFETY: as above; `Buffer` itself offers no access to the bytes.
unsafe impl Sync for Buffer {}

impl Drop for Buffer {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `alloc_zeroed` with this very layout, and
        // no ring end is left (they all hold an `Arc` to the buffer).
        unsafe { alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// Written by the producer only. Aligned apart from the consumer's side so
/// that the two threads do not bounce one cache line.
#[repr(align(64))]
#[derive(Default)]
struct ProducerSide {
    /// Offset where the next record goes; published for `stats().used` only.
    head: AtomicU32,
    /// Frames stored since the start. Its `Release` store publishes the
    /// records; the consumer counts what it may read from it.
    stored: AtomicU32,
    dropped: AtomicU32,
    drop_events: AtomicU32,
}

/// Written by the consumer only.
#[repr(align(64))]
#[derive(Default)]
struct ConsumerSide {
    /// Offset of the oldest unreleased record (or of the wrap marker before
    /// it). Its `Release` store gives the bytes before it back.
    tail: AtomicU32,
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
    buf: Arc<Buffer>,
    /// Where this ring starts in the buffer.
    start: usize,
    /// Ring size in bytes: a multiple of 8, at most `MAX_RING_BYTES`.
    cap: u32,
    prod: ProducerSide,
    cons: ConsumerSide,
    /// Held by the producer while it writes into the ring, and by a live
    /// viewer while it copies a frame out: that, and the viewer's check
    /// that the frame is still within the last `cap` bytes written, is what
    /// lets viewers read frames the writer has already released.
    live: Mutex<LiveState>,
    /// Signalled after a record is stored while viewers wait.
    arrived: Condvar,
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
    unsafe fn write(&self, off: u32, src: &[u8]) {
        let off = off as usize;
        // A violation would be a bug here, not bad input; never write
        // outside the ring whatever happens.
        assert!(off <= self.cap as usize && src.len() <= self.cap as usize - off);
        // SAFETY: in bounds of this ring (checked above), which lies inside
        // the allocation (`build`); nobody else accesses these bytes (the
        // caller's contract); `src` is a different object than the arena.
        unsafe {
            let dst = self.buf.ptr.as_ptr().add(self.start + off);
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
    unsafe fn bytes(&self, off: u32, len: usize) -> &[u8] {
        let off = off as usize;
        assert!(off <= self.cap as usize && len <= self.cap as usize - off);
        // SAFETY: in bounds (checked above); the bytes were initialized
        // (the buffer is zeroed, then written by the producer) and the
        // producer does not write them while the borrow lasts (the caller's
        // contract).
        unsafe { std::slice::from_raw_parts(self.buf.ptr.as_ptr().add(self.start + off), len) }
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
    unsafe fn header_at(&self, off: u32) -> Option<Header> {
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
    off: u32,
    flags: u32,
    extra_len: u32,
    data_len: u32,
    timestamp_90k: i64,
    wall_90k: i64,
}

impl Header {
    fn total_len(&self) -> usize {
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
    let layout =
        Layout::from_size_align(total, 64).map_err(|_| ArenaError::OutOfMemory { bytes: total })?;
    // Zeroed: every byte of the ring is initialized, so no borrow can ever
    // see uninitialized memory. The kernel maps the pages as the rings
    // first fill, so resident memory grows to the arena size on first lap.
    // SAFETY: `layout` has a non-zero size (every ring is at least 64 KiB).
    let ptr = unsafe { alloc::alloc_zeroed(layout) };
    let ptr = NonNull::new(ptr).ok_or(ArenaError::OutOfMemory { bytes: total })?;
    let buf = Arc::new(Buffer {
        ptr,
        layout,
        free: Mutex::new(Vec::new()),
    });
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
    (
        RingWriter {
            ring: ring.clone(),
            head: 0,
            tail: 0,
            waiting_for_key: false,
            pending_discontinuity: false,
            stored: 0,
            dropped: 0,
            drop_events: 0,
        },
        RingReader {
            ring,
            released: 0,
            tail: 0,
            cursor: Cell::new((0, 0)),
        },
    )
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

/// The producer end of a ring, owned by the stream's thread.
pub struct RingWriter {
    ring: Arc<Ring>,
    /// Where the next record goes.
    head: u32,
    /// The consumer's `tail` as last loaded: older than the real one, so the
    /// free space it implies is never more than there really is.
    tail: u32,
    /// Frames were dropped; only a key frame may be stored next.
    waiting_for_key: bool,
    /// A dropped frame was marked as a discontinuity: the next stored frame
    /// carries the mark.
    pending_discontinuity: bool,
    // Our own copies of the shared counters (we are their only writer).
    stored: u32,
    dropped: u32,
    drop_events: u32,
}

impl RingWriter {
    /// Copies one frame into the ring, or drops it; never blocks and never
    /// allocates. `extra` is stored with the frame as is (the serialized
    /// codec parameters when they changed; usually empty).
    ///
    /// Dropped: when the ring has no room (then every frame up to the next
    /// key frame that fits is dropped too), when the frame is longer than
    /// half the ring (it could never fit), or while waiting for a key frame.
    /// The first frame stored after drops has `gap_before`; a dropped
    /// frame's `discontinuity` carries over to the next stored frame.
    pub fn push(&mut self, meta: &FrameMeta, extra: &[u8], data: &[u8]) -> Push {
        if self.waiting_for_key && !meta.key {
            return self.drop_frame(meta);
        }
        let cap = self.ring.cap;
        let need = match record_len(extra.len(), data.len()) {
            Some(n) if n <= cap as usize / 2 => n as u32,
            _ => return self.drop_frame(meta),
        };
        let mut spot = place(cap, self.head, self.tail, need);
        if spot.is_none() {
            self.tail = self.ring.cons.tail.load(Ordering::Acquire);
            spot = place(cap, self.head, self.tail, need);
        }
        let Some((off, wrapped)) = spot else {
            return self.drop_frame(meta);
        };

        let mut flags = 0;
        if meta.key {
            flags |= FLAG_KEY;
        }
        if meta.discontinuity || self.pending_discontinuity {
            flags |= FLAG_DISCONTINUITY;
        }
        if self.waiting_for_key {
            flags |= FLAG_GAP_BEFORE;
        }
        let mut header = [0u8; HEADER_LEN];
        header[0..4].copy_from_slice(&KIND_FRAME.to_le_bytes());
        header[4..8].copy_from_slice(&flags.to_le_bytes());
        // Both fit in u32: their sum is at most half the ring.
        header[8..12].copy_from_slice(&(extra.len() as u32).to_le_bytes());
        header[12..16].copy_from_slice(&(data.len() as u32).to_le_bytes());
        header[16..24].copy_from_slice(&meta.timestamp_90k.to_le_bytes());
        header[24..32].copy_from_slice(&meta.wall_90k.to_le_bytes());
        let body = off + HEADER_LEN as u32;
        let mut live = self.ring.lock_live();
        // SAFETY: `place` chose `off .. off + need` (and, when wrapping, the
        // marker slot at `head`, WRAP_LEN bytes that fit since `head` is an
        // aligned offset below `cap`) inside the free space between our
        // `head` and the consumer's `tail`, loaded with `Acquire` after the
        // consumer's last reads of it. The consumer reads none of it until
        // the `Release` store of `stored` below; viewers read none of it
        // while we hold `live`.
        unsafe {
            if wrapped {
                let mut marker = [0u8; WRAP_LEN];
                marker[0..4].copy_from_slice(&KIND_WRAP.to_le_bytes());
                self.ring.write(self.head, &marker);
            }
            self.ring.write(off, &header);
            self.ring.write(body, extra);
            self.ring.write(body + extra.len() as u32, data);
        }
        let record_at = if wrapped {
            live.head + u64::from(cap - self.head)
        } else {
            live.head
        };
        live.head = record_at + u64::from(need);
        if meta.key {
            live.last_key = Some(record_at);
        }
        if !extra.is_empty() {
            // Allocates only when the parameters grow: rarely, not per frame.
            live.params.clear();
            live.params.extend_from_slice(extra);
        }
        let wake = live.waiters > 0;
        drop(live);
        if wake {
            self.ring.arrived.notify_all();
        }
        self.head = off + need;
        if self.head == cap {
            self.head = 0;
        }
        self.waiting_for_key = false;
        self.pending_discontinuity = false;
        self.stored = self.stored.wrapping_add(1);
        self.ring.prod.head.store(self.head, Ordering::Relaxed);
        self.ring.prod.stored.store(self.stored, Ordering::Release);
        Push::Stored
    }

    fn drop_frame(&mut self, meta: &FrameMeta) -> Push {
        if !self.waiting_for_key {
            self.waiting_for_key = true;
            self.drop_events = self.drop_events.wrapping_add(1);
            self.ring
                .prod
                .drop_events
                .store(self.drop_events, Ordering::Relaxed);
        }
        self.pending_discontinuity |= meta.discontinuity;
        self.dropped = self.dropped.wrapping_add(1);
        self.ring
            .prod
            .dropped
            .store(self.dropped, Ordering::Relaxed);
        Push::Dropped
    }

    pub fn stats(&self) -> RingStats {
        self.ring.stats()
    }

    /// The ring's size in bytes.
    pub fn capacity(&self) -> u32 {
        self.ring.cap
    }

    /// Read access for live viewers.
    pub fn tap(&self) -> super::LiveTap {
        super::LiveTap::new(self.ring.clone())
    }

    /// The longest `extra` plus `data` a push can ever store (half the ring,
    /// less the record header).
    pub fn max_frame_len(&self) -> usize {
        ((self.ring.cap as usize / 2) & !7) - HEADER_LEN
    }
}

/// One stored frame, borrowed from the ring in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameView<'a> {
    pub meta: FrameMeta,
    /// Frames were dropped just before this one.
    pub gap_before: bool,
    pub extra: &'a [u8],
    pub data: &'a [u8],
}

/// The consumer end of a ring, owned by the writer thread.
pub struct RingReader {
    ring: Arc<Ring>,
    /// Frames released since the start (wrapping, like `stored`).
    released: u32,
    /// Slot of the oldest unreleased frame; what we last stored in `tail`.
    tail: u32,
    /// `(i, slot)`: the slot of the i-th oldest unreleased frame, as last
    /// found by `peek`, so that peeking frames in order walks the ring once.
    cursor: Cell<(u32, u32)>,
}

impl RingReader {
    /// Frames stored and not yet released.
    pub fn len(&self) -> usize {
        // `Acquire`: pairs with the producer's `Release` store, so the
        // records it counts are fully written before we read them.
        let stored = self.ring.prod.stored.load(Ordering::Acquire);
        stored.wrapping_sub(self.released) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The i-th oldest unreleased frame (0 = the oldest). The view borrows
    /// the reader, so it ends before the frame can be released.
    pub fn peek(&self, i: usize) -> Option<FrameView<'_>> {
        if i >= self.len() {
            return None;
        }
        let i = i as u32; // below len, which came from a u32
        let (mut idx, mut slot) = self.cursor.get();
        if i < idx {
            (idx, slot) = (0, self.tail);
        }
        // SAFETY (both): `slot` is that of frame `idx` (the tail for frame
        // 0), and `idx <= i < len`: a published record (`len` loaded
        // `stored` with `Acquire`), unreleased (a `release` needs `&mut
        // self`).
        let mut header = unsafe { self.ring.header_at(slot) }?;
        while idx < i {
            slot = header.off + header.total_len() as u32;
            idx += 1;
            header = unsafe { self.ring.header_at(slot) }?;
        }
        self.cursor.set((idx, header.off));
        let body = header.off + HEADER_LEN as u32;
        // SAFETY (both): the record is published (`len` above loaded
        // `stored` with `Acquire` and `i` is below it) and unreleased; the
        // view borrows `self`, so it ends before `release(&mut self)` gives
        // the bytes back to the producer. `header_at` checked the lengths
        // against the ring.
        let extra = unsafe { self.ring.bytes(body, header.extra_len as usize) };
        let data = unsafe {
            self.ring
                .bytes(body + header.extra_len, header.data_len as usize)
        };
        Some(FrameView {
            meta: FrameMeta {
                timestamp_90k: header.timestamp_90k,
                wall_90k: header.wall_90k,
                key: header.flags & FLAG_KEY != 0,
                discontinuity: header.flags & FLAG_DISCONTINUITY != 0,
            },
            gap_before: header.flags & FLAG_GAP_BEFORE != 0,
            extra,
            data,
        })
    }

    /// The unreleased frames, oldest first.
    pub fn iter(&self) -> Frames<'_> {
        Frames {
            reader: self,
            next: 0,
        }
    }

    /// Frees the `n` oldest frames (all of them if fewer are stored), giving
    /// their space back to the producer.
    pub fn release(&mut self, n: usize) {
        let n = n.min(self.len()) as u32;
        if n == 0 {
            return;
        }
        let (mut idx, mut slot) = self.cursor.get();
        if idx > n {
            (idx, slot) = (0, self.tail);
        }
        // Walk past the last frame released: the new tail is where the
        // next frame's slot begins.
        while idx < n {
            // SAFETY: `slot` is that of frame `idx`, and `idx < n <= len`:
            // published and not yet released (we release below).
            let Some(header) = (unsafe { self.ring.header_at(slot) }) else {
                return;
            };
            slot = header.off + header.total_len() as u32;
            idx += 1;
        }
        let end = if slot == self.ring.cap { 0 } else { slot };
        let (cidx, cslot) = self.cursor.get();
        self.cursor.set(if cidx >= n {
            (cidx - n, cslot)
        } else {
            (0, end)
        });
        self.tail = end;
        self.released = self.released.wrapping_add(n);
        // `Release`: our reads of the freed bytes happen before the
        // producer, loading `tail` with `Acquire`, writes there.
        self.ring.cons.tail.store(end, Ordering::Release);
    }

    pub fn stats(&self) -> RingStats {
        self.ring.stats()
    }

    /// The ring's size in bytes.
    pub fn capacity(&self) -> u32 {
        self.ring.cap
    }
}

/// Iterator over a reader's unreleased frames, from [`RingReader::iter`].
pub struct Frames<'a> {
    reader: &'a RingReader,
    next: usize,
}

impl<'a> Iterator for Frames<'a> {
    type Item = FrameView<'a>;

    fn next(&mut self) -> Option<FrameView<'a>> {
        let f = self.reader.peek(self.next)?;
        self.next += 1;
        Some(f)
    }
}
