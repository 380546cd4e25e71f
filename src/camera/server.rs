//! The RTSP server of the simulated camera: one thread, one smol
//! `LocalExecutor`, one task per control connection and one per UDP
//! session, so hundreds of streams cost a few kilobytes each.
//!
//! Every task is a loop around "do what is due now, flush what can be
//! written without blocking, then sleep until the socket or the next
//! deadline wakes us". Frames are scheduled on a grid that starts when the
//! server does (tick n at epoch + n/fps), so the pace never drifts, and all
//! sessions of one frame rate wake up together: one reactor wake-up serves
//! them all, instead of one per session per frame. A session's frame 0 is
//! the first tick after PLAY. The RTP timestamp of frame k is
//! base + k * 90000/fps whether the frame was sent or dropped, so the clip
//! loops with continuous timestamps.
//!
//! Layout: this file holds the limits, the state every task shares and the
//! accept loop; `control` is one RTSP control connection (its I/O loop,
//! and in `control::methods` the requests it answers), `udp` a session
//! sending RTP over UDP, `outgoing` the pacing of one RTP stream (shared
//! by both transports), `transport` the SETUP Transport header, `route`
//! which clip a URL names, `wait` sleeping until a socket or deadline.

mod control;
mod outgoing;
mod route;
mod transport;
mod udp;
mod wait;

#[cfg(test)]
mod tests;

use super::auth::CredentialCheck;
use super::clip::Clip;
use super::faults::Faults;
use async_io::{Async, Timer};
use control::ControlConnection;
use smol::{channel, LocalExecutor};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::{TcpListener, TcpStream};
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use udp::UdpHandle;

/// Largest RTSP request accepted; a connection sending more is closed.
pub(crate) const MAX_REQUEST: usize = 64 * 1024;
/// Advertised in `Session: ...;timeout=60`; a UDP session without any
/// keep-alive for this long ends.
pub(crate) const SESSION_TIMEOUT: Duration = Duration::from_secs(60);
/// A control connection with no request and nothing playing over it is
/// closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A TCP client that has not accepted a single byte for this long is gone.
const STALL_TIMEOUT: Duration = Duration::from_secs(20);
const SR_INTERVAL: Duration = Duration::from_secs(5);
const MAX_CONNECTIONS: u32 = 1024;
const MAX_SESSIONS: u32 = 1024;
/// Requests are not read while this much control output is unsent, so a
/// client that pipelines requests without reading replies cannot make the
/// server buffer without bound.
const CTRL_SOFT_LIMIT: usize = 8 * 1024;
/// SO_SNDBUF of a control connection (Linux doubles it for bookkeeping):
/// about half a second of the clips' bitrate.
const SEND_BUFFER: libc::c_int = 32 * 1024;
/// Bytes of interleaved packets handed to one write call: a few packets
/// per system call instead of one, for 8 KiB per playing TCP session.
const WRITE_BATCH: usize = 8 * 1024;
const CNAME: &[u8] = b"vigil-camera";
/// How soon a sleeping task notices a fault it was told to cause.
const FAULT_CHECK: Duration = Duration::from_millis(200);
const SERVER: &str = "Vigil simulated camera";
const PUBLIC: &str = "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER, SET_PARAMETER";
/// Seconds from 1900 (NTP epoch) to 1970 (Unix epoch).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// A random number that differs on every call: SSRCs, initial sequence
/// numbers and timestamps, session ids, the Digest nonce. Not
/// cryptographic, which a loopback test camera does not need.
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(COUNTER.fetch_add(1, Ordering::Relaxed));
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.write_u128(nanos);
    h.finish()
}

/// State shared by every task of one server.
struct Shared {
    clips: &'static [Clip],
    auth: Option<CredentialCheck>,
    /// To spawn UDP session tasks. Weak, so that the tasks (which hold the
    /// `Shared`) do not keep their own executor alive.
    executor: Weak<LocalExecutor<'static>>,
    /// When the server started: the origin of every session's frame grid.
    epoch: Instant,
    faults: Faults,
    /// [`SESSION_TIMEOUT`], shorter in tests.
    session_timeout: Duration,
    connections: Cell<u32>,
    sessions: Cell<u32>,
    udp_sessions: RefCell<HashMap<String, UdpHandle>>,
}

/// Counts a connection or session for its lifetime.
struct Slot {
    shared: Rc<Shared>,
    session: bool,
}

impl Slot {
    fn take(shared: &Rc<Shared>, session: bool) -> Option<Slot> {
        let (count, limit) = if session {
            (&shared.sessions, MAX_SESSIONS)
        } else {
            (&shared.connections, MAX_CONNECTIONS)
        };
        if count.get() >= limit {
            return None;
        }
        count.set(count.get() + 1);
        Some(Slot {
            shared: shared.clone(),
            session,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let count = if self.session {
            &self.shared.sessions
        } else {
            &self.shared.connections
        };
        count.set(count.get().saturating_sub(1));
    }
}

/// Runs the server until `stop` is closed. Called on the server thread.
pub(crate) fn run(
    listener: Async<TcpListener>,
    clips: &'static [Clip],
    auth: Option<CredentialCheck>,
    session_timeout: Duration,
    faults: Faults,
    stop: channel::Receiver<()>,
) {
    let executor = Rc::new(LocalExecutor::new());
    let shared = Rc::new(Shared {
        clips,
        auth,
        executor: Rc::downgrade(&executor),
        epoch: Instant::now(),
        faults,
        session_timeout,
        connections: Cell::new(0),
        sessions: Cell::new(0),
        udp_sessions: RefCell::new(HashMap::new()),
    });
    // The accept loop is a task of its own: as part of the future passed
    // to run() it would be polled on every wake-up of any task, and
    // async-io's accept retries the system call on every poll.
    executor.spawn(accept_loop(listener, shared)).detach();
    let main = async {
        // Closed (the sender dropped) or signalled: either way, stop.
        let _ = stop.recv().await;
    };
    // async-io's block_on: this thread drives the reactor itself, rather
    // than being woken by async-io's fallback thread for every event.
    async_io::block_on(executor.run(main));
    // Dropping the executor cancels every task, closing their sockets.
    drop(executor);
}

async fn accept_loop(listener: Async<TcpListener>, shared: Rc<Shared>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of descriptors and the like: back off instead of
                // spinning on a listener that stays readable.
                log::warn!("camera: accept: {e}");
                Timer::after(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(slot) = Slot::take(&shared, false) else {
            log::warn!("camera: {MAX_CONNECTIONS} connections open, refusing {peer}");
            continue;
        };
        let Some(executor) = shared.executor.upgrade() else {
            return;
        };
        let _ = stream.get_ref().set_nodelay(true);
        limit_send_buffer(stream.get_ref());
        let conn = ControlConnection::new(shared.clone(), stream, peer);
        executor
            .spawn(async move {
                let _slot = slot;
                conn.serve().await;
            })
            .detach();
    }
}

/// Caps the kernel's send buffer of a connection. Linux grows it up to
/// megabytes on loopback, which would hide a client that cannot keep up
/// for tens of seconds (and cost that much kernel memory per stream in a
/// large benchmark); a camera has small buffers and drops frames instead.
fn limit_send_buffer(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    // Failure only leaves the default in place.
    let _ = crate::sockopt::set(stream.as_raw_fd(), libc::SO_SNDBUF, SEND_BUFFER);
}
