//! Tests of the .mp4 muxer: structure (always) and real decoders (ffprobe /
//! ffmpeg, ignored unless asked for, as `make test` does).

use super::*;
use base64::Engine;
use std::cell::Cell;
use std::path::PathBuf;
use std::process::Command;

const FPS25: u32 = 3600;

/// Serves frames from memory: `SampleLoc::offset` is the frame's index.
#[derive(Default)]
struct MemSource {
    frames: Vec<Vec<u8>>,
    /// Fail reads of this frame as overwritten.
    fail: Option<u64>,
    reads: Cell<usize>,
}

impl MemSource {
    fn add(&mut self, data: Vec<u8>) -> SampleLoc {
        self.frames.push(data);
        SampleLoc {
            pool: 7,
            offset: self.frames.len() as u64 - 1,
            generation: 3,
        }
    }
}

impl SampleSource for MemSource {
    fn read(&self, loc: &SampleLoc, off: u32, buf: &mut [u8]) -> Result<(), Mp4Error> {
        self.reads.set(self.reads.get() + 1);
        if self.fail == Some(loc.offset) {
            return Err(Mp4Error::Overwritten);
        }
        let f = usize::try_from(loc.offset)
            .ok()
            .and_then(|i| self.frames.get(i))
            .ok_or_else(|| Mp4Error::Source("no such frame".into()))?;
        let off = off as usize;
        let s = f
            .get(off..off + buf.len())
            .ok_or_else(|| Mp4Error::Source(format!("read {off}+{} of {}", buf.len(), f.len())))?;
        buf.copy_from_slice(s);
        Ok(())
    }
}

/// A source whose frames are a pattern computed from position: lets tests
/// describe files of many GiB without holding them.
struct PatternSource;

fn pattern(loc: &SampleLoc, at: u64) -> u8 {
    (loc.offset.wrapping_mul(31).wrapping_add(at) % 251) as u8
}

impl SampleSource for PatternSource {
    fn read(&self, loc: &SampleLoc, off: u32, buf: &mut [u8]) -> Result<(), Mp4Error> {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = pattern(loc, u64::from(off) + i as u64);
        }
        Ok(())
    }
}

fn h264_entry(width: u16, height: u16) -> Mp4SampleEntry {
    Mp4SampleEntry {
        codec: Codec::H264,
        width,
        height,
        decoder_config: vec![1, 0x4d, 0, 0x1e, 0xff, 0xe1, 0, 1, 0x67, 1, 0, 1, 0x68],
    }
}

/// A synthetic segment of `n` frames with a key frame every `gop`, each
/// frame's bytes distinct.
fn synth(src: &mut MemSource, entry: usize, n: usize, gop: usize) -> Mp4Segment {
    let frames = (0..n)
        .map(|i| {
            let size = 100 + (i * 37) % 300;
            let base = src.frames.len();
            let data: Vec<u8> = (0..size).map(|j| ((base * 7 + j) % 256) as u8).collect();
            Mp4Frame {
                duration_90k: if i % 5 == 4 { 3601 } else { FPS25 },
                size: size as u32,
                key: i % gop == 0,
                loc: src.add(data),
            }
        })
        .collect();
    Mp4Segment {
        sample_entry: entry,
        frames,
    }
}

fn read_all(f: &Mp4File, src: &dyn SampleSource) -> Vec<u8> {
    let mut out = vec![0u8; f.len() as usize];
    let mut at = 0usize;
    while at < out.len() {
        // An odd chunk size, so reads straddle frames and the header.
        let end = (at + 4093).min(out.len());
        let n = f.read_at(at as u64, &mut out[at..end], src).unwrap();
        assert_eq!(n, end - at);
        at = end;
    }
    out
}

/// Top-level boxes: (type, start, size).
fn top_boxes(b: &[u8]) -> Vec<([u8; 4], usize, u64)> {
    let mut v = Vec::new();
    let mut at = 0usize;
    while at + 8 <= b.len() {
        let mut size = u64::from(u32::from_be_bytes(b[at..at + 4].try_into().unwrap()));
        let t: [u8; 4] = b[at + 4..at + 8].try_into().unwrap();
        if size == 1 {
            size = u64::from_be_bytes(b[at + 8..at + 16].try_into().unwrap());
        }
        assert!(size >= 8);
        v.push((t, at, size));
        at += size as usize;
    }
    v
}

/// The payload of the box at `path` (plain containers only on the way).
fn find<'a>(b: &'a [u8], path: &[&[u8; 4]]) -> Option<&'a [u8]> {
    let (first, rest) = path.split_first()?;
    let mut at = 0usize;
    while at + 8 <= b.len() {
        let size = u32::from_be_bytes(b[at..at + 4].try_into().unwrap()) as usize;
        assert!(
            size >= 8 && at + size <= b.len(),
            "box overflows its parent"
        );
        if &b[at + 4..at + 8] == *first {
            let body = &b[at + 8..at + size];
            return if rest.is_empty() {
                Some(body)
            } else {
                find(body, rest)
            };
        }
        at += size;
    }
    None
}

const STBL: [&[u8; 4]; 5] = [b"moov", b"trak", b"mdia", b"minf", b"stbl"];

fn stbl_box<'a>(file: &'a [u8], name: &[u8; 4]) -> Option<&'a [u8]> {
    let mut p: Vec<&[u8; 4]> = STBL.to_vec();
    p.push(name);
    find(file, &p)
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

/// A full box's entries after version/flags and entry count, as u32s.
fn table(body: &[u8]) -> (u32, Vec<u32>) {
    let n = be32(body, 4);
    let vals = body[8..].chunks(4).map(|c| be32(c, 0)).collect();
    (n, vals)
}

#[test]
fn layout_and_sizes() {
    let mut src = MemSource::default();
    let seg = synth(&mut src, 0, 60, 25);
    let f = build(
        vec![h264_entry(640, 360)],
        vec![seg.clone()],
        0,
        216_000,
        1_700_000_000,
    )
    .unwrap();
    let bytes = read_all(&f, &src);
    let boxes = top_boxes(&bytes);
    let names: Vec<&[u8; 4]> = boxes.iter().map(|b| &b.0).collect();
    assert_eq!(names, [b"ftyp", b"moov", b"mdat"]);
    assert_eq!(boxes.iter().map(|b| b.2).sum::<u64>(), f.len());
    assert_eq!(&bytes[8..12], b"isom");
    // mdat holds the frames, in order.
    let data: Vec<u8> = src.frames.concat();
    assert_eq!(&bytes[boxes[2].1 + 8..], &data[..]);

    let (n, sizes) = table(stbl_box(&bytes, b"stsz").unwrap());
    assert_eq!(n, 0, "sample_size 0: sizes listed");
    assert_eq!(sizes[0], 60);
    let want: Vec<u32> = seg.frames.iter().map(|f| f.size).collect();
    assert_eq!(&sizes[1..], &want[..]);

    let (n, keys) = table(stbl_box(&bytes, b"stss").unwrap());
    assert_eq!((n, keys), (3, vec![1, 26, 51]));

    // stts: runs of 4×3600 then 1×3601, twelve times.
    let (n, runs) = table(stbl_box(&bytes, b"stts").unwrap());
    assert_eq!(n, 24);
    assert_eq!(&runs[..4], &[4, 3600, 1, 3601]);
    let total: u64 = runs
        .chunks(2)
        .map(|r| u64::from(r[0]) * u64::from(r[1]))
        .sum();
    assert_eq!(
        total,
        seg.frames
            .iter()
            .map(|f| u64::from(f.duration_90k))
            .sum::<u64>()
    );

    let (n, stco) = table(stbl_box(&bytes, b"stco").unwrap());
    assert_eq!((n, stco), (1, vec![boxes[2].1 as u32 + 8]));

    let elst = find(&bytes, &[b"moov", b"trak", b"edts", b"elst"]).unwrap();
    assert_eq!(&elst[..4], &[0, 0, 0, 0]);
    assert_eq!(be32(elst, 4), 1);
    assert_eq!(be32(elst, 8), 216_000); // segment_duration
    assert_eq!(be32(elst, 12), 0); // media_time
    assert_eq!(be32(elst, 16), 0x0001_0000); // rate 1.0

    let mvhd = find(&bytes, &[b"moov", b"mvhd"]).unwrap();
    assert_eq!(be32(mvhd, 4), 1_700_000_000 + 2_082_844_800);
    assert_eq!(be32(mvhd, 12), 90_000);
    assert_eq!(be32(mvhd, 16), 216_000);
    let tkhd = find(&bytes, &[b"moov", b"trak", b"tkhd"]).unwrap();
    assert_eq!(be32(tkhd, tkhd.len() - 8), 640 << 16);
    assert_eq!(be32(tkhd, tkhd.len() - 4), 360 << 16);
    let hdlr = find(&bytes, &[b"moov", b"trak", b"mdia", b"hdlr"]).unwrap();
    assert_eq!(&hdlr[8..12], b"vide");

    let stsd = stbl_box(&bytes, b"stsd").unwrap();
    assert_eq!(be32(stsd, 4), 1);
    assert_eq!(&stsd[12..16], b"avc1");
    assert_eq!(&stsd[8 + 86 + 4..8 + 86 + 8], b"avcC");
    assert_eq!(&stsd[8 + 94..], &h264_entry(0, 0).decoder_config[..]);
}

#[test]
fn segments_entries_and_chunks() {
    let mut src = MemSource::default();
    let segs = vec![
        synth(&mut src, 0, 30, 10),
        synth(&mut src, 0, 30, 10),
        synth(&mut src, 1, 20, 10),
        synth(&mut src, 0, 20, 10),
    ];
    let entries = vec![h264_entry(640, 360), h264_entry(320, 240)];
    let f = build(entries, segs.clone(), 7200, 300_000, 0).unwrap();
    let bytes = read_all(&f, &src);
    let stsd = stbl_box(&bytes, b"stsd").unwrap();
    assert_eq!(be32(stsd, 4), 2);
    let (n, stsc) = table(stbl_box(&bytes, b"stsc").unwrap());
    assert_eq!(n, 3);
    assert_eq!(stsc, [1, 30, 1, 3, 20, 2, 4, 20, 1]);
    let (n, stco) = table(stbl_box(&bytes, b"stco").unwrap());
    assert_eq!(n, 4);
    // Each chunk offset points at its segment's first frame.
    for (s, &off) in segs.iter().zip(&stco) {
        let first = &src.frames[s.frames[0].loc.offset as usize];
        assert_eq!(&bytes[off as usize..off as usize + first.len()], &first[..]);
    }
    let elst = find(&bytes, &[b"moov", b"trak", b"edts", b"elst"]).unwrap();
    assert_eq!(be32(elst, 12), 7200);
    let (_, keys) = table(stbl_box(&bytes, b"stss").unwrap());
    assert_eq!(keys, [1, 11, 21, 31, 41, 51, 61, 71, 81, 91]);
}

/// A tiny deterministic generator for the range tests.
fn lcg(state: &mut u64) -> u64 {
    *state = state
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    *state >> 33
}

#[test]
fn any_range_equals_the_whole() {
    let mut src = MemSource::default();
    let segs = vec![synth(&mut src, 0, 40, 20), synth(&mut src, 0, 25, 20)];
    let f = build(vec![h264_entry(640, 360)], segs, 100, 200_000, 5).unwrap();
    let whole = read_all(&f, &src);
    let len = whole.len() as u64;
    let mut r = 42u64;
    for _ in 0..2000 {
        let off = lcg(&mut r) % (len + 10);
        let n = (lcg(&mut r) % 3000) as usize;
        let mut buf = vec![0xeeu8; n];
        let got = f.read_at(off, &mut buf, &src).unwrap();
        let want = if off >= len {
            0
        } else {
            n.min((len - off) as usize)
        };
        assert_eq!(got, want, "read of {n} at {off} of {len}");
        if want > 0 {
            assert_eq!(&buf[..got], &whole[off as usize..off as usize + got]);
        }
        assert!(
            buf[got..].iter().all(|&b| b == 0xee),
            "wrote past what it returned"
        );
    }
    // Single bytes across a frame boundary and at the very end.
    let mut one = [0u8; 1];
    assert_eq!(f.read_at(len - 1, &mut one, &src).unwrap(), 1);
    assert_eq!(one[0], whole[whole.len() - 1]);
    assert_eq!(f.read_at(len, &mut one, &src).unwrap(), 0);
    assert_eq!(f.read_at(u64::MAX, &mut one, &src).unwrap(), 0);
    // An empty buffer reads nothing, anywhere.
    assert_eq!(f.read_at(10, &mut [], &src).unwrap(), 0);
}

#[test]
fn header_reads_do_not_touch_the_source() {
    let mut src = MemSource::default();
    let segs = vec![synth(&mut src, 0, 10, 5)];
    let f = build(vec![h264_entry(640, 360)], segs, 0, 36_000, 0).unwrap();
    let mut buf = vec![0u8; 64];
    f.read_at(0, &mut buf, &src).unwrap();
    assert_eq!(src.reads.get(), 0);
}

#[test]
fn zero_sized_frames_are_skipped() {
    let mut src = MemSource::default();
    let mut seg = synth(&mut src, 0, 10, 5);
    for i in [3, 4, 9] {
        seg.frames[i].size = 0;
        src.frames[i].clear();
    }
    let f = build(vec![h264_entry(640, 360)], vec![seg], 0, 36_000, 0).unwrap();
    let whole = read_all(&f, &src);
    assert!(whole.ends_with(&src.frames[8]));
    let mut r = 7u64;
    for _ in 0..300 {
        let off = lcg(&mut r) % f.len();
        let mut buf = vec![0u8; (lcg(&mut r) % 500) as usize];
        let n = f.read_at(off, &mut buf, &src).unwrap();
        assert_eq!(&buf[..n], &whole[off as usize..off as usize + n]);
    }
}

#[test]
fn source_error_ends_the_read() {
    let mut src = MemSource::default();
    let segs = vec![synth(&mut src, 0, 20, 10)];
    let f = build(vec![h264_entry(640, 360)], segs.clone(), 0, 72_000, 0).unwrap();
    src.fail = Some(segs[0].frames[12].loc.offset);
    let mut buf = vec![0u8; f.len() as usize];
    assert_eq!(f.read_at(0, &mut buf, &src), Err(Mp4Error::Overwritten));
    // A range before the bad frame is still served.
    let mut small = vec![0u8; 100];
    assert_eq!(f.read_at(0, &mut small, &src), Ok(100));
    assert!(Mp4Error::Overwritten.to_string().contains("overwritten"));
}

#[test]
fn etag_follows_the_content() {
    let mk = |skip: u32, generation: u64, creation: u64| {
        let mut src = MemSource::default();
        let mut seg = synth(&mut src, 0, 20, 10);
        seg.frames[5].loc.generation = generation;
        build(
            vec![h264_entry(640, 360)],
            vec![seg],
            skip,
            36_000,
            creation,
        )
        .unwrap()
    };
    let a = mk(0, 3, 0).etag();
    assert_eq!(a, mk(0, 3, 0).etag());
    assert_ne!(a, mk(1, 3, 0).etag());
    assert_ne!(a, mk(0, 4, 0).etag());
    assert_ne!(a, mk(0, 3, 1).etag());
    assert_eq!(a.len(), 18);
    assert!(a.starts_with('"') && a.ends_with('"'));
}

#[test]
fn bad_descriptions_are_refused() {
    let mut src = MemSource::default();
    let seg = synth(&mut src, 0, 20, 10);
    let e = || vec![h264_entry(640, 360)];
    let invalid = |r: Result<Mp4File, Mp4Error>| matches!(r, Err(Mp4Error::Invalid(_)));
    assert!(invalid(build(e(), vec![], 0, 1, 0)));
    assert!(invalid(build(vec![], vec![seg.clone()], 0, 1, 0)));
    let mut other = seg.clone();
    other.sample_entry = 1;
    assert!(invalid(build(e(), vec![other], 0, 1, 0)));
    let mut no_key = seg.clone();
    no_key.frames.remove(0);
    assert!(invalid(build(e(), vec![no_key], 0, 1, 0)));
    let empty = Mp4Segment {
        sample_entry: 0,
        frames: vec![],
    };
    assert!(invalid(build(e(), vec![seg.clone(), empty], 0, 1, 0)));
    assert!(invalid(build(e(), vec![seg.clone()], 20 * FPS25 + 4, 1, 0)));
    let mut no_config = h264_entry(640, 360);
    no_config.decoder_config.clear();
    assert!(invalid(build(vec![no_config], vec![seg], 0, 1, 0)));
}

#[test]
fn large_files_use_co64_and_a_64_bit_mdat() {
    // Three frames of 2 GiB: offsets pass 4 GiB. Nothing is held in memory.
    let frames: Vec<Mp4Frame> = (0..3)
        .map(|i| Mp4Frame {
            duration_90k: 3000,
            size: 0x8000_0000,
            key: i != 1,
            loc: SampleLoc {
                pool: 0,
                offset: i,
                generation: 1,
            },
        })
        .collect();
    let seg = |f: &[Mp4Frame]| Mp4Segment {
        sample_entry: 0,
        frames: f.to_vec(),
    };
    let f = build(
        vec![h264_entry(640, 360)],
        vec![seg(&frames[..2]), seg(&frames[2..])],
        0,
        9000,
        0,
    )
    .unwrap();
    let mut head = vec![0u8; 4096];
    f.read_at(0, &mut head, &PatternSource).unwrap();
    let boxes = top_boxes(&head[..head.len().min(2000)]);
    let mdat_at = boxes[2].1;
    assert_eq!(
        &head[mdat_at..mdat_at + 8],
        &[0, 0, 0, 1, b'm', b'd', b'a', b't']
    );
    let data_start = mdat_at as u64 + 16;
    assert_eq!(
        u64::from_be_bytes(head[mdat_at + 8..mdat_at + 16].try_into().unwrap()),
        f.len() - mdat_at as u64
    );
    assert_eq!(f.len(), data_start + 3 * 0x8000_0000);
    let moov = &head[boxes[1].1..boxes[1].1 + boxes[1].2 as usize];
    assert!(stbl_box(moov, b"stco").is_none());
    let co64 = stbl_box(moov, b"co64").unwrap();
    assert_eq!(be32(co64, 4), 2);
    let second = u64::from_be_bytes(co64[16..24].try_into().unwrap());
    assert_eq!(second, data_start + 2 * 0x8000_0000);
    // A range straddling frames 1 and 2, past 4 GiB.
    let at = data_start + 2 * 0x8000_0000 - 3;
    let mut buf = [0u8; 6];
    assert_eq!(f.read_at(at, &mut buf, &PatternSource).unwrap(), 6);
    let l1 = frames[1].loc;
    let l2 = frames[2].loc;
    let want = [
        pattern(&l1, 0x8000_0000 - 3),
        pattern(&l1, 0x8000_0000 - 2),
        pattern(&l1, 0x8000_0000 - 1),
        pattern(&l2, 0),
        pattern(&l2, 1),
        pattern(&l2, 2),
    ];
    assert_eq!(buf, want);
}

// ---------------------------------------------------------------------------
// Real streams and real decoders.

/// One elementary stream cut into .mp4 samples.
struct Stream {
    entry: Mp4SampleEntry,
    /// Length-prefixed NAL units without parameter sets or delimiters.
    frames: Vec<(Vec<u8>, bool)>,
}

/// Splits Annex B into NAL units (start codes and trailing zeros removed).
fn split_annex_b(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut nals = Vec::new();
    for (k, &s) in starts.iter().enumerate() {
        let mut end = starts.get(k + 1).map_or(data.len(), |&n| n - 3);
        while end > s && data[end - 1] == 0 {
            end -= 1;
        }
        if end > s {
            nals.push(&data[s..end]);
        }
    }
    nals
}

fn parse_stream(codec: Codec, data: &[u8]) -> Stream {
    let nals = split_annex_b(data);
    let nal_type = |n: &[u8]| match codec {
        Codec::H264 => n[0] & 0x1f,
        _ => (n[0] >> 1) & 0x3f,
    };
    let b64 = |n: &[u8]| base64::engine::general_purpose::STANDARD.encode(n);
    let first_of = |t: u8| *nals.iter().find(|n| nal_type(n) == t).unwrap();
    let fmtp = match codec {
        Codec::H264 => format!(
            "sprop-parameter-sets={},{}",
            b64(first_of(7)),
            b64(first_of(8))
        ),
        _ => format!(
            "sprop-vps={};sprop-sps={};sprop-pps={}",
            b64(first_of(32)),
            b64(first_of(33)),
            b64(first_of(34))
        ),
    };
    let d = crate::media::Depacketizer::new(codec, Some(&fmtp), 1 << 20);
    let p = d.params().expect("parameters from sprop").clone();
    let mut frames: Vec<(Vec<u8>, bool)> = Vec::new();
    let mut cur: Option<(Vec<u8>, bool)> = None;
    // Non-VCL units (SEI) before a picture's first slice go with it.
    let mut pending: Vec<u8> = Vec::new();
    for n in nals {
        let t = nal_type(n);
        let (skip, vcl, key, first_slice) = match codec {
            // SPS, PPS, AUD; IDR is 5; first_mb_in_slice == 0 is a '1' bit.
            Codec::H264 => (
                matches!(t, 7..=9),
                matches!(t, 1..=5),
                t == 5,
                n[1] & 0x80 != 0,
            ),
            // VPS, SPS, PPS, AUD; IRAP is 16..=23.
            _ => (
                matches!(t, 32..=35),
                t < 32,
                (16..=23).contains(&t),
                n[2] & 0x80 != 0,
            ),
        };
        if skip {
            continue;
        }
        let mut prefixed = (n.len() as u32).to_be_bytes().to_vec();
        prefixed.extend_from_slice(n);
        if !vcl {
            pending.extend_from_slice(&prefixed);
            continue;
        }
        if first_slice {
            frames.extend(cur.take());
            cur = Some((std::mem::take(&mut pending), key));
        }
        if let Some(f) = cur.as_mut() {
            f.0.append(&mut pending);
            f.0.extend_from_slice(&prefixed);
        }
    }
    frames.extend(cur);
    Stream {
        entry: Mp4SampleEntry {
            codec,
            width: p.width,
            height: p.height,
            decoder_config: p.decoder_config,
        },
        frames,
    }
}

fn clip(codec: Codec) -> Stream {
    let data: &[u8] = match codec {
        Codec::H264 => include_bytes!("../../camera/clips/h264.264"),
        _ => include_bytes!("../../camera/clips/h265.265"),
    };
    parse_stream(codec, data)
}

/// Adds a stream's frames `range` to the source as one segment.
fn segment(
    src: &mut MemSource,
    s: &Stream,
    entry: usize,
    range: std::ops::Range<usize>,
) -> Mp4Segment {
    let frames = s.frames[range]
        .iter()
        .map(|(data, key)| Mp4Frame {
            duration_90k: FPS25,
            size: data.len() as u32,
            key: *key,
            loc: src.add(data.clone()),
        })
        .collect();
    Mp4Segment {
        sample_entry: entry,
        frames,
    }
}

struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> Self {
        TempFile(std::env::temp_dir().join(format!("vigil-mp4-{}-{name}", std::process::id())))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn write(f: &Mp4File, src: &MemSource, name: &str) -> TempFile {
    let t = TempFile::new(name);
    std::fs::write(&t.0, read_all(f, src)).unwrap();
    t
}

/// `ffprobe` key=value output for the file's first stream and format.
fn probe(t: &TempFile, entries: &str) -> Vec<(String, String)> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args([
            "-show_entries",
            entries,
            "-of",
            "default=noprint_wrappers=1",
        ])
        .arg(&t.0)
        .output()
        .expect("ffprobe runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.is_empty(), "ffprobe: {err}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn get<'a>(p: &'a [(String, String)], k: &str) -> &'a str {
    p.iter()
        .find(|(key, _)| key == k)
        .map_or("", |(_, v)| v.as_str())
}

/// Decodes the whole file; ffmpeg must succeed and say nothing.
fn decode_clean(t: &TempFile) {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(&t.0)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.is_empty(), "ffmpeg: {err}");
}

/// The MD5 of each decoded picture, in presentation order.
fn frame_md5s(path: &std::path::Path) -> Vec<String> {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "framemd5", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit(',').next())
        .map(|h| h.trim().to_string())
        .collect()
}

fn assert_duration(p: &[(String, String)], want_90k: u64) {
    let d: f64 = get(p, "duration").parse().unwrap();
    let want = want_90k as f64 / 90_000.0;
    assert!((d - want).abs() <= 0.04 + 1e-6, "duration {d}, want {want}");
}

const PROBE: &str = "stream=codec_name,width,height,nb_read_frames:format=duration";

#[test]
#[ignore = "needs ffmpeg (run by make test)"]
fn h264_clip_plays() {
    let s = clip(Codec::H264);
    assert_eq!(s.frames.len(), 100);
    assert_eq!(s.frames.iter().filter(|f| f.1).count(), 2);
    let mut src = MemSource::default();
    let seg = segment(&mut src, &s, 0, 0..100);
    let f = build(
        vec![s.entry.clone()],
        vec![seg],
        0,
        100 * 3600,
        1_700_000_000,
    )
    .unwrap();
    let t = write(&f, &src, "h264.mp4");
    let p = probe(&t, PROBE);
    assert_eq!(get(&p, "codec_name"), "h264");
    assert_eq!(get(&p, "width"), "640");
    assert_eq!(get(&p, "height"), "360");
    assert_eq!(get(&p, "nb_read_frames"), "100");
    assert_duration(&p, 100 * 3600);
    decode_clean(&t);
}

#[test]
#[ignore = "needs ffmpeg (run by make test)"]
fn h265_clip_plays() {
    let s = clip(Codec::H265);
    assert_eq!(s.frames.len(), 100);
    let mut src = MemSource::default();
    let seg = segment(&mut src, &s, 0, 0..100);
    let f = build(vec![s.entry.clone()], vec![seg], 0, 100 * 3600, 0).unwrap();
    let t = write(&f, &src, "h265.mp4");
    let p = probe(&t, PROBE);
    assert_eq!(get(&p, "codec_name"), "hevc");
    assert_eq!(get(&p, "width"), "640");
    assert_eq!(get(&p, "height"), "360");
    assert_eq!(get(&p, "nb_read_frames"), "100");
    assert_duration(&p, 100 * 3600);
    decode_clean(&t);
}

#[test]
#[ignore = "needs ffmpeg (run by make test)"]
fn jpeg_clip_plays() {
    // The clip is JPEG images back to back, as the depacketizer stores them.
    let mut data: &[u8] = include_bytes!("../../camera/clips/mjpeg.mjpeg");
    let mut src = MemSource::default();
    let mut frames = Vec::new();
    while !data.is_empty() {
        let (_, used) = crate::camera::clip::parse_jpeg(data).unwrap();
        frames.push(Mp4Frame {
            duration_90k: FPS25,
            size: used as u32,
            key: true,
            loc: src.add(data[..used].to_vec()),
        });
        data = &data[used..];
    }
    let n = frames.len();
    assert!(n >= 10);
    let entry = Mp4SampleEntry {
        codec: Codec::Jpeg,
        width: 640,
        height: 360,
        decoder_config: Vec::new(),
    };
    let seg = Mp4Segment {
        sample_entry: 0,
        frames,
    };
    let f = build(vec![entry], vec![seg], 0, n as u64 * 3600, 0).unwrap();
    let t = write(&f, &src, "jpeg.mp4");
    let p = probe(&t, PROBE);
    assert_eq!(get(&p, "codec_name"), "mjpeg");
    assert_eq!(get(&p, "width"), "640");
    assert_eq!(get(&p, "height"), "360");
    assert_eq!(get(&p, "nb_read_frames"), n.to_string());
    assert_duration(&p, n as u64 * 3600);
    decode_clean(&t);
}

#[test]
#[ignore = "needs ffmpeg (run by make test)"]
fn mid_gop_start_uses_the_edit_list() {
    let s = clip(Codec::H264);
    let mut src = MemSource::default();
    // Asked from frame 60 to frame 95: the file starts at the key frame 50.
    let seg = segment(&mut src, &s, 0, 50..100);
    let skip = 10 * 3600;
    let dur = 35 * 3600;
    let f = build(vec![s.entry.clone()], vec![seg], skip, dur, 0).unwrap();
    let t = write(&f, &src, "midgop.mp4");
    let p = probe(&t, PROBE);
    assert_duration(&p, dur);
    // The frames before the edit are decoded but not presented.
    assert_eq!(get(&p, "nb_read_frames"), "35");
    decode_clean(&t);
    // And the pictures shown are exactly the clip's frames 60..95.
    let clip_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/camera/clips/h264.264");
    let want = frame_md5s(&clip_path);
    assert_eq!(want.len(), 100);
    assert_eq!(frame_md5s(&t.0), want[60..95]);
}

#[test]
#[ignore = "needs ffmpeg (run by make test)"]
fn spliced_recordings_play() {
    let s = clip(Codec::H264);
    let mut src = MemSource::default();
    let segs = vec![
        segment(&mut src, &s, 0, 0..100),
        segment(&mut src, &s, 0, 50..100),
        segment(&mut src, &s, 0, 0..100),
    ];
    let f = build(vec![s.entry.clone()], segs, 0, 250 * 3600, 0).unwrap();
    let t = write(&f, &src, "splice.mp4");
    let p = probe(&t, PROBE);
    assert_eq!(get(&p, "nb_read_frames"), "250");
    assert_duration(&p, 250 * 3600);
    decode_clean(&t);
}

#[test]
#[ignore = "needs ffmpeg (run by make test)"]
fn resolution_change_switches_sample_entries() {
    let es = TempFile::new("small.264");
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-f", "lavfi", "-i"])
        .arg("testsrc=size=320x240:rate=25")
        .args(["-frames:v", "50", "-c:v", "libx264", "-bf", "0", "-g", "25"])
        .args(["-pix_fmt", "yuv420p", "-f", "h264"])
        .arg(&es.0)
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let small = parse_stream(Codec::H264, &std::fs::read(&es.0).unwrap());
    assert_eq!((small.entry.width, small.entry.height), (320, 240));
    assert_eq!(small.frames.len(), 50);
    let big = clip(Codec::H264);
    let mut src = MemSource::default();
    let segs = vec![
        segment(&mut src, &big, 0, 0..100),
        segment(&mut src, &small, 1, 0..50),
        segment(&mut src, &big, 0, 50..100),
    ];
    let entries = vec![big.entry.clone(), small.entry.clone()];
    let f = build(entries, segs, 0, 200 * 3600, 0).unwrap();
    let t = write(&f, &src, "switch.mp4");
    let p = probe(&t, PROBE);
    assert_eq!(get(&p, "nb_read_frames"), "200");
    assert_duration(&p, 200 * 3600);
    decode_clean(&t);
    // The decoded pictures change size where the entry changes.
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["frame=width,height", "-of", "csv=p=0"])
        .arg(&t.0)
        .output()
        .unwrap();
    // Side data adds empty fields and lines: keep width,height.
    let sizes: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').take(2).collect::<Vec<_>>().join(","))
        .collect();
    assert_eq!(sizes.len(), 200, "{sizes:?}");
    assert!(
        sizes[..100].iter().all(|s| s == "640,360"),
        "{:?}",
        &sizes[..100]
    );
    assert!(
        sizes[100..150].iter().all(|s| s == "320,240"),
        "{:?}",
        &sizes[100..150]
    );
    assert!(sizes[150..].iter().all(|s| s == "640,360"));
}
