//! Vigil's RTSP client against a real peer: GStreamer's RTSP server
//! (`tests/gst/rtsp_server.py`) as the camera, for each codec, transport
//! and authentication method, plus a wrong password and a camera that dies
//! and comes back.
//!
//! These need system packages (scripts/install-test-deps.sh), so they are
//! ignored by a plain `cargo test`; `make test` runs them with `--ignored`.

mod common;

use common::{measured_fps, span, wait_until, GstServer, Recorded, Running};
use std::time::Duration;
use vigil::config::Transport;
use vigil::daemon::StreamSpec;
use vigil::stream::Codec;
use vigil::stream::StreamState;

/// How long the stream must deliver before its frames are judged.
const WATCH: Duration = Duration::from_secs(3);
/// Bound on connecting and delivering [`WATCH`] worth of frames; generous
/// because x265 and the test machine's shared cores start slowly.
const DELIVER_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on the stream thread stopping once asked.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// What the server sends, as the tests expect to receive it.
struct Expect {
    codec: Codec,
    width: u16,
    height: u16,
    fps: u32,
}

/// The server's arguments for `e`, plus `extra`.
fn server_args(e: &Expect, extra: &[&str]) -> Vec<String> {
    let codec = match e.codec {
        Codec::H264 => "h264",
        Codec::H265 => "h265",
        Codec::Jpeg => "mjpeg",
    };
    let mut args: Vec<String> = vec![
        "--codec".into(),
        codec.into(),
        "--width".into(),
        e.width.to_string(),
        "--height".into(),
        e.height.to_string(),
        "--fps".into(),
        e.fps.to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn start_server(e: &Expect, extra: &[&str]) -> Option<GstServer> {
    let args = server_args(e, extra);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    GstServer::start(&refs)
}

/// Waits until the latest session has delivered [`WATCH`] worth of frames.
fn wait_for_frames(run: &Running) -> bool {
    wait_until(DELIVER_TIMEOUT, || {
        let r = common::lock(&run.rec);
        span(r.last_session()) >= WATCH
    })
}

/// Asserts the stream is streaming what `e` describes, judged on its latest
/// session: parameters, key frames, sizes, frame rate from timestamps.
fn assert_stream_matches(run: &Running, e: &Expect) {
    let r: Recorded = run.recorded();
    let snap = run.status.snapshot();
    assert_eq!(snap.state, StreamState::Streaming, "status: {snap:?}");

    let params = r.last_params.as_ref().expect("frames carry parameters");
    assert_eq!(params.codec, e.codec, "codec");
    assert_eq!((params.width, params.height), (e.width, e.height), "size");
    assert_eq!(snap.codec, Some(e.codec), "status codec");
    assert_eq!(
        (snap.width, snap.height),
        (e.width, e.height),
        "status size"
    );
    match e.codec {
        Codec::H264 => {
            assert!(params.rfc6381_codec.starts_with("avc1."), "{params:?}");
            assert_eq!(params.decoder_config.first(), Some(&1), "avcC version");
        }
        Codec::H265 => {
            assert!(
                params.rfc6381_codec.starts_with("hvc1.")
                    || params.rfc6381_codec.starts_with("hev1."),
                "{params:?}"
            );
            assert_eq!(params.decoder_config.first(), Some(&1), "hvcC version");
        }
        Codec::Jpeg => {}
    }

    assert_eq!(r.empty_frames, 0, "empty frames");
    assert!(r.sizes.iter().all(|&s| s > 0), "a kept frame is empty");
    assert_eq!(r.malformed_frames, 0, "first: {:?}", r.first_malformed);

    let sessions = r.sessions();
    let (ts, keys) = *sessions.last().expect("a session delivered frames");
    assert_eq!(
        keys.first(),
        Some(&true),
        "the session's first frame is a key frame"
    );
    // The server sends a key frame every 2 s (every frame for JPEG).
    assert!(
        keys.iter().filter(|&&k| k).count() >= 2,
        "key frames: {keys:?}"
    );
    assert!(
        ts.windows(2).all(|w| w[0] < w[1]),
        "timestamps not increasing (no B-frames are sent): {ts:?}"
    );
    let min_frames = (WATCH.as_secs_f64() * f64::from(e.fps) * 0.95) as usize;
    assert!(
        ts.len() >= min_frames,
        "{} frames, want >= {min_frames}",
        ts.len()
    );
    let fps = measured_fps(ts).expect("a frame rate");
    let want = f64::from(e.fps);
    assert!(
        (fps - want).abs() <= want * 0.05,
        "measured {fps:.2} fps from timestamps, server sends {want}"
    );
}

/// Streams from a server started with `extra`, checks what arrives, stops.
fn stream_and_check(e: Expect, extra: &[&str], transport: Transport, auth: Option<(&str, &str)>) {
    let Some(server) = start_server(&e, extra) else {
        return;
    };
    let mut spec = StreamSpec::for_url("gst", server.url(), transport);
    if let Some((user, password)) = auth {
        spec.session.username = Some(user.to_owned());
        spec.session.password = Some(password.to_owned());
    }
    let run = Running::start(spec);
    let arrived = wait_for_frames(&run);
    assert!(
        arrived,
        "{WATCH:?} of frames did not arrive within {DELIVER_TIMEOUT:?}; status {:?}, {} frames",
        run.status.snapshot(),
        run.recorded().frames
    );
    assert_stream_matches(&run, &e);
    let snap = run.status.snapshot();
    assert_eq!(
        snap.reconnects, 0,
        "a clean stream needs no reconnect: {snap:?}"
    );
    run.stop(STOP_TIMEOUT);
    drop(server);
}

#[test]
#[ignore = "needs GStreamer (run by make test)"]
fn h264_720p_over_tcp() {
    let e = Expect {
        codec: Codec::H264,
        width: 1280,
        height: 720,
        fps: 25,
    };
    stream_and_check(e, &["--transport", "tcp"], Transport::Tcp, None);
}

#[test]
#[ignore = "needs GStreamer (run by make test)"]
fn h264_720p_over_udp() {
    let e = Expect {
        codec: Codec::H264,
        width: 1280,
        height: 720,
        fps: 25,
    };
    stream_and_check(e, &["--transport", "udp"], Transport::Udp, None);
}

#[test]
#[ignore = "needs GStreamer (run by make test)"]
fn h265_360p_over_tcp() {
    let e = Expect {
        codec: Codec::H265,
        width: 640,
        height: 360,
        fps: 25,
    };
    stream_and_check(e, &["--transport", "tcp"], Transport::Tcp, None);
}

#[test]
#[ignore = "needs GStreamer (run by make test)"]
fn mjpeg_480p_over_tcp() {
    let e = Expect {
        codec: Codec::Jpeg,
        width: 640,
        height: 480,
        fps: 15,
    };
    stream_and_check(e, &["--transport", "tcp"], Transport::Tcp, None);
}

#[test]
#[ignore = "needs GStreamer (run by make test)"]
fn basic_auth_over_tcp() {
    let e = Expect {
        codec: Codec::H264,
        width: 640,
        height: 480,
        fps: 25,
    };
    let extra = [
        "--transport",
        "tcp",
        "--auth",
        "basic",
        "--user",
        "viewer",
        "--password",
        "s3cret:x",
    ];
    stream_and_check(e, &extra, Transport::Tcp, Some(("viewer", "s3cret:x")));
}

#[test]
#[ignore = "needs GStreamer (run by make test)"]
fn digest_auth_over_tcp() {
    let e = Expect {
        codec: Codec::H264,
        width: 640,
        height: 480,
        fps: 25,
    };
    let extra = [
        "--transport",
        "tcp",
        "--auth",
        "digest",
        "--user",
        "viewer",
        "--password",
        "s3cret",
    ];
    stream_and_check(e, &extra, Transport::Tcp, Some(("viewer", "s3cret")));
}

/// Credentials given in the URL instead of the options.
#[test]
#[ignore = "needs GStreamer (run by make test)"]
fn digest_auth_with_credentials_in_url() {
    let e = Expect {
        codec: Codec::H264,
        width: 640,
        height: 480,
        fps: 25,
    };
    let extra = [
        "--transport",
        "tcp",
        "--auth",
        "digest",
        "--user",
        "viewer",
        "--password",
        "s3cret",
    ];
    let Some(server) = start_server(&e, &extra) else {
        return;
    };
    let url = server.url_with_credentials("viewer", "s3cret");
    let run = Running::start(StreamSpec::for_url("gst", &url, Transport::Tcp));
    assert!(wait_for_frames(&run), "status {:?}", run.status.snapshot());
    assert_stream_matches(&run, &e);
    run.stop(STOP_TIMEOUT);
}

/// A wrong password ends in the Error state with a message that says so,
/// and no frame.
fn wrong_password(auth: &str) {
    let e = Expect {
        codec: Codec::H264,
        width: 320,
        height: 240,
        fps: 10,
    };
    let extra = [
        "--transport",
        "tcp",
        "--auth",
        auth,
        "--user",
        "viewer",
        "--password",
        "right",
    ];
    let Some(server) = start_server(&e, &extra) else {
        return;
    };
    let mut spec = StreamSpec::for_url("gst", server.url(), Transport::Tcp);
    spec.session.username = Some("viewer".into());
    spec.session.password = Some("wrong".into());
    let run = Running::start(spec);
    let failed = wait_until(Duration::from_secs(15), || {
        let s = run.status.snapshot();
        s.state == StreamState::Error
            && s.last_error
                .as_deref()
                .is_some_and(|m| m.to_lowercase().contains("authentication"))
    });
    let snap = run.status.snapshot();
    assert!(
        failed,
        "want state Error mentioning authentication: {snap:?}"
    );
    assert_eq!(snap.frames, 0, "{snap:?}");
    assert_eq!(run.recorded().frames, 0);
    run.stop(STOP_TIMEOUT);
}

#[test]
#[ignore = "needs GStreamer (run by make test)"]
fn wrong_password_basic_is_an_authentication_error() {
    wrong_password("basic");
}

#[test]
#[ignore = "needs GStreamer (run by make test)"]
fn wrong_password_digest_is_an_authentication_error() {
    wrong_password("digest");
}

/// The camera dies mid-stream and comes back on the same port: the stream
/// reconnects by itself within 5 s of it being back, and frames flow again,
/// starting with a key frame, after a discontinuity.
#[test]
#[ignore = "needs GStreamer (run by make test)"]
fn reconnects_after_the_server_restarts() {
    let e = Expect {
        codec: Codec::H264,
        width: 640,
        height: 480,
        fps: 25,
    };
    let Some(server) = start_server(&e, &["--transport", "tcp"]) else {
        return;
    };
    let port = server.port().to_string();
    let run = Running::start(StreamSpec::for_url("gst", server.url(), Transport::Tcp));
    assert!(
        wait_until(DELIVER_TIMEOUT, || run.recorded().frames
            >= u64::from(e.fps)),
        "no second of frames before the restart: {:?}",
        run.status.snapshot()
    );

    server.kill();
    let Some(server) = start_server(&e, &["--transport", "tcp", "--port", &port]) else {
        panic!("the server started once but not again");
    };
    let after_restart = run.recorded().frames;
    let back = std::time::Instant::now();
    assert!(
        wait_until(DELIVER_TIMEOUT, || run.recorded().frames > after_restart),
        "no frame after the restart: {:?}",
        run.status.snapshot()
    );
    let first_frame = back.elapsed();
    println!(
        "server restart: first frame {:.2} s after the server was back",
        first_frame.as_secs_f64()
    );
    // Back within 5 s of the camera (the reconnect backoff of a young
    // outage is at most 3 s plus jitter; the encoder's start is the rest).
    assert!(first_frame <= Duration::from_secs(5), "{first_frame:?}");
    let recovered = wait_until(DELIVER_TIMEOUT, || {
        let r = run.recorded();
        run.status.snapshot().reconnects >= 1
            && r.discontinuities >= 1
            && r.frames >= after_restart + u64::from(e.fps)
            && span(r.last_session()) >= WATCH
    });
    let r = run.recorded();
    assert!(
        recovered,
        "no recovery: status {:?}, {} frames ({after_restart} at restart), {} discontinuities",
        run.status.snapshot(),
        r.frames,
        r.discontinuities
    );
    assert!(
        r.sessions().len() >= 2,
        "frames before and after: {:?}",
        r.session_starts
    );
    assert_stream_matches(&run, &e);
    run.stop(STOP_TIMEOUT);
    drop(server);
}

/// The server's stream ends (EOS after 50 frames: GStreamer sends RTCP
/// BYE and keeps the connection open). The session must end at once and
/// reconnect, not wait for the no-data timeout (30 s here).
#[test]
#[ignore = "needs GStreamer (run by make test)"]
fn end_of_stream_reconnects_at_once() {
    let e = Expect {
        codec: Codec::H264,
        width: 640,
        height: 480,
        fps: 25,
    };
    let Some(server) = start_server(&e, &["--transport", "tcp", "--num-buffers", "50"]) else {
        return;
    };
    let mut spec = StreamSpec::for_url("gst", server.url(), Transport::Tcp);
    spec.session.data_timeout = Duration::from_secs(30);
    let run = Running::start(spec);
    assert!(
        wait_until(DELIVER_TIMEOUT, || run.recorded().frames >= 50),
        "no first stream: {:?}",
        run.status.snapshot()
    );
    let ended = std::time::Instant::now();
    // The second session's first frames, well within the 30 s timeout.
    let again = wait_until(Duration::from_secs(15), || {
        run.status.snapshot().reconnects >= 1 && run.recorded().frames >= 60
    });
    let snap = run.status.snapshot();
    assert!(again, "no reconnect after the end of stream: {snap:?}");
    println!(
        "end of stream: frames again {:.2} s after the first stream's last",
        ended.elapsed().as_secs_f64()
    );
    assert!(
        format!("{:?}{:?}", snap.last_error, snap.previous_error).contains("BYE"),
        "the session did not end on RTCP BYE: {snap:?}"
    );
    run.stop(STOP_TIMEOUT);
    drop(server);
}

/// The harness's own checks, so that a failure above is the client's and
/// not a wrong expectation here. These need no GStreamer.
mod harness {
    use super::common::{check_sample, measured_fps, span, Recorded};
    use std::time::Duration;
    use vigil::stream::Codec;

    fn avc(nals: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for n in nals {
            out.extend_from_slice(&(n.len() as u32).to_be_bytes());
            out.extend_from_slice(n);
        }
        out
    }

    #[test]
    fn h264_samples_are_length_prefixed_without_parameter_sets() {
        let idr = avc(&[&[0x06, 1, 2], &[0x65, 0x88, 0x80]]);
        assert_eq!(check_sample(Codec::H264, &idr, true), Ok(()));
        assert!(
            check_sample(Codec::H264, &idr, false).is_err(),
            "IDR not flagged key"
        );
        let p = avc(&[&[0x41, 0x9a]]);
        assert_eq!(check_sample(Codec::H264, &p, false), Ok(()));
        assert!(
            check_sample(Codec::H264, &p, true).is_err(),
            "P flagged key"
        );
        let with_sps = avc(&[&[0x67, 0x42], &[0x65, 0x88]]);
        assert!(check_sample(Codec::H264, &with_sps, true).is_err());
        let with_aud = avc(&[&[0x09, 0xf0], &[0x41, 0x9a]]);
        assert!(check_sample(Codec::H264, &with_aud, false).is_err());
        // Annex B start codes instead of lengths.
        assert!(check_sample(Codec::H264, &[0, 0, 0, 1, 0x65, 0x88], true).is_err());
        let mut truncated = p.clone();
        truncated.pop();
        assert!(check_sample(Codec::H264, &truncated, false).is_err());
        assert!(check_sample(Codec::H264, &[], false).is_err());
    }

    #[test]
    fn h265_key_frames_are_irap_pictures() {
        let idr = avc(&[&[0x28, 0x01, 0xaf]]); // IDR_N_LP (20)
        let cra = avc(&[&[0x2a, 0x01, 0xaf]]); // CRA (21)
        let trail = avc(&[&[0x02, 0x01, 0xd0]]); // TRAIL_R (1)
        assert_eq!(check_sample(Codec::H265, &idr, true), Ok(()));
        assert_eq!(check_sample(Codec::H265, &cra, true), Ok(()));
        assert_eq!(check_sample(Codec::H265, &trail, false), Ok(()));
        assert!(check_sample(Codec::H265, &trail, true).is_err());
        let with_vps = avc(&[&[0x40, 0x01], &[0x28, 0x01]]);
        assert!(check_sample(Codec::H265, &with_vps, true).is_err());
    }

    #[test]
    fn jpeg_samples_are_whole_images() {
        let jpeg = [0xff, 0xd8, 0xff, 0xdb, 0, 0, 0xff, 0xd9];
        assert_eq!(check_sample(Codec::Jpeg, &jpeg, true), Ok(()));
        assert!(check_sample(Codec::Jpeg, &jpeg, false).is_err());
        assert!(check_sample(Codec::Jpeg, &jpeg[..6], true).is_err());
        assert!(check_sample(Codec::Jpeg, &jpeg[2..], true).is_err());
    }

    #[test]
    fn frame_rate_and_span_come_from_90k_timestamps() {
        let ts: Vec<i64> = (0..76).map(|i| 1_000 + i * 3600).collect();
        let fps = measured_fps(&ts).unwrap_or(0.0);
        assert!((fps - 25.0).abs() < 1e-9, "{fps}");
        assert_eq!(span(&ts), Duration::from_secs(3));
        assert_eq!(measured_fps(&ts[..1]), None);
        assert_eq!(span(&[]), Duration::ZERO);
    }

    #[test]
    fn sessions_split_at_discontinuities() {
        let r = Recorded {
            timestamps_90k: vec![0, 3600, 7200, 50, 3650],
            keys: vec![true, false, false, true, false],
            sizes: vec![1; 5],
            session_starts: vec![0, 3, 5],
            ..Recorded::default()
        };
        let s = r.sessions();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].0, &[0, 3600, 7200]);
        assert_eq!(s[1].1, &[true, false]);
        assert_eq!(r.last_session(), &[50, 3650]);
    }
}
