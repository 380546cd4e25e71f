//! Rewrites an H.264 sequence parameter set so that it asks for one
//! reference frame (`max_num_ref_frames = 1`), leaving every other field
//! as it was.
//!
//! Why: OpenH264 allocates `max_num_ref_frames + 2` pictures up front, and
//! cameras may signal up to 16 (measured: 1920x1080 takes 38 MB at 1 or 3
//! and 94 MB at 16). Only key frames are decoded here, which reference
//! nothing, so the decoder's memory can be what one reference costs
//! whatever the camera says.
//!
//! The SPS is walked (ITU-T H.264 7.3.2.1.1) up to the field, which is an
//! Exp-Golomb number; the bits before it are kept, the new value written,
//! and the bits after it copied behind, shifted. The RBSP trailing bits
//! and the emulation prevention bytes are then redone.

/// Reads bits of an RBSP (emulation prevention already removed).
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn bit(&mut self) -> Option<u32> {
        let byte = self.data.get(self.pos / 8)?;
        let b = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(u32::from(b))
    }

    fn bits(&mut self, n: u32) -> Option<u32> {
        let mut v = 0;
        for _ in 0..n {
            v = (v << 1) | self.bit()?;
        }
        Some(v)
    }

    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let rest = self.bits(zeros)?;
        Some(((1u64 << zeros) - 1 + u64::from(rest)).min(u64::from(u32::MAX)) as u32)
    }

    fn se(&mut self) -> Option<i32> {
        let k = self.ue()?;
        let mag = i32::try_from(k.div_ceil(2)).ok()?;
        Some(if k % 2 == 1 { mag } else { -mag })
    }
}

/// Writes bits MSB first.
#[derive(Default)]
struct BitWriter {
    out: Vec<u8>,
    /// Bits used in the last byte of `out` (0: byte-aligned).
    used: u32,
}

impl BitWriter {
    fn bit(&mut self, b: u32) {
        if self.used == 0 {
            self.out.push(0);
        }
        if b & 1 == 1 {
            if let Some(last) = self.out.last_mut() {
                *last |= 0x80 >> self.used;
            }
        }
        self.used = (self.used + 1) % 8;
    }

    fn ue(&mut self, v: u32) {
        let x = u64::from(v) + 1;
        let len = 64 - x.leading_zeros();
        for _ in 1..len {
            self.bit(0);
        }
        for i in (0..len).rev() {
            self.bit(((x >> i) & 1) as u32);
        }
    }

    /// The stop bit and zero bits up to a byte boundary.
    fn trailing(&mut self) {
        self.bit(1);
        while self.used != 0 {
            self.bit(0);
        }
    }
}

/// Only the tests write SPS fields of their own.
#[cfg(test)]
impl BitWriter {
    fn bits(&mut self, n: u32, v: u32) {
        for i in (0..n).rev() {
            self.bit(v >> i);
        }
    }

    fn se(&mut self, v: i32) {
        let k = if v > 0 {
            2 * v.unsigned_abs() - 1
        } else {
            2 * v.unsigned_abs()
        };
        self.ue(k);
    }
}

/// Profiles whose SPS carries the chroma and scaling fields (7.3.2.1.1).
fn high_profile(profile_idc: u32) -> bool {
    matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    )
}

/// Bit position of `max_num_ref_frames` in an SPS RBSP (after the NAL
/// header byte), and the position after it.
fn ref_frames_field(rbsp: &[u8]) -> Option<(usize, usize)> {
    let mut r = Bits { data: rbsp, pos: 0 };
    let profile_idc = r.bits(8)?;
    r.bits(16)?; // constraint flags, level_idc
    r.ue()?; // seq_parameter_set_id
    if high_profile(profile_idc) {
        let chroma_format_idc = r.ue()?;
        if chroma_format_idc == 3 {
            r.bit()?; // separate_colour_plane_flag
        }
        r.ue()?; // bit_depth_luma_minus8
        r.ue()?; // bit_depth_chroma_minus8
        r.bit()?; // qpprime_y_zero_transform_bypass_flag
        if r.bit()? == 1 {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit()? == 1 {
                    let size = if i < 6 { 16 } else { 64 };
                    let (mut last, mut next) = (8i32, 8i32);
                    for _ in 0..size {
                        if next != 0 {
                            let delta = r.se()?;
                            next = (last + delta).rem_euclid(256);
                        }
                        if next != 0 {
                            last = next;
                        }
                    }
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue()?; // log2_max_pic_order_cnt_lsb_minus4
        }
        1 => {
            r.bit()?; // delta_pic_order_always_zero_flag
            r.se()?; // offset_for_non_ref_pic
            r.se()?; // offset_for_top_to_bottom_field
            let n = r.ue()?;
            if n > 255 {
                return None;
            }
            for _ in 0..n {
                r.se()?;
            }
        }
        _ => {}
    }
    let start = r.pos;
    r.ue()?;
    Some((start, r.pos))
}

/// Removes emulation prevention bytes (00 00 03 -> 00 00).
fn to_rbsp(ebsp: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ebsp.len());
    let mut zeros = 0;
    for &b in ebsp {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// Appends `rbsp` with emulation prevention bytes inserted.
fn push_ebsp(rbsp: &[u8], out: &mut Vec<u8>) {
    let mut zeros = 0;
    for &b in rbsp {
        if zeros >= 2 && b <= 3 {
            out.push(3);
            zeros = 0;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
}

/// The SPS NAL unit `nal` (header byte included) with `max_num_ref_frames`
/// set to 1, appended to `out`; `None` (nothing appended) when it cannot
/// be walked, and the caller keeps the original.
pub(super) fn with_one_reference(nal: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let (&header, ebsp) = nal.split_first()?;
    let rbsp = to_rbsp(ebsp);
    let (start, end) = ref_frames_field(&rbsp)?;
    // The payload ends before the stop bit: the last 1 bit of the RBSP.
    let last = rbsp.iter().rposition(|&b| b != 0)?;
    let stop = last * 8 + 7 - rbsp.get(last)?.trailing_zeros() as usize;
    if stop < end {
        return None;
    }
    let mut w = BitWriter::default();
    let mut r = Bits {
        data: &rbsp,
        pos: 0,
    };
    for _ in 0..start {
        w.bit(r.bit()?);
    }
    w.ue(1);
    r.pos = end;
    for _ in end..stop {
        w.bit(r.bit()?);
    }
    w.trailing();
    out.push(header);
    push_ebsp(&w.out, out);
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use h264_reader::nal::sps::SeqParameterSet;
    use h264_reader::rbsp::{BitReader, ByteReader};

    fn parse(nal: &[u8]) -> SeqParameterSet {
        SeqParameterSet::from_bits(BitReader::new(ByteReader::skipping_h264_header(nal))).unwrap()
    }

    /// Every field as h264-reader sees it, but the one that is rewritten.
    fn fields(sps: &SeqParameterSet) -> String {
        let mut s = sps.clone();
        s.max_num_ref_frames = 0;
        format!("{s:?}")
    }

    fn check(nal: &[u8], refs_before: u32) {
        let before = parse(nal);
        assert_eq!(before.max_num_ref_frames, refs_before);
        let mut out = vec![9];
        with_one_reference(nal, &mut out).unwrap();
        let after = parse(&out[1..]);
        assert_eq!(after.max_num_ref_frames, 1);
        assert_eq!(fields(&after), fields(&before));
        // Emulation prevention redone: no start code prefix inside.
        assert!(!out[1..]
            .windows(3)
            .any(|w| w[0] == 0 && w[1] == 0 && w[2] <= 2));
    }

    /// An SPS written field by field (High profile, scaling lists, POC
    /// type 1, VUI-less), with `refs` reference frames.
    fn crafted(refs: u32) -> Vec<u8> {
        let mut w = BitWriter::default();
        w.bits(8, 100); // profile_idc: High
        w.bits(8, 0);
        w.bits(8, 40); // level 4.0
        w.ue(0); // sps id
        w.ue(1); // 4:2:0
        w.ue(0);
        w.ue(0);
        w.bit(0);
        w.bit(1); // seq_scaling_matrix_present_flag
        for i in 0..8 {
            let present = i % 3 == 0;
            w.bit(u32::from(present));
            if present {
                let size = if i < 6 { 16 } else { 64 };
                // Deltas that end the list early (next scale 0) on the
                // first, run the whole list on the others.
                for j in 0..size {
                    let d = if i == 0 && j == 3 { -8 - 3 } else { 1 };
                    w.se(d);
                    if i == 0 && j == 3 {
                        break;
                    }
                }
            }
        }
        w.ue(4); // log2_max_frame_num_minus4
        w.ue(1); // pic_order_cnt_type
        w.bit(0);
        w.se(-2);
        w.se(3);
        w.ue(2);
        w.se(5);
        w.se(-7);
        w.ue(refs);
        w.bit(0); // gaps
        w.ue(119); // 1920 wide
        w.ue(67); // 1088 high
        w.bit(1); // frame_mbs_only
        w.bit(1); // direct_8x8
        w.bit(1); // cropping
        w.ue(0);
        w.ue(0);
        w.ue(0);
        w.ue(4);
        w.bit(0); // no VUI
        w.trailing();
        let mut nal = vec![0x67];
        push_ebsp(&w.out, &mut nal);
        nal
    }

    #[test]
    fn rewrites_only_the_reference_count() {
        for refs in [0, 1, 4, 16] {
            check(&crafted(refs), refs);
        }
        // x264's Main profile SPS of the built-in clip (with VUI).
        let clip = include_bytes!("../../../camera/clips/h264.264");
        let end = clip[4..]
            .windows(4)
            .position(|w| w == [0, 0, 0, 1])
            .unwrap();
        let nal = &clip[4..4 + end];
        let refs = parse(nal).max_num_ref_frames;
        check(nal, refs);
    }

    #[test]
    fn walks_no_further_than_the_data() {
        let nal = crafted(16);
        let mut out = Vec::new();
        for n in 0..nal.len() {
            out.clear();
            // Cut anywhere: a rewrite or a refusal, never a panic, and
            // nothing appended on refusal.
            if with_one_reference(&nal[..n], &mut out).is_none() {
                assert!(out.is_empty());
            }
        }
        assert!(with_one_reference(&[], &mut out).is_none());
        assert!(with_one_reference(&[0x67, 0, 0, 0, 0], &mut out).is_none());
    }

    #[test]
    fn mutated_sets_are_rewritten_right_or_left_alone() {
        // Bit flips, cuts and byte changes of real and crafted SPSs: never
        // a panic, and whatever is rewritten reads back with one reference.
        let clip = include_bytes!("../../../camera/clips/h264.264");
        let end = clip[4..]
            .windows(4)
            .position(|w| w == [0, 0, 0, 1])
            .unwrap();
        let seeds = [clip[4..4 + end].to_vec(), crafted(16), crafted(0)];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut rewritten = 0;
        for round in 0..20_000 {
            let mut nal = seeds[round % seeds.len()].clone();
            for _ in 0..1 + next() % 4 {
                let i = (next() as usize) % nal.len();
                match next() % 3 {
                    0 => nal[i] ^= 1 << (next() % 8),
                    1 => nal[i] = next() as u8,
                    _ => nal.truncate(i.max(1)),
                }
            }
            let mut out = Vec::new();
            if with_one_reference(&nal, &mut out).is_some() {
                rewritten += 1;
                let rbsp = to_rbsp(&out[1..]);
                let (start, _) = ref_frames_field(&rbsp).expect("walkable");
                let mut r = Bits {
                    data: &rbsp,
                    pos: start,
                };
                assert_eq!(r.ue(), Some(1));
            }
        }
        assert!(rewritten > 1000, "{rewritten}");
    }

    #[test]
    fn exp_golomb_round_trips() {
        let mut w = BitWriter::default();
        let values = [0u32, 1, 2, 3, 7, 8, 255, 65_535, 1 << 20];
        for v in values {
            w.ue(v);
        }
        for v in [0i32, 1, -1, 2, -2, 1000, -1000] {
            w.se(v);
        }
        w.trailing();
        let mut r = Bits {
            data: &w.out,
            pos: 0,
        };
        for v in values {
            assert_eq!(r.ue(), Some(v));
        }
        for v in [0i32, 1, -1, 2, -2, 1000, -1000] {
            assert_eq!(r.se(), Some(v));
        }
    }
}
