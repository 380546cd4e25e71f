#!/bin/sh
# What `make bench` needs beyond the Rust toolchain: ffmpeg (the baseline
# recorder, and ffprobe to count its frames), valgrind (callgrind's
# instruction counts) and python3 (bench/run.py). Installs only what is
# missing, with apt-get on Debian/Ubuntu (as root, or through sudo).
set -eu
missing=""
command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 || missing="$missing ffmpeg"
command -v valgrind >/dev/null 2>&1 || missing="$missing valgrind"
command -v python3 >/dev/null 2>&1 || missing="$missing python3"
[ -z "$missing" ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
    echo "bench: please install:$missing" >&2
    exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
echo "bench: installing$missing"
$sudo apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing
