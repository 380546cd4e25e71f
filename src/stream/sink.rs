//! Where a stream's frames go: the contract between the RTSP session that
//! produces frames and what keeps them (the arena ring of a recorded
//! stream, or nothing for a stream only watched live).

use super::Frame;
use crate::arena::{RingReader, RingWriter};

/// Where a stream's frames go. Called on the stream's own thread, once per
/// frame, with bytes that are only valid during the call.
pub trait FrameSink: Send {
    fn frame(&mut self, frame: &Frame<'_>);

    /// The stream broke (reconnect, timestamp jump): the next frame does
    /// not continue the previous one, and must start a new recording.
    fn discontinuity(&mut self) {}

    /// The sink's ring ends, when it writes into a ring: the producer end,
    /// and the consumer end when the sink holds it itself (a stream only
    /// viewers watch). Lets a restarted stream keep its ring.
    fn into_rings(self: Box<Self>) -> Option<(RingWriter, Option<RingReader>)> {
        None
    }
}

/// A sink that keeps nothing, for streams that are not recorded (a sub
/// stream kept for live viewing): the stream status still counts frames.
pub struct DiscardSink;

impl FrameSink for DiscardSink {
    fn frame(&mut self, _frame: &Frame<'_>) {}
}
