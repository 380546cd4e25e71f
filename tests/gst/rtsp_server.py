#!/usr/bin/python3
"""A real RTSP camera for Vigil's integration tests: GStreamer's RTSP server
(gst-rtsp-server) serving one live test stream on 127.0.0.1.

Run it with Debian's /usr/bin/python3 (the one that can import `gi`); see
scripts/install-test-deps.sh for the packages it needs.

Protocol with the test harness (tests/common/mod.rs), on stdout, one line:
  READY rtsp://127.0.0.1:PORT/PATH    the server listens; PORT is the real
                                      port even when --port 0 was given
  UNSUPPORTED <reason>                this GStreamer lacks what was asked
                                      (an encoder, Digest auth); exit code 3
Anything else goes to stderr. The server runs until SIGTERM or SIGINT, and
also ends when the process that started it dies (PR_SET_PDEATHSIG), so a
killed test run leaves no camera behind.
"""

import argparse
import time
import ctypes
import os
import random
import signal
import sys

EXIT_UNSUPPORTED = 3

try:
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtsp", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtsp, GstRtspServer
except (ImportError, ValueError) as e:
    print(
        f"rtsp_server.py: cannot load GStreamer's Python bindings ({e}); "
        "run scripts/install-test-deps.sh and use /usr/bin/python3",
        file=sys.stderr,
    )
    sys.exit(2)

# Encoders tried in order for each codec; the first one this GStreamer has
# wins. Each entry builds the encoder part of the launch line for one fps.
H264_ENCODERS = [
    (
        "x264enc",
        lambda fps: f"x264enc tune=zerolatency key-int-max={2 * fps} bframes=0 "
        "speed-preset=ultrafast",
    ),
    # openh264 emits no B-frames; gop-size is its key frame interval.
    ("openh264enc", lambda fps: f"openh264enc gop-size={2 * fps} complexity=low"),
]
H265_ENCODERS = [
    (
        "x265enc",
        lambda fps: f"x265enc tune=zerolatency key-int-max={2 * fps} "
        "speed-preset=ultrafast",
    ),
    (
        "svthevcenc",
        lambda fps: f"svthevcenc key-int-max={2 * fps} speed=12 tune=0",
    ),
]


def unsupported(reason):
    print(f"UNSUPPORTED {reason}", flush=True)
    print(f"rtsp_server.py: unsupported: {reason}", file=sys.stderr)
    sys.exit(EXIT_UNSUPPORTED)


def pick_encoder(candidates, codec):
    for name, build in candidates:
        if Gst.ElementFactory.find(name) is not None:
            return build
    names = ", ".join(n for n, _ in candidates)
    unsupported(f"no {codec} encoder (tried {names})")
    return None  # not reached


def launch_line(args):
    src = (
        "videotestsrc is-live=true pattern=ball"
        + (f" num-buffers={args.num_buffers}" if args.num_buffers else "")
        + (" ! valve name=stall" if args.pause_for else "")
        + " ! "
        f"video/x-raw,width={args.width},height={args.height},"
        f"framerate={args.fps}/1"
    )
    if args.codec == "h264":
        enc = pick_encoder(H264_ENCODERS, "H.264")(args.fps)
        tail = "rtph264pay name=pay0 pt=96 config-interval=1"
    elif args.codec == "h265":
        enc = pick_encoder(H265_ENCODERS, "H.265")(args.fps)
        tail = "rtph265pay name=pay0 pt=96 config-interval=1"
    else:
        if Gst.ElementFactory.find("jpegenc") is None:
            unsupported("no JPEG encoder (jpegenc)")
        # RFC 2435 carries only 4:2:0 / 4:2:2 baseline JPEG: force I420.
        src = src.replace("video/x-raw,", "video/x-raw,format=I420,")
        enc = "jpegenc"
        tail = "rtpjpegpay name=pay0 pt=26"
    return f"( {src} ! {enc} ! {tail} )"


def protocols(transport):
    tcp = GstRtsp.RTSPLowerTrans.TCP
    udp = GstRtsp.RTSPLowerTrans.UDP
    return {"tcp": tcp, "udp": udp, "both": tcp | udp}[transport]


def loopback_udp_pool():
    # Without a pool the server binds its RTP/RTCP UDP ports on the any
    # address (IPv4 and IPv6); the tests keep all traffic on 127.0.0.1.
    # A random window makes parallel test servers rarely try the same
    # ports; the server skips to the next pair when a bind fails.
    base = 20000 + 2 * random.randrange(0, 4500)
    pool = GstRtspServer.RTSPAddressPool()
    if not pool.add_range("127.0.0.1", "127.0.0.1", base, base + 999, 0):
        print("rtsp_server.py: cannot set the UDP address pool", file=sys.stderr)
        sys.exit(1)
    return pool


def setup_auth(server, factory, args):
    if args.auth == "none":
        return
    role = "vigil-test"
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, role)
    if args.auth == "basic":
        basic = GstRtspServer.RTSPAuth.make_basic(args.user, args.password)
        auth.add_basic(basic, token)
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.BASIC)
    else:
        # Digest arrived in gst-rtsp-server 1.16.
        if Gst.version() < (1, 16, 0, 0) or not hasattr(auth, "add_digest"):
            unsupported("Digest auth needs gst-rtsp-server >= 1.16")
        auth.add_digest(args.user, args.password, token)
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
    server.set_auth(auth)
    perms = GstRtspServer.RTSPPermissions()
    perms.add_permission_for_role(
        role, GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS, True
    )
    perms.add_permission_for_role(
        role, GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, True
    )
    factory.set_permissions(perms)


def die_with_parent():
    # Linux only; elsewhere the harness's Drop is the only cleanup.
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:
        # The parent died before prctl took effect.
        sys.exit(1)


def schedule_pause(media, args):
    # A camera whose video stalls while its clock runs on: the valve drops
    # every frame for a while; the RTP timestamps jump by the pause.
    valve = media.get_element().get_by_name("stall")

    def close():
        print(f"PAUSE {time.time():.3f}", file=sys.stderr, flush=True)
        valve.set_property("drop", True)
        GLib.timeout_add(int(args.pause_for * 1000), reopen)
        return False

    def reopen():
        print(f"RESUME {time.time():.3f}", file=sys.stderr, flush=True)
        valve.set_property("drop", False)
        return False

    GLib.timeout_add(int(args.pause_at * 1000), close)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--codec", choices=["h264", "h265", "mjpeg"], default="h264")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--fps", type=int, default=25)
    p.add_argument("--auth", choices=["none", "basic", "digest"], default="none")
    p.add_argument("--user", default="user")
    p.add_argument("--password", default="pass")
    p.add_argument("--path", default="/test", help="mount point")
    p.add_argument("--transport", choices=["tcp", "udp", "both"], default="both")
    p.add_argument(
        "--num-buffers",
        type=int,
        default=0,
        help="end of stream after this many frames (0: never); each session anew",
    )
    p.add_argument(
        "--pause-at",
        type=float,
        default=0.0,
        help="seconds into each session at which its video stops (a valve)",
    )
    p.add_argument(
        "--pause-for",
        type=float,
        default=0.0,
        help="seconds the video stays stopped (0: no pause); the clock runs on",
    )
    a = p.parse_args()
    if not 0 <= a.port <= 65535:
        p.error("--port must be 0..65535")
    if a.width <= 0 or a.height <= 0 or a.fps <= 0:
        p.error("--width, --height and --fps must be positive")
    if not a.path.startswith("/"):
        a.path = "/" + a.path
    return a


def main():
    args = parse_args()
    die_with_parent()
    Gst.init(None)

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))

    launch = launch_line(args)
    # The server parses the launch line only when a client arrives; parse it
    # now so a missing element is reported here, not as a client timeout.
    try:
        Gst.parse_launch(launch)
    except GLib.Error as e:
        unsupported(f"cannot build the pipeline {launch!r}: {e.message}")

    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    # One pipeline per client: every session starts on a key frame, and a
    # client that reconnects gets a fresh stream like from a real camera.
    factory.set_shared(False)
    factory.set_protocols(protocols(args.transport))
    factory.set_address_pool(loopback_udp_pool())
    setup_auth(server, factory, args)
    if args.pause_for:
        factory.connect("media-configure", lambda _f, media: schedule_pause(media, args))
    server.get_mount_points().add_factory(args.path, factory)

    if server.attach(None) == 0:
        print(f"rtsp_server.py: cannot listen on 127.0.0.1:{args.port}", file=sys.stderr)
        sys.exit(1)

    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)

    print(f"READY rtsp://127.0.0.1:{server.get_bound_port()}{args.path}", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
