#!/usr/bin/env python3
"""`make bench`: Vigil against the do-it-yourself recorder, side by side.

The baseline is what users run without an NVR: one
`ffmpeg -rtsp_transport tcp -i URL -c copy -f segment -segment_time 60`
per camera. Both record the same streams of the built-in camera, which
runs in its own process (`vigil camera`) so that only the recorders are
measured, in alternating runs (Vigil, ffmpeg, Vigil, ffmpeg).

Measured from /proc, per recorder run:
  CPU      utime+stime of the recorder's processes, read once each has
           exited but before it is reaped (waitid WNOWAIT), so nothing is
           missed; divided by the minutes of video recorded (all streams).
  RSS      sampled every 0.25 s (VmRSS, summed over ffmpeg's processes);
           peak = the largest VmHWM (ffmpeg: the sum of each process's
           VmHWM), steady = the median of the second half of the samples.
  written  /proc/PID/io wchar (bytes handed to write(2)) and write_bytes
           (bytes sent to the block layer) after exit, divided by the bytes
           of video recorded: the sample bytes in the index (Vigil) or the
           packet bytes ffprobe reads from the segments (ffmpeg).
  lost     frames the timeline should hold minus frames recorded: Vigil
           from the index (span of each stream's recordings x 25 fps vs
           their frames), ffmpeg from ffprobe over all segments (span of
           the packet timestamps x 25 fps + 1 vs the packets).

Then a scale run (1, 4, 16, 32 streams) with a least-squares fit of CPU
against the bitrate recorded and of RSS against the number of streams;
the live.mp4 latency (camera frame to HTTP byte, through a forwarding
proxy that notes when each frame's last RTP packet reached Vigil); and
the cargo benches: playback (view.mp4), recordings_list, ingest_replay
(callgrind instruction count).

Targets (printed as PASS/FAIL): CPU ratio Vigil/ffmpeg <= 0.25, memory
ratio <= 0.1 (peak and steady), frames lost 0 for both. A miss does not
fail `make bench` (the numbers come from shared, noisy machines);
`STRICT=1` makes it fail.
"""

import argparse
import datetime
import json
import os
import platform
import re
import select
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

HZ = os.sysconf("SC_CLK_TCK")
FPS = 25
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def log(msg):
    print(msg, flush=True)


# ---------------------------------------------------------------- /proc


def proc_cpu_ticks(pid):
    """(utime, stime) of a process, its dead threads included."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])


def proc_io(pid):
    out = {}
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            k, v = line.split(":")
            out[k] = int(v)
    return out


def proc_status_kib(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def proc_pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class Sampler:
    """Samples the RSS and PSS of a set of processes every 0.25 s. PSS
    splits the pages the processes share (ffmpeg's libraries, mapped by
    every one of its processes) between them: the sum is what they take
    together, where summed RSS counts shared pages once per process."""

    def __init__(self, pids):
        self.pids = list(pids)
        self.hwm = {p: 0 for p in self.pids}
        self.samples = []
        self.pss = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            total = 0
            pss = 0
            alive = 0
            for p in self.pids:
                rss = proc_status_kib(p, "VmRSS")
                hwm = proc_status_kib(p, "VmHWM")
                ps = proc_pss_kib(p)
                if rss is not None and ps is not None:
                    total += rss
                    pss += ps
                    alive += 1
                if hwm is not None:
                    self.hwm[p] = max(self.hwm[p], hwm)
            if alive == len(self.pids):
                self.samples.append(total)
                self.pss.append(pss)
            self.stop.wait(0.25)

    def finish(self):
        self.stop.set()
        self.thread.join()
        half = self.samples[len(self.samples) // 2:] or [0]
        pss = self.pss[len(self.pss) // 2:] or [0]
        return sum(self.hwm.values()), statistics.median(half), statistics.median(pss)


def reap_measured(popen):
    """Waits for the process to exit, reads its final CPU and I/O while it
    is a zombie, then reaps it."""
    os.waitid(os.P_PID, popen.pid, os.WEXITED | os.WNOWAIT)
    user, system = proc_cpu_ticks(popen.pid)
    io = proc_io(popen.pid)
    io["user_s"] = user / HZ
    io["sys_s"] = system / HZ
    popen.wait()
    return (user + system) / HZ, io


# ---------------------------------------------------------------- camera


class Camera:
    def __init__(self, vigil, tmp, kbps):
        self.log_path = os.path.join(tmp, f"camera-{kbps}.log")
        args = [vigil, "camera", "--listen", "127.0.0.1:0"]
        if kbps:
            args += ["--bitrate-kbps", str(kbps)]
        self.proc = subprocess.Popen(args, stderr=open(self.log_path, "w"),
                                     stdout=subprocess.DEVNULL)
        deadline = time.time() + 10
        self.addr = None
        while time.time() < deadline and self.addr is None:
            with open(self.log_path) as f:
                m = re.search(r"rtsp://[0-9.:]+", f.read())
            if m:
                self.addr = m.group(0)
            else:
                time.sleep(0.05)
        if self.addr is None:
            self.close()
            raise SystemExit("bench: the built-in camera did not start")

    def url(self, name):
        return f"{self.addr}/h264/{name}"

    def close(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# ---------------------------------------------------------------- recorders


def vigil_config(path, data, urls, arena_mb=None):
    with open(path, "w") as f:
        f.write(f'[storage]\npath = "{data}"\npool_size_mb = 128\npools = 4\n')
        if arena_mb:
            f.write(f"[memory]\narena_mb = {arena_mb}\n")
        f.write('[http]\nlisten = "127.0.0.1:0"\nauth = false\n')
        f.write("[system]\nstream_start_spacing_ms = 50\n")
        for i, url in enumerate(urls):
            f.write(f'[[camera]]\nname = "cam{i + 1}"\nurl = "{url}"\ntransport = "tcp"\n')


def run_vigil(vigil, camera, n, secs, tmp, arena_mb, tag):
    d = os.path.join(tmp, f"vigil-{tag}")
    os.makedirs(d)
    cfg = os.path.join(d, "vigil.toml")
    vigil_config(cfg, os.path.join(d, "data"), [camera.url(f"s{i + 1}") for i in range(n)], arena_mb)
    # Storage created beforehand, so that making the pool files is not
    # counted (ffmpeg has nothing like it).
    subprocess.run([vigil, "-c", cfg, "init"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    errlog = open(os.path.join(d, "run.log"), "w")
    p = subprocess.Popen([vigil, "-c", cfg, "run", "--seconds", str(secs)],
                         stderr=errlog, stdout=subprocess.DEVNULL)
    s = Sampler([p.pid])
    cpu, io = reap_measured(p)
    peak, steady, pss = s.finish()
    streams = []
    for i in range(n):
        out = subprocess.run([vigil, "-c", cfg, "list", "--camera", f"cam{i + 1}", "--json"],
                             check=True, capture_output=True, text=True).stdout
        recs = json.loads(out)
        frames = sum(r["frames"] for r in recs)
        video = sum(r["bytes"] for r in recs)
        gaps = []
        if recs:
            t0 = min(r["start_90k"] for r in recs)
            span = max(r["end_90k"] for r in recs) - t0
            expected = round(span * FPS / 90000)
            recs.sort(key=lambda r: r["start_90k"])
            gaps = [((b["start_90k"] - t0) / 90000, (b["start_90k"] - a["end_90k"]) / 90000)
                    for a, b in zip(recs, recs[1:]) if b["start_90k"] - a["end_90k"] > 90000 / FPS / 2]
        else:
            expected = 0
        streams.append({"frames": frames, "bytes": video,
                        "lost": max(0, expected - frames),
                        "seconds": frames / FPS, "gaps": gaps})
    with open(os.path.join(d, "run.log")) as f:
        text = f.read()
    dropped = sum(int(x) for x in re.findall(r"(\d+) dropped frames", text)[-n:])
    shutil.rmtree(d, ignore_errors=True)
    return summarize("vigil", n, secs, cpu, io, (peak, steady, pss), streams, dropped)


def ffprobe_stream(files):
    """(packets, bytes, lost, [(seconds into the stream, seconds missing)])
    over a stream's segments, in order."""
    pts = []
    size = 0
    tb = None
    for f in files:
        out = subprocess.run(
            ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
             "stream=time_base:packet=pts,size", "-of", "csv=p=0", f],
            capture_output=True, text=True).stdout
        for line in out.splitlines():
            parts = line.strip().split(",")
            if len(parts) == 1 and "/" in parts[0]:
                num, den = parts[0].split("/")
                tb = int(num) / int(den)
            elif len(parts) >= 2 and parts[0] not in ("", "N/A"):
                pts.append(int(parts[0]))
                size += int(parts[1])
    if not pts or tb is None:
        return 0, 0, 0, []
    span = (max(pts) - min(pts)) * tb
    expected = round(span * FPS) + 1
    pts.sort()
    gaps = [((a - pts[0]) * tb, (b - a) * tb - 1 / FPS)
            for a, b in zip(pts, pts[1:]) if (b - a) * tb > 1.5 / FPS]
    return len(pts), size, max(0, expected - len(pts)), gaps


def run_ffmpeg(camera, n, secs, tmp, tag):
    d = os.path.join(tmp, f"ffmpeg-{tag}")
    os.makedirs(d)
    procs = []
    for i in range(n):
        args = ["ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-loglevel", "error",
                "-rtsp_transport", "tcp", "-i", camera.url(f"s{i + 1}"),
                "-c", "copy", "-f", "segment", "-segment_time", "60",
                os.path.join(d, f"cam{i + 1}-%05d.mp4")]
        procs.append(subprocess.Popen(args, stderr=open(os.path.join(d, f"cam{i + 1}.log"), "w"),
                                      stdout=subprocess.DEVNULL))
    s = Sampler([p.pid for p in procs])
    time.sleep(secs)
    # SIGINT: ffmpeg closes its last segment properly (writes the moov).
    for p in procs:
        p.send_signal(signal.SIGINT)
    cpu = 0.0
    io = {"wchar": 0, "write_bytes": 0, "user_s": 0.0, "sys_s": 0.0}
    per_cpu = []
    for p in procs:
        c, i = reap_measured(p)
        per_cpu.append(c)
        cpu += c
        for k in io:
            io[k] += i[k]
    peak, steady, pss = s.finish()
    streams = []
    for i in range(n):
        files = sorted(f for f in os.listdir(d) if f.startswith(f"cam{i + 1}-"))
        frames, video, lost, gaps = ffprobe_stream([os.path.join(d, f) for f in files])
        streams.append({"frames": frames, "bytes": video, "lost": lost, "seconds": frames / FPS,
                         "cpu_s": per_cpu[i], "gaps": gaps})
    shutil.rmtree(d, ignore_errors=True)
    return summarize("ffmpeg", n, secs, cpu, io, (peak, steady, pss), streams, 0)


def summarize(name, n, secs, cpu, io, mem, streams, dropped):
    peak, steady, pss = mem
    video = sum(s["bytes"] for s in streams)
    minutes = sum(s["seconds"] for s in streams) / 60
    return {
        "name": name, "n": n, "secs": secs, "cpu_s": cpu,
        "cpu_per_min": cpu / minutes if minutes else float("nan"),
        "cpu_pct": 100 * cpu / secs,
        "user_per_min": io["user_s"] / minutes if minutes else float("nan"),
        "sys_per_min": io["sys_s"] / minutes if minutes else float("nan"),
        "peak_kib": peak, "steady_kib": steady, "pss_kib": pss,
        "video_bytes": video, "video_min": minutes,
        "wchar_ratio": io["wchar"] / video if video else float("nan"),
        "disk_ratio": io["write_bytes"] / video if video else float("nan"),
        "lost": sum(s["lost"] for s in streams), "dropped": dropped,
        "streams": streams,
    }


# ---------------------------------------------------------------- live latency


class FrameProxy:
    """Forwards one TCP connection between Vigil and the camera and notes,
    for each frame of interleaved channel 0, when its last RTP packet
    (marker bit) was handed to Vigil's socket, with the frame's sample
    size as Vigil will store it (4-byte length + NAL unit, per NAL unit)."""

    def __init__(self, upstream):
        host, port = upstream.split("//")[1].split("/")[0].split(":")
        self.upstream = (host, int(port))
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.port = self.listener.getsockname()[1]
        self.frames = []  # (time, sample bytes)
        self.stop = threading.Event()
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        self.listener.settimeout(0.5)
        while not self.stop.is_set():
            try:
                down, _ = self.listener.accept()
            except socket.timeout:
                continue
            up = socket.create_connection(self.upstream)
            self.pump(down, up)

    def pump(self, down, up):
        buf = b""
        nal_bytes = 0
        socks = [down, up]
        while not self.stop.is_set():
            r, _, _ = select.select(socks, [], [], 0.5)
            for s in r:
                try:
                    data = s.recv(65536)
                    if data and s is down:
                        up.sendall(data)
                    elif data:
                        down.sendall(data)
                except OSError:
                    # A side closed with a reset (Vigil stopping): done.
                    data = b""
                if not data:
                    down.close()
                    up.close()
                    return
                if s is down:
                    continue
                now = time.monotonic()
                buf += data
                while buf:
                    if buf[0:1] == b"$":
                        if len(buf) < 4:
                            break
                        ln = struct.unpack(">H", buf[2:4])[0]
                        if len(buf) < 4 + ln:
                            break
                        ch, pkt = buf[1], buf[4:4 + ln]
                        buf = buf[4 + ln:]
                        if ch != 0 or len(pkt) < 13:
                            continue
                        marker = pkt[1] & 0x80
                        payload = pkt[12 + 4 * (pkt[0] & 0x0F):]
                        t = payload[0] & 0x1F
                        if t == 28:  # FU-A
                            if payload[1] & 0x80:
                                nal_bytes += 4 + 1
                            nal_bytes += len(payload) - 2
                        elif t == 24:  # STAP-A
                            i = 1
                            while i + 2 <= len(payload):
                                sz = struct.unpack(">H", payload[i:i + 2])[0]
                                nal_bytes += 4 + sz
                                i += 2 + sz
                        else:
                            nal_bytes += 4 + len(payload)
                        if marker:
                            self.frames.append((now, nal_bytes))
                            nal_bytes = 0
                    else:
                        end = buf.find(b"\r\n\r\n")
                        if end < 0:
                            break
                        head = buf[:end].decode("latin1")
                        m = re.search(r"(?i)content-length:\s*(\d+)", head)
                        body = int(m.group(1)) if m else 0
                        if len(buf) < end + 4 + body:
                            break
                        buf = buf[end + 4 + body:]


def live_latency(vigil, tmp, secs):
    """Median, p95 and max milliseconds from a frame's last RTP packet
    reaching Vigil to the whole live.mp4 fragment of it reaching a client.
    Frames are matched by sample size (the clip's natural sizes, no
    padding), a fragment counting only when its size is unique among the
    frames of the 2 s before it arrived."""
    cam = Camera(vigil, tmp, 0)
    proxy = FrameProxy(cam.addr)
    d = os.path.join(tmp, "live")
    os.makedirs(d)
    cfg = os.path.join(d, "vigil.toml")
    vigil_config(cfg, os.path.join(d, "data"), [f"rtsp://127.0.0.1:{proxy.port}/h264/live"])
    subprocess.run([vigil, "-c", cfg, "init"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    logf = os.path.join(d, "run.log")
    p = subprocess.Popen([vigil, "-c", cfg, "run", "--seconds", str(secs + 5)],
                         stderr=open(logf, "w"), stdout=subprocess.DEVNULL)
    try:
        port = None
        deadline = time.time() + 10
        while port is None and time.time() < deadline:
            with open(logf) as f:
                m = re.search(r"http: listening on 127\.0\.0\.1:(\d+)", f.read())
            port = int(m.group(1)) if m else None
            time.sleep(0.05)
        if port is None:
            return None
        # Wait for the stream to have a key frame in the ring.
        time.sleep(3)
        asked, arrivals = fetch_live(port, "cam1", secs)
    finally:
        p.wait()
        proxy.stop.set()
        cam.close()
    lat = []
    frames = proxy.frames
    for t_arr, size in arrivals:
        window = [(t, s) for t, s in frames if t_arr - 2 <= t <= t_arr]
        same = [t for t, s in window if s == size]
        # The response starts with the ring's newest key frame and what
        # followed it, up to a GOP received before the request: not live.
        if len(same) == 1 and same[0] >= asked:
            lat.append((t_arr - same[0]) * 1000)
    if not lat:
        return None
    lat.sort()
    return {"fragments": len(arrivals), "matched": len(lat),
            "median": statistics.median(lat), "min": lat[0],
            "p95": lat[min(len(lat) - 1, int(0.95 * len(lat)))], "max": lat[-1]}


def fetch_live(port, camera, secs):
    """(time of the request, [(arrival time, sample size)]) of the
    live.mp4 fragments received in `secs`."""
    s = socket.create_connection(("127.0.0.1", port))
    asked = time.monotonic()
    s.sendall(f"GET /api/cameras/{camera}/live.mp4 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    s.settimeout(2)
    raw = b""
    while b"\r\n\r\n" not in raw:
        raw += s.recv(65536)
    head, raw = raw.split(b"\r\n\r\n", 1)
    chunked = b"chunked" in head.lower()
    body = b""          # de-chunked bytes not yet parsed as boxes
    pending = raw       # raw bytes not yet de-chunked
    out = []
    size = None
    end = time.monotonic() + secs
    while time.monotonic() < end:
        try:
            data = s.recv(65536)
        except socket.timeout:
            continue
        if not data:
            break
        now = time.monotonic()
        pending += data
        if chunked:
            while True:
                nl = pending.find(b"\r\n")
                if nl < 0:
                    break
                n = int(pending[:nl].split(b";")[0], 16)
                if len(pending) < nl + 2 + n + 2:
                    break
                body += pending[nl + 2:nl + 2 + n]
                pending = pending[nl + 2 + n + 2:]
        else:
            body, pending = body + pending, b""
        while len(body) >= 8:
            blen, kind = struct.unpack(">I4s", body[:8])
            if len(body) < blen:
                break
            box, body = body[:blen], body[blen:]
            if kind == b"moof":
                size = trun_size(box)
            elif kind == b"mdat" and size is not None:
                out.append((now, size))
                size = None
    s.close()
    return asked, out


def trun_size(moof):
    """The first sample's size in a moof's trun (or the mdat size follows)."""
    i = moof.find(b"trun")
    if i < 0:
        return None
    flags = struct.unpack(">I", moof[i + 4:i + 8])[0] & 0xFFFFFF
    count = struct.unpack(">I", moof[i + 8:i + 12])[0]
    j = i + 12
    if flags & 0x1:
        j += 4
    if flags & 0x4:
        j += 4
    if count < 1:
        return None
    if flags & 0x100:
        j += 4
    if flags & 0x200:
        return struct.unpack(">I", moof[j:j + 4])[0]
    return None


# ---------------------------------------------------------------- report


def fit(xs, ys):
    """Least squares y = a + b x: (a, b)."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
    return my - b * mx, b


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    with open("/proc/meminfo") as f:
        total = int(f.readline().split()[1]) // 1024
    ff = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.split("\n")[0]
    return (f"{os.cpu_count()} CPUs (nproc), {model}, {total} MiB RAM, "
            f"{platform.system()} {platform.release()}; {ff}; "
            f"{datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}")


def mean(rs, key):
    return statistics.mean(r[key] for r in rs)


def row(r):
    return (f"| {r['name']} | {r['n']} | {r['cpu_per_min']:.3f} "
            f"({r['user_per_min']:.3f} + {r['sys_per_min']:.3f}) | {r['cpu_pct']:.1f} | "
            f"{r['peak_kib'] / 1024:.1f} | {r['steady_kib'] / 1024:.1f} | {r['pss_kib'] / 1024:.1f} | "
            f"{r['wchar_ratio']:.3f} | {r['disk_ratio']:.3f} | {r['video_min']:.2f} | "
            f"{r['lost']} |")


HEADER = ("| recorder | streams | CPU s per video min (user + sys) | CPU % of a core | peak RSS MiB | "
          "steady RSS MiB | steady PSS MiB | written / video (wchar) | "
          "to disk / video (write_bytes) | video min | frames lost |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--vigil", default=os.path.join(ROOT, "target/release/vigil"))
    ap.add_argument("--out", default=os.path.join(ROOT, "target/bench"))
    ap.add_argument("--streams", type=int, default=None)
    ap.add_argument("--kbps", type=int, default=2000)
    args = ap.parse_args()
    q = args.quick
    n = args.streams or (2 if q else 4)
    secs = 20 if q else 60
    rounds = 1 if q else 2
    scale = [1, 4] if q else [1, 4, 16, 32]
    scale_secs = 10 if q else 30
    scale_ffmpeg = not q
    os.makedirs(args.out, exist_ok=True)
    report = []

    def say(line=""):
        log(line)
        report.append(line)

    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as tmp:
        say(f"# Vigil benchmark{' (quick mode)' if q else ''}")
        say()
        say(f"Machine: {machine()}.")
        say()
        cam = Camera(args.vigil, tmp, args.kbps)
        try:
            say(f"## Vigil vs. one ffmpeg segmenter per stream: {n} streams x {args.kbps} kbit/s, "
                f"25 fps, 2 s GOP, {secs} s per run, runs alternated")
            say()
            runs = []
            for k in range(rounds):
                for name in ("vigil", "ffmpeg"):
                    log(f"... {name} run {k + 1}")
                    if name == "vigil":
                        runs.append(run_vigil(args.vigil, cam, n, secs, tmp, None, f"{n}-{k}"))
                    else:
                        runs.append(run_ffmpeg(cam, n, secs, tmp, f"{n}-{k}"))
            say(HEADER)
            for r in runs:
                say(row(r))
            say()
            say("Per stream (each run): video MB / frames / frames lost / CPU s (ffmpeg: its "
                "process; Vigil is one process for all streams, its CPU is in the table)")
            say()
            for r in runs:
                per = ", ".join(f"{s['bytes'] / 1e6:.1f}/{s['frames']}/{s['lost']}"
                                + (f"/{s['cpu_s']:.2f}" if "cpu_s" in s else "")
                                for s in r["streams"])
                say(f"- {r['name']}: {per}")
            for r in runs:
                for i, st in enumerate(r["streams"]):
                    if st["lost"] and st.get("gaps"):
                        g = ", ".join(f"{m:.2f} s at {t:.1f} s" for t, m in st["gaps"][:3])
                        say(f"- {r['name']} stream {i + 1}: holes in the timeline: {g}")
            say()
            v = [r for r in runs if r["name"] == "vigil"]
            f = [r for r in runs if r["name"] == "ffmpeg"]
            cpu_ratio = mean(v, "cpu_per_min") / mean(f, "cpu_per_min")
            peak_ratio = mean(v, "peak_kib") / mean(f, "peak_kib")
            steady_ratio = mean(v, "steady_kib") / mean(f, "steady_kib")
            pss_ratio = mean(v, "pss_kib") / mean(f, "pss_kib")
            # Over TCP nothing is lost on the way: a hole in a timeline is
            # a frame the camera skipped (it skips when it falls behind its
            # schedule or when the recorder's socket is full; it does not
            # say which) or, for Vigil, one it dropped with its ring full.
            v_lost = sum(r["lost"] for r in v)
            f_lost = sum(r["lost"] for r in f)
            checks = [
                (f"CPU ratio Vigil/ffmpeg {cpu_ratio:.3f} (target <= 0.25)", cpu_ratio <= 0.25),
                (f"peak RSS ratio {peak_ratio:.3f} (target <= 0.1)", peak_ratio <= 0.1),
                (f"steady RSS ratio {steady_ratio:.3f} (target <= 0.1)", steady_ratio <= 0.1),
                # The memory target is on RSS summed over the
                # ffmpeg processes; PSS, which counts their shared
                # libraries once, is the stricter view, shown for it.
                (f"steady PSS ratio {pss_ratio:.3f} (no target; ffmpeg's shared "
                 "libraries counted once)", None),
                (f"Vigil frames lost {v_lost} (target 0; of them dropped by Vigil itself, ring full: "
                 f"{sum(r['dropped'] for r in v)})", v_lost == 0),
                (f"ffmpeg frames lost {f_lost} (target 0)", f_lost == 0),
                ("written/video ratio Vigil/ffmpeg "
                 f"{mean(v, 'wchar_ratio') / mean(f, 'wchar_ratio'):.3f} (no target)", True),
            ]
            for text, ok in checks:
                say(f"- {'INFO' if ok is None else 'PASS' if ok else 'FAIL'}: {text}")
            say()

            say(f"## Scale: {scale} streams x {args.kbps} kbit/s, {scale_secs} s each")
            say()
            say(HEADER)
            sc = {"vigil": [], "ffmpeg": []}
            for k in scale:
                log(f"... scale {k}")
                r = run_vigil(args.vigil, cam, k, scale_secs, tmp, None, f"scale-{k}")
                sc["vigil"].append(r)
                say(row(r))
                if scale_ffmpeg:
                    r = run_ffmpeg(cam, k, scale_secs, tmp, f"scale-{k}")
                    sc["ffmpeg"].append(r)
                    say(row(r))
            say()
            for name, rs in sc.items():
                if len(rs) < 2:
                    continue
                mbps = [r["n"] * args.kbps / 1000 for r in rs]
                a, b = fit(mbps, [r["cpu_pct"] for r in rs])
                ra, rb = fit([r["n"] for r in rs], [r["steady_kib"] / 1024 for r in rs])
                pa, pb = fit([r["n"] for r in rs], [r["peak_kib"] / 1024 for r in rs])
                say(f"- {name}: CPU = {a:.2f} % + {b:.3f} % per Mbit/s "
                    f"({b * args.kbps / 1000:.2f} % of a core per {args.kbps} kbit/s stream); "
                    f"steady RSS = {ra:.1f} MiB + {rb:.2f} MiB per stream; "
                    f"peak RSS = {pa:.1f} MiB + {pb:.2f} MiB per stream")
            if sc["ffmpeg"]:
                for rv, rf in zip(sc["vigil"], sc["ffmpeg"]):
                    say(f"- {rv['n']} streams: CPU ratio Vigil/ffmpeg "
                        f"{rv['cpu_per_min'] / rf['cpu_per_min']:.3f}, steady RSS ratio "
                        f"{rv['steady_kib'] / rf['steady_kib']:.3f}, steady PSS ratio "
                        f"{rv['pss_kib'] / rf['pss_kib']:.3f}; frames lost {rv['lost']} / {rf['lost']}")
            say("- Vigil runs with its default config (8 MiB arena, fixed whatever the number of streams).")
            say()
        finally:
            cam.close()

        say("## Serving")
        say()
        log("... live.mp4 latency")
        lat = live_latency(args.vigil, tmp, 10 if q else 20)
        if lat:
            say(f"- live.mp4, camera frame to HTTP byte (frame's last RTP packet handed to Vigil -> "
                f"its whole fragment received by the client, 127.0.0.1): median {lat['median']:.1f} ms, "
                f"p95 {lat['p95']:.1f} ms, max {lat['max']:.1f} ms "
                f"({lat['matched']} of {lat['fragments']} fragments matched; the first ones, a GOP "
                "the ring held before the request, are not counted)")
        else:
            say("- live.mp4 latency: no fragment could be matched (see target/bench)")

    # The in-process benches (bench profile, symbols kept for callgrind).
    env = dict(os.environ, CARGO_PROFILE_BENCH_STRIP="false", VIGIL_BENCH_OUT=args.out)
    benches = ["playback", "recordings_list", "ingest_replay"]
    if q:
        env["VIGIL_BENCH_LIST_HOURS"] = "6"
    else:
        benches.append("viewers")
    cargo = os.environ.get("CARGO", "cargo")
    for b in benches:
        log(f"... cargo bench --bench {b}")
        r = subprocess.run([cargo, "bench", "--quiet", "--bench", b], cwd=ROOT, env=env,
                           capture_output=True, text=True)
        say(f"### `cargo bench --bench {b}`")
        say()
        say("```")
        for line in r.stdout.splitlines():
            say(line)
        if r.returncode != 0:
            say(f"(failed, status {r.returncode})")
            for line in r.stderr.splitlines()[-20:]:
                say(line)
        say("```")
        say()
    say("The machine is shared with other jobs: timings are noisy, instruction counts are not.")
    with open(os.path.join(args.out, "results.md"), "w") as fo:
        fo.write("\n".join(report) + "\n")
    log(f"results: {os.path.join(args.out, 'results.md')}")
    fails = [t for t, ok in checks if ok is False]
    if fails and os.environ.get("STRICT") == "1":
        sys.exit("bench: targets missed (STRICT=1): " + "; ".join(fails))


if __name__ == "__main__":
    main()
