#!/usr/bin/env bash
# The memory harness: runs the release `vigil run` against simulated
# cameras (the built-in camera, `vigil camera`, in a process of its own so
# that only the recorder is measured and capped), with live viewers
# attached, under a hard memory cap on the vigil process alone, and checks
# the budgets of the embedded issue. One line of numbers per scenario,
# PASS or FAIL; the exit status is 1 when any budget is missed.
#
#   memtest/memtest.sh [SCENARIO...]     idle load soak cap (default: all)
#   QUICK=1   the soak lasts 60 s instead of 10 min
#   KEEP=1    keep the scratch directory (configs, logs, samples)
#   MJPEG=0   the second viewer of load/soak reads live.mp4, not mjpeg
#   VIGIL_BIN the binary (default target/release/vigil, built if missing)
#
# Scenarios and budgets:
#   idle  config loaded, no cameras                        RSS   <= 6 MiB
#   load  4 cameras, 2 Mbit/s main + 0.5 Mbit/s sub, both
#         recorded, 2 live viewers (live.mp4 main, mjpeg sub) peak <= 24 MiB
#   soak  load for 10 min: growth = mean RSS of the last minute less the
#         mean RSS of the minute after a 1-minute warm-up   <= 256 KiB
#   cap   8 streams of 2 Mbit/s recorded under a 32 MiB hard cap, 2 live
#         viewers: frames keep increasing in every 10 s interval and for
#         every stream, drops counted, never killed (process alive, no OOM
#         kill in the cgroup)
#
# The cap: a cgroup v2 child with memory.max when the memory controller is
# available there, else a cgroup v1 child with memory.limit_in_bytes (and
# memsw), else RLIMIT_AS (`ulimit -v`), which caps address space, not
# memory, and is a weaker stand-in: the line says which was used. RSS is
# sampled from /proc/PID/status (VmRSS, VmHWM) every half second; frames,
# drops and arena use come from /metrics and /api/status.
set -euo pipefail
cd "$(dirname "$0")/.."

# The binary measured: by default a static release build for this machine,
# as the boards run (static musl); a dynamically linked glibc binary
# carries about 1.8 MiB more of shared libraries (libstdc++, libc, libm,
# ld.so) mapped in. VIGIL_BIN=target/release/vigil measures that one.
host=$(rustc -vV | sed -n 's/^host: //p')
if [ -z "${VIGIL_BIN:-}" ]; then
  RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --quiet --target "$host"
  bin=target/$host/release/vigil
else
  bin=$VIGIL_BIN
fi
[ -x "$bin" ] || { echo "memtest: no binary $bin" >&2; exit 1; }
if readelf -l "$bin" 2>/dev/null | grep -q 'INTERP'; then link=dynamic; else link=static; fi
echo "memtest: $bin ($link)"
[ $# -gt 0 ] || set -- idle load soak cap
command -v curl >/dev/null || { echo "memtest: curl is needed" >&2; exit 1; }

kib=1024
idle_budget=$((6 * kib))        # KiB
load_budget=$((24 * kib))       # KiB
growth_budget=256               # KiB
cap_mb=32
if [ -n "${QUICK:-}" ]; then
  soak_secs=60; warm_secs=15; window_secs=15
else
  soak_secs=600; warm_secs=60; window_secs=60
fi

tmp=$(mktemp -d /tmp/vigil-memtest.XXXXXX)
cgdir=""
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "$cgdir" ] && rmdir "$cgdir" 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then echo "memtest: kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

# --- the hard cap ------------------------------------------------------

# Makes a child cgroup of our own with the given limit (MiB) and prints
# "v2 DIR" or "v1 DIR"; prints "rlimit" when neither can be used.
make_cap() {
  local mb=$1 bytes=$(($1 * 1024 * 1024)) base rel d
  if [ -r /sys/fs/cgroup/cgroup.controllers ] \
     && grep -qw memory /sys/fs/cgroup/cgroup.controllers; then
    rel=$(awk -F: '$1 == "0" {print $3}' /proc/self/cgroup)
    base=/sys/fs/cgroup${rel%/}
    d="$base/vigil-memtest-$$-$mb"
    if grep -qw memory "$base/cgroup.subtree_control" 2>/dev/null \
       && mkdir "$d" 2>/dev/null; then
      if echo "$bytes" >"$d/memory.max" 2>/dev/null; then
        echo 0 >"$d/memory.swap.max" 2>/dev/null || true
        echo "v2 $d"; return
      fi
      rmdir "$d" 2>/dev/null || true
    fi
  fi
  rel=$(awk -F: '$2 == "memory" {print $3}' /proc/self/cgroup)
  base=/sys/fs/cgroup/memory${rel%/}
  d="$base/vigil-memtest-$$-$mb"
  if [ -n "$rel" ] && [ -w "$base" ] && mkdir "$d" 2>/dev/null; then
    if echo "$bytes" >"$d/memory.limit_in_bytes" 2>/dev/null; then
      # No swapping out of the cap either, where there is swap and it is
      # accounted. (Only then: with a memsw limit this kernel stopped
      # counting failcnt.)
      if [ "$(wc -l </proc/swaps)" -gt 1 ]; then
        echo "$bytes" >"$d/memory.memsw.limit_in_bytes" 2>/dev/null || true
      fi
      echo "v1 $d"; return
    fi
    rmdir "$d" 2>/dev/null || true
  fi
  echo rlimit
}

# OOM kills, limit hits and the peak charge (KiB; page cache included) of
# a cap: "oom_kills failcnt peak_kib".
cap_counters() {
  local kind=$1 d=$2 k p
  case $kind in
    v2) p=$(cat "$d/memory.peak" 2>/dev/null || echo 0)
        echo "$(awk '$1 == "oom_kill" {print $2}' "$d/memory.events" 2>/dev/null || echo 0)" \
             "$(awk '$1 == "max" {print $2}' "$d/memory.events" 2>/dev/null || echo 0)" $((p / 1024)) ;;
    v1) k=$(awk '$1 == "oom_kill" {print $2}' "$d/memory.oom_control" 2>/dev/null || true)
        # Kernels before 4.13 have no oom_kill line: under_oom is the sign.
        [ -n "$k" ] || k=$(awk '$1 == "under_oom" {print $2}' "$d/memory.oom_control" 2>/dev/null || echo 0)
        p=$(cat "$d/memory.max_usage_in_bytes" 2>/dev/null || echo 0)
        # With swap accounted, the memory+swap counter is charged first and
        # is the one whose limit is hit.
        echo "${k:-0}" $(( $(cat "$d/memory.failcnt" 2>/dev/null || echo 0) \
                         + $(cat "$d/memory.memsw.failcnt" 2>/dev/null || echo 0) )) $((p / 1024)) ;;
    *) echo "0 0 -" ;;
  esac
}

# --- the camera and the recorder ----------------------------------------

cam_addr=""
start_camera() {
  "$bin" camera --listen 127.0.0.1:0 2>"$tmp/camera.log" &
  pids+=($!)
  for _ in $(seq 100); do
    cam_addr=$(grep -o 'rtsp://[0-9.:]*' "$tmp/camera.log" | head -n 1 || true)
    [ -n "$cam_addr" ] && return
    sleep 0.1
  done
  echo "memtest: the built-in camera did not start" >&2; cat "$tmp/camera.log" >&2; exit 1
}

# write_config NAME CAMERAS SUB(0|1): a config with CAMERAS cameras, each a
# 2 Mbit/s main stream and, with SUB, a 0.5 Mbit/s sub stream, all recorded.
write_config() {
  local name=$1 n=$2 sub=$3 i
  {
    echo "[storage]"; echo "path = \"$tmp/$name-data\""
    echo "pool_size_mb = 16"; echo "pools = 8"
    echo "[http]"; echo "listen = \"127.0.0.1:0\""; echo "auth = false"
    echo "[system]"; echo "stream_start_spacing_ms = 100"
    for i in $(seq "$n"); do
      echo "[[camera]]"; echo "name = \"cam$i\""
      echo "url = \"$cam_addr/h264/$name-cam$i/kbps=2000\""
      if [ "$sub" = 1 ]; then
        echo "sub_url = \"$cam_addr/h264/$name-cam$i-sub/kbps=500\""
        echo "record = \"both\""
      fi
    done
  } >"$tmp/$name.toml"
}

rec=""; http=""; cap_kind=""; cap_dir=""
# start_vigil NAME SECONDS CAP_MB: `vigil run` in its own capped cgroup.
start_vigil() {
  local name=$1 secs=$2 mb=$3 cap
  cap=$(make_cap "$mb")
  cap_kind=${cap%% *}; cap_dir=""
  [ "$cap_kind" = rlimit ] || { cap_dir=${cap#* }; cgdir=$cap_dir; }
  # The child joins the cgroup (or sets the rlimit) and then becomes vigil,
  # so nothing else is counted against the cap.
  if [ "$cap_kind" = rlimit ]; then
    # Address space, not memory: threads' stacks and allocator arenas
    # reserve far more than they touch, so RLIMIT_AS gets room on top.
    (ulimit -v $(((mb + 512) * 1024)); exec "$bin" -c "$tmp/$name.toml" run --seconds "$secs") \
      2>"$tmp/$name.log" &
  else
    (echo "$BASHPID" >"$cap_dir/cgroup.procs"; exec "$bin" -c "$tmp/$name.toml" run --seconds "$secs") \
      2>"$tmp/$name.log" &
  fi
  rec=$!; pids+=("$rec")
  http=""
  for _ in $(seq 100); do
    http=$(sed -n 's/.*http: listening on \([0-9.:]*\).*/\1/p' "$tmp/$name.log" | head -n 1)
    [ -n "$http" ] && break
    kill -0 "$rec" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$http" ] || { echo "memtest: vigil did not start ($name)" >&2; cat "$tmp/$name.log" >&2; exit 1; }
}

stop_vigil() {
  kill -TERM "$rec" 2>/dev/null || true
  wait "$rec" 2>/dev/null || true
  if [ -n "$cap_dir" ]; then rmdir "$cap_dir" 2>/dev/null || true; fi
  cgdir=""
}

# Sums of the per-stream counters of /metrics: "frames dropped".
counters() {
  curl -s --max-time 5 "http://$http/metrics" | awk '
    /^vigil_stream_frames_total\{/ {f += $2}
    /^vigil_stream_frames_dropped_total\{/ {d += $2}
    END {print f + 0, d + 0}'
}

# Frames per stream from /metrics, "cam1/main=123 ..." sorted.
stream_frames() {
  curl -s --max-time 5 "http://$http/metrics" \
    | sed -n 's/^vigil_stream_frames_total{camera="\([^"]*\)",stream="\([^"]*\)"} \([0-9]*\)$/\1\/\2 \3/p' | sort
}

# Arena size and the bytes its rings hold now: "size used" (used is "-"
# when the status does not report it).
arena() {
  local s
  s=$(curl -s --max-time 5 "http://$http/api/status")
  echo "$(grep -o '"arena_bytes":[0-9]*' <<<"$s" | cut -d: -f2 || echo 0)" \
       "$(grep -o '"arena_used_bytes":[0-9]*' <<<"$s" | cut -d: -f2 || echo -)"
}

# Samples "seconds rss_kib" every half second into FILE for SECONDS, or
# until vigil ends; keeps the highest VmHWM in $peak and the highest arena
# use in $arena_peak (KiB).
peak=0; arena_peak=0
sample() {
  local file=$1 secs=$2 t0 now rss hwm a n=0
  t0=$(date +%s.%N)
  : >"$file"
  while kill -0 "$rec" 2>/dev/null; do
    now=$(date +%s.%N)
    awk -v a="$now" -v b="$t0" -v s="$secs" 'BEGIN {exit !(a - b >= s)}' && break
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$rec/status" 2>/dev/null || true)
    hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$rec/status" 2>/dev/null || true)
    [ -n "$rss" ] && awk -v a="$now" -v b="$t0" -v r="$rss" 'BEGIN {printf "%.1f %d\n", a - b, r}' >>"$file"
    [ -n "$hwm" ] && [ "$hwm" -gt "$peak" ] && peak=$hwm
    # Arena use every 5 s: the status costs the server a little.
    if [ $((n % 10)) = 0 ]; then
      a=$(arena | awk '$2 != "-" {print int($2 / 1024)}')
      [ -n "$a" ] && [ "$a" -gt "$arena_peak" ] && arena_peak=$a
    fi
    n=$((n + 1))
    sleep 0.5
  done
}

# Mean RSS (KiB) of the samples with FROM <= t < TO.
mean_rss() {
  awk -v a="$2" -v b="$3" '$1 >= a && $1 < b {s += $2; n++} END {printf "%d", n ? s / n : 0}' "$1"
}

# viewer NAME URL SECONDS: an HTTP client reading a live stream; its byte
# count is in $tmp/NAME.bytes when it ends.
viewer() {
  (curl -s -N --max-time "$3" -o /dev/null -w '%{size_download}' "$2" >"$tmp/$1.bytes" 2>/dev/null || true) &
  pids+=($!)
}

wait_streaming() {
  local want=$1
  for _ in $(seq 100); do
    [ "$(curl -s --max-time 5 "http://$http/metrics" | grep -c '^vigil_stream_up{.*} 1$' || true)" -ge "$want" ] && return
    sleep 0.2
  done
  echo "memtest: only some streams are up" >&2
}

fail=0
verdict() { if [ "$1" = 1 ]; then echo PASS; else fail=1; echo FAIL; fi; }

# --- scenarios ---------------------------------------------------------

scenario_idle() {
  write_config idle 0 0
  peak=0; arena_peak=0
  start_vigil idle 30 64
  sample "$tmp/idle.rss" 10
  local steady; steady=$(mean_rss "$tmp/idle.rss" 5 10)
  read -r asize _ < <(arena)
  stop_vigil
  echo "memtest idle: cameras=0 cap=$cap_kind:64MiB peak_rss_kib=$peak steady_rss_kib=$steady" \
       "budget_kib=$idle_budget arena_bytes=$asize" \
       "$(verdict "$([ "$peak" -le "$idle_budget" ] && echo 1 || echo 0)")"
}

# The load: 4 cameras (main + sub) and 2 viewers for SECONDS; sets $f0 $d0
# $f1 $d1 (frames and drops at the start and end) and the samples file.
run_load() {
  local name=$1 secs=$2
  write_config "$name" 4 1
  peak=0; arena_peak=0
  start_vigil "$name" $((secs + 60)) 64
  wait_streaming 8
  viewer "$name-live" "http://$http/api/cameras/cam1/live.mp4?stream=main" "$secs"
  if [ "${MJPEG:-1}" = 0 ]; then
    viewer "$name-mjpeg" "http://$http/api/cameras/cam2/live.mp4?stream=sub" "$secs"
  else
    viewer "$name-mjpeg" "http://$http/api/cameras/cam2/mjpeg?stream=sub" "$secs"
  fi
  read -r f0 d0 < <(counters)
  sample "$tmp/$name.rss" "$secs"
  read -r f1 d1 < <(counters)
  read -r asize aused < <(arena)
  alive=$(kill -0 "$rec" 2>/dev/null && echo 1 || echo 0)
  stop_vigil
  wait "${pids[@]: -2}" 2>/dev/null || true
  vbytes="$(cat "$tmp/$name-live.bytes" 2>/dev/null || echo 0)/$(cat "$tmp/$name-mjpeg.bytes" 2>/dev/null || echo 0)"
}

scenario_load() {
  run_load load 45
  local steady; steady=$(mean_rss "$tmp/load.rss" 20 45)
  local ok=1
  [ "$peak" -le "$load_budget" ] || ok=0
  [ "$alive" = 1 ] && [ $((f1 - f0)) -gt 0 ] || ok=0
  echo "memtest load: streams=8 kbps=2000+500 viewers=2 cap=$cap_kind:64MiB peak_rss_kib=$peak" \
       "steady_rss_kib=$steady budget_kib=$load_budget arena_bytes=$asize arena_used_peak_kib=$arena_peak" \
       "frames=$((f1 - f0)) dropped=$((d1 - d0)) viewer_bytes=$vbytes $(verdict $ok)"
}

scenario_soak() {
  run_load soak "$soak_secs"
  local first last growth ok=1
  first=$(mean_rss "$tmp/soak.rss" "$warm_secs" $((warm_secs + window_secs)))
  last=$(mean_rss "$tmp/soak.rss" $((soak_secs - window_secs)) "$soak_secs")
  growth=$((last - first))
  [ "$growth" -le "$growth_budget" ] || ok=0
  [ "$alive" = 1 ] && [ $((f1 - f0)) -gt 0 ] || ok=0
  echo "memtest soak: streams=8 viewers=2 seconds=$soak_secs cap=$cap_kind:64MiB peak_rss_kib=$peak" \
       "first_window_kib=$first last_window_kib=$last growth_kib=$growth budget_kib=$growth_budget" \
       "arena_used_peak_kib=$arena_peak frames=$((f1 - f0)) dropped=$((d1 - d0)) viewer_bytes=$vbytes $(verdict $ok)"
}

scenario_cap() {
  local secs=60 step=10 i ok=1 prev cur f d stalled=0 before after
  write_config cap 8 0
  peak=0; arena_peak=0
  start_vigil cap $((secs + 60)) "$cap_mb"
  wait_streaming 8
  viewer cap-live "http://$http/api/cameras/cam1/live.mp4?stream=main" "$secs"
  viewer cap-mjpeg "http://$http/api/cameras/cam2/mjpeg?stream=main" "$secs"
  read -r f0 d0 < <(counters)
  before=$(stream_frames)
  prev=$f0
  for i in $(seq $((secs / step))); do
    sample "$tmp/cap-$i.rss" "$step"
    read -r cur d < <(counters)
    # Frames keep increasing: every interval records some.
    [ "${cur:-0}" -gt "$prev" ] || stalled=$((stalled + 1))
    prev=${cur:-$prev}
  done
  after=$(stream_frames)
  read -r f1 d1 < <(counters)
  read -r asize aused < <(arena)
  alive=$(kill -0 "$rec" 2>/dev/null && echo 1 || echo 0)
  read -r ooms hits cg_peak < <(cap_counters "$cap_kind" "$cap_dir")
  # Every stream recorded during the run.
  local idle_streams
  idle_streams=$(join <(echo "$before") <(echo "$after") | awk '$3 <= $2' | wc -l)
  cat "$tmp"/cap-*.rss >"$tmp/cap.rss"
  local steady; steady=$(awk '{s += $2; n++} END {printf "%d", n ? s / n : 0}' "$tmp/cap.rss")
  stop_vigil
  [ "$alive" = 1 ] && [ "$ooms" = 0 ] && [ "$stalled" = 0 ] && [ "$idle_streams" = 0 ] || ok=0
  echo "memtest cap: streams=8 kbps=2000 viewers=2 cap=$cap_kind:${cap_mb}MiB peak_rss_kib=$peak" \
       "mean_rss_kib=$steady arena_bytes=$asize arena_used_peak_kib=$arena_peak" \
       "frames=$((f1 - f0)) dropped=$((d1 - d0)) stalled_intervals=$stalled idle_streams=$idle_streams" \
       "alive=$alive oom_kills=$ooms limit_hits=$hits cgroup_peak_kib=$cg_peak $(verdict $ok)"
}

start_camera
for s in "$@"; do
  case $s in
    idle|load|soak|cap) "scenario_$s" ;;
    *) echo "memtest: unknown scenario $s (idle load soak cap)" >&2; exit 2 ;;
  esac
done
exit $fail
