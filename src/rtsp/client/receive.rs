//! Per-packet handling: RTP and RTCP off the wire (interleaved or UDP),
//! sequence and clock, into the depacketizer and on to the sink; the
//! counters and the "not video" verdict.

use super::*;

impl Receiver {
    pub(super) fn new(label: &str) -> Self {
        Receiver {
            label: label.to_owned(),
            seq: SequenceTracker::new(),
            clock: TimestampUnwrapper::new(90_000),
            ssrc: None,
            foreign_ssrc_run: 0,
            last_packet_at: Instant::now(),
            frame_seen: false,
            last_frame_at: Instant::now(),
            dropped_since_frame: 0,
            drops_logged: 0,
            last_sender_report: None,
            params_known: false,
            bye: false,
        }
    }

    /// On a tick: the session's error when packets keep coming but none of
    /// them made a frame for twice the data timeout (garbage, or a codec we
    /// cannot read): the stream is in error, saying so, not `streaming`.
    /// Twice: a camera without parameter sets in its SDP sends them with
    /// its next key frame, which may be many seconds away.
    pub(super) fn not_video(
        &mut self,
        now: Instant,
        data_timeout: Duration,
    ) -> Option<SessionError> {
        if std::mem::take(&mut self.frame_seen) {
            self.last_frame_at = now;
            self.dropped_since_frame = 0;
            return None;
        }
        let timeout = data_timeout * 2;
        (now >= self.last_frame_at + timeout && self.dropped_since_frame > 0)
            .then_some(SessionError::NotVideo(timeout, self.dropped_since_frame))
    }

    pub(super) fn on_interleaved(
        &mut self,
        track: &mut Track,
        channel: u8,
        payload: &[u8],
        status: &StreamStatus,
        sink: Option<&mut dyn FrameSink>,
    ) {
        if channel == track.rtp_channel {
            self.on_rtp(track, payload, status, sink);
        } else if channel == track.rtcp_channel {
            self.on_rtcp(payload, status);
        } else {
            // Quirk: data on channels we never set up (e.g. a second track
            // the camera sends anyway). Ignored and counted.
            status.count_ignored();
        }
    }

    pub(super) fn on_udp_rtp(
        &mut self,
        track: &mut Track,
        udp: &mut UdpPair,
        n: usize,
        from: SocketAddr,
        status: &StreamStatus,
        sink: &mut dyn FrameSink,
    ) {
        if from.ip() != udp.server_ip {
            status.count_ignored();
            return;
        }
        let bytes = &udp.rtp_buf[..n.min(udp.rtp_buf.len())];
        if udp.reorder.push(bytes).is_err() {
            status.count_ignored();
            return;
        }
        // Packets come back out in sequence order; the sequence tracker
        // counts what the window gave up on as lost.
        while let Some((pkt, _lost)) = udp.reorder.pop() {
            self.on_rtp(track, pkt, status, Some(&mut *sink));
        }
    }

    /// Gives up on the missing packet the reorder window waits for.
    pub(super) fn flush_udp_gap(
        &mut self,
        track: &mut Track,
        udp: &mut UdpPair,
        status: &StreamStatus,
        sink: &mut dyn FrameSink,
    ) {
        if let Some((pkt, _lost)) = udp.reorder.pop_forced() {
            self.on_rtp(track, pkt, status, Some(&mut *sink));
        }
        while let Some((pkt, _lost)) = udp.reorder.pop() {
            self.on_rtp(track, pkt, status, Some(&mut *sink));
        }
    }

    pub(super) fn on_udp_rtcp(
        &mut self,
        udp: &mut UdpPair,
        n: usize,
        from: SocketAddr,
        status: &StreamStatus,
    ) {
        if from.ip() != udp.server_ip {
            status.count_ignored();
            return;
        }
        let bytes = &udp.rtcp_buf[..n.min(udp.rtcp_buf.len())];
        self.on_rtcp(bytes, status);
    }

    pub(super) fn on_rtcp(&mut self, bytes: &[u8], status: &StreamStatus) {
        if rtcp::is_bye(bytes, self.ssrc) {
            log::info!("{}: the camera sent RTCP BYE: its stream ended", self.label);
            self.bye = true;
        }
        match rtcp::sender_report(bytes) {
            Ok(Some(sr)) => {
                if self.ssrc.is_some_and(|s| s != sr.ssrc) {
                    // Quirk: RTCP from an SSRC that is not our video's.
                    status.count_ignored();
                    return;
                }
                if self.last_sender_report.is_none() {
                    log::debug!("{}: first RTCP sender report", self.label);
                }
                self.last_sender_report = Some(sr);
            }
            Ok(None) => {}
            Err(e) => {
                log::debug!("{}: {e}", self.label);
                status.count_ignored();
            }
        }
    }

    pub(super) fn on_rtp(
        &mut self,
        track: &mut Track,
        bytes: &[u8],
        status: &StreamStatus,
        mut sink: Option<&mut dyn FrameSink>,
    ) {
        let pkt = match RtpPacket::parse(bytes) {
            Ok(p) => p,
            Err(e) => {
                log::debug!("{}: {e}", self.label);
                status.count_ignored();
                return;
            }
        };
        if pkt.payload_type != track.payload_type {
            status.count_ignored();
            return;
        }
        match self.ssrc {
            None => self.ssrc = Some(pkt.ssrc),
            Some(s) if s != pkt.ssrc => {
                // Quirk: a stale stream still arriving after a reconnect, or
                // a camera that restarted its encoder. Ignore strangers, but
                // follow a new SSRC that persists.
                self.foreign_ssrc_run += 1;
                if self.foreign_ssrc_run < 25 {
                    status.count_ignored();
                    return;
                }
                log::warn!(
                    "{}: camera switched RTP SSRC {s:08x} -> {:08x}",
                    self.label,
                    pkt.ssrc
                );
                self.ssrc = Some(pkt.ssrc);
                self.seq = SequenceTracker::new();
                self.clock = TimestampUnwrapper::new(track.clock_rate);
                status.count_discontinuity();
            }
            Some(_) => self.foreign_ssrc_run = 0,
        }
        let lost = match self.seq.observe(pkt.sequence) {
            SeqResult::Next { lost } => lost,
            SeqResult::Stale => {
                status.count_ignored();
                return;
            }
        };
        self.last_packet_at = Instant::now();
        status.count_packet();
        if lost > 0 {
            status.count_lost(u64::from(lost));
        }
        let ts = self.clock.unwrap(pkt.timestamp);
        if ts.jumped {
            // Quirk: camera clocks jump (a camera setting its clock, VLC
            // looping a file). The unwrapper rebases the media time so the
            // stream reads on; the recording goes on too, and the writer's
            // timeline places the frames by the wall clock (docs/storage.md,
            // "The timeline"). Ending the recording here would drop the
            // frames up to the next key frame.
            log::info!(
                "{}: RTP timestamp jumped; the wall clock places the frames",
                self.label
            );
            status.count_discontinuity();
        }
        let label = &self.label;
        let params_known = &mut self.params_known;
        let frame_seen = &mut self.frame_seen;
        let mut emit = |f: Frame<'_>| {
            *frame_seen = true;
            if f.params_changed || !*params_known {
                *params_known = true;
                status.set_params(f.params);
                log::info!(
                    "{label}: {} {}x{}{}",
                    f.params.codec,
                    f.params.width,
                    f.params.height,
                    f.params
                        .fps_milli
                        .map(|v| format!(" {:.2} fps", f64::from(v) / 1000.0))
                        .unwrap_or_default()
                );
            }
            status.count_frame(f.data.len(), f.key);
            if let Some(s) = sink.as_deref_mut() {
                s.frame(&f);
            }
        };
        if let Err(e) = track
            .depacketizer
            .push(&pkt, ts.ts_90k, lost > 0, &mut emit)
        {
            status.count_dropped();
            self.dropped_since_frame += 1;
            self.drops_logged += 1;
            // The first few at warn, then every thousandth: a camera that
            // sends garbage at 30 fps must not flood the log.
            if self.drops_logged <= 5 || self.drops_logged.is_multiple_of(1000) {
                log::warn!(
                    "{}: dropped: {e} ({} so far)",
                    self.label,
                    self.drops_logged
                );
            } else {
                log::debug!("{}: dropped: {e}", self.label);
            }
        }
    }
}
