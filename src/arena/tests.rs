use super::ring::{place, record_len, HEADER_LEN};
use super::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn meta(ts: i64, key: bool) -> FrameMeta {
    FrameMeta {
        timestamp_90k: ts,
        wall_90k: ts * 2 + 1,
        key,
        discontinuity: false,
    }
}

fn one_ring(bytes: usize) -> (RingWriter, RingReader) {
    let mut rings = carve(bytes, &[1]).unwrap();
    assert_eq!(rings.len(), 1);
    rings.pop().unwrap()
}

/// Pushes until the ring refuses a frame; returns how many were stored.
fn fill(w: &mut RingWriter, size: usize, ts: &mut i64) -> usize {
    let data = vec![0xAB; size];
    let mut n = 0;
    loop {
        *ts += 1;
        match w.push(&meta(*ts, n == 0), &[], &data) {
            Push::Stored => n += 1,
            Push::Dropped => return n,
        }
    }
}

#[test]
fn ends_are_send() {
    fn send<T: Send>() {}
    send::<RingWriter>();
    send::<RingReader>();
}

#[test]
fn push_peek_release_in_order() {
    let (mut w, mut r) = one_ring(MIN_RING_BYTES);
    assert_eq!(r.len(), 0);
    assert!(r.is_empty());
    assert!(r.peek(0).is_none());
    for i in 0..5u8 {
        let data = vec![i; 100 + usize::from(i)];
        assert_eq!(
            w.push(&meta(i64::from(i), i == 0), &[], &data),
            Push::Stored
        );
    }
    assert_eq!(r.len(), 5);
    for i in 0..5u8 {
        let f = r.peek(usize::from(i)).unwrap();
        assert_eq!(f.meta, meta(i64::from(i), i == 0));
        assert!(!f.gap_before);
        assert!(f.extra.is_empty());
        assert_eq!(f.data, &vec![i; 100 + usize::from(i)][..]);
    }
    assert!(r.peek(5).is_none());
    // Out of order peeks find the same frames.
    assert_eq!(r.peek(3).unwrap().meta.timestamp_90k, 3);
    assert_eq!(r.peek(1).unwrap().meta.timestamp_90k, 1);
    assert_eq!(r.peek(4).unwrap().meta.timestamp_90k, 4);
    assert_eq!(r.peek(0).unwrap().meta.timestamp_90k, 0);
    let ts: Vec<i64> = r.iter().map(|f| f.meta.timestamp_90k).collect();
    assert_eq!(ts, [0, 1, 2, 3, 4]);

    let used = r.stats().used;
    assert_eq!(
        used as usize,
        (0..5)
            .map(|i| record_len(0, 100 + i).unwrap())
            .sum::<usize>()
    );
    r.release(2);
    assert_eq!(r.len(), 3);
    assert_eq!(r.peek(0).unwrap().meta.timestamp_90k, 2);
    assert_eq!(r.peek(2).unwrap().meta.timestamp_90k, 4);
    assert!(r.stats().used < used);
    // More than stored: releases what there is.
    r.release(10);
    assert_eq!(r.len(), 0);
    assert!(r.peek(0).is_none());
    let s = r.stats();
    assert_eq!(s, w.stats());
    assert_eq!(s.used, 0);
    assert_eq!(s.capacity as usize, MIN_RING_BYTES);
    assert_eq!(
        (s.frames_stored, s.frames_dropped, s.drop_events),
        (5, 0, 0)
    );
}

#[test]
fn release_after_peeking_ahead_keeps_cursor_right() {
    let (mut w, mut r) = one_ring(MIN_RING_BYTES);
    for i in 0..10 {
        w.push(&meta(i, true), &[], &[i as u8; 10]);
    }
    assert_eq!(r.peek(7).unwrap().meta.timestamp_90k, 7);
    r.release(3);
    assert_eq!(r.peek(4).unwrap().meta.timestamp_90k, 7);
    assert_eq!(r.peek(0).unwrap().meta.timestamp_90k, 3);
    assert_eq!(r.peek(2).unwrap().meta.timestamp_90k, 5);
    r.release(2); // exactly up to the cursor
    assert_eq!(r.peek(0).unwrap().meta.timestamp_90k, 5);
    r.release(1);
    assert_eq!(r.peek(3).unwrap().meta.timestamp_90k, 9);
    r.release(0);
    assert_eq!(r.len(), 4);
}

#[test]
fn placement_rules() {
    let cap = 1024;
    // Empty ring, head at 0.
    assert_eq!(place(cap, 0, 0, 512), Some((0, false)));
    // Fits before the end.
    assert_eq!(place(cap, 800, 100, 200), Some((800, false)));
    // Exactly to the end: allowed when the tail is not at 0 ...
    assert_eq!(place(cap, 824, 100, 200), Some((824, false)));
    // ... but not when it is (head would catch up with the tail).
    assert_eq!(place(cap, 824, 0, 200), None);
    // Does not fit before the end: wraps if it fits strictly before the tail.
    assert_eq!(place(cap, 900, 300, 200), Some((0, true)));
    assert_eq!(place(cap, 900, 200, 200), None);
    // Head behind tail: strictly less than the gap.
    assert_eq!(place(cap, 100, 500, 392), Some((100, false)));
    assert_eq!(place(cap, 100, 500, 400), None);
    // Empty ring anywhere: half the ring always fits.
    for at in (0..cap).step_by(8) {
        assert!(place(cap, at, at, cap / 2).is_some(), "at {at}");
    }
}

#[test]
fn wrap_around_keeps_frames_contiguous() {
    let (mut w, mut r) = one_ring(MIN_RING_BYTES);
    let base = {
        w.push(&meta(0, true), &[], &[]);
        let p = r.peek(0).unwrap().data.as_ptr() as usize - HEADER_LEN;
        r.release(1);
        p
    };
    let mut wraps = 0;
    let mut last_off = 0;
    // Sizes that do not divide the ring, so records straddle its end.
    // Miri is slow: fewer laps there.
    let frames: i64 = if cfg!(miri) { 40 } else { 200 };
    for i in 1..frames {
        let size = 5000 + (i as usize * 37) % 3000;
        let data: Vec<u8> = (0..size).map(|j| (j as i64 * 7 + i) as u8).collect();
        let extra = [i as u8; 3];
        assert_eq!(
            w.push(&meta(i, true), &extra, &data),
            Push::Stored,
            "frame {i}"
        );
        // Keep a few frames in the ring so the tail is never at 0 for long.
        if r.len() > 3 {
            r.release(1);
        }
        let f = r.peek(r.len() - 1).unwrap();
        assert_eq!(f.meta.timestamp_90k, i);
        assert_eq!(f.data, &data[..]);
        assert_eq!(f.extra, &extra);
        let off = f.extra.as_ptr() as usize - HEADER_LEN - base;
        assert!(off + record_len(3, size).unwrap() <= MIN_RING_BYTES);
        if off < last_off {
            wraps += 1;
            // The record went to the start: it would have straddled the end.
            assert_eq!(off, 0);
        }
        last_off = off;
    }
    assert!(wraps >= frames / 20, "only {wraps} wraps");
    // Every frame still held reads back right after all that.
    let held: Vec<i64> = r.iter().map(|f| f.meta.timestamp_90k).collect();
    assert_eq!(held, [frames - 3, frames - 2, frames - 1]);
    assert_eq!(w.stats().frames_dropped, 0);
}

#[test]
fn record_ending_exactly_at_the_ring_end() {
    let (mut w, mut r) = one_ring(MIN_RING_BYTES);
    // Frame 0 at 0, frame 1 fills the ring exactly to its end.
    let first = MIN_RING_BYTES / 2 - HEADER_LEN;
    let rest = MIN_RING_BYTES - record_len(0, first).unwrap();
    assert!(rest <= MIN_RING_BYTES / 2);
    assert_eq!(w.push(&meta(0, true), &[], &vec![1; first]), Push::Stored);
    r.release(1);
    assert_eq!(
        w.push(&meta(1, true), &[], &vec![2; rest - HEADER_LEN]),
        Push::Stored
    );
    assert_eq!(r.stats().used as usize, rest);
    // Head is now at 0 again; the next frame goes there.
    assert_eq!(w.push(&meta(2, false), &[], &[3; 8]), Push::Stored);
    let f0 = r.peek(0).unwrap();
    let f1 = r.peek(1).unwrap();
    assert_eq!(f1.data, &[3; 8]);
    assert!(f1.data.as_ptr() < f0.data.as_ptr());
    r.release(2);
    assert_eq!(r.stats().used, 0);
    assert_eq!(r.len(), 0);
}

#[test]
fn extra_blobs_are_kept_with_their_frame() {
    let (mut w, r) = one_ring(MIN_RING_BYTES);
    w.push(&meta(0, true), b"params-1", b"key frame");
    w.push(&meta(1, false), b"", b"p frame");
    w.push(&meta(2, true), b"params-2, longer ones", b"");
    let f: Vec<(Vec<u8>, Vec<u8>)> = r
        .iter()
        .map(|f| (f.extra.to_vec(), f.data.to_vec()))
        .collect();
    assert_eq!(
        f,
        [
            (b"params-1".to_vec(), b"key frame".to_vec()),
            (b"".to_vec(), b"p frame".to_vec()),
            (b"params-2, longer ones".to_vec(), b"".to_vec()),
        ]
    );
}

#[test]
fn drops_until_key_frame_with_counters_and_gap() {
    let (mut w, mut r) = one_ring(MIN_RING_BYTES);
    let mut ts = 0;
    let stored = fill(&mut w, 3000, &mut ts);
    assert!(stored > 10);
    let s = w.stats();
    assert_eq!(
        (s.frames_stored, s.frames_dropped, s.drop_events),
        (stored as u32, 1, 1)
    );
    // Room again, but non-key frames are still dropped ...
    r.release(stored);
    for _ in 0..3 {
        ts += 1;
        assert_eq!(w.push(&meta(ts, false), &[], &[1; 10]), Push::Dropped);
    }
    // ... until a key frame, which carries the gap.
    ts += 1;
    assert_eq!(w.push(&meta(ts, true), &[], &[2; 10]), Push::Stored);
    ts += 1;
    assert_eq!(w.push(&meta(ts, false), &[], &[3; 10]), Push::Stored);
    let f = r.peek(0).unwrap();
    assert!(f.gap_before && f.meta.key);
    assert_eq!(f.meta.timestamp_90k, ts - 1);
    assert!(!r.peek(1).unwrap().gap_before);
    let s = r.stats();
    assert_eq!(
        (s.frames_stored, s.frames_dropped, s.drop_events),
        (stored as u32 + 2, 4, 1)
    );

    // A second run of drops is a second event; a key frame that does not
    // fit while waiting is dropped too, without a new event.
    let more = fill(&mut w, 3000, &mut ts);
    ts += 1;
    assert_eq!(w.push(&meta(ts, true), &[], &[0; 3000]), Push::Dropped);
    let s = r.stats();
    assert_eq!((s.frames_dropped, s.drop_events), (6, 2));
    assert_eq!(s.frames_stored as usize, stored + 2 + more);
    r.release(usize::MAX);
    ts += 1;
    assert_eq!(w.push(&meta(ts, true), &[], &[0; 3000]), Push::Stored);
    assert!(r.peek(0).unwrap().gap_before);
}

#[test]
fn discontinuity_carries_over_dropped_frames() {
    let (mut w, mut r) = one_ring(MIN_RING_BYTES);
    let mut ts = 0;
    let stored = fill(&mut w, 3000, &mut ts);
    r.release(stored);
    // The stream broke; the frame marking it is dropped (waiting for key).
    ts += 1;
    let broken = FrameMeta {
        discontinuity: true,
        ..meta(ts, false)
    };
    assert_eq!(w.push(&broken, &[], &[1; 10]), Push::Dropped);
    ts += 1;
    assert_eq!(w.push(&meta(ts, false), &[], &[1; 10]), Push::Dropped);
    ts += 1;
    assert_eq!(w.push(&meta(ts, true), &[], &[1; 10]), Push::Stored);
    ts += 1;
    assert_eq!(w.push(&meta(ts, false), &[], &[1; 10]), Push::Stored);
    let f = r.peek(0).unwrap();
    assert!(f.meta.discontinuity && f.gap_before && f.meta.key);
    assert!(!r.peek(1).unwrap().meta.discontinuity);

    // Kept as is when stored.
    ts += 1;
    assert_eq!(
        w.push(
            &FrameMeta {
                discontinuity: true,
                ..meta(ts, true)
            },
            &[],
            &[]
        ),
        Push::Stored
    );
    let f = r.peek(2).unwrap();
    assert!(f.meta.discontinuity && !f.gap_before);
}

#[test]
fn discontinuity_carries_over_an_oversize_drop() {
    let (mut w, r) = one_ring(MIN_RING_BYTES);
    let huge = vec![0; MIN_RING_BYTES];
    let m = FrameMeta {
        discontinuity: true,
        ..meta(1, true)
    };
    assert_eq!(w.push(&m, &[], &huge), Push::Dropped);
    assert_eq!(w.push(&meta(2, true), &[], &[5]), Push::Stored);
    let f = r.peek(0).unwrap();
    assert!(f.meta.discontinuity && f.gap_before);
}

#[test]
fn zero_size_frames() {
    let (mut w, mut r) = one_ring(MIN_RING_BYTES);
    assert_eq!(w.push(&meta(1, true), &[], &[]), Push::Stored);
    let f = r.peek(0).unwrap();
    assert!(f.data.is_empty() && f.extra.is_empty());
    assert_eq!(f.meta, meta(1, true));
    assert_eq!(r.stats().used as usize, HEADER_LEN);
    // Empty frames still take their header: the ring fills up eventually.
    r.release(1);
    let mut ts = 1;
    let n = fill(&mut w, 0, &mut ts);
    assert_eq!(n, MIN_RING_BYTES / HEADER_LEN - 1);
    assert_eq!(r.len(), n);
    assert!(r.iter().all(|f| f.data.is_empty()));
}

#[test]
fn oversize_frames_are_dropped() {
    let (mut w, mut r) = one_ring(MIN_RING_BYTES);
    let max = w.max_frame_len();
    assert_eq!(max, MIN_RING_BYTES / 2 - HEADER_LEN);
    assert_eq!(
        w.push(&meta(1, true), &[], &vec![0; max + 1]),
        Push::Dropped
    );
    assert_eq!(w.push(&meta(2, true), &[1], &vec![0; max]), Push::Dropped);
    assert_eq!(r.len(), 0);
    assert_eq!(w.push(&meta(3, true), &[], &vec![7; max]), Push::Stored);
    assert!(r.peek(0).unwrap().gap_before);
    r.release(1);
    // The largest frame fits into an empty ring wherever its head is.
    for i in 0..40 {
        assert_eq!(
            w.push(&meta(4 + i, true), &[], &vec![0; 1000 + i as usize * 8]),
            Push::Stored
        );
        r.release(1);
        assert_eq!(
            w.push(&meta(100 + i, true), &[0; 10], &vec![9; max - 10]),
            Push::Stored,
            "{i}"
        );
        r.release(1);
    }
    let s = r.stats();
    assert_eq!((s.frames_dropped, s.drop_events), (2, 1));
}

#[test]
fn carve_proportions() {
    let mib = 1 << 20;
    let rings = carve(mib, &[1, 3]).unwrap();
    let caps: Vec<u32> = rings.iter().map(|(w, _)| w.capacity()).collect();
    assert_eq!(caps, [mib as u32 / 4, mib as u32 / 4 * 3]);
    assert_eq!(rings[1].1.capacity(), caps[1]);

    // A small weight gets the minimum, the rest shares the remainder.
    let rings = carve(mib, &[1, 1000, 3000]).unwrap();
    let caps: Vec<usize> = rings.iter().map(|(w, _)| w.capacity() as usize).collect();
    assert_eq!(caps[0], MIN_RING_BYTES);
    let rest = mib - MIN_RING_BYTES;
    assert_eq!(caps[1], (rest / 4) & !7);
    assert_eq!(caps[2], (rest / 4 * 3) & !7);
    assert!(caps.iter().sum::<usize>() <= mib);

    // Sizes are multiples of 8; zero weights share equally.
    let rings = carve(3 * MIN_RING_BYTES + 100, &[0, 0, 0]).unwrap();
    for (w, _) in &rings {
        assert_eq!(w.capacity() as usize, MIN_RING_BYTES + 32);
    }
    let rings = carve(mib, &[0, 1]).unwrap();
    assert_eq!(rings[0].0.capacity() as usize, MIN_RING_BYTES);
    assert_eq!(rings[1].0.capacity() as usize, mib - MIN_RING_BYTES);

    // Rings of one arena are independent.
    let mut rings = carve(2 * MIN_RING_BYTES, &[1, 1]).unwrap();
    let (b, a) = (rings.pop().unwrap(), rings.pop().unwrap());
    let (mut aw, ar) = a;
    let (mut bw, br) = b;
    let mut ts = 0;
    fill(&mut aw, 1000, &mut ts);
    assert_eq!(bw.push(&meta(0, true), &[], b"other"), Push::Stored);
    assert_eq!(br.peek(0).unwrap().data, b"other");
    assert_eq!(ar.peek(0).unwrap().data, &[0xAB; 1000]);
    assert_eq!(br.stats().frames_dropped, 0);
    // The arena outlives whichever ends are still held.
    drop((aw, ar, bw));
    assert_eq!(br.peek(0).unwrap().data, b"other");

    assert!(carve(mib, &[]).unwrap().is_empty());
}

#[test]
fn carve_too_small_names_the_sizes() {
    let e = match carve(2 * MIN_RING_BYTES - 1, &[5, 5]) {
        Err(e) => e,
        Ok(_) => panic!("carved too small an arena"),
    };
    assert_eq!(
        e,
        ArenaError::TooSmall {
            total_bytes: 2 * MIN_RING_BYTES - 1,
            rings: 2,
            needed_bytes: 2 * MIN_RING_BYTES
        }
    );
    let msg = e.to_string();
    assert!(
        msg.contains("131071") && msg.contains("64 KiB") && msg.contains("131072"),
        "{msg}"
    );
    assert!(carve(2 * MIN_RING_BYTES, &[5, 5]).is_ok());
}

// ---- two threads ----

fn mix(mut x: u64) -> u64 {
    // splitmix64's finalizer: a cheap, well-spread hash of the sequence.
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Everything about frame `seq`, derived from `seq` alone so the consumer
/// can check what it reads.
struct Spec {
    meta: FrameMeta,
    extra_len: usize,
    data_len: usize,
    seed: u64,
}

const STRESS_RING: usize = 256 * 1024;

fn spec(seq: u64) -> Spec {
    let h = mix(seq);
    let key = seq.is_multiple_of(25);
    let data_len = match h % 1000 {
        0 => STRESS_RING / 2 + (h >> 20) as usize % 1000, // oversize: dropped
        1..=20 => 0,
        21..=100 => 10_000 + (h >> 20) as usize % 40_000,
        _ => (h >> 20) as usize % 3000,
    };
    // Miri is slow: smaller frames there (oversize ones stay oversize).
    let data_len = if cfg!(miri) && data_len < STRESS_RING / 2 {
        data_len / 16
    } else {
        data_len
    };
    let extra_len = if key && (h >> 40).is_multiple_of(3) {
        (h >> 44) as usize % 64
    } else {
        0
    };
    Spec {
        meta: FrameMeta {
            timestamp_90k: seq as i64,
            wall_90k: -(seq as i64) * 3,
            key,
            discontinuity: (h >> 50).is_multiple_of(300),
        },
        extra_len,
        data_len,
        seed: h,
    }
}

fn pattern(seed: u64, buf: &mut [u8]) {
    for (j, b) in buf.iter_mut().enumerate() {
        *b = (seed >> ((j & 7) * 8)) as u8 ^ (j >> 3) as u8;
    }
}

fn check_pattern(seed: u64, buf: &[u8]) -> bool {
    buf.iter()
        .enumerate()
        .all(|(j, &b)| b == (seed >> ((j & 7) * 8)) as u8 ^ (j >> 3) as u8)
}

#[test]
fn two_thread_stress() {
    let frames: u64 = if cfg!(miri) { 300 } else { 200_000 };
    let (mut w, mut r) = one_ring(STRESS_RING);
    let done = AtomicBool::new(false);
    let deadline = Instant::now() + Duration::from_secs(if cfg!(miri) { 600 } else { 60 });
    let (pushed_stored, pushed_dropped) = std::thread::scope(|s| {
        let producer = s.spawn(|| {
            let mut data = vec![0u8; STRESS_RING];
            let mut extra = [0u8; 64];
            let (mut stored, mut dropped) = (0u32, 0u32);
            for seq in 0..frames {
                let sp = spec(seq);
                pattern(sp.seed, &mut data[..sp.data_len]);
                pattern(!sp.seed, &mut extra[..sp.extra_len]);
                match w.push(&sp.meta, &extra[..sp.extra_len], &data[..sp.data_len]) {
                    Push::Stored => stored += 1,
                    Push::Dropped => dropped += 1,
                }
            }
            done.store(true, Ordering::Release);
            (stored, dropped)
        });

        let mut next = 0u64; // first sequence number not yet seen
        let mut seen = 0u32;
        let mut gaps = 0u32;
        let mut stalls = 0u32;
        loop {
            assert!(
                Instant::now() < deadline,
                "stress test timed out at seq {next}"
            );
            let finished = done.load(Ordering::Acquire);
            let n = r.len();
            if n == 0 {
                if finished {
                    break;
                }
                std::thread::yield_now();
                continue;
            }
            // Read in batches of varying size, like the writer would.
            let batch = n.min(1 + (mix(next ^ 0xBA7C) % 40) as usize);
            for i in 0..batch {
                let f = r.peek(i).unwrap();
                let seq = f.meta.timestamp_90k as u64;
                assert!(seq >= next, "out of order: {seq} after {next}");
                let sp = spec(seq);
                assert_eq!(f.meta.key, sp.meta.key, "seq {seq}");
                assert_eq!(f.meta.wall_90k, sp.meta.wall_90k);
                assert_eq!(f.gap_before, seq != next, "seq {seq}, expected {next}");
                if f.gap_before {
                    assert!(f.meta.key, "stored a non-key frame after a gap: {seq}");
                    gaps += 1;
                }
                let disc = (next..=seq).any(|s| spec(s).meta.discontinuity);
                assert_eq!(f.meta.discontinuity, disc, "seq {seq}");
                assert_eq!(f.data.len(), sp.data_len);
                assert_eq!(f.extra.len(), sp.extra_len);
                assert!(check_pattern(sp.seed, f.data), "bad bytes in {seq}");
                assert!(check_pattern(!sp.seed, f.extra), "bad extra in {seq}");
                next = seq + 1;
                seen += 1;
            }
            r.release(batch);
            // Now and then lag behind until the producer has dropped
            // something (or is done), so drops are sure to happen.
            if !cfg!(miri) && seen / 3000 > stalls {
                stalls += 1;
                let before = r.stats().frames_dropped;
                while r.stats().frames_dropped == before && !done.load(Ordering::Acquire) {
                    assert!(Instant::now() < deadline, "producer never dropped");
                    std::thread::yield_now();
                }
            }
        }
        let (stored, dropped) = producer.join().unwrap();
        assert_eq!(seen, stored);
        eprintln!(
            "stress: {stored} stored, {gaps} gaps, {stalls} stalls, {:?}",
            r.stats()
        );
        assert!(gaps > 0 || cfg!(miri));
        (stored, dropped)
    });
    let s = r.stats();
    assert_eq!(u64::from(pushed_stored) + u64::from(pushed_dropped), frames);
    assert_eq!(s.frames_stored, pushed_stored);
    assert_eq!(s.frames_dropped, pushed_dropped);
    assert!(s.drop_events > 0 && s.drop_events <= pushed_dropped);
    assert_eq!(s.used, 0);
    assert_eq!(r.len(), 0);
}

// ---- live viewers ----

fn read_now(
    tap: &LiveTap,
    c: &mut LiveCursor,
    extra: &mut Vec<u8>,
    data: &mut Vec<u8>,
) -> LiveRead {
    tap.read(c, extra, data, Duration::ZERO)
}

#[test]
fn live_viewer_reads_from_the_latest_key_frame_in_order() {
    let (mut w, mut r) = one_ring(64 * 1024);
    let tap = w.tap();
    let (mut extra, mut data) = (Vec::new(), Vec::new());
    assert_eq!(tap.latest_key(), None);
    assert!(!tap.params(&mut extra));
    let mut c = tap.newest();
    let start = c;
    assert_eq!(
        read_now(&tap, &mut c, &mut extra, &mut data),
        LiveRead::Timeout
    );

    for ts in 0..10i64 {
        let params: &[u8] = if ts == 5 { b"params-5" } else { &[] };
        let body = vec![ts as u8; 100 + ts as usize];
        assert_eq!(w.push(&meta(ts, ts % 5 == 0), params, &body), Push::Stored);
    }
    // The writer persisting and releasing frames does not take them from
    // viewers.
    r.release(10);
    assert!(tap.params(&mut extra));
    assert_eq!(extra, b"params-5");
    let mut c = tap.latest_key().unwrap();
    for ts in 5..10i64 {
        match read_now(&tap, &mut c, &mut extra, &mut data) {
            LiveRead::Frame {
                meta: m,
                gap_before,
            } => {
                assert_eq!(m, meta(ts, ts == 5));
                assert!(!gap_before);
                assert_eq!(data, vec![ts as u8; 100 + ts as usize]);
                assert_eq!(extra.is_empty(), ts != 5);
            }
            other => panic!("frame {ts}: {other:?}"),
        }
    }
    assert_eq!(
        read_now(&tap, &mut c, &mut extra, &mut data),
        LiveRead::Timeout
    );
    assert!(data.is_empty());
    // The viewer that waited from the start sees every frame.
    let mut first = start;
    let mut n = 0;
    while let LiveRead::Frame { .. } = read_now(&tap, &mut first, &mut extra, &mut data) {
        n += 1;
    }
    assert_eq!(n, 10);
}

#[test]
fn live_viewer_that_falls_a_ring_behind_is_told_and_restarts_at_a_key_frame() {
    let (mut w, mut r) = one_ring(64 * 1024);
    let tap = w.tap();
    let (mut extra, mut data) = (Vec::new(), Vec::new());
    let body = vec![7u8; 1000];
    w.push(&meta(0, true), &[], &body);
    let mut slow = tap.latest_key().unwrap();
    // Well over a ring's worth, released as it goes (as the writer does),
    // with wraps in between.
    for ts in 1..300i64 {
        assert_eq!(w.push(&meta(ts, ts % 30 == 0), &[], &body), Push::Stored);
        r.release(1);
    }
    assert_eq!(
        read_now(&tap, &mut slow, &mut extra, &mut data),
        LiveRead::Overrun
    );
    let mut c = tap.latest_key().unwrap();
    let mut seen = Vec::new();
    loop {
        match read_now(&tap, &mut c, &mut extra, &mut data) {
            LiveRead::Frame { meta: m, .. } => {
                assert_eq!(data, body);
                seen.push(m.timestamp_90k);
            }
            LiveRead::Timeout => break,
            LiveRead::Overrun => panic!("overrun reading the newest frames"),
        }
    }
    assert_eq!(seen, (270..300).collect::<Vec<_>>());
}

#[test]
fn live_viewer_waits_for_the_next_frame_and_is_woken() {
    let (mut w, _r) = one_ring(64 * 1024);
    let tap = w.tap();
    let started = Instant::now();
    let (mut extra, mut data) = (Vec::new(), Vec::new());
    let mut c = tap.newest();
    assert_eq!(
        tap.read(&mut c, &mut extra, &mut data, Duration::from_millis(50)),
        LiveRead::Timeout
    );
    assert!(started.elapsed() >= Duration::from_millis(50));
    std::thread::scope(|s| {
        let viewer = s.spawn(|| {
            let (mut extra, mut data) = (Vec::new(), Vec::new());
            let mut c = tap.newest();
            tap.read(&mut c, &mut extra, &mut data, Duration::from_secs(30))
        });
        // Push until the viewer has seen a frame (it may start waiting
        // after the first push).
        let mut ts = 0;
        while !viewer.is_finished() {
            w.push(&meta(ts, true), &[], b"x");
            ts += 1;
            std::thread::sleep(Duration::from_millis(5));
            assert!(ts < 5000, "the viewer was never woken");
        }
        assert!(matches!(viewer.join().unwrap(), LiveRead::Frame { .. }));
    });
}

#[test]
fn live_viewers_never_see_torn_frames_under_load() {
    let frames: u64 = if cfg!(miri) { 200 } else { 60_000 };
    let (mut w, mut r) = one_ring(STRESS_RING);
    let tap = w.tap();
    let done = AtomicBool::new(false);
    let deadline = Instant::now() + Duration::from_secs(if cfg!(miri) { 600 } else { 60 });
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut data = vec![0u8; STRESS_RING];
            let mut extra = [0u8; 64];
            for seq in 0..frames {
                let sp = spec(seq);
                pattern(sp.seed, &mut data[..sp.data_len]);
                pattern(!sp.seed, &mut extra[..sp.extra_len]);
                w.push(&sp.meta, &extra[..sp.extra_len], &data[..sp.data_len]);
                // The writer keeps up, mostly.
                r.release(r.len());
            }
            done.store(true, Ordering::Release);
        });
        for viewer in 0..2u64 {
            let (tap, done) = (&tap, &done);
            s.spawn(move || {
                let (mut extra, mut data) = (Vec::new(), Vec::new());
                let (mut frames_read, mut overruns) = (0u64, 0u64);
                let mut cursor = None;
                while !done.load(Ordering::Acquire) {
                    assert!(Instant::now() < deadline, "viewer {viewer} timed out");
                    let Some(c) = cursor.as_mut() else {
                        cursor = tap.latest_key();
                        std::thread::yield_now();
                        continue;
                    };
                    match tap.read(c, &mut extra, &mut data, Duration::from_millis(10)) {
                        LiveRead::Frame { meta: m, .. } => {
                            let sp = spec(m.timestamp_90k as u64);
                            assert_eq!(data.len(), sp.data_len);
                            assert!(check_pattern(sp.seed, &data), "torn frame");
                            assert!(check_pattern(!sp.seed, &extra), "torn extra");
                            frames_read += 1;
                            // Viewer 1 is slow now and then: it must be
                            // told, not handed other bytes.
                            if viewer == 1 && frames_read % 500 == 0 && !cfg!(miri) {
                                std::thread::sleep(Duration::from_millis(20));
                            }
                        }
                        LiveRead::Timeout => {}
                        LiveRead::Overrun => {
                            overruns += 1;
                            cursor = None;
                        }
                    }
                }
                eprintln!("viewer {viewer}: {frames_read} frames, {overruns} overruns");
                assert!(frames_read > 0);
            });
        }
    });
}

#[test]
fn dropped_rings_give_their_region_back() {
    let m = MIN_RING_BYTES;
    let (arena, mut rings) = carve_arena(4 * m, &[1, 1, 1, 1]).unwrap();
    assert_eq!(arena.free_bytes(), 0);
    assert!(arena.ring(m).is_none(), "nothing is free yet");
    // Ring 1 goes, but a live tap still holds it: its region stays taken.
    let (w1, r1) = rings.remove(1);
    let tap = w1.tap();
    drop((w1, r1));
    assert_eq!(arena.free_bytes(), 0);
    drop(tap);
    assert_eq!(arena.free_bytes(), m);
    // Ring 2 (now at index 1) goes too: the two regions merge.
    drop(rings.remove(1));
    assert_eq!(arena.free_bytes(), 2 * m);
    let (mut w, mut r) = arena.ring(2 * m).expect("the merged region");
    assert_eq!(w.capacity() as usize, 2 * m);
    assert_eq!(arena.free_bytes(), 0);
    // The new ring works from empty, whatever the old bytes were.
    let mut ts = 0;
    let n = fill(&mut w, 1000, &mut ts);
    assert!(n > 100, "{n}");
    assert_eq!(r.len(), n);
    assert_eq!(r.peek(0).unwrap().meta.timestamp_90k, 1);
    r.release(n);
    // The neighbours were never touched: ring 0 still holds what it got.
    let (w0, r0) = &mut rings[0];
    assert_eq!(w0.push(&meta(5, true), &[], &[7; 100]), Push::Stored);
    assert_eq!(r0.peek(0).unwrap().data, &[7; 100][..]);
}

#[test]
fn arena_takes_best_fit_splits_and_accepts_half() {
    let m = MIN_RING_BYTES;
    let (arena, mut rings) = carve_arena(8 * m, &[1, 2, 1, 4]).unwrap();
    let sizes: Vec<usize> = rings.iter().map(|(w, _)| w.capacity() as usize).collect();
    assert_eq!(sizes, vec![m, 2 * m, m, 4 * m]);
    drop(rings.remove(3)); // 4m free at the end
    drop(rings.remove(1)); // 2m free in the middle
    assert_eq!(arena.free_bytes(), 6 * m);
    // Best fit: the 2m region, not the 4m one.
    let a = arena.ring(2 * m).unwrap();
    assert_eq!(a.0.capacity() as usize, 2 * m);
    // Split: 1m out of the 4m region leaves 3m.
    let b = arena.ring(m).unwrap();
    assert_eq!(b.0.capacity() as usize, m);
    assert_eq!(arena.free_bytes(), 3 * m);
    // Too big for what is left, but half of it fits: the largest region.
    let c = arena.ring(5 * m).unwrap();
    assert_eq!(c.0.capacity() as usize, 3 * m);
    assert!(arena.ring(m).is_none());
    drop((a, b, c));
    assert_eq!(arena.free_bytes(), 6 * m);
    // An arena never carved (no streams at start) has nothing to give.
    assert!(Arena::default().ring(m).is_none());
    assert_eq!(share(8 * m, &[1, 3], 1), 6 * m);
    assert_eq!(share(m, &[1, 3], 1), m);
}
