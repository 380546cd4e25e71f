//! The RTSP methods a control connection answers: OPTIONS, DESCRIBE,
//! SETUP (TCP or UDP), PLAY, TEARDOWN and the keep-alives.

use super::super::outgoing::Outgoing;
use super::super::route::{route, session_id};
use super::super::transport::{parse_transport, Requested};
use super::super::udp::{bind_udp_pair, local_port, UdpControl, UdpHandle, UdpSession, UdpState};
use super::super::{random_u64, Slot, PUBLIC, SERVER};
use super::{Answer, ControlConnection, TcpSession};
use rtsp_types::{headers, Method, StatusCode};
use smol::channel;
use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

impl ControlConnection {
    pub(super) fn handle(&mut self, req: &rtsp_types::Request<&[u8]>) {
        let now = Instant::now();
        self.last_request = now;
        let cseq = req.header(&headers::CSEQ).map(|v| v.as_str());
        let session = req
            .header(&headers::SESSION)
            .map(|v| session_id(v.as_str()));
        let method = req.method();
        // Any request naming a UDP session keeps it alive.
        if let Some(id) = session {
            if let Some(h) = self.shared.udp_sessions.borrow().get(id) {
                h.state.last_alive.set(now);
            }
        }
        let reply = match method {
            Method::Options => Answer::new(StatusCode::Ok).header(headers::PUBLIC, PUBLIC),
            Method::Describe
            | Method::Setup
            | Method::Play
            | Method::Teardown
            | Method::GetParameter
            | Method::SetParameter => {
                // As many cameras do: OPTIONS is open, the rest needs
                // credentials.
                let authorized = self.shared.auth.as_ref().is_none_or(|a| {
                    let name: &str = method.into();
                    a.check(
                        name,
                        req.header(&headers::AUTHORIZATION).map(|v| v.as_str()),
                    )
                });
                if !authorized {
                    let challenge = self.shared.auth.as_ref().map(|a| a.challenge());
                    Answer::new(StatusCode::Unauthorized)
                        .header(headers::WWW_AUTHENTICATE, challenge.unwrap_or_default())
                } else {
                    match method {
                        Method::Describe => self.describe(req),
                        Method::Setup => self.setup(req, session),
                        Method::Play => self.play(req, session, now),
                        Method::Teardown => self.teardown(session),
                        _ => self.keep_alive(session),
                    }
                }
            }
            _ => Answer::new(StatusCode::NotImplemented).header(headers::PUBLIC, PUBLIC),
        };
        self.write_reply(cseq, reply);
    }

    fn describe(&mut self, req: &rtsp_types::Request<&[u8]>) -> Answer {
        let (clip, base) = match route(self.shared.clips, req.request_uri()) {
            Ok(r) => r,
            Err(status) => return Answer::new(status),
        };
        let origin = random_u64() >> 1;
        let sdp = format!(
            "v=0\r\n\
             o=- {origin} 1 IN IP4 127.0.0.1\r\n\
             s={SERVER}\r\n\
             c=IN IP4 0.0.0.0\r\n\
             t=0 0\r\n\
             a=control:*\r\n\
             a=range:npt=0-\r\n\
             m=video 0 RTP/AVP {pt}\r\n\
             {media}\
             a=framerate:{fps}\r\n\
             a=control:trackID=0\r\n",
            pt = clip.payload_type,
            media = clip.sdp_media,
            fps = clip.info.fps,
        );
        let mut reply = Answer::new(StatusCode::Ok)
            .header(headers::CONTENT_BASE, base)
            .header(headers::CONTENT_TYPE, "application/sdp");
        reply.body = sdp;
        reply
    }

    fn setup(&mut self, req: &rtsp_types::Request<&[u8]>, session: Option<&str>) -> Answer {
        let (clip, _) = match route(self.shared.clips, req.request_uri()) {
            Ok(r) => r,
            Err(status) => return Answer::new(status),
        };
        if session.is_some() || self.tcp.is_some() {
            // One track per session, one RTP/TCP session per connection.
            return Answer::new(StatusCode::MethodNotValidInThisState);
        }
        let transport = req
            .header(&headers::TRANSPORT)
            .map(|v| v.as_str())
            .unwrap_or("");
        let Some(requested) = parse_transport(transport) else {
            return Answer::new(StatusCode::UnsupportedTransport);
        };
        let Some(slot) = Slot::take(&self.shared, true) else {
            return Answer::new(StatusCode::NotEnoughBandwidth);
        };
        let id = format!("{:016x}", random_u64());
        let out = Outgoing::new(clip, self.shared.epoch, self.shared.faults.clone());
        let ssrc = out.rtp.ssrc;
        let transport = match requested {
            Requested::Tcp(a, b) => {
                self.tcp = Some(TcpSession {
                    id: id.clone(),
                    rtp_channel: a,
                    rtcp_channel: b,
                    out,
                    _slot: slot,
                });
                format!("RTP/AVP/TCP;unicast;interleaved={a}-{b};ssrc={ssrc:08X}")
            }
            Requested::Udp(a, b) => {
                let (rtp, rtcp) = match bind_udp_pair(self.peer.ip()) {
                    Ok(p) => p,
                    Err(e) => {
                        log::warn!("camera: cannot bind UDP ports: {e}");
                        return Answer::new(StatusCode::InternalServerError);
                    }
                };
                let ports = (local_port(&rtp), local_port(&rtcp));
                let Some(executor) = self.shared.executor.upgrade() else {
                    return Answer::new(StatusCode::ServiceUnavailable);
                };
                let (tx, rx) = channel::bounded(4);
                let state = Rc::new(UdpState {
                    last_alive: Cell::new(Instant::now()),
                    rtp_info: Cell::new(out.rtp_info()),
                });
                self.shared.udp_sessions.borrow_mut().insert(
                    id.clone(),
                    UdpHandle {
                        control: tx,
                        state: state.clone(),
                    },
                );
                let task = UdpSession {
                    id: id.clone(),
                    out,
                    rtp,
                    rtcp,
                    dest_rtp: SocketAddr::new(self.peer.ip(), a),
                    dest_rtcp: SocketAddr::new(self.peer.ip(), b),
                    state,
                    control: rx,
                    slot,
                };
                executor.spawn(task.run()).detach();
                format!(
                    "RTP/AVP;unicast;client_port={a}-{b};server_port={}-{};ssrc={ssrc:08X}",
                    ports.0, ports.1
                )
            }
        };
        log::debug!(
            "camera: {} set up session {id} ({})",
            self.peer,
            clip.info.name
        );
        Answer::new(StatusCode::Ok)
            .header(headers::TRANSPORT, transport)
            .header(
                headers::SESSION,
                format!("{id};timeout={}", self.shared.session_timeout.as_secs()),
            )
    }

    fn play(
        &mut self,
        req: &rtsp_types::Request<&[u8]>,
        session: Option<&str>,
        now: Instant,
    ) -> Answer {
        let Some(id) = session else {
            return Answer::new(StatusCode::SessionNotFound);
        };
        let (seq, rtptime) = if let Some(s) = self.tcp.as_mut().filter(|s| s.id == id) {
            s.out.start(now);
            s.out.rtp_info()
        } else if let Some(h) = self.shared.udp_sessions.borrow().get(id) {
            let _ = h.control.try_send(UdpControl::Play);
            h.state.rtp_info.get()
        } else {
            return Answer::new(StatusCode::SessionNotFound);
        };
        let base = route(self.shared.clips, req.request_uri())
            .ok()
            .map(|(_, b)| b);
        let mut reply = Answer::new(StatusCode::Ok)
            .header(headers::SESSION, id.to_owned())
            .header(headers::RANGE, "npt=0.000-");
        if let Some(base) = base {
            reply = reply.header(
                headers::RTP_INFO,
                format!("url={base}trackID=0;seq={seq};rtptime={rtptime}"),
            );
        }
        reply
    }

    fn teardown(&mut self, session: Option<&str>) -> Answer {
        let Some(id) = session else {
            return Answer::new(StatusCode::SessionNotFound);
        };
        if self.tcp.as_ref().is_some_and(|s| s.id == id) {
            self.tcp = None;
        } else if self.shared.udp_sessions.borrow_mut().remove(id).is_none() {
            // Dropping the handle closes its channel, which ends the task.
            return Answer::new(StatusCode::SessionNotFound);
        }
        log::debug!("camera: {} tore down session {id}", self.peer);
        Answer::new(StatusCode::Ok)
    }

    fn keep_alive(&mut self, session: Option<&str>) -> Answer {
        match session {
            None => Answer::new(StatusCode::Ok),
            Some(id)
                if self.tcp.as_ref().is_some_and(|s| s.id == id)
                    || self.shared.udp_sessions.borrow().contains_key(id) =>
            {
                Answer::new(StatusCode::Ok).header(headers::SESSION, id.to_owned())
            }
            Some(_) => Answer::new(StatusCode::SessionNotFound),
        }
    }
}
