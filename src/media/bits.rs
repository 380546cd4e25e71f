//! A bit reader over H.26x NAL unit payloads (RBSP), for the few syntax
//! elements Vigil parses itself (the H.265 SPS).
//!
//! It removes emulation prevention bytes (`00 00 03`) on the fly, so the
//! escaped bytes never need copying, and it reports running out of data as
//! an error instead of panicking: the input comes from cameras.

/// Why a parse stopped.
pub(crate) type BitsError = &'static str;

/// Reads bits MSB first from an escaped NAL payload.
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    /// Index of the next byte of `data` to load.
    pos: usize,
    /// Zero bytes seen in a row, to spot emulation prevention bytes.
    zeros: u8,
    /// Bits of the current byte not yet read, left-aligned.
    cur: u8,
    /// How many bits of `cur` remain.
    left: u8,
}

impl<'a> BitReader<'a> {
    /// A reader over `data`, which must not include the NAL header.
    pub(crate) fn new(data: &'a [u8]) -> Self {
        BitReader {
            data,
            pos: 0,
            zeros: 0,
            cur: 0,
            left: 0,
        }
    }

    fn load(&mut self) -> Result<(), BitsError> {
        loop {
            let b = *self.data.get(self.pos).ok_or("truncated")?;
            self.pos += 1;
            if self.zeros >= 2 && b == 3 {
                // emulation_prevention_three_byte: not part of the RBSP.
                self.zeros = 0;
                continue;
            }
            self.zeros = if b == 0 {
                self.zeros.saturating_add(1)
            } else {
                0
            };
            self.cur = b;
            self.left = 8;
            return Ok(());
        }
    }

    pub(crate) fn bit(&mut self) -> Result<bool, BitsError> {
        if self.left == 0 {
            self.load()?;
        }
        self.left -= 1;
        Ok((self.cur >> self.left) & 1 == 1)
    }

    pub(crate) fn flag(&mut self) -> Result<bool, BitsError> {
        self.bit()
    }

    /// Reads `n` (at most 32) bits as an unsigned number.
    pub(crate) fn bits(&mut self, n: u32) -> Result<u32, BitsError> {
        if n > 32 {
            return Err("bit count over 32");
        }
        let mut v: u64 = 0;
        for _ in 0..n {
            v = (v << 1) | u64::from(self.bit()?);
        }
        u32::try_from(v).map_err(|_| "bit count over 32")
    }

    pub(crate) fn skip(&mut self, n: u32) -> Result<(), BitsError> {
        for _ in 0..n {
            self.bit()?;
        }
        Ok(())
    }

    /// Reads an unsigned Exp-Golomb number, ue(v).
    pub(crate) fn ue(&mut self) -> Result<u32, BitsError> {
        let mut zeros = 0u32;
        while !self.bit()? {
            zeros += 1;
            if zeros > 31 {
                return Err("Exp-Golomb value over 32 bits");
            }
        }
        if zeros == 0 {
            return Ok(0);
        }
        let rest = u64::from(self.bits(zeros)?);
        u32::try_from((1u64 << zeros) - 1 + rest).map_err(|_| "Exp-Golomb value over 32 bits")
    }

    /// Reads a ue(v) that must not exceed `max`.
    pub(crate) fn ue_max(&mut self, max: u32, what: BitsError) -> Result<u32, BitsError> {
        let v = self.ue()?;
        if v > max {
            return Err(what);
        }
        Ok(v)
    }

    /// Reads a signed Exp-Golomb number, se(v).
    pub(crate) fn se(&mut self) -> Result<i32, BitsError> {
        let k = i64::from(self.ue()?);
        let v = if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) };
        i32::try_from(v).map_err(|_| "Exp-Golomb value over 32 bits")
    }

    /// Reads whole bytes into `out`; the reader must be byte aligned.
    pub(crate) fn bytes(&mut self, out: &mut [u8]) -> Result<(), BitsError> {
        for b in out.iter_mut() {
            *b = self.bits(8)? as u8;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bits_and_exp_golomb() {
        // 1 | 010 | 011 | 00100 | 0001000 ... : ue 0, 1, 2, 3, 7
        let data = [0b1010_0110, 0b0100_0001, 0b0000_0000];
        let mut r = BitReader::new(&data);
        assert_eq!(r.ue(), Ok(0));
        assert_eq!(r.ue(), Ok(1));
        assert_eq!(r.ue(), Ok(2));
        assert_eq!(r.ue(), Ok(3));
        assert_eq!(r.ue(), Ok(7));
        assert!(r.ue().is_err(), "runs out of data");
    }

    #[test]
    fn signed_exp_golomb() {
        // ue 1 -> +1, ue 2 -> -1, ue 3 -> +2
        let data = [0b0100_1100, 0b1000_0000];
        let mut r = BitReader::new(&data);
        assert_eq!(r.se(), Ok(1));
        assert_eq!(r.se(), Ok(-1));
        assert_eq!(r.se(), Ok(2));
    }

    #[test]
    fn skips_emulation_prevention() {
        let data = [0x00, 0x00, 0x03, 0x01, 0xff];
        let mut r = BitReader::new(&data);
        assert_eq!(r.bits(24), Ok(0x000001));
        assert_eq!(r.bits(8), Ok(0xff));
        assert!(r.bit().is_err());
    }

    #[test]
    fn rejects_huge_values_without_panicking() {
        let data = [0u8; 8];
        let mut r = BitReader::new(&data);
        assert!(r.ue().is_err());
        let mut r = BitReader::new(&data);
        assert!(r.bits(33).is_err());
        let data = [0x00, 0x00, 0x00, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff];
        let mut r = BitReader::new(&data);
        // 31 leading zeros then 32 bits: fits u32 only just.
        assert!(r.ue().is_ok());
    }
}
