#!/bin/sh
# Regenerates the clips of the built-in simulated camera (src/camera/clips/).
#
# The clips are committed and embedded in the binary with include_bytes!, so
# this only needs to run when their format changes; it needs ffmpeg built
# with libx264 and libx265. After running it, check that CLIPS in
# src/camera/clip.rs still matches (frame counts, fps, size) and that all
# three together stay under 1 MiB (the binary carries them).
#
#   h264.264   H.264 main profile, 640x360, 25 fps, 100 frames, no B-frames,
#              GOP 50, Annex B; SPS/PPS before every IDR.
#   h265.265   H.265 main profile, 640x360, 25 fps, 100 frames, no B-frames,
#              GOP 50, Annex B; VPS/SPS/PPS before every IRAP.
#   mjpeg.mjpeg Baseline JPEG 4:2:0 with the standard Huffman tables (what
#              RFC 2435 type 1 can carry), 640x360, 10 fps, 30 frames,
#              concatenated.
set -eu

out="$(cd "$(dirname "$0")/.." && pwd)/src/camera/clips"
mkdir -p "$out"

# A moving test pattern with the codec name and frame number drawn on it, so
# every frame visibly differs and a looped clip shows its seam. drawtext
# needs a font; without one, testsrc's own counter still changes per frame.
font=""
for f in /usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf \
    /usr/share/fonts/TTF/DejaVuSans-Bold.ttf; do
    if [ -f "$f" ]; then font="$f"; break; fi
done
src() { # $1 = label, $2 = fps, $3 = seconds, $4 = extra filters
    if [ -n "$font" ]; then
        text="drawtext=fontfile=$font:text='vigil $1 %{frame_num}':x=20:y=300:fontsize=36:fontcolor=white:box=1:boxcolor=black@0.6"
        echo "testsrc=size=640x360:rate=$2:duration=$3,format=yuv420p$4,$text"
    else
        echo "testsrc=size=640x360:rate=$2:duration=$3,format=yuv420p$4"
    fi
}

# Mild temporal noise, like a real sensor's, so the H.26x encoders spend a
# realistic ~400-500 kbit/s instead of almost nothing on a static pattern.
noise=",noise=alls=6:allf=t"

ff() { ffmpeg -hide_banner -loglevel error -y "$@"; }

ff -f lavfi -i "$(src h264 25 4 "$noise")" -frames:v 100 \
    -c:v libx264 -profile:v main -preset medium -tune zerolatency \
    -bf 0 -g 50 -keyint_min 50 -sc_threshold 0 \
    -b:v 450k -maxrate 500k -bufsize 500k \
    -x264-params "repeat-headers=1:aud=0" \
    -bsf:v h264_mp4toannexb -f h264 "$out/h264.264"

ff -f lavfi -i "$(src h265 25 4 "$noise")" -frames:v 100 \
    -c:v libx265 -profile:v main -preset medium \
    -b:v 400k \
    -x265-params "log-level=error:bframes=0:keyint=50:min-keyint=50:scenecut=0:open-gop=0:repeat-headers=1:aud=0" \
    -f hevc "$out/h265.265"

ff -f lavfi -i "$(src mjpeg 10 3 "")" -frames:v 30 \
    -c:v mjpeg -pix_fmt yuvj420p -q:v 8 -huffman default \
    -f mjpeg "$out/mjpeg.mjpeg"

ls -l "$out"
total=$(cat "$out"/h264.264 "$out"/h265.265 "$out"/mjpeg.mjpeg | wc -c)
echo "total: $total bytes"
if [ "$total" -gt 1048576 ]; then
    echo "make-clips: clips exceed 1 MiB" >&2
    exit 1
fi
