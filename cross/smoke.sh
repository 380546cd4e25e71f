#!/bin/sh
# End-to-end smoke of a cross-built Vigil under qemu-user: the built-in
# camera (of the host's build: a board binary leaves the clips out),
# `vigil run` under qemu recording it for SECONDS, `vigil export` of the
# recorded range to .mp4, and ffprobe/ffmpeg checking the file: it decodes
# with no error, and its frame count matches the index.
#
#   cross/smoke.sh BINARY QEMU [SECONDS]
#   e.g. cross/smoke.sh target/mipsel-unknown-linux-musl/embedded/vigil qemu-mipsel-static
#
# Needs ffmpeg (make test-deps installs it) and python3 (for the JSON).
# QEMU may be empty to run a native binary.
set -eu

BIN=$1
QEMU=$2
SECONDS_TO_RECORD=${3:-10}
# The camera: a native build with the built-in camera (cargo's default).
CAMERA=${CAMERA:-target/debug/vigil}

say() { printf 'smoke: %s\n' "$*" >&2; }
fail() { say "FAIL: $*"; [ -n "${work:-}" ] && for f in "$work"/*.log; do say "--- $f"; tail -20 "$f" >&2; done; exit 1; }

[ -x "$BIN" ] || fail "no binary $BIN"
[ -x "$CAMERA" ] || cargo build --quiet || fail "no camera binary $CAMERA"
command -v ffprobe >/dev/null 2>&1 || fail "ffprobe missing (make test-deps)"

work=$(mktemp -d "${TMPDIR:-/tmp}/vigil-smoke.XXXXXX")
cam_pid=
cleanup() {
    [ -n "$cam_pid" ] && kill "$cam_pid" 2>/dev/null && wait "$cam_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

vigil() {
    # shellcheck disable=SC2086
    $QEMU "$BIN" -c "$work/vigil.toml" "$@"
}

# The camera on a free port, which it logs. A board binary has no
# built-in camera (no clips): the host's binary plays the camera.
"$CAMERA" camera --listen 127.0.0.1:0 >"$work/camera.log" 2>&1 &
cam_pid=$!
addr=
i=0
while [ $i -lt 300 ]; do
    addr=$(sed -n 's|.*rtsp://\(127\.0\.0\.1:[0-9]*\).*|\1|p' "$work/camera.log" | head -1)
    [ -n "$addr" ] && break
    kill -0 "$cam_pid" 2>/dev/null || fail "the camera exited"
    sleep 0.1
    i=$((i + 1))
done
[ -n "$addr" ] || fail "the camera did not log its address within 30 s"
say "camera on $addr"

cat >"$work/vigil.toml" <<EOF
[storage]
path = "$work/data"
pool_size_mb = 16
pools = 4

[http]
listen = "127.0.0.1:0"
auth = false

[[camera]]
name = "smoke"
url = "rtsp://$addr/h264/smoke"
EOF

start=$(date +%s)
vigil run --seconds "$SECONDS_TO_RECORD" >"$work/run.log" 2>&1 || fail "vigil run failed"
say "recorded for ${SECONDS_TO_RECORD} s ($(($(date +%s) - start)) s with start-up and shutdown)"

vigil list --camera smoke --json >"$work/list.json" 2>"$work/list.log" || fail "vigil list failed"
set -- $(python3 -c '
import json, sys
rows = json.load(open(sys.argv[1]))
assert rows, "no recordings"
print(min(r["start_90k"] for r in rows) // 90000, -(-max(r["end_90k"] for r in rows) // 90000),
      sum(r["frames"] for r in rows), sum(r["duration_ms"] for r in rows))
' "$work/list.json") || fail "no recordings in the index"
from=$1 to=$2 frames=$3 ms=$4
say "index: $frames frames, $ms ms, unix $from..$to"
[ "$ms" -ge $((SECONDS_TO_RECORD * 1000 / 2)) ] || fail "only $ms ms recorded in ${SECONDS_TO_RECORD} s"

vigil export --camera smoke --start "$from" --end "$to" -o "$work/out.mp4" >"$work/export.log" 2>&1 ||
    fail "vigil export failed"
say "exported $(stat -c %s "$work/out.mp4") bytes"

# Every frame decodes, with nothing at all on the error level.
ffmpeg -nostdin -v error -i "$work/out.mp4" -f null - >"$work/ffmpeg.log" 2>&1 || fail "ffmpeg failed to decode"
[ ! -s "$work/ffmpeg.log" ] || fail "ffmpeg reported decode errors"
probed=$(ffprobe -v error -select_streams v:0 -count_frames \
    -show_entries stream=codec_name,nb_read_frames -of csv=p=0 "$work/out.mp4") ||
    fail "ffprobe failed"
codec=${probed%%,*}
decoded=${probed##*,}
[ "$codec" = h264 ] || fail "codec '$codec', expected h264"
# The export spans whole seconds around the index's range, so it holds the
# indexed frames (an mp4 starts exactly at the start, so a frame or two at
# the edges may be cut): a match within 2 frames.
diff=$((decoded - frames))
[ ${diff#-} -le 2 ] || fail "decoded $decoded frames, the index has $frames"
say "OK: $decoded h264 frames decoded without error (index: $frames)"
