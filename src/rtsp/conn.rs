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
            match self.frame_at_start()? {
                Some((len, Framed::Data(channel))) => {
                    self.pending = len;
                    let payload = &self.buf[self.start + 4..self.start + len];
                    return Ok(Incoming::Data { channel, payload });
                }
                Some((len, Framed::Message(msg))) => {
                    self.pending = len;
                    return Ok(match msg {
                        Message::Response(r) => Incoming::Response(r),
                        Message::Request(r) => Incoming::Request(r),
                        // Framed::Data handles `$` frames before rtsp-types sees them.
                        Message::Data(_) => continue,
                    });
                }
                None => self.fill().await?,
            }
        }
    }

    /// The next message or interleaved frame if one is buffered or can be
    /// read without waiting; `None` when the socket has nothing more now.
    /// The read goes to the socket directly, not through the reactor, so a
    /// caller that comes back on its own clock (see the client's paced
    /// reading) costs no readiness registration per wake-up.
    pub fn next_now(&mut self) -> Result<Option<Incoming<'_>>, ConnError> {
        self.start += std::mem::take(&mut self.pending);
        loop {
            match self.frame_at_start()? {
                Some((len, Framed::Data(channel))) => {
                    self.pending = len;
                    let payload = &self.buf[self.start + 4..self.start + len];
                    return Ok(Some(Incoming::Data { channel, payload }));
                }
                Some((len, Framed::Message(msg))) => {
                    self.pending = len;
                    return Ok(Some(match msg {
                        Message::Response(r) => Incoming::Response(r),
                        Message::Request(r) => Incoming::Request(r),
                        // Framed::Data handles `$` frames before rtsp-types sees them.
                        Message::Data(_) => continue,
                    }));
                }
                None => {
                    self.make_room()?;
                    let mut socket = self.stream.get_ref();
                    match io::Read::read(&mut socket, &mut self.buf[self.end..]) {
                        Ok(0) => return Err(ConnError::Closed),
                        Ok(n) => self.end += n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
    }

    /// Waits until the socket is readable: with `set_read_low_water`, until
    /// that many bytes are queued (or the peer closed).
    pub async fn readable(&self) -> io::Result<()> {
        self.stream.readable().await
    }

    /// Readiness from now on means at least `bytes` queued (SO_RCVLOWAT).
    pub fn set_read_low_water(&self, bytes: i32) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let v: libc::c_int = bytes;
        // SAFETY: setsockopt on a socket we own, with a pointer to a c_int
        // and its size.
        let r = unsafe {
            libc::setsockopt(
                self.stream.get_ref().as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVLOWAT,
                (&v as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
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
}
