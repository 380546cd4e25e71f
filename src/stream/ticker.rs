//! The process's one receive clock, delivered as socket readiness: the UDP
//! stream threads wait on it ([`Ticks`]) and the TCP ingest thread has it
//! in its epoll set ([`subscribe_raw`]), so one thread keeps the time for
//! every stream.
//!
//! async-io's reactor allocates on every wake-up while any timer is
//! registered (`Reactor::process_timers` splits its timer map), and a
//! receiving UDP stream wakes for nearly every packet. So its steady state
//! registers no async-io timer at all: deadlines (keep-alive, data
//! timeout, UDP reorder wait) are checked on a tick that one process-wide
//! thread writes into a socket pair per stream, every [`TICK`].

use async_io::Async;
use futures_lite::AsyncReadExt;
use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// The receive tick, for every stream: the UDP streams wake on it here
/// and the TCP ingest thread drains on it (`rtsp::ingest`). Fine enough
/// for the 100 ms UDP reorder wait.
pub const TICK: Duration = Duration::from_millis(100);

static SUBSCRIBERS: OnceLock<Mutex<Vec<UnixStream>>> = OnceLock::new();

/// One subscriber's end of the clock.
pub struct Ticks {
    rx: Async<UnixStream>,
    buf: [u8; 16],
}

impl Ticks {
    /// Subscribes to the process-wide ticker, starting it on first use.
    pub fn subscribe() -> io::Result<Ticks> {
        Ok(Ticks {
            rx: Async::new(subscribe_raw()?)?,
            buf: [0; 16],
        })
    }

    /// Waits for the next tick (ticks missed while busy are merged).
    pub async fn next(&mut self) -> io::Result<()> {
        let n = self.rx.read(&mut self.buf).await?;
        if n == 0 {
            return Err(io::Error::other("ticker stopped"));
        }
        Ok(())
    }
}

/// A subscription as a plain non-blocking socket that becomes readable on
/// every tick, for a thread with an epoll loop of its own (`rtsp::ingest`):
/// read it empty after each wake-up.
pub fn subscribe_raw() -> io::Result<UnixStream> {
    let (tx, rx) = UnixStream::pair()?;
    tx.set_nonblocking(true)?;
    rx.set_nonblocking(true)?;
    let subscribers = SUBSCRIBERS.get_or_init(|| {
        // The thread is started once and lives as long as the process.
        let _ = std::thread::Builder::new()
            .name("ticker".into())
            .stack_size(64 * 1024)
            .spawn(run_ticker);
        Mutex::new(Vec::new())
    });
    subscribers
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(tx);
    Ok(rx)
}

fn run_ticker() {
    loop {
        std::thread::sleep(TICK);
        let Some(subscribers) = SUBSCRIBERS.get() else {
            continue;
        };
        let mut subs = subscribers.lock().unwrap_or_else(|e| e.into_inner());
        // A full socket means the subscriber has ticks pending already; a
        // broken one means it is gone.
        subs.retain_mut(|tx| match tx.write(&[1]) {
            Ok(_) => true,
            Err(e) => e.kind() == io::ErrorKind::WouldBlock,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn ticks_arrive_and_dropped_subscribers_are_forgotten() {
        let mut t = Ticks::subscribe().unwrap();
        let start = Instant::now();
        smol::block_on(async {
            for _ in 0..3 {
                t.next().await.unwrap();
            }
        });
        assert!(start.elapsed() < Duration::from_secs(2));
        drop(t);
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let n = SUBSCRIBERS.get().unwrap().lock().unwrap().len();
            // Other tests may subscribe concurrently; ours must go.
            if n == 0 || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(TICK);
        }
    }
}
