//! The page (web-min/) in a real browser: headless Chromium, driven over
//! WebDriver (Debian's `chromedriver`) by a small client written here
//! (HTTP and JSON over loopback), against a recorder of the built-in camera
//! and the HTTP server, set up as `vigil demo` sets them up.
//!
//! What a person would check: the page loads (its cold load time is
//! printed), the live grid shows pictures that change, one camera plays
//! live, a click on the timeline plays the recording from there, a range
//! picked on the timeline downloads as a file ffprobe accepts, a camera
//! added through the page starts streaming, logging in works. Screenshots
//! of every view go to `target/screenshots/`.
//!
//! The browser tests are `#[ignore]` (they need `chromium`,
//! `chromium-driver` and `ffprobe`: scripts/install-test-deps.sh);
//! `make test` runs them. Chromium gets a fresh profile each run, so the
//! first load is from a cold cache. `VIGIL_CHROMIUM` and
//! `VIGIL_CHROMEDRIVER` name other binaries.

mod common;

use base64::Engine as _;
use common::http::Resp;
use common::{temp_dir, wait_for_every};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use vigil::auth::Role;
use vigil::camera::{CameraServer, ServerOptions};
use vigil::config::{self, Config};
use vigil::daemon::recorder::Recorder;
use vigil::serve::HttpServer;
use vigil::store;

const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// The element key of WebDriver (W3C) JSON.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn screenshots_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&d).unwrap();
    d
}

// ---- HTTP for chromedriver and the page: answers read by their framing.

fn http(addr: SocketAddr, method: &str, target: &str, headers: &str, body: &[u8]) -> Resp {
    let mut s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    // Read the head, then as much body as it announces: a server may keep
    // the connection open whatever we ask (chromedriver does).
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let split = loop {
        if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "no head in {:?}", String::from_utf8_lossy(&raw));
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let mut r = Resp {
        status,
        head,
        body: raw[split + 4..].to_vec(),
    };
    let chunked = r
        .header("Transfer-Encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"));
    let len = r
        .header("Content-Length")
        .and_then(|l| l.parse::<usize>().ok());
    let bodiless = method == "HEAD" || r.status == 304 || r.status == 204;
    loop {
        let complete = if bodiless {
            true
        } else if let Some(len) = len {
            r.body.len() >= len
        } else if chunked {
            r.body.ends_with(b"0\r\n\r\n")
        } else {
            false
        };
        if complete {
            break;
        }
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        r.body.extend_from_slice(&buf[..n]);
    }
    if chunked {
        r.body = dechunk(&r.body);
    }
    r
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = std::str::from_utf8(&b[..eol]).unwrap();
        let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 2 + size + 2..];
    }
}

/// [`common::wait_for`] at 200 ms: each poll asks the browser or the server.
fn wait_for<T>(limit: Duration, what: &str, f: impl FnMut() -> Option<T>) -> T {
    wait_for_every(limit, Duration::from_millis(200), what, f)
}

// ---- WebDriver

/// chromedriver and one browser session; both end when dropped.
struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
    profile: PathBuf,
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium with a
    /// fresh profile (so a cold cache) and a window of `w` x `h`.
    fn start(w: u32, h: u32) -> Browser {
        let driver_bin = std::env::var("VIGIL_CHROMEDRIVER").unwrap_or("chromedriver".into());
        let mut driver = Command::new(&driver_bin)
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {driver_bin} ({e}): run scripts/install-test-deps.sh")
            });
        // "ChromeDriver was started successfully on port 39419."
        let mut out = BufReader::new(driver.stdout.take().unwrap());
        let mut port = None;
        let mut line = String::new();
        while port.is_none() && out.read_line(&mut line).unwrap_or(0) > 0 {
            if line.contains("started successfully") {
                port = line
                    .trim_end()
                    .trim_end_matches('.')
                    .rsplit(' ')
                    .next()
                    .and_then(|p| p.parse::<u16>().ok());
            }
            line.clear();
        }
        let Some(port) = port else {
            let _ = driver.kill();
            panic!("{driver_bin} did not say which port it took");
        };
        // Its output is not read from here on: drain it so it never blocks.
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut out, &mut std::io::sink());
        });
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let profile = temp_dir(&format!("chromium-{w}x{h}"));
        let binary = std::env::var("VIGIL_CHROMIUM").unwrap_or("/usr/bin/chromium".into());
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": binary,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run",
                    format!("--user-data-dir={}", profile.display()),
                    format!("--window-size={w},{h}"),
                ],
            },
        }}});
        let mut b = Browser {
            driver,
            addr,
            session: String::new(),
            profile,
        };
        let v = b.call("POST", "/session", Some(caps));
        b.session = v["sessionId"].as_str().unwrap().to_owned();
        b.cmd(
            "POST",
            "/timeouts",
            json!({"script": 60000, "pageLoad": 60000}),
        );
        b
    }

    /// One WebDriver command: its `value`; panics on a WebDriver error.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let r = http(
            self.addr,
            method,
            path,
            "Content-Type: application/json\r\n",
            body.as_bytes(),
        );
        let v: Value = serde_json::from_slice(&r.body)
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: not JSON ({e}): {}", r.head));
        assert!(
            r.status == 200,
            "WebDriver {method} {path}: {} {}",
            r.status,
            v["value"]
        );
        v["value"].clone()
    }

    fn cmd(&self, method: &str, path: &str, body: Value) -> Value {
        let path = format!("/session/{}{path}", self.session);
        let body = (method == "POST").then_some(body);
        self.call(method, &path, body)
    }

    fn goto(&self, url: &str) {
        self.cmd("POST", "/url", json!({ "url": url }));
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page.
    fn js(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": args}),
        )
    }

    /// Runs `script`, which ends by calling `done(value)`.
    fn js_async(&self, script: &str, args: Value) -> Value {
        let script = format!("const done = arguments[arguments.length - 1];\n{script}");
        self.cmd(
            "POST",
            "/execute/async",
            json!({"script": script, "args": args}),
        )
    }

    /// Polls the expression `expr` until it is truthy; returns its value.
    fn wait(&self, limit: Duration, expr: &str) -> Value {
        let script = format!("return {expr};");
        wait_for(limit, expr, || {
            let v = self.js(&script, json!([]));
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            truthy.then_some(v)
        })
    }

    fn find(&self, css: &str) -> Value {
        let v = self.cmd(
            "POST",
            "/element",
            json!({"using": "css selector", "value": css}),
        );
        assert!(v[ELEMENT].is_string(), "{css}: {v}");
        v[ELEMENT].clone()
    }

    fn click(&self, css: &str) {
        let id = self.find(css);
        let id = id.as_str().unwrap();
        self.cmd("POST", &format!("/element/{id}/click"), json!({}));
    }

    fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css);
        let id = id.as_str().unwrap();
        self.cmd("POST", &format!("/element/{id}/clear"), json!({}));
        self.cmd(
            "POST",
            &format!("/element/{id}/value"),
            json!({ "text": text }),
        );
    }

    /// Mouse actions on the element `css`: `moves` are x offsets from its
    /// centre; the button goes down at the first and up at the last.
    fn mouse(&self, css: &str, moves: &[i64]) {
        let id = self.find(css);
        let mut origin = serde_json::Map::new();
        origin.insert(ELEMENT.to_owned(), id);
        let origin = Value::Object(origin);
        let mut actions = vec![
            json!({"type": "pointerMove", "duration": 0, "origin": origin, "x": moves[0], "y": 0}),
        ];
        actions.push(json!({"type": "pointerDown", "button": 0}));
        for &x in &moves[1..] {
            actions.push(
                json!({"type": "pointerMove", "duration": 150, "origin": origin, "x": x, "y": 0}),
            );
        }
        actions.push(json!({"type": "pointerUp", "button": 0}));
        self.cmd(
            "POST",
            "/actions",
            json!({"actions": [{"type": "pointer", "id": "mouse",
                "parameters": {"pointerType": "mouse"}, "actions": actions}]}),
        );
        self.cmd("DELETE", "/actions", json!({}));
    }

    fn resize(&self, w: u32, h: u32) {
        self.cmd("POST", "/window/rect", json!({"width": w, "height": h}));
    }

    fn screenshot(&self, name: &str) -> PathBuf {
        let v = self.cmd("GET", "/screenshot", json!({}));
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"));
        let path = screenshots_dir().join(name);
        std::fs::write(&path, png).unwrap();
        println!("screenshot: {}", path.display());
        path
    }

    /// Fetches `url` from the page (same cookies, same origin): status,
    /// Content-Type and body.
    fn fetch(&self, url: &str) -> (u16, String, Vec<u8>) {
        let v = self.js_async(
            "fetch(arguments[0]).then(async (r) => {
                const b = new Uint8Array(await r.arrayBuffer());
                let s = '';
                for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
                done([r.status, r.headers.get('Content-Type') || '', btoa(s)]);
            }).catch((e) => done([0, String(e), '']));",
            json!([url]),
        );
        let body = base64::engine::general_purpose::STANDARD
            .decode(v[2].as_str().unwrap())
            .unwrap();
        (
            v[0].as_u64().unwrap() as u16,
            v[1].as_str().unwrap().to_owned(),
            body,
        )
    }

    /// The text of the page's banner, if shown.
    fn banner(&self) -> String {
        self.js(
            "const b = document.getElementById('banner'); return b.hidden ? '' : b.firstChild.textContent;",
            json!([]),
        )
        .as_str()
        .unwrap_or("")
        .to_owned()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let path = format!("/session/{}", self.session);
            let _ = std::panic::catch_unwind(|| self.call("DELETE", &path, None));
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

// ---- Vigil, as `vigil demo` runs it

fn demo_config(dir: &Path, camera: &CameraServer, auth: bool) -> Config {
    let text = format!(
        "[storage]\npath = \"data\"\npool_size_mb = 8\npools = 4\nsync_interval_ms = 500\n\
         [memory]\narena_mb = 8\n[system]\nstream_start_spacing_ms = 0\n\
         [http]\nlisten = \"127.0.0.1:0\"\nauth = {auth}\n\
         [[camera]]\nname = \"demo\"\nurl = \"{}\"\nsub_url = \"{}\"\nrecord = \"both\"\n\
         [[camera]]\nname = \"demo-hevc\"\nurl = \"{}\"\n",
        camera.url("h264/demo"),
        camera.url("mjpeg/demo"),
        camera.url("h265/demo"),
    );
    config::parse_str(&text, dir).unwrap()
}

struct Vigil {
    cam: CameraServer,
    rec: Recorder,
    http: HttpServer,
    dir: PathBuf,
}

impl Vigil {
    /// `users`: (name, role, password) to create, for `http.auth = true`;
    /// none: logins off, as in `vigil demo`.
    fn start(name: &str, users: &[(&str, Role, &str)]) -> Vigil {
        let dir = temp_dir(name);
        let cam = CameraServer::start(ServerOptions {
            listen: ([127, 0, 0, 1], 0).into(),
            auth: None,
            bitrate_kbps: None,
        })
        .unwrap();
        let cfg = demo_config(&dir, &cam, !users.is_empty());
        let storage = store::open::open_for_writing(&cfg.storage).unwrap();
        let auth = vigil::auth::Auth::new(cfg.storage.db.clone());
        for &(name, role, password) in users {
            auth.add_user(name, role, password).unwrap();
        }
        let rec = Recorder::start(&cfg, storage).unwrap();
        let ctx = Arc::new(vigil::serve::context(&cfg, &rec));
        let http = HttpServer::start(cfg.http.listen, ctx, 16).unwrap();
        Vigil {
            cam,
            rec,
            http,
            dir,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.http.local_addr()
    }

    fn url(&self, hash: &str) -> String {
        format!("http://{}/{hash}", self.addr())
    }

    fn stop(self) {
        self.http.stop();
        self.rec.shutdown(Duration::from_secs(5)).unwrap();
        self.cam.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// ffprobe's verdict on `bytes`: the codec of its first video stream.
fn ffprobe(bytes: &[u8], ext: &str) -> Result<String, String> {
    let path = std::env::temp_dir().join(format!("vigil-browser-{}.{ext}", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args([
            "-show_entries",
            "stream=codec_name,width,height,nb_read_frames",
        ])
        .args(["-count_frames", "-of", "json"])
        .arg(&path)
        .output()
        .map_err(|e| format!("cannot run ffprobe ({e}): run scripts/install-test-deps.sh"))?;
    let _ = std::fs::remove_file(&path);
    if !out.status.success() || !out.stderr.is_empty() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    let s = &v["streams"][0];
    let frames: u64 = s["nb_read_frames"]
        .as_str()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    if frames == 0 {
        return Err(format!("no frames: {v}"));
    }
    Ok(format!(
        "{} {}x{} {frames} frames",
        s["codec_name"].as_str().unwrap_or("?"),
        s["width"],
        s["height"]
    ))
}

/// A picture's fingerprint, taken in the page: the <img> drawn on a canvas.
const PICTURE_HASH: &str = "
    const img = document.querySelector(arguments[0]);
    if (!img || !img.naturalWidth) return null;
    const c = document.createElement('canvas');
    c.width = 64; c.height = 36;
    const g = c.getContext('2d');
    g.drawImage(img, 0, 0, 64, 36);
    const d = g.getImageData(0, 0, 64, 36).data;
    let h = 0;
    for (let i = 0; i < d.length; i++) h = (h * 31 + d[i]) >>> 0;
    return h;";

// ---- The tests

/// One browser test at a time: each runs Chromium and a recorder, and the
/// machine may have two cores.
static ONE_BROWSER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The page as `vigil demo` serves it (no logins), in a real browser.
#[test]
#[ignore = "needs chromium, chromium-driver and ffprobe (scripts/install-test-deps.sh)"]
fn page_in_a_browser() {
    let _one = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let (raw, gz) = vigil::serve::web::sizes();
    println!(
        "page size: {raw} bytes ({:.1} KiB) uncompressed, {gz} bytes gzip",
        raw as f64 / 1024.0
    );
    let vigil = Vigil::start("browser", &[]);
    let b = Browser::start(1280, 800);

    // Cold load: a fresh profile, nothing cached.
    b.goto(&vigil.url("#/live"));
    let t = b.js(
        "const n = performance.getEntriesByType('navigation')[0];
         const r = performance.getEntriesByType('resource')
             .filter((e) => /\\/app\\.(js|css)$/.test(e.name));
         return {dcl: n.domContentLoadedEventEnd, load: n.loadEventEnd,
             bytes: n.transferSize + r.reduce((a, e) => a + e.transferSize, 0),
             decoded: n.decodedBodySize + r.reduce((a, e) => a + e.decodedBodySize, 0),
             encoded: n.encodedBodySize + r.reduce((a, e) => a + e.encodedBodySize, 0),
             files: r.length};",
        json!([]),
    );
    println!(
        "cold load on loopback: DOMContentLoaded {:.1} ms, load {:.1} ms; {} bytes transferred for the page's 3 files ({} encoded, {} decoded)",
        t["dcl"].as_f64().unwrap(),
        t["load"].as_f64().unwrap(),
        t["bytes"],
        t["encoded"],
        t["decoded"]
    );
    assert_eq!(t["files"], 2, "app.js and app.css loaded: {t}");
    assert_eq!(t["decoded"].as_u64().unwrap() as usize, raw, "{t}");
    assert!(
        t["encoded"].as_u64().unwrap() < t["decoded"].as_u64().unwrap() / 2,
        "not compressed: {t}"
    );

    // The live grid: a picture per camera that shows one, and it changes.
    let demo = ".cam[data-camera='demo'] img";
    b.wait(
        Duration::from_secs(20),
        &format!("document.querySelector(\"{demo}\")?.naturalWidth"),
    );
    let first_picture = b.js("return performance.now();", json!([]));
    println!(
        "first live picture {:.0} ms after navigation",
        first_picture.as_f64().unwrap()
    );
    let h1 = wait_for(Duration::from_secs(5), "a picture", || {
        b.js(PICTURE_HASH, json!([demo])).as_u64()
    });
    wait_for(Duration::from_secs(10), "the picture to change", || {
        let h = b.js(PICTURE_HASH, json!([demo])).as_u64()?;
        (h != h1).then_some(())
    });
    // An H.265 camera has no MJPEG: the tile says so, in words.
    let why = b.wait(
        Duration::from_secs(20),
        "document.querySelector(\".cam[data-camera='demo-hevc'] .note:not([hidden])\")?.textContent",
    );
    assert!(why.as_str().unwrap().contains("H.265"), "{why}");
    b.screenshot("live.png");

    // Loaded again, the files are revalidated (ETag, 304), not sent again.
    b.goto(&vigil.url("?again#/status"));
    let again = b.js(
        "return performance.getEntriesByType('resource')
             .filter((e) => /\\/app\\.(js|css)$/.test(e.name))
             .map((e) => [e.name, e.transferSize, e.encodedBodySize]);",
        json!([]),
    );
    println!("reloaded: {again}");
    assert_eq!(again.as_array().unwrap().len(), 2, "{again}");
    for e in again.as_array().unwrap() {
        // A 304: the headers crossed the wire, not the body.
        assert!(e[1].as_u64().unwrap() < 1024, "sent again: {e}");
        assert_eq!(e[2], 0, "sent again: {e}");
    }

    // One camera, live over Media Source Extensions.
    b.goto(&vigil.url("#/camera/demo"));
    let how = b.wait(
        Duration::from_secs(20),
        "document.querySelector('.stage video')?.currentTime > 1 && document.getElementById('how').textContent",
    );
    assert!(
        how.as_str().unwrap().contains("Media Source Extensions"),
        "{how}"
    );
    b.screenshot("camera.png");
    // A stream that has no fMP4 form (JPEG) plays as MJPEG.
    b.goto(&vigil.url("#/camera/demo?stream=sub"));
    let how = b.wait(
        Duration::from_secs(20),
        "document.querySelector('.stage img')?.naturalWidth && document.getElementById('how').textContent",
    );
    println!("demo sub live: {how}");
    assert_eq!(how, "Live as MJPEG.");
    // A stream the browser cannot take live and Vigil cannot turn into
    // JPEG: said in words.
    b.goto(&vigil.url("#/camera/demo-hevc"));
    let why = b.wait(
        Duration::from_secs(20),
        "document.querySelector('.stage .note:not([hidden])')?.textContent",
    );
    println!("demo-hevc live: {why}");
    b.screenshot("camera-hevc.png");

    // Recordings: wait for 12 s of the main stream.
    let (start_ms, end_ms) = wait_for(Duration::from_secs(40), "12 s recorded", || {
        let r = http(vigil.addr(), "GET", "/api/cameras/demo/recordings", "", b"");
        let v: Value = serde_json::from_slice(&r.body).ok()?;
        let first = v.as_array()?.first()?;
        let last = v.as_array()?.last()?;
        let (s, e) = (
            first["start_90k"].as_i64()? / 90,
            last["end_90k"].as_i64()? / 90,
        );
        (e - s >= 12_000).then_some((s, e))
    });
    // The day in the browser's time zone (the test may run at midnight).
    let day = b.js(
        "const d = new Date(arguments[0]);
         return d.getFullYear() + '-' + String(d.getMonth() + 1).padStart(2, '0') + '-' + String(d.getDate()).padStart(2, '0');",
        json!([end_ms]),
    );
    b.goto(&vigil.url(&format!(
        "#/recordings/demo?stream=main&day={}",
        day.as_str().unwrap()
    )));
    b.wait(
        Duration::from_secs(10),
        "document.querySelector('.tl .run')",
    );
    // A click on the recorded part of the timeline plays from there.
    b.mouse(".tl .run", &[0]);
    let t0 = b
        .wait(
            Duration::from_secs(15),
            "(v => v.readyState >= 2 && v.currentTime > 0 && v.currentTime)(document.getElementById('player'))",
        )
        .as_f64()
        .unwrap();
    let t1 = b
        .wait(
            Duration::from_secs(15),
            &format!("(v => v.currentTime >= {t0} + 2 && v.currentTime)(document.getElementById('player'))"),
        )
        .as_f64()
        .unwrap();
    println!("recording played from {t0:.2} s to {t1:.2} s");
    let clock = b.js(
        "return document.getElementById('clock').textContent;",
        json!([]),
    );
    assert!(
        clock.as_str().unwrap().starts_with("Playing demo"),
        "{clock}"
    );
    assert_eq!(b.banner(), "");
    b.screenshot("recordings.png");

    // A range picked by dragging across the recorded run downloads.
    let w = b
        .js(
            "return document.querySelector('.tl .run').getBoundingClientRect().width;",
            json!([]),
        )
        .as_f64()
        .unwrap() as i64;
    b.mouse(".tl .run", &[-w * 3 / 10, 0, w * 3 / 10]);
    let sel = b.wait(
        Duration::from_secs(5),
        "document.getElementById('dl-mp4').href && [document.getElementById('from').value, document.getElementById('to').value, document.getElementById('dl-mp4').href, document.getElementById('dl-ts').href, document.getElementById('dl-mp4').download, document.getElementById('sel-info').textContent]",
    );
    println!("range picked: {sel}");
    assert_ne!(sel[0], sel[1], "{sel}");
    assert!(sel[4].as_str().unwrap().ends_with(".mp4"), "{sel}");
    for (i, ext) in [(2, "mp4"), (3, "ts")] {
        let href = sel[i].as_str().unwrap();
        let (status, ctype, body) = b.fetch(href);
        assert_eq!(status, 200, "{href}: {}", String::from_utf8_lossy(&body));
        let probe = ffprobe(&body, ext)
            .unwrap_or_else(|e| panic!("{href} ({ctype}, {} bytes): ffprobe: {e}", body.len()));
        println!(
            "download .{ext}: {} bytes, {ctype}, ffprobe: {probe}",
            body.len()
        );
        assert!(probe.starts_with("h264 640x360"), "{probe}");
    }
    let _ = (start_ms, end_ms);

    // Status.
    b.goto(&vigil.url("#/status"));
    b.wait(
        Duration::from_secs(10),
        "document.querySelectorAll('#streams tbody tr').length === 3",
    );
    b.screenshot("status.png");

    // Cameras: add one through the page; it starts streaming.
    b.goto(&vigil.url("#/cameras"));
    b.wait(
        Duration::from_secs(10),
        "document.getElementById('cameras')",
    );
    b.click("#add-camera");
    b.type_into("#camera-form [name=name]", "added");
    b.type_into("#camera-form [name=url]", &vigil.cam.url("h264/added"));
    b.click("#camera-form button[type=submit]");
    let said = b.wait(Duration::from_secs(10), "!document.getElementById('banner').hidden && document.getElementById('banner').firstChild.textContent");
    assert!(said.as_str().unwrap().contains("added"), "{said}");
    b.screenshot("cameras.png");
    b.goto(&vigil.url("#/live"));
    b.wait(
        Duration::from_secs(30),
        "document.querySelector(\".cam[data-camera='added'] img\")?.naturalWidth",
    );
    let camera = |name: &str| -> Option<Value> {
        let r = http(vigil.addr(), "GET", "/api/cameras", "", b"");
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
    };
    // Edit it: a changed field is sent, the rest stays.
    b.goto(&vigil.url("#/cameras"));
    b.click("#cameras tr[data-camera=added] button.edit");
    b.type_into("#camera-form [name=segment_seconds]", "30");
    b.screenshot("camera-edit.png");
    b.click("#camera-form button[type=submit]");
    b.wait(
        Duration::from_secs(10),
        "document.getElementById('banner').textContent.includes('saved')",
    );
    let added = camera("added").unwrap();
    assert_eq!(added["segment_seconds"], 30, "{added}");
    assert_eq!(added["enabled"], true, "{added}");
    // Disable it, then delete it (the button asks twice).
    b.wait(
        Duration::from_secs(10),
        "document.querySelector('#cameras tr[data-camera=added] button.toggle')",
    );
    b.click("#cameras tr[data-camera=added] button.toggle");
    b.wait(
        Duration::from_secs(10),
        "document.getElementById('banner').textContent.includes('disabled')",
    );
    assert_eq!(camera("added").unwrap()["enabled"], false);
    b.wait(
        Duration::from_secs(10),
        "document.querySelector('#cameras tr[data-camera=added].muted button.danger')",
    );
    b.click("#cameras tr[data-camera=added] button.danger");
    let asks = b.js("return document.querySelector('#cameras tr[data-camera=added] button.danger').textContent;", json!([]));
    assert_eq!(asks, "Really delete?");
    b.click("#cameras tr[data-camera=added] button.danger");
    b.wait(
        Duration::from_secs(10),
        "document.getElementById('banner').textContent.includes('deleted')",
    );
    assert_eq!(camera("added"), None);

    // Users.
    b.goto(&vigil.url("#/users"));
    b.wait(Duration::from_secs(10), "document.querySelector('main p')");
    b.screenshot("users.png");

    // A phone.
    b.resize(390, 844);
    b.goto(&vigil.url("#/live"));
    b.wait(
        Duration::from_secs(20),
        &format!("document.querySelector(\"{demo}\")?.naturalWidth"),
    );
    b.screenshot("phone-live.png");
    b.goto(&vigil.url(&format!(
        "#/recordings/demo?stream=main&day={}",
        day.as_str().unwrap()
    )));
    b.wait(
        Duration::from_secs(10),
        "document.querySelector('.tl .run')",
    );
    b.screenshot("phone-recordings.png");
    let overflow = b.js(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
        json!([]),
    );
    assert_eq!(overflow, 0, "the page is wider than a phone");

    drop(b);
    vigil.stop();
}

/// The page's files over HTTP: gzip when asked for, ETag and 304, HEAD,
/// and public (no login needed) while the API is not.
#[test]
fn page_is_served_compressed_and_cached() {
    let dir = temp_dir("web-serve");
    let cfg = config::parse_str(
        "[storage]\npath = \"data\"\npool_size_mb = 4\npools = 2\n[http]\nlisten = \"127.0.0.1:0\"\n",
        &dir,
    )
    .unwrap();
    let storage = store::open::open_for_writing(&cfg.storage).unwrap();
    let rec = Recorder::start(&cfg, storage).unwrap();
    let ctx = Arc::new(vigil::serve::context(&cfg, &rec));
    let http_server = HttpServer::start(cfg.http.listen, ctx, 4).unwrap();
    let addr = http_server.local_addr();

    let (raw_total, _) = vigil::serve::web::sizes();
    let mut total = 0;
    for (path, ctype) in [
        ("/", "text/html; charset=utf-8"),
        ("/app.css", "text/css; charset=utf-8"),
        ("/app.js", "text/javascript; charset=utf-8"),
    ] {
        let plain = http(addr, "GET", path, "", b"");
        assert_eq!(plain.status, 200, "{path}");
        assert_eq!(plain.header("Content-Type").as_deref(), Some(ctype));
        assert_eq!(plain.header("Content-Encoding"), None);
        assert_eq!(plain.header("Cache-Control").as_deref(), Some("no-cache"));
        assert_eq!(plain.header("Vary").as_deref(), Some("Accept-Encoding"));
        total += plain.body.len();
        let gz = http(
            addr,
            "GET",
            path,
            "Accept-Encoding: gzip, deflate, br\r\n",
            b"",
        );
        assert_eq!(gz.status, 200);
        assert_eq!(gz.header("Content-Encoding").as_deref(), Some("gzip"));
        assert!(gz.body.starts_with(&[0x1f, 0x8b]));
        assert!(gz.body.len() < plain.body.len());
        let (e1, e2) = (plain.header("ETag").unwrap(), gz.header("ETag").unwrap());
        assert_ne!(e1, e2, "the two encodings are two entities");
        // Revalidation: 304, no body.
        let again = http(
            addr,
            "GET",
            path,
            &format!("Accept-Encoding: gzip\r\nIf-None-Match: {e2}\r\n"),
            b"",
        );
        assert_eq!(again.status, 304, "{}", again.head);
        assert!(again.body.is_empty());
        assert_eq!(again.header("ETag").as_deref(), Some(e2.as_str()));
        let stale = http(addr, "GET", path, "If-None-Match: \"other\"\r\n", b"");
        assert_eq!(stale.status, 200);
        let head = http(addr, "HEAD", path, "Accept-Encoding: gzip\r\n", b"");
        assert_eq!(head.status, 200);
        assert!(head.body.is_empty());
        assert_eq!(
            head.header("Content-Length").unwrap(),
            gz.body.len().to_string()
        );
    }
    assert_eq!(total, raw_total);
    let page = http(addr, "GET", "/", "", b"");
    let csp = page.header("Content-Security-Policy").unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(String::from_utf8_lossy(&page.body).contains("/app.js"));
    assert_eq!(http(addr, "GET", "/nothing.js", "", b"").status, 404);
    assert_eq!(http(addr, "POST", "/app.js", "", b"").status, 405);
    // Logins are on (the default): the page is public, the API is not.
    assert_eq!(http(addr, "GET", "/api/status", "", b"").status, 401);
    assert_eq!(http(addr, "GET", "/index.html/x", "", b"").status, 401);

    http_server.stop();
    rec.shutdown(Duration::from_secs(5)).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// With `http.auth` on: the page asks to log in, refuses a wrong
/// password in words, lets a viewer watch but shows no admin views, and
/// logging out ends the session.
#[test]
#[ignore = "needs chromium and chromium-driver (scripts/install-test-deps.sh)"]
fn login_in_a_browser() {
    let _one = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let vigil = Vigil::start(
        "browser-login",
        &[
            ("root", Role::Admin, "root password 1"),
            ("eve", Role::Viewer, "viewer password 1"),
        ],
    );
    let b = Browser::start(1280, 800);
    b.goto(&vigil.url("#/status"));
    b.wait(
        Duration::from_secs(10),
        "location.hash === '#/login' && document.querySelector('form [name=username]')",
    );
    b.screenshot("login.png");

    // A wrong password: said in words, still on the login form.
    b.type_into("[name=username]", "root");
    b.type_into("[name=password]", "not the password");
    b.click("form button[type=submit]");
    let said = b.wait(
        Duration::from_secs(20),
        "document.querySelector('.login .err').textContent",
    );
    assert_eq!(said, "Wrong user name or password.");
    assert_eq!(b.js("return location.hash;", json!([])), "#/login");

    // The right one: back where the user was going, logged in as admin.
    b.type_into("[name=password]", "root password 1");
    b.click("form button[type=submit]");
    b.wait(Duration::from_secs(20), "location.hash === '#/status' && document.querySelectorAll('#streams tbody tr').length === 3");
    let who = b.js(
        "return document.getElementById('who').textContent;",
        json!([]),
    );
    assert!(who.as_str().unwrap().contains("root (admin)"), "{who}");
    // The session cookie carries the pictures too.
    b.goto(&vigil.url("#/live"));
    b.wait(
        Duration::from_secs(20),
        "document.querySelector(\".cam[data-camera='demo'] img\")?.naturalWidth",
    );
    // A reload keeps the session.
    b.goto(&vigil.url("?again#/users"));
    b.wait(
        Duration::from_secs(10),
        "document.querySelectorAll('#users tbody tr').length === 2",
    );
    b.screenshot("users-admin.png");

    // Log out: the login form again, and the API refuses.
    b.click("#who button");
    b.wait(
        Duration::from_secs(10),
        "location.hash === '#/login' && document.querySelector('form [name=username]')",
    );
    let (status, _, _) = b.fetch("/api/status");
    assert_eq!(status, 401);

    // A viewer: watches, no admin views in the navigation.
    b.type_into("[name=username]", "eve");
    b.type_into("[name=password]", "viewer password 1");
    b.click("form button[type=submit]");
    b.wait(Duration::from_secs(20), "location.hash === '#/live' && document.querySelector(\".cam[data-camera='demo'] img\")?.naturalWidth");
    let admin_links = b.js(
        "return [...document.querySelectorAll('#nav a.admin')].filter((a) => a.offsetParent).length;",
        json!([]),
    );
    assert_eq!(admin_links, 0);
    b.screenshot("viewer-live.png");

    drop(b);
    vigil.stop();
}
