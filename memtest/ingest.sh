#!/usr/bin/env bash
# Ingest measurement: CPU and memory of `vigil run` recording N streams of
# the built-in camera, which runs in its own process so that only the
# recorder is measured; and what recording costs the disk: bytes written
# per byte of video (pools, database and WAL together, from /proc/PID/io),
# index bytes per recorded hour, and the writer thread's CPU. Prints one
# line of numbers per run.
#
#   memtest/ingest.sh [N_STREAMS] [SECONDS] [KBPS] [TRANSPORT] [CLIP]
#   defaults:          8           30        2000   tcp         h264
#
# The memory harness with hard caps, viewers and budgets is
# memtest/memtest.sh (`make memtest`).
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
  echo "pool_size_mb = 64"; echo "pools = 8"
  echo "[system]"; echo "stream_start_spacing_ms = 50"
  for i in $(seq "$n"); do
    echo "[[camera]]"; echo "name = \"cam$i\""; echo "url = \"$addr/$clip/cam$i\""
    echo "transport = \"$transport\""
  done
} >"$tmp/vigil.toml"

"$bin" -c "$tmp/vigil.toml" run --seconds "$secs" 2>"$tmp/run.log" &
rec=$!
hz=$(getconf CLK_TCK)
peak=0; samples=(); cpu_ticks=0; wchar=0; wbytes=0; writer_ticks=0
while kill -0 "$rec" 2>/dev/null; do
  if [ -r "/proc/$rec/status" ]; then
    io=$(cat "/proc/$rec/io" 2>/dev/null || true)
    w=$(echo "$io" | awk '/^wchar:/ {print $2}'); [ -n "$w" ] && wchar=$w
    w=$(echo "$io" | awk '/^write_bytes:/ {print $2}'); [ -n "$w" ] && wbytes=$w
    for t in /proc/$rec/task/*; do
      if [ "$(cat "$t/comm" 2>/dev/null)" = writer ]; then
        w=$(awk '{print $14 + $15}' "$t/stat" 2>/dev/null || true); [ -n "$w" ] && writer_ticks=$w
      fi
    done
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
video=$("$bin" -c "$tmp/vigil.toml" status --json 2>/dev/null | grep -o '"bytes_used":[0-9]*' | cut -d: -f2)
video=${video:-0}
index=$(cat "$tmp/data/vigil.db" "$tmp/data/vigil.db-wal" 2>/dev/null | wc -c)
# The process reports its own /proc/self/io when the writer stops.
amp=$(grep -o 'per byte of video' -B0 "$tmp/run.log" >/dev/null && sed -n 's/.*wrote [0-9]* bytes (\([0-9.]*\) per byte of video).*/\1/p' "$tmp/run.log" | tail -n 1)
amp_disk=$(sed -n 's/.*to storage (\([0-9.]*\)).*/\1/p' "$tmp/run.log" | tail -n 1)
wchar=$(sed -n 's/.*the process wrote \([0-9]*\) bytes.*/\1/p' "$tmp/run.log" | tail -n 1)
# Index growth: the database now, less an empty one's size.
"$bin" init --data "$tmp/empty" >/dev/null 2>&1 || true
empty=$(cat "$tmp/empty/vigil.db" 2>/dev/null | wc -c)
index_per_hour=$(awk -v i="$index" -v e="$empty" -v n="$n" -v s="$secs" 'BEGIN {printf "%.0f", (i - e) / (n * s / 3600)}')
writer_cpu=$(awk -v t="$writer_ticks" -v hz="$hz" -v s="$secs" 'BEGIN {printf "%.2f", 100 * t / hz / s}')
cpu=$(awk -v t="$cpu_ticks" -v hz="$hz" 'BEGIN {printf "%.2f", t / hz}')
pct=$(awk -v t="$cpu_ticks" -v hz="$hz" -v s="$secs" 'BEGIN {printf "%.1f", 100 * t / hz / s}')
echo "ingest: streams=$n clip=$clip transport=$transport kbps=$kbps seconds=$secs" \
     "cpu_s=$cpu cpu_pct=$pct peak_rss_kib=$peak steady_rss_kib=${steady:-0}" \
     "frames=$frames lost_packets=$lost dropped_frames=$dropped" \
     "video_bytes=$video written_bytes=$wchar write_amplification=$amp disk_write_amplification=$amp_disk" \
     "index_bytes=$index index_bytes_per_stream_hour=$index_per_hour writer_cpu_pct=$writer_cpu"
