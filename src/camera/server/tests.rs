//! Tests of the camera server's pure parts: the Transport header, routing
//! by path, bitrates, and the pacing of frames.

use super::super::clip::ClipFrame;
use super::super::packetize::MAX_PACKET;
use super::outgoing::Outgoing;
use super::route::route;
use super::transport::{parse_transport, Requested};
use super::*;
use rtsp_types::{StatusCode, Url};

#[test]
fn transport_header_parsing() {
    use Requested::*;
    assert_eq!(
        parse_transport("RTP/AVP/TCP;unicast;interleaved=0-1"),
        Some(Tcp(0, 1))
    );
    assert_eq!(
        parse_transport("RTP/AVP/TCP;unicast;interleaved=4"),
        Some(Tcp(4, 5))
    );
    assert_eq!(parse_transport("RTP/AVP/TCP;unicast"), Some(Tcp(0, 1)));
    assert_eq!(
        parse_transport("RTP/AVP;unicast;client_port=5000-5001"),
        Some(Udp(5000, 5001))
    );
    assert_eq!(
        parse_transport("rtp/avp/udp;unicast;client_port=6000"),
        Some(Udp(6000, 6001))
    );
    // Multicast declined, the next offer taken.
    assert_eq!(
        parse_transport("RTP/AVP;multicast, RTP/AVP/TCP;interleaved=2-3"),
        Some(Tcp(2, 3))
    );
    assert_eq!(parse_transport("RTP/AVP;unicast"), None);
    assert_eq!(parse_transport("RTP/AVP/TCP;interleaved=255"), None);
    assert_eq!(parse_transport("RTP/AVP/TCP;interleaved=300-301"), None);
    assert_eq!(parse_transport("RTP/SAVP;unicast;client_port=1-2"), None);
    assert_eq!(parse_transport(""), None);
    assert_eq!(parse_transport(";;;,,=,-"), None);
    // The value that makes rtsp-types' typed parser panic.
    assert_eq!(
        parse_transport("RTP/AVP/TCP;dest_addr=\";interleaved=0-1"),
        Some(Tcp(0, 1))
    );
}

#[test]
fn routes_by_first_segment() {
    let clips = super::super::clip::clips().unwrap();
    let url = |s: &str| Url::parse(s).unwrap();
    let (c, base) = route(clips, Some(&url("rtsp://u:p@127.0.0.1:8554/h264/cam7?x=1"))).unwrap();
    assert_eq!(c.info.name, "h264");
    assert_eq!(base, "rtsp://127.0.0.1:8554/h264/cam7/");
    let (c, base) = route(clips, Some(&url("rtsp://127.0.0.1:8554/mjpeg/trackID=0"))).unwrap();
    assert_eq!(c.info.name, "mjpeg");
    assert_eq!(base, "rtsp://127.0.0.1:8554/mjpeg/");
    let nf = Some(StatusCode::NotFound);
    assert_eq!(
        route(clips, Some(&url("rtsp://127.0.0.1:8554/h266"))).err(),
        nf
    );
    assert_eq!(route(clips, Some(&url("rtsp://127.0.0.1:8554/"))).err(), nf);
    assert_eq!(route(clips, None).err(), nf);
}

/// Mean bytes per frame of a clip's H.26x NAL units.
fn bytes_per_frame(clip: &Clip) -> u64 {
    let total: u64 = clip
        .frames
        .iter()
        .map(|f| match f {
            ClipFrame::Nals { nals, .. } => nals.iter().map(|n| n.len() as u64).sum(),
            ClipFrame::Jpeg(_) => 0,
        })
        .sum();
    total / clip.frames.len() as u64
}

#[test]
fn a_kbps_segment_sets_the_stream_bitrate() {
    let clips = super::super::clip::clips().unwrap();
    let url = |s: &str| Url::parse(s).unwrap();
    let at = |s: &str| route(clips, Some(&url(s))).unwrap();
    // 2000 and 500 kbit/s at 25 fps: 10000 and 2500 bytes per frame.
    let (main, base) = at("rtsp://127.0.0.1:8554/h264/cam1/kbps=2000");
    assert_eq!(base, "rtsp://127.0.0.1:8554/h264/cam1/kbps=2000/");
    let (sub, _) = at("rtsp://127.0.0.1:8554/h264/cam1-sub/kbps=500/trackID=0");
    let (plain, _) = at("rtsp://127.0.0.1:8554/h264/cam1");
    assert_eq!(main.info.name, "h264");
    assert!(
        (9990..=10010).contains(&bytes_per_frame(main)),
        "{}",
        bytes_per_frame(main)
    );
    assert!(
        (2490..=2510).contains(&bytes_per_frame(sub)),
        "{}",
        bytes_per_frame(sub)
    );
    assert!(bytes_per_frame(plain) < 2490);
    // The same bitrate is the same clips, built once.
    let (again, _) = at("rtsp://127.0.0.1:8554/h264/other/kbps=2000/");
    assert!(std::ptr::eq(main, again));
    // The SETUP URL built from the Content-Base routes to the same clip.
    let (setup, _) = at(&format!("{base}trackID=0"));
    assert!(std::ptr::eq(main, setup));
    for bad in ["kbps=0", "kbps=100001", "kbps=x", "kbps=", "kbps=-5"] {
        let u = url(&format!("rtsp://127.0.0.1:8554/h264/cam1/{bad}"));
        assert_eq!(
            route(clips, Some(&u)).err(),
            Some(StatusCode::BadRequest),
            "{bad}"
        );
    }
    let u = url("rtsp://127.0.0.1:8554/h266/kbps=500");
    assert_eq!(route(clips, Some(&u)).err(), Some(StatusCode::NotFound));
}

#[test]
fn pacing_drops_when_busy_or_late_and_resumes_on_a_key_frame() {
    let clips = super::super::clip::clips().unwrap();
    let clip = clips.iter().find(|c| c.info.name == "h264").unwrap();
    let epoch = Instant::now();
    let mut out = Outgoing::new(clip, epoch, Faults::default());
    // PLAY between two ticks of the 25 fps grid: frame 0 is at the next.
    out.start(epoch + Duration::from_millis(70));
    let t0 = out.deadline().unwrap();
    assert_eq!(t0, epoch + Duration::from_millis(80));
    let period = Duration::from_millis(40);
    let mut pkt = [0u8; MAX_PACKET];
    // Frame 0 at t0.
    out.on_time(t0, false);
    assert!(out.sending());
    assert_eq!(out.deadline(), Some(t0 + period));
    // Frame 1 is due while frame 0 is still being sent: dropped.
    out.on_time(t0 + period, false);
    assert_eq!(out.play.as_ref().unwrap().dropped, 1);
    while out.next_packet(&mut pkt).is_some() {}
    // Frame 2 is a P frame: skipped until the key frame at 50.
    out.on_time(t0 + period * 2, false);
    assert!(!out.sending());
    // A long stall: everything up to frame 50 is late; frame 50 (key)
    // is sent when its own time comes.
    out.on_time(t0 + period * 50, false);
    assert!(out.sending());
    let p = out.play.as_ref().unwrap();
    assert_eq!(p.next_frame, 51);
    assert!(!p.need_key);
    assert_eq!(p.cursor.as_ref().unwrap().1, out.timestamp(50));
    assert_eq!(out.timestamp(50).wrapping_sub(out.base_ts), 50 * 3600);
    // Timestamps continue across the loop of the 100-frame clip.
    assert_eq!(out.timestamp(100).wrapping_sub(out.timestamp(99)), 3600);
}
