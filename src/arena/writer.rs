//! The producer end of a ring: the stream's thread copies whole frames
//! in, never blocking and never allocating, and drops frames up to the
//! next key frame when the ring is full.

use super::ring::{place, record_len, Ring, FLAG_DISCONTINUITY, FLAG_GAP_BEFORE, FLAG_KEY};
use super::ring::{HEADER_LEN, KIND_FRAME, KIND_WRAP, WRAP_LEN};
use super::{FrameMeta, Push, RingStats};
use std::sync::atomic::Ordering;
use std::sync::Arc;

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
    pub(super) fn new(ring: Arc<Ring>) -> RingWriter {
        RingWriter {
            ring,
            head: 0,
            tail: 0,
            waiting_for_key: false,
            pending_discontinuity: false,
            stored: 0,
            dropped: 0,
            drop_events: 0,
        }
    }

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
