//! The per-frame sample index of a recording (`recording.video_index`):
//! Moonfire NVR's `video_index` encoding, so that the index stays about two
//! bytes per frame and an `.mp4` sample table can be built from it alone.
//!
//! Each frame is two varints (LEB128, as protobuf):
//!
//! 1. `zigzag(duration - previous duration) << 1 | is_key`;
//! 2. `zigzag(bytes - previous bytes of the same kind)`, where "same kind"
//!    means the previous key frame for a key frame and the previous non-key
//!    frame for a non-key frame.
//!
//! The previous duration and both previous sizes start at 0. Deltas against
//! the same kind keep the values near zero: key frames are large, the
//! frames between them small, and each is close to its own kind's last.
//!
//! Deltas are computed in 64 bits, so any pair of `i32` values encodes
//! exactly (for the non-negative values real frames have, the bytes are
//! those Moonfire writes). The decoder is stricter than the encoder needs:
//! it rejects truncated, over-long or non-minimal varints, values that do
//! not fit an `i32`, and negative durations or sizes. Since every varint it
//! accepts is minimal, a blob that decodes re-encodes to the same bytes.

use std::fmt;
use std::iter::FusedIterator;

/// Builds a `video_index` blob frame by frame. `clear()` keeps the buffer,
/// so one encoder per stream allocates only while its first recordings grow.
#[derive(Clone, Debug, Default)]
pub struct VideoIndexEncoder {
    buf: Vec<u8>,
    prev_duration: i32,
    prev_bytes_key: i32,
    prev_bytes_nonkey: i32,
    frames: u32,
    key_frames: u32,
}

impl VideoIndexEncoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// An encoder whose buffer already holds `frames` typical frames
    /// (about 3 bytes each), to avoid reallocation while a recording grows.
    pub fn with_capacity_frames(frames: usize) -> Self {
        VideoIndexEncoder {
            buf: Vec::with_capacity(frames.saturating_mul(3)),
            ..Self::default()
        }
    }

    /// Appends one frame. Real frames have `duration_90k >= 0` and
    /// `bytes >= 0`; a negative value is encoded as given, but `decode`
    /// reports it as an error.
    pub fn push(&mut self, duration_90k: i32, bytes: i32, key: bool) {
        let duration_delta = i64::from(duration_90k) - i64::from(self.prev_duration);
        let prev_bytes = if key {
            &mut self.prev_bytes_key
        } else {
            &mut self.prev_bytes_nonkey
        };
        let bytes_delta = i64::from(bytes) - i64::from(*prev_bytes);
        *prev_bytes = bytes;
        self.prev_duration = duration_90k;
        // |delta| < 2^32, so the zigzag value is < 2^33 and the shift
        // cannot lose a bit.
        put_varint(
            &mut self.buf,
            (zigzag(duration_delta) << 1) | u64::from(key),
        );
        put_varint(&mut self.buf, zigzag(bytes_delta));
        self.frames = self.frames.saturating_add(1);
        if key {
            self.key_frames = self.key_frames.saturating_add(1);
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Forgets every frame (for the next recording), keeping the buffer.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.prev_duration = 0;
        self.prev_bytes_key = 0;
        self.prev_bytes_nonkey = 0;
        self.frames = 0;
        self.key_frames = 0;
    }

    /// Frames pushed since `new()` or `clear()`.
    pub fn frames(&self) -> u32 {
        self.frames
    }

    /// Key frames pushed since `new()` or `clear()`.
    pub fn key_frames(&self) -> u32 {
        self.key_frames
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// One frame as the index describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexFrame {
    pub duration_90k: i32,
    pub bytes: i32,
    pub key: bool,
}

/// Why a blob is not a valid index; `offset` is where the bad frame starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VideoIndexError {
    /// The blob ends inside a frame.
    Truncated { offset: usize },
    /// A varint longer than 64 bits, or not in its shortest form.
    BadVarint { offset: usize },
    /// A duration or size that does not fit an `i32`.
    Overflow { offset: usize },
    /// A negative duration or size.
    Negative { offset: usize },
}

impl fmt::Display for VideoIndexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VideoIndexError::Truncated { offset } => {
                write!(f, "video index truncated in the frame at byte {offset}")
            }
            VideoIndexError::BadVarint { offset } => {
                write!(
                    f,
                    "video index has a malformed varint in the frame at byte {offset}"
                )
            }
            VideoIndexError::Overflow { offset } => write!(
                f,
                "video index frame at byte {offset} has a duration or size out of range"
            ),
            VideoIndexError::Negative { offset } => write!(
                f,
                "video index frame at byte {offset} has a negative duration or size"
            ),
        }
    }
}

impl std::error::Error for VideoIndexError {}

/// Iterates over the frames of a `video_index` blob. Each frame consumes at
/// least two bytes, so the iteration is bounded by the blob's length; it
/// ends after the first error.
pub fn decode(blob: &[u8]) -> VideoIndexIter<'_> {
    VideoIndexIter {
        data: blob,
        pos: 0,
        prev_duration: 0,
        prev_bytes_key: 0,
        prev_bytes_nonkey: 0,
        failed: false,
    }
}

#[derive(Clone, Debug)]
pub struct VideoIndexIter<'a> {
    data: &'a [u8],
    pos: usize,
    prev_duration: i32,
    prev_bytes_key: i32,
    prev_bytes_nonkey: i32,
    failed: bool,
}

impl VideoIndexIter<'_> {
    /// Bytes of the blob taken by the frames decoded so far (a failed frame
    /// does not count).
    pub fn position(&self) -> usize {
        self.pos
    }

    fn next_frame(&mut self) -> Result<IndexFrame, VideoIndexError> {
        let offset = self.pos;
        let mut pos = self.pos;
        let first = read_varint(self.data, &mut pos, offset)?;
        let second = read_varint(self.data, &mut pos, offset)?;
        let key = first & 1 == 1;
        let duration = add_delta(self.prev_duration, unzigzag(first >> 1), offset)?;
        let prev_bytes = if key {
            self.prev_bytes_key
        } else {
            self.prev_bytes_nonkey
        };
        let bytes = add_delta(prev_bytes, unzigzag(second), offset)?;
        if duration < 0 || bytes < 0 {
            return Err(VideoIndexError::Negative { offset });
        }
        self.pos = pos;
        self.prev_duration = duration;
        if key {
            self.prev_bytes_key = bytes;
        } else {
            self.prev_bytes_nonkey = bytes;
        }
        Ok(IndexFrame {
            duration_90k: duration,
            bytes,
            key,
        })
    }
}

impl Iterator for VideoIndexIter<'_> {
    type Item = Result<IndexFrame, VideoIndexError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.data.len() {
            return None;
        }
        let r = self.next_frame();
        self.failed = r.is_err();
        Some(r)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.failed {
            return (0, Some(0));
        }
        let left = self.data.len().saturating_sub(self.pos);
        (usize::from(left > 0), Some(left.div_ceil(2)))
    }
}

impl FusedIterator for VideoIndexIter<'_> {}

/// Totals of a whole index, as the `recording` row repeats them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IndexTotals {
    pub frames: u32,
    pub key_frames: u32,
    pub duration_90k: i64,
    pub bytes: u64,
}

/// Decodes a whole blob and sums it (for `check`, and to validate a row).
pub fn totals(blob: &[u8]) -> Result<IndexTotals, VideoIndexError> {
    let mut t = IndexTotals::default();
    for f in decode(blob) {
        let f = f?;
        // Frames are at least two bytes each and a blob is far below 8 GiB,
        // so these sums cannot overflow; saturate rather than trust that.
        t.frames = t.frames.saturating_add(1);
        t.key_frames = t.key_frames.saturating_add(u32::from(f.key));
        t.duration_90k = t.duration_90k.saturating_add(i64::from(f.duration_90k));
        t.bytes = t.bytes.saturating_add(u64::from(f.bytes.unsigned_abs()));
    }
    Ok(t)
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn add_delta(prev: i32, delta: i64, offset: usize) -> Result<i32, VideoIndexError> {
    i64::from(prev)
        .checked_add(delta)
        .and_then(|v| i32::try_from(v).ok())
        .ok_or(VideoIndexError::Overflow { offset })
}

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Reads one minimal LEB128 varint of at most 64 bits at `*pos`.
fn read_varint(data: &[u8], pos: &mut usize, frame: usize) -> Result<u64, VideoIndexError> {
    let mut v: u64 = 0;
    for i in 0..10u32 {
        let Some(&b) = data.get(*pos) else {
            return Err(VideoIndexError::Truncated { offset: frame });
        };
        *pos += 1;
        let low = u64::from(b & 0x7f);
        // The tenth byte holds bit 63 only.
        if i == 9 && low > 1 {
            return Err(VideoIndexError::BadVarint { offset: frame });
        }
        v |= low << (7 * i);
        if b & 0x80 == 0 {
            // A trailing zero byte adds nothing: the shortest form has none.
            if i > 0 && b == 0 {
                return Err(VideoIndexError::BadVarint { offset: frame });
            }
            return Ok(v);
        }
    }
    Err(VideoIndexError::BadVarint { offset: frame })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of Moonfire NVR's schema document
    /// (design/schema.md, "video_index"). Its table gives `varint1` = 3 for
    /// frame 4, but frame 4 is not a key frame, so the value is
    /// `zigzag(-1) << 1 | 0` = 2, which is what its "encoded" row shows.
    #[test]
    fn moonfire_example() {
        let frames = [
            (10, 1000, true),
            (9, 10, false),
            (11, 15, false),
            (10, 12, false),
            (10, 1050, true),
        ];
        let mut e = VideoIndexEncoder::new();
        for &(d, b, k) in &frames {
            e.push(d, b, k);
        }
        let expected = [
            0x29, 0xd0, 0x0f, 0x02, 0x14, 0x08, 0x0a, 0x02, 0x05, 0x01, 0x64,
        ];
        assert_eq!(e.as_bytes(), &expected[..]);
        assert_eq!(e.frames(), 5);
        assert_eq!(e.key_frames(), 2);
        let decoded: Vec<IndexFrame> = decode(&expected).collect::<Result<_, _>>().unwrap();
        let want: Vec<IndexFrame> = frames
            .iter()
            .map(|&(d, b, k)| IndexFrame {
                duration_90k: d,
                bytes: b,
                key: k,
            })
            .collect();
        assert_eq!(decoded, want);
        assert_eq!(
            totals(&expected).unwrap(),
            IndexTotals {
                frames: 5,
                key_frames: 2,
                duration_90k: 50,
                bytes: 2087
            }
        );
        e.clear();
        assert!(e.is_empty());
        e.push(10, 1000, true);
        assert_eq!(e.as_bytes(), &expected[..3]);
    }

    /// xorshift64*: deterministic, no dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn roundtrip(frames: &[IndexFrame]) {
        let mut e = VideoIndexEncoder::new();
        for f in frames {
            e.push(f.duration_90k, f.bytes, f.key);
        }
        let mut it = decode(e.as_bytes());
        let back: Vec<IndexFrame> = it.by_ref().collect::<Result<_, _>>().unwrap();
        assert_eq!(back, frames);
        assert_eq!(it.position(), e.as_bytes().len());
    }

    #[test]
    fn random_roundtrips() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..300 {
            let n = rng.below(400) as usize;
            let frames: Vec<IndexFrame> = (0..n)
                .map(|i| {
                    let key = i % 30 == 0 || rng.below(50) == 0;
                    // Mostly camera-like values, sometimes the extremes.
                    let (duration, bytes) = match rng.below(10) {
                        0 => (rng.below(1 << 31) as i32, rng.below(1 << 31) as i32),
                        1 => (i32::MAX, 0),
                        2 => (0, i32::MAX),
                        _ => (
                            2900 + rng.below(400) as i32,
                            if key { 60_000 } else { 4000 } + rng.below(5000) as i32,
                        ),
                    };
                    IndexFrame {
                        duration_90k: duration,
                        bytes,
                        key,
                    }
                })
                .collect();
            roundtrip(&frames);
            if round == 0 {
                roundtrip(&[]);
            }
        }
    }

    #[test]
    fn typical_size_is_about_two_bytes_a_frame() {
        let mut e = VideoIndexEncoder::with_capacity_frames(1800);
        for i in 0..1800 {
            let key = i % 60 == 0;
            e.push(
                3000 + (i % 3) - 1,
                if key { 80_000 } else { 5000 } + i % 40,
                key,
            );
        }
        assert!(e.as_bytes().len() < 1800 * 3, "{}", e.as_bytes().len());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        // Truncated: first varint continues past the end.
        assert_eq!(
            decode(&[0x80]).next(),
            Some(Err(VideoIndexError::Truncated { offset: 0 }))
        );
        // Truncated: second varint missing.
        assert_eq!(
            decode(&[0x29]).next(),
            Some(Err(VideoIndexError::Truncated { offset: 0 }))
        );
        // Eleven continuation bytes.
        assert_eq!(
            decode(&[0xff; 11]).next(),
            Some(Err(VideoIndexError::BadVarint { offset: 0 }))
        );
        // Non-minimal zero.
        assert_eq!(
            decode(&[0x80, 0x00, 0x00]).next(),
            Some(Err(VideoIndexError::BadVarint { offset: 0 }))
        );
        // Duration 2^31 overflows an i32: zigzag = 2^32, shifted = 2^33.
        let mut b = Vec::new();
        put_varint(&mut b, zigzag(1 << 31) << 1);
        put_varint(&mut b, 0);
        assert_eq!(
            decode(&b).next(),
            Some(Err(VideoIndexError::Overflow { offset: 0 }))
        );
        // Largest varint (u64::MAX) decodes as a value, then overflows.
        let mut b = vec![0xff; 9];
        b.push(0x01);
        b.push(0x00);
        assert_eq!(
            decode(&b).next(),
            Some(Err(VideoIndexError::Overflow { offset: 0 }))
        );
        // A negative duration, after one good frame; the iterator stops.
        let mut e = VideoIndexEncoder::new();
        e.push(10, 10, true);
        e.push(-1, 10, true);
        e.push(10, 10, true);
        let mut it = decode(e.as_bytes());
        assert!(it.next().unwrap().is_ok());
        assert_eq!(
            it.next(),
            Some(Err(VideoIndexError::Negative { offset: 2 }))
        );
        assert_eq!(it.position(), 2);
        assert_eq!(it.next(), None);
        assert!(totals(e.as_bytes()).is_err());
        // Every two-byte input: never panics, and re-encodes exactly when
        // it decodes.
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let data = [a, b];
                let mut it = decode(&data);
                let mut e = VideoIndexEncoder::new();
                for f in it.by_ref().map_while(Result::ok) {
                    e.push(f.duration_90k, f.bytes, f.key);
                }
                assert_eq!(e.as_bytes(), &data[..it.position()]);
            }
        }
    }
}
