//! Setting a session up: connecting, OPTIONS, DESCRIBE, SETUP and PLAY,
//! with redirects and authentication, and the request/response exchange
//! they share.

use super::*;

/// What a request got: the answer, or where the server redirects to.
enum RequestOutcome {
    Ok(Response<Vec<u8>>),
    Redirect(Url),
}

impl Session {
    pub(super) async fn establish(
        url: &Url,
        opts: &SessionOptions,
        auth: &mut Authenticator,
        status: &StreamStatus,
        memory: &mut SessionMemory,
    ) -> Result<Established, SessionError> {
        let addrs = url.socket_addrs(|| Some(554)).map_err(|e| {
            SessionError::Connect(format!(
                "cannot resolve {:?}: {e}",
                url.host_str().unwrap_or("")
            ))
        })?;
        let addr = *addrs
            .first()
            .ok_or_else(|| SessionError::Connect("host has no address".into()))?;
        let conn = with_timeout(opts.request_timeout, Conn::connect(addr))
            .await
            .ok_or(SessionError::Timeout("the connection attempt"))?
            .map_err(|e| SessionError::Connect(format!("{addr}: {e}")))?;
        log::debug!("{}: connected to {addr}", opts.label);
        let mut s = Box::new(Session {
            opts: opts.clone(),
            conn,
            cseq: 0,
            auth: std::mem::replace(auth, Authenticator::new(None)),
            session_id: None,
            session_timeout: DEFAULT_SESSION_TIMEOUT,
            keepalive_get_parameter: false,
            keepalive_in_flight: None,
            presentation_url: url.clone(),
            track: None,
            udp: None,
            rx: Receiver::new(&opts.label),
        });
        if let Some((stale_url, id)) = memory.stale_session.take() {
            s.teardown_stale(&stale_url, id).await;
        }
        let result = s.setup_and_play(status).await;
        // Hand the authenticator back (with its nonce) for a redirect or retry.
        match result {
            Ok(None) => Ok(Established::Playing(s)),
            Ok(Some(to)) => {
                *auth = std::mem::replace(&mut s.auth, Authenticator::new(None));
                Ok(Established::Redirect(to))
            }
            Err(e) => {
                s.release(&e, memory).await;
                *auth = std::mem::replace(&mut s.auth, Authenticator::new(None));
                Err(e)
            }
        }
    }

    /// OPTIONS, DESCRIBE, SETUP, PLAY. `Some(url)` is a redirect.
    pub(super) async fn setup_and_play(
        &mut self,
        status: &StreamStatus,
    ) -> Result<Option<Url>, SessionError> {
        let url = self.presentation_url.clone();
        // Quirk: some cameras reject OPTIONS or answer it badly; it only
        // tells us whether GET_PARAMETER is available, so go on regardless.
        match self.request(Method::Options, &url, &[], status).await {
            Ok(RequestOutcome::Redirect(to)) => return Ok(Some(to)),
            Ok(RequestOutcome::Ok(resp)) => {
                self.keepalive_get_parameter =
                    header_str(&resp, &headers::PUBLIC).is_some_and(|p| {
                        p.split(',')
                            .any(|m| m.trim().eq_ignore_ascii_case("GET_PARAMETER"))
                    });
            }
            Err(e @ (SessionError::Auth(_) | SessionError::Conn(_) | SessionError::Timeout(_))) => {
                return Err(e)
            }
            Err(e) => log::debug!("{}: OPTIONS failed ({e}); going on", self.opts.label),
        }

        let resp = match self
            .request(
                Method::Describe,
                &url,
                &[(headers::ACCEPT, "application/sdp")],
                status,
            )
            .await?
        {
            RequestOutcome::Redirect(to) => return Ok(Some(to)),
            RequestOutcome::Ok(r) => r,
        };
        // Quirk: DESCRIBE answers without Content-Type (or a wrong one);
        // try the body as SDP anyway and let the parser decide.
        if let Some(ct) = header_str(&resp, &headers::CONTENT_TYPE) {
            if !ct.to_ascii_lowercase().contains("application/sdp") {
                log::debug!(
                    "{}: DESCRIBE Content-Type is {ct:?}; parsing as SDP anyway",
                    self.opts.label
                );
            }
        }
        let sdp = sdp::parse(resp.body()).map_err(SessionError::Sdp)?;
        let base = rurl::base_url(
            &url,
            header_str(&resp, &headers::CONTENT_BASE),
            header_str(&resp, &headers::CONTENT_LOCATION),
        );
        let track = sdp.first_video().ok_or_else(|| {
            let found: Vec<String> = sdp
                .media
                .iter()
                .map(|m| {
                    let names: Vec<&str> =
                        m.formats.iter().map(|f| f.encoding_name.as_str()).collect();
                    format!("{} {}", m.kind, names.join("/"))
                })
                .collect();
            SessionError::NoVideoTrack(if found.is_empty() {
                "no media at all".into()
            } else {
                found.join(", ")
            })
        })?;
        let session_base = match sdp.session_control.as_deref() {
            Some(c) if c != "*" => rurl::resolve_control(&base, Some(c)),
            _ => base.clone(),
        };
        let control = rurl::resolve_control(&session_base, track.media.control.as_deref());
        let codec = track.codec;
        let payload_type = track.format.payload_type;
        let clock_rate = track.format.clock_rate;
        let depacketizer = Depacketizer::new(
            codec,
            track.format.fmtp.as_deref(),
            self.opts.max_frame_bytes,
        );
        log::debug!(
            "{}: {codec} track, payload type {payload_type}, control {control}",
            self.opts.label
        );
        self.rx.clock = TimestampUnwrapper::new(clock_rate);
        if let Some(p) = depacketizer.params() {
            status.set_params(p);
        }

        self.setup(&control, payload_type, clock_rate, depacketizer, status)
            .await?;

        // PLAY the aggregate URL when the SDP has a session-level control,
        // else the track itself (what servers with one track expect).
        let play_url = if sdp.session_control.is_some() {
            session_base
        } else {
            control
        };
        // From PLAY on, data flows: stray bytes between frames are skipped.
        self.conn.resync = true;
        let resp = match self
            .request(
                Method::Play,
                &play_url,
                &[(headers::RANGE, "npt=0.000-")],
                status,
            )
            .await?
        {
            RequestOutcome::Redirect(_) => {
                return Err(SessionError::Protocol("redirect in answer to PLAY".into()));
            }
            RequestOutcome::Ok(r) => r,
        };
        // Quirk: bogus RTP-Info (seq=0, unparseable rtptime) is common; we
        // take sequence numbers and timestamps from the packets themselves.
        if let Some(info) = header_str(&resp, &headers::RTP_INFO) {
            log::debug!("{}: RTP-Info {info} (not used)", self.opts.label);
        }
        self.rx.last_packet_at = Instant::now();
        self.rx.last_frame_at = Instant::now();
        log::info!(
            "{}: playing {codec} over {}",
            self.opts.label,
            self.opts.transport.name()
        );
        Ok(None)
    }

    pub(super) async fn setup(
        &mut self,
        control: &Url,
        payload_type: u8,
        clock_rate: u32,
        depacketizer: Depacketizer,
        status: &StreamStatus,
    ) -> Result<(), SessionError> {
        let (transport, udp) = match self.opts.transport {
            Transport::Tcp => ("RTP/AVP/TCP;unicast;interleaved=0-1".to_owned(), None),
            Transport::Udp => {
                let local = self
                    .conn
                    .local_addr()
                    .map_err(|e| SessionError::Connect(e.to_string()))?;
                let peer = self
                    .conn
                    .peer_addr()
                    .map_err(|e| SessionError::Connect(e.to_string()))?;
                let (rtp, rtcp, port) = bind_udp_pair(local.ip())
                    .map_err(|e| SessionError::Connect(format!("cannot bind UDP ports: {e}")))?;
                let udp = UdpPair {
                    rtp,
                    rtcp,
                    server_ip: peer.ip(),
                    rtp_buf: vec![0; 65536].into_boxed_slice(),
                    rtcp_buf: vec![0; 2048].into_boxed_slice(),
                    reorder: ReorderBuffer::new(REORDER_SLOTS, UDP_SLOT_BYTES),
                };
                (
                    format!("RTP/AVP;unicast;client_port={}-{}", port, port + 1),
                    Some(udp),
                )
            }
        };
        let resp = match self
            .request(
                Method::Setup,
                control,
                &[(headers::TRANSPORT, transport.as_str())],
                status,
            )
            .await?
        {
            RequestOutcome::Redirect(_) => {
                return Err(SessionError::Protocol("redirect in answer to SETUP".into()))
            }
            RequestOutcome::Ok(r) => r,
        };
        let (id, timeout) = header_str(&resp, &headers::SESSION)
            .and_then(parse_session_header)
            .ok_or_else(|| SessionError::Protocol("SETUP answer has no Session header".into()))?;
        // Quirk: a session id that changes between SETUPs; the newest wins.
        if let Some(old) = &self.session_id {
            if *old != id {
                log::debug!("{}: session id changed from {old} to {id}", self.opts.label);
            }
        }
        self.session_id = Some(id);
        self.session_timeout = timeout.unwrap_or(DEFAULT_SESSION_TIMEOUT);
        let mut rtp_channel = 0;
        let mut rtcp_channel = 1;
        if let Some(t) = header_str(&resp, &headers::TRANSPORT) {
            let t = parse_transport(t);
            if self.opts.transport == Transport::Tcp {
                // Quirk: servers may assign other channels than we asked for.
                if let Some((a, b)) = t.interleaved {
                    rtp_channel = a;
                    rtcp_channel = b;
                }
                if t.udp {
                    return Err(SessionError::Protocol(
                        "asked for RTP over TCP, the camera answered with UDP".into(),
                    ));
                }
            }
            if let Some(ssrc) = t.ssrc {
                self.rx.ssrc = Some(ssrc);
            }
        }
        self.udp = udp;
        self.track = Some(Track {
            rtp_channel,
            rtcp_channel,
            payload_type,
            clock_rate,
            depacketizer,
        });
        Ok(())
    }

    /// Sends a request and waits for its answer, handling authentication
    /// challenges and redirects. Non-2xx answers are errors.
    async fn request(
        &mut self,
        method: Method,
        url: &Url,
        extra: &[(headers::HeaderName, &str)],
        status: &StreamStatus,
    ) -> Result<RequestOutcome, SessionError> {
        let name = method_name(&method);
        for _ in 0..MAX_AUTH_ATTEMPTS {
            let cseq = self.send_request(method.clone(), url, extra).await?;
            let resp = self.wait_response(cseq, name, status).await?;
            let code = u16::from(resp.status());
            if code == 401 {
                // rtsp-types joins repeated WWW-Authenticate headers with
                // ", "; the authenticator parses such a list whole.
                let challenges = header_str(&resp, &headers::WWW_AUTHENTICATE).unwrap_or("");
                self.auth
                    .on_unauthorized(&[challenges])
                    .map_err(SessionError::Auth)?;
                continue;
            }
            if (300..400).contains(&code) {
                if let Some(loc) = header_str(&resp, &headers::LOCATION) {
                    let to = Url::parse(loc.trim())
                        .or_else(|_| url.join(loc.trim()))
                        .map_err(|_| {
                            SessionError::Protocol(format!("bad redirect Location {loc:?}"))
                        })?;
                    return Ok(RequestOutcome::Redirect(to));
                }
            }
            if !(200..300).contains(&code) {
                return Err(SessionError::Status {
                    method: name,
                    status: code,
                    reason: resp.reason_phrase().to_owned(),
                });
            }
            return Ok(RequestOutcome::Ok(resp));
        }
        Err(SessionError::Auth(AuthError::Rejected))
    }

    pub(super) async fn send_request(
        &mut self,
        method: Method,
        url: &Url,
        extra: &[(headers::HeaderName, &str)],
    ) -> Result<u32, SessionError> {
        self.cseq = self.cseq.wrapping_add(1);
        let name = method_name(&method);
        let mut b = Request::builder(method, Version::V1_0)
            .request_uri(url.clone())
            .header(headers::CSEQ, self.cseq.to_string())
            .header(headers::USER_AGENT, USER_AGENT);
        if let Some(id) = &self.session_id {
            b = b.header(headers::SESSION, id.as_str());
        }
        if let Some(a) = self.auth.authorization(name, url.as_str()) {
            b = b.header(headers::AUTHORIZATION, a);
        }
        for (h, v) in extra {
            b = b.header(h.clone(), *v);
        }
        let req = b.build(Vec::<u8>::new());
        let mut bytes = Vec::with_capacity(256);
        req.write(&mut bytes)
            .map_err(|e| SessionError::Protocol(format!("cannot encode request: {e:?}")))?;
        self.conn
            .send(&bytes)
            .await
            .map_err(|e| SessionError::Conn(ConnError::Io(e)))?;
        log::trace!("{}: sent {name} CSeq {}", self.opts.label, self.cseq);
        Ok(self.cseq)
    }

    /// Waits for the answer with `cseq`, handling whatever else arrives
    /// meanwhile (interleaved data, requests from the server).
    pub(super) async fn wait_response(
        &mut self,
        cseq: u32,
        what: &'static str,
        status: &StreamStatus,
    ) -> Result<Response<Vec<u8>>, SessionError> {
        let deadline = Instant::now() + self.opts.request_timeout;
        loop {
            let next = future::or(async { Some(self.conn.next().await) }, async {
                Timer::at(deadline).await;
                None
            })
            .await;
            let incoming = next.ok_or(SessionError::Timeout(what))??;
            match incoming {
                Incoming::Response(resp) => {
                    match header_str(&resp, &headers::CSEQ).map(|v| v.trim().parse::<u32>()) {
                        Some(Ok(n)) if n == cseq => return Ok(resp),
                        // Quirk: answers without CSeq. We have one request
                        // outstanding at this point, so it must be ours.
                        None => return Ok(resp),
                        _ => log::debug!(
                            "{}: ignoring a late answer (CSeq mismatch)",
                            self.opts.label
                        ),
                    }
                }
                Incoming::Request(req) => self.answer(&req).await?,
                // Quirk: RTP arriving before the PLAY response.
                Incoming::Data { channel, payload } => match &mut self.track {
                    Some(track) => self
                        .rx
                        .on_interleaved(track, channel, payload, status, None),
                    None => status.count_ignored(),
                },
            }
        }
    }
}
