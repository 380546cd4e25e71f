//! The ingest thread: one thread receives the video of every playing TCP
//! session, so that a recorder of N cameras wakes ten times a second, not
//! N times ten.
//!
//! A stream's own thread connects, authenticates and sets up its session
//! (async, `rtsp::client`). Once the session plays over TCP, the stream
//! thread *lends* it here ([`lend`]) and sleeps until it comes back. This
//! thread keeps every lent session's socket in one epoll set and, every
//! [`TICK`] (or as soon as a socket has `SO_RCVLOWAT` bytes queued), drains
//! the sockets and hands the frames to each session's sink. A session
//! goes back to its stream thread whenever something other than video
//! needs doing: a keep-alive is due, the camera sent an RTSP message,
//! stop was requested, or the session failed. That happens every half
//! session timeout at most, so the stream threads stay asleep.
//!
//! Why: on the boards (and in VMs) a wake-up is the expensive part of
//! receiving a stream; reading and depacketizing 25 KB is cheap next to
//! it (`docs/ingest.md` has the numbers).
//!
//! A job that panics while being serviced is handed back as failed
//! ([`Job::fail`]), so a bug in one stream's path costs that session, not
//! every camera's recording.

use std::io;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::Mutex;

/// How often every lent session is drained, whatever its rate: the one
/// receive tick, [`crate::stream::ticker::TICK`], the UDP streams' too,
/// kept by the one ticker thread whose socket is in this thread's epoll
/// set.
/// It is what a frame may wait in the kernel before Vigil has it (live
/// viewers see it that much later; a crash may lose that much more than
/// the sync interval).
pub use crate::stream::ticker::TICK;

/// Events taken from one `epoll_wait`.
const MAX_EVENTS: usize = 32;
/// The epoll token of the wake-up eventfd (job tokens are slot indexes).
const WAKE_TOKEN: u64 = u64::MAX;
/// The epoll token of the process's ticker (`stream::ticker`).
const TICK_TOKEN: u64 = u64::MAX - 1;

/// A session lent to the ingest thread.
pub trait Job: Send {
    /// The socket to watch.
    fn fd(&self) -> RawFd;
    /// Reads and handles what is queued; `tick` says the session's timers
    /// are due for a look too. Returns `true` when the job must go back to
    /// its owner (it keeps the reason itself).
    fn service(&mut self, tick: bool) -> bool;
    /// Servicing panicked: record the failure, the job goes back.
    fn fail(&mut self, why: String);
    /// Hands the job back to its owner.
    fn give_back(self: Box<Self>);
}

struct Handle {
    jobs: mpsc::Sender<Box<dyn Job>>,
    wake: OwnedFd,
}

static INGEST: Mutex<Option<Handle>> = Mutex::new(None);

/// Lends `job` to the ingest thread, starting it on first use. The job
/// always comes back through [`Job::give_back`]: failed at once if the
/// thread cannot take it.
pub fn lend(job: Box<dyn Job>) {
    let mut guard = INGEST.lock().unwrap_or_else(|e| e.into_inner());
    if guard.is_none() {
        match start() {
            Ok(h) => *guard = Some(h),
            Err(e) => return refuse(job, format!("cannot start the ingest thread: {e}")),
        }
    }
    let Some(h) = guard.as_ref() else {
        return refuse(job, "no ingest thread".into());
    };
    if let Err(mpsc::SendError(job)) = h.jobs.send(job) {
        // The thread is gone (it never ends on its own): the next lend
        // starts a new one.
        *guard = None;
        return refuse(job, "the ingest thread is gone".into());
    }
    let one: u64 = 1;
    // SAFETY: an 8-byte write from a local to an eventfd we own.
    let r = unsafe { libc::write(h.wake.as_raw_fd(), (&one as *const u64).cast(), 8) };
    if r != 8 {
        // Only a saturated counter fails, and that wakes the thread anyway.
        log::debug!("ingest: wake-up write: {}", io::Error::last_os_error());
    }
}

fn refuse(mut job: Box<dyn Job>, why: String) {
    log::error!("ingest: {why}");
    job.fail(why);
    job.give_back();
}

fn start() -> io::Result<Handle> {
    // SAFETY: plain system calls; the descriptors are owned at once.
    let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if epoll < 0 {
        return Err(io::Error::last_os_error());
    }
    let epoll = unsafe { OwnedFd::from_raw_fd(epoll) };
    let wake = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if wake < 0 {
        return Err(io::Error::last_os_error());
    }
    let wake = unsafe { OwnedFd::from_raw_fd(wake) };
    epoll_ctl(&epoll, libc::EPOLL_CTL_ADD, wake.as_raw_fd(), WAKE_TOKEN)?;
    let thread_wake = wake.try_clone()?;
    // The process's one clock, not a timer of this thread's own.
    let ticks = crate::stream::ticker::subscribe_raw()?;
    epoll_ctl(&epoll, libc::EPOLL_CTL_ADD, ticks.as_raw_fd(), TICK_TOKEN)?;
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("ingest".into())
        // Frames are copied into the sinks' own buffers; nothing big here.
        .stack_size(128 * 1024)
        .spawn(move || run(epoll, thread_wake, ticks, rx))?;
    log::debug!("ingest thread started");
    Ok(Handle { jobs: tx, wake })
}

fn epoll_ctl(epoll: &OwnedFd, op: libc::c_int, fd: RawFd, token: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: token,
    };
    // SAFETY: epoll_ctl with a valid epoll descriptor and event struct.
    let r = unsafe { libc::epoll_ctl(epoll.as_raw_fd(), op, fd, &mut ev) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The lent jobs, by epoll token.
struct Slots {
    epoll: OwnedFd,
    jobs: Vec<Option<Box<dyn Job>>>,
    live: usize,
}

impl Slots {
    fn add(&mut self, job: Box<dyn Job>) {
        let slot = match self.jobs.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                self.jobs.push(None);
                self.jobs.len() - 1
            }
        };
        if let Err(e) = epoll_ctl(&self.epoll, libc::EPOLL_CTL_ADD, job.fd(), slot as u64) {
            let mut job = job;
            job.fail(format!("ingest: cannot watch the socket: {e}"));
            job.give_back();
            return;
        }
        self.jobs[slot] = Some(job);
        self.live += 1;
        // What the connection had buffered before the lend, first.
        self.service(slot, false);
    }

    /// Services one job; gives it back when it is done or panicked.
    fn service(&mut self, slot: usize, tick: bool) {
        let Some(job) = self.jobs.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let done = match catch_unwind(AssertUnwindSafe(|| job.service(tick))) {
            Ok(done) => done,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                log::error!("ingest: a session's handling panicked: {what}");
                job.fail(format!("internal error while receiving: {what}"));
                true
            }
        };
        if done {
            if let Some(job) = self.jobs[slot].take() {
                // Before the job goes: its owner may close the socket.
                let _ = epoll_ctl(&self.epoll, libc::EPOLL_CTL_DEL, job.fd(), 0);
                self.live -= 1;
                job.give_back();
            }
        }
    }
}

fn run(
    epoll: OwnedFd,
    wake: OwnedFd,
    mut ticks: std::os::unix::net::UnixStream,
    jobs: mpsc::Receiver<Box<dyn Job>>,
) {
    let mut slots = Slots {
        epoll,
        jobs: Vec::new(),
        live: 0,
    };
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; MAX_EVENTS];
    loop {
        let mut tick = false;
        // SAFETY: epoll_wait into a local array of MAX_EVENTS events.
        let n = unsafe {
            libc::epoll_wait(
                slots.epoll.as_raw_fd(),
                events.as_mut_ptr(),
                MAX_EVENTS as libc::c_int,
                // No timeout: the ticker's socket wakes this thread every TICK.
                -1,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                log::error!("ingest: epoll_wait: {e}");
                std::thread::sleep(TICK);
            }
            continue;
        }
        for ev in &events[..n as usize] {
            let token = ev.u64;
            if token == WAKE_TOKEN {
                let mut count = 0u64;
                // SAFETY: an 8-byte read into a local from our eventfd.
                let _ = unsafe { libc::read(wake.as_raw_fd(), (&mut count as *mut u64).cast(), 8) };
                while let Ok(job) = jobs.try_recv() {
                    slots.add(job);
                }
            } else if token == TICK_TOKEN {
                // Ticks missed while busy are merged into this one.
                let mut buf = [0u8; 64];
                while matches!(ticks.read(&mut buf), Ok(n) if n > 0) {}
                tick = true;
            } else {
                slots.service(token as usize, false);
            }
        }
        if tick && slots.live > 0 {
            for slot in 0..slots.jobs.len() {
                slots.service(slot, true);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;
    use std::time::{Duration, Instant};

    /// Counts what it reads; done after `until` bytes, or panics at `panic_at`.
    struct Counter {
        sock: TcpStream,
        got: usize,
        until: usize,
        panic_at: Option<usize>,
        ticks: u32,
        /// Times serviced, seen from the test's thread.
        serviced: std::sync::Arc<std::sync::atomic::AtomicU32>,
        failed: Option<String>,
        back: mpsc::Sender<Box<Counter>>,
    }

    impl Job for Counter {
        fn fd(&self) -> RawFd {
            self.sock.as_raw_fd()
        }
        fn service(&mut self, tick: bool) -> bool {
            self.ticks += u32::from(tick);
            self.serviced
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            while let Ok(n) = self.sock.read(&mut buf) {
                if n == 0 {
                    return true;
                }
                self.got += n;
                if self.panic_at.is_some_and(|p| self.got >= p) {
                    panic!("test panic at {}", self.got);
                }
            }
            self.got >= self.until
        }
        fn fail(&mut self, why: String) {
            self.failed = Some(why);
        }
        fn give_back(self: Box<Self>) {
            let back = self.back.clone();
            let _ = back.send(self);
        }
    }

    fn counter(
        until: usize,
        panic_at: Option<usize>,
    ) -> (Box<Counter>, TcpStream, mpsc::Receiver<Box<Counter>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let tx = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (sock, _) = l.accept().unwrap();
        sock.set_nonblocking(true).unwrap();
        let (back, rx) = mpsc::channel();
        let job = Box::new(Counter {
            sock,
            got: 0,
            until,
            panic_at,
            ticks: 0,
            serviced: Default::default(),
            failed: None,
            back,
        });
        (job, tx, rx)
    }

    #[test]
    fn jobs_are_serviced_on_data_and_come_back() {
        let (a, mut a_tx, a_back) = counter(3000, None);
        let (b, mut b_tx, b_back) = counter(10, None);
        // Bytes sent before the lend are read at once.
        a_tx.write_all(&[1; 1000]).unwrap();
        lend(a);
        lend(b);
        b_tx.write_all(&[2; 10]).unwrap();
        let b = b_back.recv_timeout(Duration::from_secs(5)).expect("b back");
        assert_eq!((b.got, b.failed.as_deref()), (10, None));
        a_tx.write_all(&[1; 2000]).unwrap();
        let a = a_back.recv_timeout(Duration::from_secs(5)).expect("a back");
        assert_eq!(a.got, 3000);
    }

    #[test]
    fn bytes_below_the_low_water_mark_are_read_on_the_tick() {
        let (a, mut a_tx, a_back) = counter(10, None);
        crate::sockopt::set(a.sock.as_raw_fd(), libc::SO_RCVLOWAT, 1 << 20).unwrap();
        let serviced = a.serviced.clone();
        lend(a);
        // Once it has been looked at on arrival, so that the bytes below
        // can only be read on a tick.
        let deadline = Instant::now() + Duration::from_secs(5);
        while serviced.load(std::sync::atomic::Ordering::SeqCst) == 0 {
            assert!(Instant::now() < deadline, "never serviced");
            std::thread::yield_now();
        }
        a_tx.write_all(&[1; 10]).unwrap();
        let a = a_back.recv_timeout(Duration::from_secs(5)).expect("a back");
        assert_eq!(a.got, 10);
        assert!(a.ticks >= 1, "read on a tick, not on readiness");
    }

    #[test]
    fn a_panicking_job_comes_back_failed_and_others_go_on() {
        let (bad, mut bad_tx, bad_back) = counter(usize::MAX, Some(5));
        let (good, mut good_tx, good_back) = counter(20, None);
        lend(bad);
        lend(good);
        bad_tx.write_all(&[0; 5]).unwrap();
        let bad = bad_back
            .recv_timeout(Duration::from_secs(5))
            .expect("bad back");
        assert!(
            bad.failed.as_deref().unwrap_or("").contains("test panic"),
            "{:?}",
            bad.failed
        );
        good_tx.write_all(&[0; 20]).unwrap();
        let good = good_back
            .recv_timeout(Duration::from_secs(5))
            .expect("good back");
        assert_eq!((good.got, good.failed), (20, None));
    }
}
