//! The HTTP API end to end, in one process: the built-in camera, a
//! recorder, and the HTTP server on loopback, queried by the small blocking
//! client of `common::http`.

mod common;

use common::http::{self, exchange_within, get_with, parse, Resp};
use common::{temp_dir, wait_for};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vigil::camera::{CameraServer, ServerOptions};
use vigil::config::{self, Config};
use vigil::daemon::recorder::Recorder;
use vigil::serve::http::{Body, Reply};
use vigil::serve::router::{RouteHook, ServeContext};
use vigil::serve::HttpServer;
use vigil::store;

/// How long this file's own sockets wait, and a garbage request's answer.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

fn config(dir: &Path, camera: &CameraServer) -> Config {
    let text = format!(
        "[storage]\npath = \"data\"\npool_size_mb = 4\npools = 4\nsync_interval_ms = 300\n\
         [memory]\narena_mb = 4\n[system]\nstream_start_spacing_ms = 0\n\
         [http]\nlisten = \"127.0.0.1:0\"\nauth = false\n\
         [[camera]]\nname = \"a\"\nurl = \"{}\"\nsegment_seconds = 5\n\
         [[camera]]\nname = \"b\"\nurl = \"{}\"\nsub_url = \"{}\"\nrecord = \"both\"\nsegment_seconds = 5\n",
        camera.url("h264/a"),
        camera.url("h265/b"),
        camera.url("mjpeg/b"),
    );
    config::parse_str(&text, dir).unwrap()
}

/// A request whose answer must carry a Content-Type, and a body as long as
/// its Content-Length says.
fn request(addr: SocketAddr, method: &str, target: &str) -> Resp {
    let r = http::request(addr, method, target);
    assert!(
        r.header("Content-Type").is_some(),
        "{method} {target}: no Content-Type in {}",
        r.head
    );
    http::assert_length(method, &r);
    r
}

fn get(addr: SocketAddr, target: &str) -> Resp {
    request(addr, "GET", target)
}

fn context(cfg: &Config, rec: &Recorder, hook: Option<RouteHook>) -> Arc<ServeContext> {
    Arc::new(ServeContext {
        running: rec.running.clone(),
        db_path: cfg.storage.db.clone(),
        storage: cfg.storage.clone(),
        started: Instant::now(),
        arena_bytes: 4 << 20,
        route_hooks: hook.into_iter().collect(),
        auth: None,
        counters: Default::default(),
    })
}

#[test]
fn api_over_a_recording_camera() {
    let dir = temp_dir("http-api");
    let cam = CameraServer::start(ServerOptions {
        listen: ([127, 0, 0, 1], 0).into(),
        auth: None,
        bitrate_kbps: Some(500),
    })
    .unwrap();
    let cfg = config(&dir, &cam);
    let storage = store::open::open_for_writing(&cfg.storage).unwrap();
    let rec = Recorder::start(&cfg, storage).unwrap();
    let http = HttpServer::start(cfg.http.listen, context(&cfg, &rec, None), 16).unwrap();
    let addr = http.local_addr();

    // Status: every stream reaches `streaming`.
    let status = wait_for(Duration::from_secs(20), "all streams streaming", || {
        let r = get(addr, "/api/status");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("Content-Type").unwrap(), "application/json");
        let v = r.json();
        let states: Vec<String> = v["cameras"]
            .as_array()?
            .iter()
            .flat_map(|c| c["streams"].as_array().cloned().unwrap_or_default())
            .map(|s| s["state"].as_str().unwrap_or("").to_owned())
            .collect();
        (states.len() == 3 && states.iter().all(|s| s == "streaming")).then_some(v)
    });
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(status["storage"]["bytes_total"], 16u64 << 20);
    assert!(status["memory"]["rss_bytes"].as_u64().unwrap() > 0);
    // What the rings hold now: present, and within the 4 MiB arena.
    let arena_used = status["memory"]["arena_used_bytes"].as_u64().unwrap();
    assert!(arena_used <= 4 << 20, "{arena_used}");
    let cams = status["cameras"].as_array().unwrap();
    assert_eq!(cams[0]["name"], "a");
    assert_eq!(cams[1]["name"], "b");
    assert_eq!(cams[1]["streams"][1]["stream"], "sub");
    let a_main = &cams[0]["streams"][0];
    assert_eq!(a_main["codec"], "h264");
    assert!(a_main["width"].as_u64().unwrap() > 0);
    assert!(a_main["frames"].as_u64().unwrap() > 0);

    // Recordings: at least two (a rotation happened), in order, apart.
    let recs = wait_for(Duration::from_secs(30), "two recordings of a", || {
        let r = get(addr, "/api/cameras/a/recordings");
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let v = r.json();
        (v.as_array()?.len() >= 2).then_some(v)
    });
    let recs = recs.as_array().unwrap();
    for r in recs {
        assert_eq!(r["stream"], "main");
        assert_eq!(r["codec"], "h264");
        assert!(r["width"].as_u64().unwrap() > 0);
        assert!(r["start"].as_str().unwrap().ends_with('Z'));
        let (s, e) = (
            r["start_90k"].as_i64().unwrap(),
            r["end_90k"].as_i64().unwrap(),
        );
        assert!(s <= e, "{r}");
        assert_eq!(r["duration_ms"].as_i64().unwrap(), (e - s) / 90);
    }
    for w in recs.windows(2) {
        assert!(
            w[1]["start_90k"].as_i64().unwrap() >= w[0]["end_90k"].as_i64().unwrap(),
            "overlap: {} {}",
            w[0],
            w[1]
        );
        assert!(w[1]["id"].as_i64().unwrap() > w[0]["id"].as_i64().unwrap());
    }

    // Prometheus metrics: per stream, storage, HTTP.
    let r = get(addr, "/metrics");
    assert_eq!(r.status, 200);
    assert!(r
        .header("Content-Type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8(r.body).unwrap();
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{series} not in\n{text}"))
    };
    assert!(value("vigil_stream_frames_total{camera=\"a\",stream=\"main\"}") > 0.0);
    assert!(value("vigil_stream_bytes_total{camera=\"a\",stream=\"main\"}") > 0.0);
    assert_eq!(value("vigil_stream_up{camera=\"a\",stream=\"main\"}"), 1.0);
    assert!(value("vigil_storage_used_bytes") > 0.0);
    assert!(value("vigil_storage_recordings") >= 2.0);
    assert!(value("vigil_http_requests_total{status=\"200\"}") >= 1.0);

    // Ranges, in each form a time may take.
    // 1 ms into the last closed recording (only the newest is open, and a
    // closed one lasts a segment); the one before ends at or before it.
    let last = &recs[recs.len() - 2];
    let from_90k = (last["start_90k"].as_i64().unwrap() / 90 + 1) * 90;
    let from = vigil::time::format_90k(from_90k);
    let r = get(addr, &format!("/api/cameras/a/recordings?start={from}"));
    assert_eq!(r.status, 200);
    let tail = r.json();
    let tail = tail.as_array().unwrap();
    assert!(tail
        .iter()
        .all(|t| t["end_90k"].as_i64().unwrap() > from_90k));
    assert_eq!(
        tail.first().map(|t| &t["id"]),
        Some(&last["id"]),
        "{tail:?}"
    );
    let r = get(
        addr,
        "/api/cameras/a/recordings?stream=main&start=2000-01-01T00%3A00%3A00%2B01%3A00&end=2000-01-02T00:00:00Z",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), serde_json::json!([]));
    let r = get(addr, "/api/cameras/a/recordings?start=0&end=1");
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), serde_json::json!([]));
    let r = get(addr, "/api/cameras/b/recordings?stream=sub");
    assert_eq!(r.status, 200);
    let sub = r.json();
    if let Some(first) = sub.as_array().unwrap().first() {
        assert_eq!(first["codec"], "jpeg");
    }

    // Errors name what is wrong, as JSON.
    let r = get(addr, "/api/cameras/a/recordings?start=yesterday");
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].as_str().unwrap().starts_with("start"));
    let r = get(addr, "/api/cameras/a/recordings?end=1&start=2");
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].as_str().unwrap().starts_with("end"));
    let r = get(addr, "/api/cameras/a/recordings?stream=third");
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].as_str().unwrap().starts_with("stream"));
    let r = get(addr, "/api/cameras/a/recordings?start=%zz");
    assert_eq!(r.status, 400);
    let r = get(addr, "/api/cameras/nope/recordings");
    assert_eq!(r.status, 404);
    assert!(r.json()["error"].as_str().unwrap().contains("nope"));
    let r = get(addr, "/api/cameras/..%2F..%2Fetc/recordings");
    assert_eq!(r.status, 404);
    for p in ["/nothing", "/api", "/api/status/x", "/api/cameras/a/x"] {
        let r = get(addr, p);
        assert_eq!(r.status, 404, "{p}");
        assert!(r.json()["error"].is_string(), "{p}");
    }
    let r = get(addr, &format!("/api/status?{}", "x".repeat(5000)));
    assert_eq!(r.status, 414);
    assert!(r.json()["error"].is_string());
    for m in ["POST", "PUT", "DELETE"] {
        let r = request(addr, m, "/api/status");
        assert_eq!(r.status, 405, "{m}");
        assert_eq!(r.header("Allow").unwrap(), "GET, HEAD");
        assert!(r.json()["error"].is_string());
    }
    // view.mp4 is counted, but no route hook answers it here.
    let r = get(addr, "/api/cameras/a/view.mp4");
    assert_eq!(r.status, 404);

    // The page and HEAD.
    let r = get(addr, "/");
    assert_eq!(r.status, 200);
    assert!(r.header("Content-Type").unwrap().starts_with("text/html"));
    assert!(String::from_utf8_lossy(&r.body).contains("Vigil"));
    let r = request(addr, "HEAD", "/api/status");
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());

    // 20 clients at once: every one answered.
    let threads: Vec<_> = (0..20)
        .map(|i| {
            std::thread::spawn(move || {
                let p = if i % 2 == 0 {
                    "/api/status"
                } else {
                    "/api/cameras/b/recordings"
                };
                get(addr, p).status
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 200);
    }

    // Garbage: a 400 or a closed connection, and the server lives on.
    for raw in [
        &b"\x00\x01\x02garbage\r\n\r\n"[..],
        b"GET\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET / HTTP/1.1\r\nno colon here\r\n\r\n",
        b"GET /\xff\xfe HTTP/1.1\r\n\r\n",
        b"\r\n\r\n\r\n",
        b"GET http://example.com/ HTTP/1.1\r\nConnection: close\r\n\r\n",
        b"GET /api/status HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n",
    ] {
        match exchange_within(addr, raw, IO_TIMEOUT) {
            Ok(out) if out.is_empty() => {}
            Ok(out) => {
                let r = parse(&out);
                assert!(
                    (400..500).contains(&r.status) || r.status == 505 || r.status == 200,
                    "{:?} -> {}",
                    String::from_utf8_lossy(raw),
                    r.head
                );
            }
            // Reset by the server: also a closed connection.
            Err(e) => assert_ne!(e.kind(), std::io::ErrorKind::WouldBlock, "{raw:?}: hung"),
        }
    }
    // A huge declared body is refused without being read or buffered.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.write_all(b"POST /api/status HTTP/1.1\r\nContent-Length: 999999999999999\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 413"), "{:?}", &buf[..n]);
    drop(s);
    assert_eq!(get(addr, "/api/status").status, 200);

    let t = Instant::now();
    http.stop();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "stop took {:?}",
        t.elapsed()
    );
    assert!(TcpStream::connect(addr)
        .and_then(|mut s| {
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            s.write_all(b"GET /api/status HTTP/1.1\r\n\r\n")?;
            let mut b = Vec::new();
            s.read_to_end(&mut b)?;
            Ok(b)
        })
        .map_or(true, |b| b.is_empty()));
    let stats = rec.shutdown(Duration::from_secs(5)).unwrap();
    assert_eq!(stats.last_error, None);
    cam.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Endless zeros, slowly: a stand-in for a long video answer.
struct Slow;

impl Read for Slow {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        std::thread::sleep(Duration::from_millis(5));
        let n = buf.len().min(1024);
        buf[..n].fill(0);
        Ok(n)
    }
}

#[test]
fn long_answers_are_limited_by_max_clients() {
    let dir = temp_dir("http-permits");
    let cfg =
        config::parse_str("[storage]\npath = \"data\"\n[http]\nauth = false\n", &dir).unwrap();
    let hook: RouteHook = Arc::new(|req| {
        let permit = req.permit.take()?;
        Some(Reply {
            status: 200,
            content_type: "video/mp4",
            headers: Vec::new(),
            body: Body::Stream {
                reader: Box::new(Slow),
                len: Some(1 << 40),
                permit,
            },
        })
    });
    let ctx = Arc::new(ServeContext {
        running: vigil::daemon::Running::from_statuses(vec![Arc::new(
            vigil::stream::StreamStatus::new("a", vigil::config::StreamKind::Main),
        )]),
        db_path: dir.join("missing.db"),
        storage: cfg.storage.clone(),
        started: Instant::now(),
        arena_bytes: 0,
        route_hooks: vec![hook],
        auth: None,
        counters: Default::default(),
    });
    let http = HttpServer::start(([127, 0, 0, 1], 0).into(), ctx, 1).unwrap();
    let addr = http.local_addr();

    let open_viewer = || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.write_all(b"GET /api/cameras/a/view.mp4 HTTP/1.1\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 256];
        let n = s.read(&mut buf).unwrap();
        (s, String::from_utf8_lossy(&buf[..n]).into_owned())
    };
    let (viewer, head) = open_viewer();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("Content-Length: 1099511627776"), "{head}");
    // The one permit is taken: the next viewer is refused, clearly.
    let r = get(addr, "/api/cameras/a/view.mp4");
    assert_eq!(r.status, 503);
    assert!(r.json()["error"].as_str().unwrap().contains("max_clients"));
    // Short answers are not counted, and the missing index is reported.
    let r = get(addr, "/api/status");
    assert_eq!(r.status, 200);
    assert!(r.json()["storage"]["error"].is_string());
    // The viewer leaves: its permit comes back.
    drop(viewer);
    let (viewer, head) = wait_for(Duration::from_secs(10), "the permit back", || {
        let (s, head) = open_viewer();
        head.starts_with("HTTP/1.1 200").then_some((s, head))
    });
    assert!(head.contains("video/mp4"), "{head}");
    // Stopping ends the long answer too, in bounded time.
    let t = Instant::now();
    http.stop();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "stop took {:?}",
        t.elapsed()
    );
    drop(viewer);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn view_mp4_ranges_head_etag_and_ffmpeg_seeking() {
    let dir = temp_dir("http-view");
    let cam = CameraServer::start(ServerOptions {
        listen: ([127, 0, 0, 1], 0).into(),
        auth: None,
        bitrate_kbps: None,
    })
    .unwrap();
    let cfg = config(&dir, &cam);
    let storage = store::open::open_for_writing(&cfg.storage).unwrap();
    let rec = Recorder::start(&cfg, storage).unwrap();
    let hook = vigil::serve::view::hook(cfg.storage.db.clone(), rec.pool_reader.clone());
    let http = HttpServer::start(cfg.http.listen, context(&cfg, &rec, Some(hook)), 16).unwrap();
    let addr = http.local_addr();
    // Seven seconds of camera a, then a 5 s range starting mid-GOP.
    let first = wait_for(Duration::from_secs(20), "7 s of recordings", || {
        let r = get(addr, "/api/cameras/a/recordings");
        let v = r.json();
        let list = v.as_array()?;
        let total: i64 = list.iter().filter_map(|x| x["duration_ms"].as_i64()).sum();
        (total >= 7000).then(|| list[0]["start_90k"].as_i64().unwrap())
    });
    let target = format!(
        "/api/cameras/a/view.mp4?start={}&end={}",
        (first + 45_000) / 90_000 + 1,
        (first + 45_000) / 90_000 + 6
    );
    let full = get(addr, &target);
    assert_eq!(full.status, 200, "{}", String::from_utf8_lossy(&full.body));
    assert_eq!(full.header("Content-Type").unwrap(), "video/mp4");
    let len = full.body.len();
    assert_eq!(full.header("Content-Length").unwrap(), len.to_string());
    assert_eq!(full.header("Accept-Ranges").unwrap(), "bytes");
    let etag = full.header("ETag").expect("ETag");
    assert!(etag.starts_with('"'), "strong ETag: {etag}");

    let head = request(addr, "HEAD", &target);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("Content-Length").unwrap(), len.to_string());
    assert!(head.body.is_empty());

    let mut seed = 12345u64;
    for _ in 0..20 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let a = (seed % len as u64) as usize;
        let b = (a + (seed >> 20) as usize % 100_000).min(len - 1);
        let r = get_with(addr, &target, &format!("Range: bytes={a}-{b}\r\n"));
        assert_eq!(r.status, 206);
        assert_eq!(
            r.header("Content-Range").unwrap(),
            format!("bytes {a}-{b}/{len}")
        );
        assert_eq!(r.body, full.body[a..=b], "range {a}-{b}");
    }
    let r = get_with(addr, &target, &format!("Range: bytes={len}-\r\n"));
    assert_eq!(r.status, 416);
    assert_eq!(r.header("Content-Range").unwrap(), format!("bytes */{len}"));
    let r = get_with(addr, &target, &format!("If-None-Match: {etag}\r\n"));
    assert_eq!(r.status, 304);
    // The same range asked again is the same file: the ETag is stable.
    assert_eq!(get(addr, &target).header("ETag").unwrap(), etag);

    let r = get(addr, "/api/cameras/a/view.mp4?start=1&end=2");
    assert_eq!(r.status, 404, "{}", String::from_utf8_lossy(&r.body));
    let r = get(addr, "/api/cameras/a/view.mp4?start=soon&end=2");
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].as_str().unwrap().starts_with("start"));

    // A real player reading over HTTP, seeking into the middle.
    if std::process::Command::new("ffmpeg")
        .arg("-version")
        .output()
        .is_ok()
    {
        let out = std::process::Command::new("ffmpeg")
            .args([
                "-v",
                "error",
                "-ss",
                "2",
                "-i",
                &format!("http://{addr}{target}"),
                "-f",
                "null",
                "-",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        println!("ffmpeg not installed: the player check is skipped (make test installs it)");
    }
    http.stop();
    rec.shutdown(Duration::from_secs(5)).unwrap();
    cam.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Idle connections (15 s) and clients that never finish their request
/// head (10 s after its first byte) are closed, so they cannot hold the
/// server's connection threads; a normal request meanwhile works.
#[test]
fn idle_and_unfinished_connections_are_closed() {
    let dir = temp_dir("http-idle");
    let cfg = config::parse_str("[storage]\npath = \"data\"\n", &dir).unwrap();
    let ctx = Arc::new(ServeContext {
        running: Default::default(),
        db_path: dir.join("missing.db"),
        storage: cfg.storage.clone(),
        started: Instant::now(),
        arena_bytes: 0,
        route_hooks: Vec::new(),
        auth: None,
        counters: Default::default(),
    });
    let http = HttpServer::start(([127, 0, 0, 1], 0).into(), ctx, 4).unwrap();
    let addr = http.local_addr();
    let silent = TcpStream::connect(addr).unwrap();
    let mut trickle = TcpStream::connect(addr).unwrap();
    trickle
        .write_all(b"GET /api/status HTTP/1.1\r\nHost:")
        .unwrap();
    // A keep-alive client that got its answer and stays.
    let mut kept = TcpStream::connect(addr).unwrap();
    kept.write_all(b"GET /api/status HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let started = Instant::now();
    for (name, mut s) in [("silent", silent), ("unfinished", trickle), ("kept", kept)] {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut all = Vec::new();
        let r = s.read_to_end(&mut all);
        assert!(r.is_ok(), "{name}: not closed: {r:?}");
        if name == "kept" {
            assert!(all.starts_with(b"HTTP/1.1 200"), "{name}");
        }
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(14) && waited < Duration::from_secs(25),
        "closed after {waited:?}"
    );
    assert_eq!(get(addr, "/api/status").status, 200);
    http.stop();
}

/// The gate every request passes when `http.auth` is on, with a stand-in
/// authenticator (`X-Test-User: admin|viewer`, `X-Test-Cookie: 1` for a
/// session cookie): no credentials -> 401 except on public paths, a viewer
/// changing anything -> 403, a cookie-authenticated change from another
/// origin -> 403; methods a path does not take -> 405 with `Allow`.
#[test]
fn auth_gate_roles_origin_and_methods() {
    use vigil::auth::Role;
    use vigil::serve::router::{Identify, Identity, Req};
    struct Fake;
    impl Identify for Fake {
        fn identify(&self, req: &Req<'_>) -> Result<Option<Identity>, Reply> {
            let role = match req.header("X-Test-User") {
                Some("admin") => Role::Admin,
                Some("viewer") => Role::Viewer,
                Some(_) => return Err(Reply::error(401, "bad credentials")),
                None => return Ok(None),
            };
            Ok(Some(Identity {
                user: "u".into(),
                role,
                by_cookie: req.header("X-Test-Cookie").is_some(),
            }))
        }
        fn unauthorized(&self, _req: &Req<'_>) -> Reply {
            Reply::error(401, "log in first")
        }
    }
    let dir = temp_dir("http-gate");
    let cfg = config::parse_str("[storage]\npath = \"data\"\n", &dir).unwrap();
    // Answers every path it is asked, so the gate's verdict shows.
    let echo: RouteHook = Arc::new(|req| {
        Some(Reply::json(
            200,
            &serde_json::json!({ "method": req.method.name(), "body": req.body.len() }),
        ))
    });
    let ctx = Arc::new(ServeContext {
        running: Default::default(),
        db_path: dir.join("missing.db"),
        storage: cfg.storage.clone(),
        started: Instant::now(),
        arena_bytes: 0,
        route_hooks: vec![echo],
        auth: Some(Arc::new(Fake)),
        counters: Default::default(),
    });
    let http = HttpServer::start(([127, 0, 0, 1], 0).into(), ctx.clone(), 4).unwrap();
    let addr = http.local_addr();
    let send = |method: &str, target: &str, headers: &str, body: &str| -> Resp {
        http::send(addr, method, target, headers, body)
    };
    // No credentials.
    assert_eq!(send("GET", "/api/status", "", "").status, 401);
    assert_eq!(send("GET", "/api/cameras/a/live.mp4", "", "").status, 401);
    assert_eq!(send("GET", "/", "", "").status, 200);
    assert_eq!(send("GET", "/app.js", "", "").status, 200);
    assert_eq!(send("POST", "/api/login", "", "{}").status, 200);
    // Wrong credentials are the authenticator's answer.
    assert_eq!(
        send("GET", "/api/status", "X-Test-User: who\r\n", "").status,
        401
    );
    // Viewers read, admins change.
    let viewer = "X-Test-User: viewer\r\n";
    let admin = "X-Test-User: admin\r\n";
    assert_eq!(send("GET", "/api/cameras", viewer, "").status, 200);
    assert_eq!(send("POST", "/api/cameras", viewer, "{}").status, 403);
    assert_eq!(send("DELETE", "/api/cameras/a", viewer, "").status, 403);
    assert_eq!(send("POST", "/api/logout", viewer, "").status, 200);
    let r = send("POST", "/api/cameras", admin, "{\"a\":1}");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["body"], 7);
    // A change by cookie needs our own Origin.
    let cookie_admin = "X-Test-User: admin\r\nX-Test-Cookie: 1\r\n";
    assert_eq!(
        send("PUT", "/api/cameras/a", cookie_admin, "{}").status,
        403
    );
    let evil = format!("{cookie_admin}Origin: http://evil.example\r\n");
    assert_eq!(send("PUT", "/api/cameras/a", &evil, "{}").status, 403);
    let ours = format!("{cookie_admin}Origin: http://h:1\r\n");
    assert_eq!(send("PUT", "/api/cameras/a", &ours, "{}").status, 200);
    assert_eq!(send("GET", "/api/cameras", cookie_admin, "").status, 200);
    // Methods.
    let r = send("POST", "/api/status", admin, "");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("Allow").unwrap(), "GET, HEAD");
    let r = send("PATCH", "/api/cameras/a", admin, "");
    assert_eq!(r.status, 405);
    let r = send("DELETE", "/api/cameras", admin, "");
    assert_eq!(r.header("Allow").unwrap(), "GET, HEAD, POST");
    // Bodies over the bound.
    let big = "x".repeat(70 * 1024);
    assert_eq!(send("POST", "/api/cameras", admin, &big).status, 413);
    // Every answer was counted.
    let counted: u64 = ctx.counters.snapshot().iter().map(|(_, n)| n).sum();
    assert_eq!(counted, 19, "{:?}", ctx.counters.snapshot());
    assert_eq!(ctx.counters.abandoned(), 0);
    http.stop();
}
