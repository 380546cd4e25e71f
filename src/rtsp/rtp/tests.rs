use super::*;

fn packet(seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 96];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&1234u32.to_be_bytes());
    p.extend_from_slice(&0xdead_beefu32.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

#[test]
fn parses_plain_packet() {
    let mut p = packet(0x1234, b"hello");
    p[1] = 0x80 | 97;
    let r = RtpPacket::parse(&p).unwrap();
    assert_eq!(r.sequence, 0x1234);
    assert_eq!(r.timestamp, 1234);
    assert_eq!(r.ssrc, 0xdead_beef);
    assert!(r.marker);
    assert_eq!(r.payload_type, 97);
    assert_eq!(r.payload, b"hello");
}

#[test]
fn rejects_short_and_wrong_version() {
    assert!(RtpPacket::parse(&[]).is_err());
    assert!(RtpPacket::parse(&[0x80; 11]).is_err());
    let mut p = packet(1, b"x");
    p[0] = 0x40; // version 1
    assert!(RtpPacket::parse(&p).is_err());
    // A header with no payload is valid (an empty packet).
    assert_eq!(RtpPacket::parse(&packet(1, b"")).unwrap().payload, b"");
}

#[test]
fn skips_csrcs() {
    let mut p = packet(1, &[]);
    p[0] = 0x82; // two CSRCs
    p.extend_from_slice(&[1, 1, 1, 1, 2, 2, 2, 2]);
    p.extend_from_slice(b"data");
    assert_eq!(RtpPacket::parse(&p).unwrap().payload, b"data");
    // CSRC count larger than the packet.
    p.truncate(16);
    assert!(RtpPacket::parse(&p).is_err());
}

#[test]
fn skips_header_extension() {
    let mut p = packet(1, &[]);
    p[0] = 0x90;
    p.extend_from_slice(&[0xbe, 0xde, 0, 2]); // 2 words follow
    p.extend_from_slice(&[9; 8]);
    p.extend_from_slice(b"data");
    assert_eq!(RtpPacket::parse(&p).unwrap().payload, b"data");
    // Extension length past the end.
    let mut q = packet(1, &[]);
    q[0] = 0x90;
    q.extend_from_slice(&[0xbe, 0xde, 0, 9, 1, 2, 3, 4]);
    assert!(RtpPacket::parse(&q).is_err());
    // Extension header itself truncated.
    let mut r = packet(1, &[]);
    r[0] = 0x90;
    r.extend_from_slice(&[0xbe, 0xde]);
    assert!(RtpPacket::parse(&r).is_err());
}

#[test]
fn removes_padding() {
    let mut p = packet(1, b"data");
    p[0] = 0xa0;
    p.extend_from_slice(&[0, 0, 3]);
    assert_eq!(RtpPacket::parse(&p).unwrap().payload, b"data");
    // Padding covering exactly the payload.
    let mut q = packet(1, b"ab");
    q[0] = 0xa0;
    q.push(3);
    assert_eq!(RtpPacket::parse(&q).unwrap().payload, b"");
    // Zero and too-large padding counts.
    let mut z = packet(1, b"ab");
    z[0] = 0xa0;
    z.push(0);
    assert!(RtpPacket::parse(&z).is_err());
    let mut big = packet(1, b"ab");
    big[0] = 0xa0;
    big.push(4);
    assert!(RtpPacket::parse(&big).is_err());
    // Padding cannot reach into the header extension.
    let mut e = packet(1, &[]);
    e[0] = 0xb0;
    e.extend_from_slice(&[0, 0, 0, 0, 2]);
    assert!(RtpPacket::parse(&e).is_err());
}

#[test]
fn sequence_in_order_and_loss() {
    let mut t = SequenceTracker::new();
    assert_eq!(t.observe(10), SeqResult::Next { lost: 0 });
    assert_eq!(t.observe(11), SeqResult::Next { lost: 0 });
    assert_eq!(t.observe(14), SeqResult::Next { lost: 2 });
    assert_eq!(t.expected(), Some(15));
}

#[test]
fn sequence_duplicates_and_late_are_stale() {
    let mut t = SequenceTracker::new();
    t.observe(100);
    t.observe(101);
    assert_eq!(t.observe(101), SeqResult::Stale);
    assert_eq!(t.observe(90), SeqResult::Stale);
    assert_eq!(t.observe(102), SeqResult::Next { lost: 0 });
}

#[test]
fn sequence_wraps() {
    let mut t = SequenceTracker::new();
    t.observe(65534);
    assert_eq!(t.observe(65535), SeqResult::Next { lost: 0 });
    assert_eq!(t.observe(0), SeqResult::Next { lost: 0 });
    assert_eq!(t.observe(65535), SeqResult::Stale);
    assert_eq!(t.observe(3), SeqResult::Next { lost: 2 });
    // Across the wrap with a gap.
    let mut u = SequenceTracker::new();
    u.observe(65530);
    assert_eq!(u.observe(2), SeqResult::Next { lost: 7 });
}

#[test]
fn sequence_large_forward_jump_is_resync() {
    let mut t = SequenceTracker::new();
    t.observe(1000);
    assert_eq!(t.observe(21000), SeqResult::Next { lost: 19999 });
    assert_eq!(t.observe(21001), SeqResult::Next { lost: 0 });
}

#[test]
fn sequence_restart_behind_resyncs_after_two() {
    let mut t = SequenceTracker::new();
    t.observe(20000);
    t.observe(20001);
    // Sender restarted at 5: first packet dropped, second confirms.
    assert_eq!(t.observe(5), SeqResult::Stale);
    assert_eq!(t.observe(6), SeqResult::Next { lost: 1 });
    assert_eq!(t.observe(7), SeqResult::Next { lost: 0 });
    // A single far-behind stray does not resync.
    assert_eq!(t.observe(50000), SeqResult::Stale);
    assert_eq!(t.observe(8), SeqResult::Next { lost: 0 });
    assert_eq!(t.observe(50001), SeqResult::Stale);
}

#[test]
fn unwrap_90k_and_wraparound() {
    let mut u = TimestampUnwrapper::new(90_000);
    let a = u.unwrap(u32::MAX - 5999);
    assert_eq!(a.ts_90k, i64::from(u32::MAX - 5999));
    let b = u.unwrap(u32::MAX - 2999);
    assert_eq!(b.ts_90k - a.ts_90k, 3000);
    let c = u.unwrap(0); // wrapped
    assert_eq!(c.ts_90k - b.ts_90k, 3000);
    assert!(!c.jumped);
    assert_eq!(c.ts_90k, 1i64 << 32);
}

#[test]
fn unwrap_b_frames_go_back_a_little() {
    let mut u = TimestampUnwrapper::new(90_000);
    u.unwrap(100_000);
    let back = u.unwrap(94_000);
    assert!(!back.jumped);
    assert_eq!(back.ts_90k, 94_000);
}

#[test]
fn unwrap_converts_other_clock_rates_exactly() {
    let mut u = TimestampUnwrapper::new(8000);
    let first = u.unwrap(8000);
    assert_eq!(first.ts_90k, 90_000);
    // 1/3 s steps do not drift: the conversion is of the total.
    let mut ts = 8000u32;
    let mut out = first.ts_90k;
    for _ in 0..3000 {
        ts = ts.wrapping_add(160); // 20 ms
        out = u.unwrap(ts).ts_90k;
    }
    assert_eq!(out, 90_000 + 3000 * 1800);
    let mut v = TimestampUnwrapper::new(44_100);
    v.unwrap(0);
    assert_eq!(v.unwrap(44_100).ts_90k, 90_000);
    assert_eq!(v.unwrap(44_101).ts_90k, 90_002); // floor(90000*44101/44100)
    let mut z = TimestampUnwrapper::new(0);
    assert_eq!(z.clock_rate(), 90_000);
    assert_eq!(z.unwrap(5).ts_90k, 5);
}

#[test]
fn unwrap_rebases_on_jumps() {
    let mut u = TimestampUnwrapper::new(90_000);
    u.unwrap(1_000_000);
    u.unwrap(1_003_600); // 40 ms frame interval
    let fwd = u.unwrap(1_003_600 + 11 * 90_000);
    assert!(fwd.jumped);
    assert_eq!(fwd.ts_90k, 1_003_600 + 3600);
    let next = u.unwrap(1_003_600 + 11 * 90_000 + 3600);
    assert!(!next.jumped);
    assert_eq!(next.ts_90k, 1_003_600 + 7200);
    // Backwards by more than 1 s.
    let back = u.unwrap(5);
    assert!(back.jumped);
    assert_eq!(back.ts_90k, next.ts_90k + 3600);
    // Exactly 10 s forward is not a jump.
    let ok = u.unwrap(5 + 10 * 90_000);
    assert!(!ok.jumped);
    assert_eq!(ok.ts_90k, back.ts_90k + 900_000);
}

#[test]
fn unwrap_jump_before_any_interval_uses_default_step() {
    let mut u = TimestampUnwrapper::new(90_000);
    u.unwrap(0);
    let j = u.unwrap(2_000_000_000);
    assert!(j.jumped);
    assert_eq!(j.ts_90k, DEFAULT_STEP_90K);
}

fn drain(b: &mut ReorderBuffer) -> Vec<(u16, u16)> {
    let mut out = Vec::new();
    while let Some((p, lost)) = b.pop() {
        out.push((RtpPacket::parse(p).unwrap().sequence, lost));
    }
    out
}

#[test]
fn reorder_in_order() {
    let mut b = ReorderBuffer::new(8, 1500);
    for s in 1..=3 {
        b.push(&packet(s, b"x")).unwrap();
        let got = drain(&mut b);
        assert_eq!(got, vec![(s, 0)]);
    }
    assert!(b.is_empty());
    b.push(&packet(4, b"payload")).unwrap();
    let (bytes, lost) = b.pop().unwrap();
    assert_eq!(bytes, &packet(4, b"payload")[..]);
    assert_eq!(lost, 0);
}

#[test]
fn reorder_within_window() {
    let mut b = ReorderBuffer::new(8, 1500);
    b.push(&packet(10, b"")).unwrap();
    assert_eq!(drain(&mut b), vec![(10, 0)]);
    b.push(&packet(12, b"")).unwrap();
    b.push(&packet(13, b"")).unwrap();
    assert_eq!(drain(&mut b), vec![]);
    assert!(b.is_waiting());
    b.push(&packet(11, b"")).unwrap();
    assert_eq!(drain(&mut b), vec![(11, 0), (12, 0), (13, 0)]);
    assert!(!b.is_waiting());
}

#[test]
fn reorder_loss_forced() {
    let mut b = ReorderBuffer::new(8, 1500);
    b.push(&packet(1, b"")).unwrap();
    drain(&mut b);
    b.push(&packet(4, b"")).unwrap();
    b.push(&packet(5, b"")).unwrap();
    assert_eq!(drain(&mut b), vec![]);
    let (p, lost) = b.pop_forced().unwrap();
    assert_eq!(RtpPacket::parse(p).unwrap().sequence, 4);
    assert_eq!(lost, 2);
    assert_eq!(drain(&mut b), vec![(5, 0)]);
    assert!(b.pop_forced().is_none());
    // The late packets arrive after all: dropped.
    b.push(&packet(2, b"")).unwrap();
    b.push(&packet(3, b"")).unwrap();
    assert_eq!(drain(&mut b), vec![]);
    assert_eq!(b.stale_dropped(), 2);
}

#[test]
fn reorder_duplicates_dropped() {
    let mut b = ReorderBuffer::new(8, 1500);
    b.push(&packet(1, b"")).unwrap();
    drain(&mut b);
    b.push(&packet(3, b"a")).unwrap();
    b.push(&packet(3, b"b")).unwrap(); // duplicate in the window
    b.push(&packet(1, b"")).unwrap(); // duplicate already released
    b.push(&packet(2, b"")).unwrap();
    assert_eq!(drain(&mut b), vec![(2, 0), (3, 0)]);
    assert_eq!(b.stale_dropped(), 2);
}

#[test]
fn reorder_wraparound() {
    let mut b = ReorderBuffer::new(5, 1500);
    b.push(&packet(65533, b"")).unwrap();
    assert_eq!(drain(&mut b), vec![(65533, 0)]);
    b.push(&packet(0, b"")).unwrap();
    b.push(&packet(65535, b"")).unwrap();
    b.push(&packet(1, b"")).unwrap();
    assert_eq!(drain(&mut b), vec![]);
    b.push(&packet(65534, b"")).unwrap();
    assert_eq!(drain(&mut b), vec![(65534, 0), (65535, 0), (0, 0), (1, 0)]);
}

#[test]
fn reorder_full_buffer_declares_gap_lost() {
    let mut b = ReorderBuffer::new(4, 1500);
    b.push(&packet(100, b"")).unwrap();
    drain(&mut b);
    // 101 is lost; 102..=104 wait in the window.
    for s in 102..=104 {
        b.push(&packet(s, b"")).unwrap();
        assert_eq!(drain(&mut b), vec![]);
    }
    // 105 does not fit in a window starting at 101: full.
    b.push(&packet(105, b"")).unwrap();
    assert_eq!(drain(&mut b), vec![(102, 1), (103, 0), (104, 0), (105, 0)]);
    assert!(b.is_empty());
    b.push(&packet(106, b"")).unwrap();
    assert_eq!(drain(&mut b), vec![(106, 0)]);
}

#[test]
fn reorder_big_forward_jump() {
    let mut b = ReorderBuffer::new(4, 1500);
    b.push(&packet(10, b"")).unwrap();
    drain(&mut b);
    b.push(&packet(12, b"")).unwrap();
    b.push(&packet(30010, b"")).unwrap();
    assert_eq!(drain(&mut b), vec![(12, 1), (30010, 29997)]);
    b.push(&packet(30011, b"")).unwrap();
    assert_eq!(drain(&mut b), vec![(30011, 0)]);
}

#[test]
fn reorder_refuses_push_when_not_drained() {
    let mut b = ReorderBuffer::new(2, 1500);
    b.push(&packet(1, b"")).unwrap();
    drain(&mut b);
    b.push(&packet(3, b"")).unwrap();
    b.push(&packet(9, b"")).unwrap(); // parked
    assert!(b.push(&packet(10, b"")).is_err());
    assert_eq!(drain(&mut b), vec![(3, 1), (9, 5)]);
    b.push(&packet(10, b"")).unwrap();
    assert_eq!(drain(&mut b), vec![(10, 0)]);
}

#[test]
fn reorder_rejects_oversize_and_garbage() {
    let mut b = ReorderBuffer::new(4, 20);
    assert!(b.push(&packet(1, &[0; 9])).is_err());
    assert!(b.push(&[1, 2, 3]).is_err());
    assert!(b.is_empty());
    b.push(&packet(1, &[0; 8])).unwrap();
    assert_eq!(drain(&mut b), vec![(1, 0)]);
}

#[test]
fn reorder_sender_restart() {
    let mut b = ReorderBuffer::new(8, 1500);
    b.push(&packet(20000, b"")).unwrap();
    drain(&mut b);
    b.push(&packet(7, b"")).unwrap();
    assert_eq!(drain(&mut b), vec![]);
    b.push(&packet(8, b"")).unwrap();
    assert_eq!(drain(&mut b), vec![(8, 1)]);
    b.push(&packet(9, b"")).unwrap();
    assert_eq!(drain(&mut b), vec![(9, 0)]);
}

#[test]
fn reorder_clamps_sizes() {
    let mut b = ReorderBuffer::new(0, 0);
    b.push(&packet(1, b"")).unwrap();
    assert_eq!(drain(&mut b), vec![(1, 0)]);
    b.push(&packet(3, b"")).unwrap(); // does not fit a 1-slot window
    assert_eq!(drain(&mut b), vec![(3, 1)]);
}
