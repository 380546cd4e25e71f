//! The arena allocates once, in `carve`: pushing, peeking, iterating and
//! releasing frames (wrapping around, dropping, reading stats) allocate
//! nothing.
//!
//! A counting allocator counts only on the thread that asks for it, so the
//! test harness's own threads do not disturb the count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use vigil::arena::{carve, FrameMeta, LiveRead, Push};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn note() {
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        note();
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn push_peek_release_do_not_allocate() {
    let mut rings = carve(1 << 20, &[1, 2]).unwrap();
    let (mut w, mut r) = rings.pop().unwrap();
    let data = vec![0x5A; 200_000];
    let extra = [1u8; 40];
    // A live viewer too, its buffers sized for the largest frame up front.
    let tap = w.tap();
    let (mut view_extra, mut view_data) = (Vec::with_capacity(64), Vec::with_capacity(1 << 20));
    let mut cursor = tap.newest();
    let mut viewed = 0u32;

    COUNTING.with(|c| c.set(true));
    let (mut stored, mut dropped, mut bytes) = (0u32, 0u32, 0usize);
    for i in 0..20_000i64 {
        let size = (i as usize * 7919) % 30_000;
        let meta = FrameMeta {
            timestamp_90k: i,
            wall_90k: i,
            key: i % 10 == 0,
            discontinuity: i % 1000 == 999,
        };
        let ex = if meta.key { &extra[..] } else { &[][..] };
        // Now and then an oversize frame.
        let d = if i % 5000 == 4999 {
            &data[..]
        } else {
            &data[..size]
        };
        match w.push(&meta, ex, d) {
            Push::Stored => stored += 1,
            Push::Dropped => dropped += 1,
        }
        // Fall behind for a while every few hundred frames, to drop.
        if i % 300 < 200 {
            for f in r.iter() {
                bytes += f.data.len() + f.extra.len();
            }
            if let Some(f) = r.peek(r.len().saturating_sub(1)) {
                bytes += usize::from(f.gap_before);
            }
            r.release(r.len());
        }
        let _ = (w.stats(), r.stats());
        if i % 7 == 0 {
            loop {
                match tap.read(&mut cursor, &mut view_extra, &mut view_data, Duration::ZERO) {
                    LiveRead::Frame { .. } => viewed += 1,
                    LiveRead::Timeout => break,
                    LiveRead::Overrun => cursor = tap.latest_key().unwrap_or(tap.newest()),
                }
            }
        }
    }
    COUNTING.with(|c| c.set(false));

    let allocations = ALLOCATIONS.load(Ordering::Relaxed);
    assert_eq!(allocations, 0);
    // The loop did store, drop and read frames.
    let s = r.stats();
    assert_eq!((s.frames_stored, s.frames_dropped), (stored, dropped));
    assert!(stored > 10_000 && dropped > 100, "{s:?}");
    assert!(s.drop_events > 10, "{s:?}");
    assert!(bytes > 0);
    assert!(viewed > 1000, "{viewed}");
    // The counter does count this thread's allocations.
    COUNTING.with(|c| c.set(true));
    let v = std::hint::black_box(vec![0u8; 10]);
    COUNTING.with(|c| c.set(false));
    drop(v);
    assert_eq!(ALLOCATIONS.load(Ordering::Relaxed), 1);
}
