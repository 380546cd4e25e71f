//! One RTSP control connection: reading requests, writing replies, and
//! interleaving the RTP of a TCP session with them without letting a slow
//! client make the server buffer without bound.

mod methods;

use super::super::packetize::MAX_PACKET;
use super::outgoing::Outgoing;
use super::wait::{wait_io, ArmedTimer};
use super::{Shared, Slot, CTRL_SOFT_LIMIT, FAULT_CHECK, IDLE_TIMEOUT, MAX_REQUEST};
use super::{SERVER, STALL_TIMEOUT, WRITE_BATCH};
use async_io::Async;
use rtsp_types::{headers, HeaderName, Message, Response, StatusCode, Version};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::time::Instant;

pub(super) struct Answer {
    status: StatusCode,
    headers: Vec<(HeaderName, String)>,
    body: String,
}

impl Answer {
    fn new(status: StatusCode) -> Self {
        Answer {
            status,
            headers: Vec::new(),
            body: String::new(),
        }
    }

    fn header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// An RTP-over-TCP session, owned by its control connection.
pub(super) struct TcpSession {
    id: String,
    rtp_channel: u8,
    rtcp_channel: u8,
    out: Outgoing,
    _slot: Slot,
}

/// One control connection.
pub(super) struct ControlConnection {
    shared: Rc<Shared>,
    stream: Async<TcpStream>,
    peer: SocketAddr,
    inbuf: Vec<u8>,
    in_len: usize,
    /// Bytes of an interleaved binary packet from the client still to skip.
    skip: usize,
    /// Control output (responses, RTCP), written at packet boundaries.
    ctrl: Vec<u8>,
    ctrl_pos: usize,
    /// Interleaved packets (`$`, channel, length, packet) being written,
    /// batched so one write call carries several. Allocated on first use,
    /// so connections that never play over TCP do not pay for it.
    wbuf: Box<[u8]>,
    wpos: usize,
    wlen: usize,
    tcp: Option<TcpSession>,
    last_request: Instant,
    last_progress: Instant,
    /// After a fatal protocol error: send what is queued, then close.
    closing: bool,
    /// [`Faults::kicks`] when the connection was accepted.
    kicks: u32,
}

impl ControlConnection {
    pub(super) fn new(shared: Rc<Shared>, stream: Async<TcpStream>, peer: SocketAddr) -> Self {
        let now = Instant::now();
        ControlConnection {
            stream,
            peer,
            inbuf: vec![0; 2048],
            in_len: 0,
            skip: 0,
            ctrl: Vec::new(),
            ctrl_pos: 0,
            wbuf: Box::default(),
            wpos: 0,
            wlen: 0,
            tcp: None,
            last_request: now,
            last_progress: now,
            closing: false,
            kicks: shared.faults.kicks(),
            shared,
        }
    }

    pub(super) async fn serve(mut self) {
        log::debug!("camera: connection from {}", self.peer);
        let mut timer = ArmedTimer::new();
        let faults = self.shared.faults.clone();
        let reason = loop {
            let now = Instant::now();
            if faults.kicks() != self.kicks {
                break "kicked (fault)".into();
            }
            if let Some(until) = faults.frozen(now) {
                timer.set_at(until, now);
                (&mut timer.timer).await;
                continue;
            }
            self.on_time(now);
            if let Err(e) = self.flush(now) {
                break e.to_string();
            }
            let pending = self.has_output();
            if self.closing && !pending {
                break "closed after a bad request".into();
            }
            if pending && now.saturating_duration_since(self.last_progress) >= STALL_TIMEOUT {
                break "client stopped reading".into();
            }
            let playing = self.tcp.as_ref().is_some_and(|s| s.out.play.is_some());
            if !playing && now.saturating_duration_since(self.last_request) >= IDLE_TIMEOUT {
                break "idle".into();
            }
            let mut deadline = now + IDLE_TIMEOUT;
            if !playing {
                deadline = deadline.min(self.last_request + IDLE_TIMEOUT);
            }
            if pending {
                deadline = deadline.min(self.last_progress + STALL_TIMEOUT);
            }
            if let Some(d) = self.tcp.as_ref().and_then(|s| s.out.deadline()) {
                deadline = deadline.min(d);
            }
            // Faults (kick, freeze) are noticed within this.
            deadline = deadline.min(now + FAULT_CHECK);
            timer.set_at(deadline, now);
            let read = !self.closing && self.ctrl.len() - self.ctrl_pos < CTRL_SOFT_LIMIT;
            if wait_io(&self.stream, read, pending, &mut timer.timer).await {
                match self.read() {
                    Ok(true) => {}
                    Ok(false) => break "closed by the client".into(),
                    Err(e) => break e.to_string(),
                }
            }
        };
        log::debug!("camera: connection from {} ends: {reason}", self.peer);
    }

    fn has_output(&self) -> bool {
        self.wpos < self.wlen
            || self.ctrl_pos < self.ctrl.len()
            || self.tcp.as_ref().is_some_and(|s| s.out.sending())
    }

    fn on_time(&mut self, now: Instant) {
        let busy = self.wpos < self.wlen;
        let backlog = self.ctrl.len() - self.ctrl_pos;
        let Some(s) = self.tcp.as_mut() else {
            return;
        };
        s.out.on_time(now, busy);
        let mut sr = [0u8; 128];
        if let Some(n) = s.out.end_of_stream(&mut sr) {
            self.ctrl.extend_from_slice(&[b'$', s.rtcp_channel]);
            self.ctrl.extend_from_slice(&(n as u16).to_be_bytes());
            self.ctrl.extend_from_slice(&sr[..n]);
        }
        if let Some(n) = s.out.sender_report(now, &mut sr) {
            // A report is worth less than the control replies: skip it if
            // the client is not reading those.
            if backlog < CTRL_SOFT_LIMIT {
                self.ctrl.extend_from_slice(&[b'$', s.rtcp_channel]);
                self.ctrl.extend_from_slice(&(n as u16).to_be_bytes());
                self.ctrl.extend_from_slice(&sr[..n]);
            }
        }
    }

    /// Writes what it can without blocking: the batch of packets in
    /// progress, then control output (which waits for a packet boundary),
    /// then the next batch of the current frame's packets.
    fn flush(&mut self, now: Instant) -> io::Result<()> {
        loop {
            let (buf, pos) = if self.wpos < self.wlen {
                (&self.wbuf[self.wpos..self.wlen], &mut self.wpos)
            } else if self.ctrl_pos < self.ctrl.len() {
                (&self.ctrl[self.ctrl_pos..], &mut self.ctrl_pos)
            } else {
                self.ctrl.clear();
                self.ctrl_pos = 0;
                if !self.fill_batch() {
                    self.last_progress = now;
                    return Ok(());
                }
                continue;
            };
            match self.stream.get_ref().write(buf) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.last_progress = now;
                    *pos += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Packetizes as much of the current frame as fits in the batch
    /// buffer; false if there was nothing to send.
    fn fill_batch(&mut self) -> bool {
        let Some(s) = self.tcp.as_mut().filter(|s| s.out.sending()) else {
            return false;
        };
        if self.wbuf.is_empty() {
            self.wbuf = vec![0; WRITE_BATCH].into_boxed_slice();
        }
        self.wpos = 0;
        self.wlen = 0;
        while let Some(room) = self.wbuf.get_mut(self.wlen..self.wlen + 4 + MAX_PACKET) {
            let (head, body) = room.split_at_mut(4);
            let Some(n) = <&mut [u8; MAX_PACKET]>::try_from(body)
                .ok()
                .and_then(|body| s.out.next_packet(body))
            else {
                break;
            };
            head[0] = b'$';
            head[1] = s.rtp_channel;
            head[2..4].copy_from_slice(&(n as u16).to_be_bytes());
            self.wlen += 4 + n;
        }
        self.wlen > 0
    }

    /// Reads and handles what the client sent. `Ok(false)` at end of
    /// stream.
    fn read(&mut self) -> io::Result<bool> {
        loop {
            if self.in_len == self.inbuf.len() {
                if self.inbuf.len() >= MAX_REQUEST {
                    // process() leaves a full buffer only for an
                    // incomplete request that can never fit.
                    self.bad_request();
                    return Ok(true);
                }
                let len = (self.inbuf.len() * 2).min(MAX_REQUEST);
                self.inbuf.resize(len, 0);
            }
            let mut stream = self.stream.get_ref();
            match stream.read(&mut self.inbuf[self.in_len..]) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.in_len += n;
                    self.process();
                    if self.closing || self.ctrl.len() - self.ctrl_pos >= CTRL_SOFT_LIMIT {
                        return Ok(true);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn consume(&mut self, n: usize) {
        let n = n.min(self.in_len);
        self.inbuf.copy_within(n..self.in_len, 0);
        self.in_len -= n;
    }

    fn bad_request(&mut self) {
        self.write_reply(None, Answer::new(StatusCode::BadRequest));
        self.closing = true;
        self.in_len = 0;
    }

    /// Handles every complete message in the input buffer.
    fn process(&mut self) {
        while self.in_len > 0 && !self.closing {
            if self.skip > 0 {
                let n = self.skip.min(self.in_len);
                self.consume(n);
                self.skip -= n;
                continue;
            }
            let first = self.inbuf[0];
            if first == b'$' {
                // Interleaved binary data from the client (RTCP receiver
                // reports): skipped, even when larger than our buffer.
                if self.in_len < 4 {
                    return;
                }
                self.skip = 4 + usize::from(u16::from_be_bytes([self.inbuf[2], self.inbuf[3]]));
                continue;
            }
            if first == b'\r' || first == b'\n' {
                // Quirk: some clients send bare CRLFs between requests as
                // keep-alives. Ignore them.
                self.consume(1);
                continue;
            }
            let buf = std::mem::take(&mut self.inbuf);
            let used = match Message::<&[u8]>::parse(&buf[..self.in_len]) {
                Ok((Message::Request(req), used)) => {
                    self.handle(&req);
                    Some(used)
                }
                Ok((_, used)) => Some(used),
                Err(rtsp_types::ParseError::Incomplete(_)) => None,
                Err(rtsp_types::ParseError::Error) => {
                    self.inbuf = buf;
                    self.bad_request();
                    return;
                }
            };
            self.inbuf = buf;
            match used {
                Some(n) => self.consume(n.max(1)),
                None => return,
            }
        }
    }

    fn write_reply(&mut self, cseq: Option<&str>, reply: Answer) {
        let mut b = Response::builder(Version::V1_0, reply.status);
        if let Some(c) = cseq {
            b = b.header(headers::CSEQ, c);
        }
        b = b.header(headers::SERVER, SERVER);
        for (name, value) in reply.headers {
            b = b.header(name, value);
        }
        let response = b.build(reply.body.as_bytes());
        if let Err(e) = response.write(&mut self.ctrl) {
            log::warn!("camera: cannot serialize a response: {e}");
        }
    }
}
