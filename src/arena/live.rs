//! Live viewers of a ring: any number of readers, on any threads, that copy
//! recent frames out of a stream's ring without ever holding the producer
//! or the writer back. (STUB: the API is final, the implementation lands
//! next.)
//!
//! A viewer holds a [`LiveCursor`], the position of the next record it
//! wants. [`LiveTap::read`] copies that frame out (the frame stays in the
//! ring for the writer) and moves the cursor on; when the frame was already
//! overwritten because the viewer fell a whole ring behind, it answers
//! [`LiveRead::Overrun`] and the viewer starts again at
//! [`LiveTap::latest_key`]. A slow viewer therefore skips to the next key
//! frame instead of growing memory: what it holds is one frame.

use super::FrameMeta;
use std::time::Duration;

/// Read access to one stream's ring for live viewers. Cheap to clone.
#[derive(Clone)]
pub struct LiveTap {
    _private: (),
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
    pub(super) fn stub() -> LiveTap {
        LiveTap { _private: () }
    }

    /// A cursor on the newest key frame still in the ring, if any.
    pub fn latest_key(&self) -> Option<LiveCursor> {
        None
    }

    /// The codec parameters in force from the newest key frame on, as
    /// `store::format::encode_params` wrote them, copied into `out`
    /// (cleared first). False when the stream has stored no frame yet.
    pub fn params(&self, out: &mut Vec<u8>) -> bool {
        out.clear();
        false
    }

    /// Copies the frame under `cursor` into `data` (and, when it carries
    /// new codec parameters, those into `extra`; else `extra` is left
    /// empty), both cleared first, and moves the cursor past it. Waits at
    /// most `timeout` for a frame to arrive when the cursor is at the
    /// newest end. Frames longer than the ring's `max_frame_len` do not
    /// exist, so `data` never grows beyond that.
    pub fn read(
        &self,
        _cursor: &mut LiveCursor,
        extra: &mut Vec<u8>,
        data: &mut Vec<u8>,
        timeout: Duration,
    ) -> LiveRead {
        extra.clear();
        data.clear();
        std::thread::sleep(timeout);
        LiveRead::Timeout
    }

    /// Frames stored in the ring since the start (wrapping): lets a viewer
    /// count what it skipped.
    pub fn frames_stored(&self) -> u32 {
        0
    }
}
