//! Tests of the MPEG-TS muxer: packet structure, lengths and bytes
//! (always), and real decoders (ffprobe / ffmpeg, ignored unless asked
//! for, as `make test` does).

use super::psi::crc32_mpeg2;
use super::*;
use crate::serve::mp4::{Mp4SampleEntry, SampleLoc};
use base64::Engine;
use std::cell::Cell;
use std::path::{Path, PathBuf};
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
            pool: 1,
            offset: self.frames.len() as u64 - 1,
            generation: 1,
        }
    }
}

impl SampleSource for &MemSource {
    fn read(&self, loc: &SampleLoc, off: u32, buf: &mut [u8]) -> Result<(), Mp4Error> {
        self.reads.set(self.reads.get() + 1);
        if self.fail == Some(loc.offset) {
            return Err(Mp4Error::Overwritten);
        }
        let f = &self.frames[loc.offset as usize];
        let off = off as usize;
        let s = f
            .get(off..off + buf.len())
            .ok_or_else(|| Mp4Error::Source(format!("read {off}+{} of {}", buf.len(), f.len())))?;
        buf.copy_from_slice(s);
        Ok(())
    }
}

/// An avcC holding a 1-byte SPS and a 1-byte PPS.
fn h264_entry() -> Mp4SampleEntry {
    Mp4SampleEntry {
        codec: Codec::H264,
        width: 640,
        height: 360,
        decoder_config: vec![1, 0x4d, 0, 0x1e, 0xff, 0xe1, 0, 1, 0x67, 1, 0, 1, 0x68],
    }
}

const H264_PARAMS: [u8; 10] = [0, 0, 0, 1, 0x67, 0, 0, 0, 1, 0x68];

/// A sample of NAL units of the given lengths (each filled with a pattern
/// that never looks like a start code), length-prefixed.
fn sample(nal_lens: &[usize], seed: usize) -> Vec<u8> {
    let mut v = Vec::new();
    for (k, &n) in nal_lens.iter().enumerate() {
        v.extend_from_slice(&(n as u32).to_be_bytes());
        v.extend((0..n).map(|j| 0x10 + ((seed * 13 + k * 7 + j) % 200) as u8));
    }
    v
}

/// A sample of exactly `size` bytes: one NAL unit when it can hold one,
/// else bytes with no prefix at all.
fn sample_of_size(size: usize, seed: usize) -> Vec<u8> {
    if size >= 4 {
        sample(&[size - 4], seed)
    } else {
        vec![0xAB; size]
    }
}

/// What a sample must become: each whole 4-byte prefix a start code, from
/// the first bad length on the bytes as they are.
fn annex_b(sample: &[u8]) -> Vec<u8> {
    let mut v = sample.to_vec();
    let mut i = 0usize;
    while v.len().saturating_sub(i) >= 4 {
        let n = u32::from_be_bytes(v[i..i + 4].try_into().unwrap()) as usize;
        v[i..i + 4].copy_from_slice(&[0, 0, 0, 1]);
        // Saturating: a bad length near u32::MAX overflows a 32-bit usize.
        i = i.saturating_add(4).saturating_add(n);
    }
    v
}

fn frame(src: &mut MemSource, data: Vec<u8>, key: bool, duration: u32) -> Mp4Frame {
    Mp4Frame {
        duration_90k: duration,
        size: data.len() as u32,
        key,
        loc: src.add(data),
    }
}

fn plan(entries: Vec<Mp4SampleEntry>, segments: Vec<Mp4Segment>, skip: u32) -> Plan {
    Plan {
        entries,
        segments,
        skip_90k: skip,
        duration_90k: 0,
        first_start_90k: 1_700_000_000 * 90_000,
    }
}

/// Reads the whole stream in reads of `chunk` bytes.
fn read_all(f: &Arc<TsFile>, src: &MemSource, chunk: usize) -> Vec<u8> {
    let mut r = f.clone().reader(src);
    let mut out = Vec::new();
    let mut buf = vec![0u8; chunk];
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    out
}

/// One PES as the demuxer saw it.
#[derive(Debug)]
struct Pes {
    pcr: u64,
    random_access: bool,
    /// PAT and PMT came right before it.
    after_psi: bool,
    data: Vec<u8>,
}

/// What `demux` found.
#[derive(Debug)]
struct Demuxed {
    pes: Vec<Pes>,
    pmt_stream_type: u8,
    /// Packets carrying a PCR.
    pcrs: usize,
}

/// A strict demuxer for what we write: every packet checked (sync byte,
/// PIDs, continuity counters, adaptation fields, PSI CRCs, PCRs going
/// forward by at most 100 ms).
fn demux(ts: &[u8]) -> Demuxed {
    demux_with(ts, 9000)
}

/// [`demux`], with PCRs at most `max_pcr_step` apart.
fn demux_with(ts: &[u8], max_pcr_step: u64) -> Demuxed {
    assert_eq!(ts.len() % PACKET, 0, "not whole packets");
    let mut cc: std::collections::HashMap<u16, u8> = Default::default();
    let mut pes: Vec<Pes> = Vec::new();
    let mut psi_run = 0;
    let mut stream_type = 0;
    let mut last_pcr: Option<u64> = None;
    let mut pcrs = 0;
    for (i, p) in ts.chunks(PACKET).enumerate() {
        assert_eq!(p[0], 0x47, "sync byte of packet {i}");
        let pusi = p[1] & 0x40 != 0;
        let pid = u16::from(p[1] & 0x1f) << 8 | u16::from(p[2]);
        assert_eq!(p[1] & 0x80, 0, "transport_error_indicator");
        let afc = (p[3] >> 4) & 3;
        assert_ne!(afc, 0, "packet {i}: reserved adaptation_field_control");
        let c = p[3] & 0x0f;
        if afc == 2 {
            // No payload: the counter repeats.
            assert_eq!(cc.get(&pid), Some(&c), "continuity of pid {pid:#x} at {i}");
        } else if let Some(prev) = cc.insert(pid, c) {
            assert_eq!(c, (prev + 1) & 0x0f, "continuity of pid {pid:#x} at {i}");
        }
        let mut at = 4;
        let mut pcr = None;
        let mut random_access = false;
        if afc & 2 != 0 {
            let len = p[4] as usize;
            assert!(len <= 183);
            if len > 0 {
                let flags = p[5];
                random_access = flags & 0x40 != 0;
                if flags & 0x10 != 0 {
                    let b = &p[6..12];
                    let base = u64::from(b[0]) << 25
                        | u64::from(b[1]) << 17
                        | u64::from(b[2]) << 9
                        | u64::from(b[3]) << 1
                        | u64::from(b[4]) >> 7;
                    assert_eq!(b[4] & 0x7e, 0x7e, "reserved bits");
                    pcr = Some(base);
                    if let Some(last) = last_pcr {
                        // Forward, modulo 2^33, and at most 100 ms on.
                        let step = (base + WRAP - last) % WRAP;
                        assert!(step <= max_pcr_step, "PCR step {step} at packet {i}");
                    }
                    last_pcr = Some(base);
                    assert!(p[12..5 + len].iter().all(|&x| x == 0xff), "stuffing");
                } else {
                    assert_eq!(flags, 0);
                    assert!(p[6..5 + len].iter().all(|&x| x == 0xff), "stuffing");
                }
            }
            at = 5 + len;
        }
        if pcr.is_some() {
            pcrs += 1;
        }
        if afc == 2 {
            assert_eq!(pid, 0x100);
            assert_eq!(at, PACKET, "adaptation field fills the packet");
            assert!(pcr.is_some(), "a packet without payload carries a PCR");
            continue;
        }
        let payload = &p[at..];
        match pid {
            0 | 0x1000 => {
                assert!(pusi);
                assert_eq!(payload[0], 0, "pointer_field");
                let len = (usize::from(payload[2] & 0x0f) << 8) | usize::from(payload[3]);
                let section = &payload[1..4 + len];
                assert_eq!(crc32_mpeg2(section), 0, "CRC of pid {pid}");
                assert!(payload[4 + len..].iter().all(|&x| x == 0xff));
                if pid == 0 {
                    assert_eq!(psi_run, 0, "PAT first");
                    assert_eq!(section[0], 0);
                    // program 1 on PID 0x1000
                    assert_eq!(&section[8..12], &[0, 1, 0xf0, 0x00]);
                } else {
                    assert_eq!(psi_run, 1, "PMT after PAT");
                    assert_eq!(section[0], 2);
                    assert_eq!(&section[8..10], &[0xe1, 0x00], "PCR PID");
                    stream_type = section[12];
                    assert_eq!(&section[13..15], &[0xe1, 0x00]);
                }
                psi_run += 1;
            }
            0x100 => {
                if pusi {
                    pes.push(Pes {
                        pcr: pcr.expect("PCR on the first packet of a PES"),
                        random_access,
                        after_psi: psi_run == 2,
                        data: payload.to_vec(),
                    });
                    psi_run = 0;
                } else {
                    assert!(pcr.is_none());
                    pes.last_mut()
                        .expect("PES start")
                        .data
                        .extend_from_slice(payload);
                }
            }
            other => panic!("unexpected pid {other:#x}"),
        }
    }
    assert_eq!(psi_run, 0, "PSI at the end");
    Demuxed {
        pes,
        pmt_stream_type: stream_type,
        pcrs,
    }
}

/// PTS of a PES and its elementary stream bytes, the header checked.
fn pes_parts(p: &Pes) -> (u64, &[u8]) {
    let d = &p.data;
    assert_eq!(&d[..4], &[0, 0, 1, 0xe0]);
    let len = usize::from(u16::from_be_bytes([d[4], d[5]]));
    if len != 0 {
        assert_eq!(len, d.len() - 6, "PES_packet_length");
    } else {
        assert!(d.len() - 6 > 65535);
    }
    assert_eq!(d[6], 0x84);
    assert_eq!(d[7], 0x80, "PTS only");
    assert_eq!(d[8], 5);
    let t = &d[9..14];
    assert_eq!(t[0] & 0xf1, 0x21);
    assert_eq!(t[2] & 1, 1);
    assert_eq!(t[4] & 1, 1);
    let pts = u64::from(t[0] & 0x0e) << 29
        | u64::from(t[1]) << 22
        | u64::from(t[2] >> 1) << 15
        | u64::from(t[3]) << 7
        | u64::from(t[4] >> 1);
    (pts, &d[14..])
}

/// Checks a whole stream against the frames it was made from.
fn check_stream(
    ts: &[u8],
    src: &MemSource,
    segs: &[Mp4Segment],
    params: &[&[u8]],
    aud: &[u8],
) -> Demuxed {
    check_stream_with(ts, src, segs, params, aud, u64::from(PCR_INTERVAL))
}

/// [`check_stream`], with PCRs at most `max_pcr_step` apart.
fn check_stream_with(
    ts: &[u8],
    src: &MemSource,
    segs: &[Mp4Segment],
    params: &[&[u8]],
    aud: &[u8],
    max_pcr_step: u64,
) -> Demuxed {
    let d = demux_with(ts, max_pcr_step);
    let frames: Vec<(usize, &Mp4Frame)> = segs
        .iter()
        .flat_map(|s| s.frames.iter().map(move |f| (s.sample_entry, f)))
        .collect();
    assert_eq!(d.pes.len(), frames.len());
    let mut pts = FIRST_PTS;
    for (i, (p, (entry, f))) in d.pes.iter().zip(&frames).enumerate() {
        let (got_pts, es) = pes_parts(p);
        assert_eq!(got_pts, pts % WRAP, "PTS of frame {i}");
        assert_eq!(p.pcr, (pts - PCR_DELAY) % WRAP, "PCR of frame {i}");
        assert_eq!(p.random_access, f.key);
        assert_eq!(p.after_psi, f.key, "PAT/PMT before key frames only");
        let mut want = aud.to_vec();
        if f.key {
            want.extend_from_slice(params[*entry]);
        }
        want.extend(annex_b(&src.frames[f.loc.offset as usize]));
        assert!(es == want, "frame {i}: elementary stream bytes differ");
        pts += u64::from(f.duration_90k);
    }
    d
}

fn build(segs: Vec<Mp4Segment>, entries: Vec<Mp4SampleEntry>) -> Arc<TsFile> {
    Arc::new(TsFile::new(plan(entries, segs, 0)).unwrap())
}

#[test]
fn every_pes_size_around_packet_boundaries() {
    // PES lengths from 20 to 980 bytes, key and not: every number of
    // stuffing bytes in first, middle and last packets.
    let mut src = MemSource::default();
    let mut frames = Vec::new();
    for size in 0..=960usize {
        frames.push(frame(
            &mut src,
            sample_of_size(size, size),
            size % 97 == 0,
            3000,
        ));
    }
    let segs = vec![Mp4Segment {
        sample_entry: 0,
        frames,
    }];
    let f = build(segs.clone(), vec![h264_entry()]);
    let ts = read_all(&f, &src, 1 << 16);
    assert_eq!(ts.len() as u64, f.len(), "length promised = length made");
    check_stream(&ts, &src, &segs, &[&H264_PARAMS], &AUD_H264);
    assert_eq!(demux(&ts).pmt_stream_type, 0x1b);
    // Any read size gives the same bytes.
    for chunk in [1, 187, 188, 189, 1000, 4096] {
        assert!(read_all(&f, &src, chunk) == ts, "reads of {chunk}");
    }
}

#[test]
fn packet_counts_are_exact() {
    for (len, n) in [
        (1, 1),
        (176, 1),
        (177, 2),
        (360, 2),
        (361, 3),
        (544, 3),
        (545, 4),
    ] {
        assert_eq!(pes_packets(len), n, "PES of {len}");
    }
    // Frames whose PES ends exactly at, or one byte either side of, a
    // packet's end.
    let mut src = MemSource::default();
    let overhead = PES_HEADER_LEN + AUD_H264.len();
    let mut frames = vec![frame(&mut src, sample_of_size(100, 0), true, 3600)];
    let mut want_packets = 2 + pes_packets((overhead + H264_PARAMS.len() + 100) as u64);
    for k in 0..40usize {
        for d in [-1i64, 0, 1] {
            let pes = FIRST_PAYLOAD as i64 + k as i64 * PAYLOAD as i64 + d;
            let size = (pes - overhead as i64) as usize;
            frames.push(frame(&mut src, sample_of_size(size, k), false, 3600));
            want_packets += k as u64 + 1 + u64::from(d > 0);
        }
    }
    let segs = vec![Mp4Segment {
        sample_entry: 0,
        frames,
    }];
    let f = build(segs.clone(), vec![h264_entry()]);
    assert_eq!(f.len(), want_packets * PACKET as u64);
    let ts = read_all(&f, &src, 7777);
    assert_eq!(ts.len() as u64, f.len());
    check_stream(&ts, &src, &segs, &[&H264_PARAMS], &AUD_H264);
}

#[test]
fn length_prefixes_across_chunk_boundaries() {
    let mut src = MemSource::default();
    // A prefix straddling the first chunk's end (at CHUNK - 2), then one
    // exactly at the second chunk's end, then many of every size.
    let mut lens = vec![CHUNK - 6, CHUNK - 4];
    let mut r = 17u64;
    for _ in 0..400 {
        r = r.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        lens.push((r >> 33) as usize % 700);
    }
    let big = sample(&lens, 1);
    assert!(big.len() > 4 * CHUNK);
    // And frames of many NAL units whose sizes put prefixes at every
    // offset modulo the chunk.
    let mut frames = vec![frame(&mut src, big, true, 3600)];
    for k in 0..8 {
        let lens: Vec<usize> = (0..300).map(|j| 100 + (j * 31 + k) % 251).collect();
        frames.push(frame(&mut src, sample(&lens, k), k == 4, 3600));
    }
    let segs = vec![Mp4Segment {
        sample_entry: 0,
        frames,
    }];
    let f = build(segs.clone(), vec![h264_entry()]);
    let ts = read_all(&f, &src, 65536);
    assert_eq!(ts.len() as u64, f.len());
    check_stream(&ts, &src, &segs, &[&H264_PARAMS], &AUD_H264);
    // A frame of over 64 KiB: PES_packet_length 0 (checked by pes_parts).
    let d = demux(&ts);
    assert_eq!(&d.pes[0].data[4..6], &[0, 0]);
}

#[test]
fn malformed_samples_keep_their_length() {
    let mut src = MemSource::default();
    let mut overrun = sample(&[10, 20], 0);
    overrun[14..18].copy_from_slice(&1000u32.to_be_bytes()); // second NAL says 1000
    let mut short_tail = sample(&[10], 0);
    short_tail.extend_from_slice(&[0, 0, 1]); // 3 bytes: not a prefix
    let zero_len = sample(&[0, 0, 5], 0);
    let frames = vec![
        frame(&mut src, overrun, true, 3600),
        frame(&mut src, short_tail, false, 3600),
        frame(&mut src, zero_len, false, 3600),
        frame(&mut src, vec![0xff; 50], false, 3600), // a huge first length
        frame(&mut src, Vec::new(), false, 3600),
    ];
    let segs = vec![Mp4Segment {
        sample_entry: 0,
        frames,
    }];
    let f = build(segs.clone(), vec![h264_entry()]);
    let ts = read_all(&f, &src, 500);
    assert_eq!(ts.len() as u64, f.len());
    check_stream(&ts, &src, &segs, &[&H264_PARAMS], &AUD_H264);
}

#[test]
fn parameter_sets_before_every_key_frame_and_entry_change() {
    let mut src = MemSource::default();
    let other = Mp4SampleEntry {
        width: 320,
        height: 240,
        decoder_config: vec![
            1, 0x4d, 0, 0x1e, 0xff, 0xe1, 0, 2, 0x67, 9, 2, 0, 1, 0x68, 0, 2, 0x68, 1,
        ],
        ..h264_entry()
    };
    let other_params: &[u8] = &[0, 0, 0, 1, 0x67, 9, 0, 0, 0, 1, 0x68, 0, 0, 0, 1, 0x68, 1];
    let mut seg = |entry: usize, n: usize, gop: usize| Mp4Segment {
        sample_entry: entry,
        frames: (0..n)
            .map(|i| frame(&mut src, sample(&[50 + i], i), i % gop == 0, 3600))
            .collect(),
    };
    let segs = vec![seg(0, 12, 5), seg(1, 7, 3), seg(0, 4, 4)];
    let f = build(segs.clone(), vec![h264_entry(), other]);
    let ts = read_all(&f, &src, 4096);
    check_stream(&ts, &src, &segs, &[&H264_PARAMS, other_params], &AUD_H264);
    assert_eq!(f.frames(), 23);
    assert_eq!(f.duration_90k(), 23 * 3600);
}

/// An hvcC with one VPS, SPS and PPS of 2 to 4 bytes.
fn h265_entry() -> Mp4SampleEntry {
    let mut c = vec![1u8];
    c.extend_from_slice(&[0; 21]);
    c.push(3);
    for (t, nal) in [
        (32u8, &[0x40u8, 1][..]),
        (33, &[0x42, 1, 7]),
        (34, &[0x44, 1, 9, 9]),
    ] {
        c.push(0x80 | t);
        c.extend_from_slice(&1u16.to_be_bytes());
        c.extend_from_slice(&(nal.len() as u16).to_be_bytes());
        c.extend_from_slice(nal);
    }
    Mp4SampleEntry {
        codec: Codec::H265,
        width: 640,
        height: 360,
        decoder_config: c,
    }
}

#[test]
fn h265_stream_type_and_parameter_sets() {
    let mut src = MemSource::default();
    let frames = (0..30)
        .map(|i| frame(&mut src, sample(&[300 + i * 11], i), i % 10 == 0, 3003))
        .collect();
    let segs = vec![Mp4Segment {
        sample_entry: 0,
        frames,
    }];
    let f = build(segs.clone(), vec![h265_entry()]);
    let ts = read_all(&f, &src, 4096);
    let params: &[u8] = &[
        0, 0, 0, 1, 0x40, 1, 0, 0, 0, 1, 0x42, 1, 7, 0, 0, 0, 1, 0x44, 1, 9, 9,
    ];
    check_stream(&ts, &src, &segs, &[params], &AUD_H265);
    assert_eq!(demux(&ts).pmt_stream_type, 0x24);
}

#[test]
fn timestamps_wrap_at_33_bits() {
    // Frames of 1000 s each: the 33-bit clock (about 26.5 h) wraps.
    let mut src = MemSource::default();
    let frames = (0..100)
        .map(|i| frame(&mut src, sample(&[20], i), i % 50 == 0, 90_000_000))
        .collect();
    let segs = vec![Mp4Segment {
        sample_entry: 0,
        frames,
    }];
    let f = build(segs.clone(), vec![h264_entry()]);
    let ts = read_all(&f, &src, 4096);
    assert_eq!(ts.len() as u64, f.len());
    let d = check_stream_with(&ts, &src, &segs, &[&H264_PARAMS], &AUD_H264, u64::MAX);
    // PCR-only packets after each frame, up to their cap.
    assert_eq!(d.pcrs, 100 * (1 + MAX_PCR_ONLY as usize));
}

#[test]
fn pcr_every_100_ms_at_low_frame_rates() {
    // 5 fps, 1 fps, and durations just around 100 ms multiples.
    let mut src = MemSource::default();
    let durations = [
        18_000u32, 90_000, 9_000, 9_001, 17_999, 18_001, 1, 3_600, 90_000,
    ];
    let frames = durations
        .iter()
        .enumerate()
        .map(|(i, &d)| frame(&mut src, sample(&[10 + i * 150], i), i % 3 == 0, d))
        .collect();
    let segs = vec![Mp4Segment {
        sample_entry: 0,
        frames,
    }];
    let f = build(segs.clone(), vec![h264_entry()]);
    let ts = read_all(&f, &src, 1000);
    assert_eq!(ts.len() as u64, f.len());
    let d = check_stream(&ts, &src, &segs, &[&H264_PARAMS], &AUD_H264);
    let extra: u32 = [1, 9, 0, 1, 1, 2, 0, 0, 9].iter().sum();
    assert_eq!(d.pcrs, durations.len() + extra as usize);
}

#[test]
fn source_errors_end_the_stream() {
    let mut src = MemSource::default();
    let frames: Vec<Mp4Frame> = (0..20)
        .map(|i| frame(&mut src, sample(&[2000], i), i % 10 == 0, 3600))
        .collect();
    let bad = frames[12].loc.offset;
    let segs = vec![Mp4Segment {
        sample_entry: 0,
        frames,
    }];
    let f = build(segs, vec![h264_entry()]);
    let whole = read_all(&f, &src, 4096);
    src.fail = Some(bad);
    let mut r = f.clone().reader(&src);
    let mut got = Vec::new();
    let mut buf = vec![0u8; 1000];
    let err = loop {
        match r.read(&mut buf) {
            Ok(0) => panic!("ended without the error"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => break e,
        }
    };
    assert!(err.to_string().contains("overwritten"), "{err}");
    // What came before the error is the stream's beginning, whole packets,
    // up to the bad frame.
    assert!(!got.is_empty() && got.len() % PACKET == 0);
    assert!(whole.starts_with(&got));
    assert!(got.len() < whole.len() * 13 / 20);
    // And it stays ended.
    assert!(r.read(&mut buf).is_err());
}

#[test]
fn bounded_reads_from_the_source() {
    // A 1 MB frame is read in chunks, not whole.
    let mut src = MemSource::default();
    let frames = vec![frame(&mut src, sample(&[1 << 20], 0), true, 3600)];
    let segs = vec![Mp4Segment {
        sample_entry: 0,
        frames,
    }];
    let f = build(segs.clone(), vec![h264_entry()]);
    let ts = read_all(&f, &src, 65536);
    check_stream(&ts, &src, &segs, &[&H264_PARAMS], &AUD_H264);
    assert_eq!(src.reads.get(), (1 << 20) / CHUNK + 1);
}

#[test]
fn refused_plans() {
    let mut src = MemSource::default();
    let mut seg = |key: bool, entry: usize| Mp4Segment {
        sample_entry: entry,
        frames: vec![frame(&mut src, sample(&[10], 0), key, 3600)],
    };
    let ok = seg(true, 0);
    let jpeg = Mp4SampleEntry {
        codec: Codec::Jpeg,
        decoder_config: Vec::new(),
        ..h264_entry()
    };
    let new = |e: Vec<Mp4SampleEntry>, s: Vec<Mp4Segment>| TsFile::new(plan(e, s, 0)).map(|_| ());
    assert_eq!(
        new(vec![jpeg], vec![ok.clone()]),
        Err(TsError::Unsupported(Codec::Jpeg))
    );
    assert_eq!(
        new(
            vec![h264_entry(), h265_entry()],
            vec![ok.clone(), seg(true, 1)]
        ),
        Err(TsError::CodecChange {
            from: Codec::H264,
            to: Codec::H265
        })
    );
    let invalid = |r: Result<(), TsError>| matches!(r, Err(TsError::Invalid(_)));
    assert!(invalid(new(vec![h264_entry()], vec![])));
    assert!(invalid(new(vec![h264_entry()], vec![seg(false, 0)])));
    assert!(invalid(new(vec![h264_entry()], vec![seg(true, 1)])));
    let empty = Mp4Segment {
        sample_entry: 0,
        frames: vec![],
    };
    assert!(invalid(new(vec![h264_entry()], vec![ok.clone(), empty])));
    // Broken decoder configuration records.
    for cfg in [
        vec![],
        vec![1, 0x4d, 0, 0x1e, 0xff],
        vec![1, 0x4d, 0, 0x1e, 0xff, 0xe1, 0, 9, 0x67],
        vec![1, 0x4d, 0, 0x1e, 0xff, 0xe0, 1, 0, 1, 0x68],
        vec![1, 0x4d, 0, 0x1e, 0xff, 0xe1, 0, 1, 0x67, 0],
        vec![0, 0x4d, 0, 0x1e, 0xff, 0xe1, 0, 1, 0x67, 1, 0, 1, 0x68],
        vec![1, 0x4d, 0, 0x1e, 0xff, 0xe1, 0, 0, 1, 0, 1, 0x68],
    ] {
        let e = Mp4SampleEntry {
            decoder_config: cfg.clone(),
            ..h264_entry()
        };
        assert!(invalid(new(vec![e], vec![ok.clone()])), "{cfg:?}");
    }
    let mut hvcc = h265_entry().decoder_config;
    hvcc.truncate(30);
    let e = Mp4SampleEntry {
        decoder_config: hvcc,
        ..h265_entry()
    };
    assert!(invalid(new(vec![e], vec![ok.clone()])));
    assert!(TsError::Unsupported(Codec::Jpeg)
        .to_string()
        .contains("jpeg"));
}

#[test]
fn parameter_set_parsing_never_panics() {
    // Every prefix and many bit flips of real records.
    for entry in [h264_entry(), h265_entry()] {
        let c = &entry.decoder_config;
        for n in 0..=c.len() {
            let _ = parameter_sets(entry.codec, &c[..n]);
        }
        for i in 0..c.len() {
            for bit in 0..8 {
                let mut m = c.clone();
                m[i] ^= 1 << bit;
                let _ = parameter_sets(entry.codec, &m);
            }
        }
    }
}

#[test]
fn crc_and_download_name() {
    assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_E6E7);
    assert_eq!(
        file_name("front door", "main", 1_700_000_000 * 90_000),
        "front_door-main-20231114T221320Z.ts"
    );
}

// ---------------------------------------------------------------------------
// Real streams and real decoders.

/// One elementary stream cut into samples.
struct Stream {
    entry: Mp4SampleEntry,
    /// Length-prefixed NAL units without parameter sets or delimiters.
    frames: Vec<(Vec<u8>, bool)>,
}

/// Splits Annex B into NAL units (start codes and trailing zeros removed).
fn split_annex_b(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = None;
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i..i + 3] == [0, 0, 1] {
            if let Some(s) = start {
                out.push(&data[s..i]);
            }
            i += 3;
            start = Some(i);
        } else {
            i += 1;
        }
    }
    if let Some(s) = start {
        out.push(&data[s..]);
    }
    out.into_iter()
        .map(|mut n: &[u8]| {
            while let [rest @ .., 0] = n {
                n = rest;
            }
            n
        })
        .filter(|n| !n.is_empty())
        .collect()
}

/// Frames and the decoder configuration (from our own depacketizer, fed
/// the parameter sets as an SDP would carry them).
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
    let mut pending: Vec<u8> = Vec::new();
    for n in nals {
        let t = nal_type(n);
        let (skip, vcl, key, first_slice) = match codec {
            Codec::H264 => (
                matches!(t, 7..=9),
                matches!(t, 1..=5),
                t == 5,
                n[1] & 0x80 != 0,
            ),
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
        pending.extend_from_slice(&(n.len() as u32).to_be_bytes());
        pending.extend_from_slice(n);
        if !vcl {
            continue;
        }
        match frames.last_mut() {
            Some(f) if !first_slice => f.0.append(&mut pending),
            _ => frames.push((std::mem::take(&mut pending), key)),
        }
    }
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

fn clip_path(codec: Codec) -> PathBuf {
    let name = match codec {
        Codec::H264 => "h264.264",
        _ => "h265.265",
    };
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/camera/clips")
        .join(name)
}

fn segment(src: &mut MemSource, s: &Stream, entry: usize, r: std::ops::Range<usize>) -> Mp4Segment {
    Mp4Segment {
        sample_entry: entry,
        frames: s.frames[r]
            .iter()
            .map(|(data, key)| frame(src, data.clone(), *key, FPS25))
            .collect(),
    }
}

struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> Self {
        TempFile(std::env::temp_dir().join(format!("vigil-ts-{}-{name}", std::process::id())))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn write(plan: Plan, src: &MemSource, name: &str) -> (TempFile, Arc<TsFile>) {
    let f = Arc::new(TsFile::new(plan).unwrap());
    let bytes = read_all(&f, src, 65536);
    assert_eq!(bytes.len() as u64, f.len());
    let t = TempFile::new(name);
    std::fs::write(&t.0, bytes).unwrap();
    (t, f)
}

fn probe(path: &Path) -> Vec<(String, String)> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args([
            "-show_entries",
            "stream=codec_name,width,height,nb_read_frames:format=duration,format_name",
        ])
        .args(["-of", "default=noprint_wrappers=1"])
        .arg(path)
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
fn decode_clean(path: &Path) {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.is_empty(), "ffmpeg: {err}");
}

/// The MD5 of each decoded picture, in order (at its own size: ffmpeg
/// would otherwise scale pictures after a resolution change to the first
/// one's size).
fn frame_md5s(path: &Path) -> Vec<String> {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-autoscale", "0", "-f", "framemd5", "-"])
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

/// Checks codec, size, frame count and duration (within one frame).
fn assert_probe(path: &Path, codec: &str, size: (u16, u16), frames: usize, duration_90k: u64) {
    let p = probe(path);
    assert_eq!(get(&p, "format_name"), "mpegts");
    assert_eq!(get(&p, "codec_name"), codec);
    assert_eq!(get(&p, "width"), size.0.to_string());
    assert_eq!(get(&p, "height"), size.1.to_string());
    assert_eq!(get(&p, "nb_read_frames"), frames.to_string());
    let d: f64 = get(&p, "duration").parse().unwrap();
    let want = duration_90k as f64 / 90_000.0;
    assert!((d - want).abs() <= 0.04 + 1e-6, "duration {d}, want {want}");
}

fn clip_plays(codec: Codec, name: &str) {
    let s = clip(codec);
    assert_eq!(s.frames.len(), 100);
    let mut src = MemSource::default();
    let seg = segment(&mut src, &s, 0, 0..100);
    let (t, f) = write(
        plan(vec![s.entry.clone()], vec![seg], 0),
        &src,
        &format!("clip-{name}.ts"),
    );
    assert_eq!(f.duration_90k(), 100 * 3600);
    assert_probe(&t.0, name, (640, 360), 100, 100 * 3600);
    decode_clean(&t.0);
    // The very pictures of the clip.
    assert_eq!(frame_md5s(&t.0), frame_md5s(&clip_path(codec)));
}

#[test]
#[ignore = "needs ffmpeg (run by make test)"]
fn h264_clip_plays() {
    clip_plays(Codec::H264, "h264");
}

#[test]
#[ignore = "needs ffmpeg (run by make test)"]
fn h265_clip_plays() {
    clip_plays(Codec::H265, "hevc");
}

#[test]
#[ignore = "needs ffmpeg (run by make test)"]
fn spliced_recordings_play() {
    for (codec, name) in [(Codec::H264, "h264"), (Codec::H265, "hevc")] {
        let s = clip(codec);
        let mut src = MemSource::default();
        let segs = vec![
            segment(&mut src, &s, 0, 0..100),
            segment(&mut src, &s, 0, 50..100),
            segment(&mut src, &s, 0, 0..100),
        ];
        let (t, _) = write(
            plan(vec![s.entry.clone()], segs, 0),
            &src,
            &format!("splice-{name}.ts"),
        );
        assert_probe(&t.0, name, (640, 360), 250, 250 * 3600);
        decode_clean(&t.0);
        let want = frame_md5s(&clip_path(codec));
        let got = frame_md5s(&t.0);
        assert_eq!(got[..100], want[..]);
        assert_eq!(got[100..150], want[50..]);
        assert_eq!(got[150..], want[..]);
    }
}

#[test]
#[ignore = "needs ffmpeg (run by make test)"]
fn mid_gop_start_begins_at_the_key_frame() {
    let s = clip(Codec::H264);
    let mut src = MemSource::default();
    // Asked from frame 60 to frame 95: the plan starts at key frame 50,
    // 10 frames early, and so does the stream.
    let seg = segment(&mut src, &s, 0, 50..95);
    let (t, f) = write(
        plan(vec![s.entry.clone()], vec![seg], 10 * 3600),
        &src,
        "midgop.ts",
    );
    assert_eq!(f.skip_90k(), 10 * 3600);
    assert_probe(&t.0, "h264", (640, 360), 45, 45 * 3600);
    decode_clean(&t.0);
    assert_eq!(
        frame_md5s(&t.0),
        frame_md5s(&clip_path(Codec::H264))[50..95]
    );
}

#[test]
#[ignore = "needs ffmpeg (run by make test)"]
fn resolution_change_plays_on() {
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
    let (t, _) = write(plan(entries, segs, 0), &src, "switch.ts");
    decode_clean(&t.0);
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["frame=width,height", "-of", "csv=p=0"])
        .arg(&t.0)
        .output()
        .unwrap();
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
    // And the pictures are the sources' own.
    let want_big = frame_md5s(&clip_path(Codec::H264));
    let want_small = frame_md5s(&es.0);
    let got = frame_md5s(&t.0);
    assert_eq!(got[..100], want_big[..]);
    assert_eq!(got[100..150], want_small[..]);
    assert_eq!(got[150..], want_big[50..]);
}
