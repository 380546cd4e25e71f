//! The server: one accept thread, a pool of connection threads started on
//! demand, and the queue between them. When every thread is taken, room is
//! made by closing an idle keep-alive connection or a slowloris one; past
//! the queue's bound, new connections get a quick 503 (see `mod.rs`).

use super::connection::serve;
use super::limits::*;
use super::response::{response_head, Framing};
use super::Reply;
use super::Request;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the connection layer needs from the routes above.
pub trait Handler: Send + Sync + 'static {
    /// The answer to a request; `body` holds its whole body.
    fn handle(&self, req: &Request, body: Vec<u8>, peer: SocketAddr) -> Reply;
    /// Called with the status of every answer sent (for metrics).
    fn count(&self, status: u16);
    /// No connection thread is left: drop what was cached for them.
    fn quiet(&self) {}
}

/// What a connection is doing, for making room.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Waiting for a request's first byte (between keep-alive requests).
    Idle,
    /// Reading a request head.
    Head,
    /// Reading a body, answering.
    Busy,
}

/// A connection being served, for `stop` and for making room.
struct Slot {
    id: u64,
    fd: RawFd,
    phase: Phase,
    /// Since when it is in `phase`.
    since: Instant,
    /// Shut down to make room; its thread takes a queued connection next.
    evicted: bool,
}

/// An accepted connection waiting for a thread.
pub(super) struct Queued {
    stream: TcpStream,
    peer: SocketAddr,
    since: Instant,
}

#[derive(Default)]
pub(super) struct State {
    /// Accepted connections waiting for a thread, oldest first.
    queue: VecDeque<Queued>,
    /// Connection threads alive.
    threads: usize,
    /// Of those, waiting for a connection.
    waiting: usize,
    conns: Vec<Slot>,
    next_id: u64,
}

pub(super) struct Shared {
    pub(super) handler: Arc<dyn Handler>,
    pub(super) stop: Arc<AtomicBool>,
    max_threads: usize,
    state: Mutex<State>,
    /// Signalled when a connection is queued, a thread ends, or on stop.
    changed: Condvar,
    /// Evicted connections, answered (503) and shut down for writing, for
    /// the accept thread to close gently: their threads are wanted at once.
    pub(super) handed_off: Mutex<Vec<TcpStream>>,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }
}

/// The server: an accept thread and the connection threads.
pub struct Server {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: Option<JoinHandle<()>>,
    /// The listening socket, shared with the accept thread so that it is
    /// open as long as the server is (shut down by `stop` to wake it).
    listener: Arc<TcpListener>,
}

impl Server {
    /// Serves `listener` with at most `max_threads` connection threads.
    /// `stop` is the server's stop flag (long answers end at it).
    pub fn start(
        listener: TcpListener,
        handler: Arc<dyn Handler>,
        max_threads: usize,
        stop: Arc<AtomicBool>,
    ) -> io::Result<Server> {
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let listener = Arc::new(listener);
        let accept_listener = listener.clone();
        let shared = Arc::new(Shared {
            handler,
            stop,
            max_threads: max_threads.max(1),
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            handed_off: Mutex::new(Vec::new()),
        });
        let s = shared.clone();
        let accept = std::thread::Builder::new()
            .name("http-accept".into())
            .stack_size(STACK_SIZE)
            .spawn(move || accept_loop(&s, &accept_listener))?;
        Ok(Server {
            shared,
            addr,
            accept: Some(accept),
            listener,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connection threads alive (for tests and measurements).
    pub fn threads(&self) -> usize {
        self.shared.lock().threads
    }

    /// Stops accepting, closes every connection (a request being answered
    /// finishes; a long answer ends at its next read) and waits, bounded,
    /// for the connection threads.
    pub fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(t) = self.accept.take() {
            // Wakes the accept thread from its wait (Linux wakes a poll on
            // a listening socket that is shut down).
            // SAFETY: the listener is open: `self` holds it.
            unsafe { libc::shutdown(self.listener.as_raw_fd(), libc::SHUT_RDWR) };
            let _ = t.join();
        }
        let deadline = Instant::now() + STOP_GRACE;
        let mut st = self.shared.lock();
        for c in &st.conns {
            // SAFETY: the descriptor is open: a slot is removed, under
            // this lock, before its connection is closed.
            unsafe { libc::shutdown(c.fd, libc::SHUT_RDWR) };
        }
        st.queue.clear();
        self.shared.changed.notify_all();
        while st.threads > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                log::warn!(
                    "http: {} connection thread(s) still busy at stop; leaving them",
                    st.threads
                );
                break;
            }
            st = self
                .shared
                .changed
                .wait_timeout(st, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.accept.is_some() {
            self.stop();
        }
    }
}

/// Waits (bounded) for the listener to have a connection.
fn wait_readable(fd: RawFd, timeout: Duration) {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: one valid pollfd, count 1.
    unsafe { libc::poll(&mut p, 1, ms) };
}

fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener) {
    // Refused connections, shut down for writing, read until their client
    // closes (or for `LINGER`), so that their 503 is not lost to a reset.
    let mut lingering: VecDeque<(TcpStream, Instant)> = VecDeque::new();
    let mut scratch_head = vec![0u8; MAX_HEAD];
    let mut last_error_log: Option<Instant> = None;
    while !shared.stopping() {
        // Queued connections are looked at often: room may be made.
        let queued = !shared.lock().queue.is_empty();
        let poll = if queued { QUEUE_POLL } else { ACCEPT_POLL };
        wait_readable(listener.as_raw_fd(), poll);
        loop {
            match listener.accept() {
                Ok((s, peer)) => {
                    let mut st = shared.lock();
                    if st.queue.len() >= MAX_QUEUE {
                        drop(st);
                        refuse(shared, s, &mut lingering);
                    } else {
                        st.queue.push_back(Queued {
                            stream: s,
                            peer,
                            since: Instant::now(),
                        });
                        drop(st);
                        balance(shared, &mut lingering, &mut scratch_head);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) if shared.stopping() => break,
                Err(e) => {
                    // Out of descriptors, mostly: wait rather than spin.
                    if last_error_log.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                        log::warn!("http: accept: {e}");
                        last_error_log = Some(Instant::now());
                    }
                    std::thread::sleep(Duration::from_millis(100));
                    break;
                }
            }
            if shared.stopping() {
                break;
            }
        }
        balance(shared, &mut lingering, &mut scratch_head);
        let handed: Vec<TcpStream> =
            std::mem::take(&mut *shared.handed_off.lock().unwrap_or_else(|e| e.into_inner()));
        for s in handed {
            linger_later(s, &mut lingering);
        }
        let mut scratch = [0u8; 1024];
        lingering.retain(|(s, since)| {
            if since.elapsed() > LINGER {
                return false;
            }
            loop {
                match (&*s).read(&mut scratch) {
                    Ok(0) => return false,
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return false,
                }
            }
        });
    }
}

/// Finds a thread for every queued connection: a waiting thread, a new
/// one (up to the bound), or the thread of a connection closed to make
/// room (one idle between requests, else one trickling its head for over
/// `SLOW_HEAD`). Connections queued for over `QUEUE_WAIT` are refused.
fn balance(
    shared: &Arc<Shared>,
    lingering: &mut VecDeque<(TcpStream, Instant)>,
    scratch: &mut [u8],
) {
    let mut st = shared.lock();
    loop {
        // Threads that will take a queued connection without more ado.
        let evicting = st.conns.iter().filter(|c| c.evicted).count();
        if st.queue.len() <= st.waiting + evicting {
            break;
        }
        if st.threads < shared.max_threads {
            let Some(first) = take_next(&mut st.queue, scratch) else {
                break;
            };
            st.threads += 1;
            let sh = shared.clone();
            // Taken back if the thread cannot be started, to be refused.
            let handoff = Arc::new(Mutex::new(Some(first)));
            let theirs = handoff.clone();
            let spawned = std::thread::Builder::new()
                .name("http-conn".into())
                .stack_size(STACK_SIZE)
                .spawn(move || {
                    let guard = ThreadGuard(sh);
                    let first = theirs.lock().unwrap_or_else(|e| e.into_inner()).take();
                    if let Some(first) = first {
                        connection_thread(&guard.0, first);
                    }
                });
            if let Err(e) = spawned {
                log::warn!("http: cannot start a connection thread: {e}");
                st.threads -= 1;
                let back = handoff.lock().unwrap_or_else(|e| e.into_inner()).take();
                if let Some(q) = back {
                    drop(st);
                    refuse(shared, q.stream, lingering);
                    st = shared.lock();
                }
                break;
            }
            continue;
        }
        if !evict_one(&mut st) {
            break;
        }
    }
    shared.changed.notify_all();
    let mut expired = Vec::new();
    while st
        .queue
        .front()
        .is_some_and(|q| q.since.elapsed() >= QUEUE_WAIT)
    {
        expired.extend(st.queue.pop_front());
    }
    drop(st);
    for q in expired {
        refuse(shared, q.stream, lingering);
    }
}

/// The queued connection to serve next: the oldest whose client has sent
/// a whole request head (or closed), else the oldest. So when clients
/// trickling their heads (slowloris) fill the queue, a client that sent
/// its request at once still gets the next free thread.
fn take_next(queue: &mut VecDeque<Queued>, scratch: &mut [u8]) -> Option<Queued> {
    let ready = queue.iter().position(|q| head_arrived(&q.stream, scratch));
    match ready {
        Some(i) => queue.remove(i),
        None => queue.pop_front(),
    }
}

/// Whether a whole request head (or the end of the stream) is waiting to
/// be read, looked at without reading it.
/// Whether the client has sent bytes not read yet (or closed).
fn bytes_waiting(fd: RawFd) -> bool {
    let mut one = [0u8; 1];
    // SAFETY: a socket descriptor kept open while registered (see
    // `Server::stop`) and a buffer of the length given; MSG_PEEK leaves
    // the byte queued.
    let n = unsafe {
        libc::recv(
            fd,
            one.as_mut_ptr().cast(),
            one.len(),
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    n >= 0
}

fn head_arrived(s: &TcpStream, scratch: &mut [u8]) -> bool {
    // SAFETY: a valid socket descriptor (borrowed for the call) and a
    // buffer of the length given; MSG_PEEK leaves the bytes queued.
    let n = unsafe {
        libc::recv(
            s.as_raw_fd(),
            scratch.as_mut_ptr().cast(),
            scratch.len(),
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    match usize::try_from(n) {
        Ok(0) => true,
        Ok(n) => {
            let got = scratch.get(..n).unwrap_or_default();
            got.windows(2).any(|w| w == b"\n\n") || got.windows(3).any(|w| w == b"\n\r\n")
        }
        Err(_) => false,
    }
}

/// Closes a connection to make room for a queued one: the one idle the
/// longest between requests, else the one trickling its request head the
/// longest, if for over `SLOW_HEAD` (slowloris). False when none may go.
fn evict_one(st: &mut State) -> bool {
    let now = Instant::now();
    let candidates = |phase: Phase, min_age: Duration| {
        move |c: &&mut Slot| {
            !c.evicted && c.phase == phase && now.saturating_duration_since(c.since) >= min_age
        }
    };
    // "Idle" until its thread has read a byte: one whose request is
    // already waiting is not idle, and closing it would answer nothing.
    let idle = st
        .conns
        .iter_mut()
        .filter(candidates(Phase::Idle, Duration::ZERO))
        .filter(|c| !bytes_waiting(c.fd))
        .min_by_key(|c| c.since);
    let victim = match idle {
        Some(c) => Some((c, Some(libc::SHUT_RDWR))),
        None => st
            .conns
            .iter_mut()
            .filter(candidates(Phase::Head, SLOW_HEAD))
            .min_by_key(|c| c.since)
            // Its thread sees the mark within `EVICT_POLL` and answers 503.
            .map(|c| (c, None)),
    };
    let Some((c, how)) = victim else {
        return false;
    };
    c.evicted = true;
    if let Some(how) = how {
        // SAFETY: the descriptor is open (see `Server::stop`).
        unsafe { libc::shutdown(c.fd, how) };
    }
    true
}

/// A quick 503 from the accept thread: never blocks, never a thread.
fn refuse(shared: &Shared, s: TcpStream, lingering: &mut VecDeque<(TcpStream, Instant)>) {
    shared.handler.count(503);
    let body = br#"{"error":"too many connections (http.max_clients): try again shortly"}"#;
    let mut out = response_head(
        503,
        "application/json",
        &[("Retry-After", "1".to_owned())],
        Framing::Length(body.len() as u64),
        false,
        1,
    );
    out.extend_from_slice(body);
    if s.set_nonblocking(true).is_err() {
        return;
    }
    // A new socket's send buffer takes this at once.
    let _ = (&s).write(&out);
    let _ = s.shutdown(Shutdown::Write);
    linger_later(s, lingering);
}

/// Adds a connection, answered and shut down for writing, to those the
/// accept thread reads until their clients close (see `LINGER`).
fn linger_later(s: TcpStream, lingering: &mut VecDeque<(TcpStream, Instant)>) {
    if s.set_nonblocking(true).is_err() {
        return;
    }
    if lingering.len() >= MAX_LINGERING {
        lingering.pop_front();
    }
    lingering.push_back((s, Instant::now()));
}

/// Ends the thread's bookkeeping however it ends (a panic included).
struct ThreadGuard(Arc<Shared>);

impl Drop for ThreadGuard {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        st.threads -= 1;
        let quiet = st.threads == 0;
        self.0.changed.notify_all();
        drop(st);
        if quiet {
            self.0.handler.quiet();
        }
    }
}

fn connection_thread(shared: &Shared, first: Queued) {
    // The thread's head buffer, kept across its connections.
    let mut buf = vec![0u8; MAX_HEAD];
    let mut next = Some(first);
    while let Some(Queued { stream, peer, .. }) = next.take() {
        serve(shared, stream, peer, &mut buf);
        next = next_connection(shared, &mut buf);
    }
}

/// A queued connection, or `None` after `POOL_IDLE` without one (or at
/// stop): the thread then ends.
fn next_connection(shared: &Shared, scratch: &mut [u8]) -> Option<Queued> {
    let deadline = Instant::now() + POOL_IDLE;
    let mut st = shared.lock();
    st.waiting += 1;
    let got = loop {
        if shared.stopping() {
            break None;
        }
        if let Some(c) = take_next(&mut st.queue, scratch) {
            break Some(c);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break None;
        }
        st = shared
            .changed
            .wait_timeout(st, left)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    };
    st.waiting -= 1;
    got
}

/// A connection's slot, removed (under the lock) before the socket closes.
pub(super) struct Registration<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Registration<'_> {
    pub(super) fn set_phase(&self, phase: Phase) {
        let mut st = self.shared.lock();
        if let Some(c) = st.conns.iter_mut().find(|c| c.id == self.id) {
            c.phase = phase;
            c.since = Instant::now();
        }
    }

    /// Whether it was shut down to make room.
    pub(super) fn evicted(&self) -> bool {
        let st = self.shared.lock();
        st.conns.iter().any(|c| c.id == self.id && c.evicted)
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.shared.lock().conns.retain(|c| c.id != self.id);
    }
}

pub(super) fn register<'a>(shared: &'a Shared, s: &TcpStream) -> Option<Registration<'a>> {
    let mut st = shared.lock();
    // Checked under the lock `stop` takes to close connections.
    if shared.stopping() {
        return None;
    }
    st.next_id += 1;
    let id = st.next_id;
    st.conns.push(Slot {
        id,
        fd: s.as_raw_fd(),
        phase: Phase::Idle,
        since: Instant::now(),
        evicted: false,
    });
    Some(Registration { shared, id })
}
