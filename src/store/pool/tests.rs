//! Tests of the pool files (pre-allocation, headers, positioned I/O,
//! scanning), on temporary files.

use super::scan::{SCAN_BUF, SCAN_CHUNK};
use super::*;
use crate::store::format::RecordHeader;
use crate::store::format::{FrameEntry, FLAG_FIRST};
use std::sync::atomic::{AtomicU32, Ordering};

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let d = std::env::temp_dir().join(format!(
            "vigil-pool-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const UUID: [u8; 16] = *b"vigil-test-uuid!";
const SIZE: u64 = 256 * 1024;

fn setup(name: &str, count: u32, size: u64) -> (TempDir, Pools) {
    let d = TempDir::new(name);
    Pools::create(&d.0, &UUID, count, size).unwrap();
    let p = Pools::open(&d.0, &UUID, count, size).unwrap();
    (d, p)
}

/// Encodes a record of `frames` frames, whose payload bytes are derived
/// from `seed`; returns (header bytes, payload).
fn record(generation: u64, seq: u32, frame_sizes: &[u32]) -> (Vec<u8>, Vec<u8>) {
    let payload: Vec<u8> = (0..frame_sizes.iter().sum::<u32>())
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seq as u8))
        .collect();
    let h = RecordHeader {
        flags: if seq == 0 { FLAG_FIRST } else { 0 },
        generation,
        stream_id: 1,
        recording_id: 10,
        sequence: seq,
        media_start_90k: i64::from(seq) * 90_000,
        start_wall_90k: 123,
        frames: frame_sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| FrameEntry {
                duration_90k: 3000,
                size,
                key: i == 0,
            })
            .collect(),
        params: (seq == 0).then(|| vec![1, 2, 3]),
        payload_len: payload.len() as u32,
    };
    let mut out = Vec::new();
    h.encode(&[&payload], &mut out);
    (out, payload)
}

/// Writes records back to back from `from`; returns their offsets and
/// the end.
fn write_records(pools: &Pools, pool: u32, from: u64, recs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u64> {
    let mut offs = Vec::new();
    let mut off = from;
    for (h, p) in recs {
        // The payload in two pieces, as from a wrapped ring.
        let (a, b) = p.split_at(p.len() / 3);
        pools.write_at(pool, off, &[h, a, b]).unwrap();
        offs.push(off);
        off += (h.len() + p.len()) as u64;
    }
    offs.push(off);
    pools.sync(pool).unwrap();
    offs
}

#[test]
fn create_open_idempotent() {
    let d = TempDir::new("create");
    Pools::create(&d.0, &UUID, 3, SIZE).unwrap();
    for i in 0..3 {
        assert_eq!(std::fs::metadata(pool_path(&d.0, i)).unwrap().len(), SIZE);
    }
    assert!(!pool_path(&d.0, 3).exists());
    let mut p = Pools::open(&d.0, &UUID, 3, SIZE).unwrap();
    assert_eq!((p.count(), p.size()), (3, SIZE));
    assert_eq!(p.generation(2), 0);
    p.enter(1, 4).unwrap();
    let offs = write_records(&p, 1, POOL_HEADER_BYTES, &[record(4, 0, &[10, 20])]);
    drop(p);

    // Again, with one more pool: the existing ones are kept as they are.
    Pools::create(&d.0, &UUID, 4, SIZE).unwrap();
    let p = Pools::open(&d.0, &UUID, 4, SIZE).unwrap();
    assert_eq!(p.generation(1), 4);
    assert_eq!(p.generation(3), 0);
    let found: Vec<_> = p.scan(1, POOL_HEADER_BYTES).map(|r| r.offset).collect();
    assert_eq!(found, offs[..1]);
    assert!(!d.0.join("pool-000.bin.tmp").exists());
}

#[test]
fn pool_names() {
    let d = Path::new("/x");
    assert_eq!(pool_path(d, 7), Path::new("/x/pool-007.bin"));
    assert_eq!(pool_path(d, 1234), Path::new("/x/pool-1234.bin"));
}

#[test]
fn refuses_foreign_and_resized_pools() {
    let d = TempDir::new("refuse");
    Pools::create(&d.0, &UUID, 2, SIZE).unwrap();
    let other = *b"another-install!";

    let e = Pools::open(&d.0, &other, 2, SIZE).err().unwrap();
    assert!(matches!(e, PoolError::OtherInstall { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("pool-000.bin") && msg.contains("another"),
        "{msg}"
    );
    let e = Pools::create(&d.0, &other, 2, SIZE)
        .unwrap_err()
        .to_string();
    assert!(e.contains("pool-000.bin") && e.contains("another"), "{e}");

    let e = Pools::open(&d.0, &UUID, 2, SIZE * 2).err().unwrap();
    assert!(matches!(e, PoolError::WrongSize { .. }), "{e}");
    assert!(e.to_string().contains("pool-000.bin"));
    let e = Pools::create(&d.0, &UUID, 2, SIZE * 2)
        .unwrap_err()
        .to_string();
    assert!(e.contains("pool_size_mb"), "{e}");

    let e = Pools::open(&d.0, &UUID, 3, SIZE).err().unwrap();
    assert!(matches!(e, PoolError::Missing { .. }), "{e}");
    assert!(e.to_string().contains("pool-002.bin"));

    // Swapped files: the header's index disagrees with the name.
    std::fs::rename(pool_path(&d.0, 0), d.0.join("x")).unwrap();
    std::fs::rename(pool_path(&d.0, 1), pool_path(&d.0, 0)).unwrap();
    std::fs::rename(d.0.join("x"), pool_path(&d.0, 1)).unwrap();
    let e = Pools::open(&d.0, &UUID, 2, SIZE).err().unwrap();
    assert!(matches!(e, PoolError::WrongIndex { .. }), "{e}");

    // A damaged header.
    let f = OpenOptions::new()
        .write(true)
        .open(pool_path(&d.0, 0))
        .unwrap();
    f.write_all_at(b"junk", 0).unwrap();
    let e = Pools::open(&d.0, &UUID, 2, SIZE).err().unwrap();
    assert!(matches!(e, PoolError::Header { .. }), "{e}");

    assert!(matches!(
        Pools::open(&d.0, &UUID, 0, SIZE),
        Err(PoolError::Config(_))
    ));
    assert!(Pools::create(&d.0, &UUID, 1, 100).is_err());
}

#[test]
fn scan_finds_exactly_the_records() {
    let (_d, mut p) = setup("scan", 1, SIZE);
    p.enter(0, 1).unwrap();
    let recs = [
        record(1, 0, &[100, 50, 7]),
        record(1, 1, &[1]),
        record(1, 2, &[3000, 2000]),
    ];
    let offs = write_records(&p, 0, POOL_HEADER_BYTES, &recs);
    let mut scan = p.scan(0, POOL_HEADER_BYTES);
    let found: Vec<ScannedRecord> = scan.by_ref().collect();
    assert_eq!(found.len(), 3);
    for (i, r) in found.iter().enumerate() {
        assert_eq!(r.offset, offs[i]);
        assert_eq!(r.header.sequence, i as u32);
        assert_eq!(r.header_len as usize, recs[i].0.len());
        assert_eq!(r.payload_len as usize, recs[i].1.len());
        let (h, _) = RecordHeader::decode(&recs[i].0).unwrap();
        assert_eq!(r.header, h);
    }
    let (end, why) = scan.end();
    assert_eq!(end, offs[3]);
    let why = why.unwrap();
    assert!(
        why.contains("magic") && why.contains(&offs[3].to_string()),
        "{why}"
    );
    assert!(scan.next().is_none());

    // From the middle.
    assert_eq!(p.scan(0, offs[1]).count(), 2);
    // Read back what was written.
    let mut buf = vec![0; recs[2].1.len()];
    p.read_at(0, offs[2] + recs[2].0.len() as u64, &mut buf)
        .unwrap();
    assert_eq!(buf, recs[2].1);
}

#[test]
fn scan_stops_at_damage() {
    for in_header in [false, true] {
        let (_d, mut p) = setup("damage", 1, SIZE);
        p.enter(0, 1).unwrap();
        let recs = [
            record(1, 0, &[100]),
            record(1, 1, &[200, 10]),
            record(1, 2, &[300]),
        ];
        let offs = write_records(&p, 0, POOL_HEADER_BYTES, &recs);
        // A byte of the second record's payload or frame table.
        let at = if in_header {
            offs[1] + 68 + 1 // a frame duration: decodes, fails the CRC
        } else {
            offs[1] + recs[1].0.len() as u64 + 150
        };
        let mut b = [0u8];
        p.read_at(0, at, &mut b).unwrap();
        p.write_at(0, at, &[&[b[0] ^ 0x04]]).unwrap();
        let mut scan = p.scan(0, POOL_HEADER_BYTES);
        assert_eq!(scan.by_ref().count(), 1);
        let (end, why) = scan.end();
        assert_eq!(end, offs[1]);
        assert_eq!(why.unwrap(), format!("CRC mismatch at offset {}", offs[1]));
    }
}

#[test]
fn stale_records_after_a_wrap_are_not_yielded() {
    let (_d, mut p) = setup("stale", 1, SIZE);
    p.enter(0, 1).unwrap();
    let old = [
        record(1, 0, &[500]),
        record(1, 1, &[600]),
        record(1, 2, &[700]),
    ];
    write_records(&p, 0, POOL_HEADER_BYTES, &old);
    // Re-entered: one new record exactly the size of the old first one,
    // so the old second one starts right after it, whole and CRC-valid.
    p.enter(0, 2).unwrap();
    let new = [record(2, 0, &[500])];
    let offs = write_records(&p, 0, POOL_HEADER_BYTES, &new);
    let mut scan = p.scan(0, POOL_HEADER_BYTES);
    let found: Vec<_> = scan.by_ref().collect();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].header.generation, 2);
    let (end, why) = scan.end();
    assert_eq!(end, offs[1]);
    assert!(why.unwrap().contains("stale"));
}

#[test]
fn records_spanning_the_scan_buffer_and_pool_end() {
    let size = 6 << 20;
    let (_d, mut p) = setup("big", 1, size);
    p.enter(0, 9).unwrap();
    let recs = [
        record(9, 0, &[700_000, 500]),
        record(9, 1, &[2_500_000, 300_000]), // bigger than the buffer
        record(9, 2, &[10; 60_000]),         // a large header
        record(9, 3, &[900_000]),
    ];
    let offs = write_records(&p, 0, POOL_HEADER_BYTES, &recs);
    let found: Vec<_> = p.scan(0, POOL_HEADER_BYTES).map(|r| r.offset).collect();
    assert_eq!(found, offs[..4]);
    // The buffer stays small over large payloads, and grows only for
    // the large header.
    let mut scan = p.scan(0, POOL_HEADER_BYTES);
    assert!(scan.next().is_some() && scan.next().is_some());
    assert_eq!(scan.buf.len(), SCAN_CHUNK);
    assert!(scan.next().is_some());
    assert!(scan.buf.len() > SCAN_CHUNK && scan.buf.len() <= SCAN_BUF);

    // A record filling the pool exactly to its end.
    let room = size - offs[4];
    let hlen = record(9, 4, &[1]).0.len() as u64;
    let last = record(9, 4, &[(room - hlen) as u32]);
    write_records(&p, 0, offs[4], std::slice::from_ref(&last));
    let mut scan = p.scan(0, POOL_HEADER_BYTES);
    assert_eq!(scan.by_ref().count(), 5);
    assert_eq!(scan.end(), (size, Some("end of pool".to_owned())));
}

#[test]
fn scan_refuses_record_past_the_end() {
    let (_d, mut p) = setup("pastend", 1, SIZE);
    p.enter(0, 1).unwrap();
    // A header whose payload would end past the pool: only the header
    // is written (all of it fits).
    let (h, _) = record(1, 1, &[100_000]);
    let off = SIZE - h.len() as u64 - 10;
    p.write_at(0, off, &[&h]).unwrap();
    let mut scan = p.scan(0, off);
    assert_eq!(scan.by_ref().count(), 0);
    assert!(scan.end().1.unwrap().contains("past the end"));
    let mut scan = p.scan(0, SIZE - 10);
    assert_eq!(scan.by_ref().count(), 0);
    assert!(scan.end().1.unwrap().contains("end of pool"));
    let mut scan = p.scan(0, 0);
    assert_eq!(scan.by_ref().count(), 0);
    assert!(scan.end().1.unwrap().contains("pool header"));
    let mut scan = p.scan(5, POOL_HEADER_BYTES);
    assert_eq!(scan.by_ref().count(), 0);
    assert!(scan.end().1.unwrap().contains("no pool 5"));
}

#[test]
fn enter_and_checked_reads() {
    let d = TempDir::new("enter");
    Pools::create(&d.0, &UUID, 2, SIZE).unwrap();
    let mut p = Pools::open(&d.0, &UUID, 2, SIZE).unwrap();
    let reader = p.reader();
    fn send_sync<T: Send + Sync + Clone>(_: &T) {}
    send_sync(&reader);

    p.enter(1, 7).unwrap();
    let offs = write_records(&p, 1, POOL_HEADER_BYTES, &[record(7, 0, &[64])]);
    let mut buf = [0u8; 8];
    reader.read_checked(1, offs[0], &mut buf, 7).unwrap();
    assert_eq!(&buf[..4], b"VGLR");
    assert!(matches!(
        reader.read_checked(1, offs[0], &mut buf, 6),
        Err(ReadError::Overwritten)
    ));

    // Entered again, from another thread's point of view.
    p.enter(1, 8).unwrap();
    let r2 = reader.clone();
    let res = std::thread::spawn(move || {
        let mut buf = [0u8; 8];
        (
            r2.generation(1),
            matches!(
                r2.read_checked(1, offs[0], &mut buf, 7),
                Err(ReadError::Overwritten)
            ),
        )
    })
    .join()
    .unwrap();
    assert_eq!(res, (8, true));
    assert!(matches!(
        reader.read_checked(1, SIZE - 4, &mut buf, 8),
        Err(ReadError::Io(_))
    ));
    assert!(matches!(
        reader.read_checked(9, POOL_HEADER_BYTES, &mut buf, 0),
        Err(ReadError::Io(_))
    ));
    drop(p);
    // The header is durable.
    let p = Pools::open(&d.0, &UUID, 2, SIZE).unwrap();
    assert_eq!((p.generation(0), p.generation(1)), (0, 8));
}

#[test]
fn writes_stay_inside_the_pool() {
    let (_d, p) = setup("bounds", 1, SIZE);
    assert!(p.write_at(0, SIZE - 3, &[b"abcd"]).is_err());
    assert!(p.write_at(0, u64::MAX - 1, &[b"abcd"]).is_err());
    assert!(p.write_at(0, 100, &[b"abcd"]).is_err()); // the header
    assert!(p.write_at(1, POOL_HEADER_BYTES, &[b"abcd"]).is_err());
    p.write_at(0, SIZE - 4, &[b"ab", b"", b"cd"]).unwrap();
    let mut b = [0u8; 4];
    assert!(p.read_at(0, SIZE - 3, &mut b).is_err());
    p.read_at(0, SIZE - 4, &mut b).unwrap();
    assert_eq!(&b, b"abcd");
    p.write_at(0, POOL_HEADER_BYTES, &[]).unwrap();
}

#[test]
fn many_parts_are_written_in_order() {
    let (_d, p) = setup("parts", 1, SIZE);
    let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    // 50 parts of uneven sizes (some empty): more than one pwritev.
    let mut parts: Vec<&[u8]> = Vec::new();
    let mut rest = &data[..];
    for i in 0..50 {
        let n = (i * 7 % 190).min(rest.len());
        let (a, b) = rest.split_at(n);
        parts.push(a);
        rest = b;
    }
    parts.push(rest);
    p.write_at(0, 5000, &parts).unwrap();
    let mut back = vec![0; data.len()];
    p.read_at(0, 5000, &mut back).unwrap();
    assert_eq!(back, data);
}

#[test]
fn zero_fill_fallback() {
    let d = TempDir::new("zeros");
    let path = d.0.join("f");
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    f.write_all_at(b"xyz", 0).unwrap();
    let size = (2 << 20) + 12345;
    write_zeros(&f, 0, size).unwrap();
    assert_eq!(f.metadata().unwrap().len(), size);
    let all = std::fs::read(&path).unwrap();
    assert!(all.iter().all(|&b| b == 0));
    // A range at the end only.
    write_zeros(&f, size, size + 10).unwrap();
    assert_eq!(f.metadata().unwrap().len(), size + 10);
    write_zeros(&f, 5, 5).unwrap();
    assert_eq!(f.metadata().unwrap().len(), size + 10);
}

/// Scan speed over a 256 MiB pool (not run by default: disk-heavy).
/// `cargo test --release --lib scan_speed -- --ignored --nocapture`
#[test]
#[ignore]
fn scan_speed() {
    let size = 256 << 20;
    let (_d, mut p) = setup("speed", 1, size);
    p.enter(0, 1).unwrap();
    let rec = record(1, 1, &[20_000; 25]);
    let mut off = POOL_HEADER_BYTES;
    let len = (rec.0.len() + rec.1.len()) as u64;
    let mut n = 0;
    while off + len <= size {
        p.write_at(0, off, &[&rec.0, &rec.1]).unwrap();
        off += len;
        n += 1;
    }
    p.sync(0).unwrap();
    let t = std::time::Instant::now();
    assert_eq!(p.scan(0, POOL_HEADER_BYTES).count(), n);
    eprintln!("scanned {n} records, 256 MiB, in {:?}", t.elapsed());
}
