//! `make bench` part: a repeatable figure for the ingest path, free of
//! network timing. The built-in camera's H.264 clip is packetized once
//! into an RTSP interleaved byte stream (RTP over TCP, as a camera sends
//! it: single-NAL and FU-A packets, the frames padded with filler NAL
//! units up to 2 Mbit/s like `vigil camera --bitrate-kbps 2000`), then
//! replayed through what `vigil run` does with those bytes: interleaved
//! framing, RTP parsing, timestamp unwrapping, depacketizing, the arena
//! ring, and the writer (pool files and index, with its commits).
//!
//! Printed: the replay's speed (MB/s of interleaved bytes, native), then,
//! when valgrind is installed, the instructions per MB ingested counted by
//! `valgrind --tool=callgrind` on `ingest` alone (setting up excluded), and the
//! hottest functions (inclusive and self) from `callgrind_annotate`.
//! Instruction counts are the same on a busy machine as on an idle one,
//! so they compare builds where timings cannot.
//!
//! The byte stream is built by this file (not by `vigil::camera`, whose
//! packetizer is internal) from the clip file itself: the same input
//! every run.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vigil::arena::{self, FrameMeta, Push, RingWriter};
use vigil::config::{self, StreamKind};
use vigil::media::Depacketizer;
use vigil::rtsp::conn::{parse_frame, Framed};
use vigil::rtsp::rtp::TimestampUnwrapper;
use vigil::store::{self, format, writer::Writer, writer::WriterStream};
use vigil::stream::rtp::RtpPacket;
use vigil::stream::Codec;
use vigil::stream::StreamStatus;

const CLIP: &[u8] = include_bytes!("../src/camera/clips/h264.264");
const FPS: u32 = 25;
const KBPS: u32 = 2000;
const SECONDS: u32 = 20;
const MAX_PAYLOAD: usize = 1400;
const INNER: &str = "VIGIL_BENCH_REPLAY_INNER";

fn main() {
    let stream = interleaved_stream();
    let mb = stream.len() as f64 / 1e6;
    if std::env::var_os(INNER).is_some() {
        // Under valgrind: one replay, counted.
        let frames = replay(&stream);
        eprintln!("replayed {frames} frames");
        return;
    }
    // Native: the speed (best of 3; the first also warms the page cache).
    let mut best = Duration::MAX;
    let mut frames = 0;
    for _ in 0..3 {
        let t = Instant::now();
        frames = replay(&stream);
        best = best.min(t.elapsed());
    }
    println!(
        "ingest replay: {mb:.2} MB of interleaved RTP ({frames} frames, {SECONDS} s at {KBPS} kbit/s) \
         in {:.1} ms (best of 3): {:.0} MB/s, {:.1} us per frame",
        best.as_secs_f64() * 1000.0,
        mb / best.as_secs_f64(),
        best.as_secs_f64() * 1e6 / f64::from(frames.max(1))
    );
    callgrind(mb);
}

/// Runs this binary again under callgrind, counting only `replay`, and
/// prints instructions per MB and the hottest functions.
fn callgrind(mb: f64) {
    // callgrind_annotate 3.19 answers --version with exit status 255:
    // that it runs at all is enough.
    let have = |tool: &str| Command::new(tool).arg("--version").output().is_ok();
    if !have("valgrind") || !have("callgrind_annotate") {
        println!("(no instruction count: valgrind is not installed)");
        return;
    }
    let out_dir = std::env::var("VIGIL_BENCH_OUT").unwrap_or_else(|_| "target/bench".into());
    let _ = std::fs::create_dir_all(&out_dir);
    let out = format!("{out_dir}/callgrind.out");
    let exe = std::env::current_exe().unwrap();
    let status = Command::new("valgrind")
        .args([
            "--tool=callgrind",
            "--toggle-collect=*ingest_replay::ingest*",
            &format!("--callgrind-out-file={out}"),
        ])
        .arg(&exe)
        .env(INNER, "1")
        .output()
        .unwrap();
    if !status.status.success() {
        println!(
            "callgrind failed: {}",
            String::from_utf8_lossy(&status.stderr)
        );
        return;
    }
    let annotate = |inclusive: bool| {
        let o = Command::new("callgrind_annotate")
            .arg(format!(
                "--inclusive={}",
                if inclusive { "yes" } else { "no" }
            ))
            .arg(&out)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let self_text = annotate(false);
    // "1,234,567 (100.0%)  PROGRAM TOTALS"
    let total: u64 = self_text
        .lines()
        .find(|l| l.contains("PROGRAM TOTALS"))
        .and_then(|l| l.split_whitespace().next())
        .map(|n| n.replace(',', ""))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    println!(
        "ingest replay under callgrind: {total} instructions for {mb:.2} MB: {:.1} M instructions per MB ingested",
        total as f64 / mb / 1e6
    );
    for (label, text) in [("inclusive", annotate(true)), ("self", self_text)] {
        println!("hottest functions ({label}):");
        let lines = top(&text, 10);
        if lines.is_empty() {
            // Not in the expected layout: show what callgrind_annotate said.
            for l in text.lines().take(40) {
                println!("  | {l}");
            }
        }
        for l in lines {
            println!("  {l}");
        }
    }
}

/// The first `n` function lines of a callgrind_annotate listing, without
/// the callers of `replay` (main and the runtime's start-up, which
/// inclusive counts put on top), names shortened.
fn top(text: &str, n: usize) -> Vec<String> {
    let outside = [
        "(below main)",
        "__libc_start_main",
        "ingest_replay::main",
        "ingest_replay::replay",
        "__rust_begin_short_backtrace",
        "lang_start",
    ];
    text.lines()
        .skip_while(|l| !l.contains("file:function"))
        .skip(1)
        .filter_map(|l| {
            // "  1,234 (12.34%)  file:function [object]"
            let l = l.trim();
            let (count, rest) = l.split_once(' ')?;
            let rest = rest.trim_start().strip_prefix('(')?;
            let (pct, func) = rest.split_once(')')?;
            let func = func.trim();
            let func = func.split(" [").next().unwrap_or(func);
            let func = match func.split_once(':') {
                Some((file, f)) if !file.contains('<') && !file.contains('(') => f,
                _ => func,
            };
            Some((count.to_string(), pct.trim().to_string(), func.to_string()))
        })
        .filter(|(_, _, f)| {
            !outside.iter().any(|o| f.contains(o)) && f != "main" && !f.starts_with("0x")
        })
        .take(n)
        .map(|(count, pct, f)| {
            let short: String = f.chars().take(110).collect();
            format!("{count:>14} {pct:>7}  {short}")
        })
        .collect()
}

/// Feeds the byte stream through the recording path into fresh storage;
/// returns the frames stored. Setting up (the storage, the arena) is done
/// before, outside what callgrind counts.
fn replay(stream: &[u8]) -> u32 {
    let dir = std::env::temp_dir().join(format!("vigil-bench-replay-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = config::parse_str(
        "[storage]\npath = \"d\"\npool_size_mb = 32\npools = 2\n[http]\nauth = false\n",
        &dir,
    )
    .unwrap();
    let storage = store::open::open_for_writing(&cfg.storage).unwrap();
    let mut rings = arena::carve(8 << 20, &[1]).unwrap();
    let (ring, reader) = rings.remove(0);
    let mut db = storage.db;
    let stream_id = db.stream_id("cam", "main").unwrap();
    let writer = Writer::new(
        storage.pools,
        db,
        storage.open_id,
        storage.position,
        vec![WriterStream {
            stream_id,
            camera: "cam".into(),
            kind: "main",
            label: "cam/main".into(),
            priority: 1,
            segment_90k: 60 * 90_000,
            stagger_90k: 0,
            ring: reader,
            status: Arc::new(StreamStatus::new("cam", StreamKind::Main)),
        }],
        Duration::from_secs(3600),
    )
    .unwrap();
    let stored = ingest(stream, ring, writer);
    drop(storage.lock);
    let _ = std::fs::remove_dir_all(&dir);
    stored
}

/// What callgrind counts: interleaved framing, RTP, depacketizing, the
/// ring, the writer (its writes, index rows and commits) until the last
/// recording is closed.
#[inline(never)]
fn ingest(stream: &[u8], mut ring: RingWriter, mut writer: Writer) -> u32 {
    let mut depack = Depacketizer::new(Codec::H264, None, 2 << 20);
    let mut unwrapper = TimestampUnwrapper::new(90_000);
    let mut params = Vec::with_capacity(256);
    let mut stored = 0u32;
    let wall0 = 1_795_255_200 * 90_000;
    let mut at = 0;
    while at < stream.len() {
        let Ok((skipped, Some((len, framed)))) = parse_frame(&stream[at..], false) else {
            break;
        };
        let start = at + skipped;
        at = start + len;
        let Framed::Data(0) = framed else { continue };
        let Ok(pkt) = RtpPacket::parse(&stream[start + 4..start + len]) else {
            continue;
        };
        let ts = unwrapper.unwrap(pkt.timestamp).ts_90k;
        let mut new_frame = false;
        let _ = depack.push(&pkt, ts, false, &mut |f| {
            if f.params_changed {
                format::encode_params(f.params, &mut params);
            }
            let meta = FrameMeta {
                timestamp_90k: f.timestamp_90k,
                wall_90k: wall0 + f.timestamp_90k,
                key: f.key,
                discontinuity: false,
            };
            let extra: &[u8] = if f.params_changed { &params } else { &[] };
            if ring.push(&meta, extra, f.data) == Push::Stored {
                stored += 1;
                new_frame = true;
            }
        });
        // The writer wakes about once a second in `vigil run`.
        if new_frame && stored.is_multiple_of(FPS) {
            writer.write_available(false).unwrap();
        }
    }
    writer.write_available(true).unwrap();
    writer.sync_and_commit().unwrap();
    stored
}

/// The clip, looped for `SECONDS`, as `$`-framed RTP on channel 0.
fn interleaved_stream() -> Vec<u8> {
    let units = access_units(CLIP);
    assert!(!units.is_empty(), "no access units in the clip");
    let target = (KBPS as usize * 1000 / 8) / FPS as usize;
    let filler_body = vec![0xffu8; target];
    let mut out = Vec::new();
    let mut seq: u16 = 0;
    let mut packet = |out: &mut Vec<u8>, ts: u32, marker: bool, parts: &[&[u8]]| {
        let len: usize = 12 + parts.iter().map(|p| p.len()).sum::<usize>();
        out.push(b'$');
        out.push(0);
        out.extend_from_slice(&(len as u16).to_be_bytes());
        out.push(0x80);
        out.push(96 | if marker { 0x80 } else { 0 });
        out.extend_from_slice(&seq.to_be_bytes());
        out.extend_from_slice(&ts.to_be_bytes());
        out.extend_from_slice(&0x5649_4749u32.to_be_bytes());
        for p in parts {
            out.extend_from_slice(p);
        }
        seq = seq.wrapping_add(1);
    };
    for k in 0..FPS * SECONDS {
        let unit = &units[k as usize % units.len()];
        let ts = 1000u32.wrapping_add(k * (90_000 / FPS));
        let size: usize = unit.iter().map(|n| n.len() + 4).sum();
        // A filler NAL unit (type 12): 0xff bytes ended by the stop bit.
        let mut filler = Vec::new();
        if size + 6 < target {
            filler.push(12u8);
            filler.extend_from_slice(&filler_body[..target - size - 6]);
            filler.push(0x80);
        }
        let mut nals: Vec<&[u8]> = unit.clone();
        if !filler.is_empty() {
            nals.push(&filler);
        }
        for (i, nal) in nals.iter().enumerate() {
            let last_nal = i + 1 == nals.len();
            if nal.len() <= MAX_PAYLOAD {
                packet(&mut out, ts, last_nal, &[nal]);
                continue;
            }
            // FU-A (RFC 6184 5.8).
            let (hdr, body) = (nal[0], &nal[1..]);
            let chunks: Vec<&[u8]> = body.chunks(MAX_PAYLOAD - 2).collect();
            for (j, c) in chunks.iter().enumerate() {
                let first = j == 0;
                let end = j + 1 == chunks.len();
                let fu = [
                    (hdr & 0xe0) | 28,
                    (hdr & 0x1f) | if first { 0x80 } else { 0 } | if end { 0x40 } else { 0 },
                ];
                packet(&mut out, ts, last_nal && end, &[&fu, c]);
            }
        }
    }
    out
}

/// The clip's Annex B NAL units grouped into access units: a new unit
/// starts at a slice whose first_mb_in_slice is 0 (its first bit after the
/// NAL header is 1), or at an AUD/SPS/PPS/SEI after a slice.
fn access_units(annex_b: &[u8]) -> Vec<Vec<&[u8]>> {
    let mut nals = Vec::new();
    let mut i = 0;
    let mut start = None;
    while i + 3 <= annex_b.len() {
        if annex_b[i..i + 3] == [0, 0, 1] {
            if let Some(s) = start {
                let mut end = i;
                while end > s && annex_b[end - 1] == 0 {
                    end -= 1;
                }
                nals.push(&annex_b[s..end]);
            }
            i += 3;
            start = Some(i);
        } else {
            i += 1;
        }
    }
    if let Some(s) = start {
        nals.push(&annex_b[s..]);
    }
    let mut units: Vec<Vec<&[u8]>> = Vec::new();
    let mut cur: Vec<&[u8]> = Vec::new();
    let mut has_slice = false;
    for nal in nals.into_iter().filter(|n| !n.is_empty()) {
        let t = nal[0] & 0x1f;
        let is_slice = t == 1 || t == 5;
        let starts = if is_slice {
            nal.get(1).is_some_and(|b| b & 0x80 != 0)
        } else {
            matches!(t, 6..=9)
        };
        if starts && has_slice {
            units.push(std::mem::take(&mut cur));
            has_slice = false;
        }
        has_slice |= is_slice;
        cur.push(nal);
    }
    if has_slice {
        units.push(cur);
    }
    units
}
