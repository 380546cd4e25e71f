//! A session sending RTP over UDP: a task of its own, so it outlives its
//! control connection (as RTSP 1.0 sessions do) until TEARDOWN or the
//! timeout; and the handle its control connection keeps on it.

use super::super::packetize::MAX_PACKET;
use super::outgoing::Outgoing;
use super::wait::ArmedTimer;
use super::{Slot, FAULT_CHECK};
use async_io::Async;
use futures_lite::future;
use smol::channel;
use std::cell::Cell;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::rc::Rc;
use std::time::Instant;

/// The control connection's handle on a UDP session task.
pub(super) struct UdpHandle {
    pub(super) control: channel::Sender<UdpControl>,
    pub(super) state: Rc<UdpState>,
}

pub(super) enum UdpControl {
    Play,
}

/// What a UDP session task publishes for RTP-Info and reads for
/// keep-alive.
pub(super) struct UdpState {
    pub(super) last_alive: Cell<Instant>,
    pub(super) rtp_info: Cell<(u16, u32)>,
}

pub(super) fn local_port(s: &Async<UdpSocket>) -> u16 {
    s.get_ref().local_addr().map_or(0, |a| a.port())
}

/// Binds the RTP and RTCP sockets of a UDP session on the loopback
/// address the client came from: an even port and the next one, as RFC
/// 3550 prefers, or any two if that keeps failing.
pub(super) fn bind_udp_pair(ip: IpAddr) -> io::Result<(Async<UdpSocket>, Async<UdpSocket>)> {
    for _ in 0..16 {
        let rtp = UdpSocket::bind((ip, 0))?;
        let port = rtp.local_addr()?.port();
        if port % 2 != 0 || port == u16::MAX {
            continue;
        }
        if let Ok(rtcp) = UdpSocket::bind((ip, port + 1)) {
            return Ok((Async::new(rtp)?, Async::new(rtcp)?));
        }
    }
    Ok((
        Async::new(UdpSocket::bind((ip, 0))?)?,
        Async::new(UdpSocket::bind((ip, 0))?)?,
    ))
}

/// An RTP-over-UDP session: its own task, so it outlives its control
/// connection (RTSP 1.0 sessions do) until TEARDOWN or the timeout.
pub(super) struct UdpSession {
    pub(super) id: String,
    pub(super) out: Outgoing,
    pub(super) rtp: Async<UdpSocket>,
    pub(super) rtcp: Async<UdpSocket>,
    pub(super) dest_rtp: SocketAddr,
    pub(super) dest_rtcp: SocketAddr,
    pub(super) state: Rc<UdpState>,
    pub(super) control: channel::Receiver<UdpControl>,
    pub(super) slot: Slot,
}

impl UdpSession {
    pub(super) async fn run(mut self) {
        let mut timer = ArmedTimer::new();
        let mut pkt = [0u8; MAX_PACKET];
        let faults = self.slot.shared.faults.clone();
        let kicks = faults.kicks();
        let reason = loop {
            let now = Instant::now();
            if faults.kicks() != kicks {
                break "kicked (fault)";
            }
            if let Some(until) = faults.frozen(now) {
                timer.set_at(until, now);
                (&mut timer.timer).await;
                continue;
            }
            let alive_until = self.state.last_alive.get() + self.slot.shared.session_timeout;
            if now >= alive_until {
                break "timed out";
            }
            self.out.on_time(now, false);
            while let Some(n) = self.out.next_packet(&mut pkt) {
                // UDP is lossy anyway: a full socket buffer drops the packet.
                let _ = self.rtp.get_ref().send_to(&pkt[..n], self.dest_rtp);
            }
            let mut sr = [0u8; 128];
            if let Some(n) = self.out.end_of_stream(&mut sr) {
                let _ = self.rtcp.get_ref().send_to(&sr[..n], self.dest_rtcp);
            }
            if let Some(n) = self.out.sender_report(now, &mut sr) {
                let _ = self.rtcp.get_ref().send_to(&sr[..n], self.dest_rtcp);
            }
            self.state.rtp_info.set(self.out.rtp_info());
            let deadline = self
                .out
                .deadline()
                .map_or(alive_until, |d| d.min(alive_until))
                .min(now + FAULT_CHECK);
            timer.set_at(deadline, now);
            enum Event {
                Control(Result<UdpControl, channel::RecvError>),
                Received,
                Timer,
            }
            let control = async { Event::Control(self.control.recv().await) };
            let received = async {
                future::or(self.rtp.readable(), self.rtcp.readable())
                    .await
                    .ok();
                Event::Received
            };
            let timer = async {
                (&mut timer.timer).await;
                Event::Timer
            };
            match future::or(control, future::or(received, timer)).await {
                Event::Control(Ok(UdpControl::Play)) => self.out.start(Instant::now()),
                Event::Control(Err(_)) => break "torn down",
                Event::Received => {
                    // RTCP receiver reports (and the NAT-punching packets
                    // clients send to both ports) prove the client alive.
                    let mut buf = [0u8; 1500];
                    for sock in [&self.rtp, &self.rtcp] {
                        for _ in 0..64 {
                            if sock.get_ref().recv_from(&mut buf).is_err() {
                                break;
                            }
                            self.state.last_alive.set(Instant::now());
                        }
                    }
                }
                Event::Timer => {}
            }
        };
        self.slot.shared.udp_sessions.borrow_mut().remove(&self.id);
        log::debug!("camera: UDP session {} ends: {reason}", self.id);
    }
}
