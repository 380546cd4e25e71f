//! A tiny ISO BMFF box writer: big-endian integers appended to a byte
//! vector, and boxes whose 32-bit size is patched in when they are closed.
//!
//! Only the `moov` (and the small boxes around it) are written this way; the
//! `mdat` payload is never materialised.

/// Appends big-endian fields and nested boxes to a byte vector.
#[derive(Default)]
pub(crate) struct BoxWriter {
    pub buf: Vec<u8>,
}

/// An open box: where its size field lies. Closed by [`BoxWriter::end`].
#[must_use = "a box must be closed with BoxWriter::end"]
pub(crate) struct OpenBox(usize);

impl BoxWriter {
    pub fn with_capacity(n: usize) -> Self {
        BoxWriter {
            buf: Vec::with_capacity(n),
        }
    }

    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    /// `n` zero bytes (reserved fields).
    pub fn zeros(&mut self, n: usize) {
        self.buf.resize(self.buf.len() + n, 0);
    }

    /// Opens a plain box; its size is written by [`end`](Self::end).
    pub fn begin(&mut self, fourcc: &[u8; 4]) -> OpenBox {
        let at = self.buf.len();
        self.u32(0);
        self.bytes(fourcc);
        OpenBox(at)
    }

    /// Opens a full box (version and 24-bit flags after the type).
    pub fn begin_full(&mut self, fourcc: &[u8; 4], version: u8, flags: u32) -> OpenBox {
        let b = self.begin(fourcc);
        self.u32(u32::from(version) << 24 | (flags & 0x00ff_ffff));
        b
    }

    /// Closes a box, writing its size. The caller bounds what goes in a box
    /// (see `MAX_FRAMES` in the parent module) so that it fits 32 bits; a
    /// box that still does not fit is reported rather than written wrong.
    pub fn end(&mut self, b: OpenBox) -> Result<(), Oversize> {
        let size = u32::try_from(self.buf.len() - b.0).map_err(|_| Oversize)?;
        if let Some(field) = self.buf.get_mut(b.0..b.0 + 4) {
            field.copy_from_slice(&size.to_be_bytes());
        }
        Ok(())
    }
}

/// A box grew past 4 GiB.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Oversize;

/// 64-bit FNV-1a: a small, stable hash for entity tags (not a defence
/// against chosen collisions: the content it describes is our own index).
pub(crate) struct Fnv64(u64);

impl Fnv64 {
    pub fn new() -> Self {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }

    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    pub fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_big_endian() {
        let mut w = BoxWriter::default();
        w.u16(0x0203);
        w.u32(0x0405_0607);
        w.u64(0x0809_0a0b_0c0d_0e0f);
        w.zeros(2);
        assert_eq!(
            w.buf,
            [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0, 0]
        );
    }

    #[test]
    fn nested_boxes_get_their_sizes() {
        let mut w = BoxWriter::default();
        let outer = w.begin(b"moov");
        let inner = w.begin_full(b"mvhd", 1, 0x0102_0304);
        w.u16(0xabcd);
        w.end(inner).unwrap();
        w.end(outer).unwrap();
        assert_eq!(
            w.buf,
            [
                0, 0, 0, 22, b'm', b'o', b'o', b'v', // outer: 8 + 14
                0, 0, 0, 14, b'm', b'v', b'h', b'd', // inner: 8 + 4 + 2
                1, 2, 3, 4, // version 1, flags truncated to 24 bits
                0xab, 0xcd,
            ]
        );
    }

    #[test]
    fn empty_box_is_eight_bytes() {
        let mut w = BoxWriter::with_capacity(8);
        let b = w.begin(b"free");
        w.end(b).unwrap();
        assert_eq!(w.buf, [0, 0, 0, 8, b'f', b'r', b'e', b'e']);
    }

    #[test]
    fn fnv_known_values() {
        // Published FNV-1a 64 test vectors.
        let h = |s: &[u8]| {
            let mut f = Fnv64::new();
            f.write(s);
            f.finish()
        };
        assert_eq!(h(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(h(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(h(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
