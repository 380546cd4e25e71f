//! The consumer end of a ring: the writer thread looks at stored frames in
//! place and releases them once they are on disk.

use super::ring::{Ring, FLAG_DISCONTINUITY, FLAG_GAP_BEFORE, FLAG_KEY, HEADER_LEN};
use super::{FrameMeta, RingStats};
use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::sync::Arc;

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
    pub(super) fn new(ring: Arc<Ring>) -> RingReader {
        RingReader {
            ring,
            released: 0,
            tail: 0,
            cursor: Cell::new((0, 0)),
        }
    }

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
