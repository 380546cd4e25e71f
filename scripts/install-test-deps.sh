#!/bin/sh
# Installs the Debian 12 packages Vigil's real-peer tests need: ffmpeg
# (ffprobe), GStreamer with its RTSP server and Python bindings, which
# tests/gst/rtsp_server.py uses as a camera, and Chromium with its
# WebDriver server, which tests/browser.rs drives to test the page.
#
# Idempotent: installs only the packages that are missing, and runs
# `apt-get update` at most once, only when something is missing. Needs root
# for that (CI runs as root); with nothing missing it runs as anyone.
set -eu

PACKAGES="ffmpeg
gstreamer1.0-tools
gstreamer1.0-plugins-base
gstreamer1.0-plugins-good
gstreamer1.0-plugins-bad
gstreamer1.0-plugins-ugly
gstreamer1.0-libav
gir1.2-gst-rtsp-server-1.0
gir1.2-gstreamer-1.0
python3-gi
chromium
chromium-driver"

# The server must run under Debian's Python: a python3 earlier on PATH
# (pyenv, venv) cannot import the python3-gi package.
PYTHON=/usr/bin/python3

say() {
    printf 'install-test-deps: %s\n' "$*"
}

if ! command -v dpkg >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    say "this script needs a Debian-based system (dpkg and apt-get); install the equivalents of: $(echo $PACKAGES)" >&2
    exit 1
fi

installed() {
    # `dpkg -s` also succeeds for removed-but-configured packages; require
    # the "install ok installed" status.
    dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed$'
}

missing=""
for p in $PACKAGES; do
    if installed "$p"; then
        say "$p: already installed"
    else
        say "$p: missing"
        missing="$missing $p"
    fi
done

if [ -n "$missing" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        say "missing packages:$missing" >&2
        say "run this script as root (e.g. sudo $0) to install them" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    say "apt-get update"
    apt-get update -q
    say "apt-get install:$missing"
    # $missing is a list of package names from the fixed list above.
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $missing
else
    say "all packages present; nothing to install"
fi

say "checking $PYTHON can load GStreamer's RTSP server bindings"
if ! "$PYTHON" -c 'import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gst, GstRtspServer' 2>/dev/null; then
    say "$PYTHON cannot import gi / GstRtspServer; check python3-gi and gir1.2-gst-rtsp-server-1.0" >&2
    exit 1
fi

for e in videotestsrc x264enc x265enc jpegenc rtph264pay rtph265pay rtpjpegpay; do
    if gst-inspect-1.0 --exists "$e"; then
        say "GStreamer element $e: present"
    else
        say "GStreamer element $e: absent (tests needing it will report it)"
    fi
done
for b in chromium chromedriver; do
    if command -v "$b" >/dev/null 2>&1; then
        say "$b: $("$b" --version 2>/dev/null | head -n 1)"
    else
        say "$b: not on PATH (tests/browser.rs will report it)"
    fi
done
say "done"
