//! Closes HTTP connections that have gone quiet, and the oldest idle ones
//! when there are too many.
//!
//! `tiny_http` gives every connection a thread that blocks reading the next
//! request for as long as the client keeps the connection open, and shows
//! us neither the sockets nor any timeout. A client that connects and sends
//! nothing (or trickles a request head a byte at a time, or keeps a
//! keep-alive connection open) would hold a thread forever. So this thread
//! looks at our own descriptors every second: a TCP socket bound to the
//! server's port that is not the listener and to which we have sent nothing
//! for `idle` (the kernel's `TCP_INFO` says when we last sent data; a new
//! connection counts from its accept) is shut down, which makes the blocked
//! read return end-of-file so `tiny_http` closes it. A response in progress
//! sends data all the time and is never touched; one whose client stopped
//! reading fails its write after the send timeout instead.
//!
//! Linux only, like the rest of Vigil (it reads `/proc/self/fd`).

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the descriptors are looked at.
const PERIOD: Duration = Duration::from_secs(1);

/// `tcpi_state` of an open connection (Linux's `TCP_ESTABLISHED`).
const TCP_ESTABLISHED: u8 = 1;

/// The running reaper; stops when dropped.
pub struct Reaper {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Reaper {
    /// Watches connections to local `port`: closes those idle for `idle`,
    /// and beyond `max_connections`, the idlest first.
    pub fn start(port: u16, idle: Duration, max_connections: usize) -> std::io::Result<Reaper> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("http-reaper".into())
            .spawn(move || {
                let idle_ms = u32::try_from(idle.as_millis()).unwrap_or(u32::MAX);
                while !flag.load(Ordering::Acquire) {
                    let closed = sweep(port, idle_ms, max_connections);
                    if closed > 0 {
                        log::info!("http: closed {closed} idle connection(s)");
                    }
                    std::thread::park_timeout(PERIOD);
                }
            })?;
        Ok(Reaper {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// One look at every descriptor; returns how many connections it closed.
pub fn sweep(port: u16, idle_ms: u32, max_connections: usize) -> usize {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return 0;
    };
    // (milliseconds since we last sent, descriptor) of every connection.
    let mut conns: Vec<(u32, RawFd)> = Vec::new();
    for entry in dir.flatten() {
        let Some(fd) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        if let Some(quiet_ms) = connection_quiet_ms(fd, port) {
            conns.push((quiet_ms, fd));
        }
    }
    // Idlest first.
    conns.sort_unstable_by_key(|c| std::cmp::Reverse(c.0));
    let over = conns.len().saturating_sub(max_connections);
    let mut closed = 0;
    for (i, &(quiet_ms, fd)) in conns.iter().enumerate() {
        if quiet_ms >= idle_ms || i < over {
            // Checked again right before: the descriptor may have been
            // closed and reused since the scan.
            if connection_quiet_ms(fd, port).is_some() {
                // SAFETY: shutting down a socket descriptor is harmless to
                // memory; the socket is one of the server's connections
                // (checked just above), whose owner sees end-of-file.
                unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
                closed += 1;
            }
        }
    }
    closed
}

/// Shuts down the server's connection to `peer` (local `port`): for a
/// response that cannot go on, so that the client sees the connection end
/// rather than wait for bytes that will never come (tiny_http would keep a
/// keep-alive connection open after a failed response). False when no
/// such connection was found.
pub fn close_connection(port: u16, peer: std::net::SocketAddr) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return false;
    };
    for entry in dir.flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<RawFd>().ok())
        else {
            continue;
        };
        if connection_quiet_ms(fd, port).is_some() && peer_of(fd) == Some(peer) {
            // SAFETY: as in `sweep`: one of the server's connections.
            unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
            return true;
        }
    }
    false
}

/// The remote address of a connected socket.
fn peer_of(fd: RawFd) -> Option<std::net::SocketAddr> {
    let mut addr: libc::sockaddr_storage = unsafe_zeroed_storage();
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `addr` is a sockaddr_storage and `len` its size.
    let rc = unsafe {
        libc::getpeername(
            fd,
            (&mut addr as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return None;
    }
    sockaddr(&addr).map(|(ip, port)| std::net::SocketAddr::new(ip, port))
}

/// The IP address and port in a socket address.
fn sockaddr(addr: &libc::sockaddr_storage) -> Option<(std::net::IpAddr, u16)> {
    match i32::from(addr.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let a =
                unsafe { &*(addr as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some((ip.into(), u16::from_be(a.sin_port)))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let a =
                unsafe { &*(addr as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some((ip.into(), u16::from_be(a.sin6_port)))
        }
        _ => None,
    }
}

/// For a TCP connection (not a listener) on local `port`: how long since
/// we last sent it data, in milliseconds. `None` for anything else.
fn connection_quiet_ms(fd: RawFd, port: u16) -> Option<u32> {
    let mut addr: libc::sockaddr_storage = unsafe_zeroed_storage();
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `addr` is a sockaddr_storage and `len` its size; on a
    // descriptor that is not a socket the call just fails.
    let rc = unsafe {
        libc::getsockname(
            fd,
            (&mut addr as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return None;
    }
    let (_, local_port) = sockaddr(&addr)?;
    if local_port != port {
        return None;
    }
    let listening: libc::c_int = getsockopt(fd, libc::SOL_SOCKET, libc::SO_ACCEPTCONN)?;
    if listening != 0 {
        return None;
    }
    let info: libc::tcp_info = getsockopt(fd, libc::IPPROTO_TCP, libc::TCP_INFO)?;
    // Only open connections: one already shut down (by us or the client)
    // is on its way out.
    (info.tcpi_state == TCP_ESTABLISHED).then_some(info.tcpi_last_data_sent)
}

fn unsafe_zeroed_storage() -> libc::sockaddr_storage {
    // SAFETY: sockaddr_storage is plain old data; all zeroes is valid.
    unsafe { std::mem::zeroed() }
}

/// A socket option of plain-data type `T`.
fn getsockopt<T>(fd: RawFd, level: libc::c_int, name: libc::c_int) -> Option<T> {
    let mut v = std::mem::MaybeUninit::<T>::zeroed();
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: a buffer of `len` bytes; the kernel writes at most that.
    let rc = unsafe { libc::getsockopt(fd, level, name, v.as_mut_ptr().cast(), &mut len) };
    // SAFETY: zero-initialised plain data (integers and C structs of
    // integers), partly overwritten by the kernel: every bit pattern is a
    // valid value.
    (rc == 0).then(|| unsafe { v.assume_init() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn closes_quiet_connections_and_the_idlest_beyond_the_limit() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let mut clients = Vec::new();
        let mut served = Vec::new();
        for _ in 0..3 {
            clients.push(TcpStream::connect(("127.0.0.1", port)).unwrap());
            served.push(l.accept().unwrap().0);
        }
        // Nothing is idle for an hour, and three is not over four.
        assert_eq!(sweep(port, 3_600_000, 4), 0);
        // Over a limit of one: the two idlest go; the listener never does.
        assert_eq!(sweep(port, 3_600_000, 1), 2);
        // Idle for 0 ms or more: everything left.
        assert_eq!(sweep(port, 0, 100), 1);
        assert_eq!(
            sweep(port, 0, 100),
            0,
            "shut down sockets are not counted twice"
        );
        // Each client sees its connection end.
        for mut c in clients {
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut b = [0u8; 1];
            assert_eq!(c.read(&mut b).unwrap(), 0);
        }
        // One connection among others, by its peer address.
        let mut a = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let _a_served = l.accept().unwrap().0;
        let b = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let _b_served = l.accept().unwrap().0;
        assert!(close_connection(port, a.local_addr().unwrap()));
        a.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut one = [0u8; 1];
        assert_eq!(a.read(&mut one).unwrap(), 0);
        assert_eq!(sweep(port, 3_600_000, 1), 0, "only b is left open");
        drop(b);
        // The listener still accepts.
        let _c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let _ = l.accept().unwrap();
        drop(served);
    }
}
