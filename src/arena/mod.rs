//! The arena: one allocation made at start (`memory.arena_mb`), carved into
//! one byte ring per stream. Frames are written into their stream's ring
//! once, by the stream's thread; the writer thread persists them from there.
//!
//! Each ring is single-producer single-consumer. The stream thread
//! ([`RingWriter`]) copies whole frames in with [`RingWriter::push`]; the
//! writer thread ([`RingReader`]) looks at them in place with
//! [`RingReader::peek`] (so it can `pwrite` straight from the ring) and frees
//! them with [`RingReader::release`]. The network reader must never wait on
//! the disk, so `push` never blocks: when a ring is full the frame is
//! dropped, and the ring keeps dropping until the next key frame (a decoder
//! cannot use the rest of a GOP whose start is missing). The first frame
//! stored after drops carries `gap_before`.
//!
//! # Layout of a ring
//!
//! Records are packed back to back, each 8-byte aligned:
//!
//! ```text
//! 0   u32 kind (FRAME)      4  u32 flags (key, discontinuity, gap_before)
//! 8   u32 extra length      12 u32 data length
//! 16  i64 timestamp_90k     24 i64 wall_90k
//! 32  extra bytes, then data bytes, then zero to seven bytes of padding
//! ```
//!
//! A record never straddles the ring's end, so a frame's data is one
//! contiguous slice: when a record does not fit before the end, the producer
//! writes a WRAP marker (a `kind` word) where it would have gone and puts the
//! record at offset 0. Offsets are `u32` (a ring is under 2 GiB) and every
//! shared counter is an `AtomicU32`: 32-bit MIPS has no 64-bit atomics.
//!
//! # Protocol
//!
//! The bytes from `tail` (written by the consumer) up to the producer's
//! `head` are owned by the consumer; the rest is owned by the producer.
//! `head == tail` means empty, so the producer never fills a ring to the
//! last byte. The producer writes a record into its own space, then
//! publishes it by storing the count of stored frames with `Release`; the
//! consumer reads that count with `Acquire` and reads only that many
//! records. The consumer gives space back by storing the new `tail` with
//! `Release`; the producer loads it with `Acquire` before writing there.
//! A record at most half the ring long always fits into an empty ring,
//! wherever `head` happens to be; a longer one can never be stored.

mod buffer;
mod live;
mod reader;
mod ring;
mod writer;

#[cfg(test)]
mod tests;

pub use live::{LiveCursor, LiveRead, LiveTap};
pub use reader::{FrameView, Frames, RingReader};
pub use writer::RingWriter;

use std::fmt;

/// The smallest ring: a stream's ring holds at least a few frames of a
/// low-bitrate stream.
pub const MIN_RING_BYTES: usize = 64 * 1024;

/// The largest ring: offsets are `u32` and stay below 2 GiB, so that
/// `offset + record length` never overflows.
pub const MAX_RING_BYTES: usize = (1 << 31) - 8;

/// What the arena knows about a frame besides its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameMeta {
    /// Media time, 90 kHz (the camera's clock, unwrapped).
    pub timestamp_90k: i64,
    /// Wall-clock time of arrival, 90 kHz units since the Unix epoch.
    pub wall_90k: i64,
    /// A key frame: decoding can start here.
    pub key: bool,
    /// The stream broke before this frame; the recording must end before it.
    pub discontinuity: bool,
}

/// What [`RingWriter::push`] did with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Push {
    Stored,
    Dropped,
}

/// A ring's counters, readable from both ends. The counters wrap at 2^32.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingStats {
    /// The ring's size in bytes.
    pub capacity: u32,
    /// Bytes held by unreleased frames (and the padding between them).
    pub used: u32,
    pub frames_stored: u32,
    pub frames_dropped: u32,
    /// How many times the ring started dropping (one per run of drops).
    pub drop_events: u32,
}

/// Why the arena could not be carved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArenaError {
    /// The arena cannot give every stream its minimum ring.
    TooSmall {
        total_bytes: usize,
        rings: usize,
        needed_bytes: usize,
    },
    /// The system refused the allocation.
    OutOfMemory { bytes: usize },
}

impl fmt::Display for ArenaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ArenaError::TooSmall {
                total_bytes,
                rings,
                needed_bytes,
            } => write!(
                f,
                "arena of {total_bytes} bytes is too small for {rings} streams: \
                 each needs a ring of at least {} KiB, {needed_bytes} bytes in all \
                 (raise memory.arena_mb)",
                MIN_RING_BYTES / 1024
            ),
            ArenaError::OutOfMemory { bytes } => {
                write!(f, "cannot allocate the arena ({bytes} bytes)")
            }
        }
    }
}

impl std::error::Error for ArenaError {}

/// Makes the arena: one allocation split into one ring per weight, each
/// ring's size proportional to its weight but at least [`MIN_RING_BYTES`]
/// (and at most [`MAX_RING_BYTES`]). Ring sizes are multiples of 8; the
/// allocation is their sum, at most `total_bytes`. Weights that are all zero
/// share equally. The arena is freed when the last ring end is dropped.
pub fn carve(
    total_bytes: usize,
    weights: &[u32],
) -> Result<Vec<(RingWriter, RingReader)>, ArenaError> {
    carve_arena(total_bytes, weights).map(|(_, rings)| rings)
}

/// [`carve`], keeping a handle on the arena for rings made later (cameras
/// added while recording) from the regions of rings no longer used.
pub fn carve_arena(
    total_bytes: usize,
    weights: &[u32],
) -> Result<(Arena, Vec<(RingWriter, RingReader)>), ArenaError> {
    let sizes = ring_sizes(total_bytes, weights)?;
    let (buf, rings) = ring::build(&sizes)?;
    Ok((Arena { buf }, rings))
}

/// The arena's allocation, after it was carved: a ring whose ends and taps
/// are all dropped (its stream stopped, its viewers gone) gives its region
/// back, and [`Arena::ring`] makes new rings there. Holding this keeps the
/// allocation alive even when no ring is left.
#[derive(Clone, Default)]
pub struct Arena {
    buf: Option<std::sync::Arc<buffer::Buffer>>,
}

impl Arena {
    /// A ring of about `want` bytes from free regions of the arena: the
    /// smallest region that holds `want`, else the largest of at least
    /// `want / 2` (and [`MIN_RING_BYTES`]). `None` when no region fits.
    pub fn ring(&self, want: usize) -> Option<(RingWriter, RingReader)> {
        let want = want.clamp(MIN_RING_BYTES, MAX_RING_BYTES) & !7;
        let min = (want / 2).max(MIN_RING_BYTES);
        ring::reuse(self.buf.as_ref()?, want, min)
    }

    /// Locks the arena in memory (`mlock`): with swap on, the frames that
    /// are being recorded never page out. Needs root or RLIMIT_MEMLOCK.
    pub fn lock_in_memory(&self) -> std::io::Result<()> {
        match &self.buf {
            Some(b) => b.lock_in_memory(),
            None => Ok(()),
        }
    }

    /// Bytes of the arena no ring uses now.
    pub fn free_bytes(&self) -> usize {
        self.buf.as_ref().map_or(0, |b| b.free_bytes())
    }
}

/// The size [`carve`] would give ring `index` of rings with these
/// `weights` in an arena of `total_bytes`; at least [`MIN_RING_BYTES`]
/// even when the arena could not hold them all.
pub fn share(total_bytes: usize, weights: &[u32], index: usize) -> usize {
    ring_sizes(total_bytes, weights)
        .ok()
        .and_then(|s| s.get(index).copied())
        .unwrap_or(MIN_RING_BYTES)
}

/// The size of each ring: water-filling, so that rings whose proportional
/// share is under the minimum get the minimum and the others share the rest
/// in proportion to their weights.
fn ring_sizes(total_bytes: usize, weights: &[u32]) -> Result<Vec<usize>, ArenaError> {
    let n = weights.len();
    let needed = n.checked_mul(MIN_RING_BYTES);
    if needed.is_none_or(|needed| needed > total_bytes) {
        return Err(ArenaError::TooSmall {
            total_bytes,
            rings: n,
            needed_bytes: needed.unwrap_or(usize::MAX),
        });
    }
    // `None`: still shared in proportion; `Some`: pinned to the minimum.
    let mut sizes: Vec<Option<usize>> = vec![None; n];
    loop {
        let pinned = sizes.iter().filter(|s| s.is_some()).count();
        // Cannot underflow: total_bytes >= n * MIN_RING_BYTES.
        let remaining = (total_bytes - pinned * MIN_RING_BYTES) as u128;
        let free: Vec<usize> = (0..n).filter(|&i| sizes[i].is_none()).collect();
        let weight_sum: u128 = free.iter().map(|&i| u128::from(weights[i])).sum();
        let share = |i: usize| -> usize {
            // All weights zero: equal shares.
            let s = (remaining * u128::from(weights[i]))
                .checked_div(weight_sum)
                .unwrap_or(remaining / free.len() as u128);
            // A share never exceeds `remaining`, itself a usize.
            s as usize
        };
        let small: Vec<usize> = free
            .iter()
            .copied()
            .filter(|&i| share(i) < MIN_RING_BYTES)
            .collect();
        if small.is_empty() {
            return Ok((0..n)
                .map(|i| {
                    let s = sizes[i].unwrap_or_else(|| share(i));
                    s.min(MAX_RING_BYTES) & !7
                })
                .collect());
        }
        for i in small {
            sizes[i] = Some(MIN_RING_BYTES);
        }
    }
}
