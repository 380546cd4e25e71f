//! Tests of segment cutting and live sequence numbering (the playlists
//! themselves are tested end to end in tests/hls.rs).

use super::*;
use crate::store::video_index::VideoIndexEncoder;

const FRAME: i32 = 3600; // 25 fps

/// A recording of `n` frames at 25 fps with a key frame every `gop`,
/// starting at `start` (seconds).
fn rec(id: i64, start: i64, n: usize, gop: usize, open: bool) -> RecordingRow {
    let mut e = VideoIndexEncoder::new();
    for i in 0..n {
        e.push(FRAME, 1000, i % gop == 0);
    }
    RecordingRow {
        id,
        stream_id: 1,
        open_id: 1,
        start_90k: start * TICKS,
        duration_90k: n as i64 * i64::from(FRAME),
        media_start_90k: 0,
        frames: n as u32,
        key_frames: n.div_ceil(gop) as u32,
        bytes: 1000 * n as u64,
        sample_entry_id: 1,
        video_index: e.as_bytes().to_vec(),
        flags: if open { RECORDING_OPEN } else { 0 },
    }
}

/// (start, end) in seconds relative to `base` seconds, and completeness.
fn spans(segs: &[Seg], base: i64) -> Vec<(f64, f64, bool)> {
    segs.iter()
        .map(|s| {
            (
                (s.start_90k - base * TICKS) as f64 / 90_000.0,
                (s.end_90k - base * TICKS) as f64 / 90_000.0,
                s.complete,
            )
        })
        .collect()
}

fn cut_all(r: &RecordingRow, from: i64, to: i64, min: i64) -> Vec<Seg> {
    let mut v = Vec::new();
    cut(r, from, to, min, &mut v).unwrap();
    v
}

#[test]
fn cuts_whole_gops_at_key_frames() {
    // 10 s, key frames every 2 s.
    let r = rec(1, 100, 250, 50, false);
    let all = cut_all(&r, r.start_90k, i64::MAX, VOD_MIN_90K);
    assert_eq!(
        spans(&all, 100),
        [(0.0, 4.0, true), (4.0, 8.0, true), (8.0, 10.0, true)]
    );
    let live = cut_all(&r, r.start_90k, i64::MAX, LIVE_MIN_90K);
    assert_eq!(live.len(), 5);
    assert!(live.iter().all(|s| s.duration() == 2 * TICKS));
    // From mid-GOP: the key frame before; to: the frames starting before.
    let mid = cut_all(
        &r,
        r.start_90k + 53 * TICKS / 10,
        r.start_90k + 7 * TICKS,
        VOD_MIN_90K,
    );
    assert_eq!(spans(&mid, 100), [(4.0, 7.0, false)]);
    // Key frames every 4 s: each segment one GOP, whatever the minimum.
    let r4 = rec(2, 0, 250, 100, false);
    let s = cut_all(&r4, 0, i64::MAX, LIVE_MIN_90K);
    assert_eq!(
        spans(&s, 0),
        [(0.0, 4.0, true), (4.0, 8.0, true), (8.0, 10.0, true)]
    );
    // A range outside the recording: nothing.
    assert!(cut_all(&r, r.end_90k() + 1, i64::MAX, VOD_MIN_90K).is_empty());
    assert!(cut_all(&r, 0, r.start_90k, VOD_MIN_90K).is_empty());
}

#[test]
fn frames_before_the_first_key_frame_are_left_out() {
    let mut e = VideoIndexEncoder::new();
    for i in 0..100 {
        e.push(FRAME, 500, i == 10 || i == 60);
    }
    let r = RecordingRow {
        video_index: e.as_bytes().to_vec(),
        duration_90k: 100 * i64::from(FRAME),
        ..rec(1, 0, 1, 1, false)
    };
    let s = cut_all(&r, 0, i64::MAX, LIVE_MIN_90K);
    assert_eq!(spans(&s, 0), [(0.4, 2.4, true), (2.4, 4.0, true)]);
}

#[test]
fn an_open_recording_keeps_its_complete_segments_as_it_grows() {
    let full = cut_all(&rec(1, 0, 500, 50, false), 0, i64::MAX, LIVE_MIN_90K);
    let mut listed: Vec<Seg> = Vec::new();
    for n in [1, 49, 50, 51, 99, 100, 101, 173, 499, 500] {
        let r = rec(1, 0, n, 50, true);
        let segs = cut_all(&r, 0, i64::MAX, LIVE_MIN_90K);
        // Only the last segment of an open recording is incomplete.
        assert!(segs.iter().rev().skip(1).all(|s| s.complete), "{n}");
        assert!(!segs.last().unwrap().complete, "{n}");
        let complete: Vec<Seg> = segs.into_iter().filter(|s| s.complete).collect();
        assert_eq!(complete[..], full[..complete.len()], "{n}");
        assert!(complete.len() >= listed.len());
        assert_eq!(complete[..listed.len()], listed[..]);
        listed = complete;
    }
    // Closed, the last one is complete too.
    assert_eq!(full.len(), 10);
    assert!(full.iter().all(|s| s.complete));
}

#[test]
fn corrupt_index_is_an_error() {
    let r = RecordingRow {
        video_index: vec![0xff; 3],
        ..rec(1, 0, 10, 5, false)
    };
    let mut v = Vec::new();
    assert!(cut(&r, 0, i64::MAX, VOD_MIN_90K, &mut v).is_err());
}

#[test]
fn durations_as_text() {
    assert_eq!(secs(90_000), "1.000000");
    assert_eq!(secs(3600), "0.040000");
    assert_eq!(secs(4 * 90_000 + 1), "4.000011");
    assert_eq!(target_secs(4 * TICKS), 4);
    assert_eq!(target_secs(4 * TICKS + TICKS / 2), 5);
    assert_eq!(target_secs(4 * TICKS + TICKS / 2 - 1), 4);
    assert_eq!(target_secs(1), 1);
}

fn window(recs: &[(i64, i64, i64, usize, bool)]) -> Vec<WindowRec> {
    // (id, start s, end s, complete segments, discontinuity before)
    recs.iter()
        .map(|&(id, start, end, n, d)| WindowRec {
            id,
            entry_id: 1,
            start_90k: start * TICKS,
            end_90k: end * TICKS,
            segs: vec![
                Seg {
                    start_90k: 0,
                    end_90k: 1,
                    complete: true
                };
                n
            ],
            discontinuity: d,
        })
        .collect()
}

fn msns(n: &[RecNumbers]) -> Vec<(u64, u64)> {
    n.iter().map(|r| (r.msn, r.disc)).collect()
}

#[test]
fn live_numbers_are_stable_and_consecutive() {
    let mut num = Numbering::default();
    // First sight: numbered from the start time in tenths of a second.
    let a = num.number(7, &window(&[(1, 1000, 1030, 3, false)]));
    assert_eq!(msns(&a), [(10_000, 10_000)]);
    // The recording closed with 5 segments; the next one follows it.
    let b = num.number(
        7,
        &window(&[(1, 1000, 1060, 5, false), (2, 1060, 1070, 2, false)]),
    );
    assert_eq!(msns(&b), [(10_000, 10_000), (10_005, 10_000)]);
    // The first left the window; a third comes after a gap.
    let c = num.number(
        7,
        &window(&[(2, 1060, 1120, 6, false), (3, 1130, 1140, 1, true)]),
    );
    assert_eq!(msns(&c), [(10_005, 10_000), (10_011, 10_001)]);
    // Another stream is numbered on its own.
    let other = num.number(8, &window(&[(2, 50, 60, 1, false)]));
    assert_eq!(msns(&other), [(500, 500)]);
    // Known only later in the window: numbers run backwards from it.
    let mut fresh = Numbering::default();
    fresh.number(7, &window(&[(3, 1130, 1140, 1, true)]));
    let d = fresh.number(
        7,
        &window(&[(2, 1060, 1120, 6, false), (3, 1130, 1140, 1, true)]),
    );
    assert_eq!(msns(&d), [(11_294, 11_299), (11_300, 11_300)]);
}

#[test]
fn live_numbering_memory_is_bounded() {
    let mut num = Numbering::default();
    for i in 0..(3 * NUMBERING_MEMORY as i64) {
        num.number(1, &window(&[(i, i * 10, i * 10 + 10, 2, false)]));
    }
    assert_eq!(num.streams.len(), 1);
    assert_eq!(num.streams[0].1.len(), NUMBERING_MEMORY);
}
