//! A playing TCP session while the ingest thread holds it: what the
//! ingest thread calls on it, and how it comes back to its stream thread.

use super::*;

/// A playing TCP session while the ingest thread has it.
pub(super) struct Lease {
    pub(super) session: Box<Session>,
    pub(super) sink: Box<dyn FrameSink>,
    pub(super) status: Arc<StreamStatus>,
    pub(super) stop: StopToken,
    pub(super) keepalive_at: Instant,
    /// Why it came back.
    pub(super) ended: Option<LeaseEnd>,
    pub(super) back: smol::channel::Sender<Box<Lease>>,
}

pub(super) enum LeaseEnd {
    Stop,
    Failed(SessionError),
    KeepaliveDue,
    Response(Response<Vec<u8>>),
    Request(Request<Vec<u8>>),
}

impl Lease {
    pub(super) fn end(&mut self, why: LeaseEnd) -> bool {
        self.ended = Some(why);
        true
    }
}

impl ingest::Job for Lease {
    fn fd(&self) -> RawFd {
        self.session.conn.raw_fd()
    }

    fn service(&mut self, tick: bool) -> bool {
        let s = &mut *self.session;
        // Readable, or the tick: the socket may be read again.
        s.conn.rearm();
        // A camera sending faster than it is read gets a bounded turn; the
        // rest is read on its next readiness, after the other cameras.
        for _ in 0..DRAIN_BUDGET {
            let Some(track) = s.track.as_mut() else {
                let e = SessionError::Protocol("playing without a track".into());
                return self.end(LeaseEnd::Failed(e));
            };
            match s.conn.next_now() {
                Err(e) => return self.end(LeaseEnd::Failed(e.into())),
                Ok(Some(Incoming::Data { channel, payload })) => {
                    s.rx.on_interleaved(
                        track,
                        channel,
                        payload,
                        &self.status,
                        Some(&mut *self.sink),
                    );
                }
                Ok(Some(Incoming::Response(r))) => return self.end(LeaseEnd::Response(r)),
                Ok(Some(Incoming::Request(r))) => return self.end(LeaseEnd::Request(r)),
                Ok(None) => break,
            }
        }
        if s.rx.bye {
            return self.end(LeaseEnd::Failed(SessionError::Bye));
        }
        if !tick {
            return false;
        }
        if self.stop.is_stopped() {
            return self.end(LeaseEnd::Stop);
        }
        let now = Instant::now();
        if now >= s.rx.last_packet_at + s.opts.data_timeout {
            let e = SessionError::NoData(s.opts.data_timeout);
            return self.end(LeaseEnd::Failed(e));
        }
        if let Some(e) = s.rx.not_video(now, s.opts.data_timeout) {
            return self.end(LeaseEnd::Failed(e));
        }
        if now >= self.keepalive_at {
            return self.end(LeaseEnd::KeepaliveDue);
        }
        false
    }

    fn fail(&mut self, why: String) {
        self.ended = Some(LeaseEnd::Failed(SessionError::Protocol(why)));
    }

    fn give_back(self: Box<Self>) {
        let back = self.back.clone();
        // Only fails if the stream thread is gone; then so is the session.
        let _ = back.try_send(self);
    }
}
