//! One `mjpeg` client: its response body, which sends each new picture of
//! the shared stream as a part of a `multipart/x-mixed-replace` answer,
//! and ends when the camera, the producer or the server does.

use super::{Failure, Picture, Stream, BOUNDARY, DEAD, WAKE};
use std::io::{self, Read};
use std::sync::Arc;
use std::time::Instant;

/// One mjpeg response's body: each new picture as a part, as it comes.
pub(super) struct Viewer {
    stream: Arc<Stream>,
    /// The part being sent: `head`, the picture, `tail`.
    pic: Option<Arc<Picture>>,
    head: Vec<u8>,
    tail: Vec<u8>,
    /// Bytes of the part already returned.
    pos: usize,
    /// The tick of the last part begun; `None` before the first.
    last_tick: Option<u32>,
    failures_seen: u32,
    /// No part has begun yet.
    first: bool,
    /// Since when no new part has begun.
    idle_since: Instant,
}

impl Viewer {
    pub(super) fn attach(stream: Arc<Stream>) -> Result<Viewer, Failure> {
        let failures_seen = {
            let mut st = stream.lock();
            stream.ensure_producer(&mut st)?;
            st.viewers += 1;
            st.demand_at = Instant::now();
            // A producer that sat idle has not looked at the ring for a
            // while: give it time to see the camera's frames again.
            st.frame_at = Instant::now();
            st.failures
        };
        stream.changed.notify_all();
        Ok(Viewer {
            stream,
            pic: None,
            head: Vec::with_capacity(64),
            tail: Vec::with_capacity(64),
            pos: 0,
            last_tick: None,
            failures_seen,
            first: true,
            idle_since: Instant::now(),
        })
    }

    /// Copies what is left of the current part into `buf`.
    fn copy_part(&mut self, buf: &mut [u8]) -> usize {
        let Some(pic) = &self.pic else {
            return 0;
        };
        let mut n = 0;
        let mut skip = self.pos;
        for seg in [&self.head[..], &pic.jpeg[..], &self.tail[..]] {
            if skip >= seg.len() {
                skip -= seg.len();
                continue;
            }
            let take = (seg.len() - skip).min(buf.len() - n);
            buf[n..n + take].copy_from_slice(&seg[skip..skip + take]);
            n += take;
            skip = 0;
            if n == buf.len() {
                break;
            }
        }
        self.pos += n;
        if n == 0 {
            self.pic = None;
        }
        n
    }

    /// Waits (at most [`WAKE`]) for the next tick, and says what to do.
    fn next_picture(&mut self) -> Next {
        let stream = self.stream.clone();
        let mut st = stream.lock();
        let deadline = Instant::now() + WAKE;
        loop {
            if st.closed {
                return Next::End("the server is stopping".into());
            }
            if st.frame_at.elapsed() >= DEAD {
                return Next::End(format!("no frame from the camera for {} s", DEAD.as_secs()));
            }
            if st.failures != self.failures_seen {
                self.failures_seen = st.failures;
                if let Some(f) = st.failure.as_ref().filter(|f| f.fatal) {
                    return Next::End(f.message.clone());
                }
            }
            if let Some(p) = &st.latest {
                // The first part may be the cached picture when it is fresh.
                let due = match self.last_tick {
                    Some(t) => st.tick != t,
                    None => stream.fresh(p),
                };
                if due {
                    self.last_tick = Some(st.tick);
                    return Next::Picture(p.clone());
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Next::Nothing;
            }
            st = stream.wait(st, deadline - now);
        }
    }
}

/// What a viewer does next.
enum Next {
    Picture(Arc<Picture>),
    /// Nothing yet: back to the server for a moment.
    Nothing,
    /// The response is over, for this reason.
    End(String),
}

impl Read for Viewer {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let n = self.copy_part(buf);
            if n > 0 {
                return Ok(n);
            }
            let why = match self.next_picture() {
                Next::Picture(p) => {
                    self.head.clear();
                    part_head(self.first, p.jpeg.len(), &mut self.head);
                    self.first = false;
                    self.tail.clear();
                    part_tail(&mut self.tail);
                    self.pic = Some(p);
                    self.pos = 0;
                    self.idle_since = Instant::now();
                    continue;
                }
                Next::Nothing if self.idle_since.elapsed() >= DEAD => format!(
                    "no picture from {} for {} s",
                    self.stream.label(),
                    DEAD.as_secs()
                ),
                // Back to the server's write loop, which checks its stop
                // flag and calls again: an error of this kind is retried,
                // and ends nothing.
                Next::Nothing => return Err(io::ErrorKind::Interrupted.into()),
                Next::End(why) => why,
            };
            // The end of the body (which the server marks by closing the
            // connection), not an error: nothing went wrong in the sending.
            log::info!("mjpeg {}: ending a viewer: {why}", self.stream.label());
            return Ok(0);
        }
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        {
            let mut st = self.stream.lock();
            st.viewers = st.viewers.saturating_sub(1);
            st.demand_at = Instant::now();
        }
        self.stream.changed.notify_all();
    }
}

/// What goes before a picture: the opening boundary for the first part,
/// and every part's headers.
pub(super) fn part_head(first: bool, jpeg_len: usize, out: &mut Vec<u8>) {
    use std::io::Write;
    if first {
        let _ = write!(out, "--{BOUNDARY}\r\n");
    }
    let _ = write!(
        out,
        "Content-Type: image/jpeg\r\nContent-Length: {jpeg_len}\r\n\r\n"
    );
}

/// What goes after a picture: the boundary that closes it, sent with it
/// so that a client which waits for the boundary (rather than counting
/// `Content-Length`) shows the picture at once, not when the next comes.
pub(super) fn part_tail(out: &mut Vec<u8>) {
    use std::io::Write;
    let _ = write!(out, "\r\n--{BOUNDARY}\r\n");
}
