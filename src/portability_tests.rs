//! Tests for the ABI traps of the static musl cross builds (cross/README.md).
//!
//! Each trap links fine and fails silently at run time, so only a test
//! running on the target (under qemu-user in `make test`) catches it:
//! - the float ABI: Rust's `mipsel-unknown-linux-musl` is soft-float while
//!   Debian's musl and gcc (which build SQLite) are hard-float; without
//!   `-C target-feature=-soft-float,+fpxx,+nooddspreg` doubles crossing
//!   into C arrive as garbage (SQLite once returned 1.84 for 3.875);
//! - the time_t ABI: musl 1.2 has a 64-bit `time_t` on 32-bit targets, the
//!   `libc` crate assumes the old 32-bit one unless built with
//!   `--cfg libc_unstable_musl_v1_2`, and async-io's timers then never fire.
//!
//! They pass trivially on x86_64, which is the point: they are cheap there.

use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Doubles go into SQLite (C) as parameters, through its arithmetic and
/// its own text formatting, and come back. Checked: on mipsel built without
/// the float flags, 3.875 came back as 5.26e-315.
#[test]
fn float_round_trip_through_sqlite() {
    let db = rusqlite::Connection::open_in_memory().expect("in-memory database");
    let (back, doubled, text, parsed): (f64, f64, String, f64) = db
        .query_row(
            "SELECT ?1, ?1 * 2.0, printf('%.4f', ?2), CAST('-1234.5625' AS REAL)",
            rusqlite::params![3.875_f64, -0.0625_f64],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .expect("query");
    assert_eq!(back, 3.875);
    assert_eq!(doubled, 7.75);
    assert_eq!(text, "-0.0625");
    assert_eq!(parsed, -1234.5625);

    // Stored and read back from a REAL column too (the index keeps some).
    db.execute_batch("CREATE TABLE t (x REAL)").expect("create");
    db.execute("INSERT INTO t VALUES (?1)", [1.0e-3_f64 / 3.0])
        .expect("insert");
    let x: f64 = db
        .query_row("SELECT x FROM t", [], |r| r.get(0))
        .expect("select");
    assert_eq!(x.to_bits(), (1.0e-3_f64 / 3.0).to_bits());
}

/// The clock read through the `libc` crate (its `timespec` layout) agrees
/// with std's. (musl keeps 32-bit-time_t entry points for old binaries, so
/// this passes even without the time_t `--cfg`: it guards the layout.)
#[test]
fn libc_clock_agrees_with_std() {
    // SAFETY: timespec is plain integers (with private padding on 32-bit
    // musl), for which all-zero bytes are a valid value.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a timespec we own.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    assert_eq!(rc, 0);
    let std_secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    #[allow(clippy::unnecessary_cast)] // time_t is i32 on some targets
    let libc_secs = ts.tv_sec as i64;
    assert!(
        (libc_secs - std_secs as i64).abs() <= 2,
        "libc says {libc_secs} s, std says {std_secs} s"
    );
    assert!(
        (0..1_000_000_000).contains(&ts.tv_nsec),
        "tv_nsec {}",
        ts.tv_nsec
    );
}

/// An async-io timer, awaited alone, fires after its duration. Awaited on a
/// thread so a timer that never fires fails the test in bounded time
/// instead of hanging it. (Without the time_t `--cfg` on mipsel this one
/// still passed; the race below is what failed.)
#[test]
fn async_io_timer_fires() {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let start = Instant::now();
        let fired_at = async_io::block_on(async_io::Timer::after(Duration::from_millis(50)));
        let _ = tx.send((fired_at, start));
    });
    let (fired_at, start) = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the async-io timer did not fire within 20 s (time_t ABI?)");
    let waited = fired_at.saturating_duration_since(start);
    assert!(
        waited >= Duration::from_millis(50),
        "fired early: {waited:?}"
    );
    assert!(waited < Duration::from_secs(20), "fired late: {waited:?}");
}

/// A timeout as the daemon uses it: a timer raced against a future that
/// never completes, under smol's executor. Checked: on mipsel built without
/// `--cfg libc_unstable_musl_v1_2` the timer never fires and this fails.
#[test]
fn smol_timeout_wins_race() {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let r = smol::block_on(futures_lite::future::or(
            async {
                futures_lite::future::pending::<()>().await;
                "pending"
            },
            async {
                async_io::Timer::after(Duration::from_millis(30)).await;
                "timer"
            },
        ));
        let _ = tx.send(r);
    });
    let r = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the timeout never fired within 20 s (time_t ABI?)");
    assert_eq!(r, "timer");
}
