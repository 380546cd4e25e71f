//! The RTSP client against cameras that misbehave in ways seen in the
//! field, scripted by `fakecam`. Each test names the quirk it covers.

mod fakecam;

use fakecam::{FakeCamera, Script};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vigil::config::Transport;
use vigil::daemon::{spawn_stream, StreamSpec};
use vigil::stream::Frame;
use vigil::stream::{FrameSink, StopSource, StreamState, StreamStatus};

#[derive(Default, Debug)]
struct Got {
    frames: u32,
    keys: u32,
    width: u16,
    height: u16,
    discontinuities: u32,
    last_ts: Option<i64>,
    non_increasing: u32,
}

struct Sink(Arc<Mutex<Got>>);

impl FrameSink for Sink {
    fn frame(&mut self, f: &Frame<'_>) {
        let mut g = self.0.lock().unwrap();
        g.frames += 1;
        g.keys += u32::from(f.key);
        g.width = f.params.width;
        g.height = f.params.height;
        if g.last_ts.is_some_and(|t| f.timestamp_90k <= t) {
            g.non_increasing += 1;
        }
        g.last_ts = Some(f.timestamp_90k);
        assert!(!f.data.is_empty());
    }
    fn discontinuity(&mut self) {
        self.0.lock().unwrap().discontinuities += 1;
    }
}

struct Running {
    status: Arc<StreamStatus>,
    got: Arc<Mutex<Got>>,
    stop: StopSource,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    fn start(spec: StreamSpec) -> Running {
        let status = Arc::new(StreamStatus::new(&spec.camera, spec.kind));
        let got = Arc::new(Mutex::new(Got::default()));
        let stop = StopSource::new();
        let thread = spawn_stream(
            spec,
            status.clone(),
            Box::new(Sink(got.clone())),
            stop.token(),
            Duration::ZERO,
        )
        .unwrap();
        Running {
            status,
            got,
            stop,
            thread: Some(thread),
        }
    }

    fn url(url: &str) -> Running {
        Running::start(StreamSpec::for_url("fake", url, Transport::Tcp))
    }

    fn wait(
        &self,
        what: &str,
        timeout: Duration,
        cond: impl Fn(&Got, &vigil::stream::StreamSnapshot) -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        loop {
            let snap = self.status.snapshot();
            if cond(&self.got.lock().unwrap(), &snap) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {:?} {:?}",
                self.got.lock().unwrap(),
                snap
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_frames(&self, n: u32) {
        self.wait(&format!("{n} frames"), Duration::from_secs(10), |g, _| {
            g.frames >= n
        });
    }

    fn stop(mut self) {
        self.stop.stop();
        let t = self.thread.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !t.is_finished() {
            assert!(Instant::now() < deadline, "stream thread did not stop");
            std::thread::sleep(Duration::from_millis(10));
        }
        t.join().unwrap();
    }
}

#[test]
fn plain_session_delivers_frames_with_sps_resolution() {
    let cam = FakeCamera::start(Script::default());
    let r = Running::url(&cam.url("stream"));
    r.wait_frames(60);
    {
        let g = r.got.lock().unwrap();
        assert_eq!((g.width, g.height), (640, 360));
        assert!(g.keys >= 2, "{g:?}");
        assert_eq!(g.non_increasing, 0);
    }
    let snap = r.status.snapshot();
    assert_eq!(snap.state, StreamState::Streaming);
    assert_eq!(snap.packets_lost, 0);
    r.stop();
    // TEARDOWN on stop, so the camera frees the session at once.
    let m = cam.methods();
    assert_eq!(m.last().map(String::as_str), Some("TEARDOWN"), "{m:?}");
    assert_eq!(&m[..4], ["OPTIONS", "DESCRIBE", "SETUP", "PLAY"]);
}

#[test]
fn content_base_without_scheme_resolves_against_request_url() {
    let cam = FakeCamera::start(Script {
        content_base: Some("{addr}/other/".into()),
        ..Script::default()
    });
    let r = Running::url(&cam.url("stream"));
    r.wait_frames(5);
    r.stop();
    let setup = cam
        .seen()
        .into_iter()
        .find(|s| s.method == "SETUP")
        .unwrap();
    assert_eq!(setup.uri, format!("rtsp://{}/other/trackID=1", cam.addr));
}

#[test]
fn describe_without_content_type_and_sloppy_sdp() {
    // No o= line, trailing spaces in rtpmap, an empty fmtp on an audio
    // track, a media section we cannot parse, then the video.
    let sdp = format!(
        "v=0\r\ns=sloppy\r\nt=0 0\r\n\
         m=audio 0 RTP/AVP 0 8\r\na=fmtp:8\r\na=control:trackID=0\r\n\
         m=video zero RTP/AVP x\r\na=control:trackID=9\r\n\
         m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000  \r\n\
         a=fmtp:96 packetization-mode=1;sprop-parameter-sets={}\r\na=control:trackID=1\r\n",
        fakecam::sprop()
    );
    let cam = FakeCamera::start(Script {
        sdp,
        content_type: None,
        ..Script::default()
    });
    let r = Running::url(&cam.url("stream"));
    r.wait_frames(5);
    r.stop();
    let setup = cam
        .seen()
        .into_iter()
        .find(|s| s.method == "SETUP")
        .unwrap();
    assert!(setup.uri.ends_with("/trackID=1"), "{}", setup.uri);
}

#[test]
fn unauthorized_describe_after_open_options() {
    let cam = FakeCamera::start(Script {
        basic_auth: Some(("admin".into(), "s3cret".into())),
        ..Script::default()
    });
    let mut spec = StreamSpec::for_url("fake", &cam.url("stream"), Transport::Tcp);
    spec.session.username = Some("admin".into());
    spec.session.password = Some("s3cret".into());
    let r = Running::start(spec);
    r.wait_frames(5);
    r.stop();
    let seen = cam.seen();
    assert!(
        seen[0].authorization.is_none(),
        "OPTIONS went out unauthenticated"
    );
    assert!(seen
        .iter()
        .any(|s| s.method == "PLAY" && s.authorization.is_some()));
}

#[test]
fn credentials_in_the_url_are_used_and_not_sent_in_it() {
    let cam = FakeCamera::start(Script {
        basic_auth: Some(("admin".into(), "p@ss:word".into())),
        ..Script::default()
    });
    let url = format!("rtsp://admin:p%40ss%3Aword@{}/stream", cam.addr);
    let r = Running::url(&url);
    r.wait_frames(5);
    r.stop();
    assert!(cam.seen().iter().all(|s| !s.uri.contains("admin")));
}

#[test]
fn wrong_password_is_an_authentication_error() {
    let cam = FakeCamera::start(Script {
        basic_auth: Some(("admin".into(), "right".into())),
        ..Script::default()
    });
    let mut spec = StreamSpec::for_url("fake", &cam.url("stream"), Transport::Tcp);
    spec.session.username = Some("admin".into());
    spec.session.password = Some("wrong".into());
    let r = Running::start(spec);
    r.wait("error state", Duration::from_secs(10), |_, s| {
        s.state == StreamState::Error
            && s.last_error
                .as_deref()
                .is_some_and(|e| e.contains("authentication"))
    });
    let err = r.status.snapshot().last_error.unwrap();
    assert!(!err.contains("wrong") || err.contains("password"), "{err}");
    r.stop();
}

#[test]
fn odd_channels_early_rtp_unknown_channel_and_foreign_rtcp() {
    let cam = FakeCamera::start(Script {
        interleaved: (6, 7),
        frames_before_play_response: 3,
        data_on_unknown_channel: true,
        rtcp_unknown_ssrc: true,
        stray_bytes: true,
        session_header: "  F00D ; timeout=60 ;".into(),
        ..Script::default()
    });
    let r = Running::url(&cam.url("stream"));
    r.wait_frames(60);
    // Channel 6 carries our RTP here, so the fake's "unknown channel"
    // packet arrives on it with a foreign payload type: ignored, counted,
    // like the RTCP from a foreign SSRC.
    r.wait("ignored packets", Duration::from_secs(5), |_, s| {
        s.packets_ignored > 0
    });
    let g = r.got.lock().unwrap();
    assert_eq!((g.width, g.height), (640, 360));
    assert_eq!(g.non_increasing, 0);
    drop(g);
    r.stop();
}

#[test]
fn data_on_a_channel_never_set_up_is_ignored() {
    let cam = FakeCamera::start(Script {
        data_on_unknown_channel: true,
        ..Script::default()
    });
    let r = Running::url(&cam.url("stream"));
    r.wait_frames(30);
    r.wait("ignored packets", Duration::from_secs(5), |_, s| {
        s.packets_ignored >= 10
    });
    r.stop();
}

#[test]
fn answers_without_cseq_are_accepted() {
    let cam = FakeCamera::start(Script {
        no_cseq: true,
        ..Script::default()
    });
    let r = Running::url(&cam.url("stream"));
    r.wait_frames(10);
    r.stop();
}

#[test]
fn missing_marker_bits_still_split_frames_by_timestamp() {
    let cam = FakeCamera::start(Script {
        no_marker: true,
        ..Script::default()
    });
    let r = Running::url(&cam.url("stream"));
    r.wait_frames(30);
    let g = r.got.lock().unwrap();
    assert!(g.keys >= 1);
    assert_eq!(g.non_increasing, 0);
    drop(g);
    r.stop();
}

#[test]
fn absurd_timestamp_jump_is_counted_and_bounded() {
    let cam = FakeCamera::start(Script {
        timestamp_jump_at: Some(20),
        ..Script::default()
    });
    let r = Running::url(&cam.url("stream"));
    r.wait_frames(40);
    r.wait("a counted jump", Duration::from_secs(5), |_, s| {
        s.discontinuities == 1
    });
    // The recording goes on (the writer's timeline places the frames by
    // the wall clock): ending it would drop frames to the next key frame.
    assert_eq!(r.got.lock().unwrap().discontinuities, 0);
    // The jump is bounded: frames keep increasing by about a frame.
    assert_eq!(r.got.lock().unwrap().non_increasing, 0);
    r.stop();
}

#[test]
fn redirect_is_followed() {
    let target = FakeCamera::start(Script::default());
    let cam = FakeCamera::start(Script {
        redirect_to: Some(target.url("stream")),
        ..Script::default()
    });
    let r = Running::url(&cam.url("stream"));
    r.wait_frames(5);
    r.stop();
    assert!(target.methods().contains(&"PLAY".to_owned()));
    assert!(!cam.methods().contains(&"PLAY".to_owned()));
}

#[test]
fn rejected_get_parameter_keepalive_falls_back_to_options() {
    let cam = FakeCamera::start(Script {
        session_header: "K33P;timeout=2".into(),
        public: "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER".into(),
        reject_get_parameter: true,
        ..Script::default()
    });
    let r = Running::url(&cam.url("stream"));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = cam.methods();
        let gp = m.iter().position(|x| x == "GET_PARAMETER");
        if let Some(i) = gp {
            if m[i + 1..].iter().any(|x| x == "OPTIONS") {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no OPTIONS keep-alive after GET_PARAMETER: {m:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Keep-alives carry the session id, trimmed of its parameters.
    assert!(cam
        .seen()
        .iter()
        .filter(|s| s.method == "GET_PARAMETER")
        .all(|s| s.session.as_deref() == Some("K33P")));
    r.stop();
}

#[test]
fn garbage_answers_are_an_error_not_a_panic() {
    let cam = FakeCamera::start(Script {
        garbage: Some(b"\x00\x01\x02HELLO garbage\r\n\r\n".to_vec()),
        ..Script::default()
    });
    let r = Running::url(&cam.url("stream"));
    r.wait("error state", Duration::from_secs(10), |_, s| {
        s.state == StreamState::Error && s.last_error.is_some()
    });
    r.stop();
}

#[test]
fn a_vanished_camera_is_retried_with_backoff() {
    // Nothing listens: connection refused, error state, then retries.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let r = Running::url(&format!("rtsp://127.0.0.1:{port}/x"));
    r.wait("a retry", Duration::from_secs(10), |_, s| {
        s.state == StreamState::Error && s.reconnects >= 1
    });
    r.stop();
}

#[test]
fn stalled_camera_times_out_and_reconnects() {
    let cam = FakeCamera::start(Script {
        frames: 30,
        ..Script::default()
    });
    let mut spec = StreamSpec::for_url("fake", &cam.url("stream"), Transport::Tcp);
    spec.session.data_timeout = Duration::from_millis(700);
    let r = Running::start(spec);
    r.wait(
        "a reconnect after the stall",
        Duration::from_secs(15),
        |g, s| s.reconnects >= 1 && g.frames >= 40,
    );
    let snap = r.status.snapshot();
    // Streaming again: the error is history, not the stream's state.
    assert_eq!(snap.last_error, None);
    assert!(snap
        .previous_error
        .unwrap_or_default()
        .contains("no video data"));
    r.stop();
    // The stalled session was torn down before the new one was set up.
    let m = cam.methods();
    let first_teardown = m.iter().position(|x| x == "TEARDOWN").expect("TEARDOWN");
    assert!(m[first_teardown..].iter().any(|x| x == "PLAY"), "{m:?}");
}

#[test]
fn a_session_left_by_a_dead_connection_is_torn_down_on_reconnect() {
    let cam = FakeCamera::start(Script {
        drop_after_frames: Some(20),
        ..Script::default()
    });
    let r = Running::url(&cam.url("stream"));
    r.wait("a reconnect", Duration::from_secs(10), |g, s| {
        s.reconnects >= 1 && g.frames >= 30
    });
    r.stop();
    let seen = cam.seen();
    let setups: Vec<usize> = seen
        .iter()
        .enumerate()
        .filter(|(_, s)| s.method == "SETUP")
        .map(|(i, _)| i)
        .collect();
    assert!(setups.len() >= 2, "{seen:?}");
    // Between the first connection's SETUP and the second's, a TEARDOWN of
    // the old session went out on the new connection.
    assert!(
        seen[setups[0] + 1..setups[1]]
            .iter()
            .any(|s| s.method == "TEARDOWN" && s.session.as_deref() == Some("F00D")),
        "{seen:?}"
    );
}

#[test]
fn a_camera_that_never_sends_rtcp_streams_normally() {
    let cam = FakeCamera::start(Script {
        no_rtcp: true,
        ..Script::default()
    });
    let r = Running::url(&cam.url("stream"));
    r.wait_frames(60);
    let snap = r.status.snapshot();
    assert_eq!((snap.packets_ignored, snap.reconnects), (0, 0), "{snap:?}");
    r.stop();
}

#[test]
fn random_payloads_are_no_video_and_the_stream_says_so() {
    // A server that is no camera: an SDP without parameter sets, then
    // well-formed interleaved RTP with random payloads. No parameter set
    // in them survives the checks, so nothing is video.
    let sdp = fakecam::h264_sdp();
    let sdp = sdp[..sdp.find(";sprop-parameter-sets").unwrap()].to_owned()
        + &sdp[sdp.find("\r\na=control:trackID").unwrap()..];
    let cam = FakeCamera::start(Script {
        sdp,
        random_payloads: true,
        frames: 10_000,
        ..Script::default()
    });
    let mut spec = StreamSpec::for_url("fake", &cam.url("stream"), Transport::Tcp);
    spec.session.data_timeout = Duration::from_millis(1500);
    let r = Running::start(spec);
    r.wait("an error saying so", Duration::from_secs(15), |_, s| {
        s.state == StreamState::Error
            && s.last_error
                .as_deref()
                .is_some_and(|e| e.contains("no valid video"))
    });
    let snap = r.status.snapshot();
    assert_eq!(snap.frames, 0, "garbage recorded as video");
    assert!(snap.frames_dropped > 0);
    r.stop();
}

#[test]
fn rtcp_bye_ends_the_session_at_once() {
    let cam = FakeCamera::start(Script {
        bye_after_frames: Some(30),
        frames: 10_000,
        ..Script::default()
    });
    // The no-data timeout is long: only the BYE can end the session soon.
    let mut spec = StreamSpec::for_url("fake", &cam.url("stream"), Transport::Tcp);
    spec.session.data_timeout = Duration::from_secs(30);
    let r = Running::start(spec);
    r.wait_frames(30);
    let t = std::time::Instant::now();
    r.wait(
        "a reconnect after the BYE",
        Duration::from_secs(10),
        |g, s| s.reconnects >= 1 && g.frames >= 60,
    );
    println!(
        "reconnected and 30 frames received {:.2} s after the BYE",
        t.elapsed().as_secs_f64()
    );
    assert!(t.elapsed() < Duration::from_secs(5));
    let snap = r.status.snapshot();
    assert!(snap.previous_error.unwrap_or_default().contains("RTCP BYE"));
    r.stop();
}
