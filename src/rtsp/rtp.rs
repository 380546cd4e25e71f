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
mod tests {
    use super::*;

    fn packet(seq: u16, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, 96];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&1234u32.to_be_bytes());
        p.extend_from_slice(&0xdead_beefu32.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn parses_plain_packet() {
        let mut p = packet(0x1234, b"hello");
        p[1] = 0x80 | 97;
        let r = RtpPacket::parse(&p).unwrap();
        assert_eq!(r.sequence, 0x1234);
        assert_eq!(r.timestamp, 1234);
        assert_eq!(r.ssrc, 0xdead_beef);
        assert!(r.marker);
        assert_eq!(r.payload_type, 97);
        assert_eq!(r.payload, b"hello");
    }

    #[test]
    fn rejects_short_and_wrong_version() {
        assert!(RtpPacket::parse(&[]).is_err());
        assert!(RtpPacket::parse(&[0x80; 11]).is_err());
        let mut p = packet(1, b"x");
        p[0] = 0x40; // version 1
        assert!(RtpPacket::parse(&p).is_err());
        // A header with no payload is valid (an empty packet).
        assert_eq!(RtpPacket::parse(&packet(1, b"")).unwrap().payload, b"");
    }

    #[test]
    fn skips_csrcs() {
        let mut p = packet(1, &[]);
        p[0] = 0x82; // two CSRCs
        p.extend_from_slice(&[1, 1, 1, 1, 2, 2, 2, 2]);
        p.extend_from_slice(b"data");
        assert_eq!(RtpPacket::parse(&p).unwrap().payload, b"data");
        // CSRC count larger than the packet.
        p.truncate(16);
        assert!(RtpPacket::parse(&p).is_err());
    }

    #[test]
    fn skips_header_extension() {
        let mut p = packet(1, &[]);
        p[0] = 0x90;
        p.extend_from_slice(&[0xbe, 0xde, 0, 2]); // 2 words follow
        p.extend_from_slice(&[9; 8]);
        p.extend_from_slice(b"data");
        assert_eq!(RtpPacket::parse(&p).unwrap().payload, b"data");
        // Extension length past the end.
        let mut q = packet(1, &[]);
        q[0] = 0x90;
        q.extend_from_slice(&[0xbe, 0xde, 0, 9, 1, 2, 3, 4]);
        assert!(RtpPacket::parse(&q).is_err());
        // Extension header itself truncated.
        let mut r = packet(1, &[]);
        r[0] = 0x90;
        r.extend_from_slice(&[0xbe, 0xde]);
        assert!(RtpPacket::parse(&r).is_err());
    }

    #[test]
    fn removes_padding() {
        let mut p = packet(1, b"data");
        p[0] = 0xa0;
        p.extend_from_slice(&[0, 0, 3]);
        assert_eq!(RtpPacket::parse(&p).unwrap().payload, b"data");
        // Padding covering exactly the payload.
        let mut q = packet(1, b"ab");
        q[0] = 0xa0;
        q.push(3);
        assert_eq!(RtpPacket::parse(&q).unwrap().payload, b"");
        // Zero and too-large padding counts.
        let mut z = packet(1, b"ab");
        z[0] = 0xa0;
        z.push(0);
        assert!(RtpPacket::parse(&z).is_err());
        let mut big = packet(1, b"ab");
        big[0] = 0xa0;
        big.push(4);
        assert!(RtpPacket::parse(&big).is_err());
        // Padding cannot reach into the header extension.
        let mut e = packet(1, &[]);
        e[0] = 0xb0;
        e.extend_from_slice(&[0, 0, 0, 0, 2]);
        assert!(RtpPacket::parse(&e).is_err());
    }

    #[test]
    fn sequence_in_order_and_loss() {
        let mut t = SequenceTracker::new();
        assert_eq!(t.observe(10), SeqResult::Next { lost: 0 });
        assert_eq!(t.observe(11), SeqResult::Next { lost: 0 });
        assert_eq!(t.observe(14), SeqResult::Next { lost: 2 });
        assert_eq!(t.expected(), Some(15));
    }

    #[test]
    fn sequence_duplicates_and_late_are_stale() {
        let mut t = SequenceTracker::new();
        t.observe(100);
        t.observe(101);
        assert_eq!(t.observe(101), SeqResult::Stale);
        assert_eq!(t.observe(90), SeqResult::Stale);
        assert_eq!(t.observe(102), SeqResult::Next { lost: 0 });
    }

    #[test]
    fn sequence_wraps() {
        let mut t = SequenceTracker::new();
        t.observe(65534);
        assert_eq!(t.observe(65535), SeqResult::Next { lost: 0 });
        assert_eq!(t.observe(0), SeqResult::Next { lost: 0 });
        assert_eq!(t.observe(65535), SeqResult::Stale);
        assert_eq!(t.observe(3), SeqResult::Next { lost: 2 });
        // Across the wrap with a gap.
        let mut u = SequenceTracker::new();
        u.observe(65530);
        assert_eq!(u.observe(2), SeqResult::Next { lost: 7 });
    }

    #[test]
    fn sequence_large_forward_jump_is_resync() {
        let mut t = SequenceTracker::new();
        t.observe(1000);
        assert_eq!(t.observe(21000), SeqResult::Next { lost: 19999 });
        assert_eq!(t.observe(21001), SeqResult::Next { lost: 0 });
    }

    #[test]
    fn sequence_restart_behind_resyncs_after_two() {
        let mut t = SequenceTracker::new();
        t.observe(20000);
        t.observe(20001);
        // Sender restarted at 5: first packet dropped, second confirms.
        assert_eq!(t.observe(5), SeqResult::Stale);
        assert_eq!(t.observe(6), SeqResult::Next { lost: 1 });
        assert_eq!(t.observe(7), SeqResult::Next { lost: 0 });
        // A single far-behind stray does not resync.
        assert_eq!(t.observe(50000), SeqResult::Stale);
        assert_eq!(t.observe(8), SeqResult::Next { lost: 0 });
        assert_eq!(t.observe(50001), SeqResult::Stale);
    }

    #[test]
    fn unwrap_90k_and_wraparound() {
        let mut u = TimestampUnwrapper::new(90_000);
        let a = u.unwrap(u32::MAX - 5999);
        assert_eq!(a.ts_90k, i64::from(u32::MAX - 5999));
        let b = u.unwrap(u32::MAX - 2999);
        assert_eq!(b.ts_90k - a.ts_90k, 3000);
        let c = u.unwrap(0); // wrapped
        assert_eq!(c.ts_90k - b.ts_90k, 3000);
        assert!(!c.jumped);
        assert_eq!(c.ts_90k, 1i64 << 32);
    }

    #[test]
    fn unwrap_b_frames_go_back_a_little() {
        let mut u = TimestampUnwrapper::new(90_000);
        u.unwrap(100_000);
        let back = u.unwrap(94_000);
        assert!(!back.jumped);
        assert_eq!(back.ts_90k, 94_000);
    }

    #[test]
    fn unwrap_converts_other_clock_rates_exactly() {
        let mut u = TimestampUnwrapper::new(8000);
        let first = u.unwrap(8000);
        assert_eq!(first.ts_90k, 90_000);
        // 1/3 s steps do not drift: the conversion is of the total.
        let mut ts = 8000u32;
        let mut out = first.ts_90k;
        for _ in 0..3000 {
            ts = ts.wrapping_add(160); // 20 ms
            out = u.unwrap(ts).ts_90k;
        }
        assert_eq!(out, 90_000 + 3000 * 1800);
        let mut v = TimestampUnwrapper::new(44_100);
        v.unwrap(0);
        assert_eq!(v.unwrap(44_100).ts_90k, 90_000);
        assert_eq!(v.unwrap(44_101).ts_90k, 90_002); // floor(90000*44101/44100)
        let mut z = TimestampUnwrapper::new(0);
        assert_eq!(z.clock_rate(), 90_000);
        assert_eq!(z.unwrap(5).ts_90k, 5);
    }

    #[test]
    fn unwrap_rebases_on_jumps() {
        let mut u = TimestampUnwrapper::new(90_000);
        u.unwrap(1_000_000);
        u.unwrap(1_003_600); // 40 ms frame interval
        let fwd = u.unwrap(1_003_600 + 11 * 90_000);
        assert!(fwd.jumped);
        assert_eq!(fwd.ts_90k, 1_003_600 + 3600);
        let next = u.unwrap(1_003_600 + 11 * 90_000 + 3600);
        assert!(!next.jumped);
        assert_eq!(next.ts_90k, 1_003_600 + 7200);
        // Backwards by more than 1 s.
        let back = u.unwrap(5);
        assert!(back.jumped);
        assert_eq!(back.ts_90k, next.ts_90k + 3600);
        // Exactly 10 s forward is not a jump.
        let ok = u.unwrap(5 + 10 * 90_000);
        assert!(!ok.jumped);
        assert_eq!(ok.ts_90k, back.ts_90k + 900_000);
    }

    #[test]
    fn unwrap_jump_before_any_interval_uses_default_step() {
        let mut u = TimestampUnwrapper::new(90_000);
        u.unwrap(0);
        let j = u.unwrap(2_000_000_000);
        assert!(j.jumped);
        assert_eq!(j.ts_90k, DEFAULT_STEP_90K);
    }

    fn drain(b: &mut ReorderBuffer) -> Vec<(u16, u16)> {
        let mut out = Vec::new();
        while let Some((p, lost)) = b.pop() {
            out.push((RtpPacket::parse(p).unwrap().sequence, lost));
        }
        out
    }

    #[test]
    fn reorder_in_order() {
        let mut b = ReorderBuffer::new(8, 1500);
        for s in 1..=3 {
            b.push(&packet(s, b"x")).unwrap();
            let got = drain(&mut b);
            assert_eq!(got, vec![(s, 0)]);
        }
        assert!(b.is_empty());
        b.push(&packet(4, b"payload")).unwrap();
        let (bytes, lost) = b.pop().unwrap();
        assert_eq!(bytes, &packet(4, b"payload")[..]);
        assert_eq!(lost, 0);
    }

    #[test]
    fn reorder_within_window() {
        let mut b = ReorderBuffer::new(8, 1500);
        b.push(&packet(10, b"")).unwrap();
        assert_eq!(drain(&mut b), vec![(10, 0)]);
        b.push(&packet(12, b"")).unwrap();
        b.push(&packet(13, b"")).unwrap();
        assert_eq!(drain(&mut b), vec![]);
        assert!(b.is_waiting());
        b.push(&packet(11, b"")).unwrap();
        assert_eq!(drain(&mut b), vec![(11, 0), (12, 0), (13, 0)]);
        assert!(!b.is_waiting());
    }

    #[test]
    fn reorder_loss_forced() {
        let mut b = ReorderBuffer::new(8, 1500);
        b.push(&packet(1, b"")).unwrap();
        drain(&mut b);
        b.push(&packet(4, b"")).unwrap();
        b.push(&packet(5, b"")).unwrap();
        assert_eq!(drain(&mut b), vec![]);
        let (p, lost) = b.pop_forced().unwrap();
        assert_eq!(RtpPacket::parse(p).unwrap().sequence, 4);
        assert_eq!(lost, 2);
        assert_eq!(drain(&mut b), vec![(5, 0)]);
        assert!(b.pop_forced().is_none());
        // The late packets arrive after all: dropped.
        b.push(&packet(2, b"")).unwrap();
        b.push(&packet(3, b"")).unwrap();
        assert_eq!(drain(&mut b), vec![]);
        assert_eq!(b.stale_dropped(), 2);
    }

    #[test]
    fn reorder_duplicates_dropped() {
        let mut b = ReorderBuffer::new(8, 1500);
        b.push(&packet(1, b"")).unwrap();
        drain(&mut b);
        b.push(&packet(3, b"a")).unwrap();
        b.push(&packet(3, b"b")).unwrap(); // duplicate in the window
        b.push(&packet(1, b"")).unwrap(); // duplicate already released
        b.push(&packet(2, b"")).unwrap();
        assert_eq!(drain(&mut b), vec![(2, 0), (3, 0)]);
        assert_eq!(b.stale_dropped(), 2);
    }

    #[test]
    fn reorder_wraparound() {
        let mut b = ReorderBuffer::new(5, 1500);
        b.push(&packet(65533, b"")).unwrap();
        assert_eq!(drain(&mut b), vec![(65533, 0)]);
        b.push(&packet(0, b"")).unwrap();
        b.push(&packet(65535, b"")).unwrap();
        b.push(&packet(1, b"")).unwrap();
        assert_eq!(drain(&mut b), vec![]);
        b.push(&packet(65534, b"")).unwrap();
        assert_eq!(drain(&mut b), vec![(65534, 0), (65535, 0), (0, 0), (1, 0)]);
    }

    #[test]
    fn reorder_full_buffer_declares_gap_lost() {
        let mut b = ReorderBuffer::new(4, 1500);
        b.push(&packet(100, b"")).unwrap();
        drain(&mut b);
        // 101 is lost; 102..=104 wait in the window.
        for s in 102..=104 {
            b.push(&packet(s, b"")).unwrap();
            assert_eq!(drain(&mut b), vec![]);
        }
        // 105 does not fit in a window starting at 101: full.
        b.push(&packet(105, b"")).unwrap();
        assert_eq!(drain(&mut b), vec![(102, 1), (103, 0), (104, 0), (105, 0)]);
        assert!(b.is_empty());
        b.push(&packet(106, b"")).unwrap();
        assert_eq!(drain(&mut b), vec![(106, 0)]);
    }

    #[test]
    fn reorder_big_forward_jump() {
        let mut b = ReorderBuffer::new(4, 1500);
        b.push(&packet(10, b"")).unwrap();
        drain(&mut b);
        b.push(&packet(12, b"")).unwrap();
        b.push(&packet(30010, b"")).unwrap();
        assert_eq!(drain(&mut b), vec![(12, 1), (30010, 29997)]);
        b.push(&packet(30011, b"")).unwrap();
        assert_eq!(drain(&mut b), vec![(30011, 0)]);
    }

    #[test]
    fn reorder_refuses_push_when_not_drained() {
        let mut b = ReorderBuffer::new(2, 1500);
        b.push(&packet(1, b"")).unwrap();
        drain(&mut b);
        b.push(&packet(3, b"")).unwrap();
        b.push(&packet(9, b"")).unwrap(); // parked
        assert!(b.push(&packet(10, b"")).is_err());
        assert_eq!(drain(&mut b), vec![(3, 1), (9, 5)]);
        b.push(&packet(10, b"")).unwrap();
        assert_eq!(drain(&mut b), vec![(10, 0)]);
    }

    #[test]
    fn reorder_rejects_oversize_and_garbage() {
        let mut b = ReorderBuffer::new(4, 20);
        assert!(b.push(&packet(1, &[0; 9])).is_err());
        assert!(b.push(&[1, 2, 3]).is_err());
        assert!(b.is_empty());
        b.push(&packet(1, &[0; 8])).unwrap();
        assert_eq!(drain(&mut b), vec![(1, 0)]);
    }

    #[test]
    fn reorder_sender_restart() {
        let mut b = ReorderBuffer::new(8, 1500);
        b.push(&packet(20000, b"")).unwrap();
        drain(&mut b);
        b.push(&packet(7, b"")).unwrap();
        assert_eq!(drain(&mut b), vec![]);
        b.push(&packet(8, b"")).unwrap();
        assert_eq!(drain(&mut b), vec![(8, 1)]);
        b.push(&packet(9, b"")).unwrap();
        assert_eq!(drain(&mut b), vec![(9, 0)]);
    }

    #[test]
    fn reorder_clamps_sizes() {
        let mut b = ReorderBuffer::new(0, 0);
        b.push(&packet(1, b"")).unwrap();
        assert_eq!(drain(&mut b), vec![(1, 0)]);
        b.push(&packet(3, b"")).unwrap(); // does not fit a 1-slot window
        assert_eq!(drain(&mut b), vec![(3, 1)]);
    }
}
