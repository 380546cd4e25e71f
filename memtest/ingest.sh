#!/usr/bin/env bash
# Ingest measurement: CPU and memory of `vigil run` receiving N streams of
# the built-in camera, which runs in its own process so that only the
# recorder is measured. Prints one line of numbers per run.
#
#   memtest/ingest.sh [N_STREAMS] [SECONDS] [KBPS] [TRANSPORT] [CLIP]
#   defaults:          8           30        2000   tcp         h264
#
# The full memory harness (hard caps, viewers, budgets) comes with the
# embedded issue; this is its first part.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-8}
secs=${2:-30}
kbps=${3:-2000}
transport=${4:-tcp}
clip=${5:-h264}
bin=${VIGIL_BIN:-target/release/vigil}
[ -x "$bin" ] || cargo build --release --quiet
tmp=$(mktemp -d)
cleanup() { kill "${cam:-}" "${rec:-}" 2>/dev/null || true; wait 2>/dev/null || true; [ -n "${KEEP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"; }
trap cleanup EXIT

"$bin" camera --listen 127.0.0.1:0 --bitrate-kbps "$kbps" 2>"$tmp/camera.log" &
cam=$!
addr=""
for _ in $(seq 100); do
  addr=$(grep -o 'rtsp://[0-9.:]*' "$tmp/camera.log" | head -n 1 || true)
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { echo "ingest: the built-in camera did not start" >&2; cat "$tmp/camera.log" >&2; exit 1; }

{
  echo "[storage]"; echo "path = \"$tmp/data\""
  echo "[system]"; echo "stream_start_spacing_ms = 50"
  for i in $(seq "$n"); do
    echo "[[camera]]"; echo "name = \"cam$i\""; echo "url = \"$addr/$clip/cam$i\""
    echo "transport = \"$transport\""
  done
} >"$tmp/vigil.toml"

"$bin" -c "$tmp/vigil.toml" run --seconds "$secs" 2>"$tmp/run.log" &
rec=$!
hz=$(getconf CLK_TCK)
peak=0; samples=(); cpu_ticks=0
while kill -0 "$rec" 2>/dev/null; do
  if [ -r "/proc/$rec/status" ]; then
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$rec/status" 2>/dev/null || echo 0)
    hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$rec/status" 2>/dev/null || echo 0)
    t=$(awk '{print $14 + $15}' "/proc/$rec/stat" 2>/dev/null || echo "$cpu_ticks")
    [ -n "$rss" ] && samples+=("$rss")
    [ -n "$hwm" ] && [ "$hwm" -gt "$peak" ] && peak=$hwm
    [ -n "$t" ] && cpu_ticks=$t
  fi
  sleep 0.5
done
wait "$rec" || true
# Steady RSS: the median of the second half of the samples.
half=$(( ${#samples[@]} / 2 ))
steady=$(printf '%s\n' "${samples[@]:$half}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
frames=$(grep -o '[0-9]\+ frames (' "$tmp/run.log" | tail -n "$n" | awk '{s+=$1} END {print s+0}')
lost=$(grep -o '[0-9]\+ lost packets' "$tmp/run.log" | tail -n "$n" | awk '{s+=$1} END {print s+0}')
dropped=$(grep -o '[0-9]\+ dropped frames' "$tmp/run.log" | tail -n "$n" | awk '{s+=$1} END {print s+0}')
cpu=$(awk -v t="$cpu_ticks" -v hz="$hz" 'BEGIN {printf "%.2f", t / hz}')
pct=$(awk -v t="$cpu_ticks" -v hz="$hz" -v s="$secs" 'BEGIN {printf "%.1f", 100 * t / hz / s}')
echo "ingest: streams=$n clip=$clip transport=$transport kbps=$kbps seconds=$secs" \
     "cpu_s=$cpu cpu_pct=$pct peak_rss_kib=$peak steady_rss_kib=${steady:-0}" \
     "frames=$frames lost_packets=$lost dropped_frames=$dropped"
