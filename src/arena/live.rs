//! Live viewers of a ring: any number of readers, on any threads, that copy
//! recent frames out of a stream's ring without ever holding the producer
//! or the writer back.
//!
//! A viewer holds a [`LiveCursor`], the position of the next record it
//! wants. [`LiveTap::read`] copies that frame out (the frame stays in the
//! ring for the writer) and moves the cursor on. Frames the writer has
//! already persisted and released stay readable until the producer writes
//! over them, so a viewer sees the last ring-full of video whether or not
//! the stream is recorded. When the frame under the cursor was overwritten
//! because the viewer fell a whole ring behind, `read` answers
//! [`LiveRead::Overrun`] and the viewer starts again at
//! [`LiveTap::latest_key`]. A slow viewer therefore skips to the next key
//! frame instead of growing memory: what it holds is one frame.
//!
//! The price on the recording path: the producer takes the ring's `live`
//! mutex while it copies a frame in (uncontended unless a viewer is
//! copying a frame out at that moment, a few microseconds), and wakes
//! waiting viewers only when there are some.

use super::ring::Ring;
use super::FrameMeta;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Read access to one stream's ring for live viewers. Cheap to clone.
#[derive(Clone)]
pub struct LiveTap {
    ring: Arc<Ring>,
}

/// A viewer's place in the ring: the next frame it will read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveCursor(u64);

/// What [`LiveTap::read`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiveRead {
    /// The frame was copied into the caller's buffers; the cursor is on the
    /// frame after it. `gap_before`: frames were dropped just before it.
    Frame { meta: FrameMeta, gap_before: bool },
    /// No new frame arrived within the timeout; the cursor is unchanged.
    Timeout,
    /// The frame under the cursor was overwritten (the viewer fell a whole
    /// ring behind): start again from [`LiveTap::latest_key`].
    Overrun,
}

impl LiveTap {
    pub(super) fn new(ring: Arc<Ring>) -> LiveTap {
        LiveTap { ring }
    }

    /// Whether both taps read the same ring (a restarted stream keeps its
    /// ring).
    pub fn same_ring(&self, other: &LiveTap) -> bool {
        Arc::ptr_eq(&self.ring, &other.ring)
    }

    /// A cursor on the newest key frame still in the ring, if any.
    pub fn latest_key(&self) -> Option<LiveCursor> {
        let live = self.ring.lock_live();
        let at = live.last_key?;
        (live.head - at <= u64::from(self.ring.cap())).then_some(LiveCursor(at))
    }

    /// A cursor on the next frame to be stored: for a viewer that waits
    /// for the next key frame rather than starting from an older one.
    pub fn newest(&self) -> LiveCursor {
        LiveCursor(self.ring.lock_live().head)
    }

    /// The codec parameters in force from the newest key frame on, as
    /// `store::format::encode_params` wrote them, copied into `out`
    /// (cleared first). False when the stream has stored no parameters
    /// yet. The first frame a viewer reads may carry the same parameters
    /// again as its `extra`.
    pub fn params(&self, out: &mut Vec<u8>) -> bool {
        let live = self.ring.lock_live();
        out.clear();
        out.extend_from_slice(&live.params);
        !out.is_empty()
    }

    /// Copies the frame under `cursor` into `data` (and, when it carries
    /// new codec parameters, those into `extra`; else `extra` is left
    /// empty), both cleared first, and moves the cursor past it. Waits at
    /// most `timeout` for a frame to arrive when the cursor is at the
    /// newest end. Frames longer than half the ring do not exist, so `data`
    /// never grows beyond that.
    pub fn read(
        &self,
        cursor: &mut LiveCursor,
        extra: &mut Vec<u8>,
        data: &mut Vec<u8>,
        timeout: Duration,
    ) -> LiveRead {
        let deadline = Instant::now() + timeout;
        let mut live = Some(self.ring.lock_live());
        loop {
            let Some(state) = live.as_deref() else {
                return LiveRead::Timeout;
            };
            if cursor.0 > state.head || state.head - cursor.0 > u64::from(self.ring.cap()) {
                extra.clear();
                data.clear();
                return LiveRead::Overrun;
            }
            if cursor.0 < state.head {
                return match self.ring.copy_out(state, cursor.0, extra, data) {
                    Some((header, next)) => {
                        cursor.0 = next;
                        LiveRead::Frame {
                            meta: header.meta(),
                            gap_before: header.gap_before(),
                        }
                    }
                    // The ring would be corrupt; treat it as lost.
                    None => LiveRead::Overrun,
                };
            }
            if !self.ring.wait_arrival(&mut live, deadline) {
                extra.clear();
                data.clear();
                return LiveRead::Timeout;
            }
        }
    }

    /// Frames stored in the ring since the start (wrapping): lets a viewer
    /// count what it skipped.
    pub fn frames_stored(&self) -> u32 {
        self.ring.frames_stored()
    }

    /// The ring's counters: its size and the bytes unreleased frames hold,
    /// for the status page's arena use.
    pub fn stats(&self) -> super::RingStats {
        self.ring.stats()
    }
}
