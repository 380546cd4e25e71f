use super::*;
use crate::media::testutil::{have_ffmpeg, Harness};

/// An RTP/JPEG payload.
fn pkt(offset: u32, kind: u8, q: u8, w8: u8, h8: u8, extra: &[u8], data: &[u8]) -> Vec<u8> {
    let o = offset.to_be_bytes();
    let mut v = vec![0, o[1], o[2], o[3], kind, q, w8, h8];
    v.extend_from_slice(extra);
    v.extend_from_slice(data);
    v
}

fn qheader(precision: u8, tables: &[u8]) -> Vec<u8> {
    let mut v = vec![0, precision];
    v.extend_from_slice(&(tables.len() as u16).to_be_bytes());
    v.extend_from_slice(tables);
    v
}

/// The segments of a JPEG up to SOS, as (marker, body), and the rest.
fn segments(jpeg: &[u8]) -> (Vec<(u8, Vec<u8>)>, Vec<u8>) {
    assert_eq!(&jpeg[..2], &[0xff, 0xd8]);
    let mut out = Vec::new();
    let mut i = 2;
    loop {
        assert_eq!(jpeg[i], 0xff);
        let m = jpeg[i + 1];
        let len = u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]) as usize;
        out.push((m, jpeg[i + 4..i + 2 + len].to_vec()));
        i += 2 + len;
        if m == 0xda {
            return (out, jpeg[i..].to_vec());
        }
    }
}

fn find(segs: &[(u8, Vec<u8>)], m: u8) -> Option<Vec<u8>> {
    segs.iter().find(|s| s.0 == m).map(|s| s.1.clone())
}

#[test]
fn tables_match_the_standard() {
    // The zig-zag order walks the anti-diagonals alternately.
    let mut zz = Vec::new();
    for s in 0..15i32 {
        let cells = (0..=s).filter(|&r| r < 8 && s - r < 8).map(|r| (r, s - r));
        let mut d: Vec<(i32, i32)> = cells.collect();
        if s % 2 == 0 {
            d.reverse();
        }
        zz.extend(d.into_iter().map(|(r, c)| (r * 8 + c) as u8));
    }
    assert_eq!(zz, ZIGZAG.to_vec());
    for (_, bits, values) in HUFFMAN_TABLES {
        assert_eq!(
            bits.iter().map(|&b| usize::from(b)).sum::<usize>(),
            values.len()
        );
    }
    // Q 50 is the standard table itself; Q 80 scales by 0.4.
    let t = scaled_table(&LUMA_Q, 50);
    assert_eq!(&t[..6], &[16, 11, 12, 14, 12, 10]);
    assert_eq!(scaled_table(&LUMA_Q, 80)[0], 6);
    assert_eq!(scaled_table(&CHROMA_Q, 1)[63], 255, "clamped");
    assert_eq!(scaled_table(&LUMA_Q, 99)[0], 1, "never zero");
}

#[test]
fn header_for_standard_q_and_restart_interval() {
    let mut h = Harness::new(JpegDepacketizer::new(1 << 20));
    let scan = [0x12, 0x34, 0x56];
    h.ok(
        0,
        false,
        &pkt(0, 65, 50, 80, 60, &[0, 4, 0xff, 0xff], &scan[..2]),
    );
    h.ok(
        0,
        true,
        &pkt(2, 65, 50, 80, 60, &[0, 4, 0xff, 0xff], &scan[2..]),
    );
    assert_eq!(h.frames.len(), 1);
    let f = &h.frames[0];
    assert!(f.key && f.changed && !f.after_loss);
    assert_eq!((f.params.width, f.params.height), (640, 480));
    assert_eq!(f.params.rfc6381_codec, "jpeg");
    let (segs, rest) = segments(&f.data);
    assert_eq!(rest, [0x12, 0x34, 0x56, 0xff, 0xd9], "scan + appended EOI");
    let markers: Vec<u8> = segs.iter().map(|s| s.0).collect();
    assert_eq!(markers, vec![0xe0, 0xdb, 0xc0, 0xc4, 0xdd, 0xda]);
    assert_eq!(&find(&segs, 0xe0).unwrap()[..5], b"JFIF\0");
    let dqt = find(&segs, 0xdb).unwrap();
    assert_eq!(dqt.len(), 130);
    assert_eq!((dqt[0], dqt[65]), (0, 1));
    assert_eq!(&dqt[1..4], &[16, 11, 12]);
    assert_eq!(&dqt[66..69], &[17, 18, 18]);
    let sof = find(&segs, 0xc0).unwrap();
    assert_eq!(
        sof,
        vec![8, 1, 224, 2, 128, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]
    );
    assert_eq!(find(&segs, 0xdd).unwrap(), vec![0, 4]);
    assert_eq!(find(&segs, 0xc4).unwrap().len(), 416);
}

#[test]
fn type_0_is_4_2_2_and_eoi_not_doubled() {
    let mut h = Harness::new(JpegDepacketizer::new(1 << 20));
    h.ok(0, true, &pkt(0, 0, 75, 2, 2, &[], &[0x11, 0xff, 0xd9]));
    let (segs, rest) = segments(&h.frames[0].data);
    assert_eq!(find(&segs, 0xc0).unwrap()[7], 0x21);
    assert!(find(&segs, 0xdd).is_none());
    assert_eq!(rest, [0x11, 0xff, 0xd9]);
}

#[test]
fn dynamic_tables_cache_and_precision() {
    let mut h = Harness::new(JpegDepacketizer::new(1 << 20));
    let tables: Vec<u8> = (1..=128).collect();
    h.ok(
        0,
        true,
        &pkt(0, 1, 128, 4, 4, &qheader(0, &tables), &[0xaa]),
    );
    // Q 128..=254: the sender may stop sending the tables.
    h.ok(3000, true, &pkt(0, 1, 128, 4, 4, &qheader(0, &[]), &[0xbb]));
    assert_eq!(h.frames.len(), 2);
    let a = segments(&h.frames[0].data).0;
    let b = segments(&h.frames[1].data).0;
    assert_eq!(find(&a, 0xdb), find(&b, 0xdb));
    let dqt = find(&a, 0xdb).unwrap();
    assert_eq!(&dqt[1..65], &tables[..64]);
    assert_eq!(dqt[65], 1);
    assert_eq!(&dqt[66..], &tables[64..]);
    // Q 255 must always carry its tables; unknown Q 200 has none cached.
    assert!(h
        .push(
            6000,
            true,
            false,
            &pkt(0, 1, 255, 4, 4, &qheader(0, &[]), &[1])
        )
        .is_err());
    assert!(h
        .push(
            9000,
            true,
            false,
            &pkt(0, 1, 200, 4, 4, &qheader(0, &[]), &[1])
        )
        .is_err());
    // 16-bit luma table, 8-bit chroma: SOF1 and Pq = 1.
    let wide: Vec<u8> = (0..192).map(|i| i as u8).collect();
    h.ok(
        12000,
        true,
        &pkt(0, 1, 255, 4, 4, &qheader(1, &wide), &[0xcc]),
    );
    let segs = segments(&h.frames[2].data).0;
    assert!(find(&segs, 0xc1).is_some(), "SOF1");
    let dqt = find(&segs, 0xdb).unwrap();
    assert_eq!((dqt[0], dqt[129]), (0x10, 0x01));
    // Table lengths that do not match the precision bits.
    assert!(h
        .push(
            15000,
            true,
            false,
            &pkt(0, 1, 255, 4, 4, &qheader(1, &[0; 64]), &[1])
        )
        .is_err());
    assert_eq!(h.frames.len(), 3);
}

#[test]
fn fragment_gap_drops_the_frame() {
    let mut h = Harness::new(JpegDepacketizer::new(1 << 20));
    h.ok(0, false, &pkt(0, 1, 50, 2, 2, &[], &[1, 2, 3]));
    assert!(matches!(
        h.push(0, false, false, &pkt(5, 1, 50, 2, 2, &[], &[4])),
        Err(DepacketizeError::Malformed(_))
    ));
    // The rest of that frame is ignored quietly.
    assert_eq!(
        h.push(0, true, false, &pkt(6, 1, 50, 2, 2, &[], &[5])),
        Ok(())
    );
    assert!(h.frames.is_empty());
    // Loss reported between fragments of one frame: also a gap.
    h.ok(3000, false, &pkt(0, 1, 50, 2, 2, &[], &[1, 2, 3]));
    assert!(h
        .push(3000, true, true, &pkt(3, 1, 50, 2, 2, &[], &[4]))
        .is_err());
    // A fragment whose frame start was lost.
    assert!(h
        .push(6000, true, true, &pkt(9, 1, 50, 2, 2, &[], &[4]))
        .is_err());
    assert!(h.frames.is_empty());
    // Then a whole frame, flagged as following a loss.
    assert_eq!(
        h.push(9000, true, true, &pkt(0, 1, 50, 2, 2, &[], &[7])),
        Ok(())
    );
    assert_eq!(h.frames.len(), 1);
    assert!(h.frames[0].after_loss);
}

#[test]
fn quirk_missing_marker_bit() {
    let mut h = Harness::new(JpegDepacketizer::new(1 << 20));
    h.ok(0, false, &pkt(0, 1, 50, 2, 2, &[], &[1, 2]));
    h.ok(0, false, &pkt(2, 1, 50, 2, 2, &[], &[3]));
    h.ok(3000, false, &pkt(0, 1, 50, 2, 2, &[], &[4]));
    assert_eq!(h.frames.len(), 1);
    assert!(h.frames[0].data.ends_with(&[1, 2, 3, 0xff, 0xd9]));
    // The next frame is marked and complete in one packet: it waits
    // for the next push (one emit per push).
    h.ok(6000, true, &pkt(0, 1, 50, 2, 2, &[], &[5]));
    assert_eq!(h.frames.len(), 2);
    assert_eq!(h.frames[1].ts, 3000);
    h.ok(9000, false, &pkt(0, 1, 50, 2, 2, &[], &[6]));
    assert_eq!(h.frames.len(), 3);
    assert_eq!(h.frames[2].ts, 6000);
}

#[test]
fn params_change_with_size_and_header_is_cached() {
    let mut h = Harness::new(JpegDepacketizer::new(1 << 20));
    for i in 0..5 {
        h.ok(i * 3000, true, &pkt(0, 1, 60, 4, 4, &[], &[1; 500]));
    }
    h.ok(15000, true, &pkt(0, 1, 60, 8, 4, &[], &[1; 500]));
    let changed: Vec<bool> = h.frames.iter().map(|f| f.changed).collect();
    assert_eq!(changed, vec![true, false, false, false, false, true]);
    assert_eq!(h.frames[5].params.width, 64);
    // Steady state: one buffer, reused.
    let ptrs: Vec<usize> = h.frames[1..5].iter().map(|f| f.ptr).collect();
    assert!(ptrs.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn too_large_and_malformed() {
    let mut h = Harness::new(JpegDepacketizer::new(700));
    assert!(matches!(
        h.push(0, false, false, &pkt(0, 1, 50, 2, 2, &[], &[1; 100])),
        Err(DepacketizeError::FrameTooLarge { limit: 700 })
    ));
    assert_eq!(
        h.push(0, true, false, &pkt(100, 1, 50, 2, 2, &[], &[1])),
        Ok(())
    );
    h.ok(3000, true, &pkt(0, 1, 50, 2, 2, &[], &[1; 10]));
    assert_eq!(h.frames.len(), 1);
    assert!(h.frames[0].data.len() <= 700);
    for bad in [
        &[0u8, 0, 0, 0, 1][..],
        &pkt(0, 1, 50, 0, 2, &[], &[1]),
        &pkt(0, 1, 0, 2, 2, &[], &[1]),
        &pkt(0, 1, 110, 2, 2, &[], &[1]),
        &pkt(0, 7, 50, 2, 2, &[], &[1]),
        &pkt(0, 64, 50, 2, 2, &[0], &[]),
        &pkt(0, 1, 255, 2, 2, &[0, 0, 0, 64, 1], &[]),
    ] {
        assert!(
            matches!(
                h.push(6000, true, false, bad),
                Err(DepacketizeError::Malformed(_))
            ),
            "{bad:02x?}"
        );
    }
    assert_eq!(h.frames.len(), 1);
}

/// Splits a JPEG made by ffmpeg into what RTP/JPEG carries, sends it in
/// three packets with in-band tables, and checks ffmpeg decodes the
/// rebuilt image to exactly the same pixels as the original.
#[test]
fn rebuilt_image_decodes_like_the_original() {
    if !have_ffmpeg() {
        println!("note: ffmpeg not found; skipping the JPEG decode check");
        return;
    }
    let dir = std::env::temp_dir().join(format!("vigil-jpeg-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let orig = dir.join("orig.jpg");
    let run = |args: &[&str]| {
        let out = std::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-v", "error", "-nostdin"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    run(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=48x32:rate=1",
        "-frames:v",
        "1",
        "-pix_fmt",
        "yuvj420p",
        "-c:v",
        "mjpeg",
        "-huffman",
        "default",
        "-q:v",
        "4",
        "-y",
        orig.to_str().unwrap(),
    ]);
    let jpeg = std::fs::read(&orig).unwrap();
    let (segs, mut scan) = segments(&jpeg);
    assert!(scan.ends_with(&[0xff, 0xd9]));
    scan.truncate(scan.len() - 2); // let the depacketizer add EOI
                                   // DQT may hold one or two 8-bit tables; chroma uses table 1 if any.
    let dqt = find(&segs, 0xdb).unwrap();
    let mut tables = Vec::new();
    for c in dqt.chunks(65) {
        assert_eq!(c[0] >> 4, 0, "8-bit tables");
        tables.push(c[1..].to_vec());
    }
    let sof = find(&segs, 0xc0).unwrap();
    assert_eq!(sof[7], 0x22, "4:2:0");
    let chroma = usize::from(sof[11]);
    let qdata = [tables[0].clone(), tables[chroma].clone()].concat();

    let mut h = Harness::new(JpegDepacketizer::new(1 << 20));
    let third = scan.len() / 3;
    let parts = [&scan[..third], &scan[third..2 * third], &scan[2 * third..]];
    let mut offset = 0;
    for (i, part) in parts.iter().enumerate() {
        let extra = if i == 0 {
            qheader(0, &qdata)
        } else {
            Vec::new()
        };
        h.ok(90_000, i == 2, &pkt(offset, 1, 255, 6, 4, &extra, part));
        offset += part.len() as u32;
    }
    assert_eq!(h.frames.len(), 1);
    let rebuilt = dir.join("rebuilt.jpg");
    std::fs::write(&rebuilt, &h.frames[0].data).unwrap();
    let decode = |p: &std::path::Path| {
        run(&[
            "-i",
            p.to_str().unwrap(),
            "-f",
            "rawvideo",
            "-pix_fmt",
            "yuv420p",
            "-",
        ])
    };
    let a = decode(&orig);
    let b = decode(&rebuilt);
    assert_eq!(a.len(), 48 * 32 * 3 / 2);
    assert!(a == b, "decoded pixels differ");
    let _ = std::fs::remove_dir_all(&dir);
}
