//! Tests of the fragmented MP4 writer: box layout (always) and a real
//! decoder (ffmpeg, ignored unless asked for, as `make test` does). The
//! helpers are shared with the `live` tests.

use super::*;
use crate::serve::mp4::{Mp4SampleEntry, SampleLoc, SampleSource};
use crate::stream::Codec;
use base64::Engine;
use std::process::Command;

/// Serves frames from memory: `SampleLoc::offset` is the frame's index.
#[derive(Default)]
pub(crate) struct MemSource {
    pub frames: Vec<Vec<u8>>,
}

impl MemSource {
    pub fn add(&mut self, data: Vec<u8>) -> SampleLoc {
        self.frames.push(data);
        SampleLoc {
            pool: 0,
            offset: self.frames.len() as u64 - 1,
            generation: 0,
        }
    }
}

impl SampleSource for MemSource {
    fn read(&self, loc: &SampleLoc, off: u32, buf: &mut [u8]) -> Result<(), Mp4Error> {
        let f = &self.frames[loc.offset as usize];
        buf.copy_from_slice(&f[off as usize..off as usize + buf.len()]);
        Ok(())
    }
}

pub(crate) fn h264_entry() -> Mp4SampleEntry {
    Mp4SampleEntry {
        codec: Codec::H264,
        width: 640,
        height: 360,
        decoder_config: vec![1, 0x4d, 0, 0x1e, 0xff, 0xe1, 0, 1, 0x67, 1, 0, 1, 0x68],
    }
}

pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().unwrap())
}

/// The boxes directly in `b`: (type, whole box including header). 64-bit
/// sizes are understood; a box overflowing `b` fails the test.
pub(crate) fn boxes(b: &[u8]) -> Vec<([u8; 4], &[u8])> {
    let mut v = Vec::new();
    let mut at = 0usize;
    while at < b.len() {
        assert!(at + 8 <= b.len(), "trailing bytes at {at}");
        let mut size = u64::from(be32(b, at));
        if size == 1 {
            size = be64(b, at + 8);
        }
        let size = size as usize;
        assert!(size >= 8 && at + size <= b.len(), "box overflows at {at}");
        v.push((b[at + 4..at + 8].try_into().unwrap(), &b[at..at + size]));
        at += size;
    }
    v
}

/// The payload of the box at `path` (plain containers on the way).
pub(crate) fn find<'a>(b: &'a [u8], path: &[&[u8; 4]]) -> &'a [u8] {
    let (first, rest) = path.split_first().unwrap();
    let (_, bx) = boxes(b)
        .into_iter()
        .find(|(t, _)| t == *first)
        .unwrap_or_else(|| panic!("no {:?}", String::from_utf8_lossy(*first)));
    let body = &bx[8..];
    if rest.is_empty() {
        body
    } else {
        find(body, rest)
    }
}

/// A parsed fragment: (sequence, tfdt, [(duration, size, flags)], data
/// offset, moof length, mdat payload).
pub(crate) struct Frag<'a> {
    pub sequence: u32,
    pub decode_90k: u64,
    pub samples: Vec<(u32, u32, u32)>,
    pub data_offset: u32,
    pub moof_len: usize,
    pub mdat: &'a [u8],
}

/// Parses a `moof` followed by its `mdat`, checking the header fields our
/// writer promises.
pub(crate) fn parse_fragment(b: &[u8]) -> Frag<'_> {
    let top = boxes(b);
    assert_eq!(top.len(), 2, "moof and mdat");
    assert_eq!(&top[0].0, b"moof");
    assert_eq!(&top[1].0, b"mdat");
    let moof = &top[0].1[8..];
    let mfhd = find(moof, &[b"mfhd"]);
    let tfhd = find(moof, &[b"traf", b"tfhd"]);
    assert_eq!(be32(tfhd, 0), 0x02_0000, "default-base-is-moof");
    assert_eq!(be32(tfhd, 4), 1, "track 1");
    let tfdt = find(moof, &[b"traf", b"tfdt"]);
    assert_eq!(tfdt[0], 1, "tfdt version 1");
    let trun = find(moof, &[b"traf", b"trun"]);
    assert_eq!(be32(trun, 0), 0x0701);
    let n = be32(trun, 4) as usize;
    assert_eq!(trun.len(), 12 + 12 * n);
    let samples = (0..n)
        .map(|i| {
            let at = 12 + 12 * i;
            (be32(trun, at), be32(trun, at + 4), be32(trun, at + 8))
        })
        .collect();
    let mdat = top[1].1;
    let header = if be32(mdat, 0) == 1 { 16 } else { 8 };
    Frag {
        sequence: be32(mfhd, 4),
        decode_90k: be64(tfdt, 4),
        samples,
        data_offset: be32(trun, 8),
        moof_len: top[0].1.len(),
        mdat: &mdat[header..],
    }
}

#[test]
fn init_segment_layout() {
    let e = h264_entry();
    let init = init_segment(&e).unwrap();
    let top: Vec<[u8; 4]> = boxes(&init).iter().map(|b| b.0).collect();
    assert_eq!(top, [*b"ftyp", *b"moov"]);
    assert_eq!(&init[8..12], b"iso5");
    let mvhd = find(&init, &[b"moov", b"mvhd"]);
    assert_eq!(be32(mvhd, 12), 90_000, "timescale");
    let tkhd = find(&init, &[b"moov", b"trak", b"tkhd"]);
    assert_eq!(be32(tkhd, 12), 1, "track id");
    assert_eq!(be32(tkhd, 76), 640 << 16);
    assert_eq!(be32(tkhd, 80), 360 << 16);
    let mdhd = find(&init, &[b"moov", b"trak", b"mdia", b"mdhd"]);
    assert_eq!(be32(mdhd, 12), 90_000);
    let stbl = [b"moov", b"trak", b"mdia", b"minf", b"stbl"];
    let stsd = find(
        &init,
        &[stbl[0], stbl[1], stbl[2], stbl[3], stbl[4], b"stsd"],
    );
    assert_eq!(be32(stsd, 4), 1, "one sample entry");
    let avc1 = boxes(&stsd[8..]);
    assert_eq!(avc1.len(), 1);
    assert_eq!(&avc1[0].0, b"avc1");
    let avcc = find(&avc1[0].1[8 + 78..], &[b"avcC"]);
    assert_eq!(avcc, &e.decoder_config[..]);
    for empty in [b"stts", b"stsc", b"stco"] {
        let b = find(&init, &[stbl[0], stbl[1], stbl[2], stbl[3], stbl[4], empty]);
        assert_eq!(
            be32(b, 4),
            0,
            "{:?} is empty",
            String::from_utf8_lossy(empty)
        );
    }
    let trex = find(&init, &[b"moov", b"mvex", b"trex"]);
    assert_eq!((be32(trex, 4), be32(trex, 8)), (1, 1));

    let h265 = Mp4SampleEntry {
        codec: Codec::H265,
        ..h264_entry()
    };
    let init = init_segment(&h265).unwrap();
    let stsd = find(
        &init,
        &[stbl[0], stbl[1], stbl[2], stbl[3], stbl[4], b"stsd"],
    );
    assert_eq!(&boxes(&stsd[8..])[0].0, b"hvc1");
    assert!(init_segment(&Mp4SampleEntry {
        decoder_config: Vec::new(),
        ..h264_entry()
    })
    .is_err());
    assert!(matches!(
        init_segment(&Mp4SampleEntry {
            codec: Codec::Jpeg,
            ..h264_entry()
        }),
        Err(Mp4Error::Unsupported(Codec::Jpeg))
    ));
}

#[test]
fn fragment_sizes_offsets_and_flags() {
    let mut src = MemSource::default();
    let frames: Vec<Mp4Frame> = (0..30)
        .map(|i| {
            let size = 50 + i * 13;
            Mp4Frame {
                duration_90k: 3000 + (i as u32 % 3),
                size: size as u32,
                key: i % 10 == 0,
                loc: src.add((0..size).map(|j| (i * 7 + j) as u8).collect()),
            }
        })
        .collect();
    let f = fragment_file(42, 1_234_567_890_123, &frames).unwrap();
    let mut bytes = vec![0u8; f.len() as usize];
    assert_eq!(f.read_at(0, &mut bytes, &src).unwrap(), bytes.len());
    let p = parse_fragment(&bytes);
    assert_eq!(p.sequence, 42);
    assert_eq!(p.decode_90k, 1_234_567_890_123);
    assert_eq!(p.samples.len(), 30);
    // The trun's sizes add up to the mdat, which holds the frames in order.
    let sum: u32 = p.samples.iter().map(|s| s.1).sum();
    assert_eq!(sum as usize, p.mdat.len());
    assert_eq!(p.mdat, &src.frames.concat()[..]);
    // The data offset points at the first frame byte, from the moof.
    assert_eq!(p.data_offset as usize, p.moof_len + 8);
    assert_eq!(
        &bytes[p.data_offset as usize..p.data_offset as usize + 4],
        &src.frames[0][..4]
    );
    for (s, f) in p.samples.iter().zip(&frames) {
        assert_eq!((s.0, s.1), (f.duration_90k, f.size));
        assert_eq!(s.2, if f.key { SYNC_FLAGS } else { NON_SYNC_FLAGS });
    }
    // Reads at any offset agree with the whole.
    for at in [0usize, 7, p.moof_len, p.moof_len + 9, bytes.len() - 3] {
        let mut part = vec![0u8; (bytes.len() - at).min(100)];
        f.read_at(at as u64, &mut part, &src).unwrap();
        assert_eq!(part, bytes[at..at + part.len()]);
    }
}

#[test]
fn fragment_head_reuses_its_buffer() {
    let mut head = Vec::new();
    let s = FragSample {
        duration_90k: 3600,
        size: 1000,
        key: true,
    };
    assert_eq!(write_fragment_head(&mut head, 1, 0, [s]).unwrap(), 1000);
    let (len, cap, ptr) = (head.len(), head.capacity(), head.as_ptr());
    for i in 0..100 {
        head.clear();
        let s = FragSample {
            key: i % 25 == 0,
            ..s
        };
        write_fragment_head(&mut head, i + 2, u64::from(i) * 3600, [s]).unwrap();
        assert_eq!(head.len(), len);
    }
    assert_eq!(
        (head.capacity(), head.as_ptr()),
        (cap, ptr),
        "no reallocation"
    );
    // Appends: a caller may put an init segment before it.
    let mut buf = b"prefix".to_vec();
    write_fragment_head(&mut buf, 1, 0, [s]).unwrap();
    assert_eq!(&buf[..6], b"prefix");
    assert_eq!(&buf[10..14], b"moof");
}

#[test]
fn large_payload_uses_a_64_bit_mdat() {
    let big = FragSample {
        duration_90k: 3600,
        size: u32::MAX - 4,
        key: true,
    };
    let mut head = Vec::new();
    let payload = write_fragment_head(&mut head, 1, 0, [big, big]).unwrap();
    assert_eq!(payload, 2 * u64::from(u32::MAX - 4));
    let moof_len = be32(&head, 0) as usize;
    assert_eq!(head.len(), moof_len + 16);
    assert_eq!(be32(&head, moof_len), 1);
    assert_eq!(&head[moof_len + 4..moof_len + 8], b"mdat");
    assert_eq!(be64(&head, moof_len + 8), payload + 16);
    let trun_offset = head.len() - 16 - 24 - 4; // data_offset before 2 samples
    assert_eq!(be32(&head, trun_offset) as usize, moof_len + 16);
}

#[test]
fn empty_fragments_are_refused() {
    let mut head = Vec::new();
    assert!(write_fragment_head(&mut head, 1, 0, std::iter::empty::<FragSample>()).is_err());
    assert!(fragment_file(1, 0, &[]).is_err());
}

/// A clip as an encoder made it: its sample entry, and its frames as
/// length-prefixed NAL units (parameter sets and delimiters left out, as
/// the depacketizers leave them) with their key flags.
pub(crate) struct Clip {
    pub entry: Mp4SampleEntry,
    pub frames: Vec<(Vec<u8>, bool)>,
}

/// Splits an H.264 Annex B stream into access units.
pub(crate) fn h264_clip(data: &[u8]) -> Clip {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i..i + 3] == [0, 0, 1] {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut nals: Vec<&[u8]> = Vec::new();
    for (k, &s) in starts.iter().enumerate() {
        let mut end = starts.get(k + 1).map_or(data.len(), |&n| n - 3);
        while end > s && data[end - 1] == 0 {
            end -= 1;
        }
        if end > s {
            nals.push(&data[s..end]);
        }
    }
    let b64 = |n: &[u8]| base64::engine::general_purpose::STANDARD.encode(n);
    let first_of = |t: u8| *nals.iter().find(|n| n[0] & 0x1f == t).unwrap();
    let fmtp = format!(
        "sprop-parameter-sets={},{}",
        b64(first_of(7)),
        b64(first_of(8))
    );
    let d = crate::media::Depacketizer::new(Codec::H264, Some(&fmtp), 1 << 20);
    let p = d.params().expect("parameters from sprop").clone();
    let mut frames: Vec<(Vec<u8>, bool)> = Vec::new();
    let mut pending = Vec::new();
    for n in nals {
        let t = n[0] & 0x1f;
        if matches!(t, 7..=9) {
            continue;
        }
        let mut prefixed = (n.len() as u32).to_be_bytes().to_vec();
        prefixed.extend_from_slice(n);
        if !matches!(t, 1..=5) {
            pending.extend_from_slice(&prefixed);
            continue;
        }
        // first_mb_in_slice == 0: a new picture.
        if n[1] & 0x80 != 0 {
            frames.push((std::mem::take(&mut pending), t == 5));
        }
        if let Some(f) = frames.last_mut() {
            f.0.append(&mut pending);
            f.0.extend_from_slice(&prefixed);
        }
    }
    Clip {
        entry: Mp4SampleEntry {
            codec: Codec::H264,
            width: p.width,
            height: p.height,
            decoder_config: p.decoder_config,
        },
        frames,
    }
}

/// The built-in camera's H.264 clip: 100 frames, 640x360, key frames at 0
/// and 50.
pub(crate) fn builtin_h264() -> Clip {
    h264_clip(include_bytes!("../../camera/clips/h264.264"))
}

/// Runs ffmpeg over `bytes` (written to a temporary file named `name`):
/// asserts a clean decode and returns ffprobe's packet (dts, key flag) list.
pub(crate) fn decode_and_probe(bytes: &[u8], name: &str) -> Vec<(i64, bool)> {
    let path = std::env::temp_dir().join(format!("vigil-fmp4-{}-{name}", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(&path)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["packet=dts,flags", "-of", "csv=p=0"])
        .arg(&path)
        .output()
        .expect("ffprobe runs");
    let _ = std::fs::remove_file(&path);
    assert!(out.status.success() && err.is_empty(), "ffmpeg: {err}");
    String::from_utf8_lossy(&probe.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (dts, flags) = l.split_once(',').unwrap();
            (dts.parse().unwrap(), flags.starts_with('K'))
        })
        .collect()
}

#[test]
#[ignore = "needs ffmpeg (run by make test)"]
fn fragments_of_a_real_clip_decode() {
    let clip = builtin_h264();
    assert_eq!(clip.frames.len(), 100);
    let mut src = MemSource::default();
    let mut out = init_segment(&clip.entry).unwrap();
    // Twice the clip, in fragments of 25 frames, decode times running on.
    let mut dts = 0u64;
    for (n, chunk) in clip
        .frames
        .iter()
        .chain(&clip.frames)
        .collect::<Vec<_>>()
        .chunks(50)
        .enumerate()
    {
        let frames: Vec<Mp4Frame> = chunk
            .iter()
            .map(|(data, key)| Mp4Frame {
                duration_90k: 3600,
                size: data.len() as u32,
                key: *key,
                loc: src.add(data.clone()),
            })
            .collect();
        let f = fragment_file(n as u32 + 1, dts, &frames).unwrap();
        let at = out.len();
        out.resize(at + f.len() as usize, 0);
        f.read_at(0, &mut out[at..], &src).unwrap();
        dts += 50 * 3600;
    }
    let packets = decode_and_probe(&out, "clip.mp4");
    assert_eq!(packets.len(), 200);
    assert!(packets[0].1, "starts with a key frame");
    for (i, w) in packets.windows(2).enumerate() {
        assert_eq!(w[1].0 - w[0].0, 3600, "dts continuous at packet {i}");
    }
    assert_eq!(packets.iter().filter(|p| p.1).count(), 4);
}
