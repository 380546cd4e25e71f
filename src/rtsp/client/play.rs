//! A playing session: receiving over UDP on this thread, or lending a TCP
//! session to the ingest thread; keep-alives, requests from the server,
//! and TEARDOWN at the end.

use super::*;

enum Event {
    Handled,
    Stop,
    Tick,
    Failed(SessionError),
    Response(Response<Vec<u8>>),
    Request(Request<Vec<u8>>),
    UdpRtp(std::io::Result<(usize, SocketAddr)>),
    UdpRtcp(std::io::Result<(usize, SocketAddr)>),
}

impl Session {
    /// Receives over UDP until failure or stop; keeps the session alive
    /// meanwhile. The TCP connection carries only RTSP messages then.
    pub(super) async fn stream_udp(
        &mut self,
        status: &StreamStatus,
        sink: &mut dyn FrameSink,
        stop: &StopToken,
        memory: &mut SessionMemory,
    ) -> Result<(), SessionError> {
        let keepalive_every = self.keepalive_every();
        let mut next_keepalive = Instant::now() + keepalive_every;
        // When the UDP reorder window started waiting for a missing packet.
        let mut gap_since: Option<Instant> = None;
        // No async-io timer while streaming (see `daemon::ticker`): deadlines
        // are checked on ticks, and the stop future is created once, so the
        // steady state allocates nothing.
        let mut ticks =
            Ticks::subscribe().map_err(|e| SessionError::Connect(format!("ticker: {e}")))?;
        let mut stopped = std::pin::pin!(stop.stopped());
        // Events handled since the ticks and the stop request were last
        // looked at first.
        let mut since_timers: u32 = 0;
        let result = loop {
            let Some(track) = self.track.as_mut() else {
                break Err(SessionError::Protocol("playing without a track".into()));
            };
            let conn = &mut self.conn;
            let rx = &mut self.rx;
            let udp_pair = &mut self.udp;
            let ev = {
                let tcp = async {
                    match conn.next().await {
                        Err(e) => Event::Failed(e.into()),
                        Ok(Incoming::Data { channel, payload }) => {
                            rx.on_interleaved(track, channel, payload, status, Some(&mut *sink));
                            Event::Handled
                        }
                        Ok(Incoming::Response(r)) => Event::Response(r),
                        Ok(Incoming::Request(r)) => Event::Request(r),
                    }
                };
                let udp = async {
                    match udp_pair {
                        None => future::pending().await,
                        Some(u) => {
                            let UdpPair {
                                rtp,
                                rtcp,
                                rtp_buf,
                                rtcp_buf,
                                ..
                            } = u;
                            future::or(
                                async { Event::UdpRtp(rtp.recv_from(rtp_buf).await) },
                                async { Event::UdpRtcp(rtcp.recv_from(rtcp_buf).await) },
                            )
                            .await
                        }
                    }
                };
                let timers = async {
                    future::or(
                        async {
                            stopped.as_mut().await;
                            Event::Stop
                        },
                        async {
                            match ticks.next().await {
                                Ok(()) => Event::Tick,
                                Err(e) => {
                                    Event::Failed(SessionError::Connect(format!("ticker: {e}")))
                                }
                            }
                        },
                    )
                    .await
                };
                // The packets first: while the connection has buffered
                // data, polling the tick socket too would cost a system
                // call per packet (a read that finds nothing). Ticks and
                // the stop request are looked at whenever the camera's
                // data runs dry, and at least every `TIMERS_EVERY` events.
                let timers_first = since_timers >= TIMERS_EVERY;
                let mut packets = std::pin::pin!(future::or(tcp, udp));
                let mut timers = std::pin::pin!(timers);
                future::poll_fn(|cx| {
                    if timers_first {
                        if let Poll::Ready(ev) = timers.as_mut().poll(cx) {
                            return Poll::Ready(ev);
                        }
                    }
                    if let Poll::Ready(ev) = packets.as_mut().poll(cx) {
                        return Poll::Ready(ev);
                    }
                    timers.as_mut().poll(cx)
                })
                .await
            };
            since_timers = match ev {
                Event::Handled | Event::UdpRtp(_) | Event::UdpRtcp(_) => since_timers + 1,
                _ => 0,
            };
            match ev {
                Event::Handled => {}
                Event::Stop => break Ok(()),
                Event::Failed(e) => break Err(e),
                Event::Tick => {
                    let now = Instant::now();
                    if gap_since.is_some_and(|t| now >= t + REORDER_WAIT) {
                        if let (Some(track), Some(udp)) = (self.track.as_mut(), self.udp.as_mut()) {
                            self.rx.flush_udp_gap(track, udp, status, sink);
                        }
                        gap_since = None;
                    }
                    if now >= self.rx.last_packet_at + self.opts.data_timeout {
                        break Err(SessionError::NoData(self.opts.data_timeout));
                    }
                    if let Some(e) = self.rx.not_video(now, self.opts.data_timeout) {
                        break Err(e);
                    }
                    if now >= next_keepalive {
                        if let Err(e) = self.keep_alive().await {
                            break Err(e);
                        }
                        next_keepalive = now + keepalive_every;
                    }
                }
                Event::Response(resp) => self.on_streaming_response(&resp),
                Event::Request(req) => {
                    if let Err(e) = self.answer(&req).await {
                        break Err(e);
                    }
                }
                Event::UdpRtp(Err(e)) | Event::UdpRtcp(Err(e)) => {
                    break Err(SessionError::Connect(format!("UDP receive failed: {e}")));
                }
                Event::UdpRtp(Ok((n, from))) => {
                    if let (Some(track), Some(udp)) = (self.track.as_mut(), self.udp.as_mut()) {
                        self.rx.on_udp_rtp(track, udp, n, from, status, sink);
                        if !udp.reorder.is_waiting() {
                            gap_since = None;
                        } else if gap_since.is_none() {
                            gap_since = Some(Instant::now());
                        }
                    }
                }
                Event::UdpRtcp(Ok((n, from))) => {
                    if let Some(udp) = self.udp.as_mut() {
                        self.rx.on_udp_rtcp(udp, n, from, status);
                    }
                }
            }
            if self.rx.bye {
                break Err(SessionError::Bye);
            }
        };
        self.end(result, memory).await
    }

    /// After streaming: TEARDOWN on stop, or release after a failure.
    pub(super) async fn end(
        &mut self,
        result: Result<(), SessionError>,
        memory: &mut SessionMemory,
    ) -> Result<(), SessionError> {
        match &result {
            Ok(()) => {
                self.teardown().await;
            }
            Err(e) => {
                log::debug!("{}: session ended: {e}", self.opts.label);
                self.release(e, memory).await;
            }
        }
        result
    }

    /// Half the session timeout, within 1 s and [`MAX_KEEPALIVE_INTERVAL`].
    pub(super) fn keepalive_every(&self) -> Duration {
        (self.session_timeout / 2).clamp(Duration::from_secs(1), MAX_KEEPALIVE_INTERVAL)
    }

    /// Receives over TCP (interleaved) until failure or stop. The session
    /// is lent to the ingest thread (`rtsp::ingest`), which receives the
    /// video of every TCP session on one clock; it comes back here only
    /// for what is not video: a keep-alive to send, an RTSP message from
    /// the camera, stop, or failure. This thread sleeps meanwhile.
    pub(super) async fn stream_tcp(
        mut self: Box<Self>,
        status: &Arc<StreamStatus>,
        sink: &mut Box<dyn FrameSink>,
        stop: &StopToken,
        memory: &mut SessionMemory,
    ) -> Result<(), SessionError> {
        if let Err(e) = self.conn.set_read_low_water(PACED_LOW_WATER) {
            // The ingest thread then wakes per packet for this stream.
            log::debug!("{}: SO_RCVLOWAT: {e}", self.opts.label);
        }
        let keepalive_every = self.keepalive_every();
        let mut keepalive_at = Instant::now() + keepalive_every;
        let (back_tx, back_rx) = smol::channel::bounded::<Box<Lease>>(1);
        let result = loop {
            let lease = Box::new(Lease {
                session: self,
                // The recorder's sink goes along; a placeholder stays.
                sink: std::mem::replace(sink, Box::new(DiscardSink)),
                status: status.clone(),
                stop: stop.clone(),
                keepalive_at,
                ended: None,
                back: back_tx.clone(),
            });
            ingest::lend(lease);
            let Ok(lease) = back_rx.recv().await else {
                // Cannot happen: the ingest thread gives every job back,
                // even one that panicked or that it could not take.
                return Err(SessionError::Connect(
                    "the ingest thread lost the session".into(),
                ));
            };
            let Lease {
                session,
                sink: s,
                ended,
                ..
            } = *lease;
            self = session;
            *sink = s;
            match ended {
                None => {
                    break Err(SessionError::Protocol(
                        "session returned without a reason".into(),
                    ))
                }
                Some(LeaseEnd::Stop) => break Ok(()),
                Some(LeaseEnd::Failed(e)) => break Err(e),
                Some(LeaseEnd::KeepaliveDue) => {
                    if let Err(e) = self.keep_alive().await {
                        break Err(e);
                    }
                    keepalive_at = Instant::now() + keepalive_every;
                }
                Some(LeaseEnd::Response(resp)) => self.on_streaming_response(&resp),
                Some(LeaseEnd::Request(req)) => {
                    if let Err(e) = self.answer(&req).await {
                        break Err(e);
                    }
                }
            }
        };
        self.end(result, memory).await
    }

    /// Sends a keep-alive and notes its CSeq for the answer.
    pub(super) async fn keep_alive(&mut self) -> Result<(), SessionError> {
        if self.keepalive_in_flight.is_some() {
            // Quirk: servers that ignore keep-alives; that is fine as long
            // as data flows.
            log::debug!("{}: previous keep-alive unanswered", self.opts.label);
        }
        self.keepalive_in_flight = Some(self.send_keepalive().await?);
        Ok(())
    }

    /// A response while streaming: the keep-alive's answer, or a stale one
    /// (ignored).
    pub(super) fn on_streaming_response(&mut self, resp: &Response<Vec<u8>>) {
        let cseq = header_str(resp, &headers::CSEQ).and_then(|v| v.trim().parse::<u32>().ok());
        if cseq.is_some() && cseq == self.keepalive_in_flight {
            self.keepalive_in_flight = None;
            self.on_keepalive_answer(resp);
        }
    }

    /// A request from the camera (a keep-alive of its own, mostly),
    /// answered at once.
    pub(super) async fn answer(&mut self, req: &Request<Vec<u8>>) -> Result<(), SessionError> {
        let reply = reply_to_server(req);
        self.conn
            .send(&reply)
            .await
            .map_err(|e| SessionError::Conn(ConnError::Io(e)))
    }

    pub(super) async fn send_keepalive(&mut self) -> Result<u32, SessionError> {
        let url = self.presentation_url.clone();
        let method = if self.keepalive_get_parameter {
            Method::GetParameter
        } else {
            Method::Options
        };
        self.send_request(method, &url, &[]).await
    }

    pub(super) fn on_keepalive_answer(&mut self, resp: &Response<Vec<u8>>) {
        let code = u16::from(resp.status());
        if (200..300).contains(&code) {
            return;
        }
        if code == 401 {
            let challenges = header_str(resp, &headers::WWW_AUTHENTICATE).unwrap_or("");
            // A stale nonce: take the new one for the next keep-alive.
            if let Err(e) = self.auth.on_unauthorized(&[challenges]) {
                log::warn!("{}: keep-alive refused: {e}", self.opts.label);
            }
            return;
        }
        if self.keepalive_get_parameter {
            // Quirk: GET_PARAMETER listed but refused; OPTIONS instead.
            log::info!(
                "{}: camera refused GET_PARAMETER keep-alive ({code}); using OPTIONS",
                self.opts.label
            );
            self.keepalive_get_parameter = false;
        } else {
            log::debug!("{}: keep-alive answered {code}", self.opts.label);
        }
    }

    /// Best effort: tells the camera we are gone, so that it frees the
    /// session at once (cameras allow only a few) and stops sending.
    /// Returns whether the request went out.
    pub(super) async fn teardown(&mut self) -> bool {
        if self.session_id.is_none() {
            return true;
        }
        let url = self.presentation_url.clone();
        let sent = with_timeout(
            Duration::from_secs(1),
            self.send_request(Method::Teardown, &url, &[]),
        )
        .await;
        self.session_id = None;
        let ok = matches!(sent, Some(Ok(_)));
        if ok {
            log::debug!("{}: sent TEARDOWN", self.opts.label);
        }
        ok
    }

    /// After a failure: TEARDOWN on this connection if it still works,
    /// else leave the session for the next connection to tear down.
    pub(super) async fn release(&mut self, ended_by: &SessionError, memory: &mut SessionMemory) {
        let Some(id) = self.session_id.clone() else {
            return;
        };
        let dead = matches!(
            ended_by,
            SessionError::Conn(ConnError::Closed | ConnError::Io(_))
        );
        if !dead && self.teardown().await {
            return;
        }
        self.session_id = None;
        memory.stale_session = Some((self.presentation_url.clone(), id));
    }

    /// Tears down a session an earlier connection left behind. Its answer
    /// is not awaited: a late one is ignored like any stale answer.
    pub(super) async fn teardown_stale(&mut self, url: &Url, id: String) {
        self.session_id = Some(id);
        let sent = self.send_request(Method::Teardown, url, &[]).await;
        self.session_id = None;
        if sent.is_ok() {
            log::debug!(
                "{}: sent TEARDOWN for the session the last connection left",
                self.opts.label
            );
        }
    }
}
