//! The RTSP connection: one TCP stream carrying RTSP messages and, once
//! playing with the TCP transport, interleaved RTP/RTCP (RFC 2326 §10.12).
//!
//! Everything is read into one fixed buffer, sized for the largest thing we
//! accept (an RTSP message of [`MAX_MESSAGE_BYTES`] or an interleaved frame
//! of 64 KiB), and handed out as borrowed slices: no allocation per packet.

use async_io::Async;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use rtsp_types::{Message, ParseError, Request, Response};
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpStream};

/// Largest RTSP message (headers and body) we accept from a camera.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// `$`, channel, 16-bit length, then up to 65535 bytes.
const MAX_INTERLEAVED: usize = 4 + 65535;
const BUF_BYTES: usize = if MAX_MESSAGE_BYTES > MAX_INTERLEAVED {
    MAX_MESSAGE_BYTES
} else {
    MAX_INTERLEAVED
};

/// What arrived on the connection.
pub enum Incoming<'a> {
    Data { channel: u8, payload: &'a [u8] },
    Response(Response<Vec<u8>>),
    Request(Request<Vec<u8>>),
}

/// A whole frame in the buffer, before it is handed out as [`Incoming`].
enum Buffered {
    Data(u8),
    Response(Response<Vec<u8>>),
    Request(Request<Vec<u8>>),
}

#[derive(Debug)]
pub enum ConnError {
    Io(io::Error),
    Closed,
    /// Bytes that are neither an RTSP message nor interleaved data.
    Garbage(String),
    TooLarge,
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnError::Io(e) => write!(f, "connection error: {e}"),
            ConnError::Closed => f.write_str("the camera closed the connection"),
            ConnError::Garbage(s) => write!(f, "unparseable data from the camera: {s}"),
            ConnError::TooLarge => write!(
                f,
                "RTSP message from the camera larger than {MAX_MESSAGE_BYTES} bytes"
            ),
        }
    }
}

impl From<io::Error> for ConnError {
    fn from(e: io::Error) -> Self {
        ConnError::Io(e)
    }
}

pub struct Conn {
    stream: Async<TcpStream>,
    buf: Box<[u8]>,
    /// Unconsumed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// Bytes of the message returned last, consumed at the next call.
    pending: usize,
    /// While streaming, skip stray bytes up to the next `$` instead of
    /// failing: some cameras emit padding or partial junk between frames.
    pub resync: bool,
    /// Stray bytes skipped so far (see `resync`).
    pub skipped_bytes: u64,
    /// The last direct read came back short: the socket was empty then
    /// (see [`Conn::next_now`]).
    drained: bool,
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> io::Result<Conn> {
        let stream = Async::<TcpStream>::connect(addr).await?;
        stream.get_ref().set_nodelay(true)?;
        Ok(Conn::from_stream(stream))
    }

    pub fn from_stream(stream: Async<TcpStream>) -> Conn {
        Conn {
            stream,
            buf: vec![0u8; BUF_BYTES].into_boxed_slice(),
            start: 0,
            end: 0,
            pending: 0,
            resync: false,
            skipped_bytes: 0,
            drained: false,
        }
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.stream.get_ref().local_addr()
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.stream.get_ref().peer_addr()
    }

    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    /// The next message or interleaved frame.
    pub async fn next(&mut self) -> Result<Incoming<'_>, ConnError> {
        self.start += std::mem::take(&mut self.pending);
        loop {
            if let Some(b) = self.buffered()? {
                return Ok(self.hand_out(b));
            }
            self.fill().await?;
        }
    }

    /// The next message or interleaved frame if one is buffered or can be
    /// read without waiting; `None` when the socket has nothing more now.
    /// The read goes to the socket directly, not through the reactor, so a
    /// caller that comes back on its own clock (the ingest thread, see
    /// `rtsp::ingest`) costs no readiness
    /// registration per wake-up. A read that comes back short has emptied
    /// the socket, so no more reads are made until the caller has waited
    /// and called [`Conn::rearm`]: one read per wake-up, not a second one
    /// that finds nothing.
    pub fn next_now(&mut self) -> Result<Option<Incoming<'_>>, ConnError> {
        self.start += std::mem::take(&mut self.pending);
        loop {
            if let Some(b) = self.buffered()? {
                return Ok(Some(self.hand_out(b)));
            }
            if self.drained {
                return Ok(None);
            }
            // What is left is at most part of one frame: moving it to the
            // front lets a whole wake-up's worth of data in with one read.
            self.compact();
            if self.end == self.buf.len() {
                return Err(ConnError::TooLarge);
            }
            let mut socket = self.stream.get_ref();
            let room = self.buf.len() - self.end;
            match io::Read::read(&mut socket, &mut self.buf[self.end..]) {
                Ok(0) => return Err(ConnError::Closed),
                Ok(n) => {
                    self.end += n;
                    self.drained = n < room;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Says the socket may have data again (it was reported readable, or
    /// the caller's clock says to look): [`Conn::next_now`] reads again.
    pub fn rearm(&mut self) {
        self.drained = false;
    }

    /// The socket, for a caller that waits on it itself (`rtsp::ingest`).
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.stream.get_ref().as_raw_fd()
    }

    /// Readiness from now on means at least `bytes` queued (SO_RCVLOWAT).
    pub fn set_read_low_water(&self, bytes: i32) -> io::Result<()> {
        crate::sockopt::set(self.raw_fd(), libc::SO_RCVLOWAT, bytes)
    }

    /// Compacts the buffer so that there is room to read into.
    fn make_room(&mut self) -> Result<(), ConnError> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            if self.start == 0 {
                return Err(ConnError::TooLarge);
            }
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        Ok(())
    }

    /// Moves the unconsumed bytes to the front of the buffer.
    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }

    /// Reads more bytes, compacting the buffer first when needed.
    async fn fill(&mut self) -> Result<(), ConnError> {
        self.make_room()?;
        let n = self.stream.read(&mut self.buf[self.end..]).await?;
        if n == 0 {
            return Err(ConnError::Closed);
        }
        self.end += n;
        Ok(())
    }

    /// The whole message or interleaved frame at `start`, if buffered; it
    /// is consumed at the next call of `next`/`next_now` (`pending`).
    fn buffered(&mut self) -> Result<Option<Buffered>, ConnError> {
        loop {
            let Some((len, framed)) = self.frame_at_start()? else {
                return Ok(None);
            };
            let b = match framed {
                Framed::Data(channel) => Buffered::Data(channel),
                Framed::Message(Message::Response(r)) => Buffered::Response(r),
                Framed::Message(Message::Request(r)) => Buffered::Request(r),
                // `$` frames are Framed::Data before rtsp-types sees them;
                // should one get through, it is skipped.
                Framed::Message(Message::Data(_)) => {
                    self.start += len;
                    continue;
                }
            };
            self.pending = len;
            return Ok(Some(b));
        }
    }

    /// What [`Conn::buffered`] found, as the caller gets it.
    fn hand_out(&self, b: Buffered) -> Incoming<'_> {
        match b {
            Buffered::Data(channel) => Incoming::Data {
                channel,
                payload: &self.buf[self.start + 4..self.start + self.pending],
            },
            Buffered::Response(r) => Incoming::Response(r),
            Buffered::Request(r) => Incoming::Request(r),
        }
    }

    /// A whole frame at `start`, if buffered.
    fn frame_at_start(&mut self) -> Result<Option<(usize, Framed)>, ConnError> {
        let (skipped, framed) = parse_frame(&self.buf[self.start..self.end], self.resync)?;
        self.start += skipped;
        self.skipped_bytes += skipped as u64;
        Ok(framed)
    }
}

/// Splits the next frame off `avail`: `(bytes skipped before it, frame)`,
/// where the frame is `(its length, what it is)`, or `None` when more bytes
/// are needed. With `resync`, stray bytes up to the next `$` are skipped
/// instead of being an error. A pure function, so it can be fuzzed.
pub fn parse_frame(
    avail: &[u8],
    resync: bool,
) -> Result<(usize, Option<(usize, Framed)>), ConnError> {
    let mut skipped = 0;
    loop {
        let rest = &avail[skipped..];
        let Some(&first) = rest.first() else {
            return Ok((skipped, None));
        };
        if first == b'$' {
            if rest.len() < 4 {
                return Ok((skipped, None));
            }
            let len = 4 + usize::from(u16::from_be_bytes([rest[2], rest[3]]));
            if rest.len() < len {
                return Ok((skipped, None));
            }
            return Ok((skipped, Some((len, Framed::Data(rest[1])))));
        }
        if !looks_like_message_start(rest) {
            if !resync {
                return Err(ConnError::Garbage(preview(rest)));
            }
            // Quirk: stray bytes between interleaved frames. Skip to the
            // next `$` or answer (`RTSP/`); the caller counts the skip.
            skipped += (1..rest.len())
                .find(|&i| rest[i] == b'$' || rest[i..].starts_with(b"RTSP/"))
                .unwrap_or(rest.len());
            continue;
        }
        return match Message::<Vec<u8>>::parse(rest) {
            Ok((msg, len)) => Ok((skipped, Some((len, Framed::Message(msg))))),
            Err(ParseError::Incomplete(_)) => {
                if rest.len() >= MAX_MESSAGE_BYTES {
                    Err(ConnError::TooLarge)
                } else {
                    Ok((skipped, None))
                }
            }
            Err(ParseError::Error) => Err(ConnError::Garbage(preview(rest))),
        };
    }
}

/// One frame split off the byte stream.
pub enum Framed {
    /// Interleaved data on this channel.
    Data(u8),
    Message(Message<Vec<u8>>),
}

/// An RTSP message starts with a method token or `RTSP/`: uppercase
/// letters, `_` or `-`, then a space or `/`. Checked on what is buffered.
fn looks_like_message_start(b: &[u8]) -> bool {
    for &c in b.iter().take(24) {
        match c {
            b'A'..=b'Z' | b'_' | b'-' => continue,
            b' ' | b'/' => return true,
            _ => return false,
        }
    }
    // All uppercase so far: wait for more.
    true
}

fn preview(b: &[u8]) -> String {
    let head = &b[..b.len().min(40)];
    let text: String = head
        .iter()
        .map(|&c| {
            if (0x20..0x7f).contains(&c) {
                c as char
            } else {
                '.'
            }
        })
        .collect();
    format!("{text:?}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;
    use std::time::{Duration, Instant};

    fn pair() -> (Conn, std::net::TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let conn = smol::block_on(Conn::connect(addr)).unwrap();
        let (server, _) = l.accept().unwrap();
        (conn, server)
    }

    #[test]
    fn splits_messages_and_interleaved_frames() {
        let (mut c, mut s) = pair();
        let mut bytes = Vec::new();
        bytes.extend_from_slice(b"$\x00\x00\x03abc");
        bytes.extend_from_slice(b"RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Length: 3\r\n\r\nxyz");
        bytes.extend_from_slice(b"$\x05\x00\x00");
        bytes.extend_from_slice(b"GET_PARAMETER rtsp://h/ RTSP/1.0\r\nCSeq: 9\r\n\r\n");
        // Deliver one byte at a time to exercise partial reads.
        let t = std::thread::spawn(move || {
            for b in bytes {
                s.write_all(&[b]).unwrap();
            }
            s
        });
        smol::block_on(async {
            match c.next().await.unwrap() {
                Incoming::Data { channel, payload } => {
                    assert_eq!((channel, payload), (0, &b"abc"[..]))
                }
                _ => panic!("expected data"),
            }
            match c.next().await.unwrap() {
                Incoming::Response(r) => assert_eq!(r.body(), b"xyz"),
                _ => panic!("expected response"),
            }
            match c.next().await.unwrap() {
                Incoming::Data { channel, payload } => assert_eq!((channel, payload.len()), (5, 0)),
                _ => panic!("expected data"),
            }
            assert!(matches!(c.next().await.unwrap(), Incoming::Request(_)));
        });
        let s = t.join().unwrap();
        drop(s);
        assert!(matches!(smol::block_on(c.next()), Err(ConnError::Closed)));
    }

    #[test]
    fn garbage_is_an_error_unless_resyncing() {
        let (mut c, mut s) = pair();
        s.write_all(b"\x00\x01garbage$\x01\x00\x01z").unwrap();
        assert!(matches!(
            smol::block_on(c.next()),
            Err(ConnError::Garbage(_))
        ));

        let (mut c, mut s) = pair();
        c.resync = true;
        s.write_all(b"\x00\x01garbage$\x01\x00\x01z").unwrap();
        match smol::block_on(c.next()).unwrap() {
            Incoming::Data { channel, payload } => assert_eq!((channel, payload), (1, &b"z"[..])),
            _ => panic!("expected data"),
        }
        assert_eq!(c.skipped_bytes, 9);
    }

    #[test]
    fn oversized_message_is_refused() {
        let (mut c, mut s) = pair();
        let t = std::thread::spawn(move || {
            let _ = s.write_all(b"RTSP/1.0 200 OK\r\nX: ");
            let _ = s.write_all(&vec![b'a'; MAX_MESSAGE_BYTES + 10]);
            s
        });
        assert!(matches!(smol::block_on(c.next()), Err(ConnError::TooLarge)));
        drop(t.join());
    }

    /// What the ingest thread does for a connection: waits for readiness
    /// (or the timeout), then lets it read again.
    fn wait_readable(c: &mut Conn, timeout: Duration) {
        let mut pfd = libc::pollfd {
            fd: c.raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on one pollfd of ours.
        let r = unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as libc::c_int) };
        assert!(r >= 0);
        c.rearm();
    }

    fn data_channel(r: Result<Option<Incoming<'_>>, ConnError>) -> Option<(u8, Vec<u8>)> {
        match r.unwrap() {
            Some(Incoming::Data { channel, payload }) => Some((channel, payload.to_vec())),
            Some(_) => panic!("expected data"),
            None => None,
        }
    }

    #[test]
    fn paced_reads_take_one_read_per_wait() {
        let (mut c, mut s) = pair();
        s.write_all(b"$\x00\x00\x01a$\x00\x00\x01b$\x00\x00\x03c")
            .unwrap();
        wait_readable(&mut c, Duration::from_secs(5));
        assert_eq!(data_channel(c.next_now()), Some((0, b"a".to_vec())));
        assert_eq!(data_channel(c.next_now()), Some((0, b"b".to_vec())));
        // Half a frame: nothing whole, and the read was short.
        assert_eq!(data_channel(c.next_now()), None);
        s.write_all(b"cc$\x01\x00\x01d").unwrap();
        // The socket was drained at the last read: no read until a wait.
        assert_eq!(data_channel(c.next_now()), None);
        wait_readable(&mut c, Duration::from_secs(5));
        assert_eq!(data_channel(c.next_now()), Some((0, b"ccc".to_vec())));
        assert_eq!(data_channel(c.next_now()), Some((1, b"d".to_vec())));
        assert_eq!(data_channel(c.next_now()), None);
        drop(s);
        wait_readable(&mut c, Duration::from_secs(5));
        assert!(matches!(c.next_now(), Err(ConnError::Closed)));
    }

    #[test]
    fn paced_wait_honours_the_low_water_mark() {
        let (mut c, mut s) = pair();
        c.set_read_low_water(1000).unwrap();
        s.write_all(&[b'$', 0, 0, 10]).unwrap();
        s.write_all(&[7; 10]).unwrap();
        // 14 bytes queued, below the mark: the wait runs to its timeout.
        let t = Instant::now();
        wait_readable(&mut c, Duration::from_millis(300));
        assert!(
            t.elapsed() >= Duration::from_millis(250),
            "{:?}",
            t.elapsed()
        );
        // The frame is there all the same once the caller reads.
        assert_eq!(data_channel(c.next_now()), Some((0, vec![7; 10])));
        assert_eq!(data_channel(c.next_now()), None);
        // Past the mark the wait ends at once (bounded here by 5 s).
        let mut frame = vec![b'$', 1, 0x04, 0];
        frame.extend_from_slice(&[9; 1024]);
        s.write_all(&frame).unwrap();
        let t = Instant::now();
        wait_readable(&mut c, Duration::from_secs(5));
        assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
        assert_eq!(data_channel(c.next_now()), Some((1, vec![9; 1024])));
    }

    #[test]
    fn paced_reads_refuse_an_oversized_message() {
        let (mut c, mut s) = pair();
        let t = std::thread::spawn(move || {
            let _ = s.write_all(b"RTSP/1.0 200 OK\r\nX: ");
            let _ = s.write_all(&vec![b'a'; MAX_MESSAGE_BYTES + 10]);
            s
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        let outcome = loop {
            match c.next_now() {
                Ok(None) if Instant::now() < deadline => {
                    wait_readable(&mut c, Duration::from_millis(100))
                }
                Ok(None) => break "timed out",
                Ok(Some(_)) => break "a message",
                Err(ConnError::TooLarge) => break "too large",
                Err(_) => break "another error",
            }
        };
        assert_eq!(outcome, "too large");
        drop(t.join());
    }
}
