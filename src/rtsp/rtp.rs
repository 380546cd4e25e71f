//! RTP (RFC 3550) streams as the client receives them: sequence tracking,
//! a small reorder window for UDP, and timestamp unwrapping to a 64-bit
//! 90 kHz clock. The packet itself is `crate::stream::rtp::RtpPacket`.
//!
//! Everything here takes bytes straight from the network: nothing panics on
//! malformed input, and the per-packet paths do not allocate.

use crate::stream::rtp::{RtpError, RtpPacket, FIXED_HEADER};
use std::fmt;

/// How far behind the expected sequence number a packet must be to be
/// taken as a possible restart of the sender's numbering rather than a
/// late packet (RFC 3550 A.1 uses a similar "misorder" bound).
const RESTART_DISTANCE: u16 = 3000;

/// What [`SequenceTracker::observe`] decided about a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeqResult {
    /// Use the packet. `lost` packets were skipped just before it (0 when
    /// it is exactly the next expected one).
    Next { lost: u16 },
    /// A duplicate or a packet that arrives after later ones were used:
    /// drop it.
    Stale,
}

/// Follows the sequence numbers of an in-order stream (RTP over TCP, or the
/// output of a [`ReorderBuffer`]) to count losses and drop stale packets.
///
/// Rules, all modulo 2^16:
/// - ahead of the expected number by `d` < 0x8000: accepted, `lost = d`.
///   This includes very large forward jumps (more than 3000, e.g. a
///   sender that skipped numbers or restarted higher): they are taken as a
///   resync and the whole gap is reported as lost, so the depacketizer
///   marks the next frame as following a loss.
/// - behind it: stale, dropped. But a sender that restarts its numbering
///   lower would otherwise be dropped for up to 32768 packets, so (as in
///   RFC 3550 A.1) a packet more than 3000 behind is remembered, and if the
///   next packet follows it directly the tracker resyncs there, reporting
///   `lost: 1` (the first packet of the new run was dropped).
#[derive(Clone, Debug, Default)]
pub struct SequenceTracker {
    next: Option<u16>,
    /// The number that would confirm a restart (one past a far-behind packet).
    restart_candidate: Option<u16>,
}

impl SequenceTracker {
    pub fn new() -> Self {
        SequenceTracker::default()
    }

    /// The sequence number expected next, once a packet has been seen.
    pub fn expected(&self) -> Option<u16> {
        self.next
    }

    pub fn observe(&mut self, seq: u16) -> SeqResult {
        let Some(next) = self.next else {
            self.next = Some(seq.wrapping_add(1));
            return SeqResult::Next { lost: 0 };
        };
        let ahead = seq.wrapping_sub(next);
        if ahead < 0x8000 {
            self.restart_candidate = None;
            self.next = Some(seq.wrapping_add(1));
            return SeqResult::Next { lost: ahead };
        }
        let behind = next.wrapping_sub(seq);
        if behind > RESTART_DISTANCE {
            if self.restart_candidate == Some(seq) {
                self.restart_candidate = None;
                self.next = Some(seq.wrapping_add(1));
                return SeqResult::Next { lost: 1 };
            }
            self.restart_candidate = Some(seq.wrapping_add(1));
        }
        SeqResult::Stale
    }
}

/// A timestamp extended to 64 bits on the 90 kHz clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unwrapped {
    pub ts_90k: i64,
    /// The RTP timestamp jumped absurdly (more than 10 s forward or 1 s
    /// back); the output was rebased to stay continuous. The caller counts
    /// these (and may start a new recording).
    pub jumped: bool,
}

/// The 90 kHz step assumed after a jump when no frame interval was seen yet
/// (1/30 s).
const DEFAULT_STEP_90K: i64 = 3000;

/// Extends 32-bit RTP timestamps to `i64` across wrap-around and converts
/// them from the track's clock rate to 90 kHz.
///
/// Without jumps, the output is exactly `floor(ext * 90000 / clock_rate)`
/// where `ext` is the extended RTP timestamp (starting from the first
/// timestamp's own value), so there is no rounding drift. On a jump (more
/// than 10 s forward or more than 1 s back — B-frames legitimately go back
/// a little), the output continues from the previous output plus the last
/// observed frame interval (1/30 s if none yet), and `jumped` is set.
#[derive(Clone, Debug)]
pub struct TimestampUnwrapper {
    clock_rate: u32,
    /// The previous raw timestamp.
    last_raw: Option<u32>,
    /// The previous extended timestamp, in clock units since the origin.
    last_ext: i64,
    /// 90 kHz output at extended timestamp 0.
    offset_90k: i64,
    last_out: i64,
    /// The last positive output step no longer than 1 s: a frame interval.
    last_step_90k: i64,
}

impl TimestampUnwrapper {
    /// A `clock_rate` of 0 (a broken SDP) is treated as 90000.
    pub fn new(clock_rate: u32) -> Self {
        TimestampUnwrapper {
            clock_rate: if clock_rate == 0 { 90_000 } else { clock_rate },
            last_raw: None,
            last_ext: 0,
            offset_90k: 0,
            last_out: 0,
            last_step_90k: DEFAULT_STEP_90K,
        }
    }

    pub fn clock_rate(&self) -> u32 {
        self.clock_rate
    }

    fn to_90k(&self, ext: i64) -> i64 {
        if self.clock_rate == 90_000 {
            return ext;
        }
        // i128 so that no extended value can overflow the multiplication.
        let v = (i128::from(ext) * 90_000).div_euclid(i128::from(self.clock_rate));
        i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
    }

    pub fn unwrap(&mut self, ts: u32) -> Unwrapped {
        let Some(last_raw) = self.last_raw else {
            self.last_raw = Some(ts);
            self.last_ext = i64::from(ts);
            self.offset_90k = 0;
            self.last_out = self.to_90k(self.last_ext);
            return Unwrapped {
                ts_90k: self.last_out,
                jumped: false,
            };
        };
        // The signed distance, modulo 2^32: wrap-around is just a small step.
        let delta = i64::from(ts.wrapping_sub(last_raw) as i32);
        let rate = i64::from(self.clock_rate);
        let jumped = delta > 10 * rate || delta < -rate;
        self.last_raw = Some(ts);
        let out = if jumped {
            // Rebase: this timestamp becomes the new origin, placed one
            // frame interval after the previous output.
            self.last_ext = 0;
            self.offset_90k = self.last_out.saturating_add(self.last_step_90k);
            self.offset_90k
        } else {
            self.last_ext = self.last_ext.saturating_add(delta);
            self.offset_90k.saturating_add(self.to_90k(self.last_ext))
        };
        let step = out.saturating_sub(self.last_out);
        if !jumped && step > 0 && step <= 90_000 {
            self.last_step_90k = step;
        }
        self.last_out = out;
        Unwrapped {
            ts_90k: out,
            jumped,
        }
    }
}

/// Metadata of one reorder slot.
#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    occupied: bool,
    seq: u16,
    len: usize,
}

/// Most slots a [`ReorderBuffer`] will hold (larger requests are clamped).
pub const MAX_REORDER_SLOTS: usize = 1024;
/// Largest slot size (an RTP packet over UDP cannot be larger).
pub const MAX_REORDER_SLOT_BYTES: usize = 65_536;

/// A fixed-size reorder window for RTP over UDP.
///
/// All memory is allocated by [`ReorderBuffer::new`]; `push` copies the
/// packet into a preallocated slot and `pop` lends it back, so steady state
/// allocates nothing.
///
/// The window covers `slots` sequence numbers starting at the next expected
/// one (the first packet pushed defines the start). Contract: after each
/// `push`, call `pop` until it returns `None`.
/// - `pop` releases the next expected packet as soon as it is present.
/// - A packet arriving `slots` or more ahead of the next expected one does
///   not fit: the buffer is *full*. It is parked in one extra slot and
///   `pop` then releases the buffered packets in order, declaring each gap
///   lost, until the parked packet is released too. (A big forward jump of
///   the sender's numbering resolves the same way.)
/// - `push` while a packet is parked (the caller did not drain) refuses the
///   new packet with an error.
/// - A gap that holds up buffered packets is never skipped by `pop` on its
///   own while the window has room; when the caller decides it has waited
///   long enough ([`ReorderBuffer::is_waiting`] says whether anything is
///   held up), [`ReorderBuffer::pop_forced`] skips it.
/// - Duplicates and packets behind the next expected one are dropped
///   (counted in [`ReorderBuffer::stale_dropped`]). A sender that restarts
///   its numbering far behind (more than 3000) is detected as in
///   [`SequenceTracker`]: two consecutive such packets resync the window,
///   dropping whatever was buffered and reporting the loss on the next
///   packet released.
pub struct ReorderBuffer {
    /// `(slots + 1) * slot_bytes`: the window, then the parking slot.
    data: Vec<u8>,
    meta: Vec<Slot>,
    slots: usize,
    slot_bytes: usize,
    /// Slot index of `next`.
    head: usize,
    next: Option<u16>,
    /// Losses to report with the next released packet.
    lost_pending: u16,
    /// Packets stored in the window (not counting the parking slot).
    stored: usize,
    restart_candidate: Option<u16>,
    stale_dropped: u32,
}

impl fmt::Debug for ReorderBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReorderBuffer")
            .field("slots", &self.slots)
            .field("slot_bytes", &self.slot_bytes)
            .field("next", &self.next)
            .field("stored", &self.stored)
            .field("parked", &self.parked().map(|s| s.seq))
            .finish()
    }
}

impl ReorderBuffer {
    /// `slots` is clamped to 1..=[`MAX_REORDER_SLOTS`], `slot_bytes` to
    /// 12..=[`MAX_REORDER_SLOT_BYTES`].
    pub fn new(slots: usize, slot_bytes: usize) -> Self {
        let slots = slots.clamp(1, MAX_REORDER_SLOTS);
        let slot_bytes = slot_bytes.clamp(FIXED_HEADER, MAX_REORDER_SLOT_BYTES);
        ReorderBuffer {
            data: vec![0; (slots + 1) * slot_bytes],
            meta: vec![Slot::default(); slots + 1],
            slots,
            slot_bytes,
            head: 0,
            next: None,
            lost_pending: 0,
            stored: 0,
            restart_candidate: None,
            stale_dropped: 0,
        }
    }

    /// Duplicates and late packets dropped so far.
    pub fn stale_dropped(&self) -> u32 {
        self.stale_dropped
    }

    /// No packet is buffered.
    pub fn is_empty(&self) -> bool {
        self.stored == 0 && self.parked().is_none()
    }

    /// Packets are buffered but held up by a missing one: the caller may
    /// start (or keep) a timer and call [`ReorderBuffer::pop_forced`] when
    /// it expires.
    pub fn is_waiting(&self) -> bool {
        !self.is_empty() && !self.meta.get(self.head).is_some_and(|s| s.occupied)
    }

    /// Forgets everything, as after `new`.
    pub fn reset(&mut self) {
        for m in self.meta.iter_mut() {
            m.occupied = false;
        }
        self.head = 0;
        self.next = None;
        self.lost_pending = 0;
        self.stored = 0;
        self.restart_candidate = None;
    }

    fn parked(&self) -> Option<&Slot> {
        self.meta.get(self.slots).filter(|s| s.occupied)
    }

    /// Copies `pkt` into slot `index`.
    fn store(&mut self, index: usize, seq: u16, pkt: &[u8]) {
        let start = index * self.slot_bytes;
        if let (Some(dst), Some(m)) = (
            self.data.get_mut(start..start + pkt.len()),
            self.meta.get_mut(index),
        ) {
            dst.copy_from_slice(pkt);
            *m = Slot {
                occupied: true,
                seq,
                len: pkt.len(),
            };
        }
    }

    /// Stores a copy of an RTP packet.
    ///
    /// Errors: the packet is not RTP, is larger than a slot, or a packet is
    /// still parked because the caller did not drain with `pop`. Stale
    /// packets are dropped silently (see [`ReorderBuffer::stale_dropped`]).
    pub fn push(&mut self, pkt: &[u8]) -> Result<(), RtpError> {
        let seq = RtpPacket::parse(pkt)?.sequence;
        if pkt.len() > self.slot_bytes {
            return Err(RtpError("packet larger than a reorder slot"));
        }
        if self.parked().is_some() {
            return Err(RtpError("reorder buffer full (not drained)"));
        }
        let next = match self.next {
            Some(n) => n,
            None => {
                self.next = Some(seq);
                seq
            }
        };
        let ahead = seq.wrapping_sub(next);
        if ahead >= 0x8000 {
            let behind = next.wrapping_sub(seq);
            if behind > RESTART_DISTANCE && self.restart_candidate == Some(seq) {
                // The sender restarted its numbering: start over here. The
                // first packet of the new run was dropped, and so is
                // anything still buffered from the old one.
                let dropped = self.stored;
                self.reset();
                self.lost_pending = u16::try_from(dropped.saturating_add(1)).unwrap_or(u16::MAX);
                self.next = Some(seq);
                self.store(0, seq, pkt);
                self.stored = 1;
                return Ok(());
            }
            self.restart_candidate = if behind > RESTART_DISTANCE {
                Some(seq.wrapping_add(1))
            } else {
                None
            };
            self.stale_dropped = self.stale_dropped.wrapping_add(1);
            return Ok(());
        }
        self.restart_candidate = None;
        let ahead = usize::from(ahead);
        if ahead >= self.slots {
            // Full: park it; `pop` now flushes the window in order.
            self.store(self.slots, seq, pkt);
            return Ok(());
        }
        let index = (self.head + ahead) % self.slots;
        if self.meta.get(index).is_some_and(|m| m.occupied) {
            self.stale_dropped = self.stale_dropped.wrapping_add(1);
            return Ok(());
        }
        self.store(index, seq, pkt);
        self.stored += 1;
        Ok(())
    }

    /// The next packet in order and the number of packets lost just before
    /// it; `None` when the next one is missing and the buffer is not full.
    pub fn pop(&mut self) -> Option<(&[u8], u16)> {
        let must_skip = self.parked().is_some();
        self.release(must_skip)
    }

    /// Like [`ReorderBuffer::pop`], but skips a missing packet (declaring
    /// it lost) when later ones are buffered. For when the caller has
    /// waited long enough for the gap to fill. `None` only when empty.
    pub fn pop_forced(&mut self) -> Option<(&[u8], u16)> {
        self.release(true)
    }

    fn release(&mut self, skip_gaps: bool) -> Option<(&[u8], u16)> {
        let next = self.next?;
        let head_occupied = self.meta.get(self.head).is_some_and(|m| m.occupied);
        let (index, skipped) = if head_occupied {
            (self.head, 0usize)
        } else if !skip_gaps {
            return None;
        } else if let Some(k) = (1..self.slots).find(|k| {
            self.meta
                .get((self.head + k) % self.slots)
                .is_some_and(|m| m.occupied)
        }) {
            ((self.head + k) % self.slots, k)
        } else if let Some(parked) = self.parked().copied() {
            // Nothing left in the window: release the parked packet and
            // restart the (empty) window right after it.
            let skipped = parked.seq.wrapping_sub(next);
            let lost = self.lost_pending.saturating_add(skipped);
            self.lost_pending = 0;
            self.next = Some(parked.seq.wrapping_add(1));
            self.head = 0;
            if let Some(m) = self.meta.get_mut(self.slots) {
                m.occupied = false;
            }
            let start = self.slots * self.slot_bytes;
            let bytes = self.data.get(start..start + parked.len)?;
            return Some((bytes, lost));
        } else {
            return None;
        };
        let slot = *self.meta.get(index)?;
        let lost = self
            .lost_pending
            .saturating_add(u16::try_from(skipped).unwrap_or(u16::MAX));
        self.lost_pending = 0;
        if let Some(m) = self.meta.get_mut(index) {
            m.occupied = false;
        }
        self.stored = self.stored.saturating_sub(1);
        self.next = Some(slot.seq.wrapping_add(1));
        self.head = (index + 1) % self.slots;
        let start = index * self.slot_bytes;
        let bytes = self.data.get(start..start + slot.len)?;
        Some((bytes, lost))
    }
}

#[cfg(test)]
mod tests;
