#!/bin/sh
# Checks that a cross-built Vigil decodes H.264 like the native one:
# runs `vigil demo` natively and under qemu side by side, fetches
# snapshot.jpg of the built-in camera's H.264 stream from both every 0.5 s
# for SECONDS, and compares the JPEGs. The camera loops one clip, so the
# same key frame must give the same bytes; which key frames each one
# catches depends on timing, so it compares the sets (some must be shared,
# and everything shared must be identical, by construction of the check:
# it prints the digests of each side).
#
#   cross/snapshots.sh NATIVE-BINARY CROSS-BINARY QEMU [SECONDS]
set -eu

NATIVE=$1
CROSS=$2
QEMU=$3
SECS=${4:-30}

work=$(mktemp -d "${TMPDIR:-/tmp}/vigil-snap.XXXXXX")
pids=
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
pn=$(port)
pc=$(port)
"$NATIVE" -q demo --data "$work/n" --listen "127.0.0.1:$pn" --seconds $((SECS + 20)) >"$work/n.log" 2>&1 &
pids="$pids $!"
$QEMU "$CROSS" -q demo --data "$work/c" --listen "127.0.0.1:$pc" --seconds $((SECS + 20)) >"$work/c.log" 2>&1 &
pids="$pids $!"
mkdir -p "$work/jn" "$work/jc"
i=0
end=$(($(date +%s) + SECS + 5))
while [ "$(date +%s)" -lt "$end" ]; do
    for side in n c; do
        p=$pn && [ $side = c ] && p=$pc
        curl -sf -m 10 -o "$work/j$side/$i.jpg" \
            "http://127.0.0.1:$p/api/cameras/demo/snapshot.jpg?stream=main" || rm -f "$work/j$side/$i.jpg"
    done
    i=$((i + 1))
    sleep 0.5
done
(cd "$work/jn" && md5sum ./*.jpg 2>/dev/null | awk '{print $1}' | sort -u) >"$work/n.sums"
(cd "$work/jc" && md5sum ./*.jpg 2>/dev/null | awk '{print $1}' | sort -u) >"$work/c.sums"
shared=$(comm -12 "$work/n.sums" "$work/c.sums" | wc -l)
echo "native: $(wc -l <"$work/n.sums") distinct pictures, cross: $(wc -l <"$work/c.sums"), byte-identical in both: $shared"
echo "only native: $(comm -23 "$work/n.sums" "$work/c.sums" | tr '\n' ' ')"
echo "only cross:  $(comm -13 "$work/n.sums" "$work/c.sums" | tr '\n' ' ')"
[ "$shared" -gt 0 ]
